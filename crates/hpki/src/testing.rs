//! A test PKI shaped like HPKI, generated with rcgen (feature `testing`).
//!
//! Root CA → signing CA → leaf certificates with, as in real HPKI signing certificates,
//! critical CertificatePolicies ([`HPKI_SIGNING_POLICY`]), critical keyUsage nonRepudiation and
//! an hcRole in SubjectDirectoryAttributes. Also an expired leaf, a revoked leaf with the CRL
//! that revokes it, an RSA leaf, and a doctor under an unrelated root.
//!
//! The RSA leaf's key is a fixed test key (ring, rcgen's backend here, cannot generate RSA
//! keys); it protects nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use serde_json::{json, Value};

use crate::role::{HC_ROLE_ATTRIBUTE, JP_HC_ROLE_SCHEME};
use crate::{Algorithm, TrustStore, HPKI_SIGNING_POLICY};

const TEST_RSA_KEY: &str = include_str!("testing-rsa-2048.pem");
/// Serial number of [`TestPki::revoked`], listed in [`TestPki::crl_der`].
pub const REVOKED_SERIAL: u64 = 0x2003;

/// A signer: its private key, its chain (leaf, signing CA) and the algorithm for its key.
pub struct TestSigner {
    pub key_pkcs8: Vec<u8>,
    pub chain_der: Vec<Vec<u8>>,
    pub cert_pem: String,
    pub alg: Algorithm,
}

/// The generated PKI. Certificates are valid 2024–2044 (CAs 2020–2050), the CRL 2026–2040;
/// [`TestPki::now`] is inside all of that.
pub struct TestPki {
    pub root_pem: String,
    pub root_der: Vec<u8>,
    pub signing_ca_der: Vec<u8>,
    /// "Medical Doctor", ECDSA P-256.
    pub doctor: TestSigner,
    /// "Medical Doctor", RSA 2048 (RS256 / PS256).
    pub rsa_doctor: TestSigner,
    /// "Pharmacist", ECDSA P-256.
    pub pharmacist: TestSigner,
    /// "Medical Doctor" whose certificate expired in 2023.
    pub expired: TestSigner,
    /// "Medical Doctor" revoked by [`TestPki::crl_der`].
    pub revoked: TestSigner,
    /// "Medical Doctor" under an unrelated root (not in the trust store).
    pub stranger: TestSigner,
    pub stranger_root_pem: String,
    /// CRL of the signing CA revoking [`REVOKED_SERIAL`]: thisUpdate 2026-01-01,
    /// nextUpdate 2040-01-01.
    pub crl_der: Vec<u8>,
    pub crl_pem: String,
    /// The root's CRL (ARL), revoking nothing, same dates.
    pub root_crl_pem: String,
    signing_ca: (Certificate, KeyPair),
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    pub fn new() -> Self {
        let (root, root_key) = ca("Tsunagu Test HPKI Root CA", 1, None);
        let signing_ca = ca("Tsunagu Test HPKI Signing CA for NonRepudiation", 2, Some((&root, &root_key)));
        let issuer = (&signing_ca.0, &signing_ca.1);
        let ec = || KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");

        let doctor = leaf(issuer, ec(), 0x2001, "山田 太郎", &["Medical Doctor"], VALID, Algorithm::Es256);
        let pharmacist = leaf(issuer, ec(), 0x2002, "佐藤 花子", &["Pharmacist"], VALID, Algorithm::Es256);
        let revoked = leaf(issuer, ec(), REVOKED_SERIAL, "鈴木 一郎", &["Medical Doctor"], VALID, Algorithm::Es256);
        let expired = leaf(issuer, ec(), 0x2004, "高橋 次郎", &["Medical Doctor"], EXPIRED, Algorithm::Es256);
        let rsa_key = KeyPair::from_pkcs8_pem_and_sign_algo(TEST_RSA_KEY, &PKCS_RSA_SHA256).expect("test RSA key");
        let rsa_doctor = leaf(issuer, rsa_key, 0x2005, "田中 三郎", &["Medical Doctor"], VALID, Algorithm::Rs256);

        let (other_root, other_root_key) = ca("Unrelated Root CA", 9, None);
        let other_ca = ca("Unrelated Signing CA", 10, Some((&other_root, &other_root_key)));
        let stranger =
            leaf((&other_ca.0, &other_ca.1), ec(), 0x9001, "伊藤 四郎", &["Medical Doctor"], VALID, Algorithm::Es256);

        let crl = crl_params(vec![RevokedCertParams {
            serial_number: SerialNumber::from(REVOKED_SERIAL),
            revocation_time: date_time_ymd(2025, 6, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }])
        .signed_by(&signing_ca.0, &signing_ca.1)
        .expect("CRL");
        let root_crl = crl_params(Vec::new()).signed_by(&root, &root_key).expect("root CRL");

        TestPki {
            root_pem: root.pem(),
            root_der: root.der().to_vec(),
            signing_ca_der: signing_ca.0.der().to_vec(),
            doctor,
            rsa_doctor,
            pharmacist,
            expired,
            revoked,
            stranger,
            stranger_root_pem: other_root.pem(),
            crl_der: crl.der().to_vec(),
            crl_pem: crl.pem().expect("CRL PEM"),
            root_crl_pem: root_crl.pem().expect("root CRL PEM"),
            signing_ca,
        }
    }

    /// 2026-06-01T00:00:00Z.
    pub fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(Self::now_secs() as u64)
    }

    pub fn now_secs() -> i64 {
        1_780_272_000
    }

    /// The test root as trust anchor, with the signing CA's and the root's CRLs.
    pub fn trust_store(&self) -> TrustStore {
        let mut trust = self.trust_store_without_crl();
        trust.add_crls(self.crl_pem.as_bytes()).expect("test CRL");
        trust.add_crls(self.root_crl_pem.as_bytes()).expect("test root CRL");
        trust
    }

    /// The test root as trust anchor, no CRL.
    pub fn trust_store_without_crl(&self) -> TrustStore {
        let mut trust = TrustStore::new();
        trust.add_anchors_pem(self.root_pem.as_bytes()).expect("test root");
        trust
    }

    /// A doctor's chain whose leaf also has an unknown critical extension (1.2.3.4.5).
    pub fn leaf_with_unknown_critical_extension(&self) -> Vec<Vec<u8>> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let issuer = (&self.signing_ca.0, &self.signing_ca.1);
        let mut params = leaf_params(0x2999, "不明 拡張", &["Medical Doctor"], VALID);
        let mut unknown = CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
        unknown.set_criticality(true);
        params.custom_extensions.push(unknown);
        let cert = params.signed_by(&key, issuer.0, issuer.1).expect("leaf");
        vec![cert.der().to_vec(), self.signing_ca_der.clone()]
    }
}

/// A minimal FHIR document of the given LOINC type (57133-1 診療情報提供書 and so on).
pub fn sample_document(type_code: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": "doc-1",
        "meta": { "lastUpdated": "2026-05-31T09:00:00+09:00" },
        "identifier": { "system": "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier", "value": "1311234567-2026-00001" },
        "type": "document",
        "timestamp": "2026-05-31T09:00:00+09:00",
        "entry": [
            {
                "fullUrl": "urn:uuid:0a6b2c4e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Composition",
                    "status": "final",
                    "type": { "coding": [{ "system": "http://loinc.org", "code": type_code }] },
                    "subject": { "reference": "urn:uuid:0a6b2c4e-0000-4000-8000-000000000002" },
                    "date": "2026-05-31",
                    "author": [{ "display": "山田 太郎" }],
                    "title": "診療情報提供書"
                }
            },
            {
                "fullUrl": "urn:uuid:0a6b2c4e-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "Patient",
                    "name": [{ "text": "患者 一郎" }],
                    "birthDate": "1960-04-01",
                    "extension": [{ "url": "http://example.org/weight", "valueDecimal": serde_json::from_str::<Value>("62.50").unwrap() }]
                }
            }
        ]
    })
}

fn crl_params(revoked_certs: Vec<RevokedCertParams>) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2026, 1, 1),
        next_update: date_time_ymd(2040, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

const VALID: (i32, i32) = (2024, 2044);
const EXPIRED: (i32, i32) = (2020, 2023);

fn ca(cn: &str, serial: u64, issuer: Option<(&Certificate, &KeyPair)>) -> (Certificate, KeyPair) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = name(cn, "Tsunagu Test");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2050, 1, 1);
    params.serial_number = Some(SerialNumber::from(serial));
    let cert = match issuer {
        None => params.self_signed(&key),
        Some((cert, cert_key)) => params.signed_by(&key, cert, cert_key),
    }
    .expect("CA certificate");
    (cert, key)
}

fn leaf_params(serial: u64, cn: &str, roles: &[&str], years: (i32, i32)) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = name(cn, "Tsunagu Test Hospital");
    params.is_ca = IsCa::NoCa;
    // rcgen marks keyUsage critical.
    params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    params.not_before = date_time_ymd(years.0, 1, 1);
    params.not_after = date_time_ymd(years.1, 1, 1);
    params.serial_number = Some(SerialNumber::from(serial));
    let mut policies = CustomExtension::from_oid_content(&[2, 5, 29, 32], certificate_policies(&[HPKI_SIGNING_POLICY]));
    policies.set_criticality(true);
    params.custom_extensions.push(policies);
    params.custom_extensions.push(CustomExtension::from_oid_content(&[2, 5, 29, 9], hc_role_attributes(roles)));
    params
}

fn leaf(
    issuer: (&Certificate, &KeyPair),
    key: KeyPair,
    serial: u64,
    cn: &str,
    roles: &[&str],
    years: (i32, i32),
    alg: Algorithm,
) -> TestSigner {
    let cert = leaf_params(serial, cn, roles, years).signed_by(&key, issuer.0, issuer.1).expect("leaf");
    TestSigner {
        key_pkcs8: key.serialize_der(),
        chain_der: vec![cert.der().to_vec(), issuer.0.der().to_vec()],
        cert_pem: cert.pem(),
        alg,
    }
}

fn name(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

/// DER of a CertificatePolicies extension value asserting `oids` (no qualifiers).
pub fn certificate_policies(oids: &[&str]) -> Vec<u8> {
    let infos: Vec<u8> = oids.iter().flat_map(|o| tlv(0x30, &oid(o))).collect();
    tlv(0x30, &infos)
}

/// DER of a SubjectDirectoryAttributes extension value with one hcRole attribute holding,
/// per role, an HCActor `{ [0] CodedData { 1.2.392.100495.1.6.1.1, PrintableString role } }`.
pub fn hc_role_attributes(roles: &[&str]) -> Vec<u8> {
    let actors: Vec<u8> = roles
        .iter()
        .flat_map(|role| {
            let coded = tlv(0x30, &[oid(JP_HC_ROLE_SCHEME), tlv(0x13, role.as_bytes())].concat());
            tlv(0x30, &tlv(0xa0, &coded))
        })
        .collect();
    let attribute = tlv(0x30, &[oid(HC_ROLE_ATTRIBUTE), tlv(0x31, &actors)].concat());
    tlv(0x30, &attribute)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().expect("OID arc")).collect();
    let mut content = Vec::new();
    for arc in std::iter::once(arcs[0] * 40 + arcs[1]).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        content.extend(groups.into_iter().rev());
    }
    tlv(0x06, &content)
}
