//! Wires the base-structure check of `tsunagu-format` into the interaction layer.

use serde_json::Value;
use tsunagu_interaction::{ContentIssue, ResourceCheck};

/// Rejects resources that break the base R4 structure (unknown elements, wrong types,
/// bad primitive formats, cardinality, required bindings).
pub struct StructureCheck;

impl ResourceCheck for StructureCheck {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        content_issues(tsunagu_format::check_structure(resource))
    }
}

/// Format and validation issues as the interaction layer's content issues.
pub fn content_issues(issues: Vec<tsunagu_format::Issue>) -> Vec<ContentIssue> {
    issues
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

/// Rejects resources that break the base structure or any profile they declare in
/// `meta.profile` (validate-on-write with `validate = "declared"`).
pub struct ProfileCheck(pub std::sync::Arc<tsunagu_validation::Validator>);

impl ResourceCheck for ProfileCheck {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        content_issues(self.0.validate(resource, &[]))
    }
}
