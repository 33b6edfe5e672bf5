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
    let id = |s: &String| !s.starts_with(['_', '$']);
    matches!(segments, [t, i] if t == "Binary" && id(i))
        || matches!(segments, [t, i, h, _] if t == "Binary" && id(i) && h == "_history")
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
pub(crate) fn from_raw(
    c: &Call,
    content_type: &str,
    id: Option<&str>,
    max_body_bytes: usize,
) -> Result<Value, InteractionError> {
    // Stored as base64 inside FHIR JSON, the content must still fit a request body, or the
    // Binary could not be sent back as a resource.
    let max = max_body_bytes.saturating_sub(64 * 1024) / 4 * 3;
    if c.body.len() > max {
        let e = tsunagu_interaction::LimitExceeded::new(tsunagu_interaction::Limit::BodyBytes, max_body_bytes);
        return Err(e
            .found(c.body.len())
            .hint(
                format!("Content sent as itself is kept as base64 in the Binary, so it may be at most {max} bytes"),
                format!("そのままの形で送る内容は Binary の中で base64 になるため、{max} バイトまでです"),
            )
            .into());
    }
    let mut b = json!({
        "resourceType": "Binary",
        "contentType": content_type,
        "data": base64::engine::general_purpose::STANDARD.encode(&c.body),
    });
    if let Some(id) = id {
        b["id"] = json!(id);
    }
    let mut contexts = c.headers.get_all("x-security-context").iter();
    if let Some(sc) = contexts.next() {
        let sc = sc.to_str().ok().map(str::trim).filter(|s| contexts.next().is_none() && is_reference(s));
        let Some(sc) = sc else {
            return Err(InteractionError::bad_request(
                "X-Security-Context must be one reference to a resource ([type]/[id], or an absolute URL ending so)",
                "X-Security-Context はリソースへの参照 1 つ（[type]/[id]、またはそれで終わる絶対 URL）でなければなりません",
            ));
        };
        b["securityContext"] = json!({ "reference": sc });
    }
    Ok(b)
}

/// A literal reference: `[type]/[id]`, or an absolute http(s) URL ending so.
fn is_reference(s: &str) -> bool {
    let local = match s.split_once("://") {
        Some(("http" | "https", rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        Some(_) => return false,
        None => s,
    };
    let mut parts = local.rsplit('/');
    let (Some(id), Some(ty)) = (parts.next(), parts.next()) else { return false };
    let id_ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let path_ok = s.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\' | b'`'));
    id_ok && path_ok && tsunagu_model::r4().is_resource_type(ty)
}

/// Whether `accept` names a specific media type other than FHIR's (only then may a read
/// of a Binary answer its content).
pub(crate) fn names_other_type(accept: &str) -> bool {
    crate::negotiate::accept_ranges(accept).any(|r| {
        !matches!(r.mime.as_str(), "" | "*/*" | "application/*" | "text/*" | "text/html")
            && crate::negotiate::format_of_mime(&r.mime).is_none()
    })
}

/// A stored Binary read under `accept`: its content when `accept` prefers its content type
/// (exactly or as `type/*`, by quality, then by order) to a FHIR format; the resource when
/// a FHIR format is preferred; 406 when neither is acceptable.
pub(crate) fn reply(c: &Call, v: ResourceVersion, accept: &str) -> Result<Response, InteractionError> {
    let binary: Value = serde_json::from_slice(&v.body)
        .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?;
    let content_type = binary["contentType"].as_str().unwrap_or("application/octet-stream");
    let fhir = crate::negotiate::fhir_quality(accept);
    match (own_quality(accept, content_type), fhir) {
        (Some((q, pos)), f) if f.is_none_or(|(fq, fpos)| q > fq || (q == fq && pos < fpos)) => {
            raw(&v, &binary, content_type)
        }
        (_, Some(_)) => crate::dispatch::stored_reply(c, v),
        _ => Err(InteractionError::not_acceptable(
            format!("Binary/{} is {content_type}, which '{accept}' does not take", v.id),
            format!("Binary/{} は {content_type} のため '{accept}' では応答できません", v.id),
        )),
    }
}

fn raw(v: &ResourceVersion, binary: &Value, content_type: &str) -> Result<Response, InteractionError> {
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

/// The quality and position of the most specific range of `accept` naming `content_type`
/// (exactly, or as `type/*`; `*/*` does not count: it takes FHIR as well). `None` when no
/// range names it, or the one that does has `q=0`.
fn own_quality(accept: &str, content_type: &str) -> Option<(u16, usize)> {
    let want = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let top = want.split('/').next().unwrap_or("");
    let mut best: Option<(u8, u16, usize)> = None;
    for r in crate::negotiate::accept_ranges(accept) {
        let specific = if r.mime == want {
            2
        } else if r.mime.strip_suffix("/*").is_some_and(|t| t == top) {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _, _)| specific > s) {
            best = Some((specific, r.q, r.pos));
        }
    }
    best.filter(|(_, q, _)| *q > 0).map(|(_, q, pos)| (q, pos))
}

#[cfg(test)]
mod tests {
    use super::own_quality;

    #[test]
    fn accept_ranges_take_the_content_type_or_its_family() {
        let takes = |a, ct| own_quality(a, ct).is_some();
        assert!(takes("application/pdf", "application/pdf"));
        assert!(takes("image/*", "image/png"));
        assert!(takes("text/plain, application/pdf;q=0.5", "application/pdf; name=x"));
        assert!(!takes("application/pdf;q=0", "application/pdf"));
        assert!(!takes("application/pdf;q=0, application/*", "application/pdf"));
        assert!(!takes("image/png", "application/pdf"));
        assert!(!takes("application/pdfx", "application/pdf"));
        assert!(!takes("*/*", "application/pdf"));
        assert_eq!(own_quality("application/*;q=0.2, application/pdf;q=0.7", "application/pdf"), Some((700, 1)));
    }
}
