//! Document signatures end to end with the generated HPKI-shaped PKI.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use tsunagu_hpki::testing::{sample_document, TestPki, TestSigner, REVOKED_SERIAL};
use tsunagu_hpki::{
    canonical, sign_bundle, verify_bundle, Algorithm, RolePolicy, SignatureError, TrustStore, CHECKUP_REPORT,
    DISCHARGE_SUMMARY, HPKI_SIGNING_POLICY, REFERRAL_LETTER,
};

const WHEN: &str = "2026-05-31T09:30:00+09:00";

fn signed(signer: &TestSigner, alg: Algorithm, type_code: &str) -> Value {
    let mut doc = sample_document(type_code);
    sign_bundle(&mut doc, &signer.key_pkcs8, &signer.chain_der, alg, WHEN).unwrap();
    doc
}

fn verify(doc: &Value, trust: &TrustStore) -> Result<tsunagu_hpki::Verified, SignatureError> {
    verify_bundle(doc, trust, &RolePolicy::default(), TestPki::now())
}

fn at_year(year: i32) -> SystemTime {
    let date = chrono::NaiveDate::from_ymd_opt(year, 6, 1).unwrap();
    let secs = date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// The compact JWS inside Signature.data.
fn compact(doc: &Value) -> String {
    let data = doc["signature"]["data"].as_str().unwrap();
    String::from_utf8(STANDARD.decode(data).unwrap()).unwrap()
}

fn set_compact(doc: &mut Value, jws: &str) {
    doc["signature"]["data"] = json!(STANDARD.encode(jws));
}

#[test]
fn valid_es256_doctor_signs_referral_letter() {
    let pki = TestPki::new();
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let sig = &doc["signature"];
    assert_eq!(sig["sigFormat"], "application/jose");
    assert_eq!(sig["type"][0]["code"], "1.2.840.10065.1.12.1.1");
    assert_eq!(sig["type"][0]["system"], "urn:iso-astm:E1762-95:2013");
    assert_eq!(sig["who"]["display"], "山田 太郎");
    assert_eq!(sig["when"], WHEN);
    assert!(compact(&doc).contains(".."), "detached payload");

    let v = verify(&doc, &pki.trust_store()).unwrap();
    assert_eq!(v.roles(), vec!["Medical Doctor"]);
    assert_eq!(v.signer_name.as_deref(), Some("山田 太郎"));
    assert!(v.signer.contains("山田 太郎"), "{}", v.signer);
    assert_eq!(v.policy_oids, vec![HPKI_SIGNING_POLICY.to_string()]);
    assert_eq!(v.document_type.as_deref(), Some(REFERRAL_LETTER));
    assert_eq!(v.algorithm, Algorithm::Es256);
    assert_eq!(v.not_after.to_rfc3339(), "2044-01-01T00:00:00+00:00");
    assert!(v.trust_anchor.contains("Tsunagu Test HPKI Root CA"));
    assert_eq!(v.signed_at.as_deref(), Some(WHEN));
    assert!(v.revocation_unchecked.is_empty());

    let report = v.to_string();
    assert!(report.contains("Medical Doctor") && report.contains("山田 太郎"), "{report}");
}

#[test]
fn valid_rsa_doctor_rs256_and_ps256() {
    let pki = TestPki::new();
    for alg in [Algorithm::Rs256, Algorithm::Ps256] {
        let doc = signed(&pki.rsa_doctor, alg, DISCHARGE_SUMMARY);
        let v = verify(&doc, &pki.trust_store()).unwrap();
        assert_eq!(v.algorithm, alg);
        assert_eq!(v.roles(), vec!["Medical Doctor"]);
    }
}

#[test]
fn wrong_role_for_document_type() {
    let pki = TestPki::new();
    for code in [REFERRAL_LETTER, DISCHARGE_SUMMARY, CHECKUP_REPORT] {
        let doc = signed(&pki.pharmacist, Algorithm::Es256, code);
        let err = verify(&doc, &pki.trust_store()).unwrap_err();
        assert_eq!(
            err,
            SignatureError::WrongRole {
                document_type: code.into(),
                required: vec!["Medical Doctor".into()],
                found: vec!["Pharmacist".into()],
            }
        );
        assert!(err.message_ja().contains("Medical Doctor"));
        assert!(err.message_en().contains("Pharmacist"));
    }
}

#[test]
fn role_policy_from_map_and_unmapped_types() {
    let pki = TestPki::new();
    // A prescription-like type no default rule covers: any HPKI role will do.
    let doc = signed(&pki.pharmacist, Algorithm::Es256, "57833-6");
    let v = verify(&doc, &pki.trust_store()).unwrap();
    assert_eq!(v.roles(), vec!["Pharmacist"]);
    assert_eq!(v.document_type.as_deref(), Some("57833-6"));

    let policy = RolePolicy::from_map([("57833-6", vec!["Medical Doctor", "Dentist"])]);
    let err = verify_bundle(&doc, &pki.trust_store(), &policy, TestPki::now()).unwrap_err();
    assert!(matches!(err, SignatureError::WrongRole { .. }), "{err:?}");
    let policy = policy.require("57833-6", ["Pharmacist"]);
    verify_bundle(&doc, &pki.trust_store(), &policy, TestPki::now()).unwrap();
    // The map replaces the defaults: a referral letter now needs nothing.
    let letter = signed(&pki.pharmacist, Algorithm::Es256, REFERRAL_LETTER);
    verify_bundle(&letter, &pki.trust_store(), &policy, TestPki::now()).unwrap();
}

#[test]
fn expired_leaf() {
    let pki = TestPki::new();
    let doc = signed(&pki.expired, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    assert!(
        matches!(&err, SignatureError::Expired { subject, not_after }
            if subject.contains("高橋 次郎") && not_after == "2023-01-01T00:00:00Z"),
        "{err:?}"
    );
}

#[test]
fn not_yet_valid_leaf() {
    let pki = TestPki::new();
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify_bundle(&doc, &pki.trust_store(), &RolePolicy::default(), at_year(2023)).unwrap_err();
    assert!(matches!(err, SignatureError::NotYetValid { .. }), "{err:?}");
}

#[test]
fn revoked_leaf_via_crl() {
    let pki = TestPki::new();
    let doc = signed(&pki.revoked, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    match &err {
        SignatureError::Revoked { subject, serial, revoked_at } => {
            assert!(subject.contains("鈴木 一郎"));
            assert_eq!(serial, "20:03", "serial {REVOKED_SERIAL:#x}");
            assert_eq!(revoked_at, "2025-06-01T00:00:00Z");
        }
        other => panic!("{other:?}"),
    }
    // Without the CRL the same signature verifies, and says revocation was not checked.
    let v = verify(&doc, &pki.trust_store_without_crl()).unwrap();
    assert_eq!(v.revocation_unchecked.len(), 2, "leaf and signing CA");
    assert!(v.to_string().contains("NOT checked"));
}

#[test]
fn crl_in_der_works_too_and_stale_crl_is_refused() {
    let pki = TestPki::new();
    let mut trust = TrustStore::new();
    assert_eq!(trust.add_anchors(&pki.root_der).unwrap(), 1);
    assert_eq!(trust.add_crls(&pki.crl_der).unwrap(), 1);
    assert_eq!(trust.counts(), (1, 1));
    let doc = signed(&pki.revoked, Algorithm::Es256, REFERRAL_LETTER);
    assert!(matches!(verify(&doc, &trust), Err(SignatureError::Revoked { .. })));

    // Past the CRL's nextUpdate (2040) the leaf (until 2044) can no longer be cleared.
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify_bundle(&doc, &trust, &RolePolicy::default(), at_year(2041)).unwrap_err();
    assert!(matches!(&err, SignatureError::CrlUnusable { detail, .. } if detail.contains("nextUpdate")), "{err:?}");
}

#[test]
fn root_crl_with_bad_signature_is_refused_when_added() {
    let pki = TestPki::new();
    let mut trust = pki.trust_store_without_crl();
    let pem = pki.root_crl_pem.as_bytes();
    let mut der = x509_der(pem);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = trust.add_crls(&der).unwrap_err();
    assert!(matches!(err, SignatureError::CrlUnusable { .. }), "{err:?}");
    assert!(matches!(trust.add_crls(b"garbage"), Err(SignatureError::BadEncoding { .. })));
    assert!(matches!(trust.add_anchors(b"garbage"), Err(SignatureError::BadEncoding { .. })));
}

fn x509_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

#[test]
fn crl_with_bad_signature_is_refused() {
    let pki = TestPki::new();
    let mut crl = pki.crl_der.clone();
    let last = crl.len() - 1;
    crl[last] ^= 0x01; // inside the signature value
    let mut trust = pki.trust_store_without_crl();
    trust.add_crls(&crl).unwrap(); // issued by the signing CA, so checked at use
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify(&doc, &trust).unwrap_err();
    assert!(matches!(err, SignatureError::CrlUnusable { .. }), "{err:?}");
}

#[test]
fn chain_to_untrusted_root() {
    let pki = TestPki::new();
    let doc = signed(&pki.stranger, Algorithm::Es256, REFERRAL_LETTER);
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    assert!(matches!(err, SignatureError::Untrusted { .. }), "{err:?}");
    // With no anchor at all.
    let err = verify(&doc, &TrustStore::new()).unwrap_err();
    assert!(matches!(err, SignatureError::Untrusted { .. }), "{err:?}");

    // Trusting that root instead makes it pass (no CRL for it: reported unchecked).
    let mut other = TrustStore::new();
    other.add_anchors_pem(pki.stranger_root_pem.as_bytes()).unwrap();
    let v = verify(&doc, &other).unwrap();
    assert!(v.trust_anchor.contains("Unrelated Root CA"));
}

#[test]
fn incomplete_or_extended_chains() {
    let pki = TestPki::new();
    // Leaf alone: the signing CA is not an anchor.
    let mut doc = sample_document(REFERRAL_LETTER);
    let leaf_only = vec![pki.doctor.chain_der[0].clone()];
    sign_bundle(&mut doc, &pki.doctor.key_pkcs8, &leaf_only, Algorithm::Es256, WHEN).unwrap();
    assert!(matches!(verify(&doc, &pki.trust_store()), Err(SignatureError::Untrusted { .. })));

    // The root itself at the end of x5c is fine.
    let mut with_root = pki.doctor.chain_der.clone();
    with_root.push(pki.root_der.clone());
    sign_bundle(&mut doc, &pki.doctor.key_pkcs8, &with_root, Algorithm::Es256, WHEN).unwrap();
    verify(&doc, &pki.trust_store()).unwrap();

    // Out of order: the root between the leaf and its issuer.
    let shuffled = vec![pki.doctor.chain_der[0].clone(), pki.root_der.clone(), pki.doctor.chain_der[1].clone()];
    sign_bundle(&mut doc, &pki.doctor.key_pkcs8, &shuffled, Algorithm::Es256, WHEN).unwrap();
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    assert!(matches!(&err, SignatureError::Untrusted { detail } if detail.contains("next certificate")), "{err:?}");
}

#[test]
fn altered_content_after_signing() {
    let pki = TestPki::new();
    let mut doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    doc["entry"][1]["resource"]["name"][0]["text"] = json!("患者 二郎");
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    assert_eq!(err, SignatureError::BadSignature);
    assert!(err.message_ja().contains("改変"));

    // A decimal's precision is content too.
    let mut doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    doc["entry"][1]["resource"]["extension"][0]["valueDecimal"] = serde_json::from_str::<Value>("62.5").unwrap();
    assert_eq!(verify(&doc, &pki.trust_store()).unwrap_err(), SignatureError::BadSignature);
}

#[test]
fn id_meta_and_property_order_are_outside_the_signature() {
    let pki = TestPki::new();
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    // Another server assigns its own id and meta, and writes properties in another order.
    let mut moved = serde_json::Map::new();
    let object = doc.as_object().unwrap();
    for (k, v) in object.iter().rev() {
        moved.insert(k.clone(), v.clone());
    }
    moved.insert("id".into(), json!("server-2-id"));
    moved.insert("meta".into(), json!({ "versionId": "7" }));
    let moved = Value::Object(moved);
    verify(&moved, &pki.trust_store()).unwrap();
}

#[test]
fn signature_missing() {
    let pki = TestPki::new();
    let doc = sample_document(REFERRAL_LETTER);
    let err = verify(&doc, &pki.trust_store()).unwrap_err();
    assert_eq!(err, SignatureError::Missing);
    assert!(!err.message_en().is_empty() && !err.message_ja().is_empty());
}

#[test]
fn x5c_missing() {
    let pki = TestPki::new();
    let mut doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let payload = canonical::document_bytes(&doc);
    let jws = es256_jws(&pki.doctor.key_pkcs8, &json!({ "alg": "ES256" }), &payload, true);
    set_compact(&mut doc, &jws);
    assert_eq!(verify(&doc, &pki.trust_store()).unwrap_err(), SignatureError::MissingCertificates);
}

#[test]
fn garbage_data() {
    let pki = TestPki::new();
    let mut doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    for data in ["%%% not base64 %%%", &STANDARD.encode("garbage"), &STANDARD.encode("a.b.c"), ""] {
        doc["signature"]["data"] = json!(data);
        let err = verify(&doc, &pki.trust_store()).unwrap_err();
        assert!(matches!(err, SignatureError::BadEncoding { .. }), "{data}: {err:?}");
    }
    // x5c that is not a certificate.
    let payload = canonical::document_bytes(&doc);
    let header = json!({ "alg": "ES256", "x5c": [STANDARD.encode(b"not a certificate")] });
    set_compact(&mut doc, &es256_jws(&pki.doctor.key_pkcs8, &header, &payload, true));
    assert!(matches!(verify(&doc, &pki.trust_store()), Err(SignatureError::BadEncoding { .. })));
}

#[test]
fn unsupported_formats() {
    let pki = TestPki::new();
    let doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);

    let mut xml = doc.clone();
    xml["signature"]["sigFormat"] = json!("application/signature+xml");
    assert!(matches!(verify(&xml, &pki.trust_store()), Err(SignatureError::UnsupportedFormat { .. })));

    let mut other_c14n = doc.clone();
    other_c14n["signature"]["targetFormat"] =
        json!("application/fhir+json;canonicalization=http://hl7.org/fhir/canonicalization/json#static");
    assert!(matches!(verify(&other_c14n, &pki.trust_store()), Err(SignatureError::UnsupportedFormat { .. })));

    let mut none_alg = doc.clone();
    let jws = compact(&doc);
    let (_, rest) = jws.split_once('.').unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","x5c":[]}"#);
    set_compact(&mut none_alg, &format!("{header}.{rest}"));
    assert!(matches!(verify(&none_alg, &pki.trust_store()), Err(SignatureError::UnsupportedFormat { .. })));

    // The alg must fit the certificate's key: RS256 over an EC certificate is refused.
    let mut mismatched = doc.clone();
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(compact(&doc).split('.').next().unwrap()).unwrap()).unwrap();
    header["alg"] = json!("RS256");
    let payload = canonical::document_bytes(&doc);
    set_compact(&mut mismatched, &es256_jws(&pki.doctor.key_pkcs8, &header, &payload, true));
    assert!(matches!(verify(&mismatched, &pki.trust_store()), Err(SignatureError::UnsupportedFormat { .. })));
}

#[test]
fn attached_payload_accepted_only_when_canonical() {
    let pki = TestPki::new();
    let mut doc = signed(&pki.doctor, Algorithm::Es256, REFERRAL_LETTER);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(compact(&doc).split('.').next().unwrap()).unwrap()).unwrap();
    let payload = canonical::document_bytes(&doc);
    set_compact(&mut doc, &es256_jws(&pki.doctor.key_pkcs8, &header, &payload, false));
    verify(&doc, &pki.trust_store()).unwrap();

    // Signed over a pretty-printed (non-canonical) form: refused.
    let mut pretty_doc = doc.clone();
    pretty_doc.as_object_mut().unwrap().remove("signature");
    let pretty = serde_json::to_vec_pretty(&pretty_doc).unwrap();
    set_compact(&mut doc, &es256_jws(&pki.doctor.key_pkcs8, &header, &pretty, false));
    assert_eq!(verify(&doc, &pki.trust_store()).unwrap_err(), SignatureError::BadSignature);
}

#[test]
fn signing_with_a_key_that_is_not_the_certificates_fails() {
    let pki = TestPki::new();
    let mut doc = sample_document(REFERRAL_LETTER);
    let err =
        sign_bundle(&mut doc, &pki.pharmacist.key_pkcs8, &pki.doctor.chain_der, Algorithm::Es256, WHEN).unwrap_err();
    assert!(matches!(err, SignatureError::Signing { .. }), "{err:?}");
    assert!(doc.get("signature").is_none());
}

#[test]
fn every_error_has_both_messages() {
    let errors = [
        SignatureError::Missing,
        SignatureError::UnsupportedFormat { detail: "x".into() },
        SignatureError::BadEncoding { detail: "x".into() },
        SignatureError::MissingCertificates,
        SignatureError::BadSignature,
        SignatureError::Untrusted { detail: "x".into() },
        SignatureError::InvalidCertificate { subject: "CN=a".into(), detail: "x".into() },
        SignatureError::Expired { subject: "CN=a".into(), not_after: "t".into() },
        SignatureError::NotYetValid { subject: "CN=a".into(), not_before: "t".into() },
        SignatureError::Revoked { subject: "CN=a".into(), serial: "01".into(), revoked_at: "t".into() },
        SignatureError::CrlUnusable { issuer: "CN=b".into(), detail: "x".into() },
        SignatureError::WrongRole { document_type: "57133-1".into(), required: vec![], found: vec![] },
        SignatureError::Signing { detail: "x".into() },
    ];
    for e in errors {
        assert!(!e.message_en().is_empty());
        assert!(!e.message_ja().is_ascii(), "{e:?}");
    }
}

/// A compact JWS signed with an ES256 PKCS#8 key, detached or with the payload attached.
fn es256_jws(key_pkcs8: &[u8], header: &Value, payload: &[u8], detached: bool) -> String {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng).unwrap();
    let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload_b64 = URL_SAFE_NO_PAD.encode(payload);
    let signature = key.sign(&rng, format!("{header_b64}.{payload_b64}").as_bytes()).unwrap();
    let signature_b64 = URL_SAFE_NO_PAD.encode(signature.as_ref());
    if detached {
        format!("{header_b64}..{signature_b64}")
    } else {
        format!("{header_b64}.{payload_b64}.{signature_b64}")
    }
}
