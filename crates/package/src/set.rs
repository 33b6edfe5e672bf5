//! Conformance packages: npm-style `.tgz` archives (`package/package.json` plus one JSON
//! resource per file) loaded into one set, indexed by canonical URL.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::error::PackageError;

/// The kinds of conformance resource a [`PackageSet`] keeps; everything else in a package
/// (examples, ImplementationGuide, CapabilityStatement) is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConformanceKind {
    StructureDefinition,
    ValueSet,
    CodeSystem,
    SearchParameter,
    NamingSystem,
    ConceptMap,
}

impl ConformanceKind {
    pub const ALL: [ConformanceKind; 6] = [
        ConformanceKind::StructureDefinition,
        ConformanceKind::ValueSet,
        ConformanceKind::CodeSystem,
        ConformanceKind::SearchParameter,
        ConformanceKind::NamingSystem,
        ConformanceKind::ConceptMap,
    ];

    pub fn from_resource_type(rt: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == rt)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConformanceKind::StructureDefinition => "StructureDefinition",
            ConformanceKind::ValueSet => "ValueSet",
            ConformanceKind::CodeSystem => "CodeSystem",
            ConformanceKind::SearchParameter => "SearchParameter",
            ConformanceKind::NamingSystem => "NamingSystem",
            ConformanceKind::ConceptMap => "ConceptMap",
        }
    }
}

/// What a package's manifest says, and how many resources of each kind it brought.
#[derive(Debug, Clone)]
pub struct PackageInfo {
    pub name: String,
    pub version: String,
    pub canonical: Option<String>,
    /// `(name, version)` pairs from `dependencies`.
    pub dependencies: Vec<(String, String)>,
    pub counts: BTreeMap<ConformanceKind, usize>,
}

/// A set of loaded packages. Resources are indexed by `url` and by `url|version`; when two
/// packages define the same canonical, the one loaded last wins the unversioned key.
#[derive(Default)]
pub struct PackageSet {
    packages: Vec<PackageInfo>,
    /// Resources by kind, each with the index of the package that brought it
    /// (`usize::MAX` when inserted directly).
    resources: FxHashMap<ConformanceKind, Vec<(usize, Arc<Value>)>>,
    index: FxHashMap<ConformanceKind, FxHashMap<String, Arc<Value>>>,
}

impl PackageSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a `.tgz` package file.
    pub fn load_tgz(&mut self, path: &Path) -> Result<&PackageInfo, PackageError> {
        let file = std::fs::File::open(path).map_err(|source| PackageError::Io { path: path.to_path_buf(), source })?;
        self.load_tgz_reader(file, &path.display().to_string())
    }

    /// Loads a gzipped tar package from any reader; `origin` names it in errors.
    pub fn load_tgz_reader(&mut self, reader: impl Read, origin: &str) -> Result<&PackageInfo, PackageError> {
        let io_err = |source| PackageError::Io { path: origin.into(), source };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
        let mut manifest: Option<Value> = None;
        let mut found: Vec<(ConformanceKind, Value)> = Vec::new();
        let mut text = String::new();
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let name = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
            // Only files directly in package/: subfolders hold examples and tooling files.
            let Some(file) = name.strip_prefix("package/") else {
                continue;
            };
            if file.contains('/') || !file.ends_with(".json") || file.starts_with('.') {
                continue;
            }
            text.clear();
            entry.read_to_string(&mut text).map_err(io_err)?;
            if file == "package.json" {
                manifest = Some(parse(&text, origin, file)?);
                continue;
            }
            // Most files are examples; skip them without a full parse when the resource
            // type is visible near the start.
            if let Some(rt) = peek_resource_type(&text) {
                if ConformanceKind::from_resource_type(rt).is_none() {
                    continue;
                }
            }
            let value = parse(&text, origin, file)?;
            let kind = value.get("resourceType").and_then(Value::as_str).and_then(ConformanceKind::from_resource_type);
            if let Some(kind) = kind {
                found.push((kind, value));
            }
        }
        let manifest = manifest.ok_or_else(|| PackageError::NoManifest { origin: origin.into() })?;
        let text_of = |k: &str| manifest.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(version)) = (text_of("name"), text_of("version")) else {
            return Err(PackageError::NoManifest { origin: origin.into() });
        };
        let dependencies = manifest
            .get("dependencies")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
            .unwrap_or_default();
        let mut counts = BTreeMap::new();
        let origin = self.packages.len();
        for (kind, value) in found {
            *counts.entry(kind).or_insert(0) += 1;
            self.insert_from(origin, kind, value);
        }
        self.packages.push(PackageInfo {
            name,
            version,
            canonical: text_of("canonical").or_else(|| text_of("url")),
            dependencies,
            counts,
        });
        Ok(self.packages.last().expect("just pushed"))
    }

    /// Adds one conformance resource (e.g. a StructureDefinition posted to the server).
    pub fn insert(&mut self, kind: ConformanceKind, value: Value) {
        self.insert_from(usize::MAX, kind, value);
    }

    fn insert_from(&mut self, origin: usize, kind: ConformanceKind, value: Value) {
        let value = Arc::new(value);
        let index = self.index.entry(kind).or_default();
        if let Some(url) = value.get("url").and_then(Value::as_str) {
            let version = value.get("version").and_then(Value::as_str);
            if let Some(v) = version {
                index.insert(format!("{url}|{v}"), value.clone());
            }
            // Two packages may carry the same canonical (JP-CLINS and eCheckupReport both
            // ship the document type-code system, with different codes): the unversioned
            // key names the highest version, as a versionless canonical means "latest".
            let current = index.get(url).and_then(|c| c.get("version")).and_then(Value::as_str);
            if newer_or_equal(version, current) {
                index.insert(url.to_owned(), value.clone());
            }
        }
        self.resources.entry(kind).or_default().push((origin, value));
    }

    pub fn packages(&self) -> &[PackageInfo] {
        &self.packages
    }

    /// Every dependency named by a loaded package must itself be loaded (same name; the
    /// version equal, or matching where the dependency writes `x`/`*` for a part).
    pub fn check_dependencies(&self) -> Result<(), PackageError> {
        let mut missing = Vec::new();
        for p in &self.packages {
            for (name, version) in &p.dependencies {
                let ok = self.packages.iter().any(|q| &q.name == name && version_matches(version, &q.version));
                if !ok {
                    missing.push(format!("{}#{} → {name}#{version}", p.name, p.version));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(PackageError::MissingDependencies(missing))
        }
    }

    /// StructureDefinitions whose `baseDefinition` is not loaded, as `(url, base)`. Package
    /// manifests do not always name what their profiles derive from (JP-CLINS names only
    /// the R4 core, yet derives from JP Core), so this is the check that matters.
    pub fn missing_base_definitions(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for sd in self.all(ConformanceKind::StructureDefinition) {
            if let Some(base) = sd.get("baseDefinition").and_then(Value::as_str) {
                if self.resolve(ConformanceKind::StructureDefinition, base).is_none() {
                    let url = sd.get("url").and_then(Value::as_str).unwrap_or("");
                    out.push((url.to_owned(), base.to_owned()));
                }
            }
        }
        out
    }

    /// The resource with this canonical (`url` or `url|version`). A versioned canonical
    /// whose version is not loaded does not fall back to another version.
    pub fn resolve(&self, kind: ConformanceKind, canonical: &str) -> Option<&Arc<Value>> {
        self.index.get(&kind)?.get(canonical)
    }

    /// All loaded resources of a kind, in load order (duplicates across packages included).
    pub fn all(&self, kind: ConformanceKind) -> impl Iterator<Item = &Arc<Value>> {
        self.resources.get(&kind).into_iter().flatten().map(|(_, v)| v)
    }

    /// The resources of a kind that the package called `name` brought.
    pub fn from_package<'s>(
        &'s self,
        name: &'s str,
        kind: ConformanceKind,
    ) -> impl Iterator<Item = &'s Arc<Value>> + 's {
        let origin = self.packages.iter().position(|p| p.name == name);
        self.resources.get(&kind).into_iter().flatten().filter(move |(o, _)| Some(*o) == origin).map(|(_, v)| v)
    }

    pub fn count(&self, kind: ConformanceKind) -> usize {
        self.resources.get(&kind).map_or(0, Vec::len)
    }
}

fn parse(text: &str, origin: &str, file: &str) -> Result<Value, PackageError> {
    serde_json::from_str(text).map_err(|e| PackageError::Json {
        origin: origin.into(),
        file: file.into(),
        message: e.to_string(),
    })
}

/// The `resourceType` value when it appears in the first few hundred bytes.
fn peek_resource_type(text: &str) -> Option<&str> {
    let head = &text[..floor_char_boundary(text, 400)];
    let at = head.find("\"resourceType\"")?;
    let rest = head[at + 14..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether version `a` should replace `b` as the latest: a missing version never wins
/// over a present one; otherwise dotted numbers compare numerically, then as text. The
/// one rule for "latest" wherever canonical resources meet (packages, terminology).
pub fn newer_or_equal(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => {
            let key = |v: &str| -> Vec<(u64, String)> {
                v.split(['.', '-']).map(|p| (p.parse().unwrap_or(0), p.to_owned())).collect()
            };
            key(a) >= key(b)
        }
    }
}

fn version_matches(wanted: &str, have: &str) -> bool {
    if wanted == have || wanted.is_empty() || wanted == "*" || wanted == "latest" {
        return true;
    }
    let w: Vec<&str> = wanted.split('.').collect();
    let h: Vec<&str> = have.split('.').collect();
    w.len() == h.len() && w.iter().zip(&h).all(|(a, b)| a == b || *a == "x" || *a == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_matches("4.0.1", "4.0.1"));
        assert!(version_matches("1.1.x", "1.1.2"));
        assert!(!version_matches("1.1.2", "1.1.2-url"));
        assert!(!version_matches("4.0.1", "4.0.0"));
        assert!(newer_or_equal(Some("5.11"), None));
        assert!(!newer_or_equal(None, Some("5.11")));
        assert!(newer_or_equal(Some("1.10.0"), Some("1.9.2")));
    }

    #[test]
    fn peeks_resource_type() {
        assert_eq!(peek_resource_type(r#"{ "resourceType" : "ValueSet", "id": "x"}"#), Some("ValueSet"));
        assert_eq!(peek_resource_type(r#"{"id": "x"}"#), None);
    }
}
