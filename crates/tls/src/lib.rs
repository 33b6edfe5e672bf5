//! TLS for Tsunagu with rustls on the ring crypto provider.
//!
//! This crate owns the TLS settings (`serve --tls-cert FILE --tls-key FILE`, optionally
//! `--tls-client-ca FILE`), loading the PEM files they name, the rustls server configuration
//! built from them (TLS 1.3 only by default, TLS 1.2 as well only when asked, nothing older;
//! ALPN `h2` and `http/1.1`), the handshake itself with a timeout, and the identity of a
//! client certificate: its RFC 8705 `x5t#S256` thumbprint, which the server matches against
//! registered clients.
//!
//! It never speaks HTTP and never decides what a client may do: a verified client
//! certificate only yields a thumbprint, and bearer tokens remain the main credential.

mod acceptor;
mod config;
mod error;
mod identity;

use std::path::PathBuf;

pub use acceptor::{TlsAcceptor, DEFAULT_HANDSHAKE_TIMEOUT};
pub use config::server_config;
pub use error::TlsError;
pub use identity::{certificate_thumbprint, peer_thumbprint};

/// Where the server's certificate and key live, and what it accepts from clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key of the leaf certificate (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// PEM file with the CA certificates that client certificates are verified against.
    /// `None`: the server does not ask for client certificates.
    pub client_ca: Option<PathBuf>,
    /// The oldest protocol version accepted.
    pub min_version: TlsVersion,
}

impl TlsSettings {
    /// Settings for a certificate and key: TLS 1.3 only, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsSettings { cert: cert.into(), key: key.into(), client_ca: None, min_version: TlsVersion::default() }
    }
}

/// The oldest TLS version the server accepts. Nothing before TLS 1.2 is ever possible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.3 only (the default).
    #[default]
    Tls13,
    /// TLS 1.2 and TLS 1.3, for clients that cannot do 1.3 yet.
    Tls12,
}
