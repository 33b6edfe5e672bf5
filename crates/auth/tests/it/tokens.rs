//! Access tokens: issued tokens verify; every forgery, replay of an old key and stale
//! token is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tsunagu_auth::{AccessClaims, Grant, KeyRing, TokenIssuer};

const BASE: &str = "https://fhir.example.jp/fhir";
const NOW: u64 = 1_800_000_000;

fn issuer(dir: &std::path::Path) -> TokenIssuer {
    TokenIssuer::new(KeyRing::load_or_create(dir).unwrap(), BASE, 300)
}

fn grant() -> Grant {
    Grant {
        subject: "lab-system".into(),
        client_id: "lab-system".into(),
        scope: "system/Observation.cruds".into(),
        organization: Some("Organization/h1".into()),
        ..Grant::default()
    }
}

fn parts(token: &str) -> (serde_json::Value, serde_json::Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let json = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (json(p[0]), json(p[1]), p[2].to_string())
}

fn join(header: &serde_json::Value, claims: &serde_json::Value, sig: &str) -> String {
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{sig}", enc(header), enc(claims))
}

fn refused(t: &TokenIssuer, token: &str, why: &str) {
    match t.verify(token, NOW) {
        Ok(c) => panic!("{why}: accepted as {c:?}"),
        Err(e) => eprintln!("{why}: {e}"),
    }
}

#[test]
fn an_issued_token_verifies_with_its_claims() {
    let dir = tempfile::tempdir().unwrap();
    let t = issuer(dir.path());
    let token = t.issue(&grant(), NOW).unwrap();
    let c: AccessClaims = t.verify(&token, NOW + 10).unwrap();
    assert_eq!((c.sub.as_str(), c.aud.as_str(), c.iss.as_str()), ("lab-system", BASE, BASE));
    assert_eq!(c.scope, "system/Observation.cruds");
    assert_eq!(c.organization.as_deref(), Some("Organization/h1"));
    assert_eq!(c.exp, NOW + 300);
    let (header, _, _) = parts(&token);
    assert_eq!(header["alg"], "ES384");
    assert_eq!(header["kid"], t.keys().signing().kid());
    // The published key set carries the verifying key and no private part.
    let jwks = t.keys().jwks();
    assert_eq!(jwks["keys"][0]["kid"], t.keys().signing().kid());
    assert!(jwks["keys"][0].get("d").is_none());
}

#[test]
fn forged_and_stale_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = issuer(dir.path());
    let token = t.issue(&grant(), NOW).unwrap();
    let (header, claims, sig) = parts(&token);

    let t_now = |token: &str, at: u64| t.verify(token, at);
    assert!(t_now(&token, NOW + 299).is_ok());
    assert!(t_now(&token, NOW + 300).is_err(), "expired at exp");
    assert!(t_now(&token, NOW - 3600).is_err(), "issued in the future");

    let fresh = t.issue(&grant(), NOW).unwrap();
    let (_, fresh_claims, fresh_sig) = parts(&fresh);
    let mut none = header.clone();
    none["alg"] = "none".into();
    refused(&t, &format!("{}.", join(&none, &fresh_claims, "").trim_end_matches('.')), "alg none, empty signature");
    refused(&t, &join(&none, &fresh_claims, &fresh_sig), "alg none, kept signature");

    // HS256 keyed with the public key (the classic algorithm confusion).
    let public = serde_json::to_vec(&t.keys().jwks()).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(t.keys().signing().kid().to_string());
    let c: AccessClaims = serde_json::from_value(fresh_claims.clone()).unwrap();
    let confused = jsonwebtoken::encode(&hs, &c, &EncodingKey::from_secret(&public)).unwrap();
    refused(&t, &confused, "HS256 with the public key");

    // Tampered claims under the original signature.
    let mut more = fresh_claims.clone();
    more["scope"] = "system/*.cruds".into();
    refused(&t, &join(&header, &more, &fresh_sig), "tampered scope");
    let mut later = fresh_claims.clone();
    later["exp"] = (NOW + 86_400).into();
    refused(&t, &join(&header, &later, &fresh_sig), "tampered exp");

    // Another server's key, under this server's kid and under its own.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TokenIssuer::new(KeyRing::load_or_create(other_dir.path()).unwrap(), BASE, 300);
    let foreign = other.issue(&grant(), NOW).unwrap();
    refused(&t, &foreign, "unknown kid");
    let (_, foreign_claims, foreign_sig) = parts(&foreign);
    refused(&t, &join(&header, &foreign_claims, &foreign_sig), "wrong key under our kid");

    // Right key, wrong audience or issuer.
    let elsewhere =
        TokenIssuer::new(KeyRing::load_or_create(dir.path()).unwrap(), "https://other.example.jp/fhir", 300);
    refused(&t, &elsewhere.issue(&grant(), NOW).unwrap(), "another issuer and audience");

    refused(&t, "", "empty");
    refused(&t, "a.b.c", "garbage");
    refused(&t, &sig, "signature only");
    let _ = claims;
}

#[test]
fn rotation_keeps_old_tokens_until_their_key_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = KeyRing::load_or_create(dir.path()).unwrap();
    let first_kid = ring.signing().kid().to_string();
    let t = TokenIssuer::new(KeyRing::load_or_create(dir.path()).unwrap(), BASE, 300);
    let old = t.issue(&grant(), NOW).unwrap();

    ring.rotate().unwrap();
    assert_ne!(ring.signing().kid(), first_kid);
    let t = TokenIssuer::new(KeyRing::load_or_create(dir.path()).unwrap(), BASE, 300);
    assert_eq!(t.keys().signing().kid(), ring.signing().kid(), "the newest key signs after a restart");
    assert!(t.verify(&old, NOW + 1).is_ok(), "the previous key still verifies");
    assert_eq!(t.keys().jwks()["keys"].as_array().unwrap().len(), 2);

    ring.retire(1).unwrap();
    let t = TokenIssuer::new(KeyRing::load_or_create(dir.path()).unwrap(), BASE, 300);
    refused(&t, &old, "retired key");
    assert!(t.verify(&t.issue(&grant(), NOW).unwrap(), NOW + 1).is_ok());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "private keys are readable by their owner only");
        }
    }
}

#[test]
fn a_remembered_token_still_expires_and_forgeries_are_never_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let t = issuer(dir.path());
    let token = t.issue(&grant(), NOW).unwrap();
    assert_eq!(t.verify_cached(&token, NOW + 1).unwrap().sub, "lab-system");
    assert_eq!(t.verify_cached(&token, NOW + 2).unwrap().sub, "lab-system");
    assert!(t.verify_cached(&token, NOW + 300).is_err(), "expired, although remembered");
    let (header, claims, sig) = parts(&token);
    let mut more = claims.clone();
    more["scope"] = "system/*.cruds".into();
    let forged = join(&header, &more, &sig);
    assert!(t.verify_cached(&forged, NOW + 1).is_err());
    assert!(t.verify_cached(&forged, NOW + 1).is_err());
}
