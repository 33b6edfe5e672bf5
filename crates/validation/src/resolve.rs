//! The FHIRPath `resolve()` hook for invariants: references to contained resources
//! (`#id`) and, inside a Bundle, to other entries (by `fullUrl` or `Type/id`). Nothing is
//! fetched from a store or the network.
//!
//! Lookups go through maps built once per validation, so a Bundle of many entries with
//! many references costs time linear in its size, not its square.

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_fhirpath::Hooks;

pub(crate) struct LocalResolver<'a> {
    index: Index<'a>,
}

/// Where each reference target is, by the position it is met in: the first match wins, as
/// a scan in document order would find it.
#[derive(Default)]
struct Index<'a> {
    /// Entry `fullUrl` → (entry position, resource).
    full_urls: FxHashMap<&'a str, (usize, &'a Value)>,
    /// `Type/id` of entry resources → (entry position, resource).
    local: FxHashMap<String, (usize, &'a Value)>,
    /// Contained resource id → resource, first in document order.
    contained: FxHashMap<&'a str, &'a Value>,
}

impl<'a> LocalResolver<'a> {
    pub(crate) fn new(root: &'a Value) -> Self {
        LocalResolver { index: Index::of(root) }
    }

    /// The resource `reference` points to inside the root, if it is there.
    pub(crate) fn find(&self, reference: &str) -> Option<&'a Value> {
        let index = &self.index;
        if let Some(id) = reference.strip_prefix('#') {
            return index.contained.get(id).copied();
        }
        let by_url = index.full_urls.get(reference);
        // `Type/id`, or an absolute URL ending in it.
        let local = type_and_id(reference).and_then(|l| index.local.get(l));
        match (by_url, local) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a.1 } else { b.1 }),
            (a, b) => a.or(b).map(|(_, r)| *r),
        }
    }
}

impl Hooks for LocalResolver<'_> {
    fn resolve(&self, reference: &str) -> Option<Value> {
        self.find(reference).cloned()
    }
}

impl<'a> Index<'a> {
    fn of(root: &'a Value) -> Self {
        let mut index = Index::default();
        for (i, e) in root.get("entry").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let Some(resource) = e.get("resource") else { continue };
            if let Some(url) = e.get("fullUrl").and_then(Value::as_str) {
                index.full_urls.entry(url).or_insert((i, resource));
            }
            let rt = resource.get("resourceType").and_then(Value::as_str);
            let id = resource.get("id").and_then(Value::as_str);
            if let (Some(rt), Some(id)) = (rt, id) {
                index.local.entry(format!("{rt}/{id}")).or_insert((i, resource));
            }
        }
        index.contained_below(root);
        index
    }

    /// Contained resources anywhere below `v` (a Bundle's entries each have their own
    /// `contained`), in the order a depth-first search meets them. Without recursion: the
    /// document may be as deep as the nesting limit allows.
    fn contained_below(&mut self, root: &'a Value) {
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(m) => {
                    if let Some(Value::Array(list)) = m.get("contained") {
                        for r in list {
                            if let Some(id) = r.get("id").and_then(Value::as_str) {
                                self.contained.entry(id).or_insert(r);
                            }
                        }
                    }
                    stack.extend(m.values().rev());
                }
                Value::Array(a) => stack.extend(a.iter().rev()),
                _ => {}
            }
        }
    }
}

/// `Type/id` of a reference: the last two segments, without `/_history/…`.
fn type_and_id(reference: &str) -> Option<&str> {
    let reference = reference.split("/_history/").next().unwrap_or(reference);
    let id_at = reference.rfind('/')?;
    let start = reference[..id_at].rfind('/').map_or(0, |i| i + 1);
    Some(&reference[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_by_full_url_type_and_id_or_contained_id() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p",
                "contained": [{"resourceType": "Organization", "id": "o"}]}},
            {"fullUrl": "http://x/Observation/b", "resource": {"resourceType": "Observation", "id": "b"}}]});
        let r = LocalResolver::new(&bundle);
        assert_eq!(r.find("urn:uuid:1").unwrap()["id"], "p");
        assert_eq!(r.find("Patient/p").unwrap()["id"], "p");
        assert_eq!(r.find("http://elsewhere/Observation/b").unwrap()["id"], "b");
        assert_eq!(r.find("#o").unwrap()["resourceType"], "Organization");
        assert!(r.find("Patient/q").is_none());
        assert!(r.find("#p").is_none());
    }
}
