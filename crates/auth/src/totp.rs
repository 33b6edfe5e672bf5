//! TOTP (RFC 6238), the second factor the MHLW security guideline asks of people who sign
//! in: six digits from an authenticator app, HMAC-SHA1 over 30-second steps, because that is
//! what every common app computes. The secret reaches the app as base32 (RFC 4648) in an
//! `otpauth://` URI, usually shown as a QR code.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::pkce::ct_eq;

/// Digits of a code.
pub const TOTP_DIGITS: u32 = 6;
/// Seconds one code is current.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps either side of the current one still accepted: phone clocks drift, and typing a
/// code takes a few seconds.
const SKEW_STEPS: u64 = 1;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648) without padding, as authenticator apps expect it.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of unpadded base32 (either case); `None` for any other character or for a
/// length no byte string encodes to.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    if matches!(s.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// The code for time step `step` (seconds since the epoch / 30).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let off = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(TOTP_DIGITS)
}

/// The step `code` belongs to, if it is the code of the current step or one either side,
/// and that step is later than `last_step` (the step of the last accepted code): a code
/// seen once is never accepted again, nor one older than it.
pub fn verify(secret: &[u8], code: &str, now: u64, last_step: Option<u64>) -> Option<u64> {
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / TOTP_STEP_SECS;
    let mut found = None;
    // Every candidate is computed and compared in full, so the time taken says nothing
    // about which step (or digit) matched.
    for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
        let expected = format!("{:0width$}", code_at(secret, step), width = TOTP_DIGITS as usize);
        let fresh = last_step.is_none_or(|last| step > last);
        if ct_eq(expected.as_bytes(), code.as_bytes()) && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads (Google Authenticator key URI format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        percent_encode(account),
        base32_encode(secret)
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 32 bytes from the operating system's random source: three v4 UUIDs (122 random bits
/// each, from `getrandom`) through SHA-256, so every output bit is uniformly random. The
/// crate's one source of secrets (TOTP keys, password salts, authorization codes).
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut h = Sha256::new();
    for _ in 0..3 {
        h.update(uuid::Uuid::new_v4().as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_vectors_truncated_to_six_digits() {
        for (t, code) in [
            (59u64, 287082),
            (1111111109, 81804),
            (1111111111, 50471),
            (1234567890, 5924),
            (2000000000, 279037),
            (20000000000, 353130),
        ] {
            assert_eq!(code_at(RFC_SECRET, t / TOTP_STEP_SECS), code, "time {t}");
        }
    }

    #[test]
    fn verify_accepts_one_step_either_side_once() {
        let now = 1111111111;
        let step = now / TOTP_STEP_SECS;
        assert_eq!(verify(RFC_SECRET, "050471", now, None), Some(step));
        assert_eq!(verify(RFC_SECRET, "081804", now, None), Some(step - 1), "previous step, same code as 1111111109");
        let next = format!("{:06}", code_at(RFC_SECRET, step + 1));
        assert_eq!(verify(RFC_SECRET, &next, now, None), Some(step + 1));
        let far = format!("{:06}", code_at(RFC_SECRET, step + 2));
        assert_eq!(verify(RFC_SECRET, &far, now, None), None);
        assert_eq!(verify(RFC_SECRET, "050471", now, Some(step)), None, "replay");
        assert_eq!(verify(RFC_SECRET, "081804", now, Some(step)), None, "older than the last used");
        for bad in ["50471", "0504710", "05047a", " 50471", ""] {
            assert_eq!(verify(RFC_SECRET, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), raw.as_bytes());
            assert_eq!(base32_decode(&enc.to_lowercase()).unwrap(), raw.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6YTBOI======"), None, "no padding");
        assert_eq!(base32_decode("MZ1W"), None);
        assert_eq!(base32_decode("M"), None);
        let bytes = random_bytes();
        assert_eq!(base32_decode(&base32_encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn otpauth_uri_escapes_its_labels() {
        let uri = otpauth_uri("Tsunagu", "yamada taro@病院", b"12345");
        assert_eq!(
            uri,
            "otpauth://totp/Tsunagu:yamada%20taro%40%E7%97%85%E9%99%A2?secret=GEZDGNBV&issuer=Tsunagu\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
