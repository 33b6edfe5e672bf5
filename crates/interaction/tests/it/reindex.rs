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

/// A reindex whose last resources were deleted between two steps finishes on the empty
/// step: the position is cleared and the next run starts from the first resource.
#[test]
fn reindex_finishes_when_what_was_left_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    let ctx = RequestContext::new("http://x");
    let empty = fhir.reindex_step(10).unwrap();
    assert_eq!((empty.done, empty.remaining), (0, 0));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let w = fhir.create("Patient", json!({"resourceType": "Patient"}), None, &ctx).unwrap();
        ids.push(w.version.id.clone());
    }
    let first = fhir.reindex_step(3).unwrap();
    assert_eq!((first.done, first.remaining), (3, 2));
    for id in &ids[3..] {
        fhir.delete("Patient", id, None, &ctx).unwrap();
    }
    let last = fhir.reindex_step(3).unwrap();
    assert_eq!((last.done, last.remaining), (0, 0));
    let again = fhir.reindex_step(10).unwrap();
    assert_eq!((again.done, again.remaining), (3, 0), "the next run starts over");
}
