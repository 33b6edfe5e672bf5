//! The safety guard every written resource passes, whatever the configured validation:
//! nesting within `max_json_depth` (deeper documents cannot be read back by the JSON
//! reader, and every recursive walk over them risks the stack), strings within
//! `max_string_chars` (every index and search over one carries it whole), only characters both wire
//! formats can carry (a string with U+001B could be stored from JSON and then never be
//! written as XML), and narrative that is safe to show in a browser (FHIR's txt-1 and
//! txt-2).

use crate::error::{ContentIssue, InteractionError};
use serde_json::Value;
use tsunagu_limits::{Limit, LimitExceeded, Limits};

/// Fails with the limit, the character or the narrative problem; walks the resource once,
/// without recursion. `narrative` is false when the content check already applies the
/// narrative rules (the base-structure check does, to every `div`).
pub(crate) fn check(resource: &Value, limits: &Limits, narrative: bool) -> Result<(), InteractionError> {
    let max = limits.max_json_depth;
    // Each value with its depth and the property it is the value of (for the message).
    let mut stack: Vec<(&Value, usize, &str)> = vec![(resource, 1, "")];
    while let Some((v, depth, key)) = stack.pop() {
        match v {
            Value::Object(map) => {
                if depth > max {
                    return Err(LimitExceeded::new(Limit::JsonDepth, max).into());
                }
                if narrative && map.get("resourceType").is_some_and(Value::is_string) {
                    check_narrative(map)?;
                }
                for (k, c) in map {
                    characters(k, k)?;
                    stack.push((c, depth + 1, k));
                }
            }
            Value::Array(items) => {
                if depth > max {
                    return Err(LimitExceeded::new(Limit::JsonDepth, max).into());
                }
                stack.extend(items.iter().map(|c| (c, depth + 1, key)));
            }
            Value::String(s) => {
                // Counted in characters, as R4's maxLength is (bytes first: cheap, and never
                // fewer). base64Binary and xhtml are not strings: bounded by the body alone.
                let max = limits.max_string_chars;
                if s.len() > max && !base64_or_xhtml(key) && s.chars().count() > max {
                    let e = LimitExceeded::new(Limit::StringChars, max).found(s.chars().count()).at(key);
                    return Err(e.into());
                }
                characters(s, key)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Properties whose values are base64Binary or xhtml in R4: `data` (Attachment, Binary,
/// Signature; SampledData's string `data` too, which is no loss), `value[x]` and the
/// ElementDefinition choices as base64Binary, `Device.udiCarrier.carrierAIDC`,
/// `AuditEvent.entity.query`, and the narrative `div`.
fn base64_or_xhtml(key: &str) -> bool {
    matches!(key, "data" | "div" | "carrierAIDC" | "query") || key.ends_with("Base64Binary")
}

/// FHIR strings should hold no control characters but tab, CR and LF (datatypes.html);
/// XML cannot hold them at all, so here it is a must.
fn characters(s: &str, key: &str) -> Result<(), InteractionError> {
    let Some(c) = tsunagu_format::first_non_xml_char(s) else { return Ok(()) };
    let code = format!("U+{:04X}", c as u32);
    let at = (!key.is_empty()).then(|| key.to_string());
    Err(InteractionError::invalid(
        "invalid",
        at,
        format!("character {code} is not allowed in a FHIR string (only tab, CR and LF among control characters)"),
        format!("文字 {code} は FHIR の文字列に使えません(制御文字はタブ・CR・LF のみ可)"),
    ))
}

/// Refuses what the FHIR XML writer cannot write (unknown elements, say), for servers
/// whose content check is not the base-structure check (`validate = "off"`, `import
/// --no-check`): stored, such a resource would fail every read that asks for XML.
pub(crate) fn check_xml_form(resource: &Value) -> Result<(), InteractionError> {
    tsunagu_format::json_to_xml(resource, false).map(drop).map_err(|e| {
        InteractionError::invalid(
            "structure",
            None,
            format!("the resource cannot be represented in FHIR XML, so it is not stored: {e}"),
            format!("このリソースは FHIR の XML で表せないため保存しません: {e}"),
        )
    })
}

/// The narrative of one resource (contained and Bundle-entry resources are met on their
/// own by the walk).
fn check_narrative(resource: &serde_json::Map<String, Value>) -> Result<(), InteractionError> {
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
        assert!(check(&nested(3), &limits, true).is_ok());
        let err = check(&nested(4), &limits, true).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message(crate::Lang::En).contains("max_json_depth = 10"), "{}", err.message(crate::Lang::En));
    }

    #[test]
    fn strings_past_max_string_chars_are_refused_but_not_base64_or_narrative() {
        let limits = Limits { max_string_chars: 10, ..Limits::default() };
        let long = "a".repeat(11);
        let family = json!({"resourceType": "Patient", "name": [{"family": long, "given": ["x"]}]});
        let err = check(&family, &limits, true).unwrap_err();
        assert_eq!((err.status(), err.issue_code()), (400, "too-long"));
        assert!(err.message(crate::Lang::En).contains("max_string_chars = 10"), "{}", err.message(crate::Lang::En));
        // Characters, not bytes: ten kanji are thirty bytes.
        let kanji = json!({"resourceType": "Patient", "name": [{"family": "山".repeat(10)}]});
        assert!(check(&kanji, &limits, true).is_ok());
        let ext = json!({"resourceType": "Patient", "extension": [{"url": "http://x", "valueBase64Binary": "QUFB".repeat(10)}]});
        assert!(check(&ext, &limits, true).is_ok());
        let given = json!({"resourceType": "Patient", "name": [{"given": ["x", long]}]});
        assert!(check(&given, &limits, true).is_err(), "array items are strings too");
        let ten = json!({"resourceType": "Patient", "name": [{"family": "a".repeat(10)}]});
        assert!(check(&ten, &limits, true).is_ok());
        let data = json!({"resourceType": "Binary", "contentType": "text/plain", "data": "QUFB".repeat(10)});
        assert!(check(&data, &limits, true).is_ok());
        let div = format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "a".repeat(20));
        let narrative = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
        assert!(check(&narrative, &limits, true).is_ok());
    }

    #[test]
    fn unsafe_narrative_is_refused_in_contained_resources_too() {
        let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>";
        let r = json!({"resourceType": "Patient", "contained": [{"resourceType": "Patient", "text": {"status": "generated", "div": div}}]});
        assert!(check(&r, &Limits::default(), true).is_err());
        let ok = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>山田</p></div>"}});
        assert!(check(&ok, &Limits::default(), true).is_ok());
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused_anywhere() {
        let ok = json!({"resourceType": "Patient", "name": [{"family": "山田\t太郎\r\n！"}]});
        assert!(check(&ok, &Limits::default(), true).is_ok());
        for bad in ["a\u{1b}b", "\u{0}", "x\u{FFFF}", "\u{FFFE}"] {
            let r = json!({"resourceType": "Patient", "name": [{"given": ["ok", bad]}]});
            let err = check(&r, &Limits::default(), true).unwrap_err();
            assert_eq!(err.status(), 400);
            let InteractionError::Invalid { issues, .. } = err else { panic!("not an invalid-content error") };
            assert!(issues[0].en.contains("U+") && issues[0].expression.as_deref() == Some("given"), "{issues:?}");
        }
        let mut key = serde_json::Map::new();
        key.insert("resourceType".into(), json!("Patient"));
        key.insert("a\u{7}".into(), json!("x"));
        assert!(check(&Value::Object(key), &Limits::default(), true).is_err());
    }
}
