//! The FHIR REST API over HTTP. This is the only crate that knows HTTP: it accepts
//! connections and closes those that stall (`listen.rs`), refuses requests for hosts it
//! does not serve, past its concurrency limit or with bodies it does not take, routes
//! requests, negotiates formats (`Accept`, `_format`, `Content-Type`), maps headers
//! (`If-Match`, `If-None-Exist`, `Prefer`, `Accept-Language`) to interaction calls, and
//! writes status codes, `Location`, `ETag`, `Last-Modified` and the security headers.
//!
//! It holds no FHIR write semantics (those are `tsunagu-interaction`) and no storage
//! logic. Interactions are synchronous; handlers run them on Tokio's blocking pool.

mod audit_trail;
mod authn;
mod binary;
mod capability;
mod check;
mod client_share;
mod content_coding;
mod dispatch;
mod document_page;
mod export;
mod headers;
mod jwks_fetch;
mod listen;
mod negotiate;
mod oauth;
mod reply;
mod signature;
mod unparsed;

pub use check::{content_issues, ProfileCheck, StructureCheck};
pub use listen::{serve, serve_tls, Peer};
pub use signature::HpkiCheck;
pub use tsunagu_auth::{AuthSettings, Authority};

use std::sync::Arc;
use tsunagu_interaction::{Interactions, Limits};

/// How the HTTP layer behaves. Built by the caller from the configuration; every field
/// is explicit, so tests run with the same settings the binary uses.
#[derive(Clone)]
pub struct ServerConfig {
    /// The base URL clients use, e.g. `http://localhost:8080/fhir`: every `fullUrl`,
    /// `Location` and link is built from it, never from the request's `Host`.
    pub base_url: String,
    /// Host names (without port) a request's `Host` may carry; anything else is refused
    /// (a DNS-rebinding page in a browser sends its own host name). Empty: any host.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS); empty: CORS is off.
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    /// Who may do what: bearer tokens checked by the authorization server, or no checks.
    pub authorization: Authorization,
    /// The most time a read's audit record waits before it is stored: what a crash may lose.
    pub audit_flush: std::time::Duration,
    /// Bulk Data export (`$export`): where its jobs live and its limits; `None`: `$export`
    /// answers that it is not configured.
    pub export: Option<tsunagu_interaction::ExportConfig>,
}

/// Whether requests must carry an access token.
#[derive(Clone)]
pub enum Authorization {
    /// Every request may do everything. Only for a server on a loopback address (the
    /// command line refuses it otherwise); every request is still audited, as `anonymous`.
    Off,
    /// Every request but `/metadata`, `/.well-known/smart-configuration` and the
    /// authorization server's own endpoints needs a bearer token it accepts.
    Required(Arc<Authority>),
}

impl ServerConfig {
    /// A configuration serving `base_url`, accepting its host name (and, when that is a
    /// loopback name, the other loopback names) with default limits.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        let allowed_hosts = default_hosts(&base_url);
        ServerConfig {
            base_url,
            allowed_hosts,
            cors_origins: Vec::new(),
            limits: Limits::default(),
            authorization: Authorization::Off,
            audit_flush: std::time::Duration::from_millis(100),
            export: None,
        }
    }
}

/// The host name of a base URL, plus the other loopback names when it is one of them.
pub fn default_hosts(base_url: &str) -> Vec<String> {
    let host = host_of_url(base_url);
    let loopback = ["localhost", "127.0.0.1", "[::1]"];
    if loopback.contains(&host.as_str()) {
        loopback.iter().map(|h| h.to_string()).collect()
    } else {
        vec![host]
    }
}

/// `http://Example.org:8080/fhir` → `example.org`; `http://[::1]:80` → `[::1]`.
pub(crate) fn host_of_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    host_of_authority(authority)
}

/// The host of `host[:port]` (or `[v6]:port`), lower-cased.
pub(crate) fn host_of_authority(authority: &str) -> String {
    host_part(authority).to_ascii_lowercase()
}

/// The host of `host[:port]` (or `[v6]:port`, after any `userinfo@`), as written.
pub(crate) fn host_part(authority: &str) -> &str {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

pub(crate) struct AppState {
    pub fhir: Arc<Interactions>,
    pub config: ServerConfig,
    /// Requests being processed, bounded by `max_concurrent_requests`.
    pub in_process: Arc<tokio::sync::Semaphore>,
    /// Audit records of requests that wrote nothing (reads, searches, refusals).
    pub audit: Arc<tsunagu_interaction::AuditLog>,
    /// Bulk export jobs, when configured.
    pub exports: Option<Arc<tsunagu_interaction::Exports>>,
    /// What the requests in progress hold together (`max_memory_bytes`).
    pub memory: Arc<tsunagu_interaction::MemoryBudget>,
    /// The request slots each identity holds (`max_concurrent_requests_per_client`).
    pub shares: Arc<client_share::ClientShares>,
}

/// The complete HTTP application.
pub fn router(fhir: Arc<Interactions>, config: ServerConfig) -> axum::Router {
    if let (Authorization::Required(a), Some(fetcher)) = (&config.authorization, jwks_fetch::HttpJwks::new()) {
        a.set_jwks_fetcher(Arc::new(fetcher));
    }
    let smart = matches!(config.authorization, Authorization::Required(_));
    fhir.serve_capability(Box::new(move |fhir, base, mode| capability::for_mode(fhir, base, smart, mode)));
    let cors = headers::cors(&config.cors_origins);
    let in_process = Arc::new(tokio::sync::Semaphore::new(config.limits.max_concurrent_requests.max(1)));
    let audit = Arc::new(tsunagu_interaction::AuditLog::start(fhir.store().clone(), config.audit_flush, 10_000));
    let exports = config.export.clone().and_then(|e| match tsunagu_interaction::Exports::open(fhir.clone(), e) {
        Ok(x) => {
            export::sweep_periodically(&x);
            Some(x)
        }
        Err(err) => {
            tracing::error!("bulk export is off: {err}");
            None
        }
    });
    let memory = tsunagu_interaction::MemoryBudget::new(
        config.limits.max_memory_bytes as u64,
        std::time::Duration::from_millis(config.limits.memory_wait_ms),
    );
    let shares = Default::default();
    let state = Arc::new(AppState { fhir, config, in_process, audit, exports, memory, shares });
    let app = axum::Router::new().fallback(dispatch::handle).with_state(state);
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(tower_http::catch_panic::CatchPanicLayer::custom(reply::panic_response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_base_url() {
        assert_eq!(host_of_url("http://Example.org:8080/fhir"), "example.org");
        assert_eq!(host_of_url("https://[::1]:8443"), "[::1]");
        assert_eq!(host_of_authority("localhost:8080"), "localhost");
        assert_eq!(host_of_authority("user@evil.example:80"), "evil.example");
        assert!(default_hosts("http://localhost:8080").contains(&"127.0.0.1".to_string()));
        assert_eq!(default_hosts("https://fhir.example.jp/r4"), vec!["fhir.example.jp"]);
    }
}
