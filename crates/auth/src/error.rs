//! The one error type of this crate.

/// Why a scope, a token or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A scope that is not in the SMART grammar (nor one of the identity and launch scopes).
    #[error("invalid scope `{scope}`: {reason}")]
    InvalidScope { scope: String, reason: &'static str },
    /// A bearer token that does not prove anything (the reason is safe to tell the client).
    #[error("invalid access token: {0}")]
    InvalidToken(String),
    /// A client that did not prove who it is (OAuth's `invalid_client`).
    #[error("invalid client: {0}")]
    InvalidClient(String),
    /// A signing key could not be made, read or written.
    #[error("signing key: {0}")]
    Key(String),
}
