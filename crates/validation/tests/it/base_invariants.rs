//! Base invariants hold on every resource and every datatype value, whether or not a
//! profile is named: the constraints of the core StructureDefinitions (Profiling: the
//! constraints of a type apply wherever it is used). Each rule has an instance that
//! breaks it, in the words of the specification, and one that keeps it.

use crate::support;

use serde_json::{json, Value};
use tsunagu_validation::Severity;

/// The error messages for `resource`, validated with no profile named.
fn errors(resource: &Value) -> Vec<String> {
    let v = support::core_validator().expect("checked by the caller");
    v.validate(resource, &[])
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{} {}", i.location, i.message_en))
        .collect()
}

fn assert_fails(resource: Value, key: &str) {
    let found = errors(&resource);
    assert!(found.iter().any(|e| e.contains(key)), "expected {key}, got {found:?}");
}

fn assert_passes(resource: Value) {
    let found = errors(&resource);
    assert!(found.is_empty(), "{found:?}");
}

fn observation(effective: Value) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
        "effectivePeriod": effective})
}

#[test]
fn period_start_is_not_after_end_on_any_element_of_type_period() {
    if support::core_validator().is_none() {
        return;
    }
    // per-1: "If present, start SHALL have a lower value than end".
    assert_fails(observation(json!({"start": "2020-02-01", "end": "2020-01-01"})), "per-1");
    assert_passes(observation(json!({"start": "2020-01-01", "end": "2020-02-01"})));
}

#[test]
fn resource_invariants_hold_without_naming_the_base_profile() {
    if support::core_validator().is_none() {
        return;
    }
    // ras-2: "Must be <= 100" (RiskAssessment.prediction.probabilityDecimal).
    let risk = |p: f64| {
        json!({"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/p"},
            "prediction": [{"probabilityDecimal": p}]})
    };
    assert_fails(risk(150.0), "ras-2");
    assert_passes(risk(15.0));
    // que-6: "Required and repeat aren't permitted for display items".
    let questionnaire = |extra: Value| {
        let mut item = json!({"linkId": "1", "type": "display", "text": "Hello"});
        item.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [item]})
    };
    assert_fails(questionnaire(json!({"required": true})), "que-6");
    assert_passes(questionnaire(json!({})));
}

#[test]
fn bundle_entries_and_contained_resources_meet_their_base_invariants() {
    if support::core_validator().is_none() {
        return;
    }
    let patient =
        |period: Value| json!({"resourceType": "Patient", "id": "p", "name": [{"family": "Yamada", "period": period}]});
    let bundle = |period: Value| {
        json!({"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "http://example.org/fhir/Patient/p", "resource": patient(period)}]})
    };
    assert_fails(bundle(json!({"start": "2021", "end": "2020"})), "per-1");
    assert_passes(bundle(json!({"start": "2020", "end": "2021"})));
    let holder = |period: Value| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "contained": [patient(period)], "subject": {"reference": "#p"}})
    };
    assert_fails(holder(json!({"start": "2021", "end": "2020"})), "per-1");
    assert_passes(holder(json!({"start": "2020", "end": "2021"})));
}

#[test]
fn local_references_name_a_resource_contained_in_the_container() {
    if support::core_validator().is_none() {
        return;
    }
    // ref-1: "SHALL have a contained resource if a local reference is provided"; a
    // contained resource may point at a sibling (its %rootResource is the container).
    let with = |target: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": "#p"},
            "contained": [
                {"resourceType": "Patient", "id": "p", "generalPractitioner": [{"reference": target}]},
                {"resourceType": "Practitioner", "id": "gp"}]})
    };
    assert_passes(with("#gp"));
    assert_fails(with("#nobody"), "ref-1");
}

#[test]
fn extensions_have_a_value_or_children_not_both() {
    if support::core_validator().is_none() {
        return;
    }
    // ext-1: "Must have either extensions or value[x], not both".
    let patient = |ext: Value| json!({"resourceType": "Patient", "extension": [ext]});
    assert_fails(
        patient(json!({"url": "http://example.org/x", "valueString": "a",
            "extension": [{"url": "y", "valueString": "b"}]})),
        "ext-1",
    );
    assert_passes(patient(json!({"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
        "valueAddress": {"city": "Kyoto"}})));
}

#[test]
fn elements_have_a_value_or_children() {
    if support::core_validator().is_none() {
        return;
    }
    // ele-1: "All FHIR elements must have a @value or children" (an id alone is neither).
    assert_fails(json!({"resourceType": "Patient", "name": [{"id": "n1"}]}), "ele-1");
    assert_fails(json!({"resourceType": "Patient", "_birthDate": {"id": "b1"}}), "ele-1");
    assert_passes(json!({"resourceType": "Patient", "name": [{"id": "n1", "family": "Sato"}]}));
}

#[test]
fn element_paths_have_no_special_characters() {
    if support::core_validator().is_none() {
        return;
    }
    // eld-19: "Element names cannot include some special characters".
    let sd = |path: &str| {
        json!({"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/P",
            "name": "P", "status": "draft", "kind": "resource", "abstract": false, "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
            "differential": {"element": [{"id": "Patient", "path": "Patient"},
                {"id": path, "path": path, "min": 1}]}})
    };
    assert_fails(sd("Patient.na#me"), "eld-19");
    assert_passes(sd("Patient.name"));
}

#[test]
fn attachment_size_and_hash_agree_with_the_data() {
    if support::core_validator().is_none() {
        return;
    }
    // "Hello" is 5 bytes; its SHA-1, in base64, is 9/+ei3uy4Jtwk1pdeF4MxdnQq/A=.
    let document = |size: u32, hash: &str| {
        json!({"resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "SGVsbG8=", "size": size, "hash": hash}}]})
    };
    assert_passes(document(5, "9/+ei3uy4Jtwk1pdeF4MxdnQq/A="));
    assert_fails(document(6, "9/+ei3uy4Jtwk1pdeF4MxdnQq/A="), "the data has 5 bytes");
    let v = support::core_validator().unwrap();
    let wrong_hash = v.validate(&document(5, "2jmj7l5rSw0yVb/vlWAYkK/YBwk="), &[]);
    assert!(
        wrong_hash
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message_en.contains("is not the SHA-1 of the data")),
        "{wrong_hash:?}"
    );
}
