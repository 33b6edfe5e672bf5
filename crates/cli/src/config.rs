//! Configuration: command-line flags and environment variables override `tsunagu.toml`,
//! which overrides the defaults.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    listen: Option<String>,
    base_url: Option<String>,
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
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub listen: Option<String>,
    pub base_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub sync: String,
    pub packages: Vec<PathBuf>,
    pub validate: String,
    pub required_profiles: std::collections::HashMap<String, String>,
}

impl Config {
    pub fn load(path: Option<&Path>, data: Option<PathBuf>) -> Result<Config, String> {
        let file = match path {
            Some(p) => read(p)?,
            None if Path::new("tsunagu.toml").exists() => read(Path::new("tsunagu.toml"))?,
            None => File::default(),
        };
        let sync = std::env::var("TSUNAGU_SYNC").ok().or(file.sync).unwrap_or_else(|| "full".into());
        if sync != "full" && sync != "normal" {
            return Err(format!("sync must be \"full\" or \"normal\", not \"{sync}\""));
        }
        Ok(Config {
            data: data.or(file.data).unwrap_or_else(|| PathBuf::from("tsunagu-data")),
            listen: file.listen,
            base_url: file.base_url,
            max_body_bytes: std::env::var("TSUNAGU_MAX_BODY_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .or(file.max_body_bytes),
            sync,
            packages: file.packages,
            required_profiles: file.required_profiles,
            validate: match std::env::var("TSUNAGU_VALIDATE").ok().or(file.validate).unwrap_or_else(|| "base".into()) {
                v if ["off", "base", "declared"].contains(&v.as_str()) => v,
                v => return Err(format!("validate must be \"off\", \"base\" or \"declared\", not \"{v}\"")),
            },
        })
    }

    pub fn sync_mode(&self) -> tsunagu_store::SyncMode {
        if self.sync == "normal" {
            tsunagu_store::SyncMode::Normal
        } else {
            tsunagu_store::SyncMode::Full
        }
    }
}

fn read(p: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}
