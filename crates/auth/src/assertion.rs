//! Client assertions (`private_key_jwt`, SMART Backend Services): the signed JWT a client
//! sends to the token endpoint instead of a secret. Accepted only when signed with RS384
//! or ES384 by a key of the client's registered JWKS named by `kid`, with `iss` = `sub` =
//! the client id, `aud` = the token endpoint, an `exp` in the future and at most five
//! minutes away, and a `jti` never seen before from that client.

use std::collections::HashMap;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde::Deserialize;

use crate::AuthError;

/// How far ahead a client assertion's `exp` may be (SMART Backend Services: five minutes).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;

/// What the token endpoint knows when it checks an assertion.
pub struct AssertionContext<'a> {
    /// The client the assertion claims to come from (its `client_id`).
    pub client_id: &'a str,
    /// The token endpoint's URL (the required audience).
    pub token_endpoint: &'a str,
    /// The client's registered (or fetched) JWKS.
    pub jwks: &'a serde_json::Value,
    /// Seconds since the epoch.
    pub now: u64,
}

/// Remembers the `jti`s of accepted assertions until they expire, so none is accepted
/// twice. The server's implementation keeps them across a restart.
pub trait JtiLog: Send + Sync {
    /// True the first time `(client, jti)` is offered before `exp`; false after.
    fn first_use(&self, client_id: &str, jti: &str, exp: u64, now: u64) -> bool;
}

/// A [`JtiLog`] in memory (for tests and single-process tools).
#[derive(Default)]
pub struct MemoryJtiLog {
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl JtiLog for MemoryJtiLog {
    fn first_use(&self, client_id: &str, jti: &str, exp: u64, now: u64) -> bool {
        let mut seen = self.seen.lock();
        seen.retain(|_, e| *e > now);
        let key = (client_id.to_string(), jti.to_string());
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, exp);
        true
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: u64,
    jti: String,
}

/// Checks a client assertion; on success the client is authenticated as `ctx.client_id`.
pub fn verify_client_assertion(assertion: &str, ctx: &AssertionContext<'_>, log: &dyn JtiLog) -> Result<(), AuthError> {
    let bad = |reason: &str| AuthError::InvalidClient(reason.to_string());
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad("the assertion is not a signed JWT"))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(bad("the assertion must be signed with RS384 or ES384"));
    }
    let kid = header.kid.ok_or_else(|| bad("the assertion names no key (kid)"))?;
    let key = registered_key(ctx.jwks, &kid, header.alg).map_err(bad)?;
    let mut v = Validation::new(header.alg);
    v.algorithms = vec![header.alg];
    v.set_audience(&[ctx.token_endpoint]);
    v.set_issuer(&[ctx.client_id]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.validate_exp = false;
    v.leeway = 0;
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidEcdsaKey | K::InvalidRsaKey(_) => {
                    bad("the signature does not verify with the registered key")
                }
                K::InvalidIssuer => bad("iss is not the client id"),
                K::InvalidAudience => bad("aud is not this token endpoint"),
                _ => bad("the assertion is malformed or lacks a required claim"),
            }
        })?
        .claims;
    if claims.sub != ctx.client_id || claims.iss != claims.sub {
        return Err(bad("iss and sub must both be the client id"));
    }
    if claims.exp <= ctx.now {
        return Err(bad("the assertion has expired"));
    }
    if claims.exp > ctx.now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(bad("the assertion's exp is more than five minutes away"));
    }
    if claims.jti.is_empty() {
        return Err(bad("the assertion has no jti"));
    }
    if !log.first_use(ctx.client_id, &claims.jti, claims.exp, ctx.now) {
        return Err(bad("this assertion (jti) was already used"));
    }
    Ok(())
}

/// The client's key named `kid`, for signatures with `alg`. Keys are read one by one, so a
/// key set that also holds keys this server cannot use (an encryption key, an algorithm it
/// does not know) still works for the one that signs.
fn registered_key(jwks: &serde_json::Value, kid: &str, alg: Algorithm) -> Result<DecodingKey, &'static str> {
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("the client's registered key set is not a JWKS")?;
    let jwk = keys
        .iter()
        .find(|k| k.get("kid").and_then(serde_json::Value::as_str) == Some(kid))
        .ok_or("no registered key of the client has this kid")?;
    if jwk.get("use").and_then(serde_json::Value::as_str).is_some_and(|u| u != "sig") {
        return Err("the registered key with this kid is not a signing key");
    }
    let alg_name = match alg {
        Algorithm::RS384 => "RS384",
        _ => "ES384",
    };
    if jwk.get("alg").and_then(serde_json::Value::as_str).is_some_and(|a| a != alg_name) {
        return Err("the registered key with this kid is for another algorithm");
    }
    let jwk: Jwk =
        serde_json::from_value(jwk.clone()).map_err(|_| "the registered key with this kid cannot be read")?;
    DecodingKey::from_jwk(&jwk).map_err(|_| "the registered key cannot verify signatures")
}
