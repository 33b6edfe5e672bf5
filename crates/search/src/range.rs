//! FHIR dates as time ranges: `2024` is the whole year, `2024-03-05T10:00` one minute.

use chrono::{NaiveDate, TimeZone, Utc};

/// The half-open range `[lo, hi)` in ms that a FHIR date, dateTime or instant denotes.
/// Values without a timezone are taken as UTC.
pub fn parse_range(s: &str) -> Option<(i64, i64)> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let year: i32 = parts.first().filter(|y| y.len() == 4)?.parse().ok()?;
    let num = |p: Option<&&str>| -> Option<u32> { p.filter(|v| v.len() == 2)?.parse().ok() };
    match (parts.len(), time) {
        (1, None) => Some((ymd(year, 1, 1)?, ymd(year + 1, 1, 1)?)),
        (2, None) => {
            let m = num(parts.get(1))?;
            let (ny, nm) = if m == 12 { (year + 1, 1) } else { (year, m + 1) };
            Some((ymd(year, m, 1)?, ymd(ny, nm, 1)?))
        }
        (3, None) => {
            let lo = ymd(year, num(parts.get(1))?, num(parts.get(2))?)?;
            Some((lo, lo + 86_400_000))
        }
        (3, Some(t)) => {
            let (clock, offset_ms) = split_zone(t)?;
            let day = ymd(year, num(parts.get(1))?, num(parts.get(2))?)?;
            let (hms, frac) = match clock.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (clock, None),
            };
            let f: Vec<&str> = hms.split(':').collect();
            let h: i64 = f.first().filter(|v| v.len() == 2)?.parse().ok()?;
            let mi: i64 = f.get(1).filter(|v| v.len() == 2)?.parse().ok()?;
            let (sec, unit) = match f.get(2) {
                Some(v) if v.len() == 2 => (v.parse::<i64>().ok()?, 1000),
                None => (0, 60_000),
                _ => return None,
            };
            if h > 24 || mi > 59 || sec > 60 || f.len() > 3 {
                return None;
            }
            let mut lo = day + ((h * 60 + mi) * 60 + sec) * 1000 - offset_ms;
            let mut width = unit;
            if let Some(frac) = frac {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let digits = frac.len().min(3);
                let v: i64 = frac[..digits].parse().ok()?;
                lo += v * 10i64.pow(3 - digits as u32);
                width = 10i64.pow(3 - digits as u32);
            }
            Some((lo, lo + width))
        }
        _ => None,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?).timestamp_millis())
}

/// Splits `hh:mm:ss[.f](Z|±hh:mm)` into the clock part and the zone offset in ms.
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(c) = t.strip_suffix('Z') {
        return Some((c, 0));
    }
    if let Some(i) = t.rfind(['+', '-']) {
        let (clock, zone) = t.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = zone[1..].split_once(':')?;
        // Two digits each and a real offset (FHIR: ±hh:mm up to 14:00), so nothing overflows.
        let two = |v: &str| -> Option<i64> {
            (v.len() == 2 && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok())?
        };
        let (hh, mm) = (two(hh)?, two(mm)?);
        if hh > 14 || mm > 59 {
            return None;
        }
        return Some((clock, sign * (hh * 60 + mm) * 60_000));
    }
    Some((t, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_precision() {
        let (lo, hi) = parse_range("2024").unwrap();
        assert_eq!(hi - lo, 366 * 86_400_000);
        let (lo, hi) = parse_range("2024-02").unwrap();
        assert_eq!(hi - lo, 29 * 86_400_000);
        let (lo, hi) = parse_range("2024-12-31T23:59:59+09:00").unwrap();
        assert_eq!(hi - lo, 1000);
        assert_eq!(lo, parse_range("2024-12-31T14:59:59Z").unwrap().0);
        let (lo, hi) = parse_range("2024-12-31T10:00:00.5Z").unwrap();
        assert_eq!((lo % 1000, hi - lo), (500, 100));
        // Offsets are two-digit and real: no overflow on absurd ones (found by fuzzing).
        assert_eq!(parse_range("2024-01-01T00:00:00+99:00"), None);
        assert_eq!(parse_range("2024-01-01T00:00:00+0666666666666666666601:00"), None);
        assert_eq!(parse_range("2024-01-01T00:00:00++1:00"), None);
        assert!(parse_range("2024-01-01T00:00:00-14:00").is_some());
        assert!(parse_range("2024-13").is_none());
        assert!(parse_range("yesterday").is_none());
        assert!(parse_range("2024-01-01T25:00:00Z").is_none());
    }
}
