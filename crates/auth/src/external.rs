//! Trusting an external identity provider (a hospital's Keycloak or similar): its access
//! tokens are accepted when signed by a key of its JWKS (RS256/RS384/ES256/ES384, by `kid`),
//! issued by its issuer URL for this server's audience and unexpired. Its claims are
//! mapped to scopes and a role: the token's scopes count only within the role's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::{AccessClaims, AuthError, Role, RoleScopes, ScopeSet};

/// The longest an external token may still have to live: a provider's tokens cannot be
/// revoked here, so ones meant to last for days are refused.
pub const MAX_EXTERNAL_LIFETIME_SECS: u64 = 24 * 3600;

/// One trusted provider, as configured.
#[derive(Debug, Clone)]
pub struct ExternalIssuer {
    /// Its `iss`, exactly.
    pub issuer: String,
    /// The `aud` its tokens for this server carry.
    pub audience: String,
    /// Its signing keys.
    pub jwks: Value,
    /// The claim holding scopes (a space-separated string or an array); default `scope`.
    pub scope_claim: String,
    /// The claim holding the platform role name; when absent in a token, `default_role`.
    pub role_claim: String,
    pub default_role: Option<Role>,
    /// The claim holding the patient id a patient's token is bound to.
    pub patient_claim: String,
}

impl ExternalIssuer {
    pub fn new(issuer: &str, audience: &str, jwks: Value) -> ExternalIssuer {
        ExternalIssuer {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            jwks,
            scope_claim: "scope".into(),
            role_claim: "role".into(),
            default_role: None,
            patient_claim: "patient".into(),
        }
    }

    /// The claims of a token from this provider, mapped to this server's terms.
    pub fn verify(&self, token: &str, now: u64, roles: &RoleScopes) -> Result<AccessClaims, AuthError> {
        let bad = |r: &str| AuthError::InvalidToken(r.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a signed JWT"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::ES256 | Algorithm::ES384) {
            return Err(bad("the identity provider's token must be signed with RS256, RS384, ES256 or ES384"));
        }
        let kid = header.kid.ok_or_else(|| bad("the token names no key (kid)"))?;
        let jwk = self
            .jwks
            .get("keys")
            .and_then(Value::as_array)
            .and_then(|ks| ks.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str())))
            .ok_or_else(|| bad("the identity provider has no key with this kid"))?;
        if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            return Err(bad("the identity provider's key with this kid is not a signing key"));
        }
        let alg_name = format!("{:?}", header.alg);
        if jwk.get("alg").and_then(Value::as_str).is_some_and(|a| a != alg_name) {
            return Err(bad("the identity provider's key with this kid is for another algorithm"));
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).map_err(|_| bad("unreadable key"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| bad("unusable key"))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_exp = false;
        v.leeway = 0;
        let claims: Value = jsonwebtoken::decode::<Value>(token, &key, &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => bad("the signature does not verify"),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => bad("the token is for another audience"),
                _ => bad("the token is malformed or lacks a required claim"),
            })?
            .claims;
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or_else(|| bad("exp is not a number"))?;
        if exp <= now {
            return Err(bad("the token has expired"));
        }
        if exp > now + MAX_EXTERNAL_LIFETIME_SECS {
            return Err(bad("the token lives longer than this server accepts (a day)"));
        }
        if claims.get("iat").and_then(Value::as_u64).is_some_and(|iat| iat > now + 60) {
            return Err(bad("the token was issued in the future"));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let role = match text(&self.role_claim) {
            Some(r) => Some(r.parse::<Role>().map_err(|_| bad("the token's role is not a platform role"))?),
            None => self.default_role,
        };
        let role = role.ok_or_else(|| bad("the token carries no platform role"))?;
        let asked = match claims.get(&self.scope_claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        // Scopes this server does not know are the provider's own business: skipped.
        let known: Vec<&str> = asked.split(' ').filter(|s| s.parse::<crate::Scope>().is_ok()).collect();
        let granted = ScopeSet::parse(&known.join(" "))?.granted_by(roles.of(role));
        let sub = text("sub").unwrap_or_default();
        Ok(AccessClaims {
            iss: self.issuer.clone(),
            sub: sub.clone(),
            aud: self.audience.clone(),
            exp,
            iat: claims.get("iat").and_then(Value::as_u64).unwrap_or(now),
            jti: text("jti").unwrap_or_default(),
            client_id: text("azp").or_else(|| text("client_id")).unwrap_or(sub),
            scope: granted.to_string(),
            patient: text(&self.patient_claim),
            organization: text("organization"),
            institution: text("institution").filter(|i| crate::registry::is_institution_code(i)),
            role: Some(role.as_str().to_string()),
        })
    }
}

/// A claim of a JWT read without verifying it (only to choose how to verify it).
pub(crate) fn unverified_claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    unverified_claim(token, "iss")
}
