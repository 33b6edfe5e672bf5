//! Terminology operations over HTTP, on CodeSystem, ValueSet and ConceptMap resources
//! written to the server itself (the service follows stored resources as they commit).

use crate::common;
use common::{assert_outcome, json, start, TestServer};
use serde_json::json;

const SYS: &str = "http://example.jp/CodeSystem/byomei";

async fn load(s: &TestServer) {
    let cs = json!({
        "resourceType": "CodeSystem", "id": "byomei", "url": SYS, "status": "active", "content": "complete",
        "hierarchyMeaning": "is-a",
        "concept": [
            { "code": "I00", "display": "感染症", "concept": [
                { "code": "I01", "display": "インフルエンザ" },
                { "code": "I02", "display": "ｺﾛﾅｳｲﾙｽ感染症" }
            ]},
            { "code": "C00", "display": "悪性新生物" }
        ]
    });
    let r = s.put_json("CodeSystem/byomei", &cs).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let vs = json!({
        "resourceType": "ValueSet", "id": "infections", "url": "http://example.jp/ValueSet/infections", "status": "active",
        "compose": { "include": [{ "system": SYS, "filter": [{ "property": "concept", "op": "is-a", "value": "I00" }] }] }
    });
    assert_eq!(s.put_json("ValueSet/infections", &vs).await.status(), 201);
    let cm = json!({
        "resourceType": "ConceptMap", "id": "to-icd", "url": "http://example.jp/ConceptMap/to-icd", "status": "active",
        "group": [{ "source": SYS, "target": "http://hl7.org/fhir/sid/icd-10", "element": [
            { "code": "I01", "target": [{ "code": "J11", "equivalence": "equivalent" }] }
        ]}]
    });
    assert_eq!(s.put_json("ConceptMap/to-icd", &cm).await.status(), 201);
}

fn param<'a>(p: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    p["parameter"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap_or_else(|| panic!("{name} in {p}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_system_operations() {
    let s = start().await;
    load(&s).await;
    let r = json(s.get(&format!("CodeSystem/$lookup?system={SYS}&code=I01")).await).await;
    assert_eq!(param(&r, "display")["valueString"], "インフルエンザ", "{r}");
    // Instance level takes the system from the stored resource.
    let r = json(s.get("CodeSystem/byomei/$lookup?code=C00").await).await;
    assert_eq!(param(&r, "display")["valueString"], "悪性新生物");

    let r = json(s.get(&format!("CodeSystem/$validate-code?url={SYS}&code=I02")).await).await;
    assert_eq!(param(&r, "result")["valueBoolean"], true);
    let r = json(s.get(&format!("CodeSystem/$validate-code?url={SYS}&code=ZZZ")).await).await;
    assert_eq!(param(&r, "result")["valueBoolean"], false);

    let r = json(s.get(&format!("CodeSystem/$subsumes?system={SYS}&codeA=I00&codeB=I01")).await).await;
    assert_eq!(param(&r, "outcome")["valueCode"], "subsumes");
    // POST with a Parameters body and Codings.
    let body = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "codingA", "valueCoding": { "system": SYS, "code": "I01" } },
        { "name": "codingB", "valueCoding": { "system": SYS, "code": "C00" } }
    ]});
    let r = json(s.post_json("CodeSystem/$subsumes", &body).await).await;
    assert_eq!(param(&r, "outcome")["valueCode"], "not-subsumed", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_set_and_concept_map_operations() {
    let s = start().await;
    load(&s).await;
    let r = json(s.get("ValueSet/$expand?url=http://example.jp/ValueSet/infections").await).await;
    let codes: Vec<&str> =
        r["expansion"]["contains"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"I01") && codes.contains(&"I02") && !codes.contains(&"C00"), "{r}");
    // Hiragana finds half-width katakana; the filter is percent-encoded like a browser would.
    let r = json(s.get("ValueSet/infections/$expand?filter=%E3%81%93%E3%82%8D%E3%81%AA").await).await;
    assert_eq!(r["expansion"]["total"], 1, "{r}");
    assert_eq!(r["expansion"]["contains"][0]["code"], "I02");

    let r = json(
        s.get(&format!("ValueSet/$validate-code?url=http://example.jp/ValueSet/infections&system={SYS}&code=C00"))
            .await,
    )
    .await;
    assert_eq!(param(&r, "result")["valueBoolean"], false);

    let r = json(s.get(&format!("ConceptMap/to-icd/$translate?system={SYS}&code=I01")).await).await;
    assert_eq!(param(&r, "result")["valueBoolean"], true, "{r}");
    let m = param(&r, "match");
    assert!(m.to_string().contains("J11"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminology_errors_are_outcomes() {
    let s = start().await;
    load(&s).await;
    let r = s
        .send(
            reqwest::Method::GET,
            "CodeSystem/$lookup?system=http://example.jp/none&code=x",
            &[("accept-language", "ja")],
            "",
        )
        .await;
    assert_eq!(r.status(), 404);
    let oo = json(r).await;
    assert_outcome(&oo);
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("ありません"), "{oo}");

    let r = s.get("ValueSet/$expand?url=http://example.jp/ValueSet/infections&count=many").await;
    assert_eq!(r.status(), 400);
    assert_outcome(&json(r).await);
    let r = s.get(&format!("CodeSystem/$lookup?system={SYS}")).await;
    assert_eq!(r.status(), 400, "code is required");
    let r = s.post_json("CodeSystem/$lookup", &json!({ "resourceType": "Patient" })).await;
    assert_eq!(r.status(), 400);
    assert_eq!(s.get("CodeSystem/nothing/$lookup?code=x").await.status(), 404);
}
