//! Rules over a whole Bundle that no single element sees (bundle.html): `urn:` references
//! resolve to an entry, a document's references stay inside it, and a document starts
//! with its Composition; fullUrls (`full_url.rs`), searchsets (`search.rs`) and what a
//! document or message reaches from its first entry (`graph.rs`) have modules of their own.

mod full_url;
mod graph;
mod search;

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

impl Walk<'_, '_> {
    pub(crate) fn check_bundle(&mut self, bundle: &Value) {
        let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
        let entries = bundle.get("entry").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let document = kind == "document";
        if document {
            let first = entries.first().and_then(|e| e.pointer("/resource/resourceType")).and_then(Value::as_str);
            if first != Some("Composition") {
                self.push(
                    Severity::Error,
                    IssueType::Structure,
                    "Bundle.entry[0]".into(),
                    "The first entry of a document Bundle must be its Composition".into(),
                    "document 型の Bundle の最初のエントリは Composition でなければなりません".into(),
                );
            }
        }
        self.check_full_urls(entries, kind);
        if kind == "searchset" {
            self.check_search_set(bundle, entries);
        }
        if kind == "searchset" || kind == "history" {
            return;
        }
        let full_urls = FullUrls::of(entries);
        if document || kind == "message" {
            self.check_reachable(entries, &full_urls, document);
        }
        for (i, e) in entries.iter().enumerate() {
            let Some(resource) = e.get("resource") else { continue };
            let base = e.get("fullUrl").and_then(Value::as_str).and_then(rest_base);
            let mut refs = Vec::new();
            collect_references(resource, &mut refs);
            for r in refs {
                if r.starts_with('#') || full_urls.resolves(r, base) {
                    continue;
                }
                let urn = r.starts_with("urn:");
                if !urn && !document {
                    continue;
                }
                // A urn names nothing outside the Bundle; a document is read without a server, so it
                // carries what it cites.
                let (severity, why_en, why_ja) = if urn {
                    (
                        Severity::Error,
                        "a urn: reference can only point inside the Bundle",
                        "urn: の参照は Bundle 内しか指せません",
                    )
                } else {
                    (Severity::Error, "a document carries what it references", "文書は参照先を含まなければなりません")
                };
                self.push(
                    severity,
                    IssueType::Invalid,
                    format!("Bundle.entry[{i}].resource"),
                    format!("Reference {r} matches no entry of the Bundle ({why_en})"),
                    format!("参照 {r} に一致するエントリが Bundle にありません（{why_ja}）"),
                );
            }
        }
    }
}

/// `http://server/fhir/` of a RESTful fullUrl `http://server/fhir/Type/id`.
pub(super) fn rest_base(full_url: &str) -> Option<&str> {
    if full_url.starts_with("urn:") {
        return None;
    }
    let id_at = full_url.rfind('/')?;
    let type_at = full_url[..id_at].rfind('/')?;
    let ty = &full_url[type_at + 1..id_at];
    tsunagu_model::r4().is_resource_type(ty).then(|| &full_url[..type_at + 1])
}

/// The fullUrls of a Bundle's entries, and their last two segments (`Type/id`), each with
/// the position of its first entry: every reference is looked up in constant time, so a
/// Bundle of many entries does not cost the square of its size.
pub(super) struct FullUrls<'a> {
    all: FxHashMap<&'a str, usize>,
    tails: FxHashMap<&'a str, usize>,
}

impl<'a> FullUrls<'a> {
    fn of(entries: &'a [Value]) -> Self {
        let mut all = FxHashMap::default();
        let mut tails = FxHashMap::default();
        for (i, url) in entries.iter().enumerate().filter_map(|(i, e)| Some((i, e.get("fullUrl")?.as_str()?))) {
            all.entry(url).or_insert(i);
            if let Some(tail) = type_and_id(url) {
                tails.entry(tail).or_insert(i);
            }
        }
        FullUrls { all, tails }
    }

    fn resolves(&self, reference: &str, base: Option<&str>) -> bool {
        self.find(reference, base).is_some()
    }

    /// The position of the entry `reference` points to, made in an entry whose fullUrl
    /// has the RESTful `base`.
    pub(super) fn find(&self, reference: &str, base: Option<&str>) -> Option<usize> {
        let reference = reference.split("/_history/").next().unwrap_or(reference);
        if let Some(&i) = self.all.get(reference) {
            return Some(i);
        }
        // A relative reference resolves against the base of its entry's fullUrl; without
        // one, any entry with that type and id will do.
        match base {
            Some(b) => self.all.get(format!("{b}{reference}").as_str()).copied(),
            None => self.tails.get(reference).copied(),
        }
    }
}

/// `Type/id`, the last two segments of a URL with at least three.
pub(super) fn type_and_id(url: &str) -> Option<&str> {
    let id_at = url.rfind('/')?;
    let type_at = url[..id_at].rfind('/')?;
    Some(&url[type_at + 1..])
}

/// The `reference` strings of every Reference inside a resource, contained ones included.
pub(super) fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                out.push(r);
            }
            m.values().for_each(|x| collect_references(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}
