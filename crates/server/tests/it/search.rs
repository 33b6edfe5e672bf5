//! Search over HTTP: each parameter type, prefix, modifier and result parameter, on a small
//! data set whose expected answers are worked out by hand in the comments.

use crate::common;
use common::{json, TestServer};
use serde_json::{json, Value};

async fn ids(s: &TestServer, query: &str) -> Vec<String> {
    let r = s.get(query).await;
    assert_eq!(r.status(), 200, "{query}");
    let b = json(r).await;
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

async fn load(s: &TestServer) {
    let put = |v: Value| async move {
        let path = format!("{}/{}", v["resourceType"].as_str().unwrap(), v["id"].as_str().unwrap());
        let r = s.put_json(&path, &v).await;
        assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap());
    };
    put(json!({"resourceType": "Organization", "id": "org1", "name": "つなぐ病院"})).await;
    put(json!({"resourceType": "Patient", "id": "p1",
        "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11312345670", "value": "0001",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
        "name": [{"family": "山田", "given": ["太郎"]}, {"family": "ヤマダ", "given": ["タロウ"]}],
        "gender": "male", "birthDate": "1970-05-14", "active": true,
        "managingOrganization": {"reference": "Organization/org1"},
        "address": [{"city": "東京都", "postalCode": "100-0001"}]}))
    .await;
    put(json!({"resourceType": "Patient", "id": "p2",
        "identifier": [{"system": "urn:other", "value": "0001"}],
        "name": [{"family": "Müller", "given": ["Anna"]}],
        "gender": "female", "birthDate": "1985", "active": false}))
    .await;
    put(json!({"resourceType": "Patient", "id": "p3", "name": [{"family": "Smithson"}], "gender": "female"})).await;
    for (id, pat, code, value, date) in [
        ("o1", "p1", "8480-6", 120.0, "2024-01-10T09:00:00+09:00"),
        ("o2", "p1", "8480-6", 145.5, "2024-03-01"),
        ("o3", "p2", "8462-4", 80.0, "2023-12-31T23:00:00Z"),
    ] {
        put(json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "血圧"},
            "subject": {"reference": format!("Patient/{pat}")},
            "performer": [{"identifier": {"system": "urn:oid:1.2.392.100495.20.3.41", "value": format!("doc-{pat}")}}],
            "effectiveDateTime": date,
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mm[Hg]", "unit": "mmHg"}}))
        .await;
    }
    put(json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "period": {"start": "2023-01-01", "end": "2023-12-31"}}))
    .await;
    put(json!({"resourceType": "RiskAssessment", "id": "r1", "status": "final",
        "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 0.25}]}))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_parameter_type() {
    let s = common::start().await;
    load(&s).await;
    // token: code, system|code, |code, system|
    assert_eq!(ids(&s, "Patient?gender=male").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?identifier=0001").await, ["p1", "p2"]);
    assert_eq!(ids(&s, "Patient?identifier=urn:other|0001").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?identifier=urn:other|").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?identifier=|0001").await, Vec::<String>::new());
    assert_eq!(ids(&s, "Patient?active=true").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?gender:not=male").await, ["p2", "p3"]);
    assert_eq!(ids(&s, "Observation?code:text=血圧").await, ["o1", "o2", "o3"]);
    assert_eq!(ids(&s, "Patient?gender=male,female").await, ["p1", "p2", "p3"]);
    // string: prefix, case/accent-insensitive, :exact, :contains, Japanese width and kana
    assert_eq!(ids(&s, "Patient?family=smith").await, ["p3"]);
    assert_eq!(ids(&s, "Patient?family=muller").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?family:exact=Smith").await, Vec::<String>::new());
    assert_eq!(ids(&s, "Patient?family:exact=Smithson").await, ["p3"]);
    assert_eq!(ids(&s, "Patient?family:contains=thso").await, ["p3"]);
    assert_eq!(ids(&s, "Patient?name=%EF%BE%94%EF%BE%8F%EF%BE%80%EF%BE%9E").await, ["p1"]); // ﾔﾏﾀﾞ
    assert_eq!(ids(&s, "Patient?name=やまだ").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?name=ヤマダ").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?name=山田").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?address-city=東京").await, ["p1"]);
    // date: precision ranges and prefixes. p1 1970-05-14, p2 the year 1985.
    assert_eq!(ids(&s, "Patient?birthdate=1970").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?birthdate=1970-05-14").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?birthdate=1985-06").await, Vec::<String>::new()); // 1985 is wider than June
    assert_eq!(ids(&s, "Patient?birthdate=gt1980").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?birthdate=lt1980").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?birthdate=ge1985").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?birthdate=le1970-05-14").await, ["p1"]);
    assert_eq!(ids(&s, "Patient?birthdate=ne1970-05-14").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?birthdate=sa1980").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?birthdate=eb1980").await, ["p1"]);
    // o1 is 2024-01-10T00:00Z, o3 2023-12-31T23:00Z
    assert_eq!(ids(&s, "Observation?date=2024-01").await, ["o1"]);
    assert_eq!(ids(&s, "Observation?date=ge2024-01-01&date=lt2024-02-01").await, ["o1"]);
    assert_eq!(ids(&s, "Observation?date=2023").await, ["o3"]);
    // both bounds on a single-valued date: narrow (a day) and wide (a year) values
    assert_eq!(ids(&s, "Patient?birthdate=ge1970&birthdate=lt1986").await, ["p1", "p2"]);
    // 1985 (the whole year) reaches past 1985-03-01 and starts before 1985-03-31.
    assert_eq!(ids(&s, "Patient?birthdate=ge1985-03-01&birthdate=le1985-03-31").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?birthdate=gt1970-05-13&birthdate=lt1970-05-15").await, ["p1"]);
    assert_eq!(ids(&s, "Encounter?date=ge2023-06-01&date=lt2023-06-02").await, ["e1"]);
    assert_eq!(ids(&s, "Encounter?date=ge2024-06-01&date=lt2024-06-02").await, Vec::<String>::new());
    // quantity
    assert_eq!(ids(&s, "Observation?value-quantity=120").await, ["o1"]);
    assert_eq!(ids(&s, "Observation?value-quantity=gt100|http://unitsofmeasure.org|mm[Hg]").await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Observation?value-quantity=lt100||mm[Hg]").await, ["o3"]);
    assert_eq!(ids(&s, "Observation?value-quantity=145.5").await, ["o2"]);
    assert_eq!(ids(&s, "Observation?value-quantity=gt100||kg").await, Vec::<String>::new());
    // number
    assert_eq!(ids(&s, "RiskAssessment?probability=0.25").await, ["r1"]);
    assert_eq!(ids(&s, "RiskAssessment?probability=gt0.5").await, Vec::<String>::new());
    // reference: Type/id, id, absolute URL, :Type
    assert_eq!(ids(&s, "Observation?subject=Patient/p1").await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Observation?patient=p2").await, ["o3"]);
    assert_eq!(ids(&s, &format!("Observation?subject={}/Patient/p1", s.base)).await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Observation?subject:Patient=p1").await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Observation?subject:Group=p1").await, Vec::<String>::new());
    // :identifier on references, :of-type on identifiers
    assert_eq!(ids(&s, "Observation?performer:identifier=urn:oid:1.2.392.100495.20.3.41|doc-p2").await, ["o3"]);
    assert_eq!(
        ids(&s, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|0001").await,
        ["p1"]
    );
    assert_eq!(
        ids(&s, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|9999").await,
        Vec::<String>::new()
    );
    // :missing
    assert_eq!(ids(&s, "Patient?birthdate:missing=true").await, ["p3"]);
    assert_eq!(ids(&s, "Patient?birthdate:missing=false").await, ["p1", "p2"]);
    // special parameters
    assert_eq!(ids(&s, "Patient?_id=p1,p3").await, ["p1", "p3"]);
    // AND across parameters
    assert_eq!(ids(&s, "Patient?gender=female&family=smi").await, ["p3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_has_includes_sort_paging() {
    let s = common::start().await;
    load(&s).await;
    // Chaining, with and without the type.
    assert_eq!(ids(&s, "Observation?subject:Patient.name=やまだ").await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Observation?patient.gender=female").await, ["o3"]);
    assert_eq!(ids(&s, "Observation?subject:Patient.organization.name=つなぐ").await, ["o1", "o2"]);
    // Reverse chaining, nested.
    assert_eq!(ids(&s, "Patient?_has:Observation:patient:code=8462-4").await, ["p2"]);
    assert_eq!(ids(&s, "Patient?_has:Observation:subject:value-quantity=gt140").await, ["p1"]);
    assert_eq!(ids(&s, "Organization?_has:Patient:organization:_has:Observation:patient:code=8480-6").await, ["org1"]);
    // _include / _revinclude
    let b = json(s.get("Observation?_id=o1&_include=Observation:subject").await).await;
    let modes: Vec<(String, String)> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["resource"]["id"].as_str().unwrap().to_string(), e["search"]["mode"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(modes, [("o1".into(), "match".into()), ("p1".into(), "include".into())]);
    let b = json(s.get("Patient?_id=p1&_revinclude=Observation:subject").await).await;
    assert_eq!(b["entry"].as_array().unwrap().len(), 3);
    let b = json(s.get("Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization").await)
        .await;
    assert_eq!(b["entry"].as_array().unwrap().len(), 3);
    // `*`: every reference parameter (subject and patient name the same Patient, once).
    let b = json(s.get("Observation?_id=o1&_include=Observation:*&_include:iterate=Patient:*").await).await;
    let found: Vec<&str> =
        b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert_eq!(found, ["o1", "p1", "org1"]);
    // _sort, several keys, descending.
    let b = json(s.get("Patient?_sort=-birthdate").await).await;
    let order: Vec<&str> =
        b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["p2", "p1", "p3"]); // p3 has no birthDate: last
    let b = json(s.get("Patient?_sort=gender,-family").await).await;
    let order: Vec<&str> =
        b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["p3", "p2", "p1"]);
    // Paging with _count follows next links to the end, with sort and without.
    for q in ["Observation?_count=1", "Observation?_count=1&_sort=date"] {
        let mut seen = Vec::new();
        let mut url = s.url(q);
        loop {
            let b = json(s.client.get(&url).send().await.unwrap()).await;
            for e in b["entry"].as_array().into_iter().flatten() {
                seen.push(e["resource"]["id"].as_str().unwrap().to_string());
            }
            match b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
                Some(l) => url = l["url"].as_str().unwrap().to_string(),
                None => break,
            }
        }
        if q.contains("_sort") {
            assert_eq!(seen, ["o3", "o1", "o2"]);
        }
        seen.sort();
        assert_eq!(seen, ["o1", "o2", "o3"], "{q}");
    }
    // _total and _summary=count.
    assert_eq!(json(s.get("Observation?_total=accurate&_count=1").await).await["total"], 3);
    let c = json(s.get("Observation?_summary=count").await).await;
    assert_eq!(c["total"], 3);
    assert!(c.get("entry").is_none());
    // Compartment search and $everything.
    assert_eq!(ids(&s, "Patient/p1/Observation").await, ["o1", "o2"]);
    assert_eq!(ids(&s, "Patient/p1/Observation?code=8462-4").await, Vec::<String>::new());
    assert_eq!(ids(&s, "Patient/p1/*").await, ["o1", "o2", "r1"]);
    assert_eq!(ids(&s, "Patient/p1/$everything").await, ["o1", "o2", "p1", "r1"]);
    // Type level: every patient and everything in any patient's compartment (not the
    // Organization, not the Encounter without a subject).
    assert_eq!(ids(&s, "Patient/$everything").await, ["o1", "o2", "o3", "p1", "p2", "p3", "r1"]);
    assert_eq!(ids(&s, "Patient/$everything?_count=2").await.len(), 2);
    // `_id` would keep the Patient alone: one patient's data is the instance operation.
    assert_eq!(s.get("Patient/$everything?_id=p1").await.status(), 400);
    assert_eq!(s.get("Patient/$everything?_id:not=p1").await.status(), 400);
    // Errors: unknown parameter (strict), bad values, unsupported modifiers.
    let strict = s.client.get(s.url("Patient?nonsense=1")).header("prefer", "handling=strict").send().await.unwrap();
    assert_eq!(strict.status(), 400);
    // Leniently, what was ignored is said in an outcome entry and left out of the self link
    // (which names the search that ran); a `_total` it cannot use is ignored the same way.
    for (query, ignored) in [
        ("nonsense=1&_count=1", "nonsense"),
        ("_has:Foo:patient:_id=x&_count=1", "_has:Foo:patient:_id"),
        ("_total=maybe&_count=1", "_total"),
    ] {
        let b = json(s.get(&format!("Patient?{query}")).await).await;
        let self_link = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "self").unwrap();
        assert!(self_link["url"].as_str().unwrap().ends_with("/Patient?_count=1"), "{query}: {self_link}");
        let outcome = b["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome").unwrap();
        assert!(outcome["resource"]["issue"][0]["diagnostics"].as_str().unwrap().contains(ignored), "{query}");
    }
    assert_eq!(s.get("Patient?birthdate=yesterday").await.status(), 400);
    assert_eq!(s.get("Observation?value-quantity=abc").await.status(), 400);
    assert_eq!(s.get("Patient?name:above=x").await.status(), 400);
    assert_eq!(s.get("Patient?_sort=nonsense").await.status(), 400);
    // Search sees updates and deletes.
    let mut p3 = json(s.get("Patient/p3").await).await;
    p3["gender"] = json!("male");
    s.put_json("Patient/p3", &p3).await;
    assert_eq!(ids(&s, "Patient?gender=male").await, ["p1", "p3"]);
    s.client.delete(s.url("Patient/p1")).send().await.unwrap();
    assert_eq!(ids(&s, "Patient?gender=male").await, ["p3"]);
    assert_eq!(ids(&s, "Observation?subject:Patient.name=やまだ").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_terminology_full_text_and_contained() {
    let s = common::start().await;
    let put = |v: Value| {
        let s = &s;
        async move {
            let path = format!("{}/{}", v["resourceType"].as_str().unwrap(), v["id"].as_str().unwrap());
            let r = s.put_json(&path, &v).await;
            assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap());
        }
    };
    let bp = |id: &str, sys: f64, dia: f64| {
        let c = |code: &str, v: f64| {
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": v, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
        };
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">血圧測定 外来</div>"},
            "component": [c("8480-6", sys), c("8462-4", dia)]})
    };
    put(bp("bp1", 150.0, 95.0)).await;
    put(bp("bp2", 118.0, 150.0)).await;
    // Systolic over 140: bp1; bp2's 150 is its diastolic value.
    assert_eq!(ids(&s, "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140").await, ["bp1"]);
    // `||mmHg` matches the human unit as well as the code.
    assert_eq!(ids(&s, "Observation?component-value-quantity=95||mmHg").await, ["bp1"]);
    assert_eq!(ids(&s, "Observation?_text=%E8%A1%80%E5%9C%A7").await, ["bp1", "bp2"]); // 血圧
    put(json!({"resourceType": "CodeSystem", "id": "dx", "url": "urn:dx", "status": "active", "content": "complete",
        "concept": [{"code": "cardio", "concept": [{"code": "htn"}]}, {"code": "dm"}]}))
    .await;
    put(json!({"resourceType": "ValueSet", "id": "vs", "url": "urn:vs:dm", "status": "active",
        "compose": {"include": [{"system": "urn:dx", "concept": [{"code": "dm"}]}]}}))
    .await;
    for (id, code) in [("c1", "htn"), ("c2", "dm")] {
        put(json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "urn:dx", "code": code}]}}))
        .await;
    }
    assert_eq!(ids(&s, "Condition?code:below=urn:dx|cardio").await, ["c1"]);
    assert_eq!(ids(&s, "Condition?code:in=urn:vs:dm").await, ["c2"]);
    assert_eq!(ids(&s, "Condition?code:not-in=urn:vs:dm").await, ["c1"]);
    assert_eq!(s.get("Condition?code:in=urn:vs:nowhere").await.status(), 400);
    put(json!({"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p"}, "medicationReference": {"reference": "#m"},
        "contained": [{"resourceType": "Medication", "id": "m",
                       "code": {"coding": [{"system": "urn:yj", "code": "111"}]}}]}))
    .await;
    assert!(ids(&s, "Medication?code=111").await.is_empty());
    assert_eq!(ids(&s, "Medication?code=111&_contained=true").await, ["mr"]);
    let cs = json(s.get("metadata").await).await;
    let names = |ty: &str| -> Vec<String> {
        let r = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == ty).unwrap();
        r["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert!(names("Observation").contains(&"component-code-value-quantity".to_string()));
    assert!(!names("MolecularSequence").contains(&"chromosome-variant-coordinate".to_string()));
}

#[tokio::test]
async fn include_iterate_stops_at_its_limit() {
    let s = common::start().await;
    // o0 is part of o1, which is part of o2, … up to o6.
    for i in 0..7 {
        let mut org = json!({"resourceType": "Organization", "id": format!("o{i}"), "name": format!("org {i}")});
        if i < 6 {
            org["partOf"] = json!({"reference": format!("Organization/o{}", i + 1)});
        }
        assert!(s.put_json(&format!("Organization/o{i}"), &org).await.status().is_success());
    }
    let count = |b: &Value| b["entry"].as_array().map_or(0, Vec::len);
    // o3 → o4 (the first pass), then o5, o6: two further rounds.
    let r = s.get("Organization?_id=o3&_include:iterate=Organization:partof").await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(&json(r).await), 4);
    // o0 needs six further rounds to reach o6; the default allows four.
    let r = s.get("Organization?_id=o0&_include:iterate=Organization:partof").await;
    assert_eq!(r.status(), 400);
    let oo = json(r).await;
    assert!(oo.to_string().contains("max_include_iterations"), "{oo}");
    // Without :iterate the first pass is all there is.
    let r = s.get("Organization?_id=o0&_include=Organization:partof").await;
    assert_eq!(count(&json(r).await), 2);
}

// ---------------------------------------------------------------------------------------
// The sort-driven plan against the general one.

/// Every random search (1–3 conditions, 0–3 sort keys, an offset and a count) over Synthea
/// patients answers the same page, order, total and next link whether the store walks the
/// first sort key's index (forced: from 0 estimated matches on) or sorts every match.
/// Extra Observations add wide, open, backwards and instant dates; then one with two dates
/// (a Timing) takes the walk's start bounds away, and its deletion gives them back.
#[test]
fn sort_walk_pages_equal_the_general_plan() {
    let Some(bundles) = synthea_bundles(12) else { return };
    let dir = tempfile::tempdir().unwrap();
    let store =
        std::sync::Arc::new(tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap());
    let config = tsunagu_interaction::InteractionConfig { max_count: 1000, ..Default::default() };
    let fhir = tsunagu_interaction::Interactions::new(
        store.clone(),
        std::sync::Arc::new(tsunagu_interaction::NoCheck),
        config,
    );
    let ctx = tsunagu_interaction::RequestContext::new("http://x");
    let mut samples = Samples::default();
    for b in bundles {
        samples.read(&b);
        fhir.bundle(b, &ctx).unwrap();
    }
    for (i, effective) in [
        json!({"effectivePeriod": {"start": "2015-03-01", "end": "2015-06-01"}}),
        json!({"effectivePeriod": {"start": "2016-05-01"}}),
        json!({"effectivePeriod": {"end": "2012-02-01"}}),
        json!({"effectivePeriod": {"start": "2016-05-01T10:00:00Z", "end": "2016-01-01"}}),
        json!({"effectiveDateTime": "2018"}),
        json!({"effectiveDateTime": "2019-07"}),
        json!({"effectiveInstant": "2017-04-02T08:30:00.123Z"}),
        json!({"effectiveDateTime": "2016-02-10"}),
        json!({"effectiveDateTime": "2013-11-30"}),
        json!({"effectivePeriod": {"start": "2014-08-31T22:00:00Z", "end": "2014-09-01T03:00:00Z"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut o = json!({"resourceType": "Observation", "id": format!("extra{i}"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "valueQuantity": {"value": 150 + i, "system": "http://unitsofmeasure.org", "code": "cm"}});
        o.as_object_mut().unwrap().extend(effective.as_object().unwrap().clone());
        samples.read(&json!({"entry": [{"resource": o.clone()}]}));
        fhir.update("Observation", &format!("extra{i}"), o, None, &ctx).unwrap();
    }
    // Resources without the values the searches sort by: last in either direction.
    for i in 0..3 {
        let bare = [
            json!({"resourceType": "Observation", "id": format!("bare{i}"), "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]}}),
            json!({"resourceType": "Patient", "id": format!("bare{i}"), "active": true}),
            json!({"resourceType": "Condition", "id": format!("bare{i}"), "subject": {"reference": "Patient/bare0"}}),
            json!({"resourceType": "Encounter", "id": format!("bare{i}"), "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}),
        ];
        for r in bare {
            fhir.update(r["resourceType"].as_str().unwrap(), &format!("bare{i}"), r.clone(), None, &ctx).unwrap();
        }
    }
    let mut rng = SplitMix(std::env::var("SORT_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(17));
    let mut report = Differential::default();
    report.run(&fhir, &store, &ctx, &mut rng, 1500, &|rng| random_search(&samples, rng));
    // A code with a quantity sort walks that code's `code-value-quantity` rows.
    report.run(&fhir, &store, &ctx, &mut rng, 300, &|rng| paired_search(&samples, rng));
    let timing = json!({"resourceType": "Observation", "id": "timing", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
        "effectiveTiming": {"event": ["2014-01-01", "2021-06-01T12:00:00Z"]}});
    fhir.update("Observation", "timing", timing, None, &ctx).unwrap();
    report.run(&fhir, &store, &ctx, &mut rng, 500, &|rng| random_search(&samples, rng));
    fhir.delete("Observation", "timing", None, &ctx).unwrap();
    report.run(&fhir, &store, &ctx, &mut rng, 500, &|rng| random_search(&samples, rng));
    println!(
        "sort walk differential: {} searches, {} pages answered by the walk, {} mismatches",
        report.cases,
        report.walked,
        report.mismatches.len()
    );
    for m in report.mismatches.iter().take(20) {
        println!("  MISMATCH {m}");
    }
    assert!(report.mismatches.is_empty());
    assert!(report.walked as usize >= report.cases / 3, "too few pages ({}) came from the walk", report.walked);
}

/// The first `n` Synthea patient bundles (SKIP without the shared data).
fn synthea_bundles(n: usize) -> Option<Vec<Value>> {
    let path = tsunagu_reference::find("data/synthea-r4-dev.tar.zst")?;
    let mut archive = tar::Archive::new(zstd::Decoder::new(std::fs::File::open(path).unwrap()).unwrap());
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().ends_with(".json") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            out.push(serde_json::from_str(&text).unwrap());
            if out.len() == n {
                break;
            }
        }
    }
    Some(out)
}

/// A small seeded generator (SplitMix64), so a failing case can be run again.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values found in the loaded data, to search for.
#[derive(Default)]
struct Samples {
    /// By resource type: the values of the date parameter its searches use.
    dates: std::collections::HashMap<String, Vec<String>>,
    codes: Vec<(String, String)>,
    numbers: Vec<String>,
    families: Vec<String>,
}

impl Samples {
    fn read(&mut self, bundle: &Value) {
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let ty = r["resourceType"].as_str().unwrap_or_default();
            for key in ["effectiveDateTime", "effectiveInstant", "birthDate", "onsetDateTime"] {
                if let Some(d) = r[key].as_str() {
                    self.dates.entry(ty.to_string()).or_default().push(d.to_string());
                }
            }
            for period in [&r["period"], &r["effectivePeriod"]] {
                for end in ["start", "end"] {
                    if let Some(d) = period[end].as_str() {
                        self.dates.entry(ty.to_string()).or_default().push(d.to_string());
                    }
                }
            }
            for c in r["code"]["coding"].as_array().into_iter().flatten().take(1) {
                if let (Some(s), Some(c)) = (c["system"].as_str(), c["code"].as_str()) {
                    self.codes.push((s.to_string(), c.to_string()));
                }
            }
            if let Some(v) = r["valueQuantity"]["value"].as_f64() {
                self.numbers.push(v.to_string());
            }
            for n in r["name"].as_array().into_iter().flatten() {
                if let Some(f) = n["family"].as_str() {
                    self.families.push(f.to_string());
                }
            }
        }
    }

    /// A date from the data at a random precision, or another time of its day, as a
    /// search value (`+` escaped).
    fn date(&self, ty: &str, rng: &mut SplitMix) -> String {
        let d = rng.pick(&self.dates[ty]);
        let day = &d[..d.len().min(10)];
        // Times of day find the day-wide values (birth dates) with both ends outside them.
        match rng.below(6) {
            0 => d[..d.len().min(4)].to_string(),
            1 => d[..d.len().min(7)].to_string(),
            2 => day.to_string(),
            3 => d.replace('+', "%2B"),
            _ if day.len() == 10 => format!("{day}T{:02}:{:02}:{:02}Z", rng.below(24), rng.below(60), rng.below(60)),
            _ => day.to_string(),
        }
    }
}

#[derive(Default)]
struct Differential {
    cases: usize,
    walked: u64,
    mismatches: Vec<String>,
}

impl Differential {
    fn run(
        &mut self,
        fhir: &tsunagu_interaction::Interactions,
        store: &tsunagu_store::SqliteStore,
        ctx: &tsunagu_interaction::RequestContext,
        rng: &mut SplitMix,
        n: usize,
        search: &dyn Fn(&mut SplitMix) -> (&'static str, String),
    ) {
        for _ in 0..n {
            let (ty, query) = search(rng);
            // The general plan first: its total places the offset.
            store.set_sort_walk(None);
            let general = page(fhir, ctx, ty, &format!("{query}&_total=accurate&_count=1"));
            let total = general.1.unwrap_or(0) as usize;
            let offset = if rng.below(2) == 0 { 0 } else { rng.below(total + 3) };
            let count = 1 + rng.below(12);
            let paged = format!("{query}&_total=accurate&_count={count}&_offset={offset}");
            let want = page(fhir, ctx, ty, &paged);
            store.set_sort_walk(Some(0));
            let before = store.sort_walk_pages();
            let got = page(fhir, ctx, ty, &paged);
            self.walked += store.sort_walk_pages() - before;
            store.set_sort_walk(Some(2000));
            self.cases += 1;
            if got != want {
                self.mismatches.push(format!("{ty}?{paged}: walk {got:?}, general {want:?}"));
            }
        }
    }
}

/// The ids, total and whether a next link follows.
fn page(
    fhir: &tsunagu_interaction::Interactions,
    ctx: &tsunagu_interaction::RequestContext,
    ty: &str,
    query: &str,
) -> (Vec<String>, Option<u64>, bool) {
    let params = tsunagu_interaction::SearchParams::parse(query);
    let b = fhir.search(Some(ty), &params, ctx).unwrap_or_else(|e| panic!("{ty}?{query}: {e}"));
    let ids = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    let next = b["link"].as_array().into_iter().flatten().any(|l| l["relation"] == "next");
    (ids, b["total"].as_u64(), next)
}

/// An Observation code (with or without its system) sorted by its quantity first, maybe
/// with quantity bounds or another condition.
fn paired_search(samples: &Samples, rng: &mut SplitMix) -> (&'static str, String) {
    let (s, c) = rng.pick(&samples.codes);
    let code = if rng.below(2) == 0 { format!("code={s}|{c}") } else { format!("code={c}") };
    let sort = rng.pick(&["value-quantity", "-value-quantity", "value-quantity,-date", "-value-quantity,date"]);
    let extra = match rng.below(5) {
        0 => format!("&value-quantity=gt{}", rng.pick(&samples.numbers)),
        1 => "&status=final".to_string(),
        2 => {
            format!("&value-quantity=ge{}&value-quantity=le{}", rng.pick(&samples.numbers), rng.pick(&samples.numbers))
        }
        _ => String::new(),
    };
    ("Observation", format!("_sort={sort}&{code}{extra}"))
}

/// A type, 1–3 conditions and 0–3 sort keys (the sort is first, so it leads the walk).
fn random_search(samples: &Samples, rng: &mut SplitMix) -> (&'static str, String) {
    let ty = *rng.pick(&["Observation", "Observation", "Observation", "Patient", "Patient", "Condition", "Encounter"]);
    let (date, sorts): (&str, &[&str]) = match ty {
        "Observation" => (
            "date",
            &["date", "date", "code", "value-quantity", "status", "category", "_id", "_lastUpdated", "subject"],
        ),
        "Patient" => ("birthdate", &["birthdate", "name", "family", "gender", "_id"]),
        "Condition" => {
            ("onset-date", &["onset-date", "code", "clinical-status", "recorded-date", "_lastUpdated", "patient"])
        }
        _ => ("date", &["date", "class", "type", "status", "_id", "subject"]),
    };
    let mut parts = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let op = *rng.pick(&["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]);
        let cond = match rng.below(8) {
            0..=2 => format!("{date}={op}{}", samples.date(ty, rng)),
            3 => {
                // A window: both bounds on the one date.
                let (a, b) = (samples.date(ty, rng), samples.date(ty, rng));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let (l, h) = (*rng.pick(&["ge", "gt", "sa"]), *rng.pick(&["lt", "le", "eb"]));
                format!("{date}={l}{lo}&{date}={h}{hi}")
            }
            4 => {
                let (s, c) = rng.pick(&samples.codes);
                match (ty, rng.below(3)) {
                    ("Patient", _) => format!("gender={}", rng.pick(&["male", "female"])),
                    ("Encounter", _) => format!("status={}", rng.pick(&["finished", "in-progress"])),
                    (_, 0) => format!("code={s}|{c}"),
                    (_, 1) => format!("code={c},{}", rng.pick(&samples.codes).1),
                    _ => format!("code:not={c}"),
                }
            }
            5 => match ty {
                "Observation" => format!("value-quantity={op}{}", rng.pick(&samples.numbers)),
                "Patient" => {
                    let f = rng.pick(&samples.families);
                    format!("name={}", &f[..f.len().min(1 + rng.below(3))])
                }
                _ => format!("{date}:missing={}", rng.pick(&["true", "false"])),
            },
            6 => match ty {
                "Observation" => format!("category={}", rng.pick(&["vital-signs", "laboratory", "survey", "exam"])),
                "Condition" => format!("clinical-status={}", rng.pick(&["active", "resolved"])),
                "Encounter" => format!("class={}", rng.pick(&["AMB", "EMER", "IMP", "WELLNESS"])),
                _ => format!("birthdate={op}{}", samples.date(ty, rng)),
            },
            _ => match ty {
                "Patient" => "active=true".into(),
                "Condition" => format!("verification-status={}", rng.pick(&["confirmed", "provisional"])),
                _ => format!("status{}={}", rng.pick(&["", ":not"]), rng.pick(&["final", "finished", "amended"])),
            },
        };
        parts.push(cond);
    }
    let mut keys: Vec<String> = Vec::new();
    if rng.below(2) == 0 {
        // Half the searches sort by the date they may also be bounded on.
        keys.push(format!("{}{date}", if rng.below(2) == 0 { "-" } else { "" }));
    }
    for _ in 0..rng.below(4 - keys.len()) {
        let k = rng.pick(sorts);
        if !keys.iter().any(|x| x.trim_start_matches('-') == *k) {
            keys.push(format!("{}{k}", if rng.below(2) == 0 { "-" } else { "" }));
        }
    }
    let mut query = parts.join("&");
    if !keys.is_empty() {
        query = format!("_sort={}&{query}", keys.join(","));
    }
    (ty, query)
}

/// `:text` on a token searches CodeableConcept.text and each Coding.display, a match
/// starting either (R4 search: the text associated with the code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_text_searches_the_concept_text_and_the_coding_display() {
    let s = common::start().await;
    let obs = |id: &str, display: Option<&str>, text: Option<&str>| {
        let mut coding = json!({"system": "http://loinc.org", "code": "2339-0"});
        if let Some(d) = display {
            coding["display"] = json!(d);
        }
        let mut code = json!({"coding": [coding]});
        if let Some(t) = text {
            code["text"] = json!(t);
        }
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": code})
    };
    for (id, display, text) in [
        ("both", Some("Glucose [Mass/volume] in Blood"), Some("血糖値")),
        ("same", Some("Glucose"), Some("glucose")),
        ("display", Some("Glucose in Serum"), None),
        ("text", None, Some("随時血糖")),
    ] {
        let r = s.put_json(&format!("Observation/{id}"), &obs(id, display, text)).await;
        assert_eq!(r.status(), 201, "{id}");
    }
    assert_eq!(ids(&s, "Observation?code:text=glucose").await, ["both", "display", "same"]);
    assert_eq!(ids(&s, "Observation?code:text=ＧＬＵＣＯＳＥ%20in").await, ["display"]);
    assert_eq!(ids(&s, "Observation?code:text=血糖").await, ["both"]);
    assert_eq!(ids(&s, "Observation?code:text=随時").await, ["text"]);
    // Each text from its start: not from a word inside it, nor across the two.
    assert!(ids(&s, "Observation?code:text=blood").await.is_empty());
    assert!(ids(&s, "Observation?code:text=値glucose").await.is_empty());
}

/// A concept with no code (free text, as 傷病名 often are) is found by `:text` by its text
/// and its codings' displays, and the repeats of one parameter by each of their texts;
/// it is still missing for `:missing` and absent from a sort by the parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_text_finds_concepts_without_a_code() {
    let s = common::start().await;
    let condition = |id: &str, code: Value, categories: Value| {
        let mut c = json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"}, "code": code});
        if categories != json!([]) {
            c["category"] = categories;
        }
        c
    };
    let coded = json!({"coding": [{"system": "http://example.org/icd", "code": "E11"}], "text": "２型糖尿病"});
    for (id, code, categories) in [
        ("free", json!({"text": "右膝関節症の疑い"}), json!([{"text": "外来"}, {"text": "主病名"}])),
        ("display-only", json!({"coding": [{"display": "Knee pain"}]}), json!([])),
        ("coded", coded, json!([{"coding": [{"code": "problem-list-item"}], "text": "問題リスト"}])),
        // Two concepts with one code: the index keeps one row for the code, with both texts.
        (
            "same-code",
            json!({"coding": [{"system": "urn:z", "code": "F00"}]}),
            json!([{"coding": [{"code": "c"}], "text": "左側"}, {"coding": [{"code": "c"}], "text": "右側"}]),
        ),
    ] {
        let r = s.put_json(&format!("Condition/{id}"), &condition(id, code, categories)).await;
        assert_eq!(r.status(), 201, "{id}");
    }
    assert_eq!(ids(&s, "Condition?code:text=右膝").await, ["free"]);
    assert_eq!(ids(&s, "Condition?code:text=knee").await, ["display-only"]);
    assert_eq!(ids(&s, "Condition?code:text=２型").await, ["coded"]);
    assert_eq!(ids(&s, "Condition?category:text=外来").await, ["free"]);
    assert_eq!(ids(&s, "Condition?category:text=主病名").await, ["free"], "the second repeat too");
    assert_eq!(ids(&s, "Condition?category:text=問題").await, ["coded"]);
    assert_eq!(ids(&s, "Condition?category:text=左側").await, ["same-code"]);
    assert_eq!(ids(&s, "Condition?category:text=右側").await, ["same-code"], "the second concept's text too");
    assert_eq!(ids(&s, "Condition?category=c").await, ["same-code"]);
    assert_eq!(ids(&s, "Condition?code:text=右膝,knee").await, ["display-only", "free"]);
    assert!(ids(&s, "Condition?code:text=関節").await.is_empty(), "from the start of a text only");
    // No code: missing as before, and no sort value.
    assert_eq!(ids(&s, "Condition?code:missing=true").await, ["display-only", "free"]);
    let page = common::json(s.get("Condition?_sort=code").await).await;
    assert_eq!(page["entry"][0]["resource"]["id"], "coded", "a value sorts before none");
}

/// `_type` limits a search over several types (system level, `$everything`) for every
/// caller, not only those whose scopes made it a condition; a name that is no type is a
/// 400 whatever the handling, as ignoring it would widen the search to every type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_limits_searches_over_several_types() {
    let s = common::start().await;
    let patient = json!({"resourceType": "Patient", "id": "p", "name": [{"family": "型"}]});
    assert_eq!(s.put_json("Patient/p", &patient).await.status(), 201);
    for (ty, id) in [("Observation", "o"), ("Condition", "c")] {
        let mut r = json!({"resourceType": ty, "id": id, "subject": {"reference": "Patient/p"}, "code": {"text": "x"}});
        if ty == "Observation" {
            r["status"] = json!("final");
        }
        assert_eq!(s.put_json(&format!("{ty}/{id}"), &r).await.status(), 201);
    }
    let types = |q: &'static str| {
        let s = &s;
        async move {
            let page = json(s.get(q).await).await;
            let mut t: Vec<String> = page["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] != "outcome")
                .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string())
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(types("?_type=Condition").await, ["Condition"]);
    assert_eq!(types("?_type=Condition,%20Patient").await, ["Condition", "Patient"]);
    assert_eq!(types("Patient/$everything?_type=Observation").await, ["Observation"]);
    assert_eq!(types("Patient/p/$everything?_type=Observation").await, ["Observation"]);
    assert_eq!(types("Patient/p/$everything?_type=Patient,Condition").await, ["Condition", "Patient"]);
    assert_eq!(types("Patient/p/$everything").await, ["Condition", "Observation", "Patient"]);
    for q in ["?_type=Nope", "?_type=Condition,Nope", "Patient/$everything?_type=Nope"] {
        let r = s.get(q).await;
        assert_eq!(r.status(), 400, "{q}");
        common::assert_outcome(&json(r).await);
    }
}

/// `$everything`'s `_since`: only what was updated at or after it, the patient too (it
/// was ignored, with a warning, though the operation declares it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_since_keeps_what_changed_since() {
    let s = common::start().await;
    let obs = |id: &str| json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/ps"}});
    assert_eq!(s.put_json("Patient/ps", &json!({"resourceType": "Patient", "id": "ps"})).await.status(), 201);
    assert_eq!(s.put_json("Observation/os1", &obs("os1")).await.status(), 201);
    let later = json(s.put_json("Observation/os2", &obs("os2")).await).await;
    let since = later["meta"]["lastUpdated"].as_str().unwrap().to_string();
    let year = &since[..4];
    assert_eq!(ids(&s, &format!("Patient/ps/$everything?_since={since}")).await, ["os2"]);
    assert_eq!(ids(&s, &format!("Patient/$everything?_since={since}")).await, ["os2"]);
    assert_eq!(ids(&s, &format!("Patient/ps/$everything?_since={year}")).await, ["os1", "os2", "ps"]);
    assert_eq!(s.get("Patient/ps/$everything?_since=yesterday").await.status(), 400);
    assert_eq!(
        s.put_json("Patient/ps", &json!({"resourceType": "Patient", "id": "ps", "gender": "other"})).await.status(),
        200
    );
    assert_eq!(ids(&s, &format!("Patient/ps/$everything?_since={since}")).await, ["os2", "ps"]);
}

/// `$everything`'s `start`/`end`: care dates, read as `clinical-date` (`date` of the
/// types it is defined on): kept when the date overlaps the period, left out without
/// one; types without a care date are not narrowed, and the outcome says so. They were
/// ignored, with a warning, though the operation declares them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_start_and_end_keep_care_in_the_period() {
    let s = common::start().await;
    let put = |r: Value| {
        let s = &s;
        async move {
            let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
            assert_eq!(s.put_json(&path, &r).await.status(), 201, "{path}");
        }
    };
    let obs = |id: &str, patient: &str| json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}});
    for p in ["pd", "px"] {
        put(json!({"resourceType": "Patient", "id": p})).await;
    }
    let mut o = obs("od2019", "pd");
    o["effectiveDateTime"] = json!("2019-05-01");
    put(o).await;
    // A period from before 2021 into it: care in 2021 too.
    let mut o = obs("od2020", "pd");
    o["effectivePeriod"] = json!({"start": "2020-12-15", "end": "2021-02-01"});
    put(o).await;
    put(obs("odnone", "pd")).await;
    let mut o = obs("ox", "px");
    o["effectiveDateTime"] = json!("2020-03-01");
    put(o).await;
    put(json!({"resourceType": "Encounter", "id": "ed", "status": "finished", "class": {"code": "AMB"},
        "subject": {"reference": "Patient/pd"}, "period": {"start": "2021-06-01", "end": "2021-06-02"}}))
    .await;
    put(json!({"resourceType": "Condition", "id": "cd", "subject": {"reference": "Patient/pd"}, "onsetDateTime": "2010"}))
        .await;
    let every = |q: &str| format!("Patient/pd/$everything?{q}");
    assert_eq!(ids(&s, &every("start=2021")).await, ["cd", "ed", "od2020", "pd"]);
    assert_eq!(ids(&s, &every("end=2020")).await, ["cd", "od2019", "od2020", "pd"]);
    assert_eq!(ids(&s, &every("start=2020-01&end=2020-12")).await, ["cd", "od2020", "pd"]);
    assert_eq!(ids(&s, &every("start=2022")).await, ["cd", "pd"]);
    assert_eq!(ids(&s, &every("")).await, ["cd", "ed", "od2019", "od2020", "odnone", "pd"]);
    assert_eq!(ids(&s, "Patient/$everything?start=2020&end=2020-06").await, ["cd", "ox", "pd", "px"]);
    // Paged: the next link keeps the period.
    let page = json(s.get(&every("start=2021&_count=1")).await).await;
    let next =
        page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").unwrap()["url"].as_str().unwrap();
    assert!(next.contains("start=2021"), "{next}");
    let outcome = page["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome").unwrap();
    let text = outcome["resource"]["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(text.contains("clinical-date") && text.contains("Observation") && !text.contains("Ignored"), "{text}");
    for bad in ["start=soon", "end=2020-13", "start=2020&start=2021"] {
        let r = s.get(&every(bad)).await;
        assert_eq!(r.status(), 400, "{bad}");
        common::assert_outcome(&json(r).await);
    }
}

/// `max_memory_bytes` bounds what all requests hold together: a page reads no more than the
/// room left (its outcome then names the budget, and the next link goes on), and a body
/// whose estimate is above the whole budget still runs, alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stop_at_the_room_left_in_max_memory_bytes() {
    // Idle, the budget leaves room for 24 MiB / 8 = 3 MiB of stored resources a page.
    let s = common::start_with(|c| c.limits.max_memory_bytes = 24 << 20).await;
    let photo = "QUFB".repeat(300_000);
    for i in 0..5 {
        let p = json!({"resourceType": "Patient", "id": format!("m{i}"), "photo": [{"data": photo}]});
        assert!(s.put_json(&format!("Patient/m{i}"), &p).await.status().is_success());
    }
    let (mut url, mut seen, mut pages) = (s.url("Patient?_count=10"), Vec::new(), 0);
    loop {
        let b = json(s.client.get(&url).send().await.unwrap()).await;
        pages += 1;
        let entries = b["entry"].as_array().cloned().unwrap_or_default();
        let page: Vec<String> = entries
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect();
        assert!(!page.is_empty() && page.len() <= 2, "{page:?}");
        seen.extend(page);
        let links = b["link"].as_array().unwrap();
        match links.iter().find(|l| l["relation"] == "next") {
            Some(n) => {
                let outcome = entries.iter().find(|e| e["search"]["mode"] == "outcome").expect("an outcome entry");
                assert!(outcome.to_string().contains("max_memory_bytes"), "{outcome}");
                url = n["url"].as_str().unwrap().to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(pages >= 3, "{pages} pages");

    // A budget smaller than one body's estimate: the body runs when it is alone.
    let s = common::start_with(|c| c.limits.max_memory_bytes = 100_000).await;
    let names: Vec<String> = (0..5_000).map(|i| format!("n{i}")).collect();
    let p = json!({"resourceType": "Patient", "name": [{"given": names}]});
    let r = s.post_json("Patient", &p).await;
    assert_eq!(r.status(), 201);
}

/// `max_page_bytes`: pages of search (in write order and sorted), history and `_include`,
/// and a batch's read entries together, stop at the bound instead of reading every body
/// into memory; following the links reaches every resource once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stop_at_max_page_bytes() {
    // Each patient carries a 100 KB photo: two fit the bound, three do not.
    let s = common::start_with(|c| c.limits.max_page_bytes = 250_000).await;
    let photo = "QUFB".repeat(25_000);
    for i in 0..5 {
        let p = json!({"resourceType": "Patient", "id": format!("p{i}"), "photo": [{"data": photo}]});
        assert!(s.put_json(&format!("Patient/p{i}"), &p).await.status().is_success());
        let o = json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/p{i}")}});
        assert!(s.put_json(&format!("Observation/o{i}"), &o).await.status().is_success());
    }
    let matches = |b: &Value| -> Vec<String> {
        let entries = b["entry"].as_array().into_iter().flatten();
        entries
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["resource"]["id"].as_str().unwrap().into())
            .collect()
    };
    let next = |b: &Value| -> Option<String> {
        let links = b["link"].as_array().unwrap();
        links.iter().find(|l| l["relation"] == "next").map(|l| l["url"].as_str().unwrap().to_string())
    };
    let names_limit = |b: &Value| {
        let entries = b["entry"].as_array().into_iter().flatten();
        entries.filter(|e| e["search"]["mode"] == "outcome").any(|e| e.to_string().contains("max_page_bytes"))
    };
    // In write order, and sorted: two a page, with an outcome naming the limit.
    for (first, order) in [
        ("Patient?_count=10", ["p0", "p1", "p2", "p3", "p4"]),
        ("Patient?_count=10&_sort=-_id", ["p4", "p3", "p2", "p1", "p0"]),
    ] {
        let (mut url, mut seen) = (s.url(first), Vec::new());
        loop {
            let b = json(s.client.get(&url).send().await.unwrap()).await;
            let page = matches(&b);
            assert!(!page.is_empty() && page.len() <= 2, "{url}: {page:?}");
            seen.extend(page);
            match next(&b) {
                Some(n) => {
                    assert!(names_limit(&b), "{b}");
                    url = n;
                }
                None => break,
            }
        }
        assert_eq!(seen, order, "{first}");
    }
    // Included resources past the bound are left out, and said so.
    let b = json(s.get("Observation?_include=Observation:subject&_count=10").await).await;
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(matches(&b).len(), 5);
    let included = entries.iter().filter(|e| e["search"]["mode"] == "include").count();
    assert!(included < 5, "{included} included");
    assert!(entries.iter().any(|e| e["search"]["mode"] == "outcome" && e.to_string().contains("incomplete")));
    // History: cut, with a next link that goes on from its last version.
    let (mut url, mut seen) = (s.url("Patient/_history?_count=10"), 0);
    while let Some(b) = Some(json(s.client.get(&url).send().await.unwrap()).await) {
        let n = b["entry"].as_array().map_or(0, Vec::len);
        assert!(n <= 2, "{n} versions on one page");
        seen += n;
        match next(&b) {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(seen, 5);
    // Instance $everything counts its Patient: with two large resources in its compartment
    // the first page holds the Patient and one of them.
    for k in 0..2 {
        let o = json!({"resourceType": "Observation", "id": format!("big{k}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p0"}, "valueString": "v".repeat(100_000)});
        assert!(s.put_json(&format!("Observation/big{k}"), &o).await.status().is_success());
    }
    let b = json(s.get("Patient/p0/$everything?_count=50").await).await;
    let bigs = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["id"].as_str().unwrap_or("").starts_with("big"))
        .count();
    assert!(bigs <= 1 && next(&b).is_some(), "{bigs} large resources beside the Patient");
    let (mut url, mut seen) = (s.url("Patient/p0/$everything?_count=50"), Vec::new());
    loop {
        let b = json(s.client.get(&url).send().await.unwrap()).await;
        seen.extend(
            b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(String::from))
                .filter(|i| !i.is_empty()),
        );
        match next(&b) {
            Some(n) => url = n,
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["big0", "big1", "o0", "p0"], "each once across the pages");
    // Contained resources: pages of containers stop at the bound too.
    for k in 0..4 {
        let c = json!({"resourceType": "Observation", "id": format!("c{k}"), "status": "final", "code": {"text": "x"},
            "contained": [{"resourceType": "Patient", "id": "in", "photo": [{"data": photo}]}],
            "subject": {"reference": "#in"}});
        assert!(s.put_json(&format!("Observation/c{k}"), &c).await.status().is_success());
    }
    let (mut url, mut containers) = (s.url("Patient?_contained=true&_count=10"), 0);
    loop {
        let b = json(s.client.get(&url).send().await.unwrap()).await;
        let page = matches(&b).len();
        assert!(page <= 2, "{page} contained resources on one page");
        containers += page;
        match next(&b) {
            Some(n) => {
                assert!(page == 0 || names_limit(&b) || page == 2, "{b}");
                url = n;
            }
            None => break,
        }
    }
    assert_eq!(containers, 4);
    // Both the patients and the contained ones: every one once, no page empty or over.
    let (mut url, mut both) = (s.url("Patient?_contained=both&_count=10"), Vec::new());
    loop {
        let b = json(s.client.get(&url).send().await.unwrap()).await;
        let page: Vec<String> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["fullUrl"].as_str().unwrap().to_string())
            .collect();
        assert!(!page.is_empty() && page.len() <= 2, "{page:?}");
        both.extend(page);
        match next(&b) {
            Some(n) => url = n,
            None => break,
        }
    }
    let unique: std::collections::HashSet<&String> = both.iter().collect();
    assert_eq!((both.len(), unique.len()), (9, 9), "{both:?}");
    // A batch's reads share the bound: the third large read fails naming it, and so does
    // every read after it, whatever its size.
    let get = |url: &str| json!({"request": {"method": "GET", "url": url}});
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        get("Patient/p0"), get("Patient/p1"), get("Patient/p2"), get("Patient?_id=p3"), get("Observation/o1")]});
    let r = s.post_json("", &batch).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    let statuses: Vec<&str> =
        b["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses[..2], ["200 OK", "200 OK"]);
    for (i, e) in b["entry"].as_array().unwrap().iter().enumerate().skip(2) {
        assert!(statuses[i].starts_with("422"), "{e}");
        assert!(e["response"]["outcome"].to_string().contains("max_page_bytes"), "{e}");
    }
    // Answers that are not stored resources count too: a CapabilityStatement (hundreds of
    // kilobytes) and an operation's answer. A batch of them stops at the bound.
    let batch = json!({"resourceType": "Bundle", "type": "batch",
        "entry": (0..20).map(|_| get("metadata")).collect::<Vec<_>>()});
    let b = json(s.post_json("", &batch).await).await;
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    let answered = entries.iter().filter(|e| e["response"]["status"] == "200 OK").count();
    assert!(answered < 3, "{answered} CapabilityStatements past a 250 kB bound");
    assert!(entries.last().unwrap()["response"]["status"].as_str().unwrap().starts_with("422"));
}

/// Percent-encoded bytes that are not UTF-8 are a 400, not a search for U+FFFD: in the
/// query, the path, a search form and a Bundle entry's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_are_not_utf8_are_refused() {
    let s = common::start().await;
    let p = json!({"resourceType": "Patient", "id": "y", "name": [{"family": "山田"}]});
    assert!(s.put_json("Patient/y", &p).await.status().is_success());
    assert_eq!(ids(&s, "Patient?family=%E5%B1%B1").await, ["y"]);
    for path in ["Patient?family=%FF", "Patient?family=%E5%B1", "Patient/%C3", "Patient?%FF=x"] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        let b = json(r).await;
        common::assert_outcome(&b);
        assert!(b.to_string().contains("UTF-8"), "{b}");
    }
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = s.send(reqwest::Method::POST, "Patient/_search", &form, "family=%FF").await;
    assert_eq!(r.status(), 400);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?family=%FF"}},
        {"request": {"method": "GET", "url": "Patient?family=%E5%B1%B1"}}]});
    let b = json(s.post_json("", &batch).await).await;
    assert!(b["entry"][0]["response"]["status"].as_str().unwrap().starts_with("400"), "{b}");
    assert!(b["entry"][1]["response"]["status"].as_str().unwrap().starts_with("200"), "{b}");
}

/// A sorted search whose next page would pass `max_search_offset` has no next link, and
/// says why in an outcome entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_pages_past_max_search_offset_say_so() {
    let s = common::start_with(|c| c.limits.max_search_offset = 3).await;
    for i in 0..6 {
        let p = json!({"resourceType": "Patient", "id": format!("s{i}")});
        assert!(s.put_json(&format!("Patient/s{i}"), &p).await.status().is_success());
    }
    let b = json(s.get("Patient?_sort=_id&_count=2&_offset=2").await).await;
    let links = b["link"].as_array().unwrap();
    assert!(links.iter().all(|l| l["relation"] != "next"), "{b}");
    let warned = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["search"]["mode"] == "outcome" && e.to_string().contains("max_search_offset"));
    assert!(warned, "{b}");
}

/// Batch and transaction entries read at system level too: `_history`, a search across
/// types (`?_type=`) and `metadata`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_level_reads_in_bundles() {
    let s = common::start().await;
    for i in 0..3 {
        let p = json!({"resourceType": "Patient", "id": format!("h{i}")});
        assert!(s.put_json(&format!("Patient/h{i}"), &p).await.status().is_success());
    }
    for kind in ["batch", "transaction"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"request": {"method": "GET", "url": "_history?_count=2"}},
            {"request": {"method": "GET", "url": "?_type=Patient&_count=10"}},
            {"request": {"method": "GET", "url": "metadata"}},
            {"request": {"method": "GET", "url": "metadata?mode=terminology"}}]});
        let r = s.post_json("", &bundle).await;
        assert_eq!(r.status(), 200, "{kind}");
        let b = json(r).await;
        let history = &b["entry"][0];
        assert_eq!(history["response"]["status"], "200 OK", "{b}");
        assert_eq!(history["resource"]["type"], "history");
        assert_eq!(history["resource"]["entry"].as_array().unwrap().len(), 2);
        let search = &b["entry"][1]["resource"];
        assert_eq!(search["type"], "searchset", "{b}");
        assert_eq!(search["entry"].as_array().unwrap().len(), 3);
        // An absolute URL elsewhere names nothing here.
        let elsewhere = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"request": {"method": "GET", "url": "http://elsewhere.example/Patient/h0"}}]});
        let r = s.post_json("", &elsewhere).await;
        let status = r.status();
        let body = json(r).await;
        let entry_status = body["entry"][0]["response"]["status"].as_str().map(str::to_string);
        assert!(status == 400 || entry_status.as_deref() == Some("400 Bad Request"), "{kind}: {status} {body}");
        // The same CapabilityStatement as GET /metadata.
        let metadata = json(s.get("metadata").await).await;
        assert_eq!(b["entry"][2]["response"]["status"], "200 OK", "{b}");
        assert_eq!(b["entry"][2]["resource"], metadata);
        // A mode is answered as GET /metadata answers it.
        assert_eq!(b["entry"][3]["resource"], json(s.get("metadata?mode=terminology").await).await);
        assert_eq!(b["entry"][3]["resource"]["resourceType"], "TerminologyCapabilities");
    }
}

/// `_cursor` is a position the server wrote into a next link: a negative one is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_cursors_are_refused() {
    let s = common::start().await;
    for path in ["Patient?_cursor=-1", "Patient/_history?_cursor=-5", "_history?_cursor=-1", "Patient?_cursor=x"] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        common::assert_outcome(&json(r).await);
    }
    assert_eq!(s.get("Patient?_cursor=0").await.status(), 200);
}
