//! Certificate path validation for an `x5c` chain, leaf first, up to a configured HPKI root.
//!
//! Written here with x509-parser (parsing) and ring (signatures) rather than taken from
//! rustls-webpki: real HPKI certificates mark CertificatePolicies critical, and webpki refuses
//! every certificate with a critical extension it does not process. The checks are the ones a
//! document signature needs, not the whole RFC 5280 algorithm: each certificate is signed by
//! the next and the last by a trust anchor; all of them, anchor included, are valid at the
//! verification time; issuers are CAs (basicConstraints, pathLenConstraint, keyCertSign); the
//! leaf may sign (nonRepudiation or digitalSignature) and asserts an accepted certificate
//! policy; critical extensions outside those HPKI uses are refused; configured CRLs are
//! consulted. Not done: policy mapping/constraints processing, name constraints (a critical
//! nameConstraints is refused), OCSP.

use chrono::{DateTime, SecondsFormat};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::error::{encoding, SignatureError};
use crate::role::{self, HcRole};
use crate::trust::TrustStore;

/// Critical extensions HPKI certificates carry and this module understands.
const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies (critical in HPKI)
    "2.5.29.9",  // subjectDirectoryAttributes (hcRole)
    "2.5.29.17", // subjectAltName
    "2.5.29.18", // issuerAltName
];
const ANY_POLICY: &str = "2.5.29.32.0";
/// Longest x5c accepted (HPKI chains are leaf, signing CA, sometimes a cross certificate).
const MAX_CHAIN: usize = 8;

/// What a valid chain says about its signer.
#[derive(Debug, Clone)]
pub(crate) struct ChainInfo {
    pub subject: String,
    pub common_name: Option<String>,
    pub issuer: String,
    pub serial: String,
    pub not_after: i64,
    pub policies: Vec<String>,
    pub roles: Vec<HcRole>,
    pub anchor: String,
    /// Certificates whose issuer has no configured CRL.
    pub revocation_unchecked: Vec<String>,
}

/// Parses `x5c` DER certificates.
pub(crate) fn parse(chain: &[Vec<u8>]) -> Result<Vec<X509Certificate<'_>>, SignatureError> {
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| match X509Certificate::from_der(der) {
            Ok(([], cert)) => Ok(cert),
            Ok(_) => Err(encoding(format!("x5c[{i}] has trailing bytes"))),
            Err(e) => Err(encoding(format!("x5c[{i}] is not a certificate: {e}"))),
        })
        .collect()
}

/// Validates `chain` (leaf first) against `trust` at `now` (Unix seconds).
pub(crate) fn verify(chain_der: &[Vec<u8>], trust: &TrustStore, now: i64) -> Result<ChainInfo, SignatureError> {
    // A chain that ends with the root itself: the root is taken from the trust store instead.
    let mut chain_der = chain_der;
    while chain_der.len() > 1 && trust.is_anchor(&chain_der[chain_der.len() - 1]) {
        chain_der = &chain_der[..chain_der.len() - 1];
    }
    if chain_der.len() > MAX_CHAIN {
        return Err(SignatureError::Untrusted {
            detail: format!("x5c has {} certificates (at most {MAX_CHAIN})", chain_der.len()),
        });
    }
    let certs = parse(chain_der)?;
    let Some(leaf) = certs.first() else {
        return Err(SignatureError::MissingCertificates);
    };

    // Links: certs[i] signed by certs[i + 1]; the last by an anchor.
    for pair in certs.windows(2) {
        let (child, issuer) = (&pair[0], &pair[1]);
        if child.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(SignatureError::Untrusted {
                detail: format!(
                    "{} is not issued by the next certificate in x5c ({})",
                    child.subject(),
                    issuer.subject()
                ),
            });
        }
        verify_signed(
            &child.signature_algorithm,
            child.tbs_certificate.as_ref(),
            &child.signature_value.data,
            issuer.public_key(),
        )
        .map_err(|e| SignatureError::Untrusted {
            detail: format!("signature on {} by {}: {e}", child.subject(), issuer.subject()),
        })?;
    }
    let top = certs.last().expect("non-empty");
    let anchors: Vec<X509Certificate> = trust.anchors().collect();
    let anchor = anchors
        .iter()
        .filter(|a| a.subject().as_raw() == top.issuer().as_raw())
        .find(|a| {
            verify_signed(
                &top.signature_algorithm,
                top.tbs_certificate.as_ref(),
                &top.signature_value.data,
                a.public_key(),
            )
            .is_ok()
        })
        .ok_or_else(|| SignatureError::Untrusted {
            detail: format!("{} is not issued by a configured trust anchor", top.issuer()),
        })?;

    // Validity of everything, anchor included.
    for cert in certs.iter().chain(std::iter::once(anchor)) {
        check_validity(cert, now)?;
    }

    // Issuers: CA, path length, keyCertSign. certs[j] (j >= 1) has j - 1 CAs below it.
    for (j, issuer) in certs.iter().enumerate().skip(1) {
        check_ca(issuer, j - 1)?;
    }
    for cert in &certs {
        check_critical(cert)?;
    }
    let leaf_facts = leaf_facts(leaf)?;
    let accepted = trust.accepted_policies();
    if !accepted.is_empty() && !leaf_facts.policies.iter().any(|p| accepted.contains(p)) {
        return Err(invalid(
            leaf,
            format!("its certificate policies {:?} include none of the accepted {:?}", leaf_facts.policies, accepted),
        ));
    }

    // Revocation: each certificate against its issuer's CRLs.
    let mut revocation_unchecked = Vec::new();
    for (i, cert) in certs.iter().enumerate() {
        let issuer = certs.get(i + 1).unwrap_or(anchor);
        if !crate::crl::check(cert, issuer, trust, now)? {
            revocation_unchecked.push(cert.subject().to_string());
        }
    }

    Ok(ChainInfo {
        subject: leaf.subject().to_string(),
        common_name: common_name(leaf),
        issuer: leaf.issuer().to_string(),
        serial: leaf.tbs_certificate.raw_serial_as_string(),
        not_after: leaf.validity().not_after.timestamp(),
        policies: leaf_facts.policies,
        roles: leaf_facts.roles,
        anchor: anchor.subject().to_string(),
        revocation_unchecked,
    })
}

struct LeafFacts {
    policies: Vec<String>,
    roles: Vec<HcRole>,
}

fn leaf_facts(leaf: &X509Certificate) -> Result<LeafFacts, SignatureError> {
    let mut facts = LeafFacts { policies: Vec::new(), roles: Vec::new() };
    let mut may_sign = None;
    for ext in leaf.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => may_sign = Some(ku.non_repudiation() || ku.digital_signature()),
            ParsedExtension::CertificatePolicies(policies) => {
                facts.policies.extend(policies.iter().map(|p| p.policy_id.to_id_string()).filter(|p| p != ANY_POLICY));
            }
            _ if ext.oid.to_id_string() == role::SUBJECT_DIRECTORY_ATTRIBUTES => {
                facts.roles =
                    role::hc_roles(ext.value).map_err(|e| invalid(leaf, format!("hcRole does not parse: {e}")))?;
            }
            _ => {}
        }
    }
    match may_sign {
        Some(true) => Ok(facts),
        Some(false) => Err(invalid(leaf, "its keyUsage allows neither nonRepudiation nor digitalSignature")),
        None => Err(invalid(leaf, "it has no keyUsage")),
    }
}

fn check_ca(cert: &X509Certificate, cas_below: usize) -> Result<(), SignatureError> {
    let mut is_ca = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                is_ca = bc.ca;
                if let Some(max) = bc.path_len_constraint {
                    if cas_below > max as usize {
                        return Err(invalid(cert, format!("pathLenConstraint {max} exceeded")));
                    }
                }
            }
            ParsedExtension::KeyUsage(ku) if !ku.key_cert_sign() => {
                return Err(invalid(cert, "issuer keyUsage lacks keyCertSign"));
            }
            _ => {}
        }
    }
    if is_ca {
        Ok(())
    } else {
        Err(invalid(cert, "an issuer in the chain is not a CA (basicConstraints)"))
    }
}

fn check_critical(cert: &X509Certificate) -> Result<(), SignatureError> {
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(invalid(cert, format!("extension {oid} does not parse: {error}")));
        }
        if ext.critical && !KNOWN_CRITICAL.contains(&oid.as_str()) {
            return Err(invalid(cert, format!("unknown critical extension {oid}")));
        }
    }
    Ok(())
}

fn check_validity(cert: &X509Certificate, now: i64) -> Result<(), SignatureError> {
    let validity = cert.validity();
    let (from, until) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    if now < from {
        return Err(SignatureError::NotYetValid { subject: cert.subject().to_string(), not_before: rfc3339(from) });
    }
    if now > until {
        return Err(SignatureError::Expired { subject: cert.subject().to_string(), not_after: rfc3339(until) });
    }
    Ok(())
}

/// Checks a signature made by `issuer_key` over `message` (a TBSCertificate or TBSCertList).
pub(crate) fn verify_signed(
    algorithm: &AlgorithmIdentifier,
    message: &[u8],
    signature: &[u8],
    issuer_key: &SubjectPublicKeyInfo,
) -> Result<(), String> {
    let oid = algorithm.algorithm.to_id_string();
    let ring_alg = x509_algorithm(&oid, key_kind(issuer_key))
        .ok_or_else(|| format!("unsupported signature algorithm {oid} for this key"))?;
    UnparsedPublicKey::new(ring_alg, &issuer_key.subject_public_key.data)
        .verify(message, signature)
        .map_err(|_| "signature does not verify".to_string())
}

fn x509_algorithm(oid: &str, key: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
    use KeyKind::*;
    Some(match (oid, key) {
        ("1.2.840.113549.1.1.11", Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", Rsa) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", Rsa) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", P256) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.2", P384) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", P384) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.3", P256) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.3.101.112", Ed25519) => &signature::ED25519,
        _ => return None,
    })
}

/// The kind of a subject public key, as far as signatures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
    Other,
}

pub(crate) fn key_kind(spki: &SubjectPublicKeyInfo) -> KeyKind {
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => KeyKind::Rsa,
        "1.3.101.112" => KeyKind::Ed25519,
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            match curve.map(|c| c.to_id_string()).as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyKind::P256,
                Some("1.3.132.0.34") => KeyKind::P384,
                _ => KeyKind::Other,
            }
        }
        _ => KeyKind::Other,
    }
}

pub(crate) fn common_name(cert: &X509Certificate) -> Option<String> {
    cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string)
}

fn invalid(cert: &X509Certificate, detail: impl Into<String>) -> SignatureError {
    SignatureError::InvalidCertificate { subject: cert.subject().to_string(), detail: detail.into() }
}

pub(crate) fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::TestPki;

    /// A certificate shaped like a real HPKI signing certificate (critical CertificatePolicies,
    /// critical keyUsage nonRepudiation, hcRole) passes; webpki would refuse it for the
    /// critical CertificatePolicies.
    #[test]
    fn critical_certificate_policies_are_accepted() {
        let pki = TestPki::new();
        let chain = &pki.doctor.chain_der;
        let leaf = &parse(chain).unwrap()[0];
        let policies = leaf.extensions().iter().find(|e| e.oid.to_id_string() == "2.5.29.32").unwrap();
        assert!(policies.critical);
        let key_usage = leaf.extensions().iter().find(|e| e.oid.to_id_string() == "2.5.29.15").unwrap();
        assert!(key_usage.critical);

        let info = verify(chain, &pki.trust_store(), TestPki::now_secs()).unwrap();
        assert_eq!(info.policies, vec![crate::HPKI_SIGNING_POLICY.to_string()]);
        assert_eq!(info.roles[0].value, "Medical Doctor");
        assert_eq!(info.roles[0].scheme, role::JP_HC_ROLE_SCHEME);
        assert!(info.revocation_unchecked.is_empty());
    }

    #[test]
    fn unknown_critical_extension_is_refused() {
        let pki = TestPki::new();
        let chain = pki.leaf_with_unknown_critical_extension();
        let err = verify(&chain, &pki.trust_store(), TestPki::now_secs()).unwrap_err();
        assert!(
            matches!(err, SignatureError::InvalidCertificate { ref detail, .. } if detail.contains("1.2.3.4.5")),
            "{err:?}"
        );
    }
}
