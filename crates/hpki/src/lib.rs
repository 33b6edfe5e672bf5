//! HPKI signatures on FHIR document Bundles.
//!
//! This crate owns verifying (and, for tests and synthetic data, making) the electronic
//! signature of a FHIR document: a JWS in `Bundle.signature` (`sigFormat` `application/jose`)
//! over the document's FHIR canonical JSON, signed with an HPKI certificate whose chain travels
//! in the JWS `x5c` header. Verification covers the signature, the chain to configured HPKI
//! roots, validity periods, configured CRLs, and the signer's healthcare role (hcRole, ISO
//! 17090) against a per-document-type [`RolePolicy`].
//!
//! It never does HTTP, storage, or any network access: trust anchors and CRLs are given to it
//! (the operator installs CRL files; nothing is fetched, no OCSP), and documents arrive as
//! `serde_json::Value`.
//!
//! ```text
//! canonical.rs  the bytes signed (FHIR canonical JSON, #document)
//! jws.rs        detached compact JWS, algorithms
//! chain.rs      x5c path validation with x509-parser + ring
//! crl.rs        revocation from configured CRLs
//! role.rs       hcRole from SubjectDirectoryAttributes
//! policy.rs     document type -> required hcRole
//! trust.rs      trust anchors, CRLs, accepted certificate policies
//! bundle.rs     verify_bundle / sign_bundle / Verified
//! error.rs      SignatureError with English and Japanese messages
//! ```

mod bundle;
pub mod canonical;
mod chain;
mod crl;
mod error;
mod jws;
mod policy;
mod role;
#[cfg(feature = "testing")]
pub mod testing;
mod trust;

pub use bundle::{sign_bundle, verify_bundle, Verified, AUTHOR_SIGNATURE_CODE, AUTHOR_SIGNATURE_SYSTEM, SIG_FORMAT};
pub use error::SignatureError;
pub use jws::Algorithm;
pub use policy::{document_type_codes, RolePolicy, CHECKUP_REPORT, DISCHARGE_SUMMARY, MEDICAL_DOCTOR, REFERRAL_LETTER};
pub use role::{hc_roles, HcRole, HC_ROLE_ATTRIBUTE, JP_HC_ROLE_SCHEME, SUBJECT_DIRECTORY_ATTRIBUTES};
pub use trust::{TrustStore, HPKI_SIGNING_POLICY};
