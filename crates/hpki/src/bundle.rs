//! `Bundle.signature` on a FHIR document: verifying it, and making it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::canonical::{self, TARGET_FORMAT};
use crate::chain;
use crate::error::{encoding, unsupported, SignatureError};
use crate::jws::{self, Algorithm, Jws};
use crate::policy::{document_type_codes, RolePolicy};
use crate::role::{HcRole, JP_HC_ROLE_SCHEME};
use crate::trust::TrustStore;

/// `Signature.sigFormat` for a JWS.
pub const SIG_FORMAT: &str = "application/jose";
/// `Signature.type`: ASTM E1762-95 "Author's Signature".
pub const AUTHOR_SIGNATURE_SYSTEM: &str = "urn:iso-astm:E1762-95:2013";
pub const AUTHOR_SIGNATURE_CODE: &str = "1.2.840.10065.1.12.1.1";

/// A document signature that verified: who signed, in which capacity, under which policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Signer certificate subject (RFC 4514-style).
    pub signer: String,
    /// Its common name, if any (the signer's name in HPKI).
    pub signer_name: Option<String>,
    /// Signer certificate issuer and serial number (hex).
    pub issuer: String,
    pub serial: String,
    /// hcRole values of the signer (all schemes; the policy matches the Japanese HPKI one).
    pub hc_roles: Vec<HcRole>,
    /// Certificate policy OIDs of the signer certificate.
    pub policy_oids: Vec<String>,
    /// End of the signer certificate's validity.
    pub not_after: DateTime<Utc>,
    pub algorithm: Algorithm,
    /// Document type code (from Composition.type) the role policy was applied with.
    pub document_type: Option<String>,
    /// `Signature.when` as the signer claims it (not a trusted timestamp).
    pub signed_at: Option<String>,
    /// Subject of the trust anchor the chain ends at.
    pub trust_anchor: String,
    /// Certificates in the chain whose issuer had no configured CRL (revocation not checked).
    pub revocation_unchecked: Vec<String>,
}

impl Verified {
    /// hcRole texts in the Japanese HPKI scheme ("Medical Doctor", ...).
    pub fn roles(&self) -> Vec<&str> {
        jp_roles(&self.hc_roles)
    }
}

impl fmt::Display for Verified {
    /// A readable report for operators (`tsunagu hpki verify`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Signature valid (署名は有効です)")?;
        writeln!(f, "  signer:        {}", self.signer)?;
        writeln!(f, "  issuer:        {} (serial {})", self.issuer, self.serial)?;
        writeln!(f, "  trust anchor:  {}", self.trust_anchor)?;
        let roles = self.roles();
        writeln!(f, "  hcRole:        {}", if roles.is_empty() { "(none)".to_string() } else { roles.join(", ") })?;
        writeln!(f, "  policies:      {}", self.policy_oids.join(", "))?;
        writeln!(f, "  not after:     {}", self.not_after.to_rfc3339())?;
        writeln!(f, "  algorithm:     {}", self.algorithm)?;
        writeln!(f, "  document type: {}", self.document_type.as_deref().unwrap_or("(none)"))?;
        writeln!(f, "  signed at:     {} (as claimed)", self.signed_at.as_deref().unwrap_or("(not given)"))?;
        if self.revocation_unchecked.is_empty() {
            write!(f, "  revocation:    checked against configured CRLs for the whole chain")
        } else {
            write!(
                f,
                "  revocation:    NOT checked (no CRL configured for the issuer of) {}",
                self.revocation_unchecked.join("; ")
            )
        }
    }
}

/// Verifies the JWS in `bundle.signature` over the document, the signer's chain to `trust` at
/// `now` (validity, CRLs), and that the signer's hcRole is one `policy` requires for the
/// document type (the first entry's `Composition.type`).
///
/// Order of checks, so the first failure is the one reported: format and encoding, the
/// signature over the content ([`SignatureError::BadSignature`] for altered content), the
/// chain's trust, validity, certificate constraints, revocation, then the role.
pub fn verify_bundle(
    bundle: &Value,
    trust: &TrustStore,
    policy: &RolePolicy,
    now: SystemTime,
) -> Result<Verified, SignatureError> {
    if bundle["resourceType"] != "Bundle" {
        return Err(unsupported("only a Bundle carries a document signature"));
    }
    let signature = match bundle.get("signature") {
        None | Some(Value::Null) => return Err(SignatureError::Missing),
        Some(Value::Object(s)) => s,
        Some(_) => return Err(encoding("Bundle.signature is not an object")),
    };
    match signature.get("sigFormat").and_then(Value::as_str) {
        Some(SIG_FORMAT) => {}
        Some(other) => return Err(unsupported(format!("sigFormat {other} (only {SIG_FORMAT})"))),
        None => return Err(unsupported(format!("sigFormat is missing (must be {SIG_FORMAT})"))),
    }
    if let Some(target) = signature.get("targetFormat").and_then(Value::as_str) {
        if normalize_mime(target) != normalize_mime(TARGET_FORMAT) {
            return Err(unsupported(format!("targetFormat {target} (only {TARGET_FORMAT})")));
        }
    }
    let data = signature
        .get("data")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| encoding("Signature.data is missing"))?;
    // base64 has no '.', so data holding the compact JWS itself is told apart and accepted.
    let compact = if data.contains('.') {
        data.to_string()
    } else {
        let bytes = STANDARD.decode(data.trim()).map_err(|_| encoding("Signature.data is not base64"))?;
        String::from_utf8(bytes).map_err(|_| encoding("Signature.data is not a JWS"))?
    };
    let jws = Jws::parse(&compact)?;

    let payload = canonical::document_bytes(bundle);
    {
        let certs = chain::parse(&jws.x5c)?;
        jws.verify(&payload, certs[0].public_key())?;
    }
    let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let info = chain::verify(&jws.x5c, trust, now)?;

    let type_codes = document_type_codes(bundle);
    let found: Vec<String> = jp_roles(&info.roles).into_iter().map(str::to_string).collect();
    let document_type = match policy.requirement(&type_codes) {
        Some((code, required)) => {
            if !found.iter().any(|r| required.contains(r)) {
                return Err(SignatureError::WrongRole {
                    document_type: code.to_string(),
                    required: required.iter().cloned().collect(),
                    found,
                });
            }
            Some(code.to_string())
        }
        None => type_codes.first().cloned(),
    };

    Ok(Verified {
        signer: info.subject,
        signer_name: info.common_name,
        issuer: info.issuer,
        serial: info.serial,
        hc_roles: info.roles,
        policy_oids: info.policies,
        not_after: DateTime::from_timestamp(info.not_after, 0).unwrap_or_default(),
        algorithm: jws.alg,
        document_type,
        signed_at: signature.get("when").and_then(Value::as_str).map(str::to_string),
        trust_anchor: info.anchor,
        revocation_unchecked: info.revocation_unchecked,
    })
}

/// Signs `bundle` as its author: writes `Bundle.signature` (type Author's Signature, `when`,
/// `who` naming the signer certificate's common name, targetFormat, sigFormat
/// `application/jose`, data = base64 of a detached JWS over the canonical document).
///
/// `signer_key_pkcs8` is the signer's private key (PKCS#8 DER) matching `chain_der[0]`;
/// `chain_der` is the chain to put in `x5c`, leaf first (the root may be left out).
/// Any existing signature is replaced.
pub fn sign_bundle(
    bundle: &mut Value,
    signer_key_pkcs8: &[u8],
    chain_der: &[Vec<u8>],
    alg: Algorithm,
    when: &str,
) -> Result<(), SignatureError> {
    let Some(object) = bundle.as_object_mut() else {
        return Err(SignatureError::Signing { detail: "the document is not a JSON object".into() });
    };
    object.remove("signature");
    let certs = chain::parse(chain_der)?;
    let Some(leaf) = certs.first() else {
        return Err(SignatureError::MissingCertificates);
    };
    let who = chain::common_name(leaf).unwrap_or_else(|| leaf.subject().to_string());

    let payload = canonical::document_bytes(bundle);
    let compact = jws::sign(alg, signer_key_pkcs8, chain_der, &payload)?;
    // The key must be the certificate's: a signature nobody can verify is refused here.
    Jws::parse(&compact)?.verify(&payload, leaf.public_key()).map_err(|_| SignatureError::Signing {
        detail: "the private key does not match the signer certificate".into(),
    })?;

    bundle["signature"] = json!({
        "type": [{
            "system": AUTHOR_SIGNATURE_SYSTEM,
            "code": AUTHOR_SIGNATURE_CODE,
            "display": "Author's Signature"
        }],
        "when": when,
        "who": { "display": who },
        "targetFormat": TARGET_FORMAT,
        "sigFormat": SIG_FORMAT,
        "data": STANDARD.encode(compact),
    });
    Ok(())
}

fn jp_roles(roles: &[HcRole]) -> Vec<&str> {
    roles.iter().filter(|r| r.scheme == JP_HC_ROLE_SCHEME).map(|r| r.value.as_str()).collect()
}

fn normalize_mime(s: &str) -> String {
    s.split(';').map(str::trim).collect::<Vec<_>>().join(";")
}
