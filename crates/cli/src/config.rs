//! Configuration: command-line flags and environment variables override `tsunagu.toml`,
//! which overrides the defaults. What the file says is parsed into typed values here, so
//! nothing further in takes a setting as a string.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use tsunagu_interaction::Limits;
use tsunagu_store::SyncMode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://user@host/db`): store resources there instead of the
    /// embedded SQLite database in the data directory.
    database: Option<String>,
    /// PostgreSQL streaming replicas that reads and searches may use.
    #[serde(default)]
    read_replicas: Vec<String>,
    listen: Option<String>,
    base_url: Option<String>,
    /// Same as `limits.max_body_bytes` (kept for configurations written before `[limits]`).
    max_body_bytes: Option<usize>,
    /// "full" (default) or "normal"; see `SyncMode`.
    sync: Option<String>,
    /// FHIR packages (.tgz) to load for profile validation.
    #[serde(default)]
    packages: Vec<PathBuf>,
    /// Validate on write: "off", "base" (default) or "declared" (base structure and every
    /// profile a resource declares in meta.profile).
    validate: Option<String>,
    /// Resource type → profile canonical every resource of that type must meet on write.
    #[serde(default)]
    required_profiles: std::collections::HashMap<String, String>,
    /// Domains whose extensions may be used without a loaded definition (a warning);
    /// an unknown extension elsewhere is an error. Default: HL7, FHIR, the JP domains.
    extension_domains: Option<Vec<String>>,
    /// Host names the server answers to (default: the base URL's host).
    allowed_hosts: Option<Vec<String>>,
    /// Browser origins allowed to call the API (CORS); none by default.
    #[serde(default)]
    cors_origins: Vec<String>,
    #[serde(default)]
    limits: Limits,
    /// "on" (default) or "off" (only on a loopback address).
    auth: Option<String>,
    /// Access token lifetime in seconds (default 300).
    token_lifetime_secs: Option<u64>,
    /// Role name → scopes replacing that role's defaults.
    #[serde(default)]
    roles: std::collections::BTreeMap<String, String>,
    /// External identity providers whose tokens are accepted.
    #[serde(default)]
    identity_provider: Vec<IdentityProviderFile>,
    /// TLS: certificate chain and private key (PEM); client-certificate roots (optional).
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    /// "1.3" (default) or "1.2" (accept TLS 1.2 as well).
    tls_min_version: Option<String>,
    /// Longest wait before a read's audit record is stored, in ms (default 100).
    audit_flush_ms: Option<u64>,
    /// JP-CLINS: "deny" (default) or "allow" — whether another institution sees a
    /// person's shared items when no current Consent says either way.
    consent_default: Option<String>,
    /// HPKI signatures on submitted documents.
    #[serde(default)]
    hpki: HpkiConfig,
    /// JP-CLINS retention: days a submission's items are kept (LTS-tagged ones:
    /// `lts_retention_days`); unset: for ever.
    retention_days: Option<u64>,
    lts_retention_days: Option<u64>,
    /// `[export]`: Bulk Data export.
    #[serde(default)]
    export: ExportFile,
}

/// `[export]`: Bulk Data `$export` jobs (kept under `<data>/export`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    /// An output file is closed past this many bytes (default 64 MiB).
    max_file_bytes: Option<u64>,
    /// Hours a finished job and its files are kept (default 24).
    retention_hours: Option<u64>,
    /// Jobs running at once; more get 429 (default 2).
    max_running_jobs: Option<usize>,
    /// Resources read per page while exporting (default 500).
    page_size: Option<usize>,
    /// `[export.deidentify.NAME]`: de-identification policies besides `default`.
    #[serde(default)]
    deidentify: std::collections::BTreeMap<String, PolicyFile>,
}

/// One named de-identification policy; unset fields are the `default` policy's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// Digits of a postal code kept (default 3).
    postal_prefix_digits: Option<usize>,
    /// "shift" (default: by a secret per-patient offset) or "year" (only the year kept).
    dates: Option<String>,
    /// Largest shift in days for "shift" (default 180).
    shift_days: Option<i64>,
    /// Older than this, the birth year is replaced by one shared year (default 89).
    max_age_years: Option<i32>,
    /// Pseudonyms equal across exports (default false).
    stable_across_exports: Option<bool>,
}

impl PolicyFile {
    fn policy(self, name: &str) -> Result<tsunagu_deid::Policy, String> {
        if name == "default"
            || name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "export.deidentify.{name}: a policy name is letters, digits, - and _, and not 'default'"
            ));
        }
        let base = tsunagu_deid::Policy::default();
        let dates = match (self.dates.as_deref(), self.shift_days) {
            (None | Some("shift"), days) => {
                let max_days = days.unwrap_or(180);
                if !(1..=3650).contains(&max_days) {
                    return Err(format!("export.deidentify.{name}.shift_days must be 1–3650, not {max_days}"));
                }
                tsunagu_deid::DateRule::Shift { max_days }
            }
            (Some("year"), None) => tsunagu_deid::DateRule::Year,
            (Some("year"), Some(_)) => {
                return Err(format!("export.deidentify.{name}: shift_days goes with dates = \"shift\""))
            }
            (Some(other), _) => {
                return Err(format!("export.deidentify.{name}.dates must be \"shift\" or \"year\", not \"{other}\""))
            }
        };
        Ok(tsunagu_deid::Policy {
            name: name.to_string(),
            postal_prefix_digits: self.postal_prefix_digits.unwrap_or(base.postal_prefix_digits).min(7),
            dates,
            max_age_years: self.max_age_years.unwrap_or(base.max_age_years).clamp(1, 150),
            stable_across_exports: self.stable_across_exports.unwrap_or(base.stable_across_exports),
        })
    }
}

/// `[hpki]`: what verifies a signed JP-CLINS document. Without trust anchors a signed
/// document is refused (it cannot be checked); unsigned ones are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpkiConfig {
    /// Trust anchors (PEM or DER): the HPKI root certificates.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER), read at start.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Document type code → hcRoles that may sign it (default: 57133-1, 18842-5 and
    /// 53576-5 need "Medical Doctor"); an empty list requires none.
    pub roles: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl HpkiConfig {
    pub fn policy(&self) -> tsunagu_hpki::RolePolicy {
        match &self.roles {
            Some(map) => tsunagu_hpki::RolePolicy::from_map(map.clone()),
            None => tsunagu_hpki::RolePolicy::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityProviderFile {
    issuer: String,
    /// Default: this server's base URL.
    audience: Option<String>,
    /// A JWKS file of the provider's signing keys.
    jwks_file: PathBuf,
    #[serde(default)]
    scope_claim: Option<String>,
    #[serde(default)]
    role_claim: Option<String>,
    default_role: Option<String>,
    #[serde(default)]
    patient_claim: Option<String>,
}

/// Whether `serve` requires access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    On,
    /// Only accepted on a loopback address.
    Off,
}

/// TLS as configured.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub min_version: tsunagu_tls::TlsVersion,
}

/// What to check before a resource is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validate {
    /// Nothing beyond the safety guard (nesting, narrative), for trusted bulk data.
    Off,
    /// The base R4 structure.
    Base,
    /// The base structure and every profile a resource declares in `meta.profile`.
    Declared,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    /// `None`: the embedded SQLite database in `data`.
    pub database: Option<Database>,
    pub listen: Option<String>,
    pub base_url: Option<String>,
    pub sync: SyncMode,
    pub packages: Vec<PathBuf>,
    pub validate: Validate,
    pub required_profiles: std::collections::HashMap<String, String>,
    /// `None`: the validator's defaults.
    pub extension_domains: Option<Vec<String>>,
    /// `None`: derived from the base URL.
    pub allowed_hosts: Option<Vec<String>>,
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    pub auth: AuthMode,
    pub auth_settings: tsunagu_auth::AuthSettings,
    pub tls: Option<TlsFiles>,
    pub audit_flush_ms: u64,
    pub consent_default_allow: bool,
    pub hpki: HpkiConfig,
    pub retention: tsunagu_interaction::clins::Retention,
    /// Bulk export settings; `dir` is `<data>/export`.
    pub export: tsunagu_interaction::ExportConfig,
}

/// Where resources are stored when not in the embedded SQLite database.
#[derive(Debug, Clone)]
pub struct Database {
    /// The PostgreSQL primary.
    pub url: String,
    /// Streaming replicas for reads.
    pub replicas: Vec<String>,
}

impl Database {
    pub fn new(url: String, replicas: Vec<String>) -> Result<Database, String> {
        for u in std::iter::once(&url).chain(&replicas) {
            // A URL, or libpq's `host=… dbname=…` form.
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://") || u.contains('=')) {
                return Err(format!("a database is a postgres://… URL (or host=… dbname=…), not \"{}\"", redacted(u)));
            }
        }
        Ok(Database { url, replicas })
    }
}

/// A database URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    if !url.contains("://") {
        return url
            .split_whitespace()
            .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
            .collect::<Vec<_>>()
            .join(" ");
    }
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &base[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}{}{}", &base[..s + 3], if creds.contains(':') { ":***" } else { "" }, &base[at..])
        }
        _ => base.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<&str> =
            q.split('&').map(|kv| if kv.starts_with("password=") { "password=***" } else { kv }).collect();
        out = format!("{out}?{}", params.join("&"));
    }
    out
}

impl Config {
    pub fn load(path: Option<&Path>, data: Option<PathBuf>) -> Result<Config, String> {
        let file = match path {
            Some(p) => read(p)?,
            None if Path::new("tsunagu.toml").exists() => read(Path::new("tsunagu.toml"))?,
            None => File::default(),
        };
        let sync = match std::env::var("TSUNAGU_SYNC").ok().or(file.sync).as_deref().unwrap_or("full") {
            "full" => SyncMode::Full,
            "normal" => SyncMode::Normal,
            other => return Err(format!("sync must be \"full\" or \"normal\", not \"{other}\"")),
        };
        let validate = match std::env::var("TSUNAGU_VALIDATE").ok().or(file.validate).as_deref().unwrap_or("base") {
            "off" => Validate::Off,
            "base" => Validate::Base,
            "declared" => Validate::Declared,
            v => return Err(format!("validate must be \"off\", \"base\" or \"declared\", not \"{v}\"")),
        };
        let mut limits = file.limits;
        let body_env = match std::env::var("TSUNAGU_MAX_BODY_BYTES") {
            Ok(v) => Some(v.parse().map_err(|_| format!("TSUNAGU_MAX_BODY_BYTES must be a number, not \"{v}\""))?),
            Err(_) => None,
        };
        if let Some(n) = body_env.or(file.max_body_bytes) {
            limits.max_body_bytes = n;
        }
        let auth = match std::env::var("TSUNAGU_AUTH").ok().or(file.auth).as_deref().unwrap_or("on") {
            "on" => AuthMode::On,
            "off" => AuthMode::Off,
            v => return Err(format!("auth must be \"on\" or \"off\", not \"{v}\"")),
        };
        let mut auth_settings = tsunagu_auth::AuthSettings { roles: file.roles, ..Default::default() };
        if let Some(t) = file.token_lifetime_secs {
            if !(30..=3600).contains(&t) {
                return Err(format!("token_lifetime_secs must be between 30 and 3600, not {t}"));
            }
            auth_settings.token_lifetime_secs = t;
        }
        for idp in file.identity_provider {
            auth_settings.external.push(idp.into_issuer(file.base_url.as_deref())?);
        }
        tsunagu_auth::RoleScopes::new(&auth_settings.roles).map_err(|e| format!("roles: {e}"))?;
        let tls = match (file.tls_cert, file.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: file.tls_client_ca,
                min_version: tls_version(file.tls_min_version.as_deref())?,
            }),
            (None, None) if file.tls_client_ca.is_none() => None,
            _ => return Err("TLS needs both tls_cert and tls_key (and tls_client_ca only with them)".into()),
        };
        let data = data.or(file.data).unwrap_or_else(|| PathBuf::from("tsunagu-data"));
        let mut export = tsunagu_interaction::ExportConfig::new(data.join("export"));
        let e = file.export;
        if let Some(n) = e.max_file_bytes {
            if n < 1024 {
                return Err(format!("export.max_file_bytes must be at least 1024, not {n}"));
            }
            export.max_file_bytes = n;
        }
        if let Some(h) = e.retention_hours {
            export.retention_secs = h.saturating_mul(3600);
        }
        if let Some(n) = e.max_running_jobs {
            export.max_running_jobs = n.max(1);
        }
        if let Some(n) = e.page_size {
            export.page_size = n.clamp(10, 10_000);
        }
        for (name, p) in e.deidentify {
            export.policies.push(p.policy(&name)?);
        }
        let database = std::env::var("TSUNAGU_DATABASE").ok().or(file.database).filter(|u| !u.is_empty());
        if database.is_none() && !file.read_replicas.is_empty() {
            return Err("read_replicas need database = \"postgres://…\"".into());
        }
        let database = database.map(|url| Database::new(url, file.read_replicas)).transpose()?;
        Ok(Config {
            database,
            export,
            auth,
            auth_settings,
            tls,
            audit_flush_ms: file.audit_flush_ms.unwrap_or(100).clamp(1, 10_000),
            hpki: file.hpki,
            retention: tsunagu_interaction::clins::Retention {
                days: file.retention_days,
                lts_days: file.lts_retention_days,
            },
            consent_default_allow: match file.consent_default.as_deref() {
                None | Some("deny") => false,
                Some("allow") => true,
                Some(other) => return Err(format!("consent_default must be \"deny\" or \"allow\", not \"{other}\"")),
            },
            data,
            listen: file.listen,
            base_url: file.base_url,
            sync,
            packages: file.packages,
            required_profiles: file.required_profiles,
            extension_domains: file.extension_domains,
            validate,
            allowed_hosts: file.allowed_hosts,
            cors_origins: file.cors_origins,
            limits,
        })
    }

    /// The defaults, over `data` (for tools that make a throwaway directory).
    pub fn defaults(data: PathBuf) -> Config {
        Config {
            database: None,
            export: tsunagu_interaction::ExportConfig::new(data.join("export")),
            data,
            listen: None,
            base_url: None,
            sync: SyncMode::Full,
            packages: Vec::new(),
            validate: Validate::Base,
            required_profiles: Default::default(),
            extension_domains: None,
            allowed_hosts: None,
            cors_origins: Vec::new(),
            limits: Limits::default(),
            auth: AuthMode::On,
            auth_settings: Default::default(),
            tls: None,
            audit_flush_ms: 100,
            consent_default_allow: false,
            hpki: HpkiConfig::default(),
            retention: Default::default(),
        }
    }

    /// The base URL clients use: configured, or `http(s)://localhost:PORT` for a loopback
    /// listen address. Also the issuer and audience of access tokens, so `tsunagu token`
    /// and `serve` must agree on it.
    pub fn base_url_for(&self, listen: &str, flag: Option<String>) -> Result<String, String> {
        let addr: std::net::SocketAddr =
            listen.parse().map_err(|_| format!("listen must be an IP address and port, not \"{listen}\""))?;
        match flag.or(self.base_url.clone()) {
            Some(b) => Ok(b.trim_end_matches('/').to_string()),
            None if addr.ip().is_loopback() => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                Ok(format!("{scheme}://localhost:{}", addr.port()))
            }
            // Links in every answer are built from it; taking it from a client's Host would
            // let the client choose them.
            None => Err(format!("listening on {listen} needs a base URL: set base_url or --base-url")),
        }
    }

    /// The configured listen address, or the default.
    pub fn listen_or_default(&self, flag: Option<String>) -> String {
        flag.or(self.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".into())
    }
}

fn tls_version(v: Option<&str>) -> Result<tsunagu_tls::TlsVersion, String> {
    match v.unwrap_or("1.3") {
        "1.3" => Ok(tsunagu_tls::TlsVersion::Tls13),
        "1.2" => Ok(tsunagu_tls::TlsVersion::Tls12),
        v => Err(format!("tls_min_version must be \"1.3\" or \"1.2\", not \"{v}\"")),
    }
}

impl IdentityProviderFile {
    fn into_issuer(self, base_url: Option<&str>) -> Result<tsunagu_auth::ExternalIssuer, String> {
        let text = std::fs::read_to_string(&self.jwks_file)
            .map_err(|e| format!("identity provider {}: {}: {e}", self.issuer, self.jwks_file.display()))?;
        let jwks: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a JWKS: {e}", self.jwks_file.display()))?;
        let audience = self
            .audience
            .or(base_url.map(str::to_string))
            .ok_or_else(|| format!("identity provider {}: set audience (or base_url)", self.issuer))?;
        let mut idp = tsunagu_auth::ExternalIssuer::new(&self.issuer, &audience, jwks);
        if let Some(c) = self.scope_claim {
            idp.scope_claim = c;
        }
        if let Some(c) = self.role_claim {
            idp.role_claim = c;
        }
        if let Some(c) = self.patient_claim {
            idp.patient_claim = c;
        }
        if let Some(r) = self.default_role {
            idp.default_role = Some(r.parse().map_err(|e| format!("identity provider {}: {e}", self.issuer))?);
        }
        Ok(idp)
    }
}

fn read(p: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn database_passwords_never_reach_messages() {
        assert_eq!(super::redacted("postgres://u:secret@db/x"), "postgres://u:***@db/x");
        assert_eq!(
            super::redacted("postgres://u@db/x?sslmode=disable&password=s"),
            "postgres://u@db/x?sslmode=disable&password=***"
        );
        assert_eq!(super::redacted("host=db password=s dbname=x"), "host=db password=*** dbname=x");
        assert!(super::Database::new("mysql://db".into(), vec![]).is_err());
        assert!(super::Database::new("postgres://db/x".into(), vec!["host=r dbname=x".into()]).is_ok());
    }

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tsunagu.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), Some(dir.path().join("data")))
    }

    #[test]
    fn deidentification_policies_from_the_file() {
        let cfg = load(
            "[export.deidentify.cohort]\ndates = \"year\"\npostal_prefix_digits = 2\nstable_across_exports = true\n",
        )
        .unwrap();
        let p = &cfg.export.policies[0];
        assert_eq!(p.name, "cohort");
        assert_eq!(p.dates, tsunagu_deid::DateRule::Year);
        assert_eq!((p.postal_prefix_digits, p.stable_across_exports, p.max_age_years), (2, true, 89));
        for bad in [
            "[export.deidentify.default]\n",
            "[export.deidentify.x]\ndates = \"month\"\n",
            "[export.deidentify.x]\nshift_days = 0\n",
            "[export.deidentify.x]\ndates = \"year\"\nshift_days = 3\n",
            "[export.deidentify.x]\nnames = \"keep\"\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }
}
