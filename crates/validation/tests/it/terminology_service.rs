//! The validator asks the server's terminology service about code systems the packages do
//! not carry (a standard master loaded on the server): a required binding to a value set
//! that includes such a system is then decided, not left as "unverifiable".

use std::sync::Arc;

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, PackageSet, Severity, Validator};

const MASTER: &str = "http://example.jp/CodeSystem/master";
const VS: &str = "http://example.jp/ValueSet/master-all";
const PROFILE: &str = "http://example.jp/StructureDefinition/coded-observation";

fn packages() -> PackageSet {
    let mut set = PackageSet::new();
    set.insert(
        ConformanceKind::ValueSet,
        json!({ "resourceType": "ValueSet", "url": VS, "status": "active",
                "compose": { "include": [{ "system": MASTER }] } }),
    );
    // Observation.code bound (required) to the value set over the master.
    set.insert(
        ConformanceKind::StructureDefinition,
        json!({
            "resourceType": "StructureDefinition", "url": PROFILE, "name": "CodedObservation", "status": "active",
            "kind": "resource", "abstract": false, "type": "Observation", "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
            "snapshot": { "element": [
                { "id": "Observation", "path": "Observation", "min": 0, "max": "*" },
                { "id": "Observation.code", "path": "Observation.code", "min": 1, "max": "1",
                  "type": [{ "code": "CodeableConcept" }],
                  "binding": { "strength": "required", "valueSet": VS } }
            ]}
        }),
    );
    set
}

fn observation(code: &str) -> Value {
    json!({ "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": MASTER, "code": code }] } })
}

fn code_issues(v: &Validator, code: &str) -> Vec<(Severity, String)> {
    v.validate(&observation(code), &[PROFILE])
        .into_iter()
        .filter(|i| i.location.starts_with("Observation.code"))
        .map(|i| (i.severity, i.message_en))
        .collect()
}

#[test]
fn codes_from_a_master_on_the_server_are_decided() {
    // Without the service the master is unknown: a warning, whatever the code.
    let alone = Validator::new(packages());
    let issues = code_issues(&alone, "NOPE");
    assert!(issues.iter().all(|(s, _)| *s == Severity::Warning) && !issues.is_empty(), "{issues:?}");

    let service = Arc::new(tsunagu_terminology::Terminology::new(&packages()));
    service
        .add(json!({ "resourceType": "CodeSystem", "url": MASTER, "status": "active", "content": "complete",
                     "concept": [{ "code": "A1", "display": "総蛋白" }] }))
        .unwrap();
    let v = Validator::new(packages()).with_terminology(service);
    assert!(code_issues(&v, "A1").is_empty(), "{:?}", code_issues(&v, "A1"));
    let bad = code_issues(&v, "NOPE");
    assert!(bad.iter().any(|(s, m)| *s == Severity::Error && m.contains("NOPE")), "{bad:?}");
}
