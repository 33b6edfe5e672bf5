//! `tsunagu bench auth`: what access control costs, measured in one run so that the
//! ratios hold on a noisy machine. Two routers over the same store, one requiring tokens
//! and one not, serve reads and searches in alternating rounds; writes are timed with
//! and without their audit record; tokens are issued through the token endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tsunagu_auth::{Authority, Client, Grant};

/// A way of calling the server: its label, base URL and bearer token (none: auth off).
type Mode<'a> = (&'a str, String, Option<String>);

pub fn run(clients: usize, seconds: u64, rounds: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tsunagu-bench-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = run_in(&dir, clients, seconds, rounds);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn run_in(dir: &std::path::Path, clients: usize, seconds: u64, rounds: usize) -> Result<(), String> {
    let cfg = crate::config::Config {
        sync: tsunagu_store::SyncMode::Normal,
        ..crate::config::Config::defaults(dir.join("data"))
    };
    let fhir = crate::open(&cfg, true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let open_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let open_base = format!("http://{}", open_listener.local_addr().map_err(|e| e.to_string())?);
        let auth_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let auth_base = format!("http://{}", auth_listener.local_addr().map_err(|e| e.to_string())?);
        let authority =
            Arc::new(Authority::open(&dir.join("auth"), &auth_base, Default::default()).map_err(|e| e.to_string())?);
        let limits = cfg.limits.clone();
        let open_app = tsunagu_server::router(fhir.clone(), tsunagu_server::ServerConfig::new(open_base.clone()));
        let mut auth_cfg = tsunagu_server::ServerConfig::new(auth_base.clone());
        auth_cfg.authorization = tsunagu_server::Authorization::Required(authority.clone());
        let auth_app = tsunagu_server::router(fhir.clone(), auth_cfg);
        let l2 = limits.clone();
        tokio::spawn(async move { tsunagu_server::serve(open_listener, open_app, &limits).await });
        tokio::spawn(async move { tsunagu_server::serve(auth_listener, auth_app, &l2).await });
        let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().map_err(|e| e.to_string())?;

        let (patients, observations) = load(&http, &open_base, 200).await?;
        let token = |scope: &str, patient: Option<&str>| {
            let grant = Grant {
                subject: "bench".into(),
                client_id: "bench".into(),
                scope: scope.into(),
                patient: patient.map(str::to_string),
                ..Default::default()
            };
            authority.issuer().issue(&grant, now()).map_err(|e| e.to_string())
        };
        let system = token("system/*.rs", None)?;
        let patient = token("patient/*.rs", Some(&patients[0]))?;
        let reads: Vec<String> = patients.iter().map(|p| format!("/Patient/{p}")).collect();
        // The first patient's observations (the patient/ token is bound to that patient).
        let own_obs: Vec<String> = observations.iter().map(|o| format!("/Observation/{o}")).collect();
        let searches: Vec<String> =
            (0..50).map(|i| format!("/Observation?code=http://loinc.org|{}", 1000 + i % 20)).collect();
        let compartment: Vec<String> = vec![format!("/Observation?subject=Patient/{}", patients[0])];
        println!("{clients} clients, {rounds} alternating rounds of {seconds} s per mode (req/s, median of rounds)");
        let cases: Vec<(&str, Vec<String>, Vec<Mode>)> = vec![
            (
                "read Patient/{id}",
                reads.clone(),
                vec![("off", open_base.clone(), None), ("on, system/*.rs", auth_base.clone(), Some(system.clone()))],
            ),
            (
                "read own Observation",
                own_obs.clone(),
                vec![
                    ("off", open_base.clone(), None),
                    ("on, system/*.rs", auth_base.clone(), Some(system.clone())),
                    ("on, patient/*.rs", auth_base.clone(), Some(patient.clone())),
                ],
            ),
            (
                "search Observation?code",
                searches.clone(),
                vec![("off", open_base.clone(), None), ("on, system/*.rs", auth_base.clone(), Some(system.clone()))],
            ),
            (
                "search Observation?subject (one patient)",
                compartment.clone(),
                vec![
                    ("off", open_base.clone(), None),
                    ("on, system/*.rs", auth_base.clone(), Some(system.clone())),
                    ("on, patient/*.rs", auth_base.clone(), Some(patient.clone())),
                ],
            ),
        ];
        for (name, paths, modes) in cases {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
            for _ in 0..rounds {
                for (i, (_, base, tok)) in modes.iter().enumerate() {
                    rates[i].push(throughput(&http, base, &paths, tok.clone(), clients, seconds).await?);
                }
            }
            let medians: Vec<f64> = rates.iter().map(|r| median(r.clone())).collect();
            let line: Vec<String> = modes
                .iter()
                .zip(&medians)
                .map(|((label, _, _), m)| format!("{label} {m:.0} ({:.2})", m / medians[0]))
                .collect();
            println!("{name}: {}", line.join(", "));
        }
        tokens_per_second(&http, &authority, &auth_base).await?;
        Ok::<(), String>(())
    })?;
    writes(dir, rounds)
}

/// Creates patients, each with five observations; returns the patients' ids and the
/// first patient's observations.
async fn load(http: &reqwest::Client, base: &str, n: usize) -> Result<(Vec<String>, Vec<String>), String> {
    let mut patients = Vec::new();
    let mut observations = Vec::new();
    for i in 0..n {
        let p = json!({"resourceType": "Patient", "name": [{"family": format!("F{i}")}], "gender": "female"});
        patients.push(post(http, base, "Patient", &p).await?);
        for k in 0..5 {
            let o = json!({"resourceType": "Observation", "status": "final",
                           "code": {"coding": [{"system": "http://loinc.org", "code": format!("{}", 1000 + (i * 5 + k) % 20)}]},
                           "subject": {"reference": format!("Patient/{}", patients[i])},
                           "valueQuantity": {"value": k, "unit": "mg"}});
            let id = post(http, base, "Observation", &o).await?;
            if i == 0 {
                observations.push(id);
            }
        }
    }
    Ok((patients, observations))
}

async fn post(http: &reqwest::Client, base: &str, ty: &str, body: &serde_json::Value) -> Result<String, String> {
    let r = http
        .post(format!("{base}/{ty}"))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    v["id"].as_str().map(str::to_string).ok_or_else(|| format!("create {ty} failed: {v}"))
}

async fn throughput(
    http: &reqwest::Client,
    base: &str,
    paths: &[String],
    token: Option<String>,
    clients: usize,
    seconds: u64,
) -> Result<f64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let paths = Arc::new(paths.to_vec());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, paths, stop, base, token) =
            (http.clone(), paths.clone(), stop.clone(), base.to_string(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let mut req = http.get(format!("{base}{}", paths[i % paths.len()]));
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => return Err(format!("{} answered {}", paths[i % paths.len()], r.status())),
                    Err(e) => return Err(e.to_string()),
                }
                n += 1;
                i += clients;
            }
            Ok(n)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// client_credentials with an ES384 client assertion, one after the other, for 3 s.
async fn tokens_per_second(http: &reqwest::Client, authority: &Authority, base: &str) -> Result<(), String> {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(|e| e.to_string())?.serialize_pem();
    let jwk = tsunagu_auth::SigningKey::from_pem(&pem).map_err(|e| e.to_string())?.public_jwk();
    let kid = jwk["kid"].as_str().unwrap_or_default().to_string();
    let client = Client {
        id: "bench-backend".into(),
        jwks: Some(json!({"keys": [jwk]})),
        scope: "system/*.rs".into(),
        ..Default::default()
    };
    authority.registry().add_client(&client, now()).map_err(|e| e.to_string())?;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let endpoint = authority.token_endpoint();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        h.kid = Some(kid.clone());
        let claims = json!({"iss": "bench-backend", "sub": "bench-backend", "aud": endpoint,
                            "exp": now() + 60, "jti": uuid::Uuid::new_v4().to_string()});
        let assertion = jsonwebtoken::encode(&h, &claims, &key).map_err(|e| e.to_string())?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_assertion_type", tsunagu_auth::CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let r = http.post(format!("{base}/auth/token")).form(&form).send().await.map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("token endpoint answered {}", r.status()));
        }
        n += 1;
    }
    println!(
        "token endpoint (client_credentials, ES384 assertion signed by the bench, one client at a time): {:.0} tokens/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Single-resource creates through the interaction layer, with and without the audit
/// record each write carries in its transaction (alternating rounds, synchronous=FULL).
fn writes(dir: &std::path::Path, rounds: usize) -> Result<(), String> {
    let mut rates = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        for (i, audit) in [false, true].into_iter().enumerate() {
            let d = dir.join(format!("writes-{r}-{audit}"));
            let store =
                tsunagu_store::SqliteStore::open(&d, tsunagu_store::SyncMode::Full).map_err(|e| e.to_string())?;
            let config = tsunagu_interaction::InteractionConfig { audit_writes: audit, ..Default::default() };
            let fhir =
                tsunagu_interaction::Interactions::new(Arc::new(store), Arc::new(tsunagu_interaction::NoCheck), config);
            let ctx = tsunagu_interaction::RequestContext::new("http://localhost");
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < Duration::from_secs(2) {
                let p = json!({"resourceType": "Patient", "name": [{"family": format!("W{n}")}]});
                fhir.create("Patient", p, None, &ctx).map_err(|e| e.to_string())?;
                n += 1;
            }
            rates[i].push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    let (off, on) = (median(rates[0].clone()), median(rates[1].clone()));
    println!("create Patient (one per transaction, synchronous=FULL): without audit {off:.0}/s, with audit {on:.0}/s ({:.2})", on / off);
    Ok(())
}
