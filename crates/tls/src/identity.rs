//! Client-certificate identity: the RFC 8705 thumbprint that registered clients are matched by.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The RFC 8705 `x5t#S256` thumbprint of a DER certificate: base64url (no padding) of its
/// SHA-256 digest.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The thumbprint of the leaf certificate the client presented, if it presented one. With a
/// client CA configured, rustls has verified that certificate before the handshake completes.
pub fn peer_thumbprint(conn: &rustls::ServerConnection) -> Option<String> {
    conn.peer_certificates()?.first().map(|leaf| certificate_thumbprint(leaf))
}
