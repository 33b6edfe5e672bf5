//! `tsunagu package install FILE.tgz…` and `tsunagu package list`: FHIR packages become
//! part of the server. An installed package is copied into `<data>/packages/` (which is
//! what the server loads at start for validation, terminology and search parameters) and
//! its conformance resources (StructureDefinition, ValueSet, CodeSystem, ConceptMap,
//! NamingSystem, SearchParameter) are written to the store, so clients read and search
//! them through the REST API like any resource. Packages named in the configuration are
//! installed the same way when the server starts, once.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tsunagu_validation::{ConformanceKind, PackageInfo, PackageSet};

/// Where installed packages live.
pub fn package_dir(data: &Path) -> PathBuf {
    data.join("packages")
}

/// The installed packages' files, in name order (stable load order).
pub fn installed(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(package_dir(data))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    files.sort();
    files
}

fn installed_name(info: &PackageInfo) -> String {
    format!("{}#{}.tgz", info.name, info.version)
}

/// Installs packages: dependency check against what is installed, copy, then one bulk
/// write of their conformance resources. Returns one summary line per package.
pub fn install(cfg: &crate::config::Config, files: &[PathBuf]) -> Result<Vec<String>, String> {
    let mut set = PackageSet::new();
    for p in installed(&cfg.data) {
        set.load_tgz(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let mut fresh = Vec::new();
    for f in files {
        let info = set.load_tgz(f).map_err(|e| format!("{}: {e}", f.display()))?.clone();
        if !package_dir(&cfg.data).join(installed_name(&info)).exists() {
            fresh.push((f.clone(), info));
        }
    }
    set.check_dependencies().map_err(|e| e.to_string())?;
    if fresh.is_empty() {
        return Ok(vec!["already installed".into()]);
    }
    // Published packages are stored as published, even where they break the base rules
    // (some JP Core profiles carry empty `comment` strings): the profiles are in use either
    // way, so they must be readable. Their defects are reported, not hidden.
    let fhir = crate::open(cfg, false)?;
    let mut lines = Vec::new();
    for (file, info) in &fresh {
        let mut staged = Vec::new();
        let mut refused = Vec::new();
        let mut defects = Vec::new();
        for kind in ConformanceKind::ALL {
            for r in set.from_package(&info.name, kind) {
                let mut r = Value::clone(r);
                // A few published resources have no id or one longer than FHIR allows.
                if !r.get("id").and_then(Value::as_str).is_some_and(|id| id.len() <= 64) {
                    let id = canonical_id(&r);
                    r["id"] = Value::String(id);
                }
                let label = format!("{}/{}", kind.as_str(), r["id"].as_str().unwrap_or(""));
                let errors: Vec<_> = tsunagu_format::check_structure(&r)
                    .into_iter()
                    .filter(|i| i.severity == tsunagu_format::Severity::Error)
                    .collect();
                if let Some(first) = errors.first() {
                    defects.push(format!(
                        "{label}: {} error(s), e.g. {}: {}",
                        errors.len(),
                        first.location,
                        first.message_en
                    ));
                }
                match fhir.stage(r) {
                    Ok(s) => staged.extend(s),
                    Err(e) => refused.push(format!("{label}: {}", e.message(Default::default()))),
                }
            }
        }
        let n = fhir.load(staged).map_err(|e| format!("{}: {}", info.name, e.message(Default::default())))?;
        std::fs::create_dir_all(package_dir(&cfg.data)).map_err(|e| e.to_string())?;
        std::fs::copy(file, package_dir(&cfg.data).join(installed_name(info))).map_err(|e| e.to_string())?;
        lines.push(format!("{}#{}: {n} conformance resources stored", info.name, info.version));
        for r in refused {
            lines.push(format!("  not stored: {r}"));
        }
        for d in defects {
            lines.push(format!("  stored with defects: {d}"));
        }
    }
    Ok(lines)
}

/// An id for a resource without one: the last segment of its canonical URL, made valid.
pub(crate) fn canonical_id(r: &Value) -> String {
    let url = r.get("url").and_then(Value::as_str).unwrap_or("unnamed");
    let last = url.rsplit(['/', ':']).next().unwrap_or(url);
    let id: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .take(64)
        .collect();
    if id.is_empty() {
        "unnamed".into()
    } else {
        id
    }
}

/// Installs the packages named in the configuration that are not installed yet.
pub fn install_configured(cfg: &crate::config::Config) -> Result<(), String> {
    if cfg.packages.is_empty() {
        return Ok(());
    }
    for line in install(cfg, &cfg.packages)? {
        if line != "already installed" {
            tracing::info!("package {line}");
        }
    }
    Ok(())
}

pub fn list(cfg: &crate::config::Config) -> Result<(), String> {
    for p in installed(&cfg.data) {
        println!(
            "{}",
            p.file_name().map(|n| n.to_string_lossy().trim_end_matches(".tgz").to_string()).unwrap_or_default()
        );
    }
    Ok(())
}

/// The installed packages plus `extra` ones (configured, or named on the command line)
/// that are not installed, each loaded once; dependencies checked.
pub fn load_packages(cfg: &crate::config::Config, extra: &[PathBuf]) -> Result<PackageSet, String> {
    let mut set = PackageSet::new();
    for p in installed(&cfg.data) {
        set.load_tgz(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    for p in extra {
        // Read the manifest first: a configured package is usually installed already.
        let mut probe = PackageSet::new();
        let info = probe.load_tgz(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if set.packages().iter().any(|i| i.name == info.name && i.version == info.version) {
            continue;
        }
        set.load_tgz(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    set.check_dependencies().map_err(|e| e.to_string())?;
    Ok(set)
}
