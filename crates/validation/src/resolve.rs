//! The FHIRPath `resolve()` hook for invariants: references to contained resources
//! (`#id`) and, inside a Bundle, to other entries (by `fullUrl` or `Type/id`). Nothing is
//! fetched from a store or the network.

use serde_json::Value;
use tsunagu_fhirpath::Hooks;

pub(crate) struct LocalResolver<'a> {
    pub root: &'a Value,
}

impl Hooks for LocalResolver<'_> {
    fn resolve(&self, reference: &str) -> Option<Value> {
        resolve_local(self.root, reference).cloned()
    }
}

/// The resource `reference` points to inside `root`, if it is there.
pub(crate) fn resolve_local<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    if let Some(id) = reference.strip_prefix('#') {
        return find_contained(root, id);
    }
    let entries = root.get("entry")?.as_array()?;
    entries.iter().find_map(|e| {
        let resource = e.get("resource")?;
        if e.get("fullUrl").and_then(Value::as_str) == Some(reference) {
            return Some(resource);
        }
        let rt = resource.get("resourceType")?.as_str()?;
        let id = resource.get("id")?.as_str()?;
        let local = format!("{rt}/{id}");
        (reference == local || reference.ends_with(&format!("/{local}"))).then_some(resource)
    })
}

/// A contained resource with this id anywhere below `v` (a Bundle's entries each have
/// their own `contained`).
fn find_contained<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(list)) = m.get("contained") {
                if let Some(hit) = list.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(id)) {
                    return Some(hit);
                }
            }
            m.values().find_map(|x| find_contained(x, id))
        }
        Value::Array(a) => a.iter().find_map(|x| find_contained(x, id)),
        _ => None,
    }
}
