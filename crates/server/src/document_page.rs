//! Documents for people: a document Bundle — stored, or made by `$summary` — answered as
//! one HTML page (`tsunagu-document`) when the client asks for it with `_format=html`, or
//! prefers it (`Accept` naming `text/html` before any FHIR type, as browsers do).

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use tsunagu_interaction::{InteractionError, Lang, SearchParams};
use tsunagu_store::ResourceVersion;

use crate::dispatch::Call;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HtmlAsk {
    /// `_format=html`: a page or 406.
    Required,
    /// `Accept: text/html, …`: a page where there is a document, FHIR otherwise.
    Preferred,
}

pub(crate) fn html_asked(headers: &HeaderMap, params: &SearchParams) -> Option<HtmlAsk> {
    if let Some(f) = params.get("_format") {
        return matches!(f, "html" | "text/html").then_some(HtmlAsk::Required);
    }
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    let first = accept.split(',').next()?.split(';').next()?.trim();
    (first == "text/html").then_some(HtmlAsk::Preferred)
}

/// A document made by the server (`$summary`): a page when one was asked for.
pub(crate) fn document_reply(c: &Call, bundle: &Value) -> Result<Response, InteractionError> {
    match c.html {
        Some(_) => page(bundle, c.ctx.lang, &c.ctx.base),
        None => crate::dispatch::ok_resource(c, 200, bundle),
    }
}

/// A stored Bundle read with HTML asked for: a page when it is a document; otherwise 406
/// when a page was required, the Bundle itself when one was only preferred.
pub(crate) fn stored_document_reply(c: &Call, v: ResourceVersion) -> Result<Response, InteractionError> {
    let bundle: Value = serde_json::from_slice(&v.body).unwrap_or(Value::Null);
    match page(&bundle, c.ctx.lang, &c.ctx.base) {
        Ok(r) => Ok(r),
        Err(_) if c.html == Some(HtmlAsk::Preferred) => crate::dispatch::stored_reply(c, v),
        Err(e) => Err(e),
    }
}

fn page(bundle: &Value, lang: Lang, base: &str) -> Result<Response, InteractionError> {
    let options = tsunagu_document::RenderOptions {
        lang: if lang == Lang::En { tsunagu_document::Lang::En } else { tsunagu_document::Lang::Ja },
        base_url: Some(base.to_string()),
    };
    let html = tsunagu_document::render_html(bundle, &options)
        .map_err(|e| InteractionError::not_acceptable(e.message_en(), e.message_ja()))?;
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The page has one inline style sheet and nothing else: no script, no external load.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    Ok(r)
}
