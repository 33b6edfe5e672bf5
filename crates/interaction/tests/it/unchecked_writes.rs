//! Without a content check (`validate = "off"`, `import --no-check`) writes still store
//! only what can be read back in both formats: a resource the FHIR XML writer cannot write
//! (found by the transaction fuzzer: `statsu` for `status`) is refused, in every write path.

use serde_json::json;
use std::sync::Arc;
use tsunagu_interaction::{Interactions, NoCheck, RequestContext, SearchParams};

fn unchecked() -> (tempfile::TempDir, Interactions) {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir = Interactions::new(store, Arc::new(NoCheck), Default::default());
    (dir, fhir)
}

#[test]
fn what_xml_cannot_carry_is_not_stored_even_unchecked() {
    let (_dir, fhir) = unchecked();
    let ctx = RequestContext::new("http://x");
    let bad = json!({"resourceType": "Observation", "statsu": "final", "code": {"text": "x"}});
    let err = fhir.create("Observation", bad.clone(), None, &tsunagu_interaction::RequestContext::new("")).unwrap_err();
    assert_eq!(err.status(), 400);

    let mut put = bad.clone();
    put["id"] = json!("o1");
    assert_eq!(
        fhir.update("Observation", "o1", put, None, &tsunagu_interaction::RequestContext::new(""))
            .unwrap_err()
            .status(),
        400
    );

    for kind in ["transaction", "batch"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}}]});
        match fhir.bundle(bundle, &ctx) {
            Err(e) => assert_eq!(e.status(), 400, "{kind}"),
            // A batch answers per entry.
            Ok(b) => assert!(b["entry"][0]["response"]["status"].as_str().unwrap().starts_with("400"), "{kind}: {b}"),
        }
    }

    // Nothing of it was stored; well-formed resources still are.
    let ok = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    fhir.create("Observation", ok, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
    let all = fhir.search(Some("Observation"), &SearchParams::parse("_summary=count"), &ctx).unwrap();
    assert_eq!(all["total"], 1);
}
