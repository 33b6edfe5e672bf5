//! Answers to requests the HTTP layer could not parse, as OperationOutcomes.
//!
//! hyper answers a request head it cannot read — malformed (400), a URI over 65,534 bytes
//! (414), a head past `max_header_bytes` or with more than `max_header_fields` header
//! fields (431) — itself, before any service sees the request, with an empty body and
//! none of the security headers. It offers no hook for that answer, so the connection's
//! stream (`listen::Watched`) recognises it on its way out and writes this one instead:
//! the same status, a bilingual OperationOutcome (the request's `Accept-Language` was
//! never read), the security headers, and `connection: close` as hyper meant.
//!
//! Recognised exactly: one of hyper's three status lines, then only `connection: close`,
//! `content-length: 0` and `date`. Every response the application writes carries
//! `x-content-type-options`, so none of them can look like this.

/// What a client is told about the limits a head went past.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_header_fields: usize,
}

/// Longer than any of hyper's answers (a status line and three short fields): longer writes
/// are not looked at.
pub(crate) const LONGEST: usize = 256;

const AUTOMATIC: [(&[u8], u16); 3] = [
    (b"HTTP/1.1 400 Bad Request\r\n", 400),
    (b"HTTP/1.1 414 URI Too Long\r\n", 414),
    (b"HTTP/1.1 431 Request Header Fields Too Large\r\n", 431),
];

/// The response to write instead of `head`, when `head` is hyper's own answer to a request
/// it could not parse; `None` for anything else.
pub(crate) fn redress(head: &[u8], limits: HeadLimits) -> Option<Vec<u8>> {
    let (line, status) = AUTOMATIC.iter().find(|(line, _)| head.starts_with(line))?;
    let rest = std::str::from_utf8(head.get(line.len()..)?).ok()?;
    let fields = rest.strip_suffix("\r\n\r\n")?;
    let mut date = None;
    let mut seen = 0;
    for field in fields.split("\r\n") {
        let (name, value) = field.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "connection" if value == "close" => {}
            "content-length" if value == "0" => {}
            "date" => date = Some(value),
            _ => return None,
        }
        seen += 1;
    }
    if seen != 3 {
        return None;
    }
    let (code, text) = explain(*status, limits);
    let outcome = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": code, "diagnostics": text }],
    });
    let body = serde_json::to_vec(&outcome).expect("serialises");
    let mut out = Vec::with_capacity(body.len() + 400);
    out.extend_from_slice(line);
    out.extend_from_slice(
        b"content-type: application/fhir+json; charset=utf-8\r\n\
          x-content-type-options: nosniff\r\n\
          referrer-policy: no-referrer\r\n\
          x-frame-options: DENY\r\n\
          content-security-policy: default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n\
          cache-control: no-store\r\n\
          connection: close\r\n",
    );
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    if let Some(date) = date {
        out.extend_from_slice(format!("date: {date}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// The issue code and the message (English, then Japanese) for one of hyper's statuses.
fn explain(status: u16, limits: HeadLimits) -> (&'static str, String) {
    match status {
        414 => (
            "too-long",
            "The request URI is longer than 65534 bytes, the most this server reads; send a long search as \
             POST [base]/[type]/_search with its parameters in a form body. / リクエスト URI が 65534 バイトを\
             超えています。長い検索は POST [base]/[type]/_search で、パラメータをフォーム本文にして送ってください。"
                .to_string(),
        ),
        431 => (
            "too-long",
            format!(
                "The request goes past the limit max_header_bytes = {} (bytes in the request line and headers) or \
                 max_header_fields = {} (header fields). / リクエストが上限 max_header_bytes = {}（リクエスト行と\
                 ヘッダのバイト数）または max_header_fields = {}（ヘッダの数）を超えています。",
                limits.max_header_bytes, limits.max_header_fields, limits.max_header_bytes, limits.max_header_fields
            ),
        ),
        _ => (
            "structure",
            "The request could not be read as HTTP: its request line or a header is malformed. / リクエストを \
             HTTP として読めません（リクエスト行またはヘッダの形式が正しくありません）。"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_header_bytes: 1000, max_header_fields: 10 };

    fn body(reply: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(reply).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn hypers_answers_become_outcomes_with_the_same_status() {
        let date = "date: Sun, 06 Dec 2026 14:29:47 GMT\r\n\r\n";
        for (line, status) in AUTOMATIC {
            let head = [line, b"connection: close\r\ncontent-length: 0\r\n", date.as_bytes()].concat();
            let reply = redress(&head, LIMITS).expect("recognised");
            assert!(reply.starts_with(line));
            let text = String::from_utf8(reply.clone()).unwrap();
            assert!(text.contains("x-content-type-options: nosniff\r\n"));
            assert!(text.contains("connection: close\r\n"));
            assert!(text.contains("date: Sun, 06 Dec 2026 14:29:47 GMT\r\n"));
            let outcome = body(&reply);
            assert_eq!(outcome["resourceType"], "OperationOutcome");
            let (_, len) = text.split_once("content-length: ").unwrap();
            let len: usize = len.split("\r\n").next().unwrap().parse().unwrap();
            assert_eq!(len, serde_json::to_vec(&outcome).unwrap().len());
            if status == 431 {
                assert!(outcome["issue"][0]["diagnostics"].as_str().unwrap().contains("max_header_bytes = 1000"));
            }
        }
    }

    #[test]
    fn the_applications_own_responses_are_left_alone() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/fhir+json\r\n\
                     x-content-type-options: nosniff\r\ncontent-length: 0\r\n\r\n";
        assert!(redress(ours, LIMITS).is_none());
        let other_status = b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert!(redress(other_status, LIMITS).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 2\r\ndate: x\r\n\r\n";
        assert!(redress(with_body, LIMITS).is_none());
        let unfinished = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n";
        assert!(redress(unfinished, LIMITS).is_none());
    }
}
