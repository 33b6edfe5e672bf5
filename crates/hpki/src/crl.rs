//! Revocation from configured CRLs (files the operator installs; nothing is fetched).
//!
//! For a certificate, the CRLs whose issuer name is the certificate's issuer are considered.
//! Each must be signed by that issuer (a CRL that claims the name but does not verify is an
//! error, not something to skip) and the issuer, if it has keyUsage, must allow cRLSign. The
//! newest (latest thisUpdate) is used and must be current: thisUpdate not in the future, and
//! nextUpdate not passed; a CRL without nextUpdate is taken as current. Any listing revokes,
//! whatever the revocation date: without a trusted timestamp the signing time in the document
//! is only the signer's claim. Delta CRLs and CRLs with critical extensions other than
//! issuingDistributionPoint are refused; an issuingDistributionPoint's scope is not
//! interpreted (the CRL is taken as covering every certificate of its issuer).

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::X509Certificate;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::chain::{rfc3339, verify_signed};
use crate::error::SignatureError;
use crate::trust::TrustStore;

const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";

/// Checks `cert` against the CRLs of `issuer`. `Ok(true)`: a CRL was consulted and does not
/// list it; `Ok(false)`: no CRL is configured for this issuer.
pub(crate) fn check(
    cert: &X509Certificate,
    issuer: &X509Certificate,
    trust: &TrustStore,
    now: i64,
) -> Result<bool, SignatureError> {
    let mut newest: Option<CertificateRevocationList> = None;
    for crl in trust.crls().filter(|c| c.issuer().as_raw() == cert.issuer().as_raw()) {
        check_crl_signature(&crl, issuer)?;
        if newest.as_ref().is_none_or(|n| crl.last_update() > n.last_update()) {
            newest = Some(crl);
        }
    }
    let Some(crl) = newest else {
        return Ok(false);
    };
    let unusable = |detail: String| SignatureError::CrlUnusable { issuer: crl.issuer().to_string(), detail };
    if crl.last_update().timestamp() > now {
        return Err(unusable(format!("thisUpdate {} is in the future", rfc3339(crl.last_update().timestamp()))));
    }
    if let Some(next) = crl.next_update() {
        if next.timestamp() < now {
            return Err(unusable(format!("past its nextUpdate {}", rfc3339(next.timestamp()))));
        }
    }
    if let Some(entry) = crl.iter_revoked_certificates().find(|e| e.serial() == &cert.tbs_certificate.serial) {
        return Err(SignatureError::Revoked {
            subject: cert.subject().to_string(),
            serial: cert.tbs_certificate.raw_serial_as_string(),
            revoked_at: rfc3339(entry.revocation_date.timestamp()),
        });
    }
    Ok(true)
}

/// The CRL's form (extensions) and its signature by `issuer`.
pub(crate) fn check_crl_signature(
    crl: &CertificateRevocationList,
    issuer: &X509Certificate,
) -> Result<(), SignatureError> {
    let unusable = |detail: String| SignatureError::CrlUnusable { issuer: crl.issuer().to_string(), detail };
    for ext in crl.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == DELTA_CRL_INDICATOR {
            return Err(unusable("delta CRLs are not supported".into()));
        }
        if ext.critical && oid != ISSUING_DISTRIBUTION_POINT {
            return Err(unusable(format!("unknown critical extension {oid}")));
        }
    }
    for ext in issuer.extensions() {
        if let ParsedExtension::KeyUsage(ku) = ext.parsed_extension() {
            if !ku.crl_sign() {
                return Err(unusable("its issuer's keyUsage lacks cRLSign".into()));
            }
        }
    }
    verify_signed(&crl.signature_algorithm, crl.tbs_cert_list.as_ref(), &crl.signature_value.data, issuer.public_key())
        .map_err(|e| unusable(format!("CRL signature: {e}")))
}
