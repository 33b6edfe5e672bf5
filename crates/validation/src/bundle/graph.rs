//! What a document or message carries (documents.html, messaging.html): every entry is
//! reached from the first one (the Composition or the MessageHeader) by following
//! references, so nothing travels in the Bundle that its subject does not cite.

use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use super::{collect_references, rest_base, FullUrls};
use crate::walk::Walk;

impl Walk<'_, '_> {
    /// An entry the first one does not reach is an error in a document; in an R4 message
    /// a warning (the HL7 validator makes it an error only from R5 on).
    pub(super) fn check_reachable(&mut self, entries: &[Value], full_urls: &FullUrls<'_>, document: bool) {
        if entries.is_empty() {
            return;
        }
        let mut reached = vec![false; entries.len()];
        reached[0] = true;
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            let Some(resource) = entries[i].get("resource") else { continue };
            let base = entries[i].get("fullUrl").and_then(Value::as_str).and_then(rest_base);
            let mut refs = Vec::new();
            collect_references(resource, &mut refs);
            for r in refs {
                if let Some(j) = full_urls.find(r, base) {
                    if !reached[j] {
                        reached[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let (severity, first_en, first_ja) = if document {
            (Severity::Error, "Composition", "Composition")
        } else {
            (Severity::Warning, "MessageHeader", "MessageHeader")
        };
        for (i, _) in reached.iter().enumerate().filter(|(_, r)| !**r) {
            self.push(
                severity,
                IssueType::Invalid,
                format!("Bundle.entry[{i}]"),
                format!("Entry {i} is not reached by following references from the {first_en}"),
                format!("エントリ {i} は {first_ja} から参照をたどっても到達できません"),
            );
        }
    }
}
