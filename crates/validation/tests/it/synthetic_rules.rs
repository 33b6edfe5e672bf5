//! Bundle rules, reference target profiles, extension context and value bounds, each on
//! small hand-written definitions: the valid instance passes, each defect is named. Needs
//! no shared data.

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, Issue, PackageSet, Severity, Validator};

const ADULT: &str = "http://example.org/StructureDefinition/Adult";
const OBS: &str = "http://example.org/StructureDefinition/AdultObservation";
const ON_PATIENT: &str = "http://example.org/StructureDefinition/on-patient";

fn element(id: &str, min: u32, max: &str, extra: Value) -> Value {
    let mut e = json!({"id": id, "path": id, "min": min, "max": max});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn validator() -> Validator {
    let mut set = PackageSet::new();
    let sd = |url: &str, ty: &str, elements: Vec<Value>, extra: Value| {
        let mut sd = json!({"resourceType": "StructureDefinition", "url": url, "type": ty,
            "kind": "resource", "snapshot": {"element": elements}});
        for (k, v) in extra.as_object().unwrap() {
            sd[k] = v.clone();
        }
        sd
    };
    // A Patient with a bounded name and a birth year window.
    set.insert(
        ConformanceKind::StructureDefinition,
        sd(
            ADULT,
            "Patient",
            vec![
                element("Patient", 0, "*", json!({})),
                element("Patient.gender", 1, "1", json!({"type": [{"code": "code"}]})),
                element(
                    "Patient.birthDate",
                    0,
                    "1",
                    json!({"type": [{"code": "date"}],
                    "minValueDate": "1900-01-01", "maxValueDate": "2006-12-31"}),
                ),
                element(
                    "Patient.multipleBirth[x]",
                    0,
                    "1",
                    json!({"type": [{"code": "integer"}],
                    "maxValueInteger": 8}),
                ),
                element("Patient.id", 0, "1", json!({"maxLength": 8})),
            ],
            json!({}),
        ),
    );
    set.insert(
        ConformanceKind::StructureDefinition,
        sd(
            OBS,
            "Observation",
            vec![
                element("Observation", 0, "*", json!({})),
                element(
                    "Observation.subject",
                    1,
                    "1",
                    json!({"type": [{"code": "Reference", "targetProfile": [ADULT]}]}),
                ),
            ],
            json!({}),
        ),
    );
    set.insert(
        ConformanceKind::StructureDefinition,
        sd(
            ON_PATIENT,
            "Extension",
            vec![
                element("Extension", 0, "*", json!({})),
                element("Extension.url", 1, "1", json!({"fixedUri": ON_PATIENT})),
                element("Extension.value[x]", 1, "1", json!({"type": [{"code": "boolean"}]})),
            ],
            json!({"kind": "complex-type", "context": [{"type": "element", "expression": "Patient"},
                {"type": "element", "expression": "Observation.code"}]}),
        ),
    );
    Validator::new(set)
}

fn errors(v: &Validator, r: &Value, profiles: &[&str]) -> Vec<Issue> {
    v.validate(r, profiles).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

fn adult() -> Value {
    json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-05-01"})
}

fn observation(subject: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": subject}})
}

fn collection(entries: Vec<(&str, Value)>) -> Value {
    let entry: Vec<Value> = entries.into_iter().map(|(u, r)| json!({"fullUrl": u, "resource": r})).collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry})
}

#[test]
fn value_bounds_and_max_length() {
    let v = validator();
    assert!(errors(&v, &adult(), &[ADULT]).is_empty());
    let mut young = adult();
    young["birthDate"] = json!("2010-01-01");
    let e = errors(&v, &young, &[ADULT]);
    assert!(
        e.len() == 1 && e[0].location == "Patient.birthDate" && e[0].message_en.contains("at most 2006-12-31"),
        "{e:#?}"
    );
    let mut many = adult();
    many["multipleBirthInteger"] = json!(9);
    let e = errors(&v, &many, &[ADULT]);
    assert!(e.len() == 1 && e[0].message_en.contains("at most 8"), "{e:#?}");
    let mut long = adult();
    long["id"] = json!("p123456789");
    let e = errors(&v, &long, &[ADULT]);
    assert!(e.len() == 1 && e[0].message_en.contains("10 characters"), "{e:#?}");
}

#[test]
fn reference_target_must_conform_to_its_target_profile() {
    let v = validator();
    let good = collection(vec![
        ("urn:uuid:00000000-0000-4000-8000-000000000001", observation("urn:uuid:00000000-0000-4000-8000-000000000002")),
        ("urn:uuid:00000000-0000-4000-8000-000000000002", adult()),
    ]);
    let obs_profile = [OBS];
    assert!(errors(&v, &good["entry"][0]["resource"], &obs_profile).is_empty());
    // Validated as a Bundle, the observation's profile comes from its meta.
    let mut good = good;
    good["entry"][0]["resource"]["meta"] = json!({"profile": [OBS]});
    assert!(errors(&v, &good, &[]).is_empty(), "{:#?}", errors(&v, &good, &[]));
    let mut bad = good.clone();
    bad["entry"][1]["resource"].as_object_mut().unwrap().remove("gender");
    let e = errors(&v, &bad, &[]);
    assert!(
        e.iter().any(|i| i.location == "Bundle.entry[0].resource.subject" && i.message_en.contains(ADULT)),
        "{e:#?}"
    );
}

#[test]
fn bundle_full_urls_references_and_document_order() {
    let v = validator();
    let ok = collection(vec![
        ("urn:uuid:00000000-0000-4000-8000-000000000001", observation("urn:uuid:00000000-0000-4000-8000-000000000002")),
        ("urn:uuid:00000000-0000-4000-8000-000000000002", adult()),
    ]);
    assert!(errors(&v, &ok, &[]).is_empty());

    let dup = collection(vec![
        ("urn:uuid:00000000-0000-4000-8000-000000000001", observation("urn:uuid:00000000-0000-4000-8000-000000000001")),
        ("urn:uuid:00000000-0000-4000-8000-000000000001", adult()),
    ]);
    let e = errors(&v, &dup, &[]);
    assert!(
        e.iter().any(|i| i.location == "Bundle.entry[1].fullUrl" && i.message_en.contains("already used")),
        "{e:#?}"
    );

    let dangling = collection(vec![
        ("urn:uuid:00000000-0000-4000-8000-000000000001", observation("urn:uuid:00000000-0000-4000-8000-000000000009")),
        ("urn:uuid:00000000-0000-4000-8000-000000000002", adult()),
    ]);
    let e = errors(&v, &dangling, &[]);
    assert!(
        e.iter().any(|i| i.location == "Bundle.entry[0].resource"
            && i.message_en.contains("urn:uuid:00000000-0000-4000-8000-000000000009")),
        "{e:#?}"
    );

    // Relative references resolve against the entry's RESTful base.
    let rest = collection(vec![
        ("http://a.example/fhir/Observation/1", observation("Patient/p1")),
        ("http://a.example/fhir/Patient/p1", adult()),
    ]);
    assert!(errors(&v, &rest, &[]).is_empty());

    let mut doc = collection(vec![
        ("urn:uuid:00000000-0000-4000-8000-000000000002", adult()),
        ("urn:uuid:00000000-0000-4000-8000-000000000001", observation("urn:uuid:00000000-0000-4000-8000-000000000002")),
    ]);
    doc["type"] = json!("document");
    let e = errors(&v, &doc, &[]);
    assert!(e.iter().any(|i| i.location == "Bundle.entry[0]" && i.message_en.contains("Composition")), "{e:#?}");
}

#[test]
fn extension_used_outside_its_context_is_rejected() {
    let v = validator();
    let ext = json!([{"url": ON_PATIENT, "valueBoolean": true}]);
    let mut p = adult();
    p["extension"] = ext.clone();
    assert!(errors(&v, &p, &[]).is_empty());
    let mut o = observation("Patient/p1");
    o["code"]["extension"] = ext.clone();
    assert!(errors(&v, &o, &[]).is_empty(), "{:#?}", errors(&v, &o, &[]));
    let mut o = observation("Patient/p1");
    o["extension"] = ext;
    let e = errors(&v, &o, &[]);
    assert!(
        e.len() == 1
            && e[0].location == "Observation.extension[0]"
            && e[0].message_en.contains("not allowed on Observation"),
        "{e:#?}"
    );
}
