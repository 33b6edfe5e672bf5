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
    /// The client and user registry could not be read or written.
    #[error("registry: {0}")]
    Registry(String),
    /// A user account that cannot be created or changed as asked (the reason is for the
    /// administrator).
    #[error("user account: {0}")]
    InvalidUser(String),
    /// Sign-in refused: unknown user, wrong password, wrong or reused TOTP code, or a
    /// disabled account. One error for all, so that it tells a guesser nothing.
    #[error("the user id, password or code is wrong, or the account cannot be used")]
    LoginFailed,
    /// Sign-in refused because of repeated failures, whatever the credentials, until
    /// `until` (seconds since the epoch).
    #[error("the account is locked after repeated sign-in failures")]
    Locked { until: u64 },
    /// An authorization request that cannot be served (OAuth's `invalid_request`).
    #[error("invalid authorization request: {0}")]
    InvalidRequest(String),
    /// An authorization code that does not yield a token (OAuth's `invalid_grant`).
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// An authorization code presented a second time (OAuth's `invalid_grant`): someone else
    /// may hold it, so the tokens issued for `grant_id` should be revoked (RFC 6749 §4.1.2).
    #[error("invalid grant: the authorization code was already used")]
    CodeReused { grant_id: String },
    /// The server cannot take the request now (OAuth's `temporarily_unavailable`).
    #[error("temporarily unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// A grant type the token endpoint does not serve.
    #[error("unsupported grant type: {0}")]
    UnsupportedGrantType(String),
    /// The client may not use this grant (OAuth's `unauthorized_client`).
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(String),
}

impl AuthError {
    /// The OAuth 2.0 error code (RFC 6749 §5.2) a token or authorize endpoint answers with.
    pub fn oauth_code(&self) -> &'static str {
        match self {
            AuthError::InvalidScope { .. } => "invalid_scope",
            AuthError::InvalidClient(_) => "invalid_client",
            AuthError::InvalidRequest(_) => "invalid_request",
            AuthError::InvalidGrant(_) | AuthError::CodeReused { .. } => "invalid_grant",
            AuthError::LoginFailed | AuthError::Locked { .. } => "access_denied",
            AuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            AuthError::UnauthorizedClient(_) => "unauthorized_client",
            AuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::Key(_) | AuthError::Registry(_) | AuthError::InvalidUser(_) => "server_error",
        }
    }

    /// The HTTP status of that answer: 401 for a client that did not prove itself, 500
    /// for the server's own trouble, 503 when busy, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::InvalidClient(_) | AuthError::InvalidToken(_) => 401,
            AuthError::Key(_) | AuthError::Registry(_) => 500,
            AuthError::TemporarilyUnavailable(_) => 503,
            _ => 400,
        }
    }
}
