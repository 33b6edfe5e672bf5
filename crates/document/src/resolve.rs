//! Finding the resource a `Reference` names inside the document, by the rules of FHIR R4
//! bundle.html ("Resolving references in Bundles"):
//!
//! * `#id` names a contained resource of the resource that holds the reference;
//! * an absolute reference (`urn:uuid:…`, `urn:oid:…`, `https://…`) matches an entry's
//!   `fullUrl` exactly;
//! * a relative `Type/id` is read against the base of the holder's `fullUrl` when that is a
//!   RESTful URL (`[base]/Type/id`), and then matches a `fullUrl`;
//! * a version-specific reference (`…/_history/v`) matches without its version, and then only
//!   an entry whose `meta.versionId` is `v` (when it has one).
//!
//! Documents assembled from `urn:uuid` entries sometimes still say `Patient/123`; the spec
//! leaves that to the reader, so such a reference is tried against the caller's base URL
//! and, failing that, against the one entry of that type and id, if exactly one exists. A
//! reference that still finds nothing is left to the caller to show as text.

use std::collections::HashMap;

use serde_json::Value;

/// A resource in the document together with what its references are read against.
#[derive(Clone, Copy)]
pub(crate) struct Res<'a> {
    pub value: &'a Value,
    /// The `fullUrl` of the entry it is (or is contained in).
    pub full_url: Option<&'a str>,
    /// For a contained resource, the resource containing it (whose `contained` its own `#id`
    /// references search, as the spec puts all of them in the container's scope).
    pub container: Option<&'a Value>,
}

impl<'a> Res<'a> {
    pub(crate) fn kind(&self) -> &'a str {
        str_at(self.value, "resourceType").unwrap_or("")
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key)
    }

    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        str_at(self.value, key)
    }
}

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The entries of one document Bundle, indexed for reference lookups.
pub(crate) struct Index<'a> {
    entries: Vec<Res<'a>>,
    by_url: HashMap<&'a str, usize>,
    /// `(type, id)` → entry, `None` when two entries share it (then nothing is guessed).
    by_type_id: HashMap<(&'a str, &'a str), Option<usize>>,
    /// The caller's service base, without a trailing `/`.
    base: Option<&'a str>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(bundle: &'a Value, base: Option<&'a str>) -> Self {
        let list = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let mut index = Index {
            entries: Vec::with_capacity(list.len()),
            by_url: HashMap::with_capacity(list.len()),
            by_type_id: HashMap::with_capacity(list.len()),
            base: base.map(|b| b.trim_end_matches('/')).filter(|b| !b.is_empty()),
        };
        for entry in list {
            let Some(resource) = entry.get("resource").filter(|r| r.is_object()) else { continue };
            let full_url = str_at(entry, "fullUrl");
            let at = index.entries.len();
            index.entries.push(Res { value: resource, full_url, container: None });
            if let Some(url) = full_url {
                // The first of two entries with one fullUrl wins (bdl-7 forbids the pair;
                // the renderer does not enforce it).
                index.by_url.entry(url).or_insert(at);
            }
            if let (Some(kind), Some(id)) = (str_at(resource, "resourceType"), str_at(resource, "id")) {
                index.by_type_id.entry((kind, id)).and_modify(|slot| *slot = None).or_insert(Some(at));
            }
        }
        index
    }

    /// The first entry (the Composition of a document).
    pub(crate) fn first(&self) -> Option<Res<'a>> {
        self.entries.first().copied()
    }

    /// The resource `reference` (a FHIR `Reference` object) names, read from `from`.
    pub(crate) fn resolve(&self, from: Res<'a>, reference: &'a Value) -> Option<Res<'a>> {
        let target = str_at(reference, "reference")?.trim();
        if let Some(id) = target.strip_prefix('#') {
            return contained(from, id);
        }
        let (plain, version) = match target.split_once("/_history/") {
            Some((plain, version)) => (plain, Some(version)),
            None => (target, None),
        };
        let found = if is_absolute(plain) { self.absolute(plain) } else { self.relative(from, plain) }?;
        let res = self.entries[found];
        match (version, res.value.get("meta").and_then(|m| str_at(m, "versionId"))) {
            (Some(wanted), Some(has)) if wanted != has => None,
            _ => Some(res),
        }
    }

    fn absolute(&self, url: &str) -> Option<usize> {
        if let Some(&at) = self.by_url.get(url) {
            return Some(at);
        }
        // `[base]/Type/id` of the server rendering this is the stored `Type/id`.
        let rest = url.strip_prefix(self.base?)?.strip_prefix('/')?;
        self.by_type_id_of(rest)
    }

    fn relative(&self, from: Res<'a>, path: &str) -> Option<usize> {
        if let Some(base) = from.full_url.and_then(restful_base) {
            // The spec's rule: the reference lives on the holder's server.
            return self.by_url.get(format!("{base}{path}").as_str()).copied();
        }
        if let Some(base) = self.base {
            if let Some(&at) = self.by_url.get(format!("{base}/{path}").as_str()) {
                return Some(at);
            }
        }
        self.by_type_id_of(path)
    }

    fn by_type_id_of(&self, path: &str) -> Option<usize> {
        let (kind, id) = path.split_once('/')?;
        if id.contains('/') {
            return None;
        }
        self.by_type_id.get(&(kind, id)).copied().flatten()
    }
}

/// The contained resource `id` of `from`'s container (or of `from` itself); `#` alone is the
/// container.
fn contained<'a>(from: Res<'a>, id: &str) -> Option<Res<'a>> {
    let container = from.container.unwrap_or(from.value);
    if id.is_empty() {
        return Some(Res { value: container, full_url: from.full_url, container: None });
    }
    let found = container.get("contained")?.as_array()?.iter().find(|c| str_at(c, "id") == Some(id))?;
    Some(Res { value: found, full_url: from.full_url, container: Some(container) })
}

fn is_absolute(reference: &str) -> bool {
    // A scheme: letters, then ':' before any '/'. `Patient/a:b` is relative.
    match reference.find(':') {
        Some(colon) => {
            let scheme = &reference[..colon];
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }
        None => false,
    }
}

/// `https://example.org/fhir/` for `https://example.org/fhir/Patient/1` (or
/// `…/Patient/1/_history/2`); `None` for `urn:` and other non-RESTful URLs.
fn restful_base(full_url: &str) -> Option<&str> {
    if !(full_url.starts_with("http://") || full_url.starts_with("https://")) {
        return None;
    }
    let plain = full_url.split_once("/_history/").map_or(full_url, |(p, _)| p);
    let id_at = plain.rfind('/')?;
    let type_at = plain[..id_at].rfind('/')?;
    let kind = &plain[type_at + 1..id_at];
    // Resource type names start with a capital letter; anything else is not `Type/id`.
    kind.starts_with(|c: char| c.is_ascii_uppercase()).then(|| &plain[..type_at + 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({"resourceType": "Bundle", "type": "document", "entry": [
            {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "id": "c",
                "contained": [{"resourceType": "Practitioner", "id": "p1"}]}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "pat"}},
            {"fullUrl": "https://ex.org/fhir/Observation/o1",
                "resource": {"resourceType": "Observation", "id": "o1", "meta": {"versionId": "3"}}},
            {"fullUrl": "https://ex.org/fhir/Specimen/s1", "resource": {"resourceType": "Specimen", "id": "s1"}},
            {"fullUrl": "https://other.org/Specimen/s1", "resource": {"resourceType": "Specimen", "id": "s1"}}
        ]})
    }

    fn id_of(index: &Index<'_>, from: usize, reference: &Value) -> Option<String> {
        let from = index.entries[from];
        index.resolve(from, reference).map(|r| r.str("id").unwrap().to_owned())
    }

    #[test]
    fn resolves_by_full_url_type_id_contained_and_version() {
        let b = bundle();
        let index = Index::new(&b, Some("https://mine.example/fhir/"));
        assert_eq!(id_of(&index, 0, &json!({"reference": "urn:uuid:p"})).as_deref(), Some("pat"));
        assert_eq!(id_of(&index, 0, &json!({"reference": "#p1"})).as_deref(), Some("p1"));
        // Relative from a urn entry: the one Patient/pat there is.
        assert_eq!(id_of(&index, 0, &json!({"reference": "Patient/pat"})).as_deref(), Some("pat"));
        // Relative from a RESTful entry: read against its base only.
        assert_eq!(id_of(&index, 2, &json!({"reference": "Specimen/s1"})).as_deref(), Some("s1"));
        assert_eq!(id_of(&index, 2, &json!({"reference": "Patient/pat"})), None);
        // Two Specimen/s1 entries: a urn-based holder cannot tell which one.
        assert_eq!(id_of(&index, 0, &json!({"reference": "Specimen/s1"})), None);
        assert_eq!(id_of(&index, 0, &json!({"reference": "Observation/o1/_history/3"})).as_deref(), Some("o1"));
        assert_eq!(id_of(&index, 0, &json!({"reference": "Observation/o1/_history/2"})), None);
        assert_eq!(
            id_of(&index, 0, &json!({"reference": "https://mine.example/fhir/Patient/pat"})).as_deref(),
            Some("pat")
        );
        assert_eq!(id_of(&index, 0, &json!({"reference": "urn:uuid:nowhere"})), None);
        assert_eq!(id_of(&index, 0, &json!({"display": "only text"})), None);
    }
}
