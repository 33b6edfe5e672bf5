//! Tokens of a trusted external identity provider: accepted when its key signed them for
//! this server, mapped to a platform role, and never granting more than the role's scopes.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tsunagu_auth::{AuthSettings, Authority, ExternalIssuer, Role, SigningKey};

const BASE: &str = "https://fhir.example.jp";
const IDP: &str = "https://keycloak.hospital.example/realms/staff";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES384);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
}

#[test]
fn external_tokens_are_mapped_to_roles_and_bounded_by_them() {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    let jwk = SigningKey::from_pem(&pem).unwrap().public_jwk();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let mut idp = ExternalIssuer::new(IDP, BASE, json!({"keys": [jwk]}));
    idp.default_role = None;
    let dir = tempfile::tempdir().unwrap();
    let settings = AuthSettings { external: vec![idp], ..Default::default() };
    let authority = Authority::open(dir.path(), BASE, settings).unwrap();
    let base = json!({"iss": IDP, "aud": BASE, "sub": "nurse-1", "exp": now() + 120, "role": "nurse",
                      "scope": "user/Observation.rs user/Observation.d openid some-idp-scope"});
    let claims = authority.authenticate(&sign(&pem, &kid, &base), now()).unwrap();
    assert_eq!(claims.role.as_deref(), Some("nurse"));
    assert_eq!(claims.scope, "user/Observation.rs", "d is beyond the nurse role; unknown scopes dropped");
    assert!(claims.scope.split(' ').all(|s| !s.is_empty()));
    assert_eq!(Role::Nurse.as_str(), "nurse");

    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        sign(&pem, &kid, &c)
    };
    for (what, token) in [
        ("another audience", with("aud", json!("https://elsewhere"))),
        ("expired", with("exp", json!(now() - 1))),
        ("not a platform role", with("role", json!("janitor"))),
        ("no role and no default", {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove("role");
            sign(&pem, &kid, &c)
        }),
        ("unknown kid", sign(&pem, "other", &base)),
    ] {
        assert!(authority.authenticate(&token, now()).is_err(), "{what} was accepted");
    }
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    assert!(authority.authenticate(&sign(&stranger, &kid, &base), now()).is_err(), "wrong key");
}
