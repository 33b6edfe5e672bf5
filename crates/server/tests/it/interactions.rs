//! Every REST interaction against the real HTTP server, bad input included.

use crate::common;
use common::{assert_outcome, json, start};
use serde_json::{json, Value};

fn patient(family: &str) -> serde_json::Value {
    json!({ "resourceType": "Patient", "name": [{ "family": family }], "gender": "female" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_vread_update_delete_history() {
    let s = start().await;
    let r = s.post_json("Patient", &patient("山田")).await;
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    assert!(r.headers().contains_key("last-modified"));
    let created = json(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(loc, s.url(&format!("Patient/{id}/_history/1")));
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(created["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));

    let read = json(s.get(&format!("Patient/{id}")).await).await;
    assert_eq!(read, created);

    let mut changed = read.clone();
    changed["name"][0]["family"] = json!("佐藤");
    let r = s.put_json(&format!("Patient/{id}"), &changed).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    let v2 = json(r).await;
    assert_eq!(v2["meta"]["versionId"], "2");
    assert_eq!(v2["name"][0]["family"], "佐藤");

    let v1 = json(s.get(&format!("Patient/{id}/_history/1")).await).await;
    assert_eq!(v1["name"][0]["family"], "山田");
    assert_eq!(s.get(&format!("Patient/{id}/_history/9")).await.status(), 404);
    for asked in ["-1", "99999999999999999999", "x"] {
        let r = s.get(&format!("Patient/{id}/_history/{asked}")).await;
        assert_eq!(r.status(), 404, "{asked}");
        let outcome = json(r).await;
        let said = outcome["issue"][0]["diagnostics"].as_str().unwrap().to_string();
        assert!(said.contains(&format!("_history/{asked}")) || said.contains(&format!("version {asked}")), "{said}");
    }
    let r = s.get("Patient?_sort=-").await;
    assert_eq!(r.status(), 400);
    assert!(json(r).await["issue"][0]["diagnostics"].as_str().unwrap().contains("'-'"));

    let r = s.client.delete(s.url(&format!("Patient/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = s.get(&format!("Patient/{id}")).await;
    assert_eq!(r.status(), 410);
    assert_outcome(&json(r).await);
    // Deleting again is not an error.
    assert_eq!(s.client.delete(s.url(&format!("Patient/{id}"))).send().await.unwrap().status(), 204);

    let h = json(s.get(&format!("Patient/{id}/_history")).await).await;
    assert_eq!(h["type"], "history");
    assert_eq!(h["total"], 3);
    let methods: Vec<&str> =
        h["entry"].as_array().unwrap().iter().map(|e| e["request"]["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);
    assert!(h["entry"][0].get("resource").is_none());

    // Type and system history see it too.
    let th = json(s.get("Patient/_history").await).await;
    assert_eq!(th["entry"].as_array().unwrap().len(), 3);
    // Type and system history count every version only when asked.
    assert!(th.get("total").is_none(), "{th}");
    let th = json(s.get("Patient/_history?_total=accurate").await).await;
    assert_eq!(th["total"], 3);
    let sh = json(s.get("_history?_count=1").await).await;
    assert_eq!(sh["entry"].as_array().unwrap().len(), 1);
    let next =
        sh["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").unwrap()["url"].as_str().unwrap();
    let page2 = json(s.client.get(next).send().await.unwrap()).await;
    assert_eq!(page2["entry"][0]["request"]["method"], "PUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_as_create_and_id_rules() {
    let s = start().await;
    let mut p = patient("Tanaka");
    p["id"] = json!("pat-1");
    let r = s.put_json("Patient/pat-1", &p).await;
    assert_eq!(r.status(), 201);
    // id mismatch
    let r = s.put_json("Patient/pat-2", &p).await;
    assert_eq!(r.status(), 400);
    assert_outcome(&json(r).await);
    // missing id in body
    let r = s.put_json("Patient/pat-1", &patient("x")).await;
    assert_eq!(r.status(), 400);
    // bad id syntax
    let mut bad = patient("x");
    bad["id"] = json!("bad_id!");
    assert_eq!(s.put_json("Patient/bad_id!", &bad).await.status(), 400);
    // resourceType mismatch with the URL
    let r = s.post_json("Observation", &patient("x")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimistic_locking_and_preconditions() {
    let s = start().await;
    let created = json(s.post_json("Patient", &patient("A")).await).await;
    let id = created["id"].as_str().unwrap();
    let mut changed = created.clone();
    changed["active"] = json!(true);
    let put = |etag: &'static str| {
        let body = changed.clone();
        let url = s.url(&format!("Patient/{id}"));
        let c = s.client.clone();
        async move {
            c.put(url)
                .header("content-type", "application/fhir+json")
                .header("if-match", etag)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(put("W/\"1\"").await.status(), 200);
    let r = put("W/\"1\"").await;
    assert_eq!(r.status(), 412);
    assert_outcome(&json(r).await);
    // If-None-Match on read gives 304 for the current version, or for `*`; an older one
    // gets the resource.
    let get = |name: &'static str, value: String| {
        let req = s.client.get(s.url(&format!("Patient/{id}"))).header(name, value);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(get("if-none-match", "W/\"2\"".into()).await.status(), 304);
    assert_eq!(get("if-none-match", "W/\"1\", W/\"2\"".into()).await.status(), 304);
    assert_eq!(get("if-none-match", "*".into()).await.status(), 304);
    assert_eq!(get("if-none-match", "W/\"1\"".into()).await.status(), 200);
    // If-Modified-Since: 304 from the version's own Last-Modified on, 200 before it.
    let r = get("accept", "application/fhir+json".into()).await;
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let length = r.bytes().await.unwrap().len();
    assert_eq!(get("if-modified-since", modified.clone()).await.status(), 304);
    assert_eq!(get("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT".into()).await.status(), 200);
    // HEAD has GET's headers, Content-Length included, and no body.
    let r = s.client.head(s.url(&format!("Patient/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), length.to_string());
    assert_eq!(r.headers()["last-modified"].to_str().unwrap(), modified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_a_bad_request() {
    let s = start().await;
    let addr = s.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!("GET /Patient HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut c, req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("OperationOutcome"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_create_update_delete() {
    let s = start().await;
    let mut p = patient("Cond");
    p["identifier"] = json!([{ "system": "urn:test", "value": "42" }]);
    let create = |p: serde_json::Value| {
        let c = s.client.clone();
        let url = s.url("Patient");
        async move {
            c.post(url)
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", "identifier=urn:test|42")
                .body(p.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(create(p.clone()).await.status(), 201);
    let r = create(p.clone()).await;
    assert_eq!(r.status(), 200);
    // Conditional update on the same criteria updates the one match.
    p["active"] = json!(true);
    let r = s
        .send(
            reqwest::Method::PUT,
            "Patient?identifier=urn:test|42",
            &[("content-type", "application/fhir+json")],
            p.to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["meta"]["versionId"], "2");
    // Conditional update with no match creates.
    let mut p43 = p.clone();
    p43["identifier"][0]["value"] = json!("43");
    let r = s
        .send(
            reqwest::Method::PUT,
            "Patient?identifier=urn:test|43",
            &[("content-type", "application/fhir+json")],
            p43.to_string(),
        )
        .await;
    assert_eq!(r.status(), 201);
    // Now two match urn:test| : conditional delete on that is refused.
    let r = s.client.delete(s.url("Patient?identifier=urn:test|")).send().await.unwrap();
    assert_eq!(r.status(), 412);
    let r = s.client.delete(s.url("Patient?identifier=urn:test|42")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let b = json(s.get("Patient?identifier=urn:test|42").await).await;
    assert!(b.get("entry").is_none(), "{b}");
    // Criteria with an unknown parameter are refused, never widened.
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+json"), ("if-none-exist", "nonsense=1")],
            p.to_string(),
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_return() {
    let s = start().await;
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+json"), ("prefer", "return=minimal")],
            patient("M").to_string(),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("location"));
    assert!(r.text().await.unwrap().is_empty());
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+json"), ("prefer", "return=OperationOutcome")],
            patient("M").to_string(),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(json(r).await["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_operation_outcomes() {
    let s = common::start_with(|c| c.limits.max_body_bytes = 4096).await;
    // Malformed JSON.
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+json")],
            "{\"resourceType\": \"Patient\",",
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_outcome(&json(r).await);
    // Malformed XML.
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+xml")],
            "<Patient xmlns=\"http://hl7.org/fhir\"><gender value=\"male\"></Patient>",
        )
        .await;
    assert_eq!(r.status(), 400);
    // XXE is refused.
    let r = s.send(reqwest::Method::POST, "Patient", &[("content-type", "application/fhir+xml")], "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\"/>").await;
    assert_eq!(r.status(), 400);
    // Wrong content type.
    let r = s.send(reqwest::Method::POST, "Patient", &[("content-type", "text/plain")], "hi").await;
    assert_eq!(r.status(), 415);
    assert_outcome(&json(r).await);
    // Body over the limit.
    let big = json!({ "resourceType": "Patient", "name": [{ "text": "x".repeat(10_000) }] });
    let r = s.post_json("Patient", &big).await;
    assert_eq!(r.status(), 413);
    assert_outcome(&json(r).await);
    // Unknown resource type.
    let r = s.get("Unicorn/1").await;
    assert_eq!(r.status(), 404);
    assert_outcome(&json(r).await);
    let r = s.post_json("Unicorn", &json!({"resourceType": "Unicorn"})).await;
    assert_eq!(r.status(), 404);
    // Unknown element, wrong primitive type: structure errors with locations.
    let r = s.post_json("Patient", &json!({"resourceType": "Patient", "birthDate": 1970, "colour": "x"})).await;
    assert_eq!(r.status(), 400);
    let oo = json(r).await;
    let exprs: Vec<String> =
        oo["issue"].as_array().unwrap().iter().filter_map(|i| i["expression"][0].as_str().map(String::from)).collect();
    assert!(exprs.iter().any(|e| e.contains("birthDate")), "{oo}");
    assert!(exprs.iter().any(|e| e.contains("colour")), "{oo}");
    // Empty body.
    let r = s.client.post(s.url("Patient")).header("content-type", "application/fhir+json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A JSON array is not a resource.
    assert_eq!(s.post_json("Patient", &json!([1, 2])).await.status(), 400);
    // Unsupported Accept.
    let r = s.client.get(s.url("metadata")).header("accept", "text/plain").send().await.unwrap();
    assert_eq!(r.status(), 406);
    // Method not allowed.
    let r = s.client.post(s.url("Patient/1/_history")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // Nothing was written by any of the above.
    let b = json(s.get("Patient?_summary=count").await).await;
    assert_eq!(b["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_follow_accept_language() {
    let s = start().await;
    let ja = json(s.client.get(s.url("Patient/nope")).header("accept-language", "ja").send().await.unwrap()).await;
    let en = json(s.client.get(s.url("Patient/nope")).header("accept-language", "en").send().await.unwrap()).await;
    let ja_text = ja["issue"][0]["diagnostics"].as_str().unwrap();
    let en_text = en["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(ja_text.contains("存在しません"), "{ja_text}");
    assert!(en_text.contains("not known"), "{en_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_in_and_out() {
    let s = start().await;
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="鈴木"/></name><birthDate value="1980-02-03"/></Patient>"#;
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient",
            &[("content-type", "application/fhir+xml"), ("accept", "application/fhir+xml")],
            xml,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+xml"));
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(text.contains("<family value=\"鈴木\"/>"), "{text}");
    let id = loc.split("/Patient/").nth(1).unwrap().split('/').next().unwrap();
    let j = json(s.get(&format!("Patient/{id}?_format=json")).await).await;
    assert_eq!(j["birthDate"], "1980-02-03");
    let x = s.get(&format!("Patient/{id}?_format=xml")).await.text().await.unwrap();
    assert!(x.starts_with("<?xml") || x.starts_with("<Patient"), "{x}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_elements_and_search_basics() {
    let s = start().await;
    let mut p = patient("Sum");
    p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
    p["birthDate"] = json!("1990-01-01");
    let id = json(s.post_json("Patient", &p).await).await["id"].as_str().unwrap().to_string();
    let e = json(s.get(&format!("Patient/{id}?_elements=birthDate")).await).await;
    assert_eq!(e["birthDate"], "1990-01-01");
    assert!(e.get("name").is_none());
    let t = json(s.get(&format!("Patient/{id}?_summary=text")).await).await;
    assert!(t.get("text").is_some());
    assert!(t.get("name").is_none());
    let d = json(s.get(&format!("Patient/{id}?_summary=data")).await).await;
    assert!(d.get("text").is_none());
    // _id and _lastUpdated search.
    let b = json(s.get(&format!("Patient?_id={id}")).await).await;
    assert_eq!(b["entry"].as_array().unwrap().len(), 1);
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    let b = json(s.get("Patient?_lastUpdated=gt2000-01-01&_total=accurate").await).await;
    assert_eq!(b["total"], 1);
    let b = json(s.get("Patient?_lastUpdated=lt2000-01-01&_total=accurate").await).await;
    assert_eq!(b["total"], 0);
    assert_eq!(s.get("Patient?_lastUpdated=garbage").await.status(), 400);
    // Unknown parameter: lenient ignores (and says so), strict refuses.
    let b = json(s.get("Patient?foo=bar").await).await;
    assert_eq!(b["entry"].as_array().unwrap().last().unwrap()["search"]["mode"], "outcome");
    let r = s.client.get(s.url("Patient?foo=bar")).header("prefer", "handling=strict").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // POST _search
    let r = s
        .send(
            reqwest::Method::POST,
            "Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("_id={id}"),
        )
        .await;
    assert_eq!(json(r).await["entry"].as_array().unwrap().len(), 1);
    // Capability statement.
    let cs = json(s.get("metadata").await).await;
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(json(s.get("metadata?mode=full").await).await, cs);
    // _summary and _elements shape it as any read: the summary keeps what R4 marks as
    // summary (rest.resource.type and operation) and leaves out the rest (searchParam).
    let short = json(s.get("metadata?_summary=true").await).await;
    assert_eq!(short["fhirVersion"], "4.0.1");
    assert!(cs["rest"][0]["resource"][0].get("searchParam").is_some(), "{cs}");
    assert!(short["rest"][0]["resource"][0].get("type").is_some(), "{short}");
    assert!(short["rest"][0]["resource"][0].get("searchParam").is_none(), "{short}");
    let some = json(s.get("metadata?_elements=software").await).await;
    assert!(some.get("software").is_some() && some.get("rest").is_none(), "{some}");
    // mode=terminology: the code systems the terminology operations know, stored ones too.
    let code_system = serde_json::json!({"resourceType": "CodeSystem", "url": "urn:test:colours", "version": "2",
        "status": "active", "content": "complete", "concept": [{"code": "red"}]});
    assert!(s.post_json("CodeSystem", &code_system).await.status().is_success());
    let tc = json(s.get("metadata?mode=terminology").await).await;
    assert_eq!(tc["resourceType"], "TerminologyCapabilities", "{tc}");
    assert_eq!(tc["kind"], "instance");
    let listed = tc["codeSystem"].as_array().unwrap().iter().find(|c| c["uri"] == "urn:test:colours").cloned();
    assert_eq!(listed, Some(serde_json::json!({"uri": "urn:test:colours", "version": [{"code": "2"}]})), "{tc}");
    assert_eq!(s.get("metadata?mode=everything").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch() {
    let s = start().await;
    let id = json(s.post_json("Patient", &patient("P")).await).await["id"].as_str().unwrap().to_string();
    let path = format!("Patient/{id}");
    let json_patch = |ops: &'static str| {
        s.send(reqwest::Method::PATCH, &path, &[("content-type", "application/json-patch+json")], ops)
    };
    let r = json_patch(
        r#"[{"op":"replace","path":"/gender","value":"male"},{"op":"add","path":"/birthDate","value":"2000-01-01"}]"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["gender"], "male");
    assert_eq!(v["meta"]["versionId"], "2");
    // A patch that breaks the resource, changes the id or fails a test is refused, and
    // nothing changes.
    for ops in [
        r#"[{"op":"replace","path":"/gender","value":"robot"}]"#,
        r#"[{"op":"replace","path":"/id","value":"other"}]"#,
        r#"[{"op":"test","path":"/gender","value":"female"}]"#,
    ] {
        assert_eq!(json_patch(ops).await.status(), 422, "{ops}");
    }
    assert_eq!(json(s.get(&format!("Patient/{id}")).await).await["meta"]["versionId"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhirpath_patch() {
    let s = start().await;
    let mut p = patient("FP");
    p["identifier"] = json!([{ "system": "urn:a", "value": "1" }, { "system": "urn:b", "value": "2" }]);
    let id = json(s.post_json("Patient", &p).await).await["id"].as_str().unwrap().to_string();
    let params = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "operation", "part": [
            { "name": "type", "valueCode": "replace" },
            { "name": "path", "valueString": "Patient.gender" },
            { "name": "value", "valueCode": "male" } ] },
        { "name": "operation", "part": [
            { "name": "type", "valueCode": "delete" },
            { "name": "path", "valueString": "Patient.identifier.where(system = 'urn:a')" } ] },
        { "name": "operation", "part": [
            { "name": "type", "valueCode": "add" },
            { "name": "path", "valueString": "Patient" },
            { "name": "name", "valueString": "birthDate" },
            { "name": "value", "valueDate": "1999-09-09" } ] }
    ]});
    let r = s
        .send(
            reqwest::Method::PATCH,
            &format!("Patient/{id}"),
            &[("content-type", "application/fhir+json")],
            params.to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["gender"], "male");
    assert_eq!(v["birthDate"], "1999-09-09");
    assert_eq!(v["identifier"], json!([{ "system": "urn:b", "value": "2" }]));
    // A path that selects two elements for replace is refused.
    let bad = json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
        { "name": "type", "valueCode": "replace" },
        { "name": "path", "valueString": "Patient.name.family | Patient.gender" },
        { "name": "value", "valueString": "x" } ] }]});
    let r = s
        .send(
            reqwest::Method::PATCH,
            &format!("Patient/{id}"),
            &[("content-type", "application/fhir+json")],
            bad.to_string(),
        )
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_operation() {
    let s = start().await;
    let good = json!({"resourceType": "Patient", "gender": "male"});
    let r = s.post_json("Patient/$validate", &good).await;
    assert_eq!(r.status(), 200);
    let oo = json(r).await;
    assert_eq!(oo["issue"][0]["severity"], "information", "{oo}");
    let bad = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "gender": "robot"}}]});
    let oo = json(s.post_json("Patient/$validate", &bad).await).await;
    assert!(
        oo["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "error" && i["expression"][0] == "Patient.gender"),
        "{oo}"
    );
    // Nothing was stored by validating.
    assert_eq!(json(s.get("Patient?_summary=count").await).await["total"], 0);
    let id = json(s.post_json("Patient", &good).await).await["id"].as_str().unwrap().to_string();
    let r = s.get(&format!("Patient/{id}/$validate")).await;
    assert_eq!(r.status(), 200);
    // A profile the server does not know is reported, not ignored.
    let oo = json(s.get(&format!("Patient/{id}/$validate?profile=http://example.org/unknown")).await).await;
    assert!(oo["issue"].as_array().unwrap().iter().any(|i| i["severity"] == "error"), "{oo}");
    assert_eq!(s.post_json("Observation/$validate", &good).await.status(), 400);

    // Modes: delete asks about the stored instance, no content; update needs the id.
    let errors =
        |oo: &serde_json::Value| oo["issue"].as_array().unwrap().iter().filter(|i| i["severity"] == "error").count();
    let r = s.get(&format!("Patient/{id}/$validate?mode=delete")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(errors(&json(r).await), 0);
    assert_eq!(s.get("Patient/nobody/$validate?mode=delete").await.status(), 404);
    assert_eq!(s.get("Patient/$validate?mode=delete").await.status(), 400);
    assert_eq!(s.get(&format!("Patient/{id}/$validate?mode=sideways")).await.status(), 400);
    assert_eq!(s.get(&format!("Patient/{id}/$validate?mode=profile")).await.status(), 200);
    let oo = json(s.post_json("Patient/$validate?mode=update", &good).await).await;
    assert_eq!(errors(&oo), 1, "{oo}");
    let with_id = json!({"resourceType": "Patient", "id": id, "gender": "male"});
    let oo = json(s.post_json(&format!("Patient/{id}/$validate?mode=update"), &with_id).await).await;
    assert_eq!(errors(&oo), 0, "{oo}");
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "update"},
        {"name": "resource", "resource": with_id}]});
    let oo = json(s.post_json("Patient/other/$validate", &params).await).await;
    assert_eq!(errors(&oo), 1, "the id is not the instance's: {oo}");
    // Each is 0..1.
    assert_eq!(s.get(&format!("Patient/{id}/$validate?mode=create&mode=update")).await.status(), 400);
    let twice = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": good},
        {"name": "resource", "resource": good}]});
    assert_eq!(s.post_json("Patient/$validate", &twice).await.status(), 400);
}

/// `_at` names a period at the precision it is written (http.html#history: versions
/// current at some point during it): a full instant, one moment; a year, the whole year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_at_names_a_period() {
    let s = start().await;
    let v1 =
        json(s.put_json("Patient/h", &json!({"resourceType": "Patient", "id": "h", "gender": "male"})).await).await;
    let v2 =
        json(s.put_json("Patient/h", &json!({"resourceType": "Patient", "id": "h", "gender": "female"})).await).await;
    let at = |v: &serde_json::Value| v["meta"]["lastUpdated"].as_str().unwrap().to_string();
    let versions = |query: String| {
        let s = &s;
        async move {
            let b = json(s.get(&format!("Patient/h/_history?{query}")).await).await;
            let mut v: Vec<String> = b["entry"]
                .as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(versions(format!("_at={}", at(&v1))).await, ["1"]);
    assert_eq!(versions(format!("_at={}", at(&v2))).await, ["2"]);
    let year: i32 = at(&v2)[..4].parse().unwrap();
    assert_eq!(versions(format!("_at={year}")).await, ["1", "2"], "both were current during the year");
    assert_eq!(versions(format!("_at={}", &at(&v2)[..7])).await.last().map(String::as_str), Some("2"));
    assert!(versions(format!("_at={}", year - 1)).await.is_empty(), "neither existed a year before");
    assert_eq!(versions(format!("_since={year}")).await, ["1", "2"]);
    assert!(versions(format!("_since={}", year + 1)).await.is_empty());
}

/// An update or patch that changes nothing (the same elements, and the same meta but
/// for versionId and lastUpdated) writes no version and answers the current one, as
/// HAPI, Blaze and Medplum do; If-Match still applies, and any change writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_changes_nothing_writes_no_version() {
    let s = start().await;
    let mut p = patient("Same");
    p["id"] = json!("same");
    assert_eq!(s.put_json("Patient/same", &p).await.status(), 201);
    let first = json(s.get("Patient/same").await).await;
    // The same content again, also as read back (with its meta), in another key order.
    for body in [p.clone(), first.clone(), serde_json::from_str(&reordered(&first)).unwrap()] {
        let r = s.put_json("Patient/same", &body).await;
        assert_eq!(r.status(), 200);
        let b = json(r).await;
        assert_eq!(b["meta"], first["meta"], "{b}");
    }
    let patch = |ops: Value| {
        s.send(
            reqwest::Method::PATCH,
            "Patient/same",
            &[("content-type", "application/json-patch+json")],
            ops.to_string(),
        )
    };
    let r = patch(json!([])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["meta"]["versionId"], "1");
    let r = patch(json!([{"op": "test", "path": "/id", "value": "same"}])).await;
    assert_eq!(json(r).await["meta"]["versionId"], "1");
    assert_eq!(json(s.get("Patient/same/_history").await).await["total"], 1);
    let headers = [("content-type", "application/fhir+json"), ("prefer", "return=OperationOutcome")];
    let r = s.send(reqwest::Method::PUT, "Patient/same", &headers, p.to_string()).await;
    assert_eq!(r.status(), 200);
    assert!(json(r).await.to_string().contains("unchanged"));
    // If-Match still decides first.
    let r = s
        .send(
            reqwest::Method::PUT,
            "Patient/same",
            &[("content-type", "application/fhir+json"), ("if-match", "W/\"7\"")],
            p.to_string(),
        )
        .await;
    assert_eq!(r.status(), 412);
    // A change to meta (a tag) or to an element writes.
    let mut tagged = p.clone();
    tagged["meta"] = json!({"tag": [{"system": "urn:t", "code": "x"}]});
    assert_eq!(json(s.put_json("Patient/same", &tagged).await).await["meta"]["versionId"], "2");
    // The same meta in another order, with a stale versionId, is no change.
    let mut again = tagged.clone();
    again["meta"] =
        json!({"versionId": "1", "tag": [{"system": "urn:t", "code": "x"}], "lastUpdated": "2000-01-01T00:00:00Z"});
    assert_eq!(json(s.put_json("Patient/same", &again).await).await["meta"]["versionId"], "2");
    let r = patch(json!([{"op": "add", "path": "/active", "value": false}])).await;
    assert_eq!(json(r).await["meta"]["versionId"], "3");
    // After a delete the same content is written again.
    assert_eq!(s.send(reqwest::Method::DELETE, "Patient/same", &[], String::new()).await.status(), 204);
    assert_eq!(s.put_json("Patient/same", &tagged).await.status(), 201);
}

/// The keys of a resource's top-level object in reverse order.
fn reordered(v: &Value) -> String {
    let m = v.as_object().unwrap();
    let parts: Vec<String> =
        m.iter().rev().map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap())).collect();
    format!("{{{}}}", parts.join(","))
}

/// Binary in its native form: content of a non-FHIR type is stored as a Binary and read
/// back as itself when asked for by its type, as the resource otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_content_goes_in_and_out_in_its_own_type() {
    use reqwest::Method;
    let s = start().await;
    let pdf: Vec<u8> = b"%PDF-1.4\n\x00\x01\xff binary".to_vec();
    let r = s
        .send(
            Method::POST,
            "Binary",
            &[("content-type", "application/pdf"), ("x-security-context", "Patient/p1")],
            pdf.clone(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["contentType"], "application/pdf");
    assert_eq!(created["securityContext"]["reference"], "Patient/p1");

    let raw = s.send(Method::GET, &format!("Binary/{id}"), &[("accept", "application/pdf")], "").await;
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["content-type"], "application/pdf");
    assert!(raw.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(raw.headers()["etag"], "W/\"1\"");
    assert_eq!(raw.bytes().await.unwrap().as_ref(), &pdf[..]);
    let version = s.send(Method::GET, &format!("Binary/{id}/_history/1"), &[("accept", "application/pdf")], "").await;
    assert_eq!(version.bytes().await.unwrap().as_ref(), &pdf[..]);
    // `application/*` takes FHIR JSON too, which a FHIR server answers in.
    let r = s.send(Method::GET, &format!("Binary/{id}"), &[("accept", "application/*")], "").await;
    assert_eq!(json(r).await["resourceType"], "Binary");
    // A FHIR format, or none named, is the resource; another type is 406.
    let r = s.send(Method::GET, &format!("Binary/{id}"), &[("accept", "application/fhir+json")], "").await;
    assert_eq!(json(r).await["resourceType"], "Binary");
    assert_eq!(json(s.get(&format!("Binary/{id}")).await).await["resourceType"], "Binary");
    let r = s.send(Method::GET, &format!("Binary/{id}"), &[("accept", "image/png")], "").await;
    assert_eq!(r.status(), 406);
    assert_eq!(json(r).await["resourceType"], "OperationOutcome");
    // Binary's history and searches are Bundles, never content; other types take only
    // FHIR content.
    let r = s.send(Method::GET, "Binary/_history", &[("accept", "application/pdf")], "").await;
    assert_eq!(r.status(), 406);
    let r = s.send(Method::GET, "Patient/x", &[("accept", "application/pdf")], "").await;
    assert_eq!(r.status(), 406);
    let r = s.send(Method::POST, "Patient", &[("content-type", "application/pdf")], pdf.clone()).await;
    assert_eq!(r.status(), 415);

    // An update in the native type keeps the id; a type any page may send cross-site is
    // taken only with an Authorization header.
    let r = s.send(Method::PUT, &format!("Binary/{id}"), &[("content-type", "image/png")], vec![1u8, 2, 3]).await;
    assert_eq!(r.status(), 200);
    let raw = s.send(Method::GET, &format!("Binary/{id}"), &[("accept", "image/*")], "").await;
    assert_eq!(raw.bytes().await.unwrap().as_ref(), &[1u8, 2, 3]);
    let r = s.send(Method::POST, "Binary", &[("content-type", "text/plain")], "hello").await;
    assert_eq!(r.status(), 415);
    // A conditional update in the native type too.
    let r = s.send(Method::PUT, &format!("Binary?_id={id}"), &[("content-type", "image/png")], vec![4u8, 5]).await;
    assert_eq!(r.status(), 200);

    // Quality decides between the content and the resource, then order.
    let pdf_id = json(s.send(Method::POST, "Binary", &[("content-type", "application/pdf")], pdf.clone()).await).await
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kind = |accept: &'static str| {
        let (s, path) = (&s, format!("Binary/{pdf_id}"));
        async move {
            let r = s.send(Method::GET, &path, &[("accept", accept)], "").await;
            (r.status().as_u16(), r.headers()["content-type"].to_str().unwrap().split(';').next().unwrap().to_string())
        }
    };
    assert_eq!(kind("application/pdf;q=0.9, application/fhir+json;q=0.1").await.1, "application/pdf");
    assert_eq!(kind("application/pdf;q=0.1, application/fhir+json;q=0.9").await.1, "application/fhir+json");
    assert_eq!(kind("application/pdf, application/fhir+json").await.1, "application/pdf");
    assert_eq!(kind("application/fhir+xml, application/pdf").await.1, "application/fhir+xml");
    assert_eq!(kind("*/*;q=0.1, application/pdf").await.1, "application/pdf");
    assert_eq!(kind("application/pdf;q=0, application/fhir+json").await.1, "application/fhir+json");
    assert_eq!(kind("application/pdf;q=0, image/png").await.0, 406);

    // X-Security-Context is one reference; anything else is refused.
    for bad in ["\"><script>", "javascript:alert(1)", "Nobody/1", "Patient/", "ftp://x/Patient/1"] {
        let r = s
            .send(Method::POST, "Binary", &[("content-type", "application/pdf"), ("x-security-context", bad)], "x")
            .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = s
        .send(
            Method::POST,
            "Binary",
            &[("content-type", "application/pdf"), ("x-security-context", "https://example.org/fhir/Patient/p1")],
            "x",
        )
        .await;
    assert_eq!(r.status(), 201);
    // /metadata is read only; `_format` names a FHIR version as Accept does.
    assert_eq!(s.send(Method::DELETE, "metadata", &[], "").await.status(), 405);
    assert_eq!(s.get("metadata?_format=application/fhir%2Bjson;fhirVersion=3.0").await.status(), 406);
    assert_eq!(s.get("metadata?_format=application/fhir%2Bjson;fhirVersion=4.0").await.status(), 200);

    // Content sent as itself must fit a request body once it is base64 in the resource.
    let small = common::start_with(|c| c.limits.max_body_bytes = 200_000).await;
    let r = small.send(Method::POST, "Binary", &[("content-type", "application/pdf")], vec![7u8; 150_000]).await;
    assert_eq!(r.status(), 413);
    let r = small.send(Method::POST, "Binary", &[("content-type", "application/pdf")], vec![7u8; 90_000]).await;
    assert_eq!(r.status(), 201);
    let stored = json(r).await;
    assert_eq!(small.put_json(&format!("Binary/{}", stored["id"].as_str().unwrap()), &stored).await.status(), 200);
}

/// A FHIRPath Patch path past `max_fhirpath_steps` is the limit's answer: 422
/// `too-costly`, in the language asked for, naming the limit and the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_patch_path_is_refused_naming_the_limit() {
    use reqwest::Method;
    let s = start().await;
    let names: Vec<Value> = (0..3000).map(|k| json!({"family": format!("f{k}")})).collect();
    let r = s.put_json("Patient/wide", &json!({"resourceType": "Patient", "id": "wide", "name": names})).await;
    assert!(r.status().is_success());
    let patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.name.where(%resource.name.select(%resource.name.family).count() > 0).family"},
        {"name": "value", "valueString": "x"}]}]});
    let r = s
        .send(
            Method::PATCH,
            "Patient/wide",
            &[("content-type", "application/fhir+json"), ("accept-language", "ja")],
            patch.to_string(),
        )
        .await;
    assert_eq!(r.status(), 422);
    let oo = json(r).await;
    assert_eq!(oo["issue"][0]["code"], "too-costly", "{oo}");
    let text = oo["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(text.contains("max_fhirpath_steps") && text.contains("上限"), "{text}");
    // Nothing was written.
    assert_eq!(json(s.get("Patient/wide").await).await["meta"]["versionId"], "1");
}
