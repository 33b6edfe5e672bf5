//! Access tokens: JWS (ES384) signed by the server's current key, carrying who the client
//! or user is, the granted scopes and the launch context. Verification accepts ES384 only
//! (never `none`, never an HMAC keyed with a public key), a known `kid`, this issuer and
//! audience, and an unexpired `exp`.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;
use crate::AuthError;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The server's base URL.
    pub iss: String,
    /// The client id (backend services) or the user id.
    pub sub: String,
    /// The FHIR base URL the token is for.
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    /// Space-separated SMART scopes.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The 医療機関コード the caller acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What a token is issued for; the issuer adds the times, the id and its own names.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    pub subject: String,
    pub client_id: String,
    pub scope: String,
    pub patient: Option<String>,
    pub organization: Option<String>,
    pub institution: Option<String>,
    pub role: Option<String>,
}

/// Issues and verifies the access tokens of one server.
pub struct TokenIssuer {
    keys: KeyRing,
    issuer: String,
    lifetime_secs: u64,
    /// Tokens already verified, by SHA-256 of their text, until they expire: an ES384
    /// verification costs about a millisecond, a lookup a microsecond, and a client sends
    /// the same token with every request.
    verified: RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

/// Verified tokens remembered at most (about 1 KiB each); past it, expired ones are
/// dropped, then those that expire soonest.
const VERIFIED_CAPACITY: usize = 65_536;

impl TokenIssuer {
    /// `issuer` is the server's base URL (it is also the audience of its tokens).
    pub fn new(keys: KeyRing, issuer: &str, lifetime_secs: u64) -> TokenIssuer {
        TokenIssuer {
            keys,
            issuer: issuer.trim_end_matches('/').to_string(),
            lifetime_secs,
            verified: RwLock::new(HashMap::new()),
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    /// A signed token for `grant`, valid from `now` (seconds since the epoch).
    pub fn issue(&self, grant: &Grant, now: u64) -> Result<String, AuthError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject.clone(),
            aud: self.issuer.clone(),
            exp: now + self.lifetime_secs,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            patient: grant.patient.clone(),
            organization: grant.organization.clone(),
            institution: grant.institution.clone(),
            role: grant.role.clone(),
        };
        let key = self.keys.signing();
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, &claims, key.encoding()).map_err(|e| AuthError::Key(format!("signing: {e}")))
    }

    /// [`TokenIssuer::verify`], remembering the answer for the token's lifetime.
    pub fn verify_cached(&self, token: &str, now: u64) -> Result<Arc<AccessClaims>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(c) = self.verified.read().get(&digest) {
            if c.exp > now && c.iat <= now + 60 {
                return Ok(c.clone());
            }
        }
        let claims = Arc::new(self.verify(token, now)?);
        let mut map = self.verified.write();
        if map.len() >= VERIFIED_CAPACITY {
            // Expired ones go; if that is not enough, the half that expires soonest (one
            // O(n) pass per half-capacity insertions, and never everyone's at once).
            map.retain(|_, c| c.exp > now);
            if map.len() >= VERIFIED_CAPACITY / 2 {
                let mut exps: Vec<u64> = map.values().map(|c| c.exp).collect();
                let mid = exps.len() / 2;
                let (_, cut, _) = exps.select_nth_unstable(mid);
                let cut = *cut;
                map.retain(|_, c| c.exp > cut);
            }
        }
        map.insert(digest, claims.clone());
        Ok(claims)
    }

    /// The claims of a token this server issued and that is still valid at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<AccessClaims, AuthError> {
        let bad = |reason: &str| AuthError::InvalidToken(reason.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a signed JWT"))?;
        if header.alg != Algorithm::ES384 {
            return Err(bad("the token must be signed with ES384"));
        }
        let kid = header.kid.ok_or_else(|| bad("the token names no key (kid)"))?;
        let key = self.keys.by_kid(&kid).ok_or_else(|| bad("the token was signed with an unknown or retired key"))?;
        let mut v = Validation::new(Algorithm::ES384);
        v.algorithms = vec![Algorithm::ES384];
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is checked below against `now`, so that tests and callers share one clock.
        v.validate_exp = false;
        v.leeway = 0;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key.decoding(), &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => bad("the signature does not verify"),
                K::InvalidIssuer => bad("the token was issued by someone else"),
                K::InvalidAudience => bad("the token is for another server"),
                K::MissingRequiredClaim(_) => bad("the token lacks a required claim"),
                _ => bad("the token is malformed"),
            }
        })?;
        let claims = data.claims;
        if claims.exp <= now {
            return Err(bad("the token has expired"));
        }
        if claims.iat > now + 60 {
            return Err(bad("the token was issued in the future"));
        }
        Ok(claims)
    }
}
