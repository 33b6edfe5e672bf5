//! Operator commands for access control, working on `<data>/auth` directly (no server
//! needed, and a running server sees the changes at its next request): `token`,
//! `client add|list|disable`, `user add|list|disable|reset-totp`, `key rotate`.

use std::path::PathBuf;

use clap::Subcommand;
use tsunagu_auth::{Authority, Client, Grant, ScopeSet, UserStore};

use crate::config::Config;

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum ClientAction {
    /// Registers a client (a hospital system, a backend service, an app).
    Add {
        #[arg(long)]
        id: String,
        /// JWKS file with the client's public keys (private_key_jwt).
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// URL the client publishes its JWKS at (fetched when needed, kept 5 minutes).
        #[arg(long)]
        jwks_url: Option<String>,
        /// The most it may be granted (space-separated SMART scopes); default: its role's.
        #[arg(long)]
        scope: Option<String>,
        /// Platform role (institution, doctor, pharmacist, nurse, patient, municipality,
        /// public-health-centre, administrator, auditor, researcher).
        #[arg(long)]
        role: Option<String>,
        /// Organization/X the client acts for.
        #[arg(long)]
        organization: Option<String>,
        /// The 10-digit 医療機関コード of the institution it acts for (JP-CLINS: it submits
        /// under this number, and sees other institutions' items only with consent).
        #[arg(long)]
        institution: Option<String>,
        /// Patient/Y a patient's app is bound to (its patient/ scopes reach only Y).
        #[arg(long)]
        patient: Option<String>,
        /// PEM certificate the client presents over TLS (it then authenticates with it).
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// Redirect URI of an app used by people (authorization_code); repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
    },
    /// Lists the registered clients.
    List,
    /// Disables a client: its tokens stop working at once.
    Disable { id: String },
}

#[derive(Subcommand)]
pub enum UserAction {
    /// Adds a person who signs in (password from standard input; prints the TOTP URI).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        role: String,
        /// The FHIR resource the person is (Practitioner/123, Patient/9).
        #[arg(long)]
        fhir_user: Option<String>,
        #[arg(long)]
        organization: Option<String>,
        /// The most the user may be granted; default: the role's scopes.
        #[arg(long, default_value = "")]
        scope: String,
    },
    List,
    Disable {
        id: String,
    },
    /// A new TOTP secret (prints its otpauth:// URI).
    ResetTotp {
        id: String,
    },
}

fn authority(cfg: &Config) -> Result<Authority, String> {
    let listen = cfg.listen_or_default(None);
    let base = cfg.base_url_for(&listen, None)?;
    Authority::open(&cfg.data.join("auth"), &base, cfg.auth_settings.clone()).map_err(|e| e.to_string())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `tsunagu token`: a short-lived token signed with the server's key, for the operator.
pub fn token(
    cfg: &Config,
    scope: &str,
    patient: Option<String>,
    institution: Option<String>,
    base_url: Option<String>,
) -> Result<(), String> {
    let scopes = ScopeSet::parse(scope).map_err(|e| e.to_string())?;
    if institution.as_deref().is_some_and(|i| !tsunagu_auth::is_institution_code(i)) {
        return Err("--institution must be a 10-digit 医療機関コード".into());
    }
    let listen = cfg.listen_or_default(None);
    let base = cfg.base_url_for(&listen, base_url)?;
    let a = Authority::open(&cfg.data.join("auth"), &base, cfg.auth_settings.clone()).map_err(|e| e.to_string())?;
    let grant = Grant {
        subject: "operator".into(),
        client_id: "operator".into(),
        scope: scopes.to_string(),
        patient: patient.map(|p| p.trim_start_matches("Patient/").to_string()),
        institution,
        ..Default::default()
    };
    let t = a.issuer().issue(&grant, now()).map_err(|e| e.to_string())?;
    println!("{t}");
    Ok(())
}

pub fn client(cfg: &Config, action: ClientAction) -> Result<(), String> {
    let a = authority(cfg)?;
    match action {
        ClientAction::Add {
            id,
            jwks,
            jwks_url,
            scope,
            role,
            organization,
            institution,
            patient,
            tls_cert,
            redirect_uris,
        } => {
            if let Some(r) = &role {
                r.parse::<tsunagu_auth::Role>().map_err(|e| e.to_string())?;
            }
            let jwks = match jwks {
                Some(p) => {
                    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Some(serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", p.display()))?)
                }
                None => None,
            };
            let tls_thumbprint = match tls_cert {
                Some(p) => Some(thumbprint_of(&p)?),
                None => None,
            };
            let c = Client {
                id: id.clone(),
                jwks,
                jwks_url,
                scope: scope.unwrap_or_default(),
                role,
                organization,
                institution,
                patient: patient.map(|p| p.trim_start_matches("Patient/").to_string()),
                tls_thumbprint,
                redirect_uris,
                disabled: false,
            };
            a.registry().add_client(&c, now()).map_err(|e| e.to_string())?;
            println!("registered client {id}; token endpoint {}", a.token_endpoint());
            Ok(())
        }
        ClientAction::List => {
            for c in a.registry().clients().map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\trole={}\tscope={}",
                    c.id,
                    if c.disabled { "disabled" } else { "active" },
                    c.role.as_deref().unwrap_or("-"),
                    c.scope
                );
            }
            Ok(())
        }
        ClientAction::Disable { id } => {
            a.registry().disable_client(&id).map_err(|e| e.to_string())?;
            println!("client {id} disabled");
            Ok(())
        }
    }
}

fn thumbprint_of(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| format!("{}: no PEM certificate", path.display()))?;
    if der.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(tsunagu_tls::certificate_thumbprint(&der))
}

pub fn user(cfg: &Config, action: UserAction) -> Result<(), String> {
    let a = authority(cfg)?;
    let e = |e: tsunagu_auth::AuthError| e.to_string();
    match action {
        UserAction::Add { id, role, fhir_user, organization, scope } => {
            let password = read_password()?;
            let uri = a.registry().with_conn(|c| {
                UserStore::add_user(c, &id, &password, &role, fhir_user.as_deref(), organization.as_deref(), &scope)
            });
            println!("{}", uri.map_err(e)?);
            eprintln!("user {id} added: scan the URI above (as a QR code) into an authenticator app");
        }
        UserAction::List => {
            for u in a.registry().with_conn(UserStore::list_users).map_err(e)? {
                println!(
                    "{}\t{}\trole={}\tfhirUser={}",
                    u.id,
                    if u.disabled { "disabled" } else { "active" },
                    u.role,
                    u.fhir_user.as_deref().unwrap_or("-")
                );
            }
        }
        UserAction::Disable { id } => {
            a.registry().with_conn(|c| UserStore::disable_user(c, &id)).map_err(e)?;
            println!("user {id} disabled");
        }
        UserAction::ResetTotp { id } => {
            println!("{}", a.registry().with_conn(|c| UserStore::reset_totp(c, &id)).map_err(e)?);
        }
    }
    Ok(())
}

fn read_password() -> Result<String, String> {
    eprintln!("password (from standard input, one line):");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `tsunagu key rotate`: a new signing key; older ones keep verifying until retired.
pub fn rotate_key(cfg: &Config, keep: usize) -> Result<(), String> {
    let mut ring =
        tsunagu_auth::KeyRing::load_or_create(&cfg.data.join("auth").join("keys")).map_err(|e| e.to_string())?;
    let kid = ring.rotate().map_err(|e| e.to_string())?.kid().to_string();
    ring.retire(keep).map_err(|e| e.to_string())?;
    println!("new signing key {kid}; restart the server to sign with it");
    Ok(())
}
