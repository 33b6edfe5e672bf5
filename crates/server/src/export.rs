//! Bulk Data export over HTTP: the kick-off (`Prefer: respond-async` required; 202 with
//! `Content-Location`), the status URL (202 with `X-Progress`/`Retry-After`, 200 with the
//! manifest, 500 with an OperationOutcome for a failed job, `DELETE` to cancel) and the
//! output files (`application/fhir+ndjson`, streamed from disk). The jobs themselves are
//! `tsunagu_interaction::Exports`.

use std::sync::Arc;

use axum::response::Response;
use http::header;
use serde_json::Value;
use tsunagu_interaction::{information, ExportLevel, ExportStatus, Exports, InteractionError};

use crate::dispatch::Call;
use crate::reply;
use crate::AppState;

fn exports(state: &AppState) -> Result<&Arc<Exports>, InteractionError> {
    state.exports.as_ref().ok_or_else(|| {
        InteractionError::not_supported(
            "bulk export is not configured on this server",
            "このサーバでは一括エクスポートが設定されていません",
        )
    })
}

fn respond_async(c: &Call) -> bool {
    c.headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim().eq_ignore_ascii_case("respond-async")))
}

/// `$export` at system, Patient or Group level.
pub(crate) fn kickoff(
    state: &AppState,
    c: &Call,
    ty: Option<&str>,
    id: Option<&str>,
    body: Option<Value>,
) -> Result<Response, InteractionError> {
    let exports = exports(state)?;
    if !respond_async(c) {
        return Err(InteractionError::bad_request(
            "$export runs asynchronously: send the header Prefer: respond-async",
            "$export は非同期で実行されます。Prefer: respond-async ヘッダを付けてください",
        ));
    }
    let level = match (ty, id) {
        (None, _) => ExportLevel::System,
        (Some("Patient"), None) => ExportLevel::Patient,
        (Some("Group"), Some(g)) => ExportLevel::Group(g.to_string()),
        _ => {
            return Err(InteractionError::bad_request(
                "$export is served at [base], Patient and Group/[id]",
                "$export は [base]・Patient・Group/[id] で提供しています",
            ))
        }
    };
    let mut params = c.params.clone();
    if let Some(b) = body {
        params.pairs.extend(tsunagu_interaction::export::parameters_to_pairs(&b)?.pairs);
    }
    let path = c.segments.join("/");
    let request = format!("{}/{path}{}{}", c.ctx.base, if c.query.is_empty() { "" } else { "?" }, c.query);
    let job = exports.kickoff(level, &params, &request, &c.ctx)?;
    let oo = information(
        "The export has started; poll the Content-Location URL",
        "エクスポートを開始しました。Content-Location の URL で状態を確認してください",
        c.render.lang,
    );
    let mut r = reply::with_body(202, c.render.format, c.render.body(&oo)?);
    reply::set_header(&mut r, header::CONTENT_LOCATION, &format!("{}/$export-status/{job}", c.ctx.base));
    Ok(r)
}

/// `GET $export-status/{job}`.
pub(crate) fn status(state: &AppState, c: &Call, job: &str) -> Result<Response, InteractionError> {
    match exports(state)?.status(job, &c.ctx)? {
        ExportStatus::InProgress { progress, retry_after_secs } => {
            let mut r = reply::empty(202);
            reply::set_header(&mut r, header::HeaderName::from_static("x-progress"), &progress);
            reply::set_header(&mut r, header::RETRY_AFTER, &retry_after_secs.to_string());
            Ok(r)
        }
        ExportStatus::Complete(manifest) => {
            let mut r = reply::with_body(
                200,
                crate::negotiate::Format::Json,
                serde_json::to_vec(&manifest).expect("JSON serialises"),
            );
            reply::set_header(&mut r, header::CONTENT_TYPE, "application/json");
            Ok(r)
        }
    }
}

/// `DELETE $export-status/{job}`: cancels the job and removes its files.
pub(crate) fn cancel(state: &AppState, c: &Call, job: &str) -> Result<Response, InteractionError> {
    exports(state)?.cancel(job, &c.ctx)?;
    let oo = information(
        "The export was cancelled and its files removed",
        "エクスポートを取り消し、ファイルを削除しました",
        c.render.lang,
    );
    Ok(reply::with_body(202, c.render.format, c.render.body(&oo)?))
}

/// `GET $export-file/{job}/{file}`: streamed, never held in memory.
pub(crate) fn file(state: &AppState, c: &Call, job: &str, file: &str) -> Result<Response, InteractionError> {
    let path = exports(state)?.file(job, file, &c.ctx)?;
    let f = std::fs::File::open(&path)
        .map_err(|_| InteractionError::NotFound("$export-file".into(), format!("{job}/{file}")))?;
    let len = f.metadata().map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(f), 64 * 1024);
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    reply::set_header(&mut r, header::CONTENT_TYPE, "application/fhir+ndjson");
    if let Some(len) = len {
        reply::set_header(&mut r, header::CONTENT_LENGTH, &len.to_string());
    }
    Ok(r)
}

/// Removes expired jobs once a minute, for as long as the server holds its exports.
pub(crate) fn sweep_periodically(exports: &Arc<Exports>) {
    let weak = Arc::downgrade(exports);
    let _ = std::thread::Builder::new().name("export-sweep".into()).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
        match weak.upgrade() {
            Some(x) => x.sweep(),
            None => return,
        }
    });
}
