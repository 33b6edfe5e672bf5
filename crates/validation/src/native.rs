//! Base invariants checked in Rust rather than through their FHIRPath, because the
//! expression as published cannot run as meant here:
//!
//! - ele-1 is checked wherever `hasValue() or children().count() > id.count()` could
//!   fail and the structure check does not already say so: an element with an id alone;
//! - dom-3 applies `as()` to whole collections, which FHIRPath (rightly) rejects: it is
//!   checked, with dom-2, dom-4 and dom-5, by the base structure check
//!   (`tsunagu_format::check_structure`), which every validation runs first;
//! - ref-1 reads `%rootResource.contained`, and `%rootResource` of a contained resource is
//!   its container, which the walk does not hand to the evaluator;
//! - eld-19's regular expression repeats a negated class 64 times, which compiles past
//!   `max_regex_bytes`; and the specification means the whole path to match.

use rustc_hash::FxHashSet;
use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

/// Constraint keys whose expressions are never evaluated but checked here or by the base
/// structure check (which rejects the empty objects, arrays and strings that also break
/// ele-1, and checks dom-2 to dom-5).
pub(crate) const NATIVE_CONSTRAINTS: &[&str] = &["ele-1", "dom-2", "dom-3", "dom-4", "dom-5", "ref-1", "eld-19"];

impl<'a> Walk<'_, 'a> {
    /// Element.id is "unique … within a resource": two elements of one resource (its
    /// contained and nested resources each being a resource of their own) share no id.
    pub(crate) fn check_element_ids(&mut self, resource: &'a Value, loc: &str) {
        let mut seen = FxHashSet::default();
        let mut dup = None;
        element_ids(resource, true, &mut seen, &mut dup);
        if let Some(id) = dup {
            self.push(
                Severity::Error,
                IssueType::Invalid,
                loc.to_string(),
                format!(
                    "The element id '{id}' is used twice in this resource; element ids are unique within a resource"
                ),
                format!("要素 id '{id}' がこのリソースの中で 2 回使われています（要素 id はリソース内で一意です）"),
            );
        }
    }

    /// ele-1: "All FHIR elements must have a @value or children"; an id is not a child.
    pub(crate) fn check_element_content(&mut self, node: &Node<'a>) {
        let id_only = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty() && m.keys().all(|k| k == "id"));
        let bare = match (node.value, node.ext) {
            (Some(v), _) => id_only(v),
            (None, Some(ext)) => id_only(ext),
            (None, None) => false,
        };
        if !bare {
            return;
        }
        let loc = self.location(node);
        self.push(
            Severity::Error,
            IssueType::Invalid,
            loc,
            "Constraint failed: ele-1: All FHIR elements must have a @value or children (an id alone is neither)"
                .into(),
            "制約 ele-1 を満たしていません: 要素には値か子要素が必要です（id だけでは足りません）".into(),
        );
    }

    /// ref-1: a local reference `#id` names a resource contained in the container (the
    /// resource that is not itself contained); `#` alone names the container.
    pub(crate) fn check_local_reference(&mut self, node: &Node<'a>, container: &'a Value) {
        let Some(id) =
            node.value.and_then(|v| v.get("reference")).and_then(Value::as_str).and_then(|r| r.strip_prefix('#'))
        else {
            return;
        };
        if id.is_empty() {
            return;
        }
        let contained = container.get("contained").and_then(Value::as_array).into_iter().flatten();
        if contained.into_iter().any(|c| c.get("id").and_then(Value::as_str) == Some(id)) {
            return;
        }
        let loc = self.location(node);
        self.push(
            Severity::Error,
            IssueType::Invalid,
            loc,
            format!("Constraint failed: ref-1: SHALL have a contained resource if a local reference is provided (no contained resource has id '{id}')"),
            format!("制約 ref-1 を満たしていません: ローカル参照 #{id} に一致する contained リソースがありません"),
        );
    }

    /// eld-19: an element path is dot-separated names of 1 to 64 characters without
    /// whitespace or punctuation, each but the first optionally followed by `[x]` and a
    /// `:sliceName`.
    pub(crate) fn check_element_path(&mut self, node: &Node<'a>) {
        let Some(path) = node.value.and_then(|v| v.get("path")).and_then(Value::as_str) else { return };
        if valid_element_path(path) {
            return;
        }
        let loc = self.location(node);
        self.push(
            Severity::Error,
            IssueType::Invalid,
            format!("{loc}.path"),
            format!("Constraint failed: eld-19: Element names cannot include some special characters (path '{path}')"),
            format!("制約 eld-19 を満たしていません: 要素パス '{path}' に使えない文字があります"),
        );
    }
}

fn valid_element_path(path: &str) -> bool {
    const FORBIDDEN: &str = ".,:;'\"/|?!@#$%&*()[]{}";
    let name_ok = |n: &str| {
        (1..=64).contains(&n.chars().count()) && !n.chars().any(|c| c.is_whitespace() || FORBIDDEN.contains(c))
    };
    let mut parts = path.split('.');
    if !parts.next().is_some_and(name_ok) {
        return false;
    }
    parts.all(|part| {
        let (name, slice) = match part.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (part, None),
        };
        let name = name.strip_suffix("[x]").unwrap_or(name);
        name_ok(name) && slice.is_none_or(|s| !s.is_empty() && !s.chars().any(char::is_whitespace))
    })
}

/// Collects the element ids under `v` (the resource's own id excluded), stopping at nested
/// resources; the first repeated one goes to `dup`.
fn element_ids<'a>(v: &'a Value, root: bool, seen: &mut FxHashSet<&'a str>, dup: &mut Option<&'a str>) {
    match v {
        Value::Object(m) => {
            if !root && m.contains_key("resourceType") {
                return;
            }
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("id", Value::String(id)) if !root => {
                        if !seen.insert(id) && dup.is_none() {
                            *dup = Some(id);
                        }
                    }
                    ("contained", _) if root => {}
                    // ElementDefinition ids name element paths; snapshot and differential
                    // repeat them by design.
                    ("snapshot" | "differential", _) => {}
                    _ => element_ids(x, false, seen, dup),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| element_ids(x, false, seen, dup)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::valid_element_path;

    #[test]
    fn element_paths_follow_eld_19() {
        for ok in ["Patient", "Observation.value[x]", "Patient.extension:race", "Observation.component:bp/sys.code"] {
            assert!(valid_element_path(ok), "{ok}");
        }
        for bad in ["Patient.", "Patient..name", "Pat ient", "Patient.na#me", "Patient.name:", ""] {
            assert!(!valid_element_path(bad), "{bad}");
        }
    }
}
