//! The FHIR REST API over HTTP. This is the only crate that knows HTTP: it routes
//! requests, negotiates formats (`Accept`, `_format`, `Content-Type`), reads bodies within
//! the configured limit, maps headers (`If-Match`, `If-None-Exist`, `Prefer`,
//! `Accept-Language`) to interaction calls, and writes status codes, `Location`, `ETag` and
//! `Last-Modified`.
//!
//! It holds no FHIR write semantics (those are `tsunagu-interaction`) and no storage
//! logic. Interactions are synchronous; handlers run them on Tokio's blocking pool.

mod capability;
mod check;
mod dispatch;
mod negotiate;
mod reply;
mod validate_op;

pub use check::{content_issues, ProfileCheck, StructureCheck};

use std::net::SocketAddr;
use std::sync::Arc;
use tsunagu_interaction::Interactions;

#[derive(Clone)]
pub struct ServerConfig {
    /// The base URL clients use, e.g. `http://localhost:8080`; derived from `Host` when
    /// absent.
    pub base_url: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// The validator behind `$validate` (base structure only when no packages are loaded).
    pub validator: Option<Arc<tsunagu_validation::Validator>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { base_url: None, max_body_bytes: 32 * 1024 * 1024, validator: None }
    }
}

pub(crate) struct AppState {
    pub fhir: Arc<Interactions>,
    pub config: ServerConfig,
    pub validator: Arc<tsunagu_validation::Validator>,
}

/// The complete HTTP application.
pub fn router(fhir: Arc<Interactions>, config: ServerConfig) -> axum::Router {
    let validator = config
        .validator
        .clone()
        .unwrap_or_else(|| Arc::new(tsunagu_validation::Validator::new(tsunagu_validation::PackageSet::new())));
    let state = Arc::new(AppState { fhir, config, validator });
    axum::Router::new()
        .fallback(dispatch::handle)
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(reply::panic_response))
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
