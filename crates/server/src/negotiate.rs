//! Content negotiation: which format a client sends and wants, and reading bodies.

use http::HeaderMap;
use serde_json::Value;
use tsunagu_interaction::{InteractionError, SearchParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }
}

fn format_of_mime(m: &str) -> Option<Format> {
    let m = m.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match m.as_str() {
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir" => Some(Format::Json),
        "xml" | "application/xml" | "application/fhir+xml" | "application/xml+fhir" | "text/xml" => Some(Format::Xml),
        _ => None,
    }
}

/// The response format: `_format` wins over `Accept`; JSON when neither names one we speak.
pub fn response_format(headers: &HeaderMap, params: &SearchParams) -> Result<Format, InteractionError> {
    if let Some(f) = params.get("_format") {
        return format_of_mime(f).ok_or_else(|| {
            InteractionError::not_acceptable(
                format!("_format '{f}' is not supported; use json or xml"),
                format!("_format '{f}' には対応していません（json または xml）"),
            )
        });
    }
    let Some(accept) = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    let mut any = false;
    for part in accept.split(',') {
        let mime = part.split(';').next().unwrap_or("").trim();
        if let Some(f) = format_of_mime(mime) {
            return Ok(f);
        }
        if mime == "*/*" || mime == "application/*" || mime.starts_with("text/html") || mime.is_empty() {
            any = true;
        }
    }
    if any {
        Ok(Format::Json)
    } else {
        Err(InteractionError::not_acceptable(
            format!("cannot answer in '{accept}'; this server speaks application/fhir+json and application/fhir+xml"),
            format!("'{accept}' では応答できません。application/fhir+json か application/fhir+xml を指定してください"),
        ))
    }
}

/// What a request body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Resource(Format),
    JsonPatch,
}

pub fn body_kind(headers: &HeaderMap, body: &[u8]) -> Result<BodyKind, InteractionError> {
    match headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if mime == "application/json-patch+json" {
                return Ok(BodyKind::JsonPatch);
            }
            format_of_mime(&mime).map(BodyKind::Resource).ok_or_else(|| {
                InteractionError::unsupported_media_type(
                    format!("Content-Type '{ct}' is not supported; send application/fhir+json or application/fhir+xml"),
                    format!("Content-Type '{ct}' には対応していません。application/fhir+json か application/fhir+xml を使ってください"),
                )
            })
        }
        // No Content-Type: accept the two formats by their first character.
        None => match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Ok(BodyKind::Resource(Format::Xml)),
            _ => Ok(BodyKind::Resource(Format::Json)),
        },
    }
}

/// Parses a resource body in the given format into JSON.
pub fn parse_resource(format: Format, body: &[u8]) -> Result<Value, InteractionError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InteractionError::bad_request("the request body is empty", "リクエスト本文が空です"));
    }
    match format {
        Format::Json => serde_json::from_slice(body).map_err(|e| {
            InteractionError::invalid(
                "structure",
                None,
                format!("The body is not valid JSON: {e}"),
                format!("本文が JSON として不正です: {e}"),
            )
        }),
        Format::Xml => {
            let text = std::str::from_utf8(body).map_err(|_| {
                InteractionError::invalid(
                    "structure",
                    None,
                    "The XML body is not UTF-8".into(),
                    "XML 本文が UTF-8 ではありません".into(),
                )
            })?;
            tsunagu_format::xml_to_json(text).map_err(|e| {
                InteractionError::invalid(
                    "structure",
                    None,
                    format!("The XML body cannot be read: {e}"),
                    format!("XML 本文を読み取れません: {e}"),
                )
            })
        }
    }
}
