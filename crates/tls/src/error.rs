use std::io;
use std::path::PathBuf;

/// Why a TLS configuration could not be built. Every variant names the file at fault, so the
/// message is enough for an operator to fix `--tls-cert`, `--tls-key` or `--tls-client-ca`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    /// The file is not well-formed PEM.
    #[error("malformed PEM in {}: {source}", path.display())]
    Pem { path: PathBuf, source: io::Error },

    /// The file holds no `CERTIFICATE` block.
    #[error("no PEM certificate in {}", path.display())]
    NoCertificate { path: PathBuf },

    /// The file holds no private key (`PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`).
    #[error("no PEM private key (PKCS#8, SEC1 or PKCS#1) in {}", path.display())]
    NoPrivateKey { path: PathBuf },

    /// The private key is of a kind the crypto provider cannot use.
    #[error("unusable private key in {}: {source}", path.display())]
    InvalidKey { path: PathBuf, source: rustls::Error },

    /// The certificate could not be parsed or used.
    #[error("unusable certificate in {}: {source}", path.display())]
    InvalidCertificate { path: PathBuf, source: rustls::Error },

    /// The private key is not the one for the first (leaf) certificate of the chain.
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    /// The client CA roots could not be used to verify client certificates.
    #[error("unusable client CA certificates in {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },

    /// rustls refused the configuration itself (for instance the protocol versions).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}
