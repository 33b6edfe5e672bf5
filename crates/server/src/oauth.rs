//! The authorization server's HTTP face: `/.well-known/smart-configuration`, the token
//! endpoint (`POST /auth/token`), the signing keys (`GET /auth/jwks`) and the login page of
//! the authorization-code flow (`GET`/`POST /auth/authorize`). The decisions are
//! `tsunagu_auth::Authority`'s; this module reads forms and writes OAuth answers.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use tsunagu_auth::{AuthError, Authority};
use tsunagu_interaction::{Caller, InteractionError, Lang, SearchParams};

use crate::negotiate::Format;
use crate::{AppState, Authorization, Peer};

/// Forms posted here are small; anything bigger is not a token or login request.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether a path belongs to the authorization server (served without a token).
pub(crate) fn is_auth_path(path: &str) -> bool {
    path == "/.well-known/smart-configuration" || path.starts_with("/auth/")
}

pub(crate) async fn handle(state: Arc<AppState>, req: axum::extract::Request, lang: Lang) -> Response {
    let Authorization::Required(authority) = state.config.authorization.clone() else {
        let e = InteractionError::not_supported(
            "Authorization is turned off on this server",
            "このサーバでは認可が無効になっています",
        );
        return crate::reply::error(&e, Format::Json, lang);
    };
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<Peer>().cloned();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let form = if parts.method == Method::POST {
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return oauth_error(&AuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => SearchParams::parse(&String::from_utf8_lossy(&b)).pairs,
            Err(_) => return oauth_error(&AuthError::InvalidRequest("the form is too large".into())),
        }
    } else {
        Vec::new()
    };
    let method = parts.method.clone();
    let work = move || match (method, path.as_str()) {
        (Method::GET, "/.well-known/smart-configuration") => json_reply(200, &authority.smart_configuration()),
        (Method::GET, "/auth/jwks") => json_reply(200, &authority.jwks()),
        (Method::POST, "/auth/token") => token(&state, &authority, &form, peer.as_ref()),
        (Method::GET, "/auth/authorize") => login_page(&authority, &SearchParams::parse(&query).pairs, None, lang),
        (Method::POST, "/auth/authorize") => login(&state, &authority, &form, peer.as_ref(), lang),
        _ => crate::reply::error(
            &InteractionError::MethodNotAllowed(format!("{} {path}", parts.method)),
            Format::Json,
            lang,
        ),
    };
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| crate::reply::panic_response(Box::new(())))
}

fn token(state: &AppState, authority: &Authority, form: &[(String, String)], peer: Option<&Peer>) -> Response {
    let thumbprint = peer.and_then(|p| p.tls_thumbprint.as_deref());
    let result = authority.token(form, thumbprint, crate::authn::now());
    let client = form.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.clone());
    let status = result.as_ref().map_or_else(AuthError::http_status, |_| 200);
    record(state, peer, client.as_deref(), "token", status);
    match result {
        Ok(body) => {
            let mut r = json_reply(200, &body);
            r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => oauth_error(&e),
    }
}

fn login(
    state: &AppState,
    authority: &Authority,
    form: &[(String, String)],
    peer: Option<&Peer>,
    lang: Lang,
) -> Response {
    let user = form.iter().find(|(k, _)| k == "user_id").map(|(_, v)| format!("user:{v}"));
    match authority.login(form, crate::authn::now()) {
        Ok(location) => {
            record(state, peer, user.as_deref(), "login", 302);
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::FOUND;
            crate::reply::set_header(&mut r, header::LOCATION, &location);
            r
        }
        Err(e) => {
            record(state, peer, user.as_deref(), "login", 401);
            let message = tsunagu_auth::login_error_message(&e, lang == Lang::Ja);
            login_page(authority, form, Some(&message), lang)
        }
    }
}

/// The login page for a valid authorize request; a request that is not valid is answered
/// here, never by sending the browser to an unchecked redirect URI.
fn login_page(authority: &Authority, pairs: &[(String, String)], error: Option<&str>, lang: Lang) -> Response {
    match authority.authorize_request(pairs) {
        Ok((req, client)) => {
            let page = tsunagu_auth::login_page(&req, &client.id, error, lang == Lang::Ja);
            let mut r = Response::new(Body::from(page));
            *r.status_mut() = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
                     base-uri 'none'",
                ),
            );
            r
        }
        Err(e) => oauth_error(&e),
    }
}

fn record(state: &AppState, peer: Option<&Peer>, who: Option<&str>, subtype: &str, status: u16) {
    let mut caller = Caller::operator("auth");
    caller.agent.who =
        who.map_or(
            "anonymous".to_string(),
            |w| {
                if w.starts_with("user:") {
                    w.to_string()
                } else {
                    format!("client:{w}")
                }
            },
        );
    caller.agent.address = peer.map(|p| p.addr.ip().to_string());
    let event = tsunagu_interaction::AuditEvent {
        caller: &caller,
        subtype,
        action: "E",
        status,
        entities: Vec::new(),
        request: None,
    };
    state.audit.record(tsunagu_interaction::audit_entry(&event, chrono_now_ms()));
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn json_reply(status: u16, v: &Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(v).expect("JSON serialises")));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An OAuth error answer (RFC 6749 §5.2).
fn oauth_error(e: &AuthError) -> Response {
    let mut r = json_reply(e.http_status(), &json!({ "error": e.oauth_code(), "error_description": e.to_string() }));
    if e.http_status() == 401 {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}
