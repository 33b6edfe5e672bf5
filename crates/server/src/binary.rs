//! Binary in its native form (R4 binary.html, "Serving Binary Resources using the RESTful
//! API"): a read asking only for non-FHIR types (`Accept: application/pdf`) gets the
//! content itself with its `contentType`; a create or update sending a non-FHIR
//! `Content-Type` stores that content as a Binary (`X-Security-Context` naming its
//! `securityContext`). Everything else about Binary is the ordinary resource.
//!
//! Content served raw comes from clients, so it is served as inert: a sandboxing
//! `Content-Security-Policy` keeps an uploaded page or SVG from running script under this
//! server's origin. A raw write of a type any web page may send cross-site without asking
//! (`text/plain`, forms) is taken only with an `Authorization` header, which such a page
//! cannot add; without one it is refused as every other such write is (415).

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{header, HeaderValue};
use serde_json::{json, Value};
use tsunagu_interaction::InteractionError;
use tsunagu_store::ResourceVersion;

use crate::dispatch::{version_headers, Call};

/// Whether a GET of `segments` is a Binary read (current or a version).
pub(crate) fn is_read(segments: &[String]) -> bool {
    matches!(segments, [t, _] if t == "Binary") || matches!(segments, [t, _, h, _] if t == "Binary" && h == "_history")
}

/// The content type of a raw write body: a media type that is not FHIR's (nor JSON
/// Patch), when the request may send it. `None`: the body is a FHIR resource.
pub(crate) fn raw_content_type(c: &Call) -> Result<Option<String>, InteractionError> {
    let Some(ct) = c.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let fhir = matches!(
        mime.as_str(),
        "application/fhir+json"
            | "application/json"
            | "application/json+fhir"
            | "application/fhir+xml"
            | "application/xml"
            | "application/xml+fhir"
            | "application/json-patch+json"
    );
    if fhir || mime.is_empty() || !mime.contains('/') {
        return Ok(None);
    }
    let cross_site =
        matches!(mime.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data");
    if cross_site && !c.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    Ok(Some(ct.trim().to_string()))
}

/// The Binary a raw write body is: its content type, the body as `data`, the id of the
/// URL (an update), and `X-Security-Context` as its `securityContext`.
pub(crate) fn from_raw(c: &Call, content_type: &str, id: Option<&str>) -> Result<Value, InteractionError> {
    let mut b = json!({
        "resourceType": "Binary",
        "contentType": content_type,
        "data": base64::engine::general_purpose::STANDARD.encode(&c.body),
    });
    if let Some(id) = id {
        b["id"] = json!(id);
    }
    if let Some(sc) = c.headers.get("x-security-context") {
        let sc = sc.to_str().map_err(|_| {
            InteractionError::bad_request(
                "X-Security-Context is not a reference",
                "X-Security-Context が参照として不正です",
            )
        })?;
        b["securityContext"] = json!({ "reference": sc.trim() });
    }
    Ok(b)
}

/// The content of a stored Binary, when `accept` takes its content type (exactly, or as
/// `type/*`); 406 when it does not.
pub(crate) fn raw_reply(v: &ResourceVersion, accept: &str) -> Result<Response, InteractionError> {
    let binary: Value = serde_json::from_slice(&v.body)
        .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?;
    let content_type = binary["contentType"].as_str().unwrap_or("application/octet-stream");
    if !accepts(accept, content_type) {
        return Err(InteractionError::not_acceptable(
            format!("Binary/{} is {content_type}, which '{accept}' does not take", v.id),
            format!("Binary/{} は {content_type} のため '{accept}' では応答できません", v.id),
        ));
    }
    let data = match binary["data"].as_str() {
        Some(d) => base64::engine::general_purpose::STANDARD.decode(d).map_err(|_| {
            InteractionError::Store(tsunagu_store::StoreError::Corrupt(format!("Binary/{}: data is not base64", v.id)))
        })?,
        None => Vec::new(),
    };
    let mut r = (http::StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    version_headers(&mut r, v);
    Ok(r)
}

/// Whether an `Accept` header takes `content_type`: a range naming it, or its `type/*`,
/// with a quality above zero.
fn accepts(accept: &str, content_type: &str) -> bool {
    let want = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let top = want.split('/').next().unwrap_or("");
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| k.trim() == "q" && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        !refused && (mime == want || mime.strip_suffix("/*").is_some_and(|t| t == top))
    })
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn accept_ranges_take_the_content_type_or_its_family() {
        assert!(accepts("application/pdf", "application/pdf"));
        assert!(accepts("image/*", "image/png"));
        assert!(accepts("text/plain, application/pdf;q=0.5", "application/pdf; name=x"));
        assert!(!accepts("application/pdf;q=0", "application/pdf"));
        assert!(!accepts("image/png", "application/pdf"));
        assert!(!accepts("application/pdfx", "application/pdf"));
    }
}
