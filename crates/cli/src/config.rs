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
    /// Host names the server answers to (default: the base URL's host).
    allowed_hosts: Option<Vec<String>>,
    /// Browser origins allowed to call the API (CORS); none by default.
    #[serde(default)]
    cors_origins: Vec<String>,
    #[serde(default)]
    limits: Limits,
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
    pub listen: Option<String>,
    pub base_url: Option<String>,
    pub sync: SyncMode,
    pub packages: Vec<PathBuf>,
    pub validate: Validate,
    pub required_profiles: std::collections::HashMap<String, String>,
    /// `None`: derived from the base URL.
    pub allowed_hosts: Option<Vec<String>>,
    pub cors_origins: Vec<String>,
    pub limits: Limits,
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
        Ok(Config {
            data: data.or(file.data).unwrap_or_else(|| PathBuf::from("tsunagu-data")),
            listen: file.listen,
            base_url: file.base_url,
            sync,
            packages: file.packages,
            required_profiles: file.required_profiles,
            validate,
            allowed_hosts: file.allowed_hosts,
            cors_origins: file.cors_origins,
            limits,
        })
    }

    /// The defaults, over `data` (for tools that make a throwaway directory).
    pub fn defaults(data: PathBuf) -> Config {
        Config {
            data,
            listen: None,
            base_url: None,
            sync: SyncMode::Full,
            packages: Vec::new(),
            validate: Validate::Base,
            required_profiles: Default::default(),
            allowed_hosts: None,
            cors_origins: Vec::new(),
            limits: Limits::default(),
        }
    }
}

fn read(p: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}
