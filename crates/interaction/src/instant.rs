//! FHIR instants and partial dates as the server needs them: formatting `meta.lastUpdated`
//! and turning `_since`, `_at` and `_lastUpdated` values into millisecond ranges.

use chrono::{DateTime, SecondsFormat, Utc};

/// `meta.lastUpdated` text for a timestamp: UTC, millisecond precision.
pub fn format_instant(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 7231 date for the `Last-Modified` header.
pub fn http_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) as epoch milliseconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim()).ok().map(|d| d.timestamp_millis())
}

pub use tsunagu_search::parse_range;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_is_rfc7231() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), Some(1000));
        assert_eq!(parse_http_date(&http_date(1_700_000_000_000)), Some(1_700_000_000_000));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
