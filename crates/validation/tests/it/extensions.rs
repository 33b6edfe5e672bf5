//! Extension rules (Extensibility §2.4.1), each with an instance that breaks it and one
//! that keeps it, against the core package alone.

use crate::support;

use serde_json::{json, Value};
use tsunagu_validation::{PackageSet, Severity, Validator};

fn errors_with(v: &Validator, resource: &Value) -> Vec<String> {
    v.validate(resource, &[])
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{} {}", i.location, i.message_en))
        .collect()
}

fn errors(resource: &Value) -> Vec<String> {
    errors_with(support::core_validator().expect("checked by the caller"), resource)
}

fn patient(extension: Value) -> Value {
    json!({"resourceType": "Patient", "extension": [extension]})
}

fn nationality(parts: Value) -> Value {
    json!({"url": "http://hl7.org/fhir/StructureDefinition/patient-nationality", "extension": parts})
}

#[test]
fn an_unknown_extension_is_an_error_outside_the_allowed_domains() {
    if support::core_validator().is_none() {
        return;
    }
    let unknown = patient(json!({"url": "http://extensions.invalid/fhir/colour", "valueString": "blue"}));
    let found = errors(&unknown);
    assert!(found.iter().any(|e| e.contains("Unknown extension http://extensions.invalid/fhir/colour")), "{found:?}");
    let example = patient(json!({"url": "http://example.org/fhir/colour", "valueString": "blue"}));
    assert!(errors(&example).is_empty());
    // The allow-list is the caller's to set.
    let path = tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz").expect("found above");
    let mut set = PackageSet::new();
    set.load_tgz(&path).unwrap();
    let lenient = Validator::new(set).with_extension_domains(["extensions.invalid"]);
    assert!(errors_with(&lenient, &unknown).is_empty());
    assert!(!errors_with(&lenient, &example).is_empty());
}

#[test]
fn extension_urls_are_absolute_outside_complex_extensions() {
    if support::core_validator().is_none() {
        return;
    }
    // Extension.url: "The definition may point directly to a computable or human-readable
    // definition of the extensibility codes, or it may be a logical URI"; the parts of a
    // complex extension alone use relative names.
    let found = errors(&patient(json!({"url": "nationality", "valueString": "JP"})));
    assert!(found.iter().any(|e| e.contains("must be an absolute URL")), "{found:?}");
    let ok = nationality(json!([{"url": "code", "valueCodeableConcept": {"text": "Japan"}}]));
    assert_eq!(errors(&patient(ok)), Vec::<String>::new());
}

#[test]
fn the_parts_of_a_complex_extension_are_those_its_definition_declares() {
    if support::core_validator().is_none() {
        return;
    }
    let bad = nationality(json!([{"url": "colour", "valueString": "blue"}]));
    let found = errors(&patient(bad));
    assert!(found.iter().any(|e| e.contains("Sub-extension 'colour' is not defined")), "{found:?}");
}

#[test]
fn modifier_extensions_go_in_modifier_extension_only() {
    if support::core_validator().is_none() {
        return;
    }
    let order = |key: &str| {
        json!({"resourceType": "NutritionOrder", "status": "active", "intent": "order",
            "patient": {"reference": "Patient/p"}, "dateTime": "2020-01-01",
            key: [{"url": "http://hl7.org/fhir/StructureDefinition/request-doNotPerform", "valueBoolean": true}]})
    };
    let found = errors(&order("extension"));
    assert!(found.iter().any(|e| e.contains("must be used in modifierExtension")), "{found:?}");
    assert_eq!(errors(&order("modifierExtension")), Vec::<String>::new());
    let misplaced = json!({"resourceType": "Patient", "modifierExtension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Kyoto"}}]});
    let found = errors(&misplaced);
    assert!(found.iter().any(|e| e.contains("cannot be used in modifierExtension")), "{found:?}");
}

#[test]
fn an_extension_is_used_only_where_its_context_allows() {
    if support::core_validator().is_none() {
        return;
    }
    // StructureDefinition.context: "Identifies the types of resource or data type
    // elements to which the extension can be applied". patient-nationality is for Patient;
    // its context is core's, so the mismatch is reported (as a warning: R4 itself breaks
    // the contexts of several core extensions).
    let v = support::core_validator().unwrap();
    let on_observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "extension": [nationality(json!([{"url": "code", "valueCodeableConcept": {"text": "Japan"}}]))]});
    let issues = v.validate(&on_observation, &[]);
    assert!(issues.iter().any(|i| i.message_en.contains("is not allowed on Observation")), "{issues:?}");
}
