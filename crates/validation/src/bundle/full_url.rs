//! Bundle.entry.fullUrl (bundle.html §Resource URL & Uniqueness rules): an absolute URL,
//! or a `urn:uuid:` / `urn:oid:` of the right form; a RESTful one agrees with the type and
//! id of its resource; unique in the Bundle unless the versions differ (bdl-7, named here
//! with the entries that clash). Entries without a fullUrl may not repeat a `Type/id`.

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use super::type_and_id;
use crate::walk::Walk;

impl Walk<'_, '_> {
    pub(super) fn check_full_urls(&mut self, entries: &[Value], kind: &str) {
        for (i, e) in entries.iter().enumerate() {
            let Some(url) = e.get("fullUrl").and_then(Value::as_str) else { continue };
            if let Some((en, ja)) = form_problem(url) {
                self.push(Severity::Error, IssueType::Invalid, format!("Bundle.entry[{i}].fullUrl"), en, ja);
            } else if let Some(resource) = e.get("resource") {
                self.check_agrees_with_resource(i, url, resource);
            }
        }
        // A history Bundle holds several versions of one resource under one fullUrl.
        if kind == "history" {
            return;
        }
        let mut seen: FxHashMap<(&str, Option<&str>), usize> = FxHashMap::default();
        let mut seen_ids: FxHashMap<(&str, &str, Option<&str>), usize> = FxHashMap::default();
        for (i, e) in entries.iter().enumerate() {
            let version = e.pointer("/resource/meta/versionId").and_then(Value::as_str);
            match e.get("fullUrl").and_then(Value::as_str) {
                Some(url) => {
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
                None => {
                    let rt = e.pointer("/resource/resourceType").and_then(Value::as_str);
                    let id = e.pointer("/resource/id").and_then(Value::as_str);
                    let (Some(rt), Some(id)) = (rt, id) else { continue };
                    if let Some(first) = seen_ids.insert((rt, id, version), i) {
                        self.push(
                            Severity::Error,
                            IssueType::Invalid,
                            format!("Bundle.entry[{i}].resource.id"),
                            format!("{rt}/{id} is already the resource of entry {first}"),
                            format!("{rt}/{id} はエントリ {first} のリソースと重複しています"),
                        );
                    }
                }
            }
        }
    }

    /// "The fullUrl SHALL NOT disagree with the id in the resource": when it ends in
    /// `Type/id`, those are the resource's type and id.
    fn check_agrees_with_resource(&mut self, i: usize, url: &str, resource: &Value) {
        if url.starts_with("urn:") {
            return;
        }
        let Some((ty, id)) = type_and_id(url).and_then(|t| t.split_once('/')) else { return };
        if !tsunagu_model::r4().is_resource_type(ty) {
            return;
        }
        let rt = resource.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let rid = resource.get("id").and_then(Value::as_str);
        let (en, ja) = if ty != rt {
            (
                format!("fullUrl {url} names a {ty}, but the entry holds a {rt}"),
                format!("fullUrl {url} は {ty} を指していますが、エントリのリソースは {rt} です"),
            )
        } else if rid.is_some_and(|r| r != id) {
            let rid = rid.unwrap_or("");
            (
                format!("fullUrl {url} does not agree with the resource id '{rid}'"),
                format!("fullUrl {url} がリソースの id '{rid}' と一致しません"),
            )
        } else {
            return;
        };
        self.push(Severity::Error, IssueType::Invalid, format!("Bundle.entry[{i}].fullUrl"), en, ja);
    }
}

/// What is wrong with the form of a fullUrl, in English and Japanese; `None` when nothing.
fn form_problem(url: &str) -> Option<(String, String)> {
    if let Some(uuid) = url.strip_prefix("urn:uuid:") {
        return (!is_uuid(uuid)).then(|| {
            (
                format!("fullUrl {url} is not a valid urn:uuid (a UUID is 8-4-4-4-12 hexadecimal digits)"),
                format!("fullUrl {url} は正しい urn:uuid ではありません"),
            )
        });
    }
    if let Some(oid) = url.strip_prefix("urn:oid:") {
        return (!is_oid(oid)).then(|| {
            (format!("fullUrl {url} is not a valid urn:oid"), format!("fullUrl {url} は正しい urn:oid ではありません"))
        });
    }
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    let absolute = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (!absolute).then(|| {
        (
            format!("fullUrl {url} must be an absolute URL (or a urn:uuid: or urn:oid:)"),
            format!("fullUrl {url} は絶対 URL（または urn:uuid:、urn:oid:）でなければなりません"),
        )
    })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `[0-2](\.(0|[1-9][0-9]*))+`, the oid datatype's form.
fn is_oid(s: &str) -> bool {
    let mut arcs = s.split('.');
    let first_ok = arcs.next().is_some_and(|a| matches!(a, "0" | "1" | "2"));
    let rest: Vec<&str> = arcs.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && (a == &"0" || !a.starts_with('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_forms() {
        assert!(form_problem("urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7").is_none());
        assert!(form_problem("urn:oid:1.2.392.100495").is_none());
        assert!(form_problem("http://example.org/fhir/Patient/1").is_none());
        assert!(form_problem("urn:uuid:1234").is_some());
        assert!(form_problem("urn:oid:1.02").is_some());
        assert!(form_problem("Patient/1").is_some());
    }
}
