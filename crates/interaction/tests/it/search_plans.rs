//! The store picks between plans by how many resources a condition matches (sort-driven
//! pages from 2,000 matches, correlated `_has` from 3,000). Both sides of each threshold
//! must give the same answers; the data is big enough to cross them and the expected
//! answers are computed here from the data as written.

use serde_json::{json, Value};
use std::sync::Arc;
use tsunagu_interaction::{Interactions, NoCheck, RequestContext, SearchParams};

const LOINC: &str = "http://loinc.org";

/// 40 patients; patient `i` has 100 Observations of code `common` dated by its index, and
/// patients 0, 7 and 21 one Observation of code `rare`.
fn loaded() -> (tempfile::TempDir, Interactions) {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    let mut staged = Vec::new();
    for p in 0..40 {
        staged.extend(fhir.stage(json!({"resourceType": "Patient", "id": format!("p{p}")})).unwrap());
        for k in 0..100 {
            let day = 1 + (p * 100 + k) % 28;
            let month = 1 + (p * 100 + k) / 28 % 12;
            staged.extend(fhir.stage(observation(&format!("o{p}-{k}"), p, "common", month, day)).unwrap());
        }
    }
    for p in [0, 7, 21] {
        staged.extend(fhir.stage(observation(&format!("rare{p}"), p, "rare", 6, 15)).unwrap());
    }
    fhir.load(staged).unwrap();
    (dir, fhir)
}

fn observation(id: &str, patient: usize, code: &str, month: usize, day: usize) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": LOINC, "code": code}]},
           "subject": {"reference": format!("Patient/p{patient}")},
           "effectiveDateTime": format!("2024-{month:02}-{day:02}")})
}

/// Every match of a query, following `next` links (ids in page order).
fn all_pages(fhir: &Interactions, ty: &str, query: &str) -> Vec<String> {
    let ctx = RequestContext::new("http://x");
    let mut out = Vec::new();
    let mut params = SearchParams::parse(query);
    loop {
        let b = fhir.search(Some(ty), &params, &ctx).unwrap();
        for e in b["entry"].as_array().into_iter().flatten().filter(|e| e["search"]["mode"] == "match") {
            out.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        let next = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
        match next {
            Some(l) => params = SearchParams::parse(l["url"].as_str().unwrap().split_once('?').unwrap().1),
            None => return out,
        }
    }
}

#[test]
fn has_gives_the_same_patients_with_either_plan() {
    let (_d, fhir) = loaded();
    // 4,000 common Observations: the correlated plan.
    let mut common = all_pages(&fhir, "Patient", &format!("_has:Observation:patient:code={LOINC}|common&_count=7"));
    common.sort();
    let mut everyone: Vec<String> = (0..40).map(|p| format!("p{p}")).collect();
    everyone.sort();
    assert_eq!(common, everyone);
    // 3 rare ones: the collecting plan.
    let mut rare = all_pages(&fhir, "Patient", &format!("_has:Observation:patient:code={LOINC}|rare"));
    rare.sort();
    assert_eq!(rare, ["p0", "p21", "p7"]);
}

#[test]
fn sorted_pages_agree_with_a_sort_of_everything() {
    let (_d, fhir) = loaded();
    // 4,000 matches: pages come from the walk over the date index.
    let got = all_pages(&fhir, "Observation", &format!("code={LOINC}|common&_sort=-date&_count=500"));
    assert_eq!(got.len(), 4000);
    let date_of = |id: &str| {
        let (p, k) = id[1..].split_once('-').unwrap();
        let n = p.parse::<usize>().unwrap() * 100 + k.parse::<usize>().unwrap();
        (1 + n / 28 % 12, 1 + n % 28)
    };
    // Descending by date; ties in descending write order.
    let order: Vec<(usize, usize)> = got.iter().map(|id| date_of(id)).collect();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "not sorted by date descending");
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4000, "a resource appeared twice across pages");
    // The few rare ones take the general plan and sort the same way.
    let rare = all_pages(&fhir, "Observation", &format!("code={LOINC}|rare&_sort=-date"));
    assert_eq!(rare, ["rare21", "rare7", "rare0"]);
}

/// `code=…&value-quantity=…` also runs as the one `code-value-quantity` test the search
/// adds: it must match exactly what the two conditions do, never a component's code or
/// value, a code in another system, another unit or a value that is not a Quantity.
#[test]
fn a_code_and_its_quantity_match_as_the_two_conditions_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    let ctx = RequestContext::new("http://x");
    let coding = |s: &str, c: &str| json!({"system": s, "code": c});
    let cm = |v: f64| json!({"value": v, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"});
    let observations = [
        ("o1", json!([coding(LOINC, "A")]), Some(cm(200.0)), None),
        ("o2", json!([coding(LOINC, "A")]), Some(cm(150.0)), None),
        ("o3", json!([coding(LOINC, "B"), coding("http://other", "A")]), Some(cm(190.0)), None),
        (
            "o4",
            json!([coding(LOINC, "B")]),
            None,
            Some(json!([{"code": {"coding": [coding(LOINC, "A")]}, "valueQuantity": cm(300.0)}])),
        ),
        (
            "o5",
            json!([coding(LOINC, "A")]),
            None,
            Some(json!([{"code": {"coding": [coding(LOINC, "C")]}, "valueQuantity": cm(500.0)}])),
        ),
        (
            "o6",
            json!([coding(LOINC, "A")]),
            Some(json!({"value": 185, "unit": "in", "system": "http://unitsofmeasure.org", "code": "[in_i]"})),
            None,
        ),
    ];
    for (id, codings, value, components) in observations {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"coding": codings}});
        if let Some(v) = value {
            o["valueQuantity"] = v;
        }
        if let Some(c) = components {
            o["component"] = c;
        }
        fhir.update("Observation", id, o, None, &ctx).unwrap();
    }
    fhir.update(
        "Observation",
        "o7",
        json!({"resourceType": "Observation", "id": "o7", "status": "final",
        "code": {"coding": [coding(LOINC, "A")]},
        "valueSampledData": {"origin": cm(1000.0), "period": 1, "dimensions": 1, "data": "1 2"}}),
        None,
        &ctx,
    )
    .unwrap();
    let ids = |q: &str| {
        let mut got = all_pages(&fhir, "Observation", q);
        got.sort();
        got
    };
    assert_eq!(ids("code=A&value-quantity=gt180"), ["o1", "o3", "o6"]);
    assert_eq!(ids(&format!("code={LOINC}|A&value-quantity=gt180")), ["o1", "o6"]);
    assert_eq!(ids("value-quantity=gt180||cm&code=A"), ["o1", "o3"]);
    assert_eq!(ids("code=B&value-quantity=gt180"), ["o3"]);
    assert_eq!(ids("code=C&value-quantity=gt0"), Vec::<String>::new());
    assert_eq!(ids("code=A&value-quantity=lt160&_count=1"), ["o2"]);
    // Sorted by the quantity: the values first, then the codes without one.
    let sorted = all_pages(&fhir, "Observation", "code=A&_sort=-value-quantity&_count=2");
    assert_eq!(sorted[..4], ["o1", "o3", "o6", "o2"]);
    let mut rest = sorted[4..].to_vec();
    rest.sort();
    assert_eq!(rest, ["o5", "o7"]);
}
