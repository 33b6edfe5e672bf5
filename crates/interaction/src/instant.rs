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

pub use tsunagu_search::parse_range;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_is_rfc7231() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
