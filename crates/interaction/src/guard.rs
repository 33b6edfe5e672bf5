//! The safety guard every written resource passes, whatever the configured validation:
//! nesting within `max_json_depth` (deeper documents cannot be read back by the JSON
//! reader, and every recursive walk over them risks the stack), and narrative that is safe
//! to show in a browser (FHIR's txt-1 and txt-2).

use crate::error::{ContentIssue, InteractionError};
use serde_json::Value;
use tsunagu_limits::{Limit, LimitExceeded, Limits};

/// Fails with the limit or the narrative problem; walks the resource once, without
/// recursion.
pub(crate) fn check(resource: &Value, limits: &Limits) -> Result<(), InteractionError> {
    let max = limits.max_json_depth;
    let mut stack: Vec<(&Value, usize)> = vec![(resource, 1)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Object(map) => {
                if depth > max {
                    return Err(LimitExceeded::new(Limit::JsonDepth, max).into());
                }
                if map.get("resourceType").is_some_and(Value::is_string) {
                    narrative(map)?;
                }
                stack.extend(map.values().map(|c| (c, depth + 1)));
            }
            Value::Array(items) => {
                if depth > max {
                    return Err(LimitExceeded::new(Limit::JsonDepth, max).into());
                }
                stack.extend(items.iter().map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The narrative of one resource (contained and Bundle-entry resources are met on their
/// own by the walk).
fn narrative(resource: &serde_json::Map<String, Value>) -> Result<(), InteractionError> {
    let Some(div) = resource.get("text").and_then(|t| t.get("div")).and_then(Value::as_str) else {
        return Ok(());
    };
    tsunagu_format::check_narrative(div).map_err(|(en, ja)| {
        let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or("Resource");
        InteractionError::invalid("invalid", Some(format!("{ty}.text.div")), en, ja)
    })
}

/// Keeps at most `max` issues, then one that says the list was cut.
pub(crate) fn cut_issues(issues: &mut Vec<ContentIssue>, max: usize) {
    if issues.len() <= max {
        return;
    }
    issues.truncate(max);
    let t = tsunagu_format::truncation_issue(max);
    issues.push(ContentIssue {
        severity: t.severity.as_str(),
        code: t.code.as_str(),
        expression: None,
        en: t.message_en,
        ja: t.message_ja,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!({"url": "http://x", "valueString": "x"});
        for _ in 0..levels {
            v = json!({"url": "http://x", "extension": [v]});
        }
        json!({"resourceType": "Patient", "extension": [v]})
    }

    #[test]
    fn depth_is_counted_from_the_resource() {
        let limits = Limits { max_json_depth: 10, ..Limits::default() };
        // Patient (1) → extension array (2) → object (3); each level adds 2.
        assert!(check(&nested(3), &limits).is_ok());
        let err = check(&nested(4), &limits).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message(crate::Lang::En).contains("max_json_depth = 10"), "{}", err.message(crate::Lang::En));
    }

    #[test]
    fn unsafe_narrative_is_refused_in_contained_resources_too() {
        let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>";
        let r = json!({"resourceType": "Patient", "contained": [{"resourceType": "Patient", "text": {"status": "generated", "div": div}}]});
        assert!(check(&r, &Limits::default()).is_err());
        let ok = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>山田</p></div>"}});
        assert!(check(&ok, &Limits::default()).is_ok());
    }
}
