//! Composite parameters, token `:in`/`:not-in`/`:below`/`:above` through the terminology
//! service, and `_text`/`_content` full-text search, on small data whose answers are
//! worked out by hand in the comments.

use serde_json::{json, Value};
use std::sync::Arc;
use tsunagu_interaction::{Interactions, NoCheck, RequestContext, SearchParams};

fn server() -> (tempfile::TempDir, Interactions) {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    (dir, Interactions::new(store, Arc::new(NoCheck), Default::default()))
}

fn put(fhir: &Interactions, v: Value) {
    let (ty, id) = (v["resourceType"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string());
    fhir.update(&ty, &id, v, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
}

fn ids(fhir: &Interactions, ty: &str, query: &str) -> Vec<String> {
    let b = fhir.search(Some(ty), &SearchParams::parse(query), &RequestContext::new("http://x")).unwrap();
    let mut out: Vec<String> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn status(fhir: &Interactions, ty: &str, query: &str) -> u16 {
    match fhir.search(Some(ty), &SearchParams::parse(query), &RequestContext::new("http://x")) {
        Ok(_) => 200,
        Err(e) => e.status(),
    }
}

const LOINC: &str = "http://loinc.org";

fn blood_pressure(id: &str, systolic: f64, diastolic: f64) -> Value {
    let component = |code: &str, v: f64| {
        json!({"code": {"coding": [{"system": LOINC, "code": code}]},
               "valueQuantity": {"value": v, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
    };
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": "2024-05-01",
        "component": [component("8480-6", systolic), component("8462-4", diastolic)]})
}

#[test]
fn composite_components_come_from_the_same_element() {
    let (_d, fhir) = server();
    put(&fhir, blood_pressure("bp1", 150.0, 95.0));
    put(&fhir, blood_pressure("bp2", 118.0, 150.0));
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "hb", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}], "text": "Hemoglobin"},
        "valueQuantity": {"value": 13.2, "system": "http://unitsofmeasure.org", "code": "g/dL"}}),
    );
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "smoke", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]}}),
    );
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "note", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8251-1"}]}, "valueString": "Feeling well"}),
    );
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "onset", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "11368-8"}]}, "valueDateTime": "2023-02-10"}),
    );
    let q = |s: &str| ids(&fhir, "Observation", s);
    // Systolic over 140: bp1 only. bp2 has 150 too, but as its diastolic value.
    assert_eq!(q("component-code-value-quantity=http://loinc.org|8480-6$gt140"), ["bp1"]);
    assert_eq!(q("component-code-value-quantity=8462-4$gt140"), ["bp2"]);
    assert_eq!(q("component-code-value-quantity=8462-4$95|http://unitsofmeasure.org|mm[Hg]"), ["bp1"]);
    assert!(q("component-code-value-quantity=8462-4$95|http://unitsofmeasure.org|mg").is_empty());
    assert_eq!(q("component-value-quantity=95||mmHg"), ["bp1"]);
    // `,` ORs whole composite values.
    assert_eq!(q("component-code-value-quantity=8480-6$gt140,8462-4$gt140"), ["bp1", "bp2"]);
    // combo- covers the Observation's own code and value and its components.
    assert_eq!(q("combo-code-value-quantity=718-7$lt14,8480-6$lt120"), ["bp2", "hb"]);
    assert_eq!(q("code-value-quantity=http://loinc.org|718-7$13.2"), ["hb"]);
    assert!(q("code-value-quantity=http://loinc.org|718-7$13.3").is_empty());
    assert_eq!(q("code-value-concept=72166-2$http://snomed.info/sct|8517006"), ["smoke"]);
    assert_eq!(q("code-value-string=8251-1$feel"), ["note"]);
    assert_eq!(q("code-value-date=11368-8$ge2023-01"), ["onset"]);
    assert!(q("code-value-date=11368-8$lt2023").is_empty());
    assert_eq!(q("code-value-quantity:missing=false"), ["hb"]);
    assert_eq!(status(&fhir, "Observation", "code-value-quantity=718-7"), 400);
    assert_eq!(status(&fhir, "Observation", "code-value-quantity=718-7$x"), 400);
    // An update replaces the composite rows of the previous version.
    put(&fhir, blood_pressure("bp1", 110.0, 70.0));
    assert!(q("component-code-value-quantity=8480-6$gt140").is_empty());
}

fn terminology(fhir: &Interactions) {
    fhir.terminology()
        .add(json!({"resourceType": "CodeSystem", "url": "urn:dx", "status": "active", "content": "complete",
            "concept": [{"code": "cardio",
                         "concept": [{"code": "htn", "concept": [{"code": "htn-2"}]}, {"code": "af"}]},
                        {"code": "dm"}]}))
        .unwrap();
    fhir.terminology()
        .add(json!({"resourceType": "ValueSet", "url": "urn:vs:rhythm-or-sugar", "status": "active",
            "compose": {"include": [{"system": "urn:dx", "concept": [{"code": "af"}, {"code": "dm"}]}]}}))
        .unwrap();
}

#[test]
fn token_modifiers_ask_the_terminology_service() {
    let (_d, fhir) = server();
    terminology(&fhir);
    for (id, code) in [("c-htn", "htn"), ("c-htn2", "htn-2"), ("c-af", "af"), ("c-dm", "dm"), ("c-cardio", "cardio")] {
        put(
            &fhir,
            json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "urn:dx", "code": code}]}}),
        );
    }
    put(
        &fhir,
        json!({"resourceType": "Condition", "id": "c-other", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "urn:elsewhere", "code": "af"}]}}),
    );
    let q = |s: &str| ids(&fhir, "Condition", s);
    assert_eq!(q("code:below=urn:dx|htn"), ["c-htn", "c-htn2"]);
    assert_eq!(q("code:below=urn:dx|cardio"), ["c-af", "c-cardio", "c-htn", "c-htn2"]);
    assert_eq!(q("code:above=urn:dx|htn-2"), ["c-cardio", "c-htn", "c-htn2"]);
    // Same code in another system is not in the value set.
    assert_eq!(q("code:in=urn:vs:rhythm-or-sugar"), ["c-af", "c-dm"]);
    assert_eq!(q("code:not-in=urn:vs:rhythm-or-sugar"), ["c-cardio", "c-htn", "c-htn2", "c-other"]);
    assert_eq!(q("code:in=urn:vs:rhythm-or-sugar&code:below=urn:dx|cardio"), ["c-af"]);
    assert_eq!(status(&fhir, "Condition", "code:in=urn:vs:unknown"), 400);
    assert_eq!(status(&fhir, "Condition", "code:below=htn"), 400);
}

#[test]
fn large_value_sets_become_one_list() {
    let (_d, fhir) = server();
    let concepts: Vec<Value> = (0..3000).map(|i| json!({"code": format!("k{i}")})).collect();
    fhir.terminology()
        .add(json!({"resourceType": "CodeSystem", "url": "urn:big", "status": "active", "content": "complete",
            "concept": concepts}))
        .unwrap();
    fhir.terminology()
        .add(json!({"resourceType": "ValueSet", "url": "urn:vs:big", "status": "active",
            "compose": {"include": [{"system": "urn:big"}]}}))
        .unwrap();
    for (id, code) in [("a", "k2999"), ("b", "k17"), ("c", "nope")] {
        put(
            &fhir,
            json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "urn:big", "code": code}]}}),
        );
    }
    assert_eq!(ids(&fhir, "Condition", "code:in=urn:vs:big"), ["a", "b"]);
}

#[test]
fn full_text_finds_japanese_without_spaces() {
    let (_d, fhir) = server();
    let narrative = |id: &str, div: &str, note: &str| {
        json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"},
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{div}</div>")},
            "note": [{"text": note}]})
    };
    put(&fhir, narrative("n1", "<p>本態性高血圧症の疑い</p>", "減塩指導"));
    put(&fhir, narrative("n2", "<p>2型糖尿病 Type 2 diabetes</p>", "HbA1c 7.2"));
    put(&fhir, narrative("n3", "<b>ｺｳｹﾂｱﾂ</b> follow-up", "血圧 stable"));
    let q = |s: &str| ids(&fhir, "Condition", s);
    assert_eq!(q("_text=高血圧"), ["n1"]);
    assert_eq!(q("_text=血圧"), ["n1"]); // n3 has 血圧 only in a note, not the narrative
    assert_eq!(q("_content=血圧"), ["n1", "n3"]);
    assert_eq!(q("_text=こうけつあつ"), ["n3"]); // half-width katakana folded
    assert_eq!(q("_text=糖"), ["n2"]);
    assert_eq!(q("_text=DIABETES type"), ["n2"]);
    assert!(q("_text=\"diabetes type\"").is_empty());
    assert_eq!(q("_text=\"type 2 diabetes\""), ["n2"]);
    assert_eq!(q("_text=糖尿病 OR 高血圧"), ["n1", "n2"]);
    assert_eq!(q("_text=糖尿病,高血圧"), ["n1", "n2"]);
    assert_eq!(q("_content=減塩"), ["n1"]);
    assert_eq!(q("_text:not=血圧"), ["n2", "n3"]);
    assert_eq!(status(&fhir, "Condition", "_text=-"), 400);
    // A term mixing digits or Latin letters with Japanese is one phrase, in order.
    assert_eq!(q("_text=2型糖尿病"), ["n2"]);
    assert_eq!(q("_text=2型"), ["n2"]);
    assert_eq!(q("_text=糖尿病type"), ["n2"]);
    assert_eq!(q("_text=こうけつあつfollow"), ["n3"]);
    assert!(q("_text=型2").is_empty());
    assert!(q("_text=diabetes糖尿病").is_empty());
    // An update replaces the old version's tokens.
    put(&fhir, narrative("n1", "<p>経過良好</p>", "-"));
    assert!(q("_text=高血圧").is_empty());
    assert_eq!(q("_text=経過"), ["n1"]);
}

fn entries(fhir: &Interactions, ty: &str, query: &str) -> (Vec<String>, Option<String>) {
    let b = fhir.search(Some(ty), &SearchParams::parse(query), &RequestContext::new("http://x")).unwrap();
    let urls =
        b["entry"].as_array().into_iter().flatten().map(|e| e["fullUrl"].as_str().unwrap().to_string()).collect();
    let next = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
    (urls, next.map(|l| l["url"].as_str().unwrap().split_once('?').unwrap().1.to_string()))
}

#[test]
fn contained_resources_are_searched_one_by_one() {
    let (_d, fhir) = server();
    let medication = |id: &str, code: &str, form: &str| {
        json!({"resourceType": "Medication", "id": id, "code": {"coding": [{"system": "urn:yj", "code": code}]},
               "form": {"coding": [{"system": "urn:form", "code": form}]}})
    };
    let request = |id: &str, contained: Vec<Value>| {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p"}, "contained": contained,
               "medicationReference": {"reference": "#m"}})
    };
    put(&fhir, request("mr1", vec![medication("a", "111", "tab"), medication("b", "222", "cap")]));
    put(&fhir, request("mr2", vec![medication("c", "111", "cap")]));
    put(&fhir, request("mr3", vec![]));
    put(&fhir, medication("m3", "111", "tab"));
    let q = |s: &str| entries(&fhir, "Medication", s).0;
    assert_eq!(q("code=111"), ["http://x/Medication/m3"]);
    assert_eq!(q("code=111&_contained=false"), ["http://x/Medication/m3"]);
    assert_eq!(q("code=111&_contained=true"), ["http://x/MedicationRequest/mr1", "http://x/MedicationRequest/mr2"]);
    assert_eq!(
        q("code=111&_contained=true&_containedType=contained"),
        ["http://x/MedicationRequest/mr1#a", "http://x/MedicationRequest/mr2#c"]
    );
    // mr1 holds code 111 and form cap, but in two different Medications.
    assert_eq!(q("code=111&form=cap&_contained=true"), ["http://x/MedicationRequest/mr2"]);
    assert_eq!(
        q("code=111&_contained=both"),
        ["http://x/MedicationRequest/mr1", "http://x/MedicationRequest/mr2", "http://x/Medication/m3"]
    );
    // Pages follow the write order of the containers.
    let (first, next) = entries(&fhir, "Medication", "code=111&_contained=both&_count=2");
    assert_eq!(first, ["http://x/MedicationRequest/mr1", "http://x/MedicationRequest/mr2"]);
    let (second, last) = entries(&fhir, "Medication", &next.expect("a next page"));
    assert_eq!(second, ["http://x/Medication/m3"]);
    assert!(last.is_none());
    assert_eq!(status(&fhir, "Medication", "code=111&_contained=maybe"), 400);
    assert_eq!(status(&fhir, "Medication", "_contained=true&_containedType=x"), 400);
    assert_eq!(status(&fhir, "Medication", "code=111&_contained=true&_sort=code"), 400);
}

/// `_revinclude` and `_include` add at most `max_included` resources to a page; a page
/// that had more to add keeps what fits and says, in a warning outcome entry, that its
/// included resources are incomplete. Within the limit no such entry appears.
#[test]
fn included_resources_past_the_limit_are_said_to_be_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let mut config = tsunagu_interaction::InteractionConfig::default();
    config.limits.max_included = 5;
    let fhir = Interactions::new(store, Arc::new(NoCheck), config);
    for p in ["p1", "p2"] {
        put(&fhir, json!({"resourceType": "Patient", "id": p}));
    }
    // p1 has 8 Observations, p2 has 3.
    for k in 0..11 {
        let p = if k < 8 { "p1" } else { "p2" };
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("o{k}"), "status": "final",
                   "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}}),
        );
    }
    let page = |query: &str| {
        let b = fhir.search(Some("Patient"), &SearchParams::parse(query), &RequestContext::new("http://x")).unwrap();
        let entries = b["entry"].as_array().cloned().unwrap_or_default();
        let included = entries.iter().filter(|e| e["search"]["mode"] == "include").count();
        let warning = entries
            .iter()
            .find(|e| e["search"]["mode"] == "outcome" && e["resource"]["issue"][0]["code"] == "incomplete")
            .map(|e| e["resource"]["issue"][0]["diagnostics"].as_str().unwrap().to_string());
        (included, warning)
    };
    let (n, warning) = page("_id=p2&_revinclude=Observation:subject");
    assert_eq!((n, warning), (3, None), "3 fit within 5: all of them, no warning");
    let (n, warning) = page("_id=p1&_revinclude=Observation:subject");
    assert_eq!(n, 5, "8 found, 5 kept");
    let warning = warning.expect("a warning says the included resources are incomplete");
    assert!(warning.contains("max_included = 5"), "{warning}");
    // Forward includes count against the same limit.
    let (n, warning) = page("_id=p1,p2&_revinclude=Observation:subject&_count=1");
    assert!(n <= 5 && warning.is_some(), "{n}");
    let b = fhir
        .search(
            Some("Observation"),
            &SearchParams::parse("_include=Observation:subject"),
            &RequestContext::new("http://x"),
        )
        .unwrap();
    let included = b["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count();
    assert_eq!(included, 2, "two patients, each once");
}

/// `_revinclude=Type:*` adds what refers to the matches through any reference parameter of
/// the type, `_revinclude=*` through any parameter of any type, and
/// `_revinclude=Type:param:Target` only what refers to matches of type Target.
#[test]
fn revinclude_wildcards_and_target_types() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    put(&fhir, json!({"resourceType": "Patient", "id": "p1"}));
    put(&fhir, json!({"resourceType": "Patient", "id": "p2"}));
    put(&fhir, json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true}));
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "o-subject", "status": "final", "code": {"text": "x"},
               "subject": {"reference": "Patient/p1"}}),
    );
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "o-performer", "status": "final", "code": {"text": "x"},
               "performer": [{"reference": "Patient/p1"}]}),
    );
    put(
        &fhir,
        json!({"resourceType": "Observation", "id": "o-group", "status": "final", "code": {"text": "x"},
               "subject": {"reference": "Group/g1"}}),
    );
    put(&fhir, json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}));
    put(&fhir, json!({"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p2"}}));
    let included = |ty: &str, query: &str| {
        let b = fhir.search(Some(ty), &SearchParams::parse(query), &RequestContext::new("http://x")).unwrap();
        let mut ids: Vec<String> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == "include")
            .map(|e| {
                format!("{}/{}", e["resource"]["resourceType"].as_str().unwrap(), e["resource"]["id"].as_str().unwrap())
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        included("Patient", "_id=p1&_revinclude=Observation:*"),
        ["Observation/o-performer", "Observation/o-subject"]
    );
    assert_eq!(
        included("Patient", "_id=p1&_revinclude=*"),
        ["Condition/c1", "Observation/o-performer", "Observation/o-subject"]
    );
    assert_eq!(included("Patient", "_id=p2&_revinclude=*"), ["Condition/c2"]);
    // Named again and again, each resource is searched for once and included once.
    assert_eq!(
        included("Patient", "_id=p1&_revinclude=*,*,Observation:*&_revinclude=Observation:subject"),
        ["Condition/c1", "Observation/o-performer", "Observation/o-subject"]
    );
    // The target type narrows which matches are referred to.
    assert_eq!(included("Patient", "_id=p1&_revinclude=Observation:subject:Patient"), ["Observation/o-subject"]);
    assert!(included("Patient", "_id=p1&_revinclude=Observation:subject:Group").is_empty());
    assert_eq!(included("Group", "_id=g1&_revinclude=Observation:subject:Group"), ["Observation/o-group"]);
}
