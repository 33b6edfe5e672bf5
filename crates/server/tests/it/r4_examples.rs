//! Conformance: every R4 example instance round-trips through update-as-create (PUT with
//! its own id) and read over HTTP, unchanged apart from meta.versionId/lastUpdated.
//! Examples that break the base specification are rejected with 400; they must be exactly
//! the ones the format crate's conformance test lists as genuinely invalid.

use crate::common;
#[path = "../../../format/tests/it/lists/known_invalid.rs"]
mod known_invalid;
use common::json;
use serde_json::Value;
use std::io::Read;

fn strip_server_meta(v: &mut Value) {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            v.as_object_mut().unwrap().remove("meta");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_examples_round_trip_through_the_server() {
    let Some(path) = tsunagu_reference::find("fhir/hl7.fhir.r4.examples-4.0.1.tgz") else { return };
    let file = std::fs::File::open(&path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut examples = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with("package.json") || name.contains(".index") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if v.get("resourceType").is_some() {
                examples.push((name, v));
            }
        }
    }
    assert_eq!(examples.len(), 5306, "the examples package should hold 5,306 instances");
    let s = common::start().await;
    let (mut same, mut rejected, mut failures) = (0, Vec::new(), Vec::new());
    let mut audit_refused = 0;
    for (name, original) in &examples {
        let ty = original["resourceType"].as_str().unwrap();
        let id = original["id"].as_str().unwrap_or("");
        let r = s
            .client
            .put(s.url(&format!("{ty}/{id}")))
            .header("content-type", "application/fhir+json")
            .header("prefer", "return=minimal")
            .body(original.to_string())
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            // AuditEvents are written by the server only (the audit trail's rule).
            405 if ty == "AuditEvent" => {
                audit_refused += 1;
                continue;
            }
            200 | 201 => {}
            400 => {
                rejected.push(name.clone());
                continue;
            }
            other => {
                failures.push(format!("{name}: PUT answered {other}: {}", r.text().await.unwrap()));
                continue;
            }
        }
        let mut back = json(s.get(&format!("{ty}/{id}")).await).await;
        let mut expected = original.clone();
        strip_server_meta(&mut back);
        strip_server_meta(&mut expected);
        if back == expected {
            same += 1;
        } else {
            failures.push(format!("{name}: read differs"));
        }
    }
    println!(
        "R4 examples via HTTP: {same} round-tripped, {} rejected as invalid, {audit_refused} AuditEvents refused (405, server-written only), {} failed",
        rejected.len(),
        failures.len()
    );
    for r in &rejected {
        println!("  rejected {r}");
    }
    for f in failures.iter().take(30) {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty());
    let mut got: Vec<&str> = rejected.iter().map(|r| r.trim_start_matches("package/")).collect();
    let mut want: Vec<&str> = known_invalid::KNOWN_INVALID.iter().map(|(n, _)| *n).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "rejected examples differ from the known-invalid list");
    assert_eq!(audit_refused, 9, "the R4 examples hold 9 AuditEvents");
    assert_eq!(same, 5306 - want.len() - audit_refused);
}
