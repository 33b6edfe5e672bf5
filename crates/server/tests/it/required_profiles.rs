//! Validate on write with a profile the server requires per resource type: a resource that
//! is valid FHIR but breaks the profile is refused with 422, one that breaks the base rules
//! with 400, each with an OperationOutcome locating the problem.

use crate::common;
use common::{assert_outcome, json, start_checked};
use serde_json::json;
use std::sync::Arc;
use tsunagu_validation::{ConformanceKind, PackageSet, Validator};

const PROFILE: &str = "http://example.jp/StructureDefinition/observation-with-subject";

fn validator() -> Arc<Validator> {
    let mut set = PackageSet::new();
    set.insert(
        ConformanceKind::StructureDefinition,
        json!({
            "resourceType": "StructureDefinition", "url": PROFILE, "name": "ObservationWithSubject",
            "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
            "derivation": "constraint", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
            "snapshot": { "element": [
                { "id": "Observation", "path": "Observation", "min": 0, "max": "*" },
                { "id": "Observation.subject", "path": "Observation.subject", "min": 1, "max": "1",
                  "type": [{ "code": "Reference" }] }
            ]}
        }),
    );
    Arc::new(Validator::new(set))
}

fn observation() -> serde_json::Value {
    json!({ "resourceType": "Observation", "status": "final", "code": { "text": "体温" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_profile_is_enforced_on_write() {
    let required = [("Observation".to_string(), PROFILE.to_string())].into_iter().collect();
    let check = tsunagu_server::ProfileCheck { validator: validator(), required };
    let s = start_checked(|_| {}, Arc::new(check)).await;

    let r = s.post_json("Observation", &observation()).await;
    assert_eq!(r.status(), 422);
    let oo = json(r).await;
    assert_outcome(&oo);
    assert!(oo.to_string().contains("Observation.subject"), "{oo}");

    let mut ok = observation();
    ok["subject"] = json!({ "reference": "Patient/p1" });
    assert_eq!(s.post_json("Observation", &ok).await.status(), 201);

    // Broken base structure: 400, whatever the profile says.
    let mut broken = ok.clone();
    broken["colour"] = json!("red");
    assert_eq!(s.post_json("Observation", &broken).await.status(), 400);

    // Other types are not held to the Observation profile.
    assert_eq!(s.post_json("Patient", &json!({ "resourceType": "Patient" })).await.status(), 201);
}
