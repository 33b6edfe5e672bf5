//! Wires the base-structure check of `tsunagu-format` into the interaction layer.

use serde_json::Value;
use tsunagu_interaction::{ContentIssue, ResourceCheck};

/// Rejects resources that break the base R4 structure (unknown elements, wrong types,
/// bad primitive formats, cardinality, required bindings), listing at most `max_issues`.
pub struct StructureCheck {
    pub max_issues: usize,
}

impl Default for StructureCheck {
    fn default() -> Self {
        StructureCheck { max_issues: tsunagu_interaction::Limits::default().max_issues }
    }
}

impl ResourceCheck for StructureCheck {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        content_issues(tsunagu_format::check_structure_limited(resource, self.max_issues))
    }

    /// It is that check (what it accepts, the XML writer can write: fuzzed in
    /// `fuzz/fuzz_targets/json_structure.rs`).
    fn checks_base_structure(&self) -> bool {
        true
    }
}

/// Format and validation issues as the interaction layer's content issues.
pub fn content_issues(issues: Vec<tsunagu_format::Issue>) -> Vec<ContentIssue> {
    issues.into_iter().map(ContentIssue::from).collect()
}

/// Rejects resources that break the base structure, any profile they declare in
/// `meta.profile` (validate-on-write with `validate = "declared"`), or the profile the
/// server requires for their type (`[required_profiles]` in the configuration).
pub struct ProfileCheck {
    pub validator: std::sync::Arc<tsunagu_validation::Validator>,
    /// Resource type → canonical of the profile every resource of that type must meet.
    pub required: std::collections::HashMap<String, String>,
}

impl ResourceCheck for ProfileCheck {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let required: Vec<&str> = self.required.get(ty).map(String::as_str).into_iter().collect();
        content_issues(self.validator.validate(resource, &required))
    }

    /// The validator runs the base-structure check first.
    fn checks_base_structure(&self) -> bool {
        true
    }

    fn check_profiles(&self, resource: &Value, profiles: &[&str]) -> Option<Vec<ContentIssue>> {
        Some(content_issues(self.validator.validate(resource, profiles)))
    }

    /// 400 when the base structure is already broken, 422 when only profiles are.
    fn rejection_status(&self, resource: &Value, _issues: &[ContentIssue]) -> u16 {
        // One error is enough to decide.
        let base_broken = tsunagu_format::check_structure_limited(resource, 1)
            .iter()
            .any(|i| i.severity == tsunagu_format::Severity::Error);
        if base_broken {
            400
        } else {
            422
        }
    }
}
