//! FHIR datatypes as JSON, the few shapes every resource builder repeats.

use serde_json::{json, Value};

use crate::codes::system;
use crate::record::Indication;

/// An object from owned fields. `json!` copies every interpolated `Value` through the
/// serializer; Bundles and entries hold whole resources, so they are built by moving.
pub(crate) fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A Bundle entry, moving the resource in.
pub(crate) fn entry(full_url: &str, resource: Value) -> Value {
    object([("fullUrl", Value::String(full_url.to_owned())), ("resource", resource)])
}

pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

pub(crate) fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)], "text": display })
}

pub(crate) fn reference(url: &str) -> Value {
    json!({ "reference": url })
}

pub(crate) fn typed_reference(url: &str, resource_type: &str) -> Value {
    json!({ "reference": url, "type": resource_type })
}

pub(crate) fn urn(uuid: &str) -> String {
    format!("urn:uuid:{uuid}")
}

/// `meta` with one profile and, for information items, an optional indication tag.
pub(crate) fn meta(profile: &str, last_updated: &str, indication: Option<Indication>) -> Value {
    let mut meta = json!({ "lastUpdated": last_updated, "profile": [profile] });
    if let Some(tag) = indication {
        meta["tag"] = json!([coding(system::INDICATION, tag.code(), tag.display())]);
    }
    meta
}

/// The 医療機関コード of the institution that recorded a resource, as JP-CLINS requires
/// on every Patient, Condition, AllergyIntolerance, Observation and MedicationRequest.
pub(crate) fn institution_extension(code: &str) -> Value {
    json!({
        "url": system::INSTITUTION_EXT,
        "valueIdentifier": { "system": system::INSTITUTION_NO, "value": code }
    })
}

pub(crate) fn resource_identifier(value: String) -> Value {
    json!({ "system": system::RESOURCE_INSTANCE, "value": value })
}

/// Kanji (IDE) and katakana (SYL) HumanNames, told apart by the ISO 21090 extension.
pub(crate) fn japanese_names(family: (&str, &str), given: (&str, &str)) -> Value {
    let one = |representation: &str, family: &str, given: &str| {
        json!({
            "extension": [{ "url": system::NAME_REPRESENTATION, "valueCode": representation }],
            "use": "official",
            "text": format!("{family} {given}"),
            "family": family,
            "given": [given]
        })
    };
    json!([one("IDE", family.0, given.0), one("SYL", family.1, given.1)])
}

/// A decimal with one fractional digit, from tenths (no binary floating point between
/// the draw and the bytes written).
pub(crate) fn tenths(value: i64) -> Value {
    let text = format!("{}.{}", value / 10, value % 10);
    serde_json::from_str(&text).expect("a decimal literal")
}

/// An `additional` narrative, as the document profiles fix section text to.
pub(crate) fn narrative(text: &str) -> Value {
    json!({
        "status": "additional",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", escape(text))
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
