//! PKCE (RFC 7636), `S256` only: an authorization code is worth nothing without the
//! verifier the app kept to itself, so a code stolen on its way back through the browser
//! (another app on the phone claiming the redirect URI) cannot be redeemed. `plain` would
//! send the verifier itself through the browser, and SMART App Launch 2.x forbids it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The `S256` challenge of `verifier`: base64url without padding of its SHA-256.
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a well-formed code verifier (43 to 128 characters of
/// `[A-Za-z0-9-._~]`) whose `S256` challenge is `challenge`.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && ct_eq(challenge_s256(verifier).as_bytes(), challenge.as_bytes())
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(challenge_s256(VERIFIER), CHALLENGE);
        assert!(verify_s256(VERIFIER, CHALLENGE));
    }

    #[test]
    fn wrong_or_malformed_verifiers_are_refused() {
        let mut other = VERIFIER.to_string();
        other.replace_range(0..1, "e");
        assert!(!verify_s256(&other, CHALLENGE));
        assert!(!verify_s256(VERIFIER, &CHALLENGE[..42]));
        assert!(!verify_s256(VERIFIER, CHALLENGE.to_lowercase().as_str()));
        // The challenge of a too-short or ill-charactered verifier still does not pass.
        for bad in ["short", &"a".repeat(129), &format!("{}+", &VERIFIER[..43])] {
            assert!(!verify_s256(bad, &challenge_s256(bad)), "{bad}");
        }
        assert!(verify_s256(&"a".repeat(128), &challenge_s256(&"a".repeat(128))));
    }

    #[test]
    fn ct_eq_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
