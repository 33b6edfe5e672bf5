//! Extension context (StructureDefinition.context / contextInvariant, R4
//! defining-extensions.html): FHIRPath contexts evaluated from the resource, element
//! contexts alongside them and inherited from abstract types, `extension` contexts
//! anywhere inside the nominated extension, context invariants on the host element. Each
//! rule on small hand-written definitions: one instance passes, one fails. Needs no shared
//! data.

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, Issue, PackageSet, Severity, Validator};

const HOME: &str = "http://example.org/StructureDefinition/home-or-name";
const GUARDED: &str = "http://example.org/StructureDefinition/inactive-only";
const ON_TEXT: &str = "http://example.org/StructureDefinition/on-text";
const OUTER: &str = "http://example.org/StructureDefinition/outer";
const INNER: &str = "http://example.org/StructureDefinition/inner";

/// A simple extension definition with a boolean value.
fn extension(url: &str, extra: Value) -> Value {
    let mut sd = json!({"resourceType": "StructureDefinition", "url": url, "type": "Extension",
    "kind": "complex-type", "derivation": "constraint",
    "snapshot": {"element": [
        {"id": "Extension", "path": "Extension", "min": 0, "max": "*"},
        {"id": "Extension.url", "path": "Extension.url", "min": 1, "max": "1", "fixedUri": url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "max": "1",
            "type": [{"code": "boolean"}]}
    ]}});
    for (k, v) in extra.as_object().unwrap() {
        sd[k] = v.clone();
    }
    sd
}

fn validator() -> Validator {
    let mut set = PackageSet::new();
    let defs = [
        extension(
            HOME,
            json!({"context": [
                {"type": "fhirpath", "expression": "Patient.address.where(use = 'home')"},
                {"type": "element", "expression": "Patient.name"}]}),
        ),
        extension(
            GUARDED,
            json!({"context": [{"type": "element", "expression": "Patient"}],
                "contextInvariant": ["active.not()"]}),
        ),
        extension(ON_TEXT, json!({"context": [{"type": "element", "expression": "DomainResource.text"}]})),
        extension(OUTER, json!({"context": [{"type": "element", "expression": "Patient"}]})),
        extension(INNER, json!({"context": [{"type": "extension", "expression": OUTER}]})),
    ];
    for d in defs {
        set.insert(ConformanceKind::StructureDefinition, d);
    }
    Validator::new(set)
}

fn errors(v: &Validator, r: &Value) -> Vec<Issue> {
    v.validate(r, &[]).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

fn ext(url: &str) -> Value {
    json!({"url": url, "valueBoolean": true})
}

fn context_errors(v: &Validator, r: &Value) -> Vec<Issue> {
    errors(v, r).into_iter().filter(|i| i.message_en.contains("is not allowed")).collect()
}

#[test]
fn fhirpath_context_selects_the_host_elements() {
    let v = validator();
    let home = json!({"resourceType": "Patient",
        "address": [{"use": "home", "city": "Kyoto", "extension": [ext(HOME)]}]});
    assert!(errors(&v, &home).is_empty(), "{:#?}", errors(&v, &home));
    let work = json!({"resourceType": "Patient",
        "address": [{"use": "home", "city": "Kyoto"}, {"use": "work", "city": "Osaka", "extension": [ext(HOME)]}]});
    let e = context_errors(&v, &work);
    assert!(e.len() == 1 && e[0].location == "Patient.address[1].extension[0]", "{e:#?}");
    // The element context alongside the FHIRPath one still allows Patient.name.
    let name = json!({"resourceType": "Patient", "name": [{"family": "Yamada", "extension": [ext(HOME)]}]});
    assert!(errors(&v, &name).is_empty(), "{:#?}", errors(&v, &name));
    // Neither context allows the resource itself, a primitive, or another resource.
    let root = json!({"resourceType": "Patient", "extension": [ext(HOME)]});
    assert_eq!(context_errors(&v, &root).len(), 1);
    let primitive = json!({"resourceType": "Patient", "active": true, "_active": {"extension": [ext(HOME)]}});
    assert_eq!(context_errors(&v, &primitive).len(), 1);
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "extension": [ext(HOME)]});
    assert_eq!(context_errors(&v, &obs).len(), 1);
}

#[test]
fn context_invariant_is_evaluated_on_the_host() {
    let v = validator();
    let inactive = json!({"resourceType": "Patient", "active": false, "extension": [ext(GUARDED)]});
    assert!(errors(&v, &inactive).is_empty(), "{:#?}", errors(&v, &inactive));
    let active = json!({"resourceType": "Patient", "active": true, "extension": [ext(GUARDED)]});
    let e = errors(&v, &active);
    assert!(
        e.len() == 1 && e[0].location == "Patient.extension[0]" && e[0].message_en.contains("active.not()"),
        "{e:#?}"
    );
}

#[test]
fn element_context_on_an_abstract_type_applies_to_its_specializations() {
    let v = validator();
    let text = |rt: &str| {
        json!({"resourceType": rt, "status": "final", "code": {"text": "x"}, "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>", "extension": [ext(ON_TEXT)]}})
    };
    let mut patient = text("Patient");
    patient.as_object_mut().unwrap().remove("status");
    patient.as_object_mut().unwrap().remove("code");
    assert!(errors(&v, &patient).is_empty(), "{:#?}", errors(&v, &patient));
    assert!(errors(&v, &text("Observation")).is_empty(), "{:#?}", errors(&v, &text("Observation")));
    let name = json!({"resourceType": "Patient", "name": [{"family": "Yamada", "extension": [ext(ON_TEXT)]}]});
    let e = context_errors(&v, &name);
    assert!(e.len() == 1 && e[0].location == "Patient.name[0].extension[0]", "{e:#?}");
}

#[test]
fn extension_context_allows_any_place_inside_the_nominated_extension() {
    let v = validator();
    // Directly on the outer extension, and on its value.
    let direct = json!({"resourceType": "Patient",
        "extension": [{"url": OUTER, "valueBoolean": true, "extension": [ext(INNER)]}]});
    assert!(context_errors(&v, &direct).is_empty(), "{:#?}", context_errors(&v, &direct));
    let on_value = json!({"resourceType": "Patient",
        "extension": [{"url": OUTER, "valueBoolean": true, "_valueBoolean": {"extension": [ext(INNER)]}}]});
    assert!(context_errors(&v, &on_value).is_empty(), "{:#?}", context_errors(&v, &on_value));
    // Outside it.
    let outside = json!({"resourceType": "Patient", "extension": [ext(OUTER), ext(INNER)]});
    let e = context_errors(&v, &outside);
    assert!(e.len() == 1 && e[0].location == "Patient.extension[1]", "{e:#?}");
}
