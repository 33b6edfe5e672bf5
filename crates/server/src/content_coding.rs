//! Request bodies sent with a `Content-Encoding` (RFC 9110 §8.4). gzip is decoded, and at
//! most `max_body_bytes` of it: a small body that inflates past the limit is a 413 after
//! reading that much, never the whole expansion in memory. Any other coding is a 415 that
//! names the ones understood (the body was taken as plain JSON before, and a gzip body
//! answered "not valid JSON").

use std::io::Read;

use http::HeaderMap;
use tsunagu_interaction::{InteractionError, Limit, LimitExceeded};

/// The body as sent, decoded when its `Content-Encoding` is gzip.
pub(crate) fn decoded(headers: &HeaderMap, body: bytes::Bytes, max: usize) -> Result<bytes::Bytes, InteractionError> {
    let mut gzip = 0;
    for value in headers.get_all(http::header::CONTENT_ENCODING) {
        let value = value.to_str().unwrap_or("\u{fffd}");
        for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match coding.to_ascii_lowercase().as_str() {
                "identity" => {}
                "gzip" | "x-gzip" => gzip += 1,
                _ => {
                    return Err(InteractionError::unsupported_media_type(
                        format!("Content-Encoding '{coding}' is not supported; send the body as is or with gzip"),
                        format!(
                            "Content-Encoding '{coding}' には対応していません。そのまま、または gzip で送ってください"
                        ),
                    ))
                }
            }
        }
    }
    match gzip {
        0 => Ok(body),
        1 => gunzip(&body, max),
        // Each layer would cost up to max_body_bytes more of inflating: one is all a
        // client needs.
        _ => Err(InteractionError::unsupported_media_type(
            "Content-Encoding names gzip more than once; send the body gzipped once",
            "Content-Encoding に gzip が複数回指定されています。gzip は一度だけにしてください",
        )),
    }
}

fn gunzip(body: &[u8], max: usize) -> Result<bytes::Bytes, InteractionError> {
    let mut out = Vec::new();
    // Every member (RFC 1952 lets a gzip file hold several), and nothing after them.
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(max as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|_| {
        InteractionError::bad_request(
            "the body is marked Content-Encoding: gzip but is not valid gzip",
            "本文は Content-Encoding: gzip とされていますが、gzip として読めません",
        )
    })?;
    if out.len() > max {
        return Err(LimitExceeded::new(Limit::BodyBytes, max).into());
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> bytes::Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap().into()
    }

    fn headers(coding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_ENCODING, coding.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_decoded_within_the_limit_and_other_codings_are_refused() {
        let body = br#"{"resourceType":"Patient"}"#;
        assert_eq!(&decoded(&HeaderMap::new(), body[..].into(), 100).unwrap()[..], body);
        assert_eq!(&decoded(&headers("identity"), body[..].into(), 100).unwrap()[..], body);
        assert_eq!(&decoded(&headers("GZIP"), gz(body), 100).unwrap()[..], body);
        assert_eq!(decoded(&headers("gzip, gzip"), gz(&gz(body)), 100).unwrap_err().status(), 415);
        let two_members = [gz(&body[..10]), gz(&body[10..])].concat();
        assert_eq!(&decoded(&headers("gzip"), two_members.into(), 100).unwrap()[..], body);
        let trailing = [&gz(body)[..], b"junk"].concat();
        assert_eq!(decoded(&headers("gzip"), trailing.into(), 100).unwrap_err().status(), 400);
        // A bomb: 10 MB of zeros in under 100 kB, read no further than the limit.
        let bomb = gz(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 100_000);
        assert_eq!(decoded(&headers("gzip"), bomb, 1_000).unwrap_err().status(), 413);
        assert_eq!(decoded(&headers("gzip"), body[..].into(), 100).unwrap_err().status(), 400);
        assert_eq!(decoded(&headers("br"), body[..].into(), 100).unwrap_err().status(), 415);
    }
}
