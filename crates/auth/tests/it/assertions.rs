//! Client assertions (private_key_jwt): a well-formed one authenticates once; each of the
//! attacks in the SMART Backend Services checklist is refused.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tsunagu_auth::{verify_client_assertion, AssertionContext, MemoryJtiLog, SigningKey};

const ENDPOINT: &str = "https://fhir.example.jp/auth/token";
const NOW: u64 = 1_800_000_000;

struct Client {
    pem: String,
    jwk: Value,
}

fn client() -> Client {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    let jwk = SigningKey::from_pem(&pem).unwrap().public_jwk();
    Client { pem, jwk }
}

fn sign(c: &Client, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_pem(c.pem.as_bytes()).unwrap()).unwrap()
}

fn claims(jti: &str) -> Value {
    json!({"iss": "lab", "sub": "lab", "aud": ENDPOINT, "exp": NOW + 240, "jti": jti})
}

#[test]
fn an_assertion_authenticates_once_and_attacks_are_refused() {
    let c = client();
    let kid = c.jwk["kid"].as_str().unwrap().to_string();
    let jwks = json!({"keys": [c.jwk]});
    let ctx = AssertionContext { client_id: "lab", token_endpoint: ENDPOINT, jwks: &jwks, now: NOW };
    let log = MemoryJtiLog::default();
    let check = |a: &str| verify_client_assertion(a, &ctx, &log);

    let good = sign(&c, Algorithm::ES384, &kid, &claims("j1"));
    check(&good).unwrap();
    let replay = check(&good).unwrap_err();
    assert!(replay.to_string().contains("already used"), "{replay}");

    let mut cases: Vec<(&str, String)> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut cl = claims(&format!("j-{k}"));
        cl[k] = v;
        cl
    };
    cases.push(("expired", sign(&c, Algorithm::ES384, &kid, &with("exp", json!(NOW)))));
    cases.push(("exp too far", sign(&c, Algorithm::ES384, &kid, &with("exp", json!(NOW + 301)))));
    cases.push(("wrong aud", sign(&c, Algorithm::ES384, &kid, &with("aud", json!("https://other/token")))));
    cases.push(("iss is not sub", sign(&c, Algorithm::ES384, &kid, &with("iss", json!("other")))));
    cases.push(("sub is not the client", sign(&c, Algorithm::ES384, &kid, &with("sub", json!("other")))));
    cases.push(("unknown kid", sign(&c, Algorithm::ES384, "nope", &claims("j2"))));
    let stranger = client();
    let skid = stranger.jwk["kid"].as_str().unwrap().to_string();
    cases.push(("another key under the client's kid", sign(&stranger, Algorithm::ES384, &kid, &claims("j3"))));
    cases.push(("another key and kid", sign(&stranger, Algorithm::ES384, &skid, &claims("j4"))));
    cases.push(("ES256 instead of ES384", {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &claims("j5"), &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
    }));
    cases.push(("HS384 keyed with the public JWK", {
        let mut h = Header::new(Algorithm::HS384);
        h.kid = Some(kid.clone());
        let secret = serde_json::to_vec(&c.jwk).unwrap();
        jsonwebtoken::encode(&h, &claims("j6"), &EncodingKey::from_secret(&secret)).unwrap()
    }));
    let none = {
        use base64::Engine;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.", e(&json!({"alg": "none", "kid": kid})), e(&claims("j7")))
    };
    cases.push(("alg none", none));
    let mut tampered: Vec<String> =
        sign(&c, Algorithm::ES384, &kid, &claims("j8")).split('.').map(String::from).collect();
    tampered[1] = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&with("sub", json!("lab"))).unwrap())
    };
    cases.push(("claims swapped under a signature", tampered.join(".")));
    cases.push(("no jti", {
        let mut cl = claims("x");
        cl.as_object_mut().unwrap().remove("jti");
        sign(&c, Algorithm::ES384, &kid, &cl)
    }));

    for (what, a) in &cases {
        match check(a) {
            Ok(()) => panic!("{what}: accepted"),
            Err(e) => eprintln!("{what}: {e}"),
        }
    }
    // A key set with keys this server cannot use still serves the one that signs; a key
    // marked for another use or algorithm does not.
    let mixed = json!({"keys": [{"kty": "EC", "crv": "P-521", "kid": "enc", "use": "enc", "alg": "ECDH-ES",
                                 "x": "AA", "y": "AA"}, c.jwk]});
    let ctx2 = AssertionContext { client_id: "lab", token_endpoint: ENDPOINT, jwks: &mixed, now: NOW };
    verify_client_assertion(&sign(&c, Algorithm::ES384, &kid, &claims("m1")), &ctx2, &log).unwrap();
    for (field, value) in [("use", "enc"), ("alg", "RS384")] {
        let mut k = c.jwk.clone();
        k[field] = value.into();
        let jwks = json!({"keys": [k]});
        let ctx3 = AssertionContext { client_id: "lab", token_endpoint: ENDPOINT, jwks: &jwks, now: NOW };
        let a = sign(&c, Algorithm::ES384, &kid, &claims(&format!("m-{field}")));
        assert!(verify_client_assertion(&a, &ctx3, &log).is_err(), "key with {field} = {value}");
    }

    // A fresh jti with everything right still works: the refusals consumed nothing.
    check(&sign(&c, Algorithm::ES384, &kid, &claims("j9"))).unwrap();
}
