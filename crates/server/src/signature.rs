//! Wires HPKI signature verification (`tsunagu-hpki`) into JP-CLINS submissions.

use serde_json::Value;

/// Verifies a submission's `Bundle.signature` against the configured HPKI trust anchors
/// and CRLs, now, and the roles the policy requires for its document type.
pub struct HpkiCheck {
    pub trust: tsunagu_hpki::TrustStore,
    pub policy: tsunagu_hpki::RolePolicy,
}

impl tsunagu_interaction::clins::SignatureCheck for HpkiCheck {
    fn verify(&self, bundle: &Value) -> Result<(), (String, String)> {
        tsunagu_hpki::verify_bundle(bundle, &self.trust, &self.policy, std::time::SystemTime::now())
            .map(|_| ())
            .map_err(|e| (e.message_en(), e.message_ja()))
    }
}
