//! Shared test fixtures: the packages and examples are read from `$TSUNAGU_SHARED`
//! (default `../shared` beside the workspace) and never copied into the repository.
//! Each fixture is `None` when its data is absent, after `tsunagu_reference` has printed a
//! SKIP line (or panicked, under `CI=true`); a test then simply returns.

#![allow(dead_code)]

pub mod mutate;
pub mod slices;
pub mod strip;

use std::sync::OnceLock;

use serde_json::Value;
use tsunagu_validation::{PackageSet, Validator};

/// The R4 core, JP Core (URL edition, the one JP-CLINS builds on), JP-CLINS and the
/// eCheckupReport IG.
pub const PACKAGES: &[&str] = &[
    "fhir/hl7.fhir.r4.core-4.0.1.tgz",
    "jp/jp-core.r4-1.1.2-url.tgz",
    "jp/jp-clins.r4-1.5.2-snap.tgz",
    "jp/jp-eCheckupReport.r4.tgz",
];

pub fn load_packages() -> Option<PackageSet> {
    let mut set = PackageSet::new();
    for p in PACKAGES {
        let path = tsunagu_reference::find(p)?;
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
    let dir = tsunagu_reference::find("jp/clins-examples")?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// Every JSON file directly under `package/` (or `package/example/`) of the .tgz at
/// `relative` in the shared data, by name.
pub fn tgz_json(relative: &str, folder: &str) -> Option<Vec<(String, Value)>> {
    use std::io::Read;
    let path = tsunagu_reference::find(relative)?;
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let Some(file) = name.strip_prefix(folder) else { continue };
        if file.contains('/') || !file.ends_with(".json") || file == "package.json" || file.starts_with('.') {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        out.push((file.to_owned(), serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// The R4 core package alone, as the base specification.
pub fn core_validator() -> Option<&'static Validator> {
    static V: OnceLock<Option<Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let path = tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz")?;
        let mut set = PackageSet::new();
        set.load_tgz(&path).expect("package loads");
        Some(Validator::new(set))
    })
    .as_ref()
}

/// A message with its particulars (URLs, codes, numbers, quoted names, locations) blanked,
/// so that issues of the same kind count together.
pub fn message_kind(message: &str) -> String {
    // Constraint failures are told apart by their key.
    if let Some(rest) = message.strip_prefix("Constraint failed: ") {
        return format!("Constraint failed: {}", rest.split(':').next().unwrap_or(""));
    }
    let mut out = Vec::new();
    for word in message.split_whitespace() {
        let particular = word.contains(['/', '#', '\'', '"', '{', '[', '|'])
            || word.chars().any(|c| c.is_ascii_digit())
            || word.contains('.') && word.len() > 3 && !word.ends_with('.');
        out.push(if particular { "…" } else { word });
    }
    out.dedup_by(|a, b| *a == "…" && *b == "…");
    out.join(" ")
}
