//! JP-CLINS submissions over HTTP: validated whole, split into searchable items,
//! replaced by identifier (identical content writes nothing), withdrawn with every item,
//! and never written piecemeal through other paths.

mod common;

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
    let v = validator()?;
    let submissions = Arc::new(tsunagu_server::ProfileCheck { validator: v, required: Default::default() });
    Some(
        start_adjusted(
            |_| {},
            Arc::new(tsunagu_server::StructureCheck::default()),
            move |fhir| fhir.with_profile_validation(submissions),
        )
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
    // JP_Observation_LabResult_eCS needs a specimen; base R4 does not.
    invalid["entry"][1]["resource"].as_object_mut().unwrap().remove("specimen");
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
