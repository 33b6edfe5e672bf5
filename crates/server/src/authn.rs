//! Who is calling: the bearer token of a request, checked by the authorization server,
//! becomes a [`Caller`] (its scopes, its patient context, its name for the audit trail).
//! A request without a good token is answered 401 with `WWW-Authenticate` (RFC 6750).

use std::sync::Arc;

use axum::response::Response;
use http::header;
use tsunagu_auth::{AccessClaims, ScopeSet};
use tsunagu_interaction::{Access, Agent, Caller, InteractionError, Lang};

use crate::negotiate::Format;
use crate::{AppState, Authorization, Peer};

/// The caller of a request, or the 401 to answer it with.
pub(crate) fn caller(state: &AppState, parts: &http::request::Parts, lang: Lang) -> Result<Caller, Box<Response>> {
    let address = parts.extensions.get::<Peer>().map(|p| p.addr.ip().to_string());
    let authority = match &state.config.authorization {
        Authorization::Off => {
            let agent = Agent { who: "anonymous".into(), address, ..Default::default() };
            return Ok(Caller { agent, access: Access::All });
        }
        Authorization::Required(a) => a,
    };
    let realm = authority.base();
    let Some(token) = bearer(parts) else {
        let e = InteractionError::unauthorized(
            "An access token is required (Authorization: Bearer …)",
            "アクセストークンが必要です（Authorization: Bearer …）",
        );
        return Err(Box::new(challenge(&e, lang, &format!("Bearer realm=\"{realm}\""))));
    };
    match authority.authenticate(token, now()) {
        Ok(claims) => Ok(caller_of(&claims, address)),
        Err(err) => {
            let reason = err.to_string();
            let e = InteractionError::unauthorized(
                format!("The access token was refused: {reason}"),
                format!("アクセストークンを受け付けられません: {}", err.token_reason_ja()),
            );
            let value = format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                reason.replace(['"', '\\'], "'")
            );
            Err(Box::new(challenge(&e, lang, &value)))
        }
    }
}

fn bearer(parts: &http::request::Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn caller_of(claims: &AccessClaims, address: Option<String>) -> Caller {
    let user = claims.sub != claims.client_id;
    let who = if user { format!("user:{}", claims.sub) } else { format!("client:{}", claims.sub) };
    // A token's scopes were checked when it was issued; one that no longer parses grants nothing.
    let scopes = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let agent = Agent {
        who,
        client_id: Some(claims.client_id.clone()),
        fhir_user: claims.patient.as_ref().filter(|_| user).map(|p| format!("Patient/{p}")),
        organization: claims.organization.clone(),
        institution: claims.institution.clone(),
        role: claims.role.clone(),
        address,
    };
    Caller { agent, access: Access::Scoped { scopes: Arc::new(scopes), patient: claims.patient.clone() } }
}

fn challenge(e: &InteractionError, lang: Lang, value: &str) -> Response {
    let mut r = crate::reply::error(e, Format::Json, lang);
    crate::reply::set_header(&mut r, header::WWW_AUTHENTICATE, value);
    r
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
