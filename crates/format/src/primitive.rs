//! How each primitive type appears in JSON, and the text form shared by both formats.

use serde_json::{Number, Value};

/// The JSON representation FHIR prescribes for a primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Bool,
    Number,
    String,
}

pub(crate) fn json_kind(type_code: &str) -> JsonKind {
    match type_code {
        "boolean" => JsonKind::Bool,
        "integer" | "decimal" | "positiveInt" | "unsignedInt" => JsonKind::Number,
        _ => JsonKind::String,
    }
}

/// The XML `value` text of a JSON primitive; `None` for objects, arrays and null.
pub(crate) fn to_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        // arbitrary_precision keeps the lexical form, so 1.50 stays 1.50.
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(true) => Some("true".into()),
        Value::Bool(false) => Some("false".into()),
        _ => None,
    }
}

/// The JSON value of an XML `value` text. Text that is not a valid literal of the type's
/// JSON kind stays a string, so the structure check can report it instead of losing it.
pub(crate) fn from_text(type_code: &str, s: &str) -> Value {
    match json_kind(type_code) {
        JsonKind::Bool => match s {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(s.to_string()),
        },
        JsonKind::Number if is_json_number(s) => match s.parse::<Number>() {
            Ok(n) => Value::Number(n),
            Err(_) => Value::String(s.to_string()),
        },
        _ => Value::String(s.to_string()),
    }
}

/// JSON number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        match digits(b, i + 1) {
            Some(end) => i = end,
            None => return false,
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(b, i) {
            Some(end) => i = end,
            None => return false,
        }
    }
    i == b.len()
}

/// The end of a non-empty run of ASCII digits starting at `i`.
fn digits(b: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while matches!(b.get(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    (i > start).then_some(i)
}
