//! `_summary` and `_elements`.

use serde_json::json;
use tsunagu_format::{elements, summary, SummaryMode};

fn patient() -> serde_json::Value {
    json!({
        "resourceType": "Patient", "id": "p",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "extension": [{"url": "u", "valueString": "s"}],
        "active": true,
        "name": [{"family": "F"}],
        "birthDate": "1970-01-01",
        "maritalStatus": {"text": "M"},
        "contact": [{"relationship": [{"text": "x"}], "name": {"family": "C"}}],
        "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"}]
    })
}

const TAG: &str = "SUBSETTED";

#[test]
fn summary_true_keeps_summary_and_mandatory_elements() {
    let s = summary(&patient(), SummaryMode::True);
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["resourceType", "id", "meta", "active", "name", "birthDate", "link"]);
    assert_eq!(s["meta"]["tag"][0]["code"], TAG);
    // Patient.link.other and .type are mandatory and summary.
    assert_eq!(s["link"][0]["type"], "seealso");
}

#[test]
fn summary_text_and_data() {
    let t = summary(&patient(), SummaryMode::Text);
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["resourceType", "id", "meta", "text"]);
    let d = summary(&patient(), SummaryMode::Data);
    assert!(d.get("text").is_none() && d.get("contact").is_some());
    assert_eq!(d["meta"]["tag"][0]["code"], TAG);
    assert_eq!(summary(&patient(), SummaryMode::False), patient());
}

#[test]
fn elements_keeps_listed_and_mandatory() {
    let mut p = patient();
    p["meta"] = json!({"versionId": "1", "tag": [{"system": "s", "code": "c"}]});
    let e = elements(&p, &["birthDate", "deceased"]);
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["resourceType", "id", "birthDate", "meta"]);
    assert_eq!(e["meta"]["tag"][1]["code"], TAG);
    let again = elements(&e, &["birthDate"]);
    assert_eq!(again["meta"]["tag"].as_array().unwrap().len(), 2);
    let o = elements(
        &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1}, "note": [{"text": "n"}]}),
        &["value"],
    );
    assert!(o.get("valueQuantity").is_some() && o.get("status").is_some() && o.get("note").is_none());
}
