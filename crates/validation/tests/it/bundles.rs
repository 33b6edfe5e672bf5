//! Bundle rules (bundle.html, documents.html, messaging.html, http.html §Paging): each
//! with a Bundle that breaks it and one that keeps it, against the core package alone.

use crate::support;

use serde_json::{json, Value};
use tsunagu_validation::Severity;

fn issues(resource: &Value, severity: Severity) -> Vec<String> {
    let v = support::core_validator().expect("checked by the caller");
    v.validate(resource, &[])
        .into_iter()
        .filter(|i| i.severity == severity)
        .map(|i| format!("{} {}", i.location, i.message_en))
        .collect()
}

fn errors(resource: &Value) -> Vec<String> {
    issues(resource, Severity::Error)
}

fn assert_error(resource: &Value, text: &str) {
    let found = errors(resource);
    assert!(found.iter().any(|e| e.contains(text)), "expected '{text}', got {found:?}");
}

fn collection(entries: Value) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id})
}

#[test]
fn full_urls_are_absolute_and_agree_with_the_resource() {
    if support::core_validator().is_none() {
        return;
    }
    let one = |url: &str, resource: Value| collection(json!([{"fullUrl": url, "resource": resource}]));
    assert_error(&one("Patient/a", patient("a")), "must be an absolute URL");
    assert_error(&one("urn:uuid:not-a-uuid", patient("a")), "not a valid urn:uuid");
    assert_error(&one("urn:oid:1.02.3", patient("a")), "not a valid urn:oid");
    // "The fullUrl SHALL NOT disagree with the id in the resource".
    assert_error(&one("http://example.org/fhir/Patient/b", patient("a")), "does not agree with the resource id");
    assert_error(&one("http://example.org/fhir/Observation/a", patient("a")), "names a Observation");
    for ok in ["http://example.org/fhir/Patient/a", "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7", "urn:oid:1.2.3"] {
        assert_eq!(errors(&one(ok, patient("a"))), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn entries_do_not_repeat() {
    if support::core_validator().is_none() {
        return;
    }
    let same_url = collection(json!([
        {"fullUrl": "http://example.org/fhir/Patient/a", "resource": patient("a")},
        {"fullUrl": "http://example.org/fhir/Patient/a", "resource": patient("a")}]));
    assert_error(&same_url, "already used by entry 0");
    let same_id = collection(json!([{"resource": patient("a")}, {"resource": patient("a")}]));
    assert_error(&same_id, "Patient/a is already the resource of entry 0");
    let distinct = collection(json!([{"resource": patient("a")}, {"resource": patient("b")}]));
    assert_eq!(errors(&distinct), Vec::<String>::new());
}

#[test]
fn a_searchset_page_has_each_paging_link_once() {
    if support::core_validator().is_none() {
        return;
    }
    let page = |links: Value, mode: &str, resource: Value| {
        json!({"resourceType": "Bundle", "type": "searchset", "total": 1, "link": links,
            "entry": [{"fullUrl": "http://example.org/fhir/Patient/a", "resource": resource,
                "search": {"mode": mode}}]})
    };
    let link = |relation: &str, url: &str| json!({"relation": relation, "url": url});
    let twice = json!([
        link("self", "http://example.org/fhir/Patient?name=a"),
        link("next", "http://example.org/fhir/Patient?name=a&page=2"),
        link("next", "http://example.org/fhir/Patient?name=a&page=3")
    ]);
    assert_error(&page(twice, "match", patient("a")), "'next' appears more than once");
    let once = json!([
        link("self", "http://example.org/fhir/Patient?name=a"),
        link("next", "http://example.org/fhir/Patient?name=a&page=2")
    ]);
    assert_eq!(errors(&page(once.clone(), "match", patient("a"))), Vec::<String>::new());
    // search.mode "outcome": "An OperationOutcome that provides additional information".
    assert_error(&page(once, "outcome", patient("a")), "must hold an OperationOutcome");
}

fn document(entries: Value) -> Value {
    json!({"resourceType": "Bundle", "type": "document", "timestamp": "2024-04-01T10:00:00+09:00",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "entry": entries})
}

fn composition(subject: &str) -> Value {
    json!({"resourceType": "Composition", "status": "final", "type": {"text": "note"},
        "subject": {"reference": subject}, "date": "2024-04-01", "author": [{"reference": subject}],
        "title": "Note"})
}

const COMPOSITION_URL: &str = "urn:uuid:9d4a5d6e-0f0a-4a55-9d1c-3a4f2f0e1b01";
const PATIENT_URL: &str = "urn:uuid:9d4a5d6e-0f0a-4a55-9d1c-3a4f2f0e1b02";
const OTHER_URL: &str = "urn:uuid:9d4a5d6e-0f0a-4a55-9d1c-3a4f2f0e1b03";

#[test]
fn a_document_carries_what_it_references_and_nothing_else() {
    if support::core_validator().is_none() {
        return;
    }
    let complete = document(json!([
        {"fullUrl": COMPOSITION_URL, "resource": composition(PATIENT_URL)},
        {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient"}}]));
    assert_eq!(errors(&complete), Vec::<String>::new());
    let dangling = document(json!([
        {"fullUrl": COMPOSITION_URL, "resource": composition("http://example.org/fhir/Patient/elsewhere")}]));
    assert_error(&dangling, "a document carries what it references");
    let orphan = document(json!([
        {"fullUrl": COMPOSITION_URL, "resource": composition(PATIENT_URL)},
        {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient"}},
        {"fullUrl": OTHER_URL, "resource": {"resourceType": "Patient"}}]));
    assert_error(&orphan, "Entry 2 is not reached by following references from the Composition");
}

#[test]
fn a_message_reaches_its_entries_from_the_message_header() {
    if support::core_validator().is_none() {
        return;
    }
    let message = |focus: Value| {
        json!({"resourceType": "Bundle", "type": "message", "timestamp": "2024-04-01T10:00:00+09:00", "entry": [
            {"fullUrl": COMPOSITION_URL, "resource": {"resourceType": "MessageHeader",
                "eventCoding": {"system": "http://example.org/events", "code": "admit"},
                "source": {"endpoint": "http://example.org/source"}, "focus": focus}},
            {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient"}}]})
    };
    let reached = message(json!([{"reference": PATIENT_URL}]));
    assert!(issues(&reached, Severity::Warning).iter().all(|w| !w.contains("not reached")));
    // An R4 message's stray entry is a warning (an error from R5 on).
    let stray = message(json!([{"reference": "http://example.org/fhir/Patient/elsewhere"}]));
    assert!(errors(&stray).is_empty(), "{:?}", errors(&stray));
    assert!(issues(&stray, Severity::Warning).iter().any(|w| w.contains("Entry 1 is not reached")));
}
