//! `ViewDefinition/$run` over HTTP: rows of the stored resources as JSON, NDJSON, CSV and
//! Parquet; `_limit`, `patient` and inline `resource`s; a broken view refused with 400; the
//! rows formats refused (406) everywhere else; the CapabilityStatement lists the operation.

use crate::common;

use common::{json, start};
use serde_json::{json, Value};

fn view() -> Value {
    json!({"resourceType": "ViewDefinition", "resource": "Observation", "status": "active",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()", "type": "id"},
            {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "string"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}]}]})
}

fn parameters(extra: Vec<Value>) -> Value {
    let mut p = vec![json!({"name": "viewResource", "resource": view()})];
    p.extend(extra);
    json!({"resourceType": "Parameters", "parameter": p})
}

async fn run(s: &common::TestServer, query: &str, body: &Value) -> reqwest::Response {
    s.post_json(&format!("ViewDefinition/$run{query}"), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_run_answers_rows_in_every_format() {
    let s = start().await;
    for (pid, n) in [("a", 3), ("b", 2)] {
        let r = s.put_json(&format!("Patient/{pid}"), &json!({"resourceType": "Patient", "id": pid})).await;
        assert!(r.status().is_success());
        for i in 0..n {
            let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "体重"},
                "subject": {"reference": format!("Patient/{pid}")},
                "valueQuantity": {"value": 60 + i, "unit": "kg"}});
            assert_eq!(s.post_json("Observation", &obs).await.status(), 201);
        }
    }

    let r = run(&s, "", &parameters(vec![])).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let rows = json(r).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().filter(|r| r["patient"] == "a").count(), 3);

    let r = run(&s, "?_format=csv", &parameters(vec![])).await;
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().next(), Some("id,patient,value"));
    assert_eq!(csv.lines().count(), 6);

    let r = run(
        &s,
        "",
        &parameters(vec![
            json!({"name": "_format", "valueCode": "ndjson"}),
            json!({"name": "_limit", "valueInteger": 2}),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().lines().count(), 2);

    let r =
        run(&s, "", &parameters(vec![json!({"name": "patient", "valueReference": {"reference": "Patient/b"}})])).await;
    let rows = json(r).await;
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows.as_array().unwrap().iter().all(|r| r["patient"] == "b"));

    let r = run(&s, "?_format=parquet", &parameters(vec![])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.apache.parquet");
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "a Parquet file");

    // Inline resources instead of the store.
    let inline = json!({"name": "resource", "resource": {"resourceType": "Observation", "id": "x", "status": "final",
        "code": {"text": "t"}, "subject": {"reference": "Patient/z"}}});
    let rows = json(run(&s, "", &parameters(vec![inline])).await).await;
    assert_eq!(rows, json!([{"id": "x", "patient": "z", "value": null}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_views_and_misplaced_formats_are_refused() {
    let s = start().await;
    let mut broken = view();
    broken["select"][0]["column"][0]["path"] = json!("id.where(");
    let r = run(
        &s,
        "",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "viewResource", "resource": broken}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let oo = json(r).await;
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let r = run(
        &s,
        "",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "viewReference",
        "valueReference": {"reference": "ViewDefinition/1"}}]}),
    )
    .await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    let r = run(&s, "?_format=xlsx", &parameters(vec![])).await;
    assert_eq!(r.status(), 406);
    // Resources never come as rows.
    assert_eq!(s.get("Observation?_format=csv").await.status(), 406);
    assert_eq!(s.get("Patient/$everything?_format=csv").await.status(), 406);
    // GET is not how $run is called (it takes a view).
    assert_eq!(s.get("ViewDefinition/$run").await.status(), 405);

    let cs = json(s.get("metadata").await).await;
    let ops = cs["rest"][0]["operation"].as_array().unwrap();
    assert!(ops.iter().any(|o| o["name"] == "run"), "{ops:?}");
}

/// An Observation with `n` components (3 nodes each).
fn wide_observation(id: &str, n: usize) -> Value {
    let components: Vec<Value> = (0..n).map(|k| json!({"code": {"text": format!("c{k}")}})).collect();
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
        "component": components})
}

fn one_column(path: &str, resources: &[Value]) -> Value {
    let view = json!({"resourceType": "ViewDefinition", "resource": "Observation", "status": "active",
        "select": [{"column": [{"name": "n", "path": path, "type": "integer"}]}]});
    let mut p = vec![json!({"name": "viewResource", "resource": view})];
    p.extend(resources.iter().map(|r| json!({"name": "resource", "resource": r})));
    json!({"resourceType": "Parameters", "parameter": p})
}

async fn refused_naming(r: reqwest::Response, limit: &str) {
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains(limit) && text.contains("OperationOutcome"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_views_stop_at_their_limits() {
    let s = start().await;
    let wide = [wide_observation("w1", 2000), wide_observation("w2", 2000), wide_observation("w3", 2000)];
    // Linear columns over the same resources are answered.
    let r = run(&s, "", &one_column("descendants().count()", &wide)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await, json!([{"n": 6004}, {"n": 6004}, {"n": 6004}]));
    // Every node's subtree walked from every node: 36 million items on one resource.
    let r = run(&s, "", &one_column("descendants().select(%resource.descendants()).count()", &wide)).await;
    refused_naming(r, "max_fhirpath_steps").await;

    // Output past max_view_bytes; time past max_view_ms (each resource here compares
    // two million pairs of nodes, far more than a millisecond's work).
    let s = common::start_with(|c| {
        c.limits.max_view_bytes = 100;
        c.limits.max_view_ms = 1;
    })
    .await;
    let many: Vec<Value> = (0..20).map(|k| wide_observation(&format!("o{k}"), 1)).collect();
    let r = run(&s, "", &one_column("component.count()", &many)).await;
    refused_naming(r, "max_view_bytes").await;
    let r = run(&s, "", &one_column("(component.code | code).count()", &wide)).await;
    refused_naming(r, "max_view_ms").await;
}
