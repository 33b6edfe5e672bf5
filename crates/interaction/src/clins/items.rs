//! The items of a submission: each entry of the Bundle as a resource of its own, with a
//! derived id, references between entries rewritten to those ids, and `meta.source`
//! naming the submission.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::SOURCE_PREFIX;
use crate::bundle::rewrite_references;

/// One entry of a submission, ready to be written as `ty`/`id`.
#[derive(Clone)]
pub(crate) struct Item {
    pub ty: String,
    pub id: String,
    pub map: Map<String, Value>,
}

/// The id of the item made from the entry keyed `key` of the submission stored as
/// `Bundle/{bundle_id}`: the Bundle's id, `-`, and 16 hex digits of SHA-256 over the key.
/// The Bundle's id is server-assigned (a UUID v7), so nobody can take an item's id before
/// the first submission, and a replacement keeps its items' ids. Starting with the Bundle's
/// time-ordered id keeps a submission's items, and every index row keyed by them, on a few
/// B-tree pages at the end of their range: with hash-only ids each commit dirtied one
/// random page per item and index, and submissions slowed as the store grew.
pub(crate) fn item_id(bundle_id: &str, key: &str) -> String {
    if bundle_id.len() > 64 - 17 {
        // Not one of ours (ids are UUIDs): stay within the 64 characters of an id.
        let digest = Sha256::new().chain_update(bundle_id).chain_update([0]).chain_update(key).finalize();
        return digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    }
    let digest = Sha256::new().chain_update(key).finalize();
    let mut id = String::with_capacity(bundle_id.len() + 17);
    id.push_str(bundle_id);
    id.push('-');
    for b in &digest[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// An entry's key: its `fullUrl`, else its position (`#3`).
fn entry_key(index: usize, entry: &Value) -> String {
    entry.get("fullUrl").and_then(Value::as_str).map_or_else(|| format!("#{index}"), str::to_string)
}

fn entry_resources(bundle: &Value) -> impl Iterator<Item = (usize, &Value, &Value, &str)> {
    bundle.get("entry").and_then(Value::as_array).into_iter().flatten().enumerate().filter_map(|(i, e)| {
        let r = e.get("resource")?;
        let ty = r.get("resourceType").and_then(Value::as_str)?;
        Some((i, e, r, ty))
    })
}

/// `(type, id)` of every item the submission stored as `Bundle/{bundle_id}` carries.
pub(crate) fn item_refs(bundle: &Value, bundle_id: &str) -> Vec<(String, String)> {
    entry_resources(bundle).map(|(i, e, _, ty)| (ty.to_string(), item_id(bundle_id, &entry_key(i, e)))).collect()
}

/// The items of `bundle` as the submission `Bundle/{bundle_id}`, each with `labels` added
/// to its `meta.tag`.
pub(crate) fn items(bundle: &Value, bundle_id: &str, labels: &[Value]) -> Vec<Item> {
    let mut targets: HashMap<String, String> = HashMap::new();
    // `Type/id` tails of RESTful fullUrls; a tail two entries share resolves to neither.
    let mut tails: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    for (i, entry, resource, ty) in entry_resources(bundle) {
        let key = entry_key(i, entry);
        let id = item_id(bundle_id, &key);
        let reference = format!("{ty}/{id}");
        if let Some(tail) = restful_tail(&key, ty) {
            tails.entry(tail).and_modify(|t| *t = None).or_insert_with(|| Some(reference.clone()));
        }
        targets.insert(key, reference);
        let mut map = resource.as_object().cloned().unwrap_or_default();
        let meta = map.entry("meta").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            meta.remove("versionId");
            meta.remove("lastUpdated");
            meta.insert("source".into(), Value::String(format!("{SOURCE_PREFIX}{bundle_id}")));
            add_tags(meta, labels);
        }
        out.push(Item { ty: ty.to_string(), id, map });
    }
    for item in &mut out {
        for v in item.map.values_mut() {
            rewrite_references(v, &mut |r| targets.get(r).cloned().or_else(|| tails.get(r).cloned().flatten()));
        }
    }
    out
}

/// Adds `labels` to `meta.tag`, after removing any tag of their systems the sender put
/// there (only the server says who submitted what).
pub(crate) fn add_tags(meta: &mut Map<String, Value>, labels: &[Value]) {
    let systems: Vec<&Value> = labels.iter().filter_map(|l| l.get("system")).collect();
    let tags = meta.entry("tag").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(tags) = tags {
        tags.retain(|t| t.get("system").is_none_or(|s| !systems.contains(&s)));
        tags.extend(labels.iter().cloned());
    }
}

/// `Patient/123` for a fullUrl `http://example.org/fhir/Patient/123` of a Patient entry.
fn restful_tail(full_url: &str, ty: &str) -> Option<String> {
    if !(full_url.starts_with("http://") || full_url.starts_with("https://")) {
        return None;
    }
    let mut parts = full_url.rsplitn(3, '/');
    let id = parts.next()?;
    (parts.next()? == ty).then(|| format!("{ty}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_between_entries_point_at_the_items() {
        let bundle = json!({ "resourceType": "Bundle", "entry": [
            { "fullUrl": "urn:uuid:p", "resource": { "resourceType": "Patient", "id": "x" } },
            { "fullUrl": "http://h.example/fhir/Practitioner/d1", "resource": { "resourceType": "Practitioner" } },
            { "fullUrl": "urn:uuid:o", "resource": { "resourceType": "Observation",
                "subject": { "reference": "urn:uuid:p" }, "performer": [{ "reference": "Practitioner/d1" },
                { "reference": "#contained" }, { "reference": "Organization/elsewhere" }] } },
        ]});
        let items = items(&bundle, "b1", &[]);
        assert_eq!(items.len(), 3);
        let obs = &items[2].map;
        assert_eq!(obs["subject"]["reference"], format!("Patient/{}", items[0].id));
        assert_eq!(obs["performer"][0]["reference"], format!("Practitioner/{}", items[1].id));
        assert_eq!(obs["performer"][1]["reference"], "#contained");
        assert_eq!(obs["performer"][2]["reference"], "Organization/elsewhere");
        assert_eq!(obs["meta"]["source"], "urn:tsunagu:submission:b1");
        assert_eq!(item_refs(&bundle, "b1"), items.iter().map(|i| (i.ty.clone(), i.id.clone())).collect::<Vec<_>>());
        // Another submission's items never share ids.
        assert_ne!(item_id("b2", "urn:uuid:p"), items[0].id);
    }
}
