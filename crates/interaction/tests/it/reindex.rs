//! Reindexing walks every current resource once, in batches, resumably, and leaves search
//! answering as before.

use serde_json::json;
use std::sync::Arc;
use tsunagu_interaction::{Interactions, NoCheck, RequestContext, SearchParams};

#[test]
fn reindex_is_resumable_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    for i in 0..7 {
        let p = json!({"resourceType": "Patient", "gender": if i % 2 == 0 { "male" } else { "female" }});
        fhir.create("Patient", p, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
    }
    let ctx = RequestContext::new("http://x");
    let count = |q: &str| {
        let b = fhir.search(Some("Patient"), &SearchParams::parse(q), &ctx).unwrap();
        b["total"].as_u64().unwrap()
    };
    assert_eq!(count("gender=male&_summary=count"), 4);
    // Three resources, then "stop", then resume: 7 in all, none twice.
    let first = fhir.reindex_step(3).unwrap();
    assert_eq!((first.done, first.remaining), (3, 4));
    let second = fhir.reindex_step(3).unwrap();
    assert_eq!((second.done, second.remaining), (3, 1));
    let third = fhir.reindex_step(3).unwrap();
    assert_eq!((third.done, third.remaining), (1, 0));
    assert_eq!(count("gender=male&_summary=count"), 4);
    assert_eq!(count("gender=female&_summary=count"), 3);
    // Finished: the next run starts over.
    assert_eq!(fhir.reindex_step(100).unwrap().done, 7);
}
