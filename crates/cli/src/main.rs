//! `tsunagu`, the one binary: serve the FHIR API, bulk-import data, and the tools around
//! them. This crate only parses the command line and configuration and wires the crates
//! below together; it holds no FHIR logic of its own.

mod audit_cmd;
mod auth_cmd;
mod backup_cmd;
mod bench;
mod bench_auth;
mod bench_backup;
mod bench_clins;
mod bench_export;
mod bench_read;
mod bench_search;
mod bench_shapes;
mod bench_tx;
mod check_cmd;
mod config;
mod explain_cmd;
mod fhirpath_cmd;
mod import;
mod jp_cmd;
mod package_cmd;
mod reindex_cmd;
mod terminology_cmd;
mod validate_cmd;
mod view_cmd;

use clap::{Parser, Subcommand};

// glibc malloc spent half of the import time in cross-thread frees (JSON values are built
// by staging workers and dropped by the writer); mimalloc handles that pattern well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::sync::Arc;
use tsunagu_validation::Validator;

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas
/// and gives idle memory back after a short delay, so a server that builds and drops a
/// Bundle's worth of JSON per request faulted in (and zeroed) whole 2 MiB pages again and
/// again: 8% of a transaction's CPU time. With 4 KiB pages, transactions ran 15% faster
/// and imports no slower. Same as `MIMALLOC_ALLOW_THP=0`, which must be set before start.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of the calling process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[derive(Parser)]
#[command(name = "tsunagu", version, about = "FHIR R4 server and tools for Japan's health-information platform")]
struct Cli {
    /// Configuration file (TOML). Defaults to ./tsunagu.toml when it exists.
    #[arg(long, global = true, env = "TSUNAGU_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, global = true, env = "TSUNAGU_DATA")]
    data: Option<PathBuf>,
    /// Store resources in PostgreSQL (`postgres://user@host/db`) instead of the embedded
    /// SQLite database (the data directory still holds keys, packages and export files).
    #[arg(long, global = true, env = "TSUNAGU_DATABASE")]
    database: Option<String>,
    /// A PostgreSQL streaming replica of `--database` for reads and searches (repeatable).
    #[arg(long = "read-replica", global = true)]
    read_replicas: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FHIR REST API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TSUNAGU_LISTEN")]
        listen: Option<String>,
        /// Base URL clients use; every link the server writes starts with it (default:
        /// http://localhost:PORT when listening on a loopback address, required otherwise).
        #[arg(long, env = "TSUNAGU_BASE_URL")]
        base_url: Option<String>,
        /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS only.
        #[arg(long, env = "TSUNAGU_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, env = "TSUNAGU_TLS_KEY")]
        tls_key: Option<PathBuf>,
        /// Roots for optional TLS client certificates (which identify registered clients).
        #[arg(long, env = "TSUNAGU_TLS_CLIENT_CA")]
        tls_client_ca: Option<PathBuf>,
    },
    /// Prints a short-lived access token signed with the server's key (operator tool; reads
    /// the data directory).
    Token {
        /// SMART scopes, e.g. 'system/*.cruds'.
        #[arg(long)]
        scope: String,
        /// Bind patient/ scopes to this patient (Patient/ID or ID).
        #[arg(long)]
        patient: Option<String>,
        /// Act for this institution (10-digit 医療機関コード): JP-CLINS submissions.
        #[arg(long)]
        institution: Option<String>,
        /// The server's base URL, if it is not the configured one.
        #[arg(long, env = "TSUNAGU_BASE_URL")]
        base_url: Option<String>,
    },
    /// Registered clients: `add`, `list`, `disable`.
    Client {
        #[command(subcommand)]
        action: auth_cmd::ClientAction,
    },
    /// People who sign in: `add`, `list`, `disable`, `reset-totp`.
    User {
        #[command(subcommand)]
        action: auth_cmd::UserAction,
    },
    /// The server's token-signing keys: `rotate`.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Deterministic Japanese synthetic data as JP-CLINS Bundles (information Bundles,
    /// referral letters, discharge summaries, checkup reports), one NDJSON file per kind.
    Synth {
        #[arg(long, default_value_t = 100)]
        patients: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// JP-CLINS: `purge` deletes what the retention periods no longer keep (the server
    /// also runs it every hour when `retention_days` or `lts_retention_days` is set).
    Clins {
        #[command(subcommand)]
        action: jp_cmd::ClinsAction,
    },
    /// HPKI signatures: `verify` checks a signed document Bundle.
    Hpki {
        #[command(subcommand)]
        action: jp_cmd::HpkiAction,
    },
    /// The audit trail: `verify` walks its hash chain (exit 1 when it is broken).
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Load Bundles (transaction, batch, collection), resources and NDJSON files, from
    /// files, directories or .tar.zst archives.
    Import {
        /// Files, directories or .tar.zst archives to load.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Skip the base-structure check (trusted data only).
        #[arg(long)]
        no_check: bool,
    },
    /// Shows how the store answers one search page: the plan taken (sort walk, driven
    /// index, general SQL), what came back and the time, and each statement's plan
    /// (SQLite: EXPLAIN QUERY PLAN, the estimate, steps and rows examined; PostgreSQL:
    /// EXPLAIN (ANALYZE, BUFFERS) with estimated and actual rows). E.g.
    /// `tsunagu explain 'Observation?code=http://loinc.org|8302-2&_sort=date'`.
    Explain {
        /// The search: `Type?params` (or `?params` for a system-level search).
        search: String,
        /// Run without the search ceiling (`max_search_steps` on SQLite, `max_search_ms` on
        /// PostgreSQL): see what the page would cost.
        #[arg(long)]
        no_ceiling: bool,
    },
    /// Rebuild every search index from the stored resources (resumable: an interrupted
    /// run continues where it stopped unless --restart is given).
    Reindex {
        #[arg(long)]
        restart: bool,
        /// Resources per transaction.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
    /// Validate resources (JSON or XML) against the base specification, their declared
    /// profiles and the profiles named; exit 1 when there is an error.
    Validate {
        /// Resource files (JSON or XML).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Profile (canonical URL) to validate against; repeatable.
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// FHIR package (.tgz) to load; repeatable. Adds to `packages` in tsunagu.toml.
        #[arg(long = "package")]
        packages: Vec<std::path::PathBuf>,
    },
    /// SQL on FHIR views: `run VIEW.json [FILE…]` prints rows; `export VIEW.json… --to DIR`
    /// writes each view over the store as Parquet (or CSV/NDJSON/JSON).
    View {
        #[command(subcommand)]
        action: ViewAction,
    },
    /// Evaluate a FHIRPath expression on a resource (JSON or XML; FILE or - for stdin).
    Fhirpath {
        /// The FHIRPath expression (may start with `-`, as in `-1 + 2`).
        #[arg(allow_hyphen_values = true)]
        expression: String,
        /// The resource (JSON or XML); standard input when absent or `-`.
        file: Option<String>,
        /// Environment variable for the expression, as NAME=VALUE (a string); repeatable.
        #[arg(long = "var")]
        vars: Vec<String>,
        /// Strict mode: names the model does not know on typed nodes, and ordered
        /// functions on unordered collections (`children().first()`), are errors.
        #[arg(long)]
        strict: bool,
    },
    /// Benchmarks of the hot paths (build with --release for meaningful figures).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// FHIR packages: `install FILE.tgz…` stores their conformance resources and loads
    /// them at every start; `list` shows what is installed.
    Package {
        #[command(subcommand)]
        action: PackageAction,
    },
    /// Japanese standard masters: `load --format medis|jlac10|hot|yj FILE` stores the master
    /// as a CodeSystem (and the MEDIS→ICD-10 ConceptMap).
    Terminology {
        #[command(subcommand)]
        action: terminology_cmd::TerminologyAction,
    },
    /// Encrypted, incremental backups: `backup --to DIR --recipient age1…`, and
    /// `backup keygen | verify | list | prune`.
    Backup(backup_cmd::BackupArgs),
    /// Rebuilds the data directory from a backup generation (search indexes included).
    Restore {
        /// Backup directory.
        #[arg(long)]
        from: PathBuf,
        /// Generation to restore (default: the newest).
        #[arg(long)]
        generation: Option<String>,
        /// age identity file (private key).
        #[arg(long)]
        identity: PathBuf,
        /// Move an existing data directory aside instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Find damage in the data directory: every stored version read back and checked
    /// (JSON, identity, base structure), the search indexes compared with a fresh
    /// extraction, SQLite's integrity check and the store's consistency check. Read-only
    /// (safe beside a running server); exit 1 when anything is wrong.
    Check {
        /// Skip the base-structure check of every version.
        #[arg(long)]
        no_content: bool,
        /// Problems printed (all are counted).
        #[arg(long, default_value_t = 100)]
        max_problems: usize,
        /// Directory for the temporary index rebuild (default: the system's temporary
        /// directory); needs room for a copy of the search indexes.
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// Ransomware drill: back up, scramble the data directory, restore, prove the content.
    Drill {
        /// Backup directory.
        #[arg(long)]
        to: PathBuf,
        /// age identity file (private key).
        #[arg(long)]
        identity: PathBuf,
        /// Confirms that the data directory may be scrambled (stop the server first).
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// A new signing key; the newest `keep` keys are kept (older tokens stop verifying).
    Rotate {
        #[arg(long, default_value_t = 2)]
        keep: usize,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Checks every record's hash and link; prints the head hash.
    Verify {
        /// The head hash an earlier verify printed (detects records cut from the end).
        #[arg(long)]
        expect_head: Option<String>,
    },
}

#[derive(Subcommand)]
enum ViewAction {
    /// Evaluate a ViewDefinition over resources in files (NDJSON, Bundles or single
    /// resources) or, without files, over the data directory.
    Run {
        /// The ViewDefinition (JSON).
        view: std::path::PathBuf,
        /// Resource files; the data directory when none.
        files: Vec<std::path::PathBuf>,
        /// json, ndjson, csv or parquet.
        #[arg(long, default_value = "json")]
        format: String,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Write each view over the whole store (or the files given with --file) into DIR/{name}/.
    Export {
        /// ViewDefinitions (JSON).
        #[arg(required = true)]
        views: Vec<std::path::PathBuf>,
        /// Resource files instead of the data directory; repeatable.
        #[arg(long = "file")]
        files: Vec<std::path::PathBuf>,
        /// Output directory.
        #[arg(long)]
        to: std::path::PathBuf,
        /// parquet (default), csv, ndjson or json.
        #[arg(long, default_value = "parquet")]
        format: String,
        /// Rows per Parquet file (0: one file).
        #[arg(long, default_value_t = 1_000_000)]
        max_rows: u64,
    },
}

#[derive(Subcommand)]
enum PackageAction {
    /// Check dependencies, copy the packages into <data>/packages/ and store their
    /// conformance resources (StructureDefinition, ValueSet, CodeSystem, …).
    Install {
        /// FHIR package files (.tgz).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the installed packages (name#version).
    List,
}

fn main() {
    without_transparent_huge_pages();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match config::Config::load(cli.config.as_deref(), cli.data)
        .and_then(|c| with_database_flags(c, cli.database, cli.read_replicas))
    {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    let result = match cli.command {
        Command::Serve { listen, base_url, tls_cert, tls_key, tls_client_ca } => {
            serve(cfg, listen, base_url, TlsFlags { cert: tls_cert, key: tls_key, client_ca: tls_client_ca })
        }
        Command::Token { scope, patient, institution, base_url } => {
            auth_cmd::token(&cfg, &scope, patient, institution, base_url)
        }
        Command::Client { action } => auth_cmd::client(&cfg, action),
        Command::User { action } => auth_cmd::user(&cfg, action),
        Command::Key { action: KeyAction::Rotate { keep } } => auth_cmd::rotate_key(&cfg, keep),
        Command::Audit { action: AuditAction::Verify { expect_head } } => {
            match audit_cmd::verify(&cfg, expect_head.as_deref()) {
                Ok(true) => Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => Err(e),
            }
        }
        Command::Synth { patients, seed, out } => jp_cmd::synth(patients, seed, &out),
        Command::Clins { action: jp_cmd::ClinsAction::Purge } => jp_cmd::purge(&cfg),
        Command::Hpki { action } => match jp_cmd::hpki(&cfg, action) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Import { paths, no_check } => import::run(&cfg, &paths, !no_check),
        Command::Bench { which } => bench::run(&cfg, which),
        Command::Validate { files, profiles, packages } => validate_cmd::run(&cfg, &files, &profiles, &packages),
        Command::Reindex { restart, batch } => reindex_cmd::run(&cfg, restart, batch.max(1)),
        Command::Explain { search, no_ceiling } => explain_cmd::run(&cfg, &search, no_ceiling),
        Command::View { action: ViewAction::Run { view, files, format, out } } => {
            view_cmd::run(&cfg, &view, &files, &format, out.as_deref())
        }
        Command::View { action: ViewAction::Export { views, files, to, format, max_rows } } => {
            view_cmd::export(&cfg, &views, &files, &to, &format, max_rows)
        }
        Command::Fhirpath { expression, file, vars, strict } => {
            fhirpath_cmd::run(&expression, file.as_deref(), &vars, strict)
        }
        Command::Package { action: PackageAction::Install { files } } => {
            package_cmd::install(&cfg, &files).map(|lines| lines.iter().for_each(|l| println!("{l}")))
        }
        Command::Package { action: PackageAction::List } => package_cmd::list(&cfg),
        Command::Terminology { action } => terminology_cmd::run(&cfg, action),
        Command::Backup(args) => backup_cmd::run(&cfg, args),
        Command::Restore { from, generation, identity, force } => {
            backup_cmd::restore(&cfg, &from, generation.as_deref(), &identity, force)
        }
        Command::Drill { to, identity, confirm } => backup_cmd::drill(&cfg, &to, &identity, confirm),
        Command::Check { no_content, max_problems, scratch } => {
            match check_cmd::run(&cfg, !no_content, max_problems, scratch.as_deref()) {
                Ok(true) => Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        fail(&e);
    }
}

/// `--database` and `--read-replica` over what the file and environment said.
fn with_database_flags(
    mut cfg: config::Config,
    database: Option<String>,
    replicas: Vec<String>,
) -> Result<config::Config, String> {
    let url = database.or_else(|| cfg.database.as_ref().map(|d| d.url.clone()));
    let replicas = if replicas.is_empty() { cfg.database.as_ref().map(|d| d.replicas.clone()) } else { Some(replicas) };
    cfg.database = match (url, replicas.unwrap_or_default()) {
        (Some(url), replicas) => Some(config::Database::new(url, replicas)?),
        (None, r) if r.is_empty() => None,
        (None, _) => return Err("--read-replica needs --database postgres://…".into()),
    };
    Ok(cfg)
}

/// How the configured PostgreSQL database is used: its replicas and the bounds on
/// connections from `[limits]`.
pub(crate) fn postgres_config(cfg: &config::Config, db: &config::Database) -> tsunagu_store_postgres::PostgresConfig {
    tsunagu_store_postgres::PostgresConfig {
        replicas: db.replicas.clone(),
        pool_size: cfg.limits.max_database_connections,
        max_connections: cfg.limits.max_database_connections,
        wait_ms: cfg.limits.database_wait_ms,
        ..tsunagu_store_postgres::PostgresConfig::new(&db.url)
    }
}

/// The configured store: PostgreSQL when a database URL is set, else the embedded SQLite
/// database in the data directory.
pub(crate) fn open_store(cfg: &config::Config) -> Result<Arc<dyn tsunagu_store::Store>, String> {
    match &cfg.database {
        Some(db) => {
            let store = tsunagu_store_postgres::PostgresStore::open(&postgres_config(cfg, db))
                .map_err(|e| format!("cannot open {}: {e}", config::redacted(&db.url)))?;
            Ok(Arc::new(store))
        }
        None => {
            let store = tsunagu_store::SqliteStore::open(&cfg.data, cfg.sync)
                .map_err(|e| format!("cannot open {}: {e}", cfg.data.display()))?;
            Ok(Arc::new(store))
        }
    }
}

/// Commands that read or write the SQLite file itself refuse a PostgreSQL configuration
/// rather than act on a data directory the server does not use.
pub(crate) fn sqlite_only(cfg: &config::Config, what: &str) -> Result<(), String> {
    match &cfg.database {
        Some(db) => {
            Err(format!("{what} works on the embedded SQLite store only, not yet on {}", config::redacted(&db.url)))
        }
        None => Ok(()),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("tsunagu: {msg}");
    std::process::exit(1);
}

/// Opens the store and builds the interaction layer as configured.
pub(crate) fn open(cfg: &config::Config, check: bool) -> Result<Arc<tsunagu_interaction::Interactions>, String> {
    open_with_validator(cfg, check).map(|(fhir, _)| fhir)
}

/// The validator of this configuration: its limits, extension domains and (for the
/// server) the terminology service behind the packages.
pub(crate) fn validator(
    cfg: &config::Config,
    packages: tsunagu_validation::PackageSet,
    terminology: Option<Arc<tsunagu_terminology::Terminology>>,
) -> Validator {
    let mut v = Validator::new(packages).with_max_issues(cfg.limits.max_issues);
    if let Some(t) = terminology {
        v = v.with_terminology(t);
    }
    if let Some(domains) = &cfg.extension_domains {
        v = v.with_extension_domains(domains.iter().cloned());
    }
    v
}

/// Opens the store and builds the interaction layer as configured. The configured
/// packages are loaded once: their SearchParameters join the search registry, and the
/// validator they make is returned (for `$validate`) and used on write when
/// `validate = "declared"`.
pub(crate) fn open_with_validator(
    cfg: &config::Config,
    check: bool,
) -> Result<(Arc<tsunagu_interaction::Interactions>, Option<Arc<tsunagu_validation::Validator>>), String> {
    use config::Validate;
    // One regex cache and one step limit per process (FHIRPath in invariants, patches, views).
    tsunagu_fhirpath::set_regex_limits(cfg.limits.max_regex_bytes, cfg.limits.regex_cache_bytes);
    tsunagu_fhirpath::set_step_limit(cfg.limits.max_fhirpath_steps);
    let store = open_store(cfg)?;
    let packages = package_cmd::load_packages(cfg, &cfg.packages)?;
    let terminology = Arc::new(tsunagu_terminology::Terminology::new(&packages).with_limits(&cfg.limits));
    let has_packages = !packages.packages().is_empty();
    // The validator shares the terminology service, so codes from masters and stored
    // CodeSystems are checked too.
    let validator = Arc::new(validator(cfg, packages, Some(terminology.clone())));
    let profiles =
        tsunagu_server::ProfileCheck { validator: validator.clone(), required: cfg.required_profiles.clone() };
    let wants_profiles = cfg.validate == Validate::Declared || !cfg.required_profiles.is_empty();
    let check: Arc<dyn tsunagu_interaction::ResourceCheck> = match (check, cfg.validate, has_packages) {
        (false, _, _) | (_, Validate::Off, _) => Arc::new(tsunagu_interaction::NoCheck),
        (true, _, true) if wants_profiles => Arc::new(profiles),
        (true, _, false) if !cfg.required_profiles.is_empty() => {
            return Err("required_profiles needs packages (configured or installed)".into())
        }
        (true, Validate::Declared, false) => {
            return Err("validate = \"declared\" needs packages (configured or installed)".into())
        }
        _ => Arc::new(tsunagu_server::StructureCheck { max_issues: cfg.limits.max_issues }),
    };
    let interaction_config = tsunagu_interaction::InteractionConfig {
        limits: cfg.limits.clone(),
        consent_default_allow: cfg.consent_default_allow,
        ..Default::default()
    };
    let mut fhir =
        tsunagu_interaction::Interactions::new(store, check, interaction_config).with_terminology(terminology);
    if has_packages {
        // JP-CLINS submissions are validated whatever `validate` says.
        let submissions = tsunagu_server::ProfileCheck { validator: validator.clone(), required: Default::default() };
        fhir = fhir.with_profile_validation(Arc::new(submissions));
    }
    if !cfg.hpki.trust_anchors.is_empty() {
        let trust = jp_cmd::trust_store(&cfg.hpki.trust_anchors, &cfg.hpki.crls)?;
        fhir = fhir.with_signature_check(Arc::new(tsunagu_server::HpkiCheck { trust, policy: cfg.hpki.policy() }));
    }
    let stored = fhir.load_stored_terminology().map_err(|e| e.message(Default::default()))?;
    tracing::debug!("{stored} stored terminology resources loaded");
    for sp in validator.packages().all(tsunagu_validation::ConformanceKind::SearchParameter) {
        // The core package's parameters are built in already.
        if sp.get("url").and_then(serde_json::Value::as_str).is_some_and(|u| u.starts_with("http://hl7.org/fhir/")) {
            continue;
        }
        fhir.search_registry().add_search_parameter(sp).map_err(|e| e.to_string())?;
    }
    Ok((Arc::new(fhir), Some(validator)))
}

/// TLS files given on the command line (they replace the configured ones).
struct TlsFlags {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

/// How soon a node sees CodeSystems, ValueSets and ConceptMaps other nodes wrote.
const FOLLOW_OTHER_NODES_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

fn serve(
    mut cfg: config::Config,
    listen: Option<String>,
    base_url: Option<String>,
    tls: TlsFlags,
) -> Result<(), String> {
    match (tls.cert, tls.key) {
        (Some(cert), Some(key)) => {
            let min_version = cfg.tls.as_ref().map_or(tsunagu_tls::TlsVersion::Tls13, |t| t.min_version);
            let client_ca = tls.client_ca.or(cfg.tls.as_ref().and_then(|t| t.client_ca.clone()));
            cfg.tls = Some(config::TlsFiles { cert, key, client_ca, min_version });
        }
        (None, None) if tls.client_ca.is_none() => {}
        _ => return Err("--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into()),
    }
    let listen = cfg.listen_or_default(listen);
    let addr: std::net::SocketAddr =
        listen.parse().map_err(|_| format!("listen must be an IP address and port, not \"{listen}\""))?;
    let base_url = cfg.base_url_for(&listen, base_url)?;
    let authorization = match cfg.auth {
        config::AuthMode::Off if !addr.ip().is_loopback() => {
            return Err(format!(
                "auth = \"off\" is only accepted on a loopback address, not {listen}: anyone who can reach \
                 the port could read and change every record"
            ))
        }
        config::AuthMode::Off => {
            tracing::warn!("authorization is OFF: every request on {listen} may read and change every record");
            tsunagu_server::Authorization::Off
        }
        config::AuthMode::On => {
            let authority = tsunagu_auth::Authority::open(&cfg.data.join("auth"), &base_url, cfg.auth_settings.clone())
                .map_err(|e| format!("authorization: {e}"))?;
            tsunagu_server::Authorization::Required(Arc::new(authority))
        }
    };
    let tls = match &cfg.tls {
        Some(t) => {
            let settings = tsunagu_tls::TlsSettings {
                cert: t.cert.clone(),
                key: t.key.clone(),
                client_ca: t.client_ca.clone(),
                min_version: t.min_version,
            };
            Some(tsunagu_tls::TlsAcceptor::from_settings(&settings).map_err(|e| format!("TLS: {e}"))?)
        }
        None => None,
    };
    // Configured packages are installed (stored, copied) once; `$validate`, terminology and
    // search then use every installed package (base structure only when there are none).
    package_cmd::install_configured(&cfg)?;
    let (fhir, _) = open_with_validator(&cfg, true)?;
    if cfg.database.is_some() {
        // Other nodes may write terminology resources to the shared database.
        fhir.follow_other_nodes(FOLLOW_OTHER_NODES_EVERY);
    }
    jp_cmd::spawn_purge(fhir.clone(), cfg.retention);
    let mut server_cfg = tsunagu_server::ServerConfig::new(base_url.clone());
    if let Some(hosts) = &cfg.allowed_hosts {
        server_cfg.allowed_hosts = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    server_cfg.cors_origins = cfg.cors_origins.clone();
    server_cfg.limits = cfg.limits.clone();
    server_cfg.authorization = authorization;
    server_cfg.audit_flush = std::time::Duration::from_millis(cfg.audit_flush_ms);
    server_cfg.export = Some(cfg.export.clone());
    // Resources are walked recursively (structure check, FHIRPath) up to max_json_depth
    // levels; the default 2 MiB thread stack is too tight for that margin.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .map_err(|e| e.to_string())?;
    let limits = cfg.limits.clone();
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!("Tsunagu FHIR R4 server on {base_url} (listening on {listen}, data in {})", cfg.data.display());
        tsunagu_server::serve_tls(listener, tsunagu_server::router(fhir, server_cfg), &limits, tls)
            .await
            .map_err(|e| e.to_string())
    })
}
