//! Access tokens issued and verified per second on one core (ES384 sign and verify),
//! and scope checks per second. `cargo bench -p tsunagu-auth`.

use std::time::Instant;
use tsunagu_auth::{Grant, KeyRing, Permission, ScopeSet, TokenIssuer};

fn main() {
    authenticate();
    let dir = tempfile::tempdir().unwrap();
    let t = TokenIssuer::new(KeyRing::load_or_create(dir.path()).unwrap(), "https://fhir.example.jp/fhir", 300);
    let grant = Grant {
        subject: "lab".into(),
        client_id: "lab".into(),
        scope: "system/Observation.rs system/Patient.r".into(),
        ..Grant::default()
    };
    let now = 1_800_000_000;
    let n = 2_000;
    let start = Instant::now();
    let tokens: Vec<String> = (0..n).map(|_| t.issue(&grant, now).unwrap()).collect();
    let issue = start.elapsed();
    let start = Instant::now();
    for token in &tokens {
        t.verify(token, now + 1).unwrap();
    }
    let verify = start.elapsed();
    println!(
        "issue:  {:>8.0} tokens/s ({:.1} µs each)",
        n as f64 / issue.as_secs_f64(),
        issue.as_micros() as f64 / n as f64
    );
    println!(
        "verify: {:>8.0} tokens/s ({:.1} µs each)",
        n as f64 / verify.as_secs_f64(),
        verify.as_micros() as f64 / n as f64
    );

    for token in &tokens {
        t.verify_cached(token, now + 1).unwrap();
    }
    let start = Instant::now();
    for _ in 0..100 {
        for token in &tokens {
            t.verify_cached(token, now + 1).unwrap();
        }
    }
    let cached = start.elapsed() / 100;
    println!(
        "verify, remembered: {:>8.0} tokens/s ({:.2} µs each)",
        n as f64 / cached.as_secs_f64(),
        cached.as_nanos() as f64 / 1000.0 / n as f64
    );

    let scopes =
        ScopeSet::parse("patient/Observation.rs?category=laboratory patient/Patient.r system/Encounter.cruds openid")
            .unwrap();
    let m = 1_000_000;
    let start = Instant::now();
    let mut hits = 0usize;
    for i in 0..m {
        let ty = if i % 2 == 0 { "Observation" } else { "Condition" };
        hits += scopes.reaching(ty, Permission::Search).count();
    }
    let check = start.elapsed();
    println!("scope check: {:>8.0} /s ({} hits)", m as f64 / check.as_secs_f64(), hits);
}

/// What a request with a token costs the server before any FHIR work: the bearer token
/// checked (remembered) with the disabled-client check, and its scopes parsed.
fn authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let a = tsunagu_auth::Authority::open(dir.path(), "https://fhir.example.jp/fhir", Default::default()).unwrap();
    let grant =
        Grant { subject: "lab".into(), client_id: "lab".into(), scope: "system/*.rs".into(), ..Grant::default() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = a.issuer().issue(&grant, now).unwrap();
    a.authenticate(&token, now).unwrap();
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        let c = a.authenticate(&token, now).unwrap();
        std::hint::black_box(ScopeSet::parse(&c.scope).unwrap());
    }
    let t = start.elapsed();
    println!("authenticate (remembered) + scopes parsed: {:.2} µs each", t.as_nanos() as f64 / 1000.0 / n as f64);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.registry().is_client_disabled("lab"));
    }
    println!("disabled-client check alone: {:.2} µs each", start.elapsed().as_nanos() as f64 / 1000.0 / n as f64);
}
