//! Turning interaction results into HTTP responses.

use crate::negotiate::Format;
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;
use tsunagu_interaction::{operation_outcome, InteractionError, Lang};

/// How to render a resource: format, pretty printing and subsetting.
#[derive(Debug, Clone)]
pub struct Render {
    pub format: Format,
    pub pretty: bool,
    pub summary: Option<tsunagu_format::SummaryMode>,
    pub elements: Option<Vec<String>>,
    pub lang: Lang,
}

impl Render {
    fn is_plain_json(&self) -> bool {
        self.format == Format::Json && !self.pretty && self.summary.is_none() && self.elements.is_none()
    }

    /// Applies `_summary` / `_elements` to one resource.
    pub fn shape(&self, resource: Value) -> Value {
        let resource = match self.summary {
            Some(mode) => tsunagu_format::summary(&resource, mode),
            None => resource,
        };
        match &self.elements {
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                tsunagu_format::elements(&resource, &names)
            }
            None => resource,
        }
    }

    /// Shapes a Bundle's entry resources (search results), not the Bundle itself.
    pub fn shape_entries(&self, mut bundle: Value) -> Value {
        if self.summary.is_none() && self.elements.is_none() {
            return bundle;
        }
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            for e in entries {
                let is_match = e.pointer("/search/mode").and_then(Value::as_str) != Some("outcome");
                if let (true, Some(r)) = (is_match, e.get_mut("resource")) {
                    *r = self.shape(r.take());
                }
            }
        }
        bundle
    }

    pub fn body(&self, resource: &Value) -> Result<Vec<u8>, InteractionError> {
        match self.format {
            Format::Json if self.pretty => Ok(serde_json::to_vec_pretty(resource).expect("JSON serialises")),
            Format::Json => Ok(serde_json::to_vec(resource).expect("JSON serialises")),
            Format::Xml => tsunagu_format::json_to_xml(resource, self.pretty).map(String::into_bytes).map_err(|e| {
                InteractionError::invalid(
                    "processing",
                    None,
                    format!("The resource cannot be written as XML: {e}"),
                    format!("リソースを XML に変換できません: {e}"),
                )
            }),
        }
    }

    /// A stored body (compact JSON) rendered for the client; passed through untouched
    /// when the client wants plain JSON, which is the hot path of read.
    pub fn stored(&self, stored: Vec<u8>) -> Result<Vec<u8>, InteractionError> {
        if self.is_plain_json() {
            return Ok(stored);
        }
        let v: Value = serde_json::from_slice(&stored)
            .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?;
        self.body(&self.shape(v))
    }
}

pub fn with_body(status: u16, format: Format, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    r
}

pub fn empty(status: u16) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// The error as an OperationOutcome, in the negotiated format (JSON when the error is the
/// negotiation itself).
pub fn error(err: &InteractionError, format: Format, lang: Lang) -> Response {
    let status = err.status();
    if matches!(err, InteractionError::MemoryBusy { .. }) {
        // The client is told to retry: one line each would flood the log under the very
        // load that causes it.
        tracing::debug!(error = %err, "request refused for now");
    } else if status >= 500 {
        tracing::error!(error = %err, "request failed");
    }
    let oo = operation_outcome(err, lang);
    let format = if matches!(err, InteractionError::NotAcceptable { .. }) { Format::Json } else { format };
    let body = match format {
        Format::Xml => tsunagu_format::json_to_xml(&oo, false).map(String::into_bytes).unwrap_or_default(),
        Format::Json => serde_json::to_vec(&oo).expect("JSON serialises"),
    };
    let mut r = with_body(status, format, body);
    if let InteractionError::MethodNotAllowed(_) = err {
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"));
    }
    if status == 503 || status == 429 {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// 503 with `Retry-After` when `max_concurrent_requests` are being processed.
pub fn busy(lang: Lang) -> Response {
    let (en, ja) = (
        "The server is busy (limit max_concurrent_requests); retry shortly",
        "サーバが混み合っています（上限 max_concurrent_requests）。しばらくしてから再試行してください",
    );
    let oo = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": "transient",
                    "diagnostics": if lang == Lang::Ja { ja } else { en } }]
    });
    let mut r = with_body(503, Format::Json, serde_json::to_vec(&oo).expect("JSON serialises"));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// A panic anywhere in a handler becomes a 500 OperationOutcome, never a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let oo = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "fatal", "code": "exception",
                    "diagnostics": "Internal error / サーバ内部エラー" }]
    });
    let mut r = with_body(500, Format::Json, serde_json::to_vec(&oo).expect("JSON serialises"));
    crate::headers::secure(&mut r);
    r
}

pub fn set_header(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
