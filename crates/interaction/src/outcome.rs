//! The one place where errors become OperationOutcome resources.

use crate::error::{ContentIssue, InteractionError, Lang};
use serde_json::{json, Value};

/// The OperationOutcome describing an error, in the client's language. Content issues keep
/// their FHIRPath locations.
pub fn operation_outcome(err: &InteractionError, lang: Lang) -> Value {
    let inner = match err {
        InteractionError::Entry { source, .. } => source.as_ref(),
        e => e,
    };
    let mut issues = match inner {
        InteractionError::Invalid { issues: found, .. } => found.iter().map(|i| issue_json(i, lang)).collect(),
        _ => Vec::new(),
    };
    // A 503 asks to retry (a transient shortage), the server did not fail.
    let severity = if err.status() >= 500 && err.status() != 503 { "fatal" } else { "error" };
    issues.insert(0, json!({ "severity": severity, "code": err.issue_code(), "diagnostics": err.message(lang) }));
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

/// The OperationOutcome of a validation (`$validate`, `tsunagu validate`): its issues, or
/// one informational issue saying that all is well.
pub fn validation_outcome(found: &[ContentIssue], lang: Lang) -> Value {
    if found.is_empty() {
        return information("No issues found", "問題は見つかりませんでした", lang);
    }
    json!({ "resourceType": "OperationOutcome", "issue": found.iter().map(|i| issue_json(i, lang)).collect::<Vec<_>>() })
}

fn issue_json(i: &ContentIssue, lang: Lang) -> Value {
    let mut issue = json!({
        "severity": i.severity,
        "code": i.code,
        "diagnostics": if lang == Lang::Ja { &i.ja } else { &i.en },
    });
    if let Some(expr) = &i.expression {
        issue["expression"] = json!([expr]);
    }
    issue
}

/// A warning OperationOutcome with one issue (`code` from the FHIR issue-type codes).
pub fn warning(code: &str, en: &str, ja: &str, lang: Lang) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "warning", "code": code,
                    "diagnostics": if lang == Lang::Ja { ja } else { en } }]
    })
}

/// An informational OperationOutcome (for `Prefer: return=OperationOutcome`).
pub fn information(en: &str, ja: &str, lang: Lang) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "information", "code": "informational",
                    "diagnostics": if lang == Lang::Ja { ja } else { en } }]
    })
}
