//! Slicing by `type` and `profile` discriminators (profiling.html#discriminator), and
//! `value` discriminators whose fixed values sit in a nested slice: once elements are
//! assigned to slices, slice cardinality and closed slicing are enforced. Small
//! hand-written profiles, each with a passing and a failing instance; the core vital-signs
//! `bp` profile with the shared R4 package.

use crate::support;

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, Issue, PackageSet, Severity, Validator};

const BY_TYPE: &str = "http://example.org/StructureDefinition/bundle-by-type";
const BY_PROFILE: &str = "http://example.org/StructureDefinition/bundle-by-profile";
const FEMALE: &str = "http://example.org/StructureDefinition/female";
const BY_CHOICE: &str = "http://example.org/StructureDefinition/component-by-value-type";
const BY_TARGET: &str = "http://example.org/StructureDefinition/derived-by-target";
const NESTED: &str = "http://example.org/StructureDefinition/nested-code-slices";

/// A snapshot element; its `path` is the id without slice names, its `sliceName` the
/// last one.
fn el(id: &str, min: u32, max: &str, extra: Value) -> Value {
    let path: Vec<&str> = id.split('.').map(|s| s.split(':').next().unwrap()).collect();
    let mut e = json!({"id": id, "path": path.join("."), "min": min, "max": max});
    if let Some((_, name)) = id.rsplit('.').next().unwrap().split_once(':') {
        e["sliceName"] = json!(name);
    }
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn sd(url: &str, ty: &str, elements: Vec<Value>) -> Value {
    json!({"resourceType": "StructureDefinition", "url": url, "type": ty, "kind": "resource",
        "derivation": "constraint", "snapshot": {"element": elements}})
}

fn slicing(kind: &str, path: &str) -> Value {
    json!({"slicing": {"discriminator": [{"type": kind, "path": path}], "rules": "closed"}})
}

fn validator() -> Validator {
    let mut set = PackageSet::new();
    let defs = vec![
        sd(
            BY_TYPE,
            "Bundle",
            vec![
                el("Bundle", 0, "*", json!({})),
                el("Bundle.entry", 0, "*", slicing("type", "resource")),
                el("Bundle.entry:pat", 1, "1", json!({})),
                el("Bundle.entry:pat.resource", 1, "1", json!({"type": [{"code": "Patient"}]})),
                el("Bundle.entry:obs", 1, "1", json!({})),
                el("Bundle.entry:obs.resource", 1, "1", json!({"type": [{"code": "Observation"}]})),
            ],
        ),
        sd(
            FEMALE,
            "Patient",
            vec![
                el("Patient", 0, "*", json!({})),
                el("Patient.gender", 1, "1", json!({"type": [{"code": "code"}], "fixedCode": "female"})),
            ],
        ),
        sd(
            BY_PROFILE,
            "Bundle",
            vec![
                el("Bundle", 0, "*", json!({})),
                el("Bundle.entry", 0, "*", slicing("profile", "resource")),
                el("Bundle.entry:mother", 1, "1", json!({})),
                el("Bundle.entry:mother.resource", 1, "1", json!({"type": [{"code": "Patient", "profile": [FEMALE]}]})),
            ],
        ),
        sd(
            BY_CHOICE,
            "Observation",
            vec![
                el("Observation", 0, "*", json!({})),
                el("Observation.component", 0, "*", slicing("type", "value")),
                el("Observation.component:q", 1, "1", json!({})),
                el("Observation.component:q.value[x]", 1, "1", json!({"type": [{"code": "Quantity"}]})),
                el("Observation.component:s", 0, "1", json!({})),
                el("Observation.component:s.value[x]", 1, "1", json!({"type": [{"code": "string"}]})),
            ],
        ),
        sd(
            BY_TARGET,
            "Observation",
            vec![
                el("Observation", 0, "*", json!({})),
                el("Observation.derivedFrom", 0, "*", slicing("type", "resolve()")),
                el(
                    "Observation.derivedFrom:obs",
                    1,
                    "1",
                    json!({"type": [{"code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Observation"]}]}),
                ),
                el(
                    "Observation.derivedFrom:qr",
                    0,
                    "1",
                    json!({"type": [{"code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse"]}]}),
                ),
            ],
        ),
        sd(
            NESTED,
            "Observation",
            vec![
                el("Observation", 0, "*", json!({})),
                el(
                    "Observation.component",
                    0,
                    "*",
                    json!({"slicing": {"discriminator": [{"type": "value", "path": "code.coding.code"}],
                        "rules": "open"}}),
                ),
                el("Observation.component:a", 1, "1", json!({})),
                el("Observation.component:a.code", 1, "1", json!({})),
                el(
                    "Observation.component:a.code.coding",
                    0,
                    "*",
                    json!({"slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}}),
                ),
                el("Observation.component:a.code.coding:aCode", 1, "1", json!({})),
                el("Observation.component:a.code.coding:aCode.code", 1, "1", json!({"fixedCode": "a"})),
                el("Observation.component:b", 1, "1", json!({})),
                el("Observation.component:b.code", 1, "1", json!({})),
                el(
                    "Observation.component:b.code.coding",
                    0,
                    "*",
                    json!({"slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}}),
                ),
                el("Observation.component:b.code.coding:bCode", 1, "1", json!({})),
                el("Observation.component:b.code.coding:bCode.code", 1, "1", json!({"fixedCode": "b"})),
            ],
        ),
    ];
    for d in defs {
        set.insert(ConformanceKind::StructureDefinition, d);
    }
    Validator::new(set)
}

fn issues(v: &Validator, r: &Value, profile: &str, severity: Severity) -> Vec<Issue> {
    v.validate(r, &[profile]).into_iter().filter(|i| i.severity == severity).collect()
}

/// Errors; and no "could not be evaluated" warning is left.
fn errors(v: &Validator, r: &Value, profile: &str) -> Vec<Issue> {
    let undecided: Vec<Issue> = issues(v, r, profile, Severity::Warning)
        .into_iter()
        .filter(|i| i.message_en.contains("could not be evaluated"))
        .collect();
    assert!(undecided.is_empty(), "{undecided:#?}");
    issues(v, r, profile, Severity::Error)
}

fn bundle(resources: Vec<Value>) -> Value {
    let entry: Vec<Value> = resources
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let rt = r["resourceType"].as_str().unwrap().to_owned();
            json!({"fullUrl": format!("http://example.org/fhir/{rt}/{i}"), "resource": r})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry})
}

fn patient(gender: &str) -> Value {
    json!({"resourceType": "Patient", "gender": gender})
}

fn observation() -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
}

fn has(e: &[Issue], text: &str) -> bool {
    e.iter().any(|i| i.message_en.contains(text))
}

#[test]
fn type_discriminator_on_a_resource() {
    let v = validator();
    let ok = bundle(vec![patient("male"), observation()]);
    assert!(errors(&v, &ok, BY_TYPE).is_empty(), "{:#?}", errors(&v, &ok, BY_TYPE));
    let two_obs = bundle(vec![observation(), observation()]);
    let e = errors(&v, &two_obs, BY_TYPE);
    assert!(has(&e, "slice 'pat'): minimum required = 1") && has(&e, "slice 'obs'): maximum allowed = 1"), "{e:#?}");
    let extra = bundle(vec![patient("male"), observation(), json!({"resourceType": "Basic", "code": {"text": "x"}})]);
    let e = errors(&v, &extra, BY_TYPE);
    assert!(e.len() == 1 && e[0].location == "Bundle.entry[2]" && has(&e, "closed"), "{e:#?}");
}

#[test]
fn type_discriminator_on_a_choice_element() {
    let v = validator();
    let quantity = json!({"code": {"text": "q"}, "valueQuantity": {"value": 1}});
    let string = json!({"code": {"text": "s"}, "valueString": "x"});
    let mut ok = observation();
    ok["component"] = json!([quantity, string]);
    assert!(errors(&v, &ok, BY_CHOICE).is_empty(), "{:#?}", errors(&v, &ok, BY_CHOICE));
    let mut twice = observation();
    twice["component"] = json!([quantity, quantity]);
    let e = errors(&v, &twice, BY_CHOICE);
    assert!(has(&e, "slice 'q'): maximum allowed = 1"), "{e:#?}");
    let mut other = observation();
    other["component"] = json!([quantity, {"code": {"text": "b"}, "valueBoolean": true}]);
    let e = errors(&v, &other, BY_CHOICE);
    assert!(e.len() == 1 && e[0].location == "Observation.component[1]" && has(&e, "closed"), "{e:#?}");
}

#[test]
fn type_discriminator_through_resolve() {
    let v = validator();
    let with = |refs: &[&str]| {
        let mut o = observation();
        o["derivedFrom"] = Value::Array(refs.iter().map(|r| json!({"reference": r})).collect());
        o
    };
    let ok = with(&["Observation/1", "QuestionnaireResponse/2"]);
    assert!(errors(&v, &ok, BY_TARGET).is_empty(), "{:#?}", errors(&v, &ok, BY_TARGET));
    let e = errors(&v, &with(&["Observation/1", "http://example.org/fhir/Observation/2"]), BY_TARGET);
    assert!(has(&e, "slice 'obs'): maximum allowed = 1"), "{e:#?}");
    let e = errors(&v, &with(&["Media/3", "Observation/1"]), BY_TARGET);
    assert!(e.len() == 1 && e[0].location == "Observation.derivedFrom[0]" && has(&e, "closed"), "{e:#?}");
}

#[test]
fn profile_discriminator_on_a_bundle_entry() {
    let v = validator();
    let ok = bundle(vec![patient("female")]);
    assert!(errors(&v, &ok, BY_PROFILE).is_empty(), "{:#?}", errors(&v, &ok, BY_PROFILE));
    let e = errors(&v, &bundle(vec![patient("male")]), BY_PROFILE);
    assert!(has(&e, "slice 'mother'): minimum required = 1") && has(&e, "closed"), "{e:#?}");
    let e = errors(&v, &bundle(vec![patient("female"), patient("female")]), BY_PROFILE);
    assert!(has(&e, "slice 'mother'): maximum allowed = 1"), "{e:#?}");
}

#[test]
fn value_discriminator_fixed_in_a_nested_slice() {
    let v = validator();
    let component = |code: &str| json!({"code": {"coding": [{"system": "http://example.org/cs", "code": code}]}});
    let mut ok = observation();
    ok["component"] = json!([component("b"), component("a")]);
    assert!(errors(&v, &ok, NESTED).is_empty(), "{:#?}", errors(&v, &ok, NESTED));
    let mut bad = observation();
    bad["component"] = json!([component("b"), component("b")]);
    let e = errors(&v, &bad, NESTED);
    assert!(has(&e, "slice 'a'): minimum required = 1") && has(&e, "slice 'b'): maximum allowed = 1"), "{e:#?}");
}

/// The core R4 blood-pressure profile: its components are sliced by `code.coding.code`
/// and `code.coding.system`, fixed in the nested slices `SBPCode` and `DBPCode`.
#[test]
fn core_blood_pressure_components() {
    let Some(v) = support::core_validator() else { return };
    let component = |code: &str| {
        json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
    };
    let bp = |codes: &[&str]| {
        json!({"resourceType": "Observation", "id": "bp", "status": "final",
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bp"]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-01-01",
            "component": codes.iter().map(|c| component(c)).collect::<Vec<_>>()})
    };
    let errors = |r: &Value| -> Vec<Issue> {
        let all = v.validate(r, &[]);
        let undecided: Vec<&Issue> = all.iter().filter(|i| i.message_en.contains("could not be evaluated")).collect();
        assert!(undecided.is_empty(), "{undecided:#?}");
        all.into_iter().filter(|i| i.severity == Severity::Error).collect()
    };
    let ok = bp(&["8480-6", "8462-4"]);
    assert!(errors(&ok).is_empty(), "{:#?}", errors(&ok));
    let e = errors(&bp(&["8462-4", "8462-4"]));
    assert!(
        has(&e, "slice 'SystolicBP'): minimum required = 1") && has(&e, "slice 'DiastolicBP'): maximum allowed = 1"),
        "{e:#?}"
    );
}
