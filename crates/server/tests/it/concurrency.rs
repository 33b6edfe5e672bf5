//! Many parallel clients: conditional creates never duplicate, updates never lose a version.

use crate::common;
use common::{json, start, TestServer};
use serde_json::json;

/// Sends `n` requests at once (`i` → method, path, headers, body) and returns the statuses.
async fn race(
    s: &TestServer,
    n: usize,
    make: impl Fn(usize) -> (reqwest::Method, String, Vec<(&'static str, String)>, String),
) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (method, path, headers, body) = make(i);
            let mut req = s.client.request(method, s.url(&path));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            tokio::spawn(async move { req.body(body).send().await.unwrap().status().as_u16() })
        })
        .collect();
    futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}

const FHIR_JSON: (&str, &str) = ("content-type", "application/fhir+json");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_creates_make_one_resource() {
    let s = start().await;
    for round in 0..5 {
        let body =
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": round.to_string()}]});
        let statuses = race(&s, 32, |_| {
            let headers =
                vec![(FHIR_JSON.0, FHIR_JSON.1.to_string()), ("if-none-exist", format!("identifier=urn:race|{round}"))];
            (reqwest::Method::POST, "Patient".into(), headers, body.to_string())
        })
        .await;
        assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 31, "{statuses:?}");
        let b = json(s.get(&format!("Patient?identifier=urn:race|{round}&_total=accurate")).await).await;
        assert_eq!(b["total"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_never_lose_a_version() {
    let s = start().await;
    let p = json!({"resourceType": "Patient", "id": "hot", "gender": "other"});
    assert_eq!(s.put_json("Patient/hot", &p).await.status(), 201);
    let n = 40;
    let statuses = race(&s, n, |i| {
        let body = json!({"resourceType": "Patient", "id": "hot", "name": [{"family": format!("w{i}")}]});
        (reqwest::Method::PUT, "Patient/hot".into(), vec![(FHIR_JSON.0, FHIR_JSON.1.to_string())], body.to_string())
    })
    .await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let h = json(s.get("Patient/hot/_history?_count=1000").await).await;
    assert_eq!(h["total"], n + 1);
    let entries = h["entry"].as_array().unwrap();
    let mut versions: Vec<u64> =
        entries.iter().map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().parse().unwrap()).collect();
    versions.sort();
    assert_eq!(versions, (1..=n as u64 + 1).collect::<Vec<_>>());
    // Every writer's content is in exactly one version.
    let families: std::collections::HashSet<String> =
        entries.iter().filter_map(|e| e["resource"]["name"][0]["family"].as_str().map(String::from)).collect();
    assert_eq!(families.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_if_match_updates_let_exactly_one_win() {
    let s = start().await;
    let p = json!({"resourceType": "Patient", "id": "lock", "gender": "other"});
    assert_eq!(s.put_json("Patient/lock", &p).await.status(), 201);
    // Each writer changes something (a PUT of the same content writes nothing).
    let statuses = race(&s, 16, |i| {
        let headers = vec![(FHIR_JSON.0, FHIR_JSON.1.to_string()), ("if-match", "W/\"1\"".to_string())];
        let mut p = p.clone();
        p["name"] = json!([{ "family": format!("w{i}") }]);
        (reqwest::Method::PUT, "Patient/lock".into(), headers, p.to_string())
    })
    .await;
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 412).count(), 15, "{statuses:?}");
}
