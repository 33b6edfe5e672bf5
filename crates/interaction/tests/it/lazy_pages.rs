//! Type-level history and type-level `Patient/$everything` are paged from their own order
//! without reading everything first (history: one walk of `resource_live` per
//! (current, deleted) pair, merged; `$everything`: compartment membership tested on each
//! resource's index record, or on PostgreSQL on each batch of resources walked from the
//! cursor). On the backend `TSUNAGU_TEST_BACKEND` names. Their pages must be what the plain definitions give: every
//! version of the type newest first (system history filtered by type, which takes neither
//! plan), and every live Patient or resource referring to a Patient through a Patient
//! compartment parameter, in write order (worked out here from how the data was written).

use serde_json::{json, Value};
use std::sync::Arc;
use tsunagu_interaction::{Interactions, NoCheck, RequestContext, SearchParams};
use tsunagu_store::HistoryScope;

fn fhir() -> (tempfile::TempDir, Interactions) {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    (dir, Interactions::new(store, Arc::new(NoCheck), Default::default()))
}

fn put(fhir: &Interactions, r: Value) {
    let ctx = RequestContext::new("http://x");
    let (ty, id) = (r["resourceType"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string());
    fhir.update(&ty, &id, r, None, &ctx).unwrap();
}

/// Follows `next` links from `first` (a function of the query string), collecting
/// `key(entry)` of every entry but outcomes.
fn pages(first: &str, mut get: impl FnMut(&SearchParams) -> Value, key: impl Fn(&Value) -> String) -> Vec<String> {
    let mut params = SearchParams::parse(first);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let b = get(&params);
        for e in b["entry"].as_array().into_iter().flatten().filter(|e| e["search"]["mode"] != "outcome") {
            out.push(key(e));
        }
        match b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(l) => params = SearchParams::parse(l["url"].as_str().unwrap().split_once('?').unwrap().1),
            None => return out,
        }
    }
    panic!("pages never end");
}

fn version_key(e: &Value) -> String {
    let url = e["fullUrl"].as_str().unwrap().trim_start_matches("http://x/");
    format!("{url}@{}", e["response"]["etag"].as_str().unwrap())
}

#[test]
fn type_history_pages_are_every_version_of_the_type_newest_first() {
    let (_d, fhir) = fhir();
    let ctx = RequestContext::new("http://x");
    // Creates, updates, deletes and re-creates of two types, interleaved.
    for i in 0..30 {
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final", "code": {"text": "a"}}),
        );
        put(&fhir, json!({"resourceType": "Patient", "id": format!("p{i}")}));
        if i % 3 == 0 {
            put(
                &fhir,
                json!({"resourceType": "Observation", "id": format!("o{}", i / 2), "status": "amended", "code": {"text": "b"}}),
            );
        }
        if i % 4 == 1 {
            fhir.delete("Observation", &format!("o{}", i / 3), None, &ctx).unwrap();
        }
        if i % 7 == 6 {
            put(
                &fhir,
                json!({"resourceType": "Observation", "id": format!("o{}", i / 3), "status": "final", "code": {"text": "c"}}),
            );
        }
    }
    let system = pages("_count=1000", |p| fhir.history(HistoryScope::System, p, &ctx).unwrap(), version_key);
    let want: Vec<String> = system.into_iter().filter(|k| k.starts_with("Observation/")).collect();
    assert!(want.len() > 40, "{}", want.len());
    for count in [1, 4, 7, 50] {
        let got = pages(
            &format!("_count={count}"),
            |p| fhir.history(HistoryScope::Type("Observation".into()), p, &ctx).unwrap(),
            version_key,
        );
        assert_eq!(got, want, "_count={count}");
    }
    let b = fhir
        .history(HistoryScope::Type("Observation".into()), &SearchParams::parse("_count=2&_total=accurate"), &ctx)
        .unwrap();
    assert_eq!(b["total"], want.len());
    let b = fhir.history(HistoryScope::Type("Observation".into()), &SearchParams::parse("_count=2"), &ctx).unwrap();
    assert!(b.get("total").is_none());
}

#[test]
fn type_level_everything_pages_are_the_patients_and_what_refers_to_them() {
    let (_d, fhir) = fhir();
    let ctx = RequestContext::new("http://x");
    let mut want = Vec::new();
    for i in 0..12 {
        let p = format!("p{i}");
        put(&fhir, json!({"resourceType": "Patient", "id": p}));
        want.push(format!("Patient/{p}"));
        // Not in any patient's compartment: a practitioner, a group, what refers to them.
        put(&fhir, json!({"resourceType": "Practitioner", "id": format!("pr{i}")}));
        put(&fhir, json!({"resourceType": "Group", "id": format!("g{i}"), "type": "person", "actual": true}));
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("og{i}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Group/g{i}")},
            "performer": [{"reference": format!("Practitioner/pr{i}")}]}),
        );
        // In one: by subject, by performer, an encounter, and one deleted afterwards.
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("os{i}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}}),
        );
        want.push(format!("Observation/os{i}"));
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("op{i}"), "status": "final",
            "code": {"text": "x"}, "performer": [{"reference": format!("Patient/{p}")}]}),
        );
        want.push(format!("Observation/op{i}"));
        put(
            &fhir,
            json!({"resourceType": "Encounter", "id": format!("e{i}"), "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": format!("Patient/{p}")}}),
        );
        want.push(format!("Encounter/e{i}"));
        put(
            &fhir,
            json!({"resourceType": "Observation", "id": format!("od{i}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}}),
        );
        fhir.delete("Observation", &format!("od{i}"), None, &ctx).unwrap();
    }
    // An update moves a resource to the end of the write order.
    put(
        &fhir,
        json!({"resourceType": "Encounter", "id": "e3", "status": "cancelled",
        "class": {"code": "AMB"}, "subject": {"reference": "Patient/p3"}}),
    );
    want.retain(|k| k != "Encounter/e3");
    want.push("Encounter/e3".into());
    let key = |e: &Value| e["fullUrl"].as_str().unwrap().trim_start_matches("http://x/").to_string();
    for count in [1, 5, 13, 100] {
        let got = pages(&format!("_count={count}"), |p| fhir.everything_all(p, &ctx).unwrap(), key);
        assert_eq!(got, want, "_count={count}");
    }
}
