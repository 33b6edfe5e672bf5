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

/// A `_format` only `ViewDefinition/$run` answers in (rows, not resources).
pub fn rows_format(f: &str) -> bool {
    matches!(
        f,
        "csv"
            | "text/csv"
            | "ndjson"
            | "application/ndjson"
            | "application/x-ndjson"
            | "parquet"
            | "application/vnd.apache.parquet"
    )
}

pub(crate) fn format_of_mime(m: &str) -> Option<Format> {
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
        if matches!(f, "html" | "text/html") || rows_format(f) {
            // Documents answer with a page (`document_page.rs`), `ViewDefinition/$run` in
            // its rows format; errors stay FHIR JSON.
            return Ok(Format::Json);
        }
        let version = f.split_once(';').map_or("", |(_, p)| p);
        return format_of_mime(f).filter(|_| fhir_version_matches(version)).ok_or_else(|| {
            InteractionError::not_acceptable(
                format!("_format '{f}' is not supported; use json or xml"),
                format!("_format '{f}' には対応していません（json または xml）"),
            )
        });
    }
    let Some(accept) = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    accepted_format(accept).ok_or_else(|| {
        InteractionError::not_acceptable(
            format!(
                "cannot answer in '{accept}'; this server speaks application/fhir+json and application/fhir+xml \
                 (fhirVersion=4.0)"
            ),
            format!(
                "'{accept}' では応答できません。application/fhir+json か application/fhir+xml（fhirVersion=4.0）\
                 を指定してください"
            ),
        )
    })
}

/// The FHIR version this server speaks, as media types carry it (`fhirVersion=4.0`; a
/// patch release such as `4.0.1` names the same version).
fn fhir_version_matches(params: &str) -> bool {
    params.split(';').filter_map(|p| p.split_once('=')).all(|(k, v)| {
        !k.trim().eq_ignore_ascii_case("fhirVersion") || {
            let v = v.trim().trim_matches('"');
            v == "4.0" || v.starts_with("4.0.")
        }
    })
}

/// The format an `Accept` header asks for (RFC 9110 §12.5.1): each format takes the
/// quality of the most specific range that matches it (`application/fhir+json` before
/// `application/*` before `*/*`); `q=0` refuses; a range naming another `fhirVersion`
/// matches nothing. The higher quality wins, JSON on a tie unless XML is named first.
/// A header asking only for a web page (`text/html`) gets JSON; one naming nothing this
/// server speaks gets `None` (406).
fn accepted_format(accept: &str) -> Option<Format> {
    let (best, page) = fhir_ranges(accept);
    let (json, xml) = (best[0].filter(|b| b.0 > 0), best[1].filter(|b| b.0 > 0));
    match (json, xml) {
        (Some(j), Some(x)) => Some(if x.0 > j.0 || (x.0 == j.0 && x.1 == 3 && (j.1 < 3 || x.2 < j.2)) {
            Format::Xml
        } else {
            Format::Json
        }),
        (Some(_), None) => Some(Format::Json),
        (None, Some(_)) => Some(Format::Xml),
        (None, None) if page && best[0].is_none() => Some(Format::Json),
        (None, None) => None,
    }
}

/// The quality and position in `accept` of the best range that takes a FHIR format
/// (`None` when none does), to weigh it against another type (a Binary's own).
pub(crate) fn fhir_quality(accept: &str) -> Option<(u16, usize)> {
    let (best, _) = fhir_ranges(accept);
    best.into_iter()
        .flatten()
        .filter(|b| b.0 > 0)
        .map(|(q, _, pos)| (q, pos))
        .max_by_key(|(q, pos)| (*q, usize::MAX - pos))
}

/// For JSON and for XML, the (quality, specificity, position) of the most specific range
/// of `accept` that takes it; and whether a page (`text/html`) is asked for.
type Ranges = ([Option<(u16, u8, usize)>; 2], bool);

fn fhir_ranges(accept: &str) -> Ranges {
    let mut best: [Option<(u16, u8, usize)>; 2] = [None, None];
    let mut page = false;
    for AcceptRange { pos, mime, params, q } in accept_ranges(accept) {
        if !fhir_version_matches(params) {
            continue;
        }
        let specific = |f: Format| match format_of_mime(&mime) {
            Some(g) if g == f => Some(3),
            _ if mime == "application/*" || (f == Format::Xml && mime == "text/*") => Some(2),
            _ if mime == "*/*" || mime.is_empty() => Some(1),
            _ => None,
        };
        for (slot, f) in [Format::Json, Format::Xml].into_iter().enumerate() {
            if let Some(spec) = specific(f) {
                if best[slot].is_none_or(|(_, s, _)| spec > s) {
                    best[slot] = Some((q, spec, pos));
                }
            }
        }
        page |= mime == "text/html" && q > 0;
    }
    (best, page)
}

/// One media range of an `Accept` header.
pub(crate) struct AcceptRange<'h> {
    /// Its place in the header (earlier wins a tie).
    pub pos: usize,
    /// The media range, lower-case (`application/pdf`, `image/*`).
    pub mime: String,
    /// Everything after its first `;`.
    pub params: &'h str,
    /// Its quality, in thousandths.
    pub q: u16,
}

/// The media ranges of an `Accept` header, in order: the one parser of the header, for
/// FHIR formats and for a Binary's own type alike.
pub(crate) fn accept_ranges(accept: &str) -> impl Iterator<Item = AcceptRange<'_>> {
    accept.split(',').enumerate().map(|(pos, part)| {
        let (mime, params) = part.split_once(';').unwrap_or((part, ""));
        AcceptRange { pos, mime: mime.trim().to_ascii_lowercase(), params, q: quality(params) }
    })
}

/// A range's `q`, in thousandths (1000 when absent or unreadable).
fn quality(params: &str) -> u16 {
    for p in params.split(';') {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("q") {
                return v.trim().parse::<f32>().map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0).round() as u16);
            }
        }
    }
    1000
}

/// What a request body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Resource(Format),
    JsonPatch,
}

/// The kind of a request body. Only FHIR's own media types are taken: a body without
/// `Content-Type`, or with one a web page may send cross-site without asking first
/// (`text/plain`, form encoding), is refused with 415, so no page can make a browser
/// write here.
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, InteractionError> {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE) else {
        return Err(InteractionError::unsupported_media_type(
            "the request has a body but no Content-Type; send application/fhir+json or application/fhir+xml",
            "Content-Type がありません。application/fhir+json か application/fhir+xml を指定してください",
        ));
    };
    let ct = ct.to_str().unwrap_or("");
    let (mime, params) = ct.split_once(';').unwrap_or((ct, ""));
    let mime = mime.trim().to_ascii_lowercase();
    if !fhir_version_matches(params) {
        return Err(InteractionError::unsupported_media_type(
            format!("Content-Type '{ct}' names a FHIR version this server does not speak; it speaks 4.0 (R4)"),
            format!("Content-Type '{ct}' の FHIR バージョンには対応していません（対応は 4.0、R4 です）"),
        ));
    }
    match mime.as_str() {
        "application/json-patch+json" => Ok(BodyKind::JsonPatch),
        "application/fhir+json" | "application/json" | "application/json+fhir" => Ok(BodyKind::Resource(Format::Json)),
        "application/fhir+xml" | "application/xml" | "application/xml+fhir" => Ok(BodyKind::Resource(Format::Xml)),
        _ => Err(InteractionError::unsupported_media_type(
            format!("Content-Type '{ct}' is not supported; send application/fhir+json or application/fhir+xml"),
            format!("Content-Type '{ct}' には対応していません。application/fhir+json か application/fhir+xml を使ってください"),
        )),
    }
}

/// How much parsing a body may cost: `max_json_depth` and `max_body_values`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_depth: usize,
    pub max_values: usize,
    /// The body's values and whether they were counted as XML, counted once as it arrived
    /// (`body_values`), when it is JSON or XML.
    pub values: Option<(usize, bool)>,
}

/// The values of a body sent as JSON or XML (`value_count`), for the memory it will
/// hold (`max_memory_bytes`) and `max_body_values`; `None` for other content (a Binary's
/// own bytes, a form).
pub fn body_values(headers: &http::HeaderMap, body: &[u8]) -> Option<(usize, bool)> {
    if body.is_empty() {
        return None;
    }
    let ct = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    let xml = essence.ends_with("xml");
    (xml || essence.ends_with("json")).then(|| (value_count(body, xml), xml))
}

/// Refuses a body with more values than `max_values` before parsing it, from the count
/// made as it arrived when that counted it the same way.
pub fn check_body_values(body: &[u8], xml: bool, limits: BodyLimits) -> Result<(), InteractionError> {
    let counted = limits.values.filter(|&(_, as_xml)| as_xml == xml).map(|(n, _)| n);
    check_count(counted.unwrap_or_else(|| value_count(body, xml)), limits.max_values)
}

fn check_count(count: usize, max_values: usize) -> Result<(), InteractionError> {
    if count > max_values {
        let e = tsunagu_interaction::LimitExceeded::new(tsunagu_interaction::Limit::BodyValues, max_values);
        return Err(e.found(count).into());
    }
    Ok(())
}

/// One linear pass over the bytes, counting what each parsed value would be built from
/// (for JSON the commas, brackets and braces outside strings; for XML the tags).
fn value_count(body: &[u8], xml: bool) -> usize {
    if xml {
        memchr_count(b'<', body)
    } else {
        let (mut n, mut in_string, mut escaped) = (1usize, false, false);
        for &b in body {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b',' | b'[' | b'{' => n += 1,
                    _ => {}
                }
            }
        }
        n
    }
}

fn memchr_count(needle: u8, hay: &[u8]) -> usize {
    hay.iter().filter(|&&b| b == needle).count()
}

/// Parses a resource body in the given format into JSON. Bodies with more values than
/// allowed are refused unread; XML deeper than the depth limit is refused while it is read
/// (JSON deeper than 127 levels by the JSON reader).
pub fn parse_resource(format: Format, body: &[u8], limits: BodyLimits) -> Result<Value, InteractionError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InteractionError::bad_request("the request body is empty", "リクエスト本文が空です"));
    }
    check_body_values(body, format == Format::Xml, limits)?;
    let max_depth = limits.max_depth;
    match format {
        Format::Json => tsunagu_format::json_from_slice(body).map_err(|e| {
            // serde_json stops at 128 levels, before its own recursion can hurt.
            if e.to_string().starts_with("recursion limit exceeded") {
                let limit = tsunagu_interaction::LimitExceeded::new(tsunagu_interaction::Limit::JsonDepth, max_depth);
                return InteractionError::Limit(limit.at(format!("line {} column {}", e.line(), e.column())));
            }
            InteractionError::invalid(
                "structure",
                None,
                format!("The body is not valid JSON: {e}"),
                format!("本文が JSON として不正です: {}", json_error_ja(&e)),
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
            tsunagu_format::xml_to_json_limited(text, max_depth).map_err(|e| match e {
                tsunagu_format::FormatError::Limit(l) => InteractionError::Limit(l),
                e => InteractionError::invalid(
                    "structure",
                    None,
                    format!("The XML body cannot be read: {e}"),
                    format!("XML 本文を読み取れません: {e}"),
                ),
            })
        }
    }
}

/// Where and why a body is not JSON, in Japanese (serde_json's own message is English).
pub(crate) fn json_error_ja(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let why = match e.classify() {
        Category::Eof => "本文が途中で終わっています".to_string(),
        Category::Syntax => "構文が誤っています".to_string(),
        Category::Io => "本文を読み取れません".to_string(),
        // The reader's own refusal: a property twice in one object.
        Category::Data => match text.split('"').nth(1).filter(|_| text.contains("appears twice")) {
            Some(key) => format!("プロパティ \"{key}\" が一つのオブジェクトに二度現れます"),
            None => "値を読み取れません".to_string(),
        },
    };
    format!("{} 行 {} 列目で{why}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    fn check_value_count(body: &[u8], xml: bool, max_values: usize) -> Result<(), InteractionError> {
        check_body_values(body, xml, BodyLimits { max_depth: 100, max_values, values: None })
    }

    use super::*;

    /// Why a body is not JSON, said in Japanese with its place: no English inside.
    #[test]
    fn json_errors_in_japanese() {
        let ja = |body: &str| json_error_ja(&tsunagu_format::json_from_slice(body.as_bytes()).unwrap_err());
        assert_eq!(ja(r#"{"resourceType":"Patient","#), "1 行 26 列目で本文が途中で終わっています");
        assert_eq!(ja("{\n  x}"), "2 行 3 列目で構文が誤っています");
        assert!(ja(r#"{"a":1,"a":2}"#).contains("プロパティ \"a\" が一つのオブジェクトに二度現れます"));
    }

    #[test]
    fn accept_is_read_by_quality_specificity_and_fhir_version() {
        let f = accepted_format;
        assert_eq!(f("application/fhir+xml"), Some(Format::Xml));
        assert_eq!(f("application/fhir+xml;q=0.5, application/fhir+json"), Some(Format::Json));
        assert_eq!(f("application/fhir+json;q=0.2, application/fhir+xml;q=0.9"), Some(Format::Xml));
        assert_eq!(f("application/fhir+json;q=0, */*"), Some(Format::Xml));
        assert_eq!(f("application/fhir+json;q=0, application/fhir+xml;q=0"), None);
        assert_eq!(f("*/*;q=0.1, application/fhir+xml"), Some(Format::Xml));
        assert_eq!(f("application/*"), Some(Format::Json));
        assert_eq!(f("text/*"), Some(Format::Xml));
        // A browser: XML named, JSON only through */*.
        assert_eq!(f("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), Some(Format::Xml));
        assert_eq!(f("text/html"), Some(Format::Json));
        assert_eq!(f("image/png"), None);
        // fhirVersion: 4.0 and its patch releases are this server; others are not.
        assert_eq!(f("application/fhir+json; fhirVersion=4.0"), Some(Format::Json));
        assert_eq!(f("application/fhir+xml; fhirVersion=4.0.1"), Some(Format::Xml));
        assert_eq!(f("application/fhir+json; fhirVersion=5.0"), None);
        assert_eq!(f("application/fhir+json; fhirVersion=3.0, application/fhir+xml"), Some(Format::Xml));
        // Ties go to the one named exactly, then to the one named first.
        assert_eq!(f("application/fhir+xml, application/fhir+json"), Some(Format::Xml));
        assert_eq!(f("application/fhir+json, application/fhir+xml"), Some(Format::Json));
    }

    #[test]
    fn values_are_counted_outside_strings() {
        // Outside strings: { , [ { [ , — six, plus the value itself.
        let ok = br#"{"resourceType":"Patient","name":[{"given":["a,b[{","c\",["]}]}"#;
        assert!(check_value_count(ok, false, 7).is_ok());
        assert!(check_value_count(ok, false, 6).is_err());
        let many = format!("[{}1]", "1,".repeat(1000));
        let e = check_value_count(many.as_bytes(), false, 1000).unwrap_err();
        assert_eq!(e.status(), 413);
        assert!(e.message(tsunagu_interaction::Lang::En).contains("max_body_values"));
        assert!(check_value_count(b"<Patient><id value=\"x\"/></Patient>", true, 3).is_ok());
        assert!(check_value_count(b"<Patient><id value=\"x\"/></Patient>", true, 2).is_err());
    }
}
