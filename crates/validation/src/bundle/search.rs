//! Searchset Bundles (http.html §Paging, bundle.html §Bundle.entry.search): the paging
//! links `self`, `first`, `previous`, `next` and `last` each appear at most once, and an
//! entry whose search mode is `outcome` holds an OperationOutcome.

use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

const PAGING_RELATIONS: &[&str] = &["self", "first", "previous", "prev", "next", "last"];

impl Walk<'_, '_> {
    pub(super) fn check_search_set(&mut self, bundle: &Value, entries: &[Value]) {
        let links = bundle.get("link").and_then(Value::as_array).into_iter().flatten();
        let mut seen: Vec<&str> = Vec::new();
        for (i, link) in links.enumerate() {
            let Some(relation) = link.get("relation").and_then(Value::as_str) else { continue };
            if !PAGING_RELATIONS.contains(&relation) {
                continue;
            }
            if seen.contains(&relation) {
                self.push(
                    Severity::Error,
                    IssueType::Invalid,
                    format!("Bundle.link[{i}]"),
                    format!("The link relation '{relation}' appears more than once; a page has one of each"),
                    format!("リンク関係 '{relation}' が複数あります（1 ページに 1 つだけです）"),
                );
            }
            seen.push(relation);
        }
        let searched = searched_type(bundle);
        for (i, e) in entries.iter().enumerate() {
            if e.pointer("/search/mode").and_then(Value::as_str) == Some("match") {
                self.check_match(i, e, searched);
                continue;
            }
            if e.pointer("/search/mode").and_then(Value::as_str) != Some("outcome") {
                continue;
            }
            let rt = e.pointer("/resource/resourceType").and_then(Value::as_str);
            if rt.is_some_and(|rt| rt != "OperationOutcome") {
                let rt = rt.unwrap_or("");
                self.push(
                    Severity::Error,
                    IssueType::Invalid,
                    format!("Bundle.entry[{i}].search.mode"),
                    format!("An entry with search mode 'outcome' must hold an OperationOutcome, not a {rt}"),
                    format!("search.mode が 'outcome' のエントリは OperationOutcome でなければなりません（{rt} です）"),
                );
            }
        }
    }
}

impl Walk<'_, '_> {
    /// A match is a resource found by the search: it has an id (the server's), and a
    /// type-level search (`self` link `…/Patient?…`) finds only that type.
    fn check_match(&mut self, i: usize, entry: &Value, searched: Option<&str>) {
        let Some(resource) = entry.get("resource") else { return };
        let rt = resource.get("resourceType").and_then(Value::as_str).unwrap_or("");
        if resource.get("id").is_none() {
            self.push(
                Severity::Error,
                IssueType::Invalid,
                format!("Bundle.entry[{i}].resource"),
                "A search match is a stored resource and has an id".into(),
                "検索で一致したリソースには id があります".into(),
            );
        }
        if let Some(ty) = searched.filter(|ty| *ty != rt) {
            self.push(
                Severity::Error,
                IssueType::Invalid,
                format!("Bundle.entry[{i}].resource"),
                format!("A search of {ty} (the self link) matched a {rt}"),
                format!("{ty} の検索（self リンク）で {rt} が一致しています"),
            );
        }
    }
}

/// The resource type a searchset's `self` link searches (`[base]/Type?…` or
/// `[base]/Type/_search?…`); `None` for system-level or compartment searches.
fn searched_type(bundle: &Value) -> Option<&str> {
    let links = bundle.get("link")?.as_array()?;
    let url = links.iter().find(|l| l.get("relation").and_then(Value::as_str) == Some("self"))?.get("url")?.as_str()?;
    let path = url.split(['?', '#']).next()?;
    let path = path.strip_suffix("/_search").unwrap_or(path);
    let last = path.rsplit('/').next()?;
    tsunagu_model::r4().is_resource_type(last).then_some(last)
}
