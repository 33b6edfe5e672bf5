//! FHIR canonical JSON of a document Bundle: the bytes a document signature covers.
//!
//! FHIR R4 (JSON representation, "Canonical JSON") defines `http://hl7.org/fhir/canonicalization/json`
//! as: no whitespace except inside values, properties ordered alphabetically. Its `#document`
//! variant signs everything in the Bundle except `Bundle.id` and `Bundle.meta` of the root
//! Bundle, so a document keeps its signature when a server assigns a new id or version.
//! `Bundle.signature` itself is left out too (a signature cannot cover itself).
//!
//! Choices where R4 says nothing:
//! - Property names are ordered by their UTF-16 code units, as RFC 8785 (JCS) does. FHIR
//!   property names are ASCII, so this is alphabetical and case-sensitive, with `_` (0x5F)
//!   after upper and before lower case letters (`_birthDate` before `birthDate`).
//! - Strings are escaped as JCS does: `"` `\` and control characters only (`\b \f \n \r \t`,
//!   others as `\u00xx`), everything else, including non-ASCII such as 日本語, as UTF-8.
//! - Numbers are written exactly as they were read (the workspace's serde_json keeps the
//!   literal), not in JCS's ECMAScript form: FHIR decimals carry precision (`1.50` ≠ `1.5`).
//! - Values are not otherwise altered (whitespace inside strings and narrative is kept as is).
//! - Only the root Bundle's `id`, `meta` and `signature` are dropped; entries keep theirs.

use serde_json::{Map, Value};

/// The `targetFormat` this crate writes and accepts: FHIR JSON, document canonicalization.
pub const TARGET_FORMAT: &str =
    "application/fhir+json;canonicalization=http://hl7.org/fhir/canonicalization/json#document";

/// Canonical bytes of `bundle` for a document signature (see the module comment).
pub fn document_bytes(bundle: &Value) -> Vec<u8> {
    let mut out = String::new();
    match bundle {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "meta" | "signature"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            write_object(&kept, &mut out);
        }
        other => write_value(other, &mut out),
    }
    out.into_bytes()
}

/// Canonical JSON of any value (no properties dropped).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_value(&map[key], out);
    }
    out.push('}');
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_compact_numbers_kept() {
        let v: Value = serde_json::from_str(
            r#"{"resourceType":"Bundle","id":"x","meta":{"versionId":"2"},"signature":{},
                "type":"document","entry":[{"resource":{"value":1.50,"id":"c","text":"a\"b\n日本"}}]}"#,
        )
        .unwrap();
        let s = String::from_utf8(document_bytes(&v)).unwrap();
        assert_eq!(
            s,
            r#"{"entry":[{"resource":{"id":"c","text":"a\"b\n日本","value":1.50}}],"resourceType":"Bundle","type":"document"}"#
        );
    }

    #[test]
    fn key_order_by_code_unit() {
        let v: Value = serde_json::from_str(r#"{"b":1,"_b":2,"B":3,"a":[{"z":0,"y":"\u0001"}]}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"B":3,"_b":2,"a":[{"y":"\u0001","z":0}],"b":1}"#);
    }
}
