//! `tsunagu package install FILE.tgz…` and `tsunagu package list`: FHIR packages become
//! part of the server. An installed package is copied into `<data>/packages/` (which is
//! what the server loads at start for validation, terminology and search parameters) and
//! its conformance resources (StructureDefinition, ValueSet, CodeSystem, ConceptMap,
//! NamingSystem, SearchParameter, Questionnaire) are written to the store, so clients read and search
//! them through the REST API like any resource. Packages named in the configuration are
//! installed the same way when the server starts, once.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use tsunagu_validation::{ConformanceKind, PackageSet};

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

/// The file an installed package is kept as: `<name>#<version>.tgz`, a scoped name's
/// separator written `%2F` as the npm registry writes it (`@scope%2Fname#1.0.0.tgz`).
/// Package names and versions were checked against the npm grammar when the package was
/// read; [`destination`] checks the result again.
fn installed_name(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, bare)) => format!("@{scope}%2F{bare}"),
        None => name.to_owned(),
    };
    format!("{name}#{version}.tgz")
}

/// The path a package is installed at: [`installed_name`] in `dir` (created if missing),
/// proved to be a plain file directly inside it. Anything else is refused, so that no
/// package name or version can place a file elsewhere.
fn destination(dir: &Path, name: &str, version: &str) -> Result<PathBuf, String> {
    let file = installed_name(name, version);
    let refuse = |why: String| format!("package {name:?} version {version:?} cannot be installed: {why}");
    let mut parts = Path::new(&file).components();
    let plain = matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None));
    if !plain || file.contains(['/', '\\', '\0']) {
        return Err(refuse(format!("{file:?} is not a plain file name")));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let canonical = dir.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let dest = canonical.join(&file);
    let parent = dest.parent().map(Path::canonicalize).transpose().map_err(|e| refuse(e.to_string()))?;
    if parent.as_deref() != Some(canonical.as_path()) || dest.file_name() != Some(OsStr::new(&file)) {
        return Err(refuse(format!("{} is not inside {}", dest.display(), canonical.display())));
    }
    Ok(dest)
}

/// Copies `from` to `dest` through a temporary file in the same directory, renamed into
/// place once complete: a failed copy leaves no partial package behind. The temporary
/// name does not end in `.tgz`, so [`installed`] never lists it.
fn copy_into_place(from: &Path, dest: &Path) -> Result<(), String> {
    let dir = dest.parent().ok_or_else(|| format!("{} has no directory", dest.display()))?;
    let fail = |e: std::io::Error| format!("cannot install {} as {}: {e}", from.display(), dest.display());
    let mut tmp = tempfile::Builder::new().prefix(".installing-").suffix(".part").tempfile_in(dir).map_err(fail)?;
    let mut src = std::fs::File::open(from).map_err(fail)?;
    std::io::copy(&mut src, tmp.as_file_mut()).map_err(fail)?;
    tmp.as_file_mut().flush().map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(dest).map_err(|e| fail(e.error))?;
    Ok(())
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
        // Where it goes is settled (and checked) before anything is stored.
        let dest = destination(&package_dir(&cfg.data), &info.name, &info.version)
            .map_err(|e| format!("{}: {e}", f.display()))?;
        if !dest.exists() {
            fresh.push((f.clone(), info, dest));
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
    for (file, info, dest) in &fresh {
        let mut staged = Vec::new();
        let mut refused = Vec::new();
        let mut defects = Vec::new();
        for kind in ConformanceKind::ALL {
            for r in set.from_package(&info.name, kind) {
                let mut r = Value::clone(r);
                // A few published resources have no id or one longer than FHIR allows.
                if r.get("id").and_then(Value::as_str).is_none_or(|id| id.len() > 64) {
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
        copy_into_place(file, dest)?;
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
            p.file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".tgz").replacen("%2F", "/", 1))
                .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_names() {
        assert_eq!(installed_name("hl7.fhir.r4.core", "4.0.1"), "hl7.fhir.r4.core#4.0.1.tgz");
        assert_eq!(installed_name("@scope/name", "1.0.0"), "@scope%2Fname#1.0.0.tgz");
    }

    #[test]
    fn destination_is_a_file_directly_in_the_package_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data/packages");
        let dest = destination(&dir, "jp-core.r4", "1.1.2").unwrap();
        assert_eq!(dest, dir.canonicalize().unwrap().join("jp-core.r4#1.1.2.tgz"));
        assert!(destination(&dir, "@scope/name", "1.0.0").is_ok());
    }

    /// The check does not rely on the name grammar: names and versions that would leave
    /// the directory are refused here too.
    #[test]
    fn destination_refuses_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("packages");
        let outside = tmp.path().join("x");
        for (name, version) in [
            ("../../x", "0.1.0"),
            ("../x", "0.1.0"),
            (outside.to_str().unwrap(), "0.1.0"),
            ("a/b", "0.1.0"),
            ("@scope/../x", "0.1.0"),
            ("x", "1.0/../../y"),
            ("x", "../1"),
            ("..\\x", "0.1.0"),
            ("a\0b", "0.1.0"),
        ] {
            let err = destination(&dir, name, version).expect_err(name);
            assert!(err.contains("cannot be installed"), "{err}");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing was created");
    }

    #[test]
    fn copy_into_place_leaves_no_partial_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("p#1.0.0.tgz");
        let err = copy_into_place(&tmp.path().join("missing.tgz"), &dest).unwrap_err();
        assert!(err.contains("missing.tgz"), "{err}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        std::fs::write(tmp.path().join("src.tgz"), b"bytes").unwrap();
        copy_into_place(&tmp.path().join("src.tgz"), &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"bytes");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    }
}
