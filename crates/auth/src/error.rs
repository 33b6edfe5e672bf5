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

    /// Why a bearer token was refused, in Japanese (the reasons `InvalidToken` carries are
    /// this crate's own sentences; one it does not know is given as written).
    pub fn token_reason_ja(&self) -> String {
        let AuthError::InvalidToken(reason) = self else { return self.to_string() };
        let ja = match reason.as_str() {
            "not a signed JWT" => "署名された JWT ではありません",
            "the token must be signed with ES384" => "トークンは ES384 で署名されている必要があります",
            "the token names no key (kid)" => "トークンに鍵の指定（kid）がありません",
            "the token was signed with an unknown or retired key" => {
                "トークンが未知の鍵または廃止された鍵で署名されています"
            }
            "the signature does not verify" => "署名を検証できません",
            "the token was issued by someone else" => "トークンの発行者が異なります",
            "the token is for another server" => "トークンは別のサーバ向けです",
            "the token is for another audience" => "トークンは別の宛先（audience）向けです",
            "the token lacks a required claim" => "トークンに必須のクレームがありません",
            "the token is malformed" => "トークンの形式が不正です",
            "the token is malformed or lacks a required claim" => "トークンの形式が不正か、必須のクレームがありません",
            "the token has expired" => "トークンの有効期限が切れています",
            "the token was issued in the future" => "トークンの発行時刻が未来です",
            "the client or user has been disabled" => "クライアントまたは利用者が無効にされています",
            "the identity provider's token must be signed with RS256, RS384, ES256 or ES384" => {
                "認証基盤のトークンは RS256、RS384、ES256、ES384 のいずれかで署名されている必要があります"
            }
            "the identity provider has no key with this kid" => "認証基盤にこの kid の鍵がありません",
            "the identity provider's key with this kid is not a signing key" => {
                "この kid の認証基盤の鍵は署名用ではありません"
            }
            "the identity provider's key with this kid is for another algorithm" => {
                "この kid の認証基盤の鍵は別のアルゴリズム用です"
            }
            "unreadable key" => "鍵を読み取れません",
            "unusable key" => "鍵を使用できません",
            "exp is not a number" => "exp が数値ではありません",
            "the token lives longer than this server accepts (a day)" => {
                "トークンの有効期間がこのサーバの上限（1 日）を超えています"
            }
            "the token's role is not a platform role" => "トークンのロールはプラットフォームのロールではありません",
            "the token carries no platform role" => "トークンにプラットフォームのロールがありません",
            other => return other.to_string(),
        };
        ja.to_string()
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

#[cfg(test)]
mod tests {
    use super::AuthError;

    /// Every reason a token is refused for, as the verifiers write it, has its Japanese.
    #[test]
    fn every_token_reason_is_written_in_japanese() {
        let sources = [include_str!("token.rs"), include_str!("external.rs"), include_str!("authority.rs")];
        let mut reasons = Vec::new();
        for source in sources {
            for part in source.split("bad(\"").skip(1).chain(source.split("InvalidToken(\"").skip(1)) {
                reasons.push(part.split('"').next().unwrap().to_string());
            }
        }
        assert!(reasons.len() >= 20, "{reasons:?}");
        for reason in reasons {
            let ja = AuthError::InvalidToken(reason.clone()).token_reason_ja();
            assert_ne!(ja, reason, "no Japanese for '{reason}'");
            assert!(!ja.is_ascii(), "{ja}");
        }
    }
}
