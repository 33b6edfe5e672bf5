//! Rules over a whole Bundle that no single element sees: fullUrls are unique (per
//! version), `urn:` references resolve to an entry, a document's references stay inside
//! it, and a document starts with its Composition.

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

impl Walk<'_, '_> {
    pub(crate) fn check_bundle(&mut self, bundle: &Value) {
        let Some(entries) = bundle.get("entry").and_then(Value::as_array) else { return };
        let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
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
        // A history Bundle holds several versions of one resource under one fullUrl.
        if kind != "history" {
            let mut seen: FxHashMap<(&str, Option<&str>), usize> = FxHashMap::default();
            for (i, e) in entries.iter().enumerate() {
                let Some(url) = e.get("fullUrl").and_then(Value::as_str) else { continue };
                let version = e.pointer("/resource/meta/versionId").and_then(Value::as_str);
                if let Some(first) = seen.insert((url, version), i) {
                    self.push(
                        Severity::Error,
                        IssueType::Invalid,
                        format!("Bundle.entry[{i}].fullUrl"),
                        format!("fullUrl {url} is already used by entry {first}"),
                        format!("fullUrl {url} はエントリ {first} と重複しています"),
                    );
                }
            }
        }
        if kind == "searchset" || kind == "history" {
            return;
        }
        let full_urls = FullUrls::of(entries);
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
                // A urn names nothing outside the Bundle; a document should carry what it cites.
                let (severity, why_en, why_ja) = if urn {
                    (
                        Severity::Error,
                        "a urn: reference can only point inside the Bundle",
                        "urn: の参照は Bundle 内しか指せません",
                    )
                } else {
                    (Severity::Warning, "a document should contain what it references", "文書は参照先を含むべきです")
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
fn rest_base(full_url: &str) -> Option<&str> {
    if full_url.starts_with("urn:") {
        return None;
    }
    let id_at = full_url.rfind('/')?;
    let type_at = full_url[..id_at].rfind('/')?;
    let ty = &full_url[type_at + 1..id_at];
    tsunagu_model::r4().is_resource_type(ty).then(|| &full_url[..type_at + 1])
}

/// The fullUrls of a Bundle's entries, and their last two segments (`Type/id`), as sets:
/// every reference is looked up in constant time, so a Bundle of many entries does not
/// cost the square of its size.
struct FullUrls<'a> {
    all: rustc_hash::FxHashSet<&'a str>,
    tails: rustc_hash::FxHashSet<&'a str>,
}

impl<'a> FullUrls<'a> {
    fn of(entries: &'a [Value]) -> Self {
        let all: rustc_hash::FxHashSet<&str> =
            entries.iter().filter_map(|e| e.get("fullUrl").and_then(Value::as_str)).collect();
        let tails = all.iter().filter_map(|u| type_and_id(u)).collect();
        FullUrls { all, tails }
    }

    fn resolves(&self, reference: &str, base: Option<&str>) -> bool {
        let reference = reference.split("/_history/").next().unwrap_or(reference);
        if self.all.contains(reference) {
            return true;
        }
        // A relative reference resolves against the base of its entry's fullUrl; without
        // one, any entry with that type and id will do.
        match base {
            Some(b) => self.all.contains(format!("{b}{reference}").as_str()),
            None => self.tails.contains(reference),
        }
    }
}

/// `Type/id`, the last two segments of a URL with at least three.
fn type_and_id(url: &str) -> Option<&str> {
    let id_at = url.rfind('/')?;
    let type_at = url[..id_at].rfind('/')?;
    Some(&url[type_at + 1..])
}

/// The `reference` strings of every Reference inside a resource, contained ones included.
fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
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
