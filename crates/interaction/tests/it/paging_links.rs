//! A search Bundle never offers a `next` link that the server would refuse to follow.

use serde_json::json;
use std::sync::Arc;
use tsunagu_interaction::{InteractionConfig, Interactions, Limits, NoCheck, RequestContext, SearchParams};

#[test]
fn no_next_link_past_max_search_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let config =
        InteractionConfig { limits: Limits { max_search_offset: 4, ..Limits::default() }, ..Default::default() };
    let fhir = Interactions::new(store, Arc::new(NoCheck), config);
    for i in 0..10 {
        fhir.create(
            "Patient",
            json!({"resourceType": "Patient", "id": format!("p{i}")}),
            None,
            &tsunagu_interaction::RequestContext::new(""),
        )
        .unwrap();
    }
    let ctx = RequestContext::new("http://x");
    let next = |q: &str| {
        let b = fhir.search(Some("Patient"), &SearchParams::parse(q), &ctx).unwrap();
        let link = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").cloned();
        link.map(|l| l["url"].as_str().unwrap().to_string())
    };
    let first = next("_sort=_id&_count=2").expect("a next link within the limit");
    assert!(first.ends_with("_offset=2"), "{first}");
    assert!(next("_sort=_id&_count=2&_offset=2").unwrap().ends_with("_offset=4"));
    // The page after _offset=4 would start at 6, past max_search_offset = 4.
    assert_eq!(next("_sort=_id&_count=2&_offset=4"), None);
    // Following every link offered never meets the limit.
    let mut q = "_sort=_id&_count=2".to_string();
    while let Some(url) = next(&q) {
        q = url.split_once('?').unwrap().1.to_string();
        fhir.search(Some("Patient"), &SearchParams::parse(&q), &ctx).unwrap();
    }
}
