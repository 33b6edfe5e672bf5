//! JP-CLINS submissions over HTTP: validated whole, split into searchable items,
//! replaced by identifier (identical content writes nothing), withdrawn with every item,
//! and never written piecemeal through other paths.

use crate::common;

use std::sync::{Arc, OnceLock};

use common::{json, start_adjusted, TestServer};
use serde_json::{json, Value};
use tsunagu_validation::{PackageSet, Validator};

const INSURANCE: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
const BUNDLE_ID_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/bundle-identifier";

fn validator() -> Option<Arc<Validator>> {
    static V: OnceLock<Option<Arc<Validator>>> = OnceLock::new();
    V.get_or_init(|| {
        let mut set = PackageSet::new();
        for p in [
            "fhir/hl7.fhir.r4.core-4.0.1.tgz",
            "jp/jp-core.r4-1.1.2-url.tgz",
            "jp/jp-clins.r4-1.5.2-snap.tgz",
            "jp/jp-eCheckupReport.r4.tgz",
        ] {
            set.load_tgz(&tsunagu_reference::find(p)?).expect("package loads");
        }
        Some(Arc::new(Validator::new(set)))
    })
    .clone()
}

fn example(name: &str) -> Option<Value> {
    let path = tsunagu_reference::find(&format!("jp/clins-examples/{name}"))?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// A server whose writes get the base-structure check only (`validate` off for
/// profiles): submissions must be validated anyway.
async fn server() -> Option<TestServer> {
    server_with(|_| {}).await
}

/// [`server`] with its configuration adjusted by `tune`.
async fn server_with(tune: impl FnOnce(&mut tsunagu_server::ServerConfig)) -> Option<TestServer> {
    let v = validator()?;
    let submissions = Arc::new(tsunagu_server::ProfileCheck { validator: v, required: Default::default() });
    Some(
        start_adjusted(tune, Arc::new(tsunagu_server::StructureCheck::default()), move |fhir| {
            fhir.with_profile_validation(submissions)
        })
        .await,
    )
}

async fn search_total(s: &TestServer, query: &str) -> u64 {
    let r = s.get(query).await;
    assert_eq!(r.status(), 200, "{query}");
    let b = json(r).await;
    b["total"].as_u64().unwrap_or_else(|| b["entry"].as_array().map_or(0, |e| e.len() as u64))
}

async fn version_of(s: &TestServer, path: &str) -> String {
    let r = s.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    json(r).await["meta"]["versionId"].as_str().unwrap().to_string()
}

fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn by_insurance(ty: &str, member: &str) -> String {
    format!("{ty}?subject:Patient.identifier={}", encoded(&format!("{INSURANCE}|{member}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_replacement_and_withdrawal() {
    let Some(s) = server().await else { return };
    let Some(original) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
    let member = "00012345:あいう:１８７:01";
    let observations = by_insurance("Observation", member);

    // Submitted: the Bundle as sent, and each Observation as a searchable resource.
    let r = s.post_json("Bundle", &original).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let bundle_id = location.split("/Bundle/").nth(1).unwrap().split('/').next().unwrap().to_string();
    assert_eq!(search_total(&s, &observations).await, 4);
    let page = json(s.get(&format!("{observations}&_count=10")).await).await;
    for e in page["entry"].as_array().unwrap() {
        let obs = &e["resource"];
        assert_eq!(obs["meta"]["source"], format!("urn:tsunagu:submission:{bundle_id}"));
        let subject = obs["subject"]["reference"].as_str().unwrap();
        assert!(subject.starts_with("Patient/"), "rewritten to the stored Patient: {subject}");
        assert_eq!(s.get(subject).await.status(), 200);
    }
    assert_eq!(search_total(&s, &format!("Patient?identifier={}", encoded(&format!("{INSURANCE}|{member}")))).await, 1);

    // Identical content again: 200, nothing written.
    let r = s.post_json("Bundle", &original).await;
    assert_eq!(r.status(), 200);
    assert_eq!(version_of(&s, &format!("Bundle/{bundle_id}")).await, "1");
    let first_obs = page["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(version_of(&s, &format!("Observation/{first_obs}")).await, "1");

    // Replacement: one entry dropped, one changed. The Bundle keeps its id.
    let mut replaced = original.clone();
    let entries = replaced["entry"].as_array_mut().unwrap();
    let dropped = entries.pop().unwrap();
    entries[1]["resource"]["valueQuantity"]["value"] = json!(9.9);
    let r = s.post_json("Bundle", &replaced).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(version_of(&s, &format!("Bundle/{bundle_id}")).await, "2");
    assert_eq!(search_total(&s, &observations).await, 3);
    let changed = json(s.get(&format!("{observations}&value-quantity=9.9")).await).await;
    assert_eq!(changed["entry"].as_array().map(Vec::len), Some(1), "{changed}");
    let changed_id = changed["entry"][0]["resource"]["id"].as_str().unwrap();
    assert_eq!(version_of(&s, &format!("Observation/{changed_id}")).await, "2");
    assert_eq!(json(s.get(&format!("Observation/{changed_id}/_history")).await).await["total"], 2);
    let _ = dropped;

    // An invalid submission is refused whole: the held one stays as it was.
    let mut invalid = replaced.clone();
    // JP_Observation_LabResult_eCS needs a specimen; base R4 does not (the contained
    // Specimen goes too: unreferenced it would break R4's dom-3, a 400).
    let lab = invalid["entry"][1]["resource"].as_object_mut().unwrap();
    lab.remove("specimen");
    if let Some(Value::Array(contained)) = lab.get_mut("contained") {
        contained.retain(|c| c["resourceType"] != "Specimen");
    }
    invalid["entry"][2]["resource"]["valueQuantity"]["value"] = json!(1.0);
    let r = s.post_json("Bundle", &invalid).await;
    assert_eq!(r.status(), 422);
    let oo = json(r).await;
    assert!(oo.to_string().contains("specimen"), "{oo}");
    assert_eq!(version_of(&s, &format!("Bundle/{bundle_id}")).await, "2");
    assert_eq!(search_total(&s, &format!("{observations}&value-quantity=1.0")).await, 0);
    // Broken FHIR is 400 (an unknown element, or one R4 itself requires).
    let mut broken = replaced.clone();
    broken["entry"][1]["resource"]["colour"] = json!("red");
    let r = s.post_json("Bundle", &broken).await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());

    // Items and submissions are written through the submission path only.
    let mut item = json(s.get(&format!("Observation/{changed_id}")).await).await;
    item["status"] = json!("amended");
    assert_eq!(s.put_json(&format!("Observation/{changed_id}"), &item).await.status(), 422);
    let mut as_put = replaced.clone();
    as_put["id"] = json!(bundle_id);
    assert_eq!(s.put_json(&format!("Bundle/{bundle_id}"), &as_put).await.status(), 422);

    // Withdrawal: the Bundle and every item it carried.
    let criteria = format!(
        "identifier={}",
        encoded(&format!("{BUNDLE_ID_SYSTEM}|{}", original["identifier"]["value"].as_str().unwrap()))
    );
    let r = s.send(reqwest::Method::DELETE, &format!("Bundle?{criteria}"), &[], "").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(s.get(&format!("Bundle/{bundle_id}")).await.status(), 410);
    assert_eq!(search_total(&s, &observations).await, 0);
    assert_eq!(s.get(&format!("Observation/{changed_id}")).await.status(), 410);
    // Submitting it again brings it back under the same Bundle id? No: a withdrawn
    // submission is gone; a new one starts afresh.
    let r = s.post_json("Bundle", &original).await;
    assert_eq!(r.status(), 201);
    assert_eq!(search_total(&s, &observations).await, 4);
}

/// One person seen at two institutions: each submission keeps its own Patient as sent,
/// and a search by the insurance member identifier finds the items of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_institutions_one_person() {
    let Some(s) = server().await else { return };
    let Some(first) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
    let mut second = first.clone();
    second["identifier"]["value"] = json!("1312345670^2024^other-clinic-1");
    // Another institution: its own patient id system and number.
    let text = second.to_string().replace("1318814790", "1312345670");
    let second: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s.post_json("Bundle", &first).await.status(), 201);
    let r = s.post_json("Bundle", &second).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let member = "00012345:あいう:１８７:01";
    assert_eq!(search_total(&s, &by_insurance("Observation", member)).await, 8);
    assert_eq!(search_total(&s, &format!("Patient?identifier={}", encoded(&format!("{INSURANCE}|{member}")))).await, 2);
    // Withdrawing one institution's submission leaves the other's.
    let criteria = format!("identifier={}", encoded(&format!("{BUNDLE_ID_SYSTEM}|1312345670^2024^other-clinic-1")));
    assert!(s.send(reqwest::Method::DELETE, &format!("Bundle?{criteria}"), &[], "").await.status().is_success());
    assert_eq!(search_total(&s, &by_insurance("Observation", member)).await, 4);
}

/// A document (診療情報提供書) is a submission too: kept as sent, its entries as items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referral_document_items_are_searchable() {
    let Some(s) = server().await else { return };
    let Some(doc) = example("Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    let r = s.post_json("Bundle", &doc).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let member = "00012345:あいう:１８７:05";
    assert_eq!(search_total(&s, &by_insurance("Condition", member)).await, 5);
    assert_eq!(
        search_total(
            &s,
            &format!("AllergyIntolerance?patient:Patient.identifier={}", encoded(&format!("{INSURANCE}|{member}")))
        )
        .await,
        3
    );
    let compositions = json(s.get("Composition?type=57133-1").await).await;
    assert_eq!(compositions["entry"].as_array().map(Vec::len), Some(1), "{compositions}");
    // The document itself reads back as sent (its entries keep their fullUrls).
    let location = json(s.get("Bundle?identifier=1318814790%5E2024%5E0123-Referral-203949583949").await).await;
    let stored = &location["entry"][0]["resource"];
    assert_eq!(stored["entry"].as_array().map(Vec::len), doc["entry"].as_array().map(Vec::len));
    assert_eq!(stored["entry"][0]["fullUrl"], doc["entry"][0]["fullUrl"]);
}

/// Without the JP-CLINS packages a submission cannot be checked, so it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_packages_submissions_are_refused() {
    let Some(doc) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
    let s = common::start().await;
    let r = s.post_json("Bundle", &doc).await;
    assert_eq!(r.status(), 422);
    assert!(json(r).await.to_string().contains("JP-CLINS"));
}

mod sharing {
    use super::*;
    use reqwest::Method;
    use tsunagu_auth::{Authority, Grant};

    const A: &str = "1318814790";
    const B: &str = "1312345670";
    const MEMBER: &str = "00012345:あいう:１８７:01";

    struct World {
        s: TestServer,
        authority: Arc<Authority>,
        _dir: tempfile::TempDir,
    }

    impl World {
        fn token(&self, scope: &str, institution: Option<&str>, patient: Option<&str>) -> String {
            let grant = Grant {
                subject: "app".into(),
                client_id: "app".into(),
                scope: scope.into(),
                institution: institution.map(str::to_string),
                patient: patient.map(str::to_string),
                ..Default::default()
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            self.authority.issuer().issue(&grant, now).unwrap()
        }

        async fn call(&self, token: &str, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
            let mut req = self.s.client.request(method, self.s.url(path)).bearer_auth(token);
            if let Some(b) = body {
                req = req.header("content-type", "application/fhir+json").body(b.to_string());
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
        }

        /// The Conditions `token` finds for the person, by id.
        async fn conditions(&self, token: &str) -> Vec<String> {
            let (status, b) =
                self.call(token, Method::GET, &format!("{}&_count=50", by_insurance("Condition", MEMBER)), None).await;
            assert_eq!(status, 200, "{b}");
            let mut ids: Vec<String> = b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["resource"]["resourceType"] == "Condition")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    }

    async fn world() -> Option<World> {
        let v = validator()?;
        let dir = tempfile::tempdir().unwrap();
        let mut authority = None;
        let submissions = Arc::new(tsunagu_server::ProfileCheck { validator: v, required: Default::default() });
        let s = start_adjusted(
            |cfg| {
                let a = Arc::new(Authority::open(dir.path(), &cfg.base_url, Default::default()).unwrap());
                cfg.authorization = tsunagu_server::Authorization::Required(a.clone());
                authority = Some(a);
            },
            Arc::new(tsunagu_server::StructureCheck::default()),
            move |fhir| fhir.with_profile_validation(submissions),
        )
        .await;
        Some(World { s, authority: authority.unwrap(), _dir: dir })
    }

    /// A JP_Bundle_CLINS of three Conditions (JP-CLINS allows UNDELIVERED and UNINFORMED on
    /// Conditions only): the first UNDELIVERED, the second UNINFORMED (as in the example).
    fn conditions(observations: &Value) -> Option<Value> {
        let mut bundle = observations.clone();
        bundle["meta"]["tag"][0]["code"] = json!("Condition");
        bundle["identifier"]["value"] = json!(format!("{A}^2024^conditions-1"));
        let patient = bundle["entry"][0].clone();
        let mut entries = vec![patient.clone()];
        for (i, name) in ["01", "02", "03"].iter().enumerate() {
            let mut c = example(&format!("Condition-Example-JP-Condition-eCS-{name}.json"))?;
            c["subject"] = json!({ "reference": patient["fullUrl"] });
            // The Bundle profile wants its Conditions' profiles written one way.
            c["meta"]["profile"] = json!(["http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Condition_eCS"]);
            if i == 0 {
                c["meta"]["tag"] = json!([{ "system": "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication", "code": "UNDELIVERED" }]);
            }
            entries
                .push(json!({ "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-00000000000{i}"), "resource": c }));
        }
        bundle["entry"] = Value::Array(entries);
        Some(bundle)
    }

    fn consent(period: Value, actor: Option<&str>, kind: &str) -> Value {
        let mut provision = json!({ "type": kind, "period": period });
        if let Some(i) = actor {
            provision["actor"] = json!([{ "role": { "text": "recipient" }, "reference": { "identifier": {
                "system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": i } } }]);
        }
        json!({ "resourceType": "Consent", "status": "active",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
            "patient": { "identifier": { "system": INSURANCE, "value": MEMBER } },
            "provision": provision })
    }

    fn days(from: i64, to: i64) -> Value {
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let d = |n: i64| tsunagu_interaction::format_instant(now_ms + n * 86_400_000)[..10].to_string();
        json!({ "start": d(from), "end": d(to) })
    }

    /// Consent given, expired, for every institution, and refused; UNDELIVERED and
    /// UNINFORMED items; a patient's app; another institution's writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_are_shared_by_consent_and_tags() {
        let Some(w) = world().await else { return };
        let Some(original) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
        let hospital = w.token("system/*.cruds", Some(A), None);
        let clinic = w.token("system/*.cruds", Some(B), None);
        let operator = w.token("system/*.cruds", None, None);

        let Some(submission) = conditions(&original) else { return };
        // A client acting for no institution submits nothing.
        let (status, refused) = w.call(&operator, Method::POST, "Bundle", Some(&submission)).await;
        assert_eq!(status, 403, "{refused}");
        assert!(refused.to_string().contains("institution"), "{refused}");
        let (status, stored) = w.call(&hospital, Method::POST, "Bundle", Some(&submission)).await;
        assert_eq!(status, 201, "{stored}");
        let bundle_id = stored["id"].as_str().unwrap().to_string();
        let own = w.conditions(&hospital).await;
        assert_eq!(own.len(), 3, "the submitter sees all its items");
        let indication = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication";
        let tagged = |code: &str| format!("{}&_tag={indication}|{code}", by_insurance("Condition", MEMBER));
        let (_, undelivered) = w.call(&hospital, Method::GET, &tagged("UNDELIVERED"), None).await;
        let undelivered_id = undelivered["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
        let (_, uninformed) = w.call(&hospital, Method::GET, &tagged("UNINFORMED"), None).await;
        let uninformed_id = uninformed["entry"][0]["resource"]["id"].as_str().unwrap().to_string();

        // No consent (default deny): nothing of A's reaches B, by search or by id.
        assert!(w.conditions(&clinic).await.is_empty());
        assert_eq!(w.call(&clinic, Method::GET, &format!("Condition/{}", own[0]), None).await.0, 403);
        assert_eq!(w.call(&clinic, Method::GET, &format!("Bundle/{bundle_id}"), None).await.0, 403);

        // Consent for B, current: B sees the shared items, never the UNDELIVERED one, and
        // not the Bundle that carries it.
        let (status, c) =
            w.call(&operator, Method::POST, "Consent", Some(&consent(days(-1, 1), Some(B), "permit"))).await;
        assert_eq!(status, 201, "{c}");
        let consent_id = c["id"].as_str().unwrap().to_string();
        let seen = w.conditions(&clinic).await;
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(!seen.contains(&undelivered_id) && seen.contains(&uninformed_id));
        assert_eq!(w.call(&clinic, Method::GET, &format!("Condition/{undelivered_id}"), None).await.0, 403);
        assert_eq!(w.call(&clinic, Method::GET, &format!("Condition/{uninformed_id}"), None).await.0, 200);
        assert_eq!(w.call(&clinic, Method::GET, &format!("Bundle/{bundle_id}"), None).await.0, 403);
        // The summary B gets holds exactly what B may see.
        let summary_path = format!("Patient/$summary?identifier={}", encoded(&format!("{INSURANCE}|{MEMBER}")));
        let (status, summary) = w.call(&clinic, Method::GET, &summary_path, None).await;
        assert_eq!(status, 200, "{summary}");
        let conditions: Vec<&str> = summary["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Condition")
            .filter_map(|e| e["resource"]["id"].as_str())
            .collect();
        assert_eq!(conditions.len(), 2);
        assert!(!conditions.contains(&undelivered_id.as_str()));

        // Expired: nothing again.
        let mut expired = consent(days(-10, -1), Some(B), "permit");
        expired["id"] = json!(consent_id);
        assert_eq!(w.call(&operator, Method::PUT, &format!("Consent/{consent_id}"), Some(&expired)).await.0, 200);
        assert!(w.conditions(&clinic).await.is_empty());

        // For every institution: B sees them; a refusal for B wins over it.
        let (status, all) =
            w.call(&operator, Method::POST, "Consent", Some(&consent(days(-1, 30), None, "permit"))).await;
        assert_eq!(status, 201, "{all}");
        assert_eq!(w.conditions(&clinic).await.len(), 2);
        let (status, _) =
            w.call(&operator, Method::POST, "Consent", Some(&consent(days(-1, 30), Some(B), "deny"))).await;
        assert_eq!(status, 201);
        assert!(w.conditions(&clinic).await.is_empty());

        // The patient's app: its own items, except UNDELIVERED and UNINFORMED ones.
        let (_, patients) = w
            .call(
                &hospital,
                Method::GET,
                &format!("Patient?identifier={}", encoded(&format!("{INSURANCE}|{MEMBER}"))),
                None,
            )
            .await;
        let pid = patients["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
        let app = w.token("patient/*.rs", None, Some(&pid));
        let (status, mine) = w.call(&app, Method::GET, "Condition?_count=50", None).await;
        assert_eq!(status, 200, "{mine}");
        let mine: Vec<&str> =
            mine["entry"].as_array().into_iter().flatten().filter_map(|e| e["resource"]["id"].as_str()).collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert!(!mine.contains(&undelivered_id.as_str()) && !mine.contains(&uninformed_id.as_str()));

        // B cannot submit under A's number, replace A's submission, or delete A's items.
        let (status, _) = w.call(&clinic, Method::POST, "Bundle", Some(&original)).await;
        assert_eq!(status, 403);
        assert_eq!(w.call(&clinic, Method::DELETE, &format!("Condition/{}", own[0]), None).await.0, 403);
        assert_eq!(w.conditions(&hospital).await.len(), 3);

        // B submits about the same person under its own number: the app bound to A's copy
        // of the patient sees B's shareable item too, still not the hidden ones.
        let theirs: Value = serde_json::from_str(&submission.to_string().replace(A, B)).unwrap();
        let (status, stored) = w.call(&clinic, Method::POST, "Bundle", Some(&theirs)).await;
        assert_eq!(status, 201, "{stored}");
        let (_, mine) = w.call(&app, Method::GET, "Condition?_count=50", None).await;
        let mine: Vec<String> = mine["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(mine.len(), 2, "{mine:?}");
        let (_, patients) = w.call(&app, Method::GET, "Patient", None).await;
        assert_eq!(patients["entry"].as_array().map_or(0, Vec::len), 2, "both institutions' copies: {patients}");
        for id in &mine {
            assert_eq!(w.call(&app, Method::GET, &format!("Condition/{id}"), None).await.0, 200);
        }
        // A SQL-on-FHIR view sees what a search sees, no more.
        let view = json!({"resourceType": "ViewDefinition", "resource": "Condition", "status": "active",
            "select": [{"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}]}]});
        let run = json!({"resourceType": "Parameters", "parameter": [{"name": "viewResource", "resource": view}]});
        let (status, rows) = w.call(&app, Method::POST, "ViewDefinition/$run", Some(&run)).await;
        assert_eq!(status, 200, "{rows}");
        let mut viewed: Vec<String> =
            rows.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        viewed.sort();
        let mut expected = mine.clone();
        expected.sort();
        assert_eq!(viewed, expected);

        // Nobody writes the sharing tags by hand: they would let a person's apps in.
        let mut forged = example("Condition-Example-JP-Condition-eCS-01.json").unwrap();
        forged["meta"]["tag"] = json!([{ "system": "urn:tsunagu:person", "code": "insurance:someone" }]);
        let (status, refused) = w.call(&clinic, Method::POST, "Condition", Some(&forged)).await;
        assert_eq!(status, 422, "{refused}");
    }
}

/// `Patient/$summary` holds the person's current items from every submission, each once,
/// in JP-CLINS sections; documents and the summary read as HTML pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_documents_for_people() {
    let Some(s) = server().await else { return };
    let Some(observations) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
    let Some(referral) = example("Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    assert_eq!(s.post_json("Bundle", &observations).await.status(), 201);
    // The same lab results submitted again by a second institution: two items each.
    let second: Value = serde_json::from_str(&observations.to_string().replace("1318814790", "1312345670")).unwrap();
    assert_eq!(s.post_json("Bundle", &second).await.status(), 201);
    let r = s.post_json("Bundle", &referral).await;
    assert_eq!(r.status(), 201);
    let referral_id = json(r).await["id"].as_str().unwrap().to_string();

    let member = "00012345:あいう:１８７:01";
    let r = s.get(&format!("Patient/$summary?identifier={}", encoded(&format!("{INSURANCE}|{member}")))).await;
    assert_eq!(r.status(), 200);
    let summary = json(r).await;
    assert_eq!(summary["type"], "document");
    let entries = summary["entry"].as_array().unwrap();
    let composition = &entries[0]["resource"];
    assert_eq!(composition["resourceType"], "Composition");
    assert_eq!(composition["type"]["coding"][0]["code"], "56447-6");
    let full_urls: Vec<&str> = entries.iter().map(|e| e["fullUrl"].as_str().unwrap()).collect();
    let unique: std::collections::HashSet<&&str> = full_urls.iter().collect();
    assert_eq!(unique.len(), full_urls.len(), "each resource once");
    let section = |code: &str| {
        composition["section"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"]["coding"][0]["code"] == code)
            .cloned()
            .unwrap()
    };
    // Eight lab results (four from each institution), no conditions or allergies for :01.
    let labs = section("620");
    assert_eq!(labs["entry"].as_array().map(Vec::len), Some(8), "{labs}");
    for e in labs["entry"].as_array().unwrap() {
        let target = e["reference"].as_str().unwrap();
        let entry = entries.iter().find(|x| x["fullUrl"] == target).expect("every section entry resolves");
        assert_eq!(entry["resource"]["resourceType"], "Observation");
    }
    assert!(section("340")["entry"].is_null() && section("340")["emptyReason"].is_object());
    assert_eq!(entries.iter().filter(|e| e["resource"]["resourceType"] == "Patient").count(), 2);
    // The referral's person (:05): five conditions and three allergies.
    let other = "00012345:あいう:１８７:05";
    let referral_summary =
        json(s.get(&format!("Patient/$summary?identifier={}", encoded(&format!("{INSURANCE}|{other}")))).await).await;
    let comp = &referral_summary["entry"][0]["resource"];
    let count = |code: &str| {
        comp["section"].as_array().unwrap().iter().find(|s| s["code"]["coding"][0]["code"] == code).unwrap()["entry"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!((count("340"), count("510")), (5, 3));
    // The same operation from a batch entry, and in the CapabilityStatement.
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        { "request": { "method": "GET", "url": format!("Patient/$summary?identifier={}", encoded(&format!("{INSURANCE}|{other}"))) } }
    ]});
    let r = json(s.post_json("", &batch).await).await;
    assert_eq!(r["entry"][0]["response"]["status"], "200 OK", "{r}");
    assert_eq!(r["entry"][0]["resource"]["entry"][0]["resource"]["resourceType"], "Composition");
    let cs = json(s.get("metadata").await).await;
    let patient =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap().clone();
    assert!(patient["operation"].as_array().unwrap().iter().any(|o| o["name"] == "summary"), "{patient}");
    // Unknown person: 404.
    let nobody = encoded(&format!("{INSURANCE}|99999999:x:1:01"));
    assert_eq!(s.get(&format!("Patient/$summary?identifier={nobody}")).await.status(), 404);

    // Pages for people: the referral letter and the summary, escaped and script-free.
    let r = s.get(&format!("Bundle/{referral_id}?_format=html")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("診療情報提供書"), "title");
    assert!(page.contains("牧野") && page.contains("マキノ"), "patient in kanji and kana");
    assert!(!page.to_ascii_lowercase().contains("<script"));
    let r =
        s.get(&format!("Patient/$summary?identifier={}&_format=html", encoded(&format!("{INSURANCE}|{other}")))).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("患者サマリー") && page.contains("傷病名"), "{page}");
    // A browser gets the page; a collection is no document: FHIR for a browser, 406 when
    // a page was required.
    let info_id = json(
        s.get(&format!(
            "Bundle?identifier={}",
            encoded(&format!("{BUNDLE_ID_SYSTEM}|1318814790^2024^0123-IDa-203949583949"))
        ))
        .await,
    )
    .await["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let browser = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let r = s.send(reqwest::Method::GET, &format!("Bundle/{referral_id}"), &browser, "").await;
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let r = s.send(reqwest::Method::GET, &format!("Bundle/{info_id}"), &browser, "").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+json"));
    assert_eq!(s.get(&format!("Bundle/{info_id}?_format=html")).await.status(), 406);
    assert_eq!(s.get("metadata?_format=html").await.status(), 406);
}

/// HPKI signatures on submitted documents: valid, wrong role, expired, revoked, untrusted
/// chain, altered content — and a signed document without configured trust anchors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_documents() {
    use tsunagu_hpki::testing::{TestPki, TestSigner};
    let Some(v) = validator() else { return };
    let Some(referral) = example("Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    let pki = TestPki::new();
    let check =
        Arc::new(tsunagu_server::HpkiCheck { trust: pki.trust_store(), policy: tsunagu_hpki::RolePolicy::default() });
    let submissions = Arc::new(tsunagu_server::ProfileCheck { validator: v.clone(), required: Default::default() });
    let s = start_adjusted(
        |_| {},
        Arc::new(tsunagu_server::StructureCheck::default()),
        move |fhir| fhir.with_profile_validation(submissions).with_signature_check(check),
    )
    .await;
    let signed = |signer: &TestSigner, n: usize| {
        let mut doc = referral.clone();
        // Each its own submission.
        doc["identifier"]["value"] = json!(format!("1318814790^2024^signed-{n}"));
        tsunagu_hpki::sign_bundle(
            &mut doc,
            &signer.key_pkcs8,
            &signer.chain_der,
            signer.alg,
            "2026-06-01T09:00:00+09:00",
        )
        .unwrap();
        doc
    };
    let refused = |r: reqwest::Response| async move {
        let status = r.status();
        let oo = json(r).await;
        assert_eq!(status, 422, "{oo}");
        assert!(oo.to_string().contains("Bundle.signature"), "{oo}");
        oo
    };
    let r = s.post_json("Bundle", &signed(&pki.doctor, 1)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = s.post_json("Bundle", &signed(&pki.rsa_doctor, 2)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let oo = refused(s.post_json("Bundle", &signed(&pki.pharmacist, 3)).await).await;
    assert!(oo.to_string().contains("Medical Doctor"), "{oo}");
    refused(s.post_json("Bundle", &signed(&pki.expired, 4)).await).await;
    refused(s.post_json("Bundle", &signed(&pki.revoked, 5)).await).await;
    refused(s.post_json("Bundle", &signed(&pki.stranger, 6)).await).await;
    let mut altered = signed(&pki.doctor, 7);
    altered["entry"][1]["resource"]["birthDate"] = json!("1950-01-01");
    refused(s.post_json("Bundle", &altered).await).await;
    // Nothing refused was stored.
    let held = json(s.get("Bundle?_summary=count").await).await;
    assert_eq!(held["total"], 2, "{held}");

    // Without trust anchors a signed document cannot be checked, so it is refused.
    let plain = server().await.unwrap();
    refused(plain.post_json("Bundle", &signed(&pki.doctor, 8)).await).await;
}

/// Interactions over a fresh SQLite store whose submissions are validated by `v` (no HTTP).
fn interactions(v: Arc<Validator>) -> (tempfile::TempDir, tsunagu_interaction::Interactions) {
    use tsunagu_interaction::{InteractionConfig, Interactions};
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let fhir =
        Interactions::new(store, Arc::new(tsunagu_server::StructureCheck::default()), InteractionConfig::default())
            .with_profile_validation(Arc::new(tsunagu_server::ProfileCheck {
                validator: v,
                required: Default::default(),
            }));
    (dir, fhir)
}

/// Retention: past `days` the items go, LTS items only past `lts_days`, the submission
/// with its last item; every deletion is audited as `operator:purge`.
#[test]
fn retention_purge() {
    use tsunagu_interaction::clins::Retention;
    use tsunagu_interaction::RequestContext;
    let Some(v) = validator() else { return };
    let Some(referral) = example("Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    let (_dir, fhir) = interactions(v);
    let ctx = RequestContext::new("http://localhost");
    let bundle = fhir.submit(referral.clone(), &ctx).unwrap().version;
    let held = |ty: &str| {
        let page = fhir.search(Some(ty), &tsunagu_interaction::SearchParams::parse("_count=100"), &ctx).unwrap();
        page["entry"].as_array().map_or(0, |e| e.iter().filter(|e| e["resource"]["resourceType"] == ty).count())
    };
    assert_eq!((held("Condition"), held("AllergyIntolerance")), (5, 3));
    let retention = Retention { days: Some(30), lts_days: Some(3650) };
    let day = 86_400_000;
    // Within the period: nothing.
    let r = fhir.purge_expired(retention, bundle.last_updated_ms + 10 * day).unwrap();
    assert_eq!((r.items_deleted, r.submissions_deleted), (0, 0));
    // Past it: all but the three LTS allergies; the submission stays for them.
    let r = fhir.purge_expired(retention, bundle.last_updated_ms + 40 * day).unwrap();
    assert_eq!(r.submissions_deleted, 0);
    assert_eq!(r.items_deleted, referral["entry"].as_array().unwrap().len() - 3);
    assert_eq!((held("Condition"), held("AllergyIntolerance"), held("Bundle")), (0, 3, 1));
    // Past the long-term period: everything.
    let r = fhir.purge_expired(retention, bundle.last_updated_ms + 4000 * day).unwrap();
    assert_eq!((r.items_deleted, r.submissions_deleted), (3, 1));
    assert_eq!((held("AllergyIntolerance"), held("Bundle")), (0, 0));
    let audit = fhir.store().audit_chain(0, 1000).unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.agent == "operator:purge").count(),
        2,
        "one record per purged submission and run"
    );
}

/// Group commit (`commit_submissions`, used by `tsunagu import` and `bench clins`): several
/// submissions in one transaction behave as if committed one after another, and one that
/// fails is reported alone while the others are stored.
#[test]
fn group_commit() {
    use tsunagu_interaction::RequestContext;
    let Some(v) = validator() else { return };
    let (Some(obs), Some(referral)) = (
        example("Bundle-Bundle-CLINS-Observations-Example-01.json"),
        example("Bundle-Bundle-CLINS-Referral-Example-01.json"),
    ) else {
        return;
    };
    let (_dir, fhir) = interactions(v);
    let ctx = RequestContext::new("http://localhost");
    let count = |query: &str| {
        let page = fhir.search(Some("Observation"), &tsunagu_interaction::SearchParams::parse(query), &ctx).unwrap();
        page["total"].as_u64().unwrap()
    };

    // A replacement of the first submission inside the same group sees the first.
    let mut changed = obs.clone();
    changed["entry"].as_array_mut().unwrap().pop();
    let group: Vec<_> = [obs.clone(), referral.clone(), changed]
        .into_iter()
        .map(|b| fhir.prepare_submission(b).expect("valid example"))
        .collect();
    let results: Vec<_> = fhir.commit_submissions(group, &ctx).into_iter().map(Result::unwrap).collect();
    assert!(results[0].created && results[1].created && !results[2].created);
    assert_eq!(results[2].version.id, results[0].version.id);
    assert_eq!(results[2].version.version, 2);
    let in_referral =
        referral["entry"].as_array().unwrap().iter().filter(|e| e["resource"]["resourceType"] == "Observation").count()
            as u64;
    assert_eq!(count("_total=accurate"), 3 + in_referral, "the replacement dropped one of the four Observations");

    // Two plain Bundles hold the identifier of another submission: that one fails with
    // several matches; the rest of its group is stored all the same.
    let mut other = obs.clone();
    other["identifier"]["value"] = json!("1318814790^2024^0123-IDa-other");
    for _ in 0..2 {
        let plain = json!({"resourceType": "Bundle", "type": "collection", "identifier": other["identifier"]});
        fhir.create("Bundle", plain, None, &ctx).unwrap();
    }
    let mut third = obs.clone();
    third["identifier"]["value"] = json!("1318814790^2024^0123-IDa-third");
    let group: Vec<_> = [obs, other, third].into_iter().map(|b| fhir.prepare_submission(b).unwrap()).collect();
    let results = fhir.commit_submissions(group, &ctx);
    assert!(results[0].as_ref().is_ok_and(|w| !w.created), "the held submission, changed back");
    assert!(results[1].is_err(), "several Bundles match its identifier");
    assert!(results[2].as_ref().is_ok_and(|w| w.created));
    assert_eq!(count("_total=accurate"), 8 + in_referral);
}

/// A summary whose section could not hold every item (here `max_page_bytes` left no room
/// for the lab results) says so in the section's narrative instead of passing for whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_section_cut_by_a_limit_says_so() {
    let Some(s) = server_with(|c| c.limits.max_page_bytes = 3_000).await else { return };
    let Some(observations) = example("Bundle-Bundle-CLINS-Observations-Example-01.json") else { return };
    assert_eq!(s.post_json("Bundle", &observations).await.status(), 201);
    let member = "00012345:あいう:１８７:01";
    let r = s.get(&format!("Patient/$summary?identifier={}", encoded(&format!("{INSURANCE}|{member}")))).await;
    assert_eq!(r.status(), 200);
    let summary = json(r).await;
    let sections = summary["entry"][0]["resource"]["section"].as_array().unwrap().clone();
    let labs = sections.iter().find(|s| s["code"]["coding"][0]["code"] == "620").unwrap();
    assert!(labs["entry"].as_array().map_or(0, Vec::len) < 4, "{labs}");
    assert!(labs["emptyReason"].is_null(), "{labs}");
    assert!(labs["text"]["div"].as_str().unwrap().contains("max_page_bytes"), "{labs}");
}
