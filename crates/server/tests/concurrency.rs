//! Many parallel clients: conditional creates never duplicate, updates never lose a version.

mod common;
use common::{json, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_creates_make_one_resource() {
    let s = start().await;
    for round in 0..5 {
        let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": round.to_string()}]});
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let c = s.client.clone();
                let url = s.url("Patient");
                let body = body.to_string();
                tokio::spawn(async move {
                    c.post(url)
                        .header("content-type", "application/fhir+json")
                        .header("if-none-exist", format!("identifier=urn:race|{round}"))
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let statuses: Vec<u16> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 200).count(),
            31,
            "{statuses:?}"
        );
        let b = json(
            s.get(&format!(
                "Patient?identifier=urn:race|{round}&_total=accurate"
            ))
            .await,
        )
        .await;
        assert_eq!(b["total"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_never_lose_a_version() {
    let s = start().await;
    let p = json!({"resourceType": "Patient", "id": "hot", "gender": "other"});
    assert_eq!(s.put_json("Patient/hot", &p).await.status(), 201);
    let n = 40;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = s.client.clone();
            let url = s.url("Patient/hot");
            let body = json!({"resourceType": "Patient", "id": "hot", "name": [{"family": format!("w{i}")}]}).to_string();
            tokio::spawn(async move {
                c.put(url).header("content-type", "application/fhir+json").body(body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let h = json(s.get("Patient/hot/_history?_count=1000").await).await;
    assert_eq!(h["total"], n + 1);
    let mut versions: Vec<u64> = h["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (1..=n as u64 + 1).collect::<Vec<_>>());
    // Every writer's content is in exactly one version.
    let families: std::collections::HashSet<String> = h["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["resource"]["name"][0]["family"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(families.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_if_match_updates_let_exactly_one_win() {
    let s = start().await;
    let p = json!({"resourceType": "Patient", "id": "lock", "gender": "other"});
    assert_eq!(s.put_json("Patient/lock", &p).await.status(), 201);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let c = s.client.clone();
            let url = s.url("Patient/lock");
            let body = p.to_string();
            tokio::spawn(async move {
                c.put(url)
                    .header("content-type", "application/fhir+json")
                    .header("if-match", "W/\"1\"")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        15,
        "{statuses:?}"
    );
}
