//! Wires the base-structure check of `tsunagu-format` into the interaction layer.

use serde_json::Value;
use tsunagu_interaction::{ContentIssue, ResourceCheck};

/// Rejects resources that break the base R4 structure (unknown elements, wrong types,
/// bad primitive formats, cardinality, required bindings).
pub struct StructureCheck;

impl ResourceCheck for StructureCheck {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        tsunagu_format::check_structure(resource)
            .into_iter()
            .map(|i| ContentIssue {
                severity: i.severity.as_str(),
                code: i.code.as_str(),
                expression: Some(i.location),
                en: i.message_en,
                ja: i.message_ja,
            })
            .collect()
    }
}
