//! transaction and batch Bundles against the real HTTP server.

use crate::common;
use common::{assert_outcome, json, start};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_rewrites_references_and_orders_entries() {
    let s = start().await;
    // An existing patient to delete and one to find by a conditional reference.
    let old = json!({"resourceType": "Patient", "id": "old", "gender": "male"});
    assert_eq!(s.put_json("Patient/old", &old).await.status(), 201);
    let known = json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "7"}]});
    let known_id = json(s.post_json("Patient", &known).await).await["id"].as_str().unwrap().to_string();
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "request": { "method": "GET", "url": format!("Patient/{known_id}") } },
            { "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
              "resource": { "resourceType": "Observation", "status": "final",
                            "code": { "text": "t" },
                            "subject": { "reference": "urn:uuid:8a1e6f36-2c1c-4a43-a7bd-4bd1d6b3a0a1" },
                            "performer": [{ "reference": "Patient?identifier=urn:mrn|7" }] },
              "request": { "method": "POST", "url": "Observation" } },
            { "fullUrl": "urn:uuid:8a1e6f36-2c1c-4a43-a7bd-4bd1d6b3a0a1",
              "resource": { "resourceType": "Patient", "name": [{ "family": "新規" }] },
              "request": { "method": "POST", "url": "Patient" } },
            { "request": { "method": "DELETE", "url": "Patient/old" } }
        ]
    });
    let r = s.post_json("", &bundle).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["type"], "transaction-response");
    let e = b["entry"].as_array().unwrap();
    assert_eq!(e.len(), 4);
    assert_eq!(e[0]["response"]["status"], "200 OK");
    assert_eq!(e[0]["resource"]["id"], known_id.as_str());
    assert_eq!(e[3]["response"]["status"], "204 No Content");
    assert_eq!(s.get("Patient/old").await.status(), 410);
    assert_eq!(e[1]["response"]["status"], "201 Created");
    assert_eq!(e[2]["response"]["status"], "201 Created");
    let obs_loc = e[1]["response"]["location"].as_str().unwrap();
    let pat_loc = e[2]["response"]["location"].as_str().unwrap();
    let pat_ref = pat_loc.split("/_history").next().unwrap();
    let obs = json(s.get(obs_loc.split("/_history").next().unwrap()).await).await;
    assert_eq!(obs["subject"]["reference"], pat_ref);
    assert_eq!(obs["performer"][0]["reference"], format!("Patient/{known_id}"));
}

/// Index entries are extracted before the transaction from references already known
/// there; a reference only the transaction resolves (a conditional create that found a
/// match, a conditional reference) must leave the entry searchable by what it now names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_resolved_inside_the_transaction_are_searchable() {
    let s = start().await;
    let org = json!({"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "1"}]});
    let org_id = json(s.post_json("Organization", &org).await).await["id"].as_str().unwrap().to_string();
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:0b7a3c1e-0000-4000-8000-00000000000a", "resource": org,
              "request": { "method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|1" } },
            { "resource": { "resourceType": "Patient", "name": [{ "family": "条件" }],
                            "managingOrganization": { "reference": "urn:uuid:0b7a3c1e-0000-4000-8000-00000000000a" },
                            "generalPractitioner": [{ "reference": "Organization?identifier=urn:org|1" }] },
              "request": { "method": "POST", "url": "Patient" } },
            { "resource": { "resourceType": "Patient", "name": [{ "family": "新規" }],
                            "managingOrganization": { "reference": "urn:uuid:0b7a3c1e-0000-4000-8000-00000000000d" } },
              "request": { "method": "POST", "url": "Patient" } },
            { "fullUrl": "urn:uuid:0b7a3c1e-0000-4000-8000-00000000000d",
              "resource": { "resourceType": "Organization", "name": "new" },
              "request": { "method": "POST", "url": "Organization" } }
        ]
    });
    let r = s.post_json("", &bundle).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["entry"][0]["response"]["status"], "200 OK", "the conditional create found the match");
    let new_org =
        b["entry"][3]["response"]["location"].as_str().unwrap().split("/_history").next().unwrap().to_string();
    let families = |q: String| {
        let s = &s;
        async move {
            let page = json(s.get(&q).await).await;
            let mut f: Vec<String> = page["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"]["name"][0]["family"].as_str().unwrap().to_string())
                .collect();
            f.sort();
            f
        }
    };
    assert_eq!(families(format!("Patient?organization=Organization/{org_id}")).await, ["条件"]);
    assert_eq!(families(format!("Patient?general-practitioner=Organization/{org_id}")).await, ["条件"]);
    assert_eq!(families(format!("Patient?organization={new_org}")).await, ["新規"]);
    assert!(families("Patient?organization:missing=true".into()).await.is_empty());
}

/// Two conditional creates with the same criteria (in any order, one naming its type) make
/// one resource, and a conditional reference with those criteria names it, where each
/// would find nothing before the transaction; other criteria still create their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_conditional_creates_in_a_transaction_make_one_resource() {
    let s = start().await;
    let org =
        |v: &str| json!({"resourceType": "Organization", "name": v, "identifier": [{"system": "urn:org", "value": v}]});
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:3c0d4a52-0000-4000-8000-000000000001", "resource": org("1"),
              "request": { "method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|1&name=1" } },
            { "fullUrl": "urn:uuid:3c0d4a52-0000-4000-8000-000000000002", "resource": org("1"),
              "request": { "method": "POST", "url": "Organization", "ifNoneExist": "Organization?name=1&identifier=urn:org|1" } },
            { "resource": org("2"),
              "request": { "method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|2" } },
            { "resource": { "resourceType": "Patient", "name": [{ "family": "一" }],
                            "managingOrganization": { "reference": "urn:uuid:3c0d4a52-0000-4000-8000-000000000002" },
                            "generalPractitioner": [{ "reference": "Organization?name=1&identifier=urn:org|1" }] },
              "request": { "method": "POST", "url": "Patient" } }
        ]
    });
    let r = s.post_json("", &bundle).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    let status = |i: usize| b["entry"][i]["response"]["status"].as_str().unwrap().to_string();
    let location = |i: usize| {
        b["entry"][i]["response"]["location"].as_str().unwrap().split("/_history").next().unwrap().to_string()
    };
    assert_eq!([status(0), status(1), status(2), status(3)], ["201 Created", "200 OK", "201 Created", "201 Created"]);
    assert_eq!(location(0), location(1));
    assert_ne!(location(0), location(2));
    let total = |q: &'static str| {
        let s = &s;
        async move { json(s.get(q).await).await["total"].as_u64().unwrap() }
    };
    assert_eq!(total("Organization?identifier=urn:org|1&_summary=count").await, 1);
    assert_eq!(total("Organization?_summary=count").await, 2);
    let patient = json(s.get(&location(3)).await).await;
    assert_eq!(patient["managingOrganization"]["reference"], location(0));
    assert_eq!(patient["generalPractitioner"][0]["reference"], location(0));
    let by_org = format!("Patient?organization={}&general-practitioner={}&_summary=count", location(0), location(0));
    assert_eq!(json(s.get(&by_org).await).await["total"], 1, "searchable by what the transaction resolved");
    // Sent again, both find the one resource; criteria naming another type are refused.
    let again = json(s.post_json("", &bundle).await).await;
    assert_eq!(again["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(total("Organization?_summary=count").await, 2);
    let mut wrong = bundle.clone();
    wrong["entry"][0]["request"]["ifNoneExist"] = json!("Patient?identifier=urn:org|1");
    let r = s.post_json("", &wrong).await;
    assert_eq!(r.status(), 400);
    assert_outcome(&json(r).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_transaction_leaves_nothing_behind() {
    let s = start().await;
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:8f1c2a3b-0000-4000-8000-000000000001", "resource": { "resourceType": "Patient", "gender": "male" },
              "request": { "method": "POST", "url": "Patient" } },
            { "resource": { "resourceType": "Patient", "id": "x", "gender": "male" },
              "request": { "method": "PUT", "url": "Patient/x" } },
            { "request": { "method": "GET", "url": "Patient/does-not-exist" } }
        ]
    });
    let r = s.post_json("", &bundle).await;
    assert_eq!(r.status(), 404);
    assert_outcome(&json(r).await);
    let b = json(s.get("Patient?_summary=count").await).await;
    assert_eq!(b["total"], 0);
    // An invalid resource in an entry: 400, nothing written.
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "resource": { "resourceType": "Patient", "gender": "male" }, "request": { "method": "POST", "url": "Patient" } },
            { "resource": { "resourceType": "Patient", "gender": "robot" }, "request": { "method": "POST", "url": "Patient" } }
        ]
    });
    assert_eq!(s.post_json("", &bundle).await.status(), 400);
    assert_eq!(json(s.get("Patient?_summary=count").await).await["total"], 0);
    // Two entries writing the same resource.
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "resource": { "resourceType": "Patient", "id": "a" }, "request": { "method": "PUT", "url": "Patient/a" } },
            { "resource": { "resourceType": "Patient", "id": "a" }, "request": { "method": "PUT", "url": "Patient/a" } }
        ]
    });
    assert_eq!(s.post_json("", &bundle).await.status(), 400);
    assert_eq!(json(s.get("Patient?_summary=count").await).await["total"], 0);
    // Two entries under one fullUrl (bdl-7), in a transaction or a batch: 400, nothing written.
    for kind in ["transaction", "batch"] {
        let same = "urn:uuid:8f1c2a3b-0000-4000-8000-000000000003";
        let bundle = json!({
            "resourceType": "Bundle", "type": kind,
            "entry": [
                { "fullUrl": same, "resource": { "resourceType": "Patient" }, "request": { "method": "POST", "url": "Patient" } },
                { "fullUrl": same, "resource": { "resourceType": "Patient" }, "request": { "method": "POST", "url": "Patient" } }
            ]
        });
        let r = s.post_json("", &bundle).await;
        assert_eq!(r.status(), 400, "{kind}");
        assert!(json(r).await.to_string().contains("bdl-7"));
        assert_eq!(json(s.get("Patient?_summary=count").await).await["total"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_entries_are_independent() {
    let s = start().await;
    let bundle = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            { "resource": { "resourceType": "Patient", "gender": "male" }, "request": { "method": "POST", "url": "Patient" } },
            { "request": { "method": "GET", "url": "Patient/missing" } },
            { "resource": { "resourceType": "Patient", "gender": "robot" }, "request": { "method": "POST", "url": "Patient" } },
            { "request": { "method": "BREW", "url": "Patient" } }
        ]
    });
    let r = s.post_json("", &bundle).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["type"], "batch-response");
    let st: Vec<&str> =
        b["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
    assert_eq!(st[0], "201 Created");
    assert!(st[1].starts_with("404"));
    assert!(st[2].starts_with("400"));
    assert!(st[3].starts_with("400"));
    assert_eq!(b["entry"][1]["response"]["outcome"]["resourceType"], "OperationOutcome");
    assert_eq!(json(s.get("Patient?_summary=count").await).await["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_bundle_types_are_refused_at_the_base() {
    let s = start().await;
    let r = s.post_json("", &json!({"resourceType": "Bundle", "type": "collection"})).await;
    assert_eq!(r.status(), 400);
    let r = s.post_json("", &json!({"resourceType": "Patient"})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_patient_loads_as_one_transaction() {
    let Some(path) = tsunagu_reference::find("data/synthea-r4-dev.tar.zst") else { return };
    // Read the first patient bundle from the archive with the system tools' format.
    let file = std::fs::File::open(&path).unwrap();
    let mut archive = tar::Archive::new(zstd_decoder(file));
    let mut bundle = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().ends_with(".json") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            bundle = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
            break;
        }
    }
    let bundle = bundle.unwrap();
    let n = bundle["entry"].as_array().unwrap().len();
    let s = start().await;
    let r = s
        .send(
            reqwest::Method::POST,
            "",
            &[("content-type", "application/fhir+json"), ("prefer", "return=minimal")],
            bundle.to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["entry"].as_array().unwrap().len(), n);
    let h = json(s.get("_history?_count=1&_total=accurate").await).await;
    assert_eq!(h["total"], n);
    // Every reference now points at a stored resource.
    let patient = json(s.get("Patient").await).await;
    let pid = patient["entry"][0]["resource"]["id"].as_str().unwrap();
    let enc = json(s.get("Encounter?_count=1").await).await;
    assert_eq!(enc["entry"][0]["resource"]["subject"]["reference"], format!("Patient/{pid}"));
}

fn zstd_decoder(f: std::fs::File) -> impl std::io::Read {
    zstd::Decoder::new(f).unwrap()
}

/// `max_bundle_entries` is counted before any entry is checked or run: one entry over it
/// and nothing of the Bundle is written; at the limit it runs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_over_max_bundle_entries_are_refused_whole() {
    let s = common::start_with(|c| c.limits.max_bundle_entries = 3).await;
    let bundle = |kind: &str, n: usize| {
        let entry: Vec<_> = (0..n)
            .map(|i| {
                json!({ "resource": { "resourceType": "Patient", "identifier": [{ "system": "urn:cap", "value": format!("{kind}{i}") }] },
                        "request": { "method": "POST", "url": "Patient" } })
            })
            .collect();
        json!({ "resourceType": "Bundle", "type": kind, "entry": entry })
    };
    for kind in ["transaction", "batch"] {
        let r = s.post_json("", &bundle(kind, 4)).await;
        assert_eq!(r.status(), 413, "{kind}");
        let oo = json(r).await;
        assert_outcome(&oo);
        assert_eq!(oo["issue"][0]["code"], "too-long", "{oo}");
        let text = oo["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(text.contains("max_bundle_entries = 3") && text.contains("4"), "{text}");
        assert_eq!(capped_count(&s).await, 0, "{kind}: nothing of a refused Bundle is written");
    }
    let r = s
        .send(
            reqwest::Method::POST,
            "",
            &[("content-type", "application/fhir+json"), ("accept-language", "ja")],
            bundle("transaction", 4).to_string(),
        )
        .await;
    assert_eq!(r.status(), 413);
    assert!(json(r).await.to_string().contains("エントリ数"));
    assert_eq!(s.post_json("", &bundle("transaction", 3)).await.status(), 200);
    assert_eq!(s.post_json("", &bundle("batch", 3)).await.status(), 200);
    assert_eq!(capped_count(&s).await, 6);
}

async fn capped_count(s: &common::TestServer) -> u64 {
    json(s.get("Patient?identifier=urn:cap|&_summary=count").await).await["total"].as_u64().unwrap()
}

/// The searches of one Bundle are bounded together, since a transaction runs all of them
/// under the write lock: their conditions before anything runs (`max_bundle_conditions`;
/// the same criteria twice count once), their time as they run (`max_bundle_search_ms`).
/// Either way a transaction past the limit writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_searches_of_one_bundle_are_bounded_together() {
    let s = common::start_with(|c| c.limits.max_bundle_conditions = 6).await;
    let entry = |i: usize, criteria: String| {
        json!({ "resource": { "resourceType": "Patient", "identifier": [{ "system": "urn:sum", "value": i.to_string() }] },
                "request": { "method": "POST", "url": "Patient", "ifNoneExist": criteria } })
    };
    let bundle = |kind: &str, entry: Vec<Value>| json!({ "resourceType": "Bundle", "type": kind, "entry": entry });
    // 3 criteria of 2 conditions each: at the limit.
    let three: Vec<_> = (0..3).map(|i| entry(i, format!("identifier=urn:sum|{i}&name=x"))).collect();
    // Repeated criteria, and a conditional reference repeating them, count once.
    let mut repeated = three.clone();
    repeated.push(entry(0, "name=x&identifier=urn:sum|0".into()));
    repeated.push(json!({ "resource": { "resourceType": "Observation", "status": "final", "code": { "text": "x" },
                                          "subject": { "reference": "Patient?identifier=urn:sum|1&name=x" } },
                          "request": { "method": "POST", "url": "Observation" } }));
    // One condition more, in a conditional reference: refused whole, before anything runs.
    let mut over = three.clone();
    over.push(json!({ "resource": { "resourceType": "Observation", "status": "final", "code": { "text": "x" },
                                      "subject": { "reference": "Patient?identifier=urn:sum|9" } },
                      "request": { "method": "POST", "url": "Observation" } }));
    for kind in ["transaction", "batch"] {
        let r = s.post_json("", &bundle(kind, over.clone())).await;
        assert_eq!(r.status(), 422, "{kind}");
        let oo = json(r).await;
        assert_outcome(&oo);
        assert_eq!(oo["issue"][0]["code"], "too-costly", "{oo}");
        assert!(oo.to_string().contains("max_bundle_conditions = 6"), "{oo}");
        assert_eq!(sum_count(&s).await, 0, "{kind}: nothing of a refused Bundle is written");
    }
    // A GET entry's search counts too.
    let mut with_get = three.clone();
    with_get.push(json!({ "request": { "method": "GET", "url": "Patient?name=a" } }));
    assert_eq!(s.post_json("", &bundle("transaction", with_get)).await.status(), 422);
    let r = s
        .send(
            reqwest::Method::POST,
            "",
            &[("content-type", "application/fhir+json"), ("accept-language", "ja")],
            bundle("transaction", over).to_string(),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(json(r).await.to_string().contains("条件の数"));
    // Where repeats run again, they count again: each GET entry, each batch entry.
    let gets: Vec<_> = (0..7).map(|_| json!({ "request": { "method": "GET", "url": "Patient?name=a" } })).collect();
    assert_eq!(s.post_json("", &bundle("transaction", gets)).await.status(), 422);
    // A GET search is counted as it is read (lenient), whatever a first pair looks like.
    let sneaky = json!({ "request": { "method": "GET", "url": "Patient?x?y=1&name=a,b,c,d,e,f,g" } });
    assert_eq!(s.post_json("", &bundle("batch", vec![sneaky])).await.status(), 422);
    assert_eq!(s.post_json("", &bundle("batch", repeated.clone())).await.status(), 422);
    let r = s.post_json("", &bundle("transaction", repeated)).await;
    assert_eq!(r.status(), 200, "{}", json(r).await);
    assert_eq!(sum_count(&s).await, 3);

    // Time: 300 searches cannot all run within 1 ms. The transaction fails whole; a
    // batch fails from the entry that went over, and its earlier entries stand.
    let s = common::start_with(|c| c.limits.max_bundle_search_ms = 1).await;
    let many: Vec<_> = (0..300).map(|i| entry(i, format!("identifier=urn:sum|{i}&name=n{i}"))).collect();
    let r = s.post_json("", &bundle("transaction", many.clone())).await;
    assert_eq!(r.status(), 422);
    let oo = json(r).await;
    assert_eq!(oo["issue"][0]["code"], "too-costly", "{oo}");
    assert!(oo.to_string().contains("max_bundle_search_ms = 1"), "{oo}");
    assert_eq!(sum_count(&s).await, 0);
    let r = s.post_json("", &bundle("batch", many.clone())).await;
    assert_eq!(r.status(), 200);
    let answer = json(r).await;
    let statuses: Vec<String> =
        answer["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].to_string()).collect();
    let first_refused = statuses.iter().position(|s| s.contains("422")).expect("some entry went over");
    assert!(statuses[..first_refused].iter().all(|s| s.contains("201")), "{statuses:?}");
    assert!(statuses[first_refused..].iter().all(|s| s.contains("422")), "{statuses:?}");
    // A batch entry's outcome is its own error, not a transaction's.
    let outcome = answer["entry"][first_refused]["response"]["outcome"].to_string();
    assert!(outcome.contains("max_bundle_search_ms") && !outcome.contains("ransaction"), "{outcome}");
    assert_eq!(sum_count(&s).await, first_refused as u64);
    // Without the ceiling the same transaction runs.
    let s = common::start_with(|c| c.limits.max_bundle_search_ms = 0).await;
    assert_eq!(s.post_json("", &bundle("transaction", many)).await.status(), 200);
    assert_eq!(sum_count(&s).await, 300);
}

async fn sum_count(s: &common::TestServer) -> u64 {
    json(s.get("Patient?identifier=urn:sum|&_summary=count").await).await["total"].as_u64().unwrap()
}
