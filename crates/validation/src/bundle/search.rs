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
        for (i, e) in entries.iter().enumerate() {
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
