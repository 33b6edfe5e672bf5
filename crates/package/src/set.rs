//! Conformance packages: npm-style `.tgz` archives (`package/package.json` plus one JSON
//! resource per file) loaded into one set, indexed by canonical URL.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::error::PackageError;
use crate::name::{check_name, check_version};

/// The most a package may unpack to (the whole tar stream, skipped files included): 1 GiB.
/// Packages are supplied by the operator, and the largest published ones (the R4 examples)
/// unpack to under 200 MiB; the limit stops a gzip bomb, not a real package.
pub const MAX_PACKAGE_BYTES: u64 = 1 << 30;

/// The most one file that is read into memory (a JSON file directly under `package/`) may
/// unpack to: 256 MiB. The largest published file, the R4 examples' `Bundle-resources.json`,
/// is 34 MiB.
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;

/// The kinds of conformance resource a [`PackageSet`] keeps; everything else in a package
/// (examples, ImplementationGuide, CapabilityStatement) is skipped. Questionnaires are kept
/// because a QuestionnaireResponse is validated against the one it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConformanceKind {
    StructureDefinition,
    ValueSet,
    CodeSystem,
    SearchParameter,
    NamingSystem,
    ConceptMap,
    Questionnaire,
}

impl ConformanceKind {
    pub const ALL: [ConformanceKind; 7] = [
        ConformanceKind::StructureDefinition,
        ConformanceKind::ValueSet,
        ConformanceKind::CodeSystem,
        ConformanceKind::SearchParameter,
        ConformanceKind::NamingSystem,
        ConformanceKind::ConceptMap,
        ConformanceKind::Questionnaire,
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
            ConformanceKind::Questionnaire => "Questionnaire",
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
        self.load_limited(reader, origin, MAX_PACKAGE_BYTES, MAX_ENTRY_BYTES)
    }

    /// [`load_tgz_reader`](Self::load_tgz_reader) with the size limits as arguments (so
    /// tests can use small ones).
    fn load_limited(
        &mut self,
        reader: impl Read,
        origin: &str,
        max_total: u64,
        max_entry: u64,
    ) -> Result<&PackageInfo, PackageError> {
        let unpacked = Rc::new(Cell::new(0u64));
        let limited = Limited { inner: flate2::read::GzDecoder::new(reader), read: unpacked.clone(), limit: max_total };
        // An I/O error past the total limit is the limit's doing: say so.
        let io_err = |source| {
            if unpacked.get() > max_total {
                PackageError::TooLarge { origin: origin.into(), what: "the archive".into(), limit: max_total }
            } else {
                PackageError::Io { path: origin.into(), source }
            }
        };
        let mut archive = tar::Archive::new(limited);
        let mut manifest: Option<Value> = None;
        let mut found: Vec<(ConformanceKind, Value)> = Vec::new();
        let mut text = String::new();
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            // Entries are only ever read into memory, never unpacked to disk; still, only
            // regular files are read (a link has no content of its own to read).
            if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
                continue;
            }
            let path = entry.path().map_err(io_err)?;
            // Only files directly in package/: subfolders hold examples and tooling files.
            let Some(file) = package_file(&path) else {
                continue;
            };
            if !file.ends_with(".json") || file.starts_with('.') {
                continue;
            }
            let file = file.to_owned();
            if entry.size() > max_entry {
                return Err(PackageError::TooLarge {
                    origin: origin.into(),
                    what: format!("package/{file}"),
                    limit: max_entry,
                });
            }
            text.clear();
            // The entry reader stops at the size in its header, checked just above.
            (&mut entry).take(max_entry).read_to_string(&mut text).map_err(io_err)?;
            if file == "package.json" {
                manifest = Some(parse(&text, origin, &file)?);
                continue;
            }
            // Most files are examples; skip them without a full parse when the resource
            // type is visible near the start.
            if let Some(rt) = peek_resource_type(&text) {
                if ConformanceKind::from_resource_type(rt).is_none() {
                    continue;
                }
            }
            let value = parse(&text, origin, &file)?;
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
        let invalid = |field, value: &str, reason| PackageError::InvalidManifest {
            origin: origin.into(),
            field,
            value: value.chars().take(100).collect(),
            reason,
        };
        check_name(&name).map_err(|reason| invalid("name", &name, reason))?;
        check_version(&version).map_err(|reason| invalid("version", &version, reason))?;
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

/// The file name of an archive path `package/<file>`: exactly two plain components, so
/// `..`, `.`, absolute paths and subfolders never match.
fn package_file(path: &Path) -> Option<&str> {
    let mut parts = path.components();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Component::Normal(dir)), Some(Component::Normal(file)), None) if dir == "package" => file.to_str(),
        _ => None,
    }
}

/// A reader that fails once more than `limit` bytes came through, counting in `read`.
struct Limited<R> {
    inner: R,
    read: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        if self.read.get() > self.limit {
            return Err(std::io::Error::other(format!("unpacks to more than {} bytes", self.limit)));
        }
        Ok(n)
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

    /// One tar entry: its raw path (written into the header as is, `..` and all, which
    /// `tar::Builder::append_data` would refuse), type, link target and content.
    struct Entry<'a> {
        path: &'a str,
        kind: tar::EntryType,
        link: &'a str,
        data: Vec<u8>,
    }

    fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry<'_> {
        Entry { path, kind: tar::EntryType::Regular, link: "", data: data.into() }
    }

    fn manifest(name: &str, version: &str) -> Vec<u8> {
        serde_json::json!({ "name": name, "version": version }).to_string().into_bytes()
    }

    fn code_system(url: &str) -> Vec<u8> {
        serde_json::json!({ "resourceType": "CodeSystem", "id": "cs", "url": url, "status": "active",
            "content": "complete" })
        .to_string()
        .into_bytes()
    }

    /// A .tgz in memory.
    fn tgz(entries: &[Entry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for e in entries {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..e.path.len()].copy_from_slice(e.path.as_bytes());
            header.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
            header.set_entry_type(e.kind);
            header.set_size(e.data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, e.data.as_slice()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn load(bytes: &[u8]) -> (PackageSet, Result<PackageInfo, PackageError>) {
        let mut set = PackageSet::new();
        let result = set.load_tgz_reader(bytes, "test.tgz").cloned();
        (set, result)
    }

    #[test]
    fn loads_a_package_built_in_memory() {
        let bytes = tgz(&[
            file("package/package.json", manifest("example.ok", "0.1.0")),
            file("package/cs.json", code_system("urn:ok")),
        ]);
        let (set, info) = load(&bytes);
        let info = info.unwrap();
        assert_eq!((info.name.as_str(), info.version.as_str()), ("example.ok", "0.1.0"));
        assert!(set.resolve(ConformanceKind::CodeSystem, "urn:ok").is_some());
    }

    /// Questionnaires are kept (a QuestionnaireResponse is validated against them);
    /// examples of other types are not.
    #[test]
    fn keeps_questionnaires() {
        let q =
            serde_json::json!({ "resourceType": "Questionnaire", "url": "urn:q", "version": "2", "status": "active" });
        let p = serde_json::json!({ "resourceType": "Patient", "id": "p" });
        let bytes = tgz(&[
            file("package/package.json", manifest("example.forms", "0.1.0")),
            file("package/q.json", q.to_string()),
            file("package/p.json", p.to_string()),
        ]);
        let (set, info) = load(&bytes);
        assert_eq!(info.unwrap().counts.get(&ConformanceKind::Questionnaire), Some(&1));
        assert!(set.resolve(ConformanceKind::Questionnaire, "urn:q|2").is_some());
        assert_eq!(ConformanceKind::from_resource_type("Questionnaire"), Some(ConformanceKind::Questionnaire));
        assert_eq!(ConformanceKind::from_resource_type("Patient"), None);
    }

    /// A manifest whose name or version could name a path is refused, and nothing of the
    /// package is kept.
    #[test]
    fn refuses_manifest_names_and_versions_that_are_paths() {
        for (name, version, field) in [
            ("../../evil", "0.1.0", "name"),
            ("/etc/evil", "0.1.0", "name"),
            ("a/b/c", "0.1.0", "name"),
            ("..", "0.1.0", "name"),
            ("evil\0", "0.1.0", "name"),
            ("evil", "1.0/../x", "version"),
            ("evil", "../1", "version"),
            ("evil", "", "version"),
        ] {
            let bytes = tgz(&[
                file("package/package.json", manifest(name, version)),
                file("package/cs.json", code_system("urn:evil")),
            ]);
            let (set, result) = load(&bytes);
            match result {
                Err(PackageError::InvalidManifest { field: f, ref value, .. }) => {
                    assert_eq!(f, field, "{name:?} {version:?}");
                    assert_eq!(value, if field == "name" { name } else { version });
                }
                other => panic!("{name:?}#{version:?}: {other:?}"),
            }
            assert!(set.packages().is_empty());
            assert_eq!(set.count(ConformanceKind::CodeSystem), 0);
        }
        let bytes = tgz(&[file("package/package.json", manifest("../../evil", "0.1.0"))]);
        let message = load(&bytes).1.unwrap_err().to_string();
        assert_eq!(
            message,
            r#"package test.tgz: package.json name "../../evil" is not allowed: the name contains a path separator ('/')"#
        );
    }

    /// Entries whose path would escape the package root, and links, are skipped. Entries
    /// are only read into memory, so they cannot write anywhere; this checks that none is
    /// read as a package file and that nothing appears at the paths they name.
    #[test]
    fn escaping_entries_and_links_are_ignored() {
        let pid = std::process::id();
        let relative = format!("../tsunagu-evil-{pid}.json");
        let nested = format!("package/../../tsunagu-evil-{pid}.json");
        let absolute = std::env::temp_dir().join(format!("tsunagu-evil-{pid}.json"));
        let absolute = absolute.to_str().unwrap();
        let entries = [
            file("package/package.json", manifest("example.ok", "0.1.0")),
            file("package/cs.json", code_system("urn:ok")),
            file(&relative, code_system("urn:evil:relative")),
            file(&nested, code_system("urn:evil:nested")),
            file(absolute, code_system("urn:evil:absolute")),
            file("/package/abs.json", code_system("urn:evil:rooted")),
            file("package/sub/../../package/up.json", code_system("urn:evil:up")),
            // Links have no content of their own; were they followed on disk, they would
            // read outside the archive.
            Entry { path: "package/link.json", kind: tar::EntryType::Symlink, link: "/etc/passwd", data: vec![] },
            Entry { path: "package/hard.json", kind: tar::EntryType::Link, link: "../../x.json", data: vec![] },
            Entry { path: "package/package.json", kind: tar::EntryType::Symlink, link: "/etc/passwd", data: vec![] },
        ];
        let (set, info) = load(&tgz(&entries));
        assert_eq!(info.unwrap().name, "example.ok");
        assert_eq!(set.count(ConformanceKind::CodeSystem), 1);
        assert!(set.resolve(ConformanceKind::CodeSystem, "urn:ok").is_some());
        for path in [relative.as_str(), &nested, absolute, "/package/abs.json", "../x.json"] {
            assert!(!Path::new(path).exists(), "{path} exists");
        }
    }

    #[test]
    fn refuses_a_file_larger_than_the_entry_limit() {
        let bytes = tgz(&[
            file("package/package.json", manifest("example.ok", "0.1.0")),
            file("package/big.json", format!("{{}}{}", " ".repeat(4094))),
        ]);
        let mut set = PackageSet::new();
        match set.load_limited(bytes.as_slice(), "test.tgz", MAX_PACKAGE_BYTES, 4095) {
            Err(PackageError::TooLarge { what, limit: 4095, .. }) => assert_eq!(what, "package/big.json"),
            other => panic!("{:?}", other.map(|i| i.name.clone())),
        }
        assert!(set.load_limited(bytes.as_slice(), "test.tgz", MAX_PACKAGE_BYTES, 4096).is_ok());
        // A header may claim any size; the claim alone is refused, before reading.
        let mut bomb = tar::Header::new_old();
        bomb.set_path("package/bomb.json").unwrap();
        bomb.set_size(MAX_ENTRY_BYTES + 1);
        bomb.set_cksum();
        let mut raw = bomb.as_bytes().to_vec();
        raw.extend([0u8; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let (_, result) = load(&gz.finish().unwrap());
        assert!(matches!(result, Err(PackageError::TooLarge { limit: MAX_ENTRY_BYTES, .. })), "{result:?}");
    }

    /// A gzip bomb: a small archive that unpacks past the total limit, through a file that
    /// is skipped (not read into memory) but still decompressed.
    #[test]
    fn refuses_an_archive_larger_than_the_total_limit() {
        let bytes = tgz(&[
            file("package/package.json", manifest("example.ok", "0.1.0")),
            file("package/other/zeros.bin", vec![0u8; 1 << 20]),
        ]);
        assert!(bytes.len() < 16 << 10, "{} bytes", bytes.len());
        let mut set = PackageSet::new();
        match set.load_limited(bytes.as_slice(), "test.tgz", 512 << 10, MAX_ENTRY_BYTES) {
            Err(PackageError::TooLarge { what, limit, .. }) => {
                assert_eq!((what.as_str(), limit), ("the archive", 512 << 10))
            }
            other => panic!("{:?}", other.map(|i| i.name.clone())),
        }
        assert!(set.load_limited(bytes.as_slice(), "test.tgz", 2 << 20, MAX_ENTRY_BYTES).is_ok());
    }

    /// The published packages under `$TSUNAGU_SHARED` (default `../shared` beside the
    /// workspace) keep loading: their names and versions pass the grammar. Without them,
    /// SKIP (a failure under `CI=true`).
    #[test]
    fn real_packages_still_load() {
        let shared = tsunagu_reference::shared_dir();
        let mut files: Vec<_> = ["fhir", "jp"]
            .iter()
            .filter_map(|d| std::fs::read_dir(shared.join(d)).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
            .collect();
        if files.is_empty() {
            tsunagu_reference::missing(&format!("packages (*.tgz) in {}/{{fhir,jp}}", shared.display()));
            return;
        }
        files.sort();
        for f in files {
            let mut set = PackageSet::new();
            let info = set.load_tgz(&f).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{}: {}#{}", f.display(), info.name, info.version);
        }
    }
}
