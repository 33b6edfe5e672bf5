//! JWS compact serialization (RFC 7515) with a detached payload: `header..signature`.
//!
//! The payload is the canonical document (see [`crate::canonical`]); it is not carried in the
//! JWS but recomputed from the Bundle (RFC 7515 appendix F). A JWS that does carry a payload is
//! accepted when that payload is exactly the canonical document. The protected header names
//! `alg` and the signer's chain in `x5c` (standard base64 DER, leaf first); a `crit` header is
//! refused since no extension header is understood here (so RFC 7797 unencoded payloads are
//! refused too).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{json, Map, Value};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::chain::{key_kind, KeyKind};
use crate::error::{encoding, unsupported, SignatureError};

/// JWS signature algorithms accepted and produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what HPKI RSA keys give).
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "RS256" => Algorithm::Rs256,
            "PS256" => Algorithm::Ps256,
            _ => return None,
        })
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        }
    }

    fn fits(self, key: KeyKind) -> bool {
        matches!(
            (self, key),
            (Algorithm::Es256, KeyKind::P256)
                | (Algorithm::Es384, KeyKind::P384)
                | (Algorithm::Rs256 | Algorithm::Ps256, KeyKind::Rsa)
        )
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed compact JWS.
pub(crate) struct Jws {
    pub alg: Algorithm,
    pub x5c: Vec<Vec<u8>>,
    header_b64: String,
    payload_b64: String,
    signature: Vec<u8>,
}

impl Jws {
    pub fn parse(compact: &str) -> Result<Self, SignatureError> {
        let parts: Vec<&str> = compact.trim().split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
            return Err(encoding("a JWS compact serialization has three parts"));
        };
        let header_bytes = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| encoding("JWS header is not base64url"))?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header_bytes).map_err(|_| encoding("JWS header is not a JSON object"))?;
        let signature =
            URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| encoding("JWS signature is not base64url"))?;
        if header.contains_key("crit") {
            return Err(unsupported("JWS crit header parameters are not supported"));
        }
        let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| encoding("JWS header has no alg"))?;
        let alg = Algorithm::from_name(alg)
            .ok_or_else(|| unsupported(format!("JWS alg {alg} (ES256, ES384, RS256, PS256 are)")))?;
        let x5c = match header.get("x5c") {
            None | Some(Value::Null) => return Err(SignatureError::MissingCertificates),
            Some(Value::Array(certs)) if certs.is_empty() => return Err(SignatureError::MissingCertificates),
            Some(Value::Array(certs)) => certs
                .iter()
                .map(|c| {
                    c.as_str()
                        .and_then(|s| STANDARD.decode(s).ok())
                        .ok_or_else(|| encoding("x5c entries are base64 DER certificates"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(encoding("x5c is not an array")),
        };
        Ok(Jws { alg, x5c, header_b64: header_b64.to_string(), payload_b64: payload_b64.to_string(), signature })
    }

    /// Checks the signature over `payload` (the canonical document) with the leaf's key.
    pub fn verify(&self, payload: &[u8], leaf_key: &SubjectPublicKeyInfo) -> Result<(), SignatureError> {
        let payload_b64 = if self.payload_b64.is_empty() {
            URL_SAFE_NO_PAD.encode(payload)
        } else {
            let attached =
                URL_SAFE_NO_PAD.decode(&self.payload_b64).map_err(|_| encoding("JWS payload is not base64url"))?;
            if attached != payload {
                return Err(SignatureError::BadSignature);
            }
            self.payload_b64.clone()
        };
        if !self.alg.fits(key_kind(leaf_key)) {
            return Err(unsupported(format!("JWS alg {} does not fit the signer certificate's key", self.alg)));
        }
        let input = format!("{}.{}", self.header_b64, payload_b64);
        UnparsedPublicKey::new(self.alg.verification(), &leaf_key.subject_public_key.data)
            .verify(input.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// A detached compact JWS over `payload`, signed with a PKCS#8 key, carrying `chain` in x5c.
pub(crate) fn sign(
    alg: Algorithm,
    key_pkcs8: &[u8],
    chain: &[Vec<u8>],
    payload: &[u8],
) -> Result<String, SignatureError> {
    let x5c: Vec<String> = chain.iter().map(|der| STANDARD.encode(der)).collect();
    let header = json!({ "alg": alg.name(), "x5c": x5c });
    let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
    let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let rng = SystemRandom::new();
    let failed = |what: &str| SignatureError::Signing { detail: what.to_string() };
    let signature = match alg {
        Algorithm::Es256 | Algorithm::Es384 => {
            let signing = if alg == Algorithm::Es256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let key = EcdsaKeyPair::from_pkcs8(signing, key_pkcs8, &rng)
                .map_err(|_| failed("the key is not a PKCS#8 EC key for this algorithm"))?;
            key.sign(&rng, input.as_bytes()).map_err(|_| failed("ECDSA signing"))?.as_ref().to_vec()
        }
        Algorithm::Rs256 | Algorithm::Ps256 => {
            let key = RsaKeyPair::from_pkcs8(key_pkcs8).map_err(|_| failed("the key is not a PKCS#8 RSA key"))?;
            let padding: &dyn signature::RsaEncoding =
                if alg == Algorithm::Rs256 { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
            let mut out = vec![0; key.public().modulus_len()];
            key.sign(padding, &rng, input.as_bytes(), &mut out).map_err(|_| failed("RSA signing"))?;
            out
        }
    };
    Ok(format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(signature)))
}
