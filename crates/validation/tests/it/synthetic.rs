//! Each profile rule on a small hand-written profile: the valid instance passes, and each
//! single defect is named. Needs no shared data.

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, Issue, PackageSet, Severity, Validator};

const PROFILE: &str = "http://example.org/StructureDefinition/TestPatient";
const FLAG: &str = "http://example.org/StructureDefinition/flag";

fn element(id: &str, min: u32, max: &str, extra: Value) -> Value {
    let path: String = id.split('.').map(|s| s.split(':').next().unwrap()).collect::<Vec<_>>().join(".");
    let mut e = json!({"id": id, "path": path, "min": min, "max": max});
    if let Some(slice) = id.rsplit('.').next().unwrap().split(':').nth(1) {
        e["sliceName"] = json!(slice);
    }
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn validator() -> Validator {
    let mut set = PackageSet::new();
    set.insert(
        ConformanceKind::StructureDefinition,
        json!({
            "resourceType": "StructureDefinition", "url": PROFILE, "version": "1",
            "type": "Patient", "kind": "resource",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "snapshot": {"element": [
                element("Patient", 0, "*", json!({"constraint": [
                    {"key": "tp-1", "severity": "error", "human": "A name is needed", "expression": "name.exists()"},
                    {"key": "tp-2", "severity": "warning", "human": "Birth date is advised", "expression": "birthDate.exists()"}
                ]})),
                element("Patient.extension", 1, "*", json!({"type": [{"code": "Extension"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}})),
                element("Patient.extension:flag", 1, "1", json!({"type": [{"code": "Extension", "profile": [FLAG]}]})),
                element("Patient.identifier", 1, "*", json!({"type": [{"code": "Identifier"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}})),
                element("Patient.identifier:mrn", 1, "1", json!({"type": [{"code": "Identifier"}]})),
                element("Patient.identifier:mrn.system", 1, "1", json!({"type": [{"code": "uri"}], "fixedUri": "urn:mrn"})),
                element("Patient.identifier:mrn.value", 1, "1", json!({"type": [{"code": "string"}]})),
                element("Patient.gender", 1, "1", json!({"type": [{"code": "code"}],
                    "binding": {"strength": "required", "valueSet": "http://example.org/ValueSet/g"}})),
                element("Patient.maritalStatus", 0, "1", json!({"type": [{"code": "CodeableConcept"}],
                    "patternCodeableConcept": {"coding": [{"system": "http://example.org/CodeSystem/m", "code": "M"}]}})),
                element("Patient.deceased[x]", 0, "1", json!({"type": [{"code": "boolean"}]})),
                element("Patient.name", 0, "2", json!({"type": [{"code": "HumanName"}]})),
                element("Patient.generalPractitioner", 0, "*", json!({"type": [{"code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}]}))
            ]}
        }),
    );
    set.insert(
        ConformanceKind::StructureDefinition,
        json!({
            "resourceType": "StructureDefinition", "url": FLAG, "type": "Extension", "kind": "complex-type",
            "snapshot": {"element": [
                element("Extension", 0, "*", json!({})),
                element("Extension.url", 1, "1", json!({"fixedUri": FLAG})),
                element("Extension.value[x]", 1, "1", json!({"type": [{"code": "boolean"}]}))
            ]}
        }),
    );
    set.insert(
        ConformanceKind::CodeSystem,
        json!({"resourceType": "CodeSystem", "url": "http://example.org/CodeSystem/g", "content": "complete",
               "concept": [{"code": "male"}, {"code": "female"}]}),
    );
    set.insert(
        ConformanceKind::ValueSet,
        json!({"resourceType": "ValueSet", "url": "http://example.org/ValueSet/g",
               "compose": {"include": [{"system": "http://hl7.org/fhir/administrative-gender", "concept": [{"code": "male"}, {"code": "female"}]}]}}),
    );
    Validator::new(set)
}

fn valid() -> Value {
    json!({
        "resourceType": "Patient",
        "meta": {"profile": [format!("{PROFILE}|1")]},
        "extension": [{"url": FLAG, "valueBoolean": true}],
        "identifier": [{"system": "urn:mrn", "value": "1"}],
        "gender": "male",
        "maritalStatus": {"coding": [{"system": "http://example.org/CodeSystem/m", "code": "M", "display": "Married"}]},
        "birthDate": "1970-01-01",
        "name": [{"family": "山田"}]
    })
}

fn errors(v: &Validator, r: &Value) -> Vec<Issue> {
    v.validate(r, &[]).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

/// Applies `change` to the valid instance and returns the single error it causes.
fn one_error(change: impl FnOnce(&mut Value)) -> Issue {
    let v = validator();
    let mut r = valid();
    change(&mut r);
    let mut e = errors(&v, &r);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.remove(0)
}

#[test]
fn valid_instance_passes() {
    let v = validator();
    let issues = v.validate(&valid(), &[]);
    assert!(issues.iter().all(|i| i.severity != Severity::Error), "{issues:#?}");
}

#[test]
fn cardinality_of_element_and_slice() {
    let e = one_error(|r| {
        r["name"] = json!([{"family": "a"}, {"family": "b"}, {"family": "c"}]);
    });
    assert_eq!(e.location, "Patient.name");
    assert!(e.message_en.contains("maximum allowed = 2"), "{e:?}");
    let e = one_error(|r| {
        r["identifier"] = json!([{"system": "urn:mrn", "value": "1"}, {"system": "urn:mrn", "value": "2"}]);
    });
    assert!(e.message_en.contains("slice 'mrn'") && e.message_en.contains("maximum allowed = 1"), "{e:?}");
}

#[test]
fn closed_slicing_rejects_unmatched_elements() {
    let e = one_error(|r| {
        r["identifier"].as_array_mut().unwrap().push(json!({"system": "urn:other", "value": "x"}));
    });
    assert_eq!(e.location, "Patient.identifier[1]");
    assert!(e.message_en.contains("closed"), "{e:?}");
}

#[test]
fn missing_required_slice_is_named() {
    let v = validator();
    let mut r = valid();
    r["identifier"] = json!([{"system": "urn:other", "value": "x"}]);
    let e = errors(&v, &r);
    assert!(
        e.iter().any(|i| i.message_en.contains("slice 'mrn'") && i.message_en.contains("minimum required = 1")),
        "{e:#?}"
    );
}

#[test]
fn pattern_and_required_binding() {
    let e = one_error(|r| r["maritalStatus"]["coding"][0]["code"] = json!("S"));
    assert_eq!(e.location, "Patient.maritalStatus");
    assert!(e.message_en.contains("pattern"), "{e:?}");
    // `other` is a valid R4 gender, but not in the profile's value set.
    let e = one_error(|r| r["gender"] = json!("other"));
    assert_eq!(e.location, "Patient.gender");
    assert_eq!(e.code.as_str(), "code-invalid");
}

#[test]
fn narrowed_type_is_enforced() {
    let e = one_error(|r| r["deceasedDateTime"] = json!("2020-01-01"));
    assert_eq!(e.location, "Patient.deceasedDateTime");
    assert!(e.message_en.contains("dateTime is not allowed"), "{e:?}");
}

#[test]
fn reference_targets_follow_target_profiles() {
    let v = validator();
    let mut r = valid();
    r["generalPractitioner"] = json!([{"reference": "Practitioner/1"}]);
    assert!(errors(&v, &r).is_empty());
    let e = one_error(|r| r["generalPractitioner"] = json!([{"reference": "Organization/1"}]));
    assert_eq!(e.location, "Patient.generalPractitioner[0]");
    assert!(e.message_en.contains("points to a Organization"), "{e:?}");
}

#[test]
fn invariants_with_their_severity() {
    let e = one_error(|r| {
        r.as_object_mut().unwrap().remove("name");
    });
    assert!(e.message_en.contains("tp-1"), "{e:?}");
    let v = validator();
    let mut r = valid();
    r.as_object_mut().unwrap().remove("birthDate");
    let issues = v.validate(&r, &[]);
    assert!(issues.iter().any(|i| i.severity == Severity::Warning && i.message_en.contains("tp-2")));
    assert!(errors(&v, &r).is_empty());
}

#[test]
fn extensions_are_checked_against_their_definition() {
    let e = one_error(|r| r["extension"][0] = json!({"url": FLAG, "valueString": "yes"}));
    assert_eq!(e.location, "Patient.extension[0].valueString");
    let v = validator();
    let mut r = valid();
    r["extension"].as_array_mut().unwrap().push(json!({"url": "http://example.org/unknown", "valueString": "x"}));
    let issues = v.validate(&r, &[]);
    assert!(issues.iter().any(|i| i.severity == Severity::Warning && i.message_en.contains("Unknown extension")));
    assert!(errors(&v, &r).is_empty());
}

#[test]
fn unknown_profiles_and_contained_references() {
    let v = validator();
    let r = valid();
    let e = errors(&v, &{
        let mut r = r.clone();
        r["contained"] = json!([{"resourceType": "Organization", "id": "o1", "name": "x"}]);
        r
    });
    assert!(e.iter().any(|i| i.location == "Patient.contained[0]" && i.message_en.contains("dom-3")), "{e:#?}");
    let issues = v.validate(&r, &["http://example.org/nope"]);
    assert!(issues.iter().any(|i| i.severity == Severity::Error && i.message_en.contains("not loaded")));
}

#[test]
fn wrong_profile_type_is_an_error() {
    let v = validator();
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let e = errors(&v, &obs);
    assert!(e.is_empty());
    let issues = v.validate(&obs, &[PROFILE]);
    assert!(issues.iter().any(|i| i.severity == Severity::Error && i.message_en.contains("is for Patient")));
}

#[test]
fn validator_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Validator>();
}
