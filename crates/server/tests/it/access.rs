//! Access control end to end, over HTTP with authorization required: who may do what
//! (role × interaction × scope, allowed and denied), the leaks a naive implementation has
//! (`_revinclude`, `$everything`, system history, `Patient/*`, batch and transaction
//! entries, `_has` and chain probing, totals), the audit trail, and the token endpoint.

use crate::common;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tsunagu_auth::{Authority, Client, Grant, SigningKey};

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

struct World {
    server: common::TestServer,
    authority: Arc<Authority>,
    _auth_dir: tempfile::TempDir,
    a: String,
    b: String,
    obs_a_lab: String,
    obs_a_vital: String,
    obs_b_lab: String,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

impl World {
    fn token(&self, scope: &str, patient: Option<&str>) -> String {
        self.token_for("app", scope, patient)
    }

    fn token_for(&self, client: &str, scope: &str, patient: Option<&str>) -> String {
        let grant = Grant {
            subject: client.into(),
            client_id: client.into(),
            scope: scope.into(),
            patient: patient.map(str::to_string),
            ..Default::default()
        };
        self.authority.issuer().issue(&grant, now()).unwrap()
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.server.client.request(method, self.server.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/fhir+json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, Method::GET, path, None).await
    }
}

/// Ids of the entries of a Bundle, as `Type/id`, with their search mode.
fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let r = &e["resource"];
            r["id"].as_str().map(|id| format!("{}/{id}", r["resourceType"].as_str().unwrap_or("")))
        })
        .filter(|r| !r.starts_with("OperationOutcome/"))
        .collect()
}

async fn world() -> World {
    let auth_dir = tempfile::tempdir().unwrap();
    let mut authority = None;
    let server = common::start_with(|cfg| {
        let a = Arc::new(Authority::open(auth_dir.path(), &cfg.base_url, Default::default()).unwrap());
        cfg.authorization = tsunagu_server::Authorization::Required(a.clone());
        cfg.audit_flush = std::time::Duration::from_millis(10);
        authority = Some(a);
    })
    .await;
    let mut w = World {
        server,
        authority: authority.unwrap(),
        _auth_dir: auth_dir,
        a: String::new(),
        b: String::new(),
        obs_a_lab: String::new(),
        obs_a_vital: String::new(),
        obs_b_lab: String::new(),
    };
    let admin = w.token("system/*.cruds", None);
    let create = |v: Value| {
        let admin = admin.clone();
        let w = &w;
        async move {
            let ty = v["resourceType"].as_str().unwrap().to_string();
            let (s, body) = w.call(&admin, Method::POST, &ty, Some(&v)).await;
            assert_eq!(s, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        }
    };
    let a = create(json!({"resourceType": "Patient", "name": [{"family": "Aoki"}]})).await;
    let b = create(json!({"resourceType": "Patient", "name": [{"family": "Baba"}]})).await;
    let obs = |p: &str, cat: &str, code: &str| {
        json!({"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": cat}]}],
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": format!("Patient/{p}")}})
    };
    let obs_a_lab = create(obs(&a, "laboratory", "2345-7")).await;
    let obs_a_vital = create(obs(&a, "vital-signs", "8867-4")).await;
    let obs_b_lab = create(obs(&b, "laboratory", "9999-1")).await;
    create(json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{b}")},
                  "code": {"coding": [{"system": "http://example.org/dx", "code": "secret"}], "text": "secret diagnosis"}}))
    .await;
    create(json!({"resourceType": "Provenance", "recorded": "2024-01-01T00:00:00Z",
                  "target": [{"reference": format!("Observation/{obs_b_lab}")}],
                  "agent": [{"who": {"display": "lab"}}]}))
    .await;
    w.a = a;
    w.b = b;
    (w.obs_a_lab, w.obs_a_vital, w.obs_b_lab) = (obs_a_lab, obs_a_vital, obs_b_lab);
    w
}

#[tokio::test]
async fn requests_need_a_good_token() {
    let w = world().await;
    let r = w.server.client.get(w.server.url("Patient")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["issue"][0]["code"], "login");
    let ja = w.server.client.get(w.server.url("Patient")).header("accept-language", "ja").send().await.unwrap();
    let oo: Value = ja.json().await.unwrap();
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("アクセストークン"));
    // Public: the CapabilityStatement and the SMART configuration.
    assert_eq!(w.server.client.get(w.server.url("metadata")).send().await.unwrap().status(), 200);
    let smart: Value = w
        .server
        .client
        .get(w.server.url(".well-known/smart-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(smart["token_endpoint"], format!("{}/auth/token", w.server.base));

    let good = w.token("system/*.rs", None);
    let (s, _) = w.get(&good, "Patient").await;
    assert_eq!(s, 200);
    // A tampered token: one character of the payload changed.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut payload = parts[1].clone().into_bytes();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload).unwrap();
    let tampered = parts.join(".");
    // alg none, and HS256 keyed with the server's public key.
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, good.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"none","typ":"JWT"}"#),
        good.split('.').nth(1).unwrap()
    );
    let public = w.authority.jwks().to_string();
    let hs =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(public.as_bytes()))
            .unwrap();
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(now() - 1);
    for (what, t) in [("tampered", tampered), ("alg none", none), ("HS256 with the public key", hs)] {
        let r = w.server.client.get(w.server.url("Patient")).bearer_auth(&t).send().await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"), "{what}");
    }
}

#[tokio::test]
async fn a_patient_app_sees_only_its_patient() {
    let w = world().await;
    let t = w.token("patient/*.rs", Some(&w.a));
    assert_eq!(w.get(&t, &format!("Patient/{}", w.a)).await.0, 200);
    assert_eq!(w.get(&t, &format!("Patient/{}", w.b)).await.0, 403);
    assert_eq!(w.get(&t, &format!("Observation/{}", w.obs_b_lab)).await.0, 403);
    assert_eq!(w.get(&t, &format!("Observation/{}/_history/1", w.obs_b_lab)).await.0, 403);
    let (s, bundle) = w.get(&t, "Observation?_total=accurate").await;
    assert_eq!(s, 200);
    assert_eq!(bundle["total"], 2, "the total counts only what the patient may see");
    assert!(ids(&bundle).iter().all(|r| r != &format!("Observation/{}", w.obs_b_lab)));
    // Searching by its own patient needs no second condition; by another patient finds nothing.
    let (_, own) = w.get(&t, &format!("Observation?subject=Patient/{}&_total=accurate", w.a)).await;
    assert_eq!(own["total"], 2);
    let (_, other) = w.get(&t, &format!("Observation?subject=Patient/{}&_total=accurate", w.b)).await;
    assert_eq!(other["total"], 0);
    let (_, either) = w.get(&t, &format!("Observation?subject=Patient/{},Patient/{}&_total=accurate", w.a, w.b)).await;
    assert_eq!(either["total"], 2);
    // Patient search: only the patient itself, whatever the criteria.
    let (_, bundle) = w.get(&t, "Patient?family=Baba&_total=accurate").await;
    assert_eq!(bundle["total"], 0);
    // _revinclude of a Provenance that targets another patient's Observation.
    let (_, bundle) = w.get(&t, "Observation?_revinclude=Provenance:target").await;
    assert!(ids(&bundle).iter().all(|r| !r.starts_with("Provenance/")), "{bundle}");
    // $everything: its own, never another's.
    let (s, bundle) = w.get(&t, &format!("Patient/{}/$everything", w.a)).await;
    assert_eq!(s, 200);
    assert!(ids(&bundle).iter().all(|r| !r.contains(&w.b) && !r.starts_with("Condition/")), "{bundle}");
    assert_eq!(w.get(&t, &format!("Patient/{}/$everything", w.b)).await.0, 403);
    // Compartment search on another patient: nothing.
    let (_, bundle) = w.get(&t, &format!("Patient/{}/*", w.b)).await;
    assert!(ids(&bundle).is_empty(), "{bundle}");
    // System history: only its own versions, and no total that counts the others.
    let (s, bundle) = w.get(&t, "_history").await;
    assert_eq!(s, 200);
    assert!(bundle.get("total").is_none());
    let seen = ids(&bundle);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| !r.contains(&w.b) && !r.starts_with("Condition/") && !r.starts_with("Provenance/")));
    // Probing through a chain or _has finds nothing outside the compartment.
    let (_, bundle) = w.get(&t, "Observation?subject:Patient.family=Baba").await;
    assert!(ids(&bundle).is_empty());
    // Read-only scopes: no writes.
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": format!("Patient/{}", w.a)}});
    assert_eq!(w.call(&t, Method::POST, "Observation", Some(&obs)).await.0, 403);
    // System-level search over every type is for callers that reach each type whole.
    assert_eq!(w.get(&t, "?_type=Condition").await.0, 403);
}

#[tokio::test]
async fn a_patient_writer_cannot_write_into_another_compartment() {
    let w = world().await;
    let t = w.token("patient/Observation.cru", Some(&w.a));
    let mine = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": format!("Patient/{}", w.a)}});
    assert_eq!(w.call(&t, Method::POST, "Observation", Some(&mine)).await.0, 201);
    let theirs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                        "subject": {"reference": format!("Patient/{}", w.b)}});
    assert_eq!(w.call(&t, Method::POST, "Observation", Some(&theirs)).await.0, 403);
    // Moving its own Observation to another patient, or overwriting another's.
    let mut moved = theirs.clone();
    moved["id"] = json!(w.obs_a_lab);
    assert_eq!(w.call(&t, Method::PUT, &format!("Observation/{}", w.obs_a_lab), Some(&moved)).await.0, 403);
    let mut overwrite = mine.clone();
    overwrite["id"] = json!(w.obs_b_lab);
    assert_eq!(w.call(&t, Method::PUT, &format!("Observation/{}", w.obs_b_lab), Some(&overwrite)).await.0, 403);
    // No delete permission.
    assert_eq!(w.call(&t, Method::DELETE, &format!("Observation/{}", w.obs_a_lab), None).await.0, 403);
    // A transaction with one entry outside: nothing is written.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": mine, "request": {"method": "POST", "url": "Observation"}},
        {"resource": theirs, "request": {"method": "POST", "url": "Observation"}}]});
    let (s, _) = w.call(&t, Method::POST, "", Some(&tx)).await;
    assert_eq!(s, 403);
    let admin = w.token("system/*.rs", None);
    let (_, all) = w.get(&admin, &format!("Observation?subject=Patient/{}&_total=accurate", w.b)).await;
    assert_eq!(all["total"], 1, "the transaction wrote nothing");
}

#[tokio::test]
async fn batch_entries_are_each_checked() {
    let w = world().await;
    let t = w.token("patient/*.rs", Some(&w.a));
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{}", w.a)}},
        {"request": {"method": "GET", "url": format!("Patient/{}", w.b)}},
        {"request": {"method": "GET", "url": "Condition"}},
        {"request": {"method": "DELETE", "url": format!("Patient/{}", w.a)}}]});
    let (s, out) = w.call(&t, Method::POST, "", Some(&batch)).await;
    assert_eq!(s, 200, "{out}");
    let status: Vec<&str> =
        out["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
    assert!(status[0].starts_with("200"), "{status:?}");
    assert!(status[1].starts_with("403"), "{status:?}");
    // Conditions of patient A: none; B's must not appear.
    assert!(!out["entry"][2].to_string().contains("secret diagnosis"), "{}", out["entry"][2]);
    assert!(status[3].starts_with("403"), "{status:?}");
}

/// A conditional create in a transaction is a create even when it finds its match and
/// writes nothing, as over REST: a read-only token gets 403, not the match.
#[tokio::test]
async fn conditional_entries_need_the_permissions_of_their_interaction() {
    let w = world().await;
    let admin = w.token("system/*.cruds", None);
    let org = json!({"resourceType": "Organization", "identifier": [{"system": "urn:x", "value": "o1"}]});
    let create = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": org, "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:x|o1"}}]});
    let (s, out) = w.call(&admin, Method::POST, "", Some(&create)).await;
    assert_eq!(s, 200, "{out}");
    let reader = w.token("patient/*.rs", Some(&w.a));
    let (s, out) = w.call(&reader, Method::POST, "", Some(&create)).await;
    assert_eq!(s, 403, "{out}");
    assert!(!out.to_string().contains("Organization/"), "{out}");
    let delete = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Organization?identifier=urn:x|nothing"}}]});
    assert_eq!(w.call(&reader, Method::POST, "", Some(&delete)).await.0, 403);
}

#[tokio::test]
async fn restricted_scopes_filter_reads_searches_and_totals() {
    let w = world().await;
    let t = w.token(&format!("system/Observation.rs?category={LAB}"), None);
    let (s, bundle) = w.get(&t, "Observation?_total=accurate").await;
    assert_eq!(s, 200);
    assert_eq!(bundle["total"], 2, "{bundle}");
    assert_eq!(w.get(&t, &format!("Observation/{}", w.obs_a_lab)).await.0, 200);
    assert_eq!(w.get(&t, &format!("Observation/{}", w.obs_a_vital)).await.0, 403);
    let (_, none) = w.get(&t, "Observation?category=vital-signs&_total=accurate").await;
    assert_eq!(none["total"], 0);
    // Types outside the scope: refused, and never reached through _include or a chain.
    assert_eq!(w.get(&t, "Patient").await.0, 403);
    let (_, inc) = w.get(&t, "Observation?_include=Observation:subject").await;
    assert!(ids(&inc).iter().all(|r| r.starts_with("Observation/")), "{inc}");
    assert_eq!(w.get(&t, "Observation?subject:Patient.family=Aoki").await.0, 403);
    assert_eq!(w.get(&t, "Patient?_has:Observation:subject:code=9999-1").await.0, 403);
    // Type and instance history show only what the restriction allows.
    let (_, h) = w.get(&t, "Observation/_history").await;
    assert!(h.get("total").is_none());
    assert!(!ids(&h).contains(&format!("Observation/{}", w.obs_a_vital)));
    assert_eq!(w.get(&t, &format!("Observation/{}/_history", w.obs_a_vital)).await.0, 403);
}

#[tokio::test]
async fn has_probing_is_confined_to_what_may_be_searched() {
    let w = world().await;
    // May search patients, not conditions: a _has through Condition is refused.
    let t = w.token("system/Patient.rs", None);
    assert_eq!(w.get(&t, "Patient?_has:Condition:subject:code=secret").await.0, 403);
    let both = w.token("system/Patient.rs system/Condition.rs", None);
    let (_, b) = w.get(&both, "Patient?_has:Condition:subject:code=secret").await;
    assert_eq!(ids(&b), vec![format!("Patient/{}", w.b)]);
    // Patient/$everything over all patients: only for those who reach every type whole.
    assert_eq!(w.get(&t, "Patient/$everything").await.0, 200);
    let (_, e) = w.get(&t, "Patient/$everything").await;
    assert!(ids(&e).iter().all(|r| r.starts_with("Patient/")), "{e}");
}

#[tokio::test]
async fn the_audit_trail_records_requests_and_only_auditors_read_it() {
    let w = world().await;
    let reader = w.token_for("reader", "system/*.rs", None);
    let (s, _) = w.get(&reader, &format!("Patient/{}", w.a)).await;
    assert_eq!(s, 200);
    assert_eq!(w.get(&reader, "AuditEvent").await.0, 403, "* does not reach AuditEvent");
    let _ = w.server.client.get(w.server.url("Patient")).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let auditor = w.token_for("auditor", "user/AuditEvent.rs", None);
    let (s, b) = w.get(&auditor, &format!("AuditEvent?entity=Patient/{}&agent=client:reader", w.a)).await;
    assert_eq!(s, 200);
    let events = b["entry"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{b}");
    let e = &events[0]["resource"];
    assert_eq!(e["subtype"][0]["code"], "read");
    assert_eq!(e["outcome"], "0");
    assert_eq!(e["agent"][0]["network"]["address"], "127.0.0.1");
    // The writes of setting up were recorded in their transactions; the 401 too.
    let (_, creates) = w.get(&auditor, "AuditEvent?subtype=create&_count=100").await;
    assert_eq!(creates["entry"].as_array().unwrap().len(), 7);
    let (_, refused) = w.get(&auditor, "AuditEvent?agent=anonymous").await;
    assert!(refused["entry"].as_array().is_some_and(|e| e.iter().any(|x| x["resource"]["outcome"] == "4")));
    // Read by id; never changed or deleted through the API.
    let id = e["id"].as_str().unwrap();
    assert_eq!(w.get(&auditor, &format!("AuditEvent/{id}")).await.0, 200);
    let admin = w.token("system/*.cruds system/AuditEvent.cruds", None);
    let mut changed = e.clone();
    changed["outcome"] = json!("8");
    assert_eq!(w.call(&admin, Method::PUT, &format!("AuditEvent/{id}"), Some(&changed)).await.0, 405);
    assert_eq!(w.call(&admin, Method::DELETE, &format!("AuditEvent/{id}"), None).await.0, 405);
    assert_eq!(w.call(&admin, Method::POST, "AuditEvent", Some(&changed)).await.0, 405);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": changed, "request": {"method": "PUT", "url": format!("AuditEvent/{id}")}}]});
    assert_eq!(w.call(&admin, Method::POST, "", Some(&tx)).await.0, 405);
    // A patient sees its own patient's trail only.
    let p = w.token("patient/AuditEvent.rs", Some(&w.a));
    let (_, mine) = w.get(&p, "AuditEvent?_count=100").await;
    for e in mine["entry"].as_array().into_iter().flatten() {
        assert!(e.to_string().contains(&w.a), "{e}");
    }
}

fn client_key() -> (String, Value) {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    let jwk = SigningKey::from_pem(&pem).unwrap().public_jwk();
    (pem, jwk)
}

fn assertion(pem: &str, kid: &str, client: &str, aud: &str, jti: &str) -> String {
    let mut h = Header::new(Algorithm::ES384);
    h.kid = Some(kid.to_string());
    let claims = json!({"iss": client, "sub": client, "aud": aud, "exp": now() + 120, "jti": jti});
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
}

#[tokio::test]
async fn backend_services_get_tokens_within_their_registration() {
    let w = world().await;
    let (pem, jwk) = client_key();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let client = Client {
        id: "lab-system".into(),
        jwks: Some(json!({"keys": [jwk]})),
        scope: "system/Observation.rs system/Patient.r".into(),
        role: Some("institution".into()),
        ..Default::default()
    };
    w.authority.registry().add_client(&client, now()).unwrap();
    let endpoint = w.authority.token_endpoint();
    let ask = |scope: &str, a: &str| {
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_assertion_type", tsunagu_auth::CLIENT_ASSERTION_TYPE),
            ("client_assertion", a),
        ];
        w.server.client.post(w.server.url("auth/token")).form(&form).send()
    };
    let good = assertion(&pem, &kid, "lab-system", &endpoint, "jti-1");
    let r = ask("system/Observation.rs", &good).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(w.get(&token, "Observation").await.0, 200);
    assert_eq!(w.get(&token, "Condition").await.0, 403);
    // Replayed assertion, scopes beyond the registration, wrong audience.
    let replay: Value = ask("system/Observation.rs", &good).await.unwrap().json().await.unwrap();
    assert_eq!(replay["error"], "invalid_client");
    let wide = assertion(&pem, &kid, "lab-system", &endpoint, "jti-2");
    let r = ask("system/*.cruds", &wide).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let other_aud = assertion(&pem, &kid, "lab-system", "https://elsewhere/token", "jti-3");
    assert_eq!(ask("system/Observation.rs", &other_aud).await.unwrap().status(), 401);
    // Disabling the client: no new tokens, and the one it holds stops working at once.
    w.authority.registry().disable_client("lab-system").unwrap();
    let r = w.server.client.get(w.server.url("Observation")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let later = assertion(&pem, &kid, "lab-system", &endpoint, "jti-4");
    assert_eq!(ask("system/Observation.rs", &later).await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_person_signs_in_with_password_and_totp_and_pkce() {
    let w = world().await;
    let app = Client {
        id: "viewer".into(),
        scope: "user/*.rs patient/*.rs openid fhirUser".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        ..Default::default()
    };
    w.authority.registry().add_client(&app, now()).unwrap();
    let uri = w
        .authority
        .registry()
        .with_conn(|c| {
            tsunagu_auth::UserStore::add_user(c, "dr-sato", "correct horse battery", "doctor", None, None, "")
        })
        .unwrap();
    let secret_b32 = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let secret = tsunagu_auth::base32_decode(secret_b32).unwrap();
    let verifier = "x".repeat(50);
    let challenge = tsunagu_auth::challenge_s256(&verifier);
    let params = [
        ("response_type", "code"),
        ("client_id", "viewer"),
        ("redirect_uri", "https://app.example/cb"),
        ("scope", "user/Patient.rs user/Condition.rs"),
        ("state", "s-123"),
        ("aud", w.server.base.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = w.server.client.get(w.server.url("auth/authorize")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"));
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |password: &str, code: String| {
        let mut form: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        form.push(("user_id".into(), "dr-sato".into()));
        form.push(("password".into(), password.into()));
        form.push(("totp".into(), code));
        no_redirect.post(w.server.url("auth/authorize")).form(&form).send()
    };
    let step = now() / 30;
    let code_now = format!("{:06}", tsunagu_auth::totp_code_at(&secret, step));
    assert_eq!(login("wrong password!!", code_now.clone()).await.unwrap().status(), 401);
    let r = login("correct horse battery", code_now).await.unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://app.example/cb?code=") && location.ends_with("&state=s-123"), "{location}");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let redeem = |verifier: String| {
        let form = [
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("redirect_uri", "https://app.example/cb".to_string()),
            ("client_id", "viewer".to_string()),
            ("code_verifier", verifier),
        ];
        w.server.client.post(w.server.url("auth/token")).form(&form).send()
    };
    let r = redeem(verifier.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["scope"], "user/Patient.rs user/Condition.rs");
    assert_eq!(w.get(&token, "Condition").await.0, 200);
    assert_eq!(w.get(&token, "Observation").await.0, 403);
    // The code works once.
    assert_eq!(redeem(verifier).await.unwrap().status(), 400);
}

#[tokio::test]
async fn a_client_registered_by_jwks_url_may_rotate_its_keys() {
    let w = world().await;
    let (pem1, jwk1) = client_key();
    let (pem2, jwk2) = client_key();
    let published = Arc::new(std::sync::Mutex::new(json!({"keys": [jwk1.clone()]})));
    let served = published.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let v = served.lock().unwrap().clone();
            async move { axum::Json(v) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client =
        Client { id: "rotating".into(), jwks_url: Some(url), scope: "system/Patient.rs".into(), ..Default::default() };
    w.authority.registry().add_client(&client, now()).unwrap();
    let endpoint = w.authority.token_endpoint();
    let ask = |a: String| {
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("scope", "system/Patient.rs".to_string()),
            ("client_assertion_type", tsunagu_auth::CLIENT_ASSERTION_TYPE.to_string()),
            ("client_assertion", a),
        ];
        w.server.client.post(w.server.url("auth/token")).form(&form).send()
    };
    let kid1 = jwk1["kid"].as_str().unwrap();
    let kid2 = jwk2["kid"].as_str().unwrap();
    assert_eq!(ask(assertion(&pem1, kid1, "rotating", &endpoint, "r-1")).await.unwrap().status(), 200);
    // A key the client has not published is refused.
    assert_eq!(ask(assertion(&pem2, kid2, "rotating", &endpoint, "r-2")).await.unwrap().status(), 401);
    // Published now; the kept set was fetched less than 30 s ago, so it is not fetched
    // again yet: refused until then (an attacker cannot make the server fetch at will).
    *published.lock().unwrap() = json!({"keys": [jwk1, jwk2]});
    assert_eq!(ask(assertion(&pem2, kid2, "rotating", &endpoint, "r-3")).await.unwrap().status(), 401);
}

#[tokio::test]
async fn writes_and_patches_tell_nothing_about_what_is_hidden() {
    let w = world().await;
    let reader = w.token("patient/*.rs", Some(&w.a));
    let probe = json!([{"op": "test", "path": "/status", "value": "final"}]);
    let patch = |t: &str, id: &str| {
        w.server
            .client
            .patch(w.server.url(&format!("Observation/{id}")))
            .bearer_auth(t)
            .header("content-type", "application/json-patch+json")
            .body(probe.to_string())
            .send()
    };
    assert_eq!(patch(&reader, &w.obs_b_lab).await.unwrap().status(), 403, "no update scope at all");
    let writer = w.token("patient/Observation.rus", Some(&w.a));
    assert_eq!(
        patch(&writer, &w.obs_b_lab).await.unwrap().status(),
        403,
        "another patient's: refused before the test op"
    );
    assert_eq!(patch(&writer, &w.obs_a_lab).await.unwrap().status(), 200);
    // If-Match on a hidden resource: 403, not a 412 that tells its version.
    let mine = json!({"resourceType": "Observation", "id": w.obs_b_lab, "status": "final", "code": {"text": "x"},
                      "subject": {"reference": format!("Patient/{}", w.a)}});
    let r = w
        .server
        .client
        .put(w.server.url(&format!("Observation/{}", w.obs_b_lab)))
        .bearer_auth(&writer)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"7\"")
        .body(mine.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A deleted resource of someone else's cannot be taken over by a restricted creator.
    let admin = w.token("system/*.cruds", None);
    assert_eq!(w.call(&admin, Method::DELETE, &format!("Observation/{}", w.obs_b_lab), None).await.0, 204);
    let creator = w.token("patient/Observation.cru", Some(&w.a));
    assert_eq!(w.call(&creator, Method::PUT, &format!("Observation/{}", w.obs_b_lab), Some(&mine)).await.0, 403);
    // Reading what does not exist or was deleted says no more than reading what is hidden.
    assert_eq!(w.get(&reader, &format!("Observation/{}", w.obs_b_lab)).await.0, 403);
    assert_eq!(w.get(&reader, "Observation/no-such-id").await.0, 403);
    // Shared types are read, never written, through patient/ scopes.
    let all = w.token("patient/*.cruds", Some(&w.a));
    assert_eq!(w.get(&all, "Organization").await.0, 200);
    let org = json!({"resourceType": "Organization", "name": "Evil clinic"});
    assert_eq!(w.call(&all, Method::POST, "Organization", Some(&org)).await.0, 403);
    // _contained scans containers of every type: not for restricted callers.
    assert_eq!(w.get(&all, "Medication?_contained=true").await.0, 403);
}

#[tokio::test]
async fn iterated_includes_never_walk_through_hidden_resources() {
    let w = world().await;
    let admin = w.token("system/*.cruds", None);
    let (_, doc) = w
        .call(
            &admin,
            Method::POST,
            "Practitioner",
            Some(&json!({"resourceType": "Practitioner", "name": [{"family": "Dr"}]})),
        )
        .await;
    let doc = doc["id"].as_str().unwrap().to_string();
    let (_, med) = w
        .call(
            &admin,
            Method::POST,
            "Medication",
            Some(&json!({"resourceType": "Medication", "code": {"text": "secret drug"}})),
        )
        .await;
    let med = med["id"].as_str().unwrap().to_string();
    let rx = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                    "medicationReference": {"reference": format!("Medication/{med}")},
                    "subject": {"reference": format!("Patient/{}", w.b)},
                    "requester": {"reference": format!("Practitioner/{doc}")}});
    assert_eq!(w.call(&admin, Method::POST, "MedicationRequest", Some(&rx)).await.0, 201);
    let t = w.token("patient/*.rs", Some(&w.a));
    let q = format!(
        "Practitioner?_id={doc}&_revinclude:iterate=MedicationRequest:requester&_include:iterate=MedicationRequest:medication"
    );
    let (s, b) = w.get(&t, &q).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&b), vec![format!("Practitioner/{doc}")], "{b}");
    // The same search by someone who sees everything reaches the drug.
    let (_, all) = w.get(&admin, &q).await;
    assert!(ids(&all).contains(&format!("Medication/{med}")));
}

#[tokio::test]
async fn a_batch_is_recorded_with_each_entry() {
    let w = world().await;
    let t = w.token_for("batcher", "system/*.cruds", None);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{}", w.b)}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
    assert_eq!(w.call(&t, Method::POST, "", Some(&batch)).await.0, 200);
    let form = format!("family=Baba&_id={}", w.b);
    let r = w
        .server
        .client
        .post(w.server.url("Patient/_search"))
        .bearer_auth(&t)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let auditor = w.token_for("auditor", "user/AuditEvent.rs", None);
    let (_, b) = w.get(&auditor, "AuditEvent?agent=client:batcher&_count=50").await;
    let text = b.to_string();
    assert!(text.contains(&format!("GET_Patient/{}", w.b)), "the batch's read is named: {text}");
    assert!(text.contains("family=Baba"), "POST _search parameters are recorded: {text}");
}

/// A PUT of the current content writes nothing, yet must be one the caller may make: a
/// caller that may delete a lab result but update only vital signs gets 403 for it, as
/// for a change, so the answer cannot confirm what the resource holds.
#[tokio::test]
async fn an_update_that_changes_nothing_is_still_checked() {
    let w = world().await;
    let admin = w.token("system/*.cruds", None);
    let vitals = "system/Observation.u?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
    let t = w.token(&format!("{vitals} system/Observation.d"), None);
    let (_, lab) = w.get(&admin, &format!("Observation/{}", w.obs_a_lab)).await;
    let (s, body) = w.call(&t, Method::PUT, &format!("Observation/{}", w.obs_a_lab), Some(&lab)).await;
    assert_eq!(s, 403, "{body}");
    let (_, vital) = w.get(&admin, &format!("Observation/{}", w.obs_a_vital)).await;
    let (s, body) = w.call(&t, Method::PUT, &format!("Observation/{}", w.obs_a_vital), Some(&vital)).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["meta"]["versionId"], vital["meta"]["versionId"], "nothing was written");
}

/// A write the token allows on no resource of the type is refused before its body is read:
/// 403, not the 400 (or 413) the body would earn. (Bodies stay small: a server that answers
/// before reading a large body may reset the connection under a client still sending.)
#[tokio::test]
async fn writes_no_scope_allows_are_refused_before_the_body() {
    let w = world().await;
    let reader = w.token("system/*.rs", None);
    let send = |method: Method, path: &str, token: &str, body: Vec<u8>| {
        let req = w.server.client.request(method, w.server.url(path)).bearer_auth(token);
        req.header("content-type", "application/fhir+json").body(body).send()
    };
    for (method, path) in [
        (Method::POST, "Observation".to_string()),
        (Method::PUT, format!("Observation/{}", w.obs_a_lab)),
        (Method::PATCH, format!("Observation/{}", w.obs_a_lab)),
        (Method::PUT, "Observation?code=2345-7".to_string()),
    ] {
        let r = send(method.clone(), &path, &reader, b"not json".to_vec()).await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path} with a malformed body");
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    // A caller who may write gets the body's own answer; reads and searches by POST are not writes.
    let writer = w.token("system/Observation.cu", None);
    let r = send(Method::POST, "Observation", &writer, b"not json".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = w.server.client.post(w.server.url("Observation/_search")).bearer_auth(&reader);
    let r = r.header("content-type", "application/x-www-form-urlencoded").body("code=2345-7").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A Bundle's entries are checked one by one: the Bundle itself is read.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Observation/{}", w.obs_a_lab)}}]});
    let (s, body) = w.call(&reader, Method::POST, "", Some(&batch)).await;
    assert_eq!(s, 200, "{body}");
}

/// R4 Binary.securityContext: a patient's app reads a Binary whose context it may read
/// (its own Patient, a resource in its compartment), and no other; scopes that do not name
/// Binary reach none; searches of Binary stay out of reach.
#[tokio::test]
async fn a_binary_is_read_as_its_security_context() {
    let w = world().await;
    let admin = w.token("system/*.cruds", None);
    let binary = |context: Option<String>| {
        let mut b = json!({"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="});
        if let Some(c) = context {
            b["securityContext"] = json!({ "reference": c });
        }
        b
    };
    let (s, org) = w.call(&admin, Method::POST, "Organization", Some(&json!({"resourceType": "Organization"}))).await;
    assert_eq!(s, 201, "{org}");
    let org = org["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for context in [
        Some(format!("Patient/{}", w.a)),
        Some(format!("Observation/{}/_history/1", w.obs_a_lab)),
        Some(format!("Patient/{}", w.b)),
        Some(format!("Observation/{}", w.obs_b_lab)),
        None,
        Some(format!("http://elsewhere.example/fhir/Patient/{}", w.a)),
        // Everyone reads an Organization: as a context it grants nothing.
        Some(format!("Organization/{org}")),
    ] {
        let (s, body) = w.call(&admin, Method::POST, "Binary", Some(&binary(context))).await;
        assert_eq!(s, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let t = w.token("patient/*.rs", Some(&w.a));
    let expected = [200, 200, 403, 403, 403, 403, 403];
    for (id, want) in ids.iter().zip(expected) {
        assert_eq!(w.get(&t, &format!("Binary/{id}")).await.0, want, "Binary/{id}");
        assert_eq!(w.get(&t, &format!("Binary/{id}/_history/1")).await.0, want, "Binary/{id}/_history/1");
    }
    // Its content in its own type too.
    let r = w
        .server
        .client
        .get(w.server.url(&format!("Binary/{}", ids[0])))
        .bearer_auth(&t)
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    // Scopes that do not name Binary reach none; searching Binary stays out of reach.
    let obs_only = w.token("patient/Observation.rs patient/Patient.r", Some(&w.a));
    assert_eq!(w.get(&obs_only, &format!("Binary/{}", ids[0])).await.0, 403);
    // Its history as its reads.
    assert_eq!(w.get(&t, &format!("Binary/{}/_history", ids[0])).await.0, 200);
    assert_eq!(w.get(&t, &format!("Binary/{}/_history", ids[2])).await.0, 403);
    assert_eq!(w.get(&t, &format!("Binary?_id={}", ids[0])).await.0, 403);
}

/// One identity holds at most `max_concurrent_requests_per_client` slots, from when its
/// token is checked: of 17 requests of one client whose bodies are held back, exactly one
/// (whichever head the server reads last) is answered 429 with `Retry-After` at once; the
/// 16 others keep their slots, another client is served meanwhile, and once the bodies
/// arrive all 16 are created and the slots come back. Nothing else of that client is sent
/// while the heads are read, so which one is refused cannot race with a probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_the_slots() {
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let w = world().await;
    let slow = w.token_for("slow", "system/*.cruds", None);
    let other = w.token_for("other", "system/*.rs", None);
    let url = reqwest::Url::parse(&w.server.url("")).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let body = json!({"resourceType": "Basic", "code": {"text": "x"}}).to_string();
    let (mut readers, mut writers) = (Vec::new(), Vec::new());
    for _ in 0..17 {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (r, mut wr) = s.into_split();
        let head = format!(
            "POST /Basic HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {slow}\r\n\
             Content-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        wr.write_all(&body.as_bytes()[..4]).await.unwrap();
        readers.push(r);
        writers.push(wr);
    }
    // The refused one answers as soon as its head is read; the others answer nothing.
    let answer = |(i, mut r): (usize, tokio::net::tcp::OwnedReadHalf)| async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !whole_answer(&got) {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed after {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        (i, String::from_utf8_lossy(&got).into_owned())
    };
    let mut answers: futures::stream::FuturesUnordered<_> = readers.into_iter().enumerate().map(answer).collect();
    let wait = std::time::Duration::from_secs(60);
    let (refused_at, refused) = tokio::time::timeout(wait, answers.next())
        .await
        .expect("one of 17 held requests of one client is answered")
        .unwrap();
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
    assert!(refused.contains("max_concurrent_requests_per_client"), "{refused}");
    assert_eq!(w.get(&other, "Basic").await.0, 200, "another client is served");
    let again = w.server.client.get(w.server.url("Basic")).bearer_auth(&slow).send().await.unwrap();
    assert_eq!(again.status(), 429, "the client's 16 slots are still held");
    // The bodies arrive: the 16 held are created, and the client's slots come back.
    for (i, wr) in writers.iter_mut().enumerate() {
        if i != refused_at {
            wr.write_all(&body.as_bytes()[4..]).await.unwrap();
        }
    }
    for _ in 0..16 {
        let (_, a) = tokio::time::timeout(wait, answers.next()).await.expect("each held request is answered").unwrap();
        assert!(a.starts_with("HTTP/1.1 201"), "{a}");
    }
    assert_eq!(w.get(&slow, "Basic").await.0, 200);
}

/// Whether `got` holds an HTTP/1.1 answer's head and its `Content-Length` of body.
fn whole_answer(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some(end) = text.find("\r\n\r\n") else { return false };
    let length = text[..end]
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + length
}
