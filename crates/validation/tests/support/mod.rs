//! Shared test fixtures: the packages and examples are read from `$TSUNAGU_SHARED`
//! (default `../shared` beside the workspace) and never copied into the repository.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use tsunagu_validation::{PackageSet, Validator};

pub fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("TSUNAGU_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// The R4 core, JP Core (URL edition, the one JP-CLINS builds on), JP-CLINS and the
/// eCheckupReport IG.
pub const PACKAGES: &[&str] = &[
    "fhir/hl7.fhir.r4.core-4.0.1.tgz",
    "jp/jp-core.r4-1.1.2-url.tgz",
    "jp/jp-clins.r4-1.5.2-snap.tgz",
    "jp/jp-eCheckupReport.r4.tgz",
];

pub fn load_packages() -> Option<PackageSet> {
    let dir = shared()?;
    let mut set = PackageSet::new();
    for p in PACKAGES {
        let path = dir.join(p);
        if !path.is_file() {
            return None;
        }
        set.load_tgz(&path).expect("package loads");
    }
    Some(set)
}

/// One validator for all tests in a binary: loading the core package takes a while.
pub fn validator() -> Option<&'static Validator> {
    static V: OnceLock<Option<Validator>> = OnceLock::new();
    V.get_or_init(|| load_packages().map(Validator::new)).as_ref()
}

pub fn clins_examples() -> Option<Vec<(String, Value)>> {
    let dir = shared()?.join("jp/clins-examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).ok()?;
            let name = path.file_name()?.to_string_lossy().into_owned();
            out.push((name, serde_json::from_str(&text).ok()?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}
