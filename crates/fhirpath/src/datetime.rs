//! Partial dates, date-times and times. FHIR allows `2015`, `2015-02` or a full instant,
//! and FHIRPath compares such values only as far as both are precise: `@2018-03 < @2018-03-01`
//! is unknown (empty), not false.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
}

/// A date (precision at most `Day`) or a date-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
    pub precision: Precision,
    /// Offset from UTC in minutes, when given.
    pub tz: Option<i16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
    pub precision: Precision,
}

fn num(s: &str, len: usize) -> Option<(u32, &str)> {
    if s.len() < len || !s.as_bytes()[..len].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((s[..len].parse().ok()?, &s[len..]))
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Parses `HH(:MM(:SS(.fff)?)?)?`, returning the rest of the input.
fn parse_time_part(s: &str) -> Option<(Time, &str)> {
    let (h, mut rest) = num(s, 2)?;
    if h > 23 {
        return None;
    }
    let mut t = Time { hour: h as u8, minute: 0, second: 0, millis: 0, precision: Precision::Hour };
    if let Some(r) = rest.strip_prefix(':') {
        let (m, r) = num(r, 2)?;
        if m > 59 {
            return None;
        }
        t.minute = m as u8;
        t.precision = Precision::Minute;
        rest = r;
        if let Some(r) = rest.strip_prefix(':') {
            let (sec, r) = num(r, 2)?;
            if sec > 59 {
                return None;
            }
            t.second = sec as u8;
            t.precision = Precision::Second;
            rest = r;
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                let mut ms = 0u32;
                for (i, b) in r.bytes().take(3).enumerate().take(n) {
                    ms += (b - b'0') as u32 * 10u32.pow(2 - i as u32);
                }
                t.millis = ms as u16;
                t.precision = Precision::Millis;
                rest = &r[n..];
            }
        }
    }
    Some((t, rest))
}

fn parse_tz(s: &str) -> Option<(Option<i16>, &str)> {
    if let Some(r) = s.strip_prefix('Z') {
        return Some((Some(0), r));
    }
    let sign = match s.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some((None, s)),
    };
    let (h, r) = num(&s[1..], 2)?;
    let r = r.strip_prefix(':')?;
    let (m, r) = num(r, 2)?;
    if h > 14 || m > 59 {
        return None;
    }
    Some((Some(sign * (h * 60 + m) as i16), r))
}

impl DateTime {
    fn date_prefix(s: &str) -> Option<(DateTime, &str)> {
        let (y, mut rest) = num(s, 4)?;
        let mut d = DateTime {
            year: y as i32,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            precision: Precision::Year,
            tz: None,
        };
        if let Some(r) = rest.strip_prefix('-') {
            let (m, r) = num(r, 2)?;
            if !(1..=12).contains(&m) {
                return None;
            }
            d.month = m as u8;
            d.precision = Precision::Month;
            rest = r;
            if let Some(r) = rest.strip_prefix('-') {
                let (day, r) = num(r, 2)?;
                if day < 1 || day > days_in_month(d.year, d.month) as u32 {
                    return None;
                }
                d.day = day as u8;
                d.precision = Precision::Day;
                rest = r;
            }
        }
        Some((d, rest))
    }

    /// A FHIR/FHIRPath date: `YYYY(-MM(-DD)?)?`.
    pub fn parse_date(s: &str) -> Option<DateTime> {
        match DateTime::date_prefix(s)? {
            (d, "") => Some(d),
            _ => None,
        }
    }

    /// A date-time; the time part (after `T`) and the zone are optional. With
    /// `allow_bare_t` a trailing `T` without time is accepted (FHIRPath literal `@2015T`).
    pub fn parse_datetime(s: &str) -> Option<DateTime> {
        let (mut d, rest) = DateTime::date_prefix(s)?;
        if rest.is_empty() {
            return Some(d);
        }
        let rest = rest.strip_prefix('T')?;
        if rest.is_empty() {
            return Some(d);
        }
        if d.precision != Precision::Day {
            return None;
        }
        let (t, rest) = parse_time_part(rest)?;
        d.hour = t.hour;
        d.minute = t.minute;
        d.second = t.second;
        d.millis = t.millis;
        d.precision = t.precision;
        let (tz, rest) = parse_tz(rest)?;
        if !rest.is_empty() {
            return None;
        }
        d.tz = tz;
        Some(d)
    }

    pub fn is_date_only(&self) -> bool {
        self.precision <= Precision::Day
    }

    fn naive(&self) -> Option<NaiveDateTime> {
        let date = NaiveDate::from_ymd_opt(self.year, self.month as u32, self.day as u32)?;
        let time = NaiveTime::from_hms_milli_opt(
            self.hour as u32,
            self.minute as u32,
            self.second as u32,
            self.millis as u32,
        )?;
        Some(NaiveDateTime::new(date, time))
    }

    fn set_naive(&mut self, n: NaiveDateTime) {
        self.year = n.year();
        self.month = n.month() as u8;
        self.day = n.day() as u8;
        self.hour = n.hour() as u8;
        self.minute = n.minute() as u8;
        self.second = n.second() as u8;
        self.millis = (n.nanosecond() / 1_000_000).min(999) as u16;
    }

    /// The same instant in UTC (only meaningful with a zone and a time).
    fn to_utc(self) -> DateTime {
        let mut d = self;
        if let (Some(tz), true) = (self.tz, self.precision >= Precision::Hour) {
            if let Some(n) = self.naive() {
                d.set_naive(n - Duration::minutes(tz as i64));
                d.tz = Some(0);
            }
        }
        d
    }

    /// Compares as far as both are precise; `None` when the answer depends on digits one
    /// of them does not have (or on a zone only one of them has).
    pub fn partial_cmp_dt(&self, o: &DateTime) -> Option<Ordering> {
        let (a, b) = if self.precision >= Precision::Hour && o.precision >= Precision::Hour {
            match (self.tz.is_some(), o.tz.is_some()) {
                (true, true) => (self.to_utc(), o.to_utc()),
                (false, false) => (*self, *o),
                _ => return None,
            }
        } else {
            (*self, *o)
        };
        let levels: [(Precision, i64, i64); 6] = [
            (Precision::Year, a.year as i64, b.year as i64),
            (Precision::Month, a.month as i64, b.month as i64),
            (Precision::Day, a.day as i64, b.day as i64),
            (Precision::Hour, a.hour as i64, b.hour as i64),
            (Precision::Minute, a.minute as i64, b.minute as i64),
            (Precision::Second, a.second as i64 * 1000 + a.millis as i64, b.second as i64 * 1000 + b.millis as i64),
        ];
        for (p, x, y) in levels {
            match (a.precision >= p, b.precision >= p) {
                (true, true) => {
                    if x != y {
                        return Some(x.cmp(&y));
                    }
                }
                (false, false) => return Some(Ordering::Equal),
                _ => return None,
            }
        }
        Some(Ordering::Equal)
    }

    /// Adds a calendar amount. `unit` is one of the calendar duration keywords (singular).
    pub fn add(&self, amount: i64, unit: &str) -> Option<DateTime> {
        let mut d = *self;
        match unit {
            "year" => {
                d.year = d.year.checked_add(i32::try_from(amount).ok()?)?;
                d.day = d.day.min(days_in_month(d.year, d.month));
            }
            "month" => {
                let total = (d.year as i64 * 12 + (d.month as i64 - 1)).checked_add(amount)?;
                d.year = i32::try_from(total.div_euclid(12)).ok()?;
                d.month = (total.rem_euclid(12) + 1) as u8;
                d.day = d.day.min(days_in_month(d.year, d.month));
            }
            _ => {
                let dur = match unit {
                    "week" => Duration::try_days(amount.checked_mul(7)?)?,
                    "day" => Duration::try_days(amount)?,
                    "hour" => Duration::try_hours(amount)?,
                    "minute" => Duration::try_minutes(amount)?,
                    "second" => Duration::try_seconds(amount)?,
                    "millisecond" => Duration::try_milliseconds(amount)?,
                    _ => return None,
                };
                let n = d.naive()?.checked_add_signed(dur)?;
                d.set_naive(n);
            }
        }
        (1..=9999).contains(&d.year).then_some(d)
    }

    /// Digits of precision as `precision()` reports them (4 for a year … 17 for ms).
    pub fn precision_digits(&self) -> i64 {
        match self.precision {
            Precision::Year => 4,
            Precision::Month => 6,
            Precision::Day => 8,
            Precision::Hour => 10,
            Precision::Minute => 12,
            Precision::Second => 14,
            Precision::Millis => 17,
        }
    }

    /// The earliest (`high == false`) or latest instant this value may denote, at the given
    /// precision in digits. A missing zone widens the range to +14:00 / -12:00.
    pub fn boundary(&self, digits: i64, high: bool, is_date: bool) -> Option<DateTime> {
        let p = match digits {
            4 => Precision::Year,
            6 => Precision::Month,
            8 => Precision::Day,
            10 if !is_date => Precision::Hour,
            12 if !is_date => Precision::Minute,
            14 if !is_date => Precision::Second,
            17 if !is_date => Precision::Millis,
            _ => return None,
        };
        let mut d = *self;
        // An hour alone is not a legal FHIR time: read it as hh:00.
        let known = if d.precision == Precision::Hour { Precision::Minute } else { d.precision };
        if known < Precision::Month {
            d.month = if high { 12 } else { 1 };
        }
        if known < Precision::Day {
            d.day = if high { days_in_month(d.year, d.month) } else { 1 };
        }
        if known < Precision::Hour {
            d.hour = if high { 23 } else { 0 };
        }
        if known < Precision::Minute {
            d.minute = if high { 59 } else { 0 };
        }
        if known < Precision::Second {
            d.second = if high { 59 } else { 0 };
        }
        if known < Precision::Millis {
            d.millis = if high { 999 } else { 0 };
        }
        d.precision = p;
        if p >= Precision::Hour && d.tz.is_none() {
            d.tz = Some(if high { -12 * 60 } else { 14 * 60 });
        }
        if p < Precision::Hour {
            d.tz = None;
        }
        Some(d)
    }

    pub fn now() -> DateTime {
        let now = chrono::Local::now();
        let mut d = DateTime {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            precision: Precision::Millis,
            tz: Some((now.offset().local_minus_utc() / 60) as i16),
        };
        d.set_naive(now.naive_local());
        d
    }

    pub fn today() -> DateTime {
        let mut d = DateTime::now();
        d.precision = Precision::Day;
        d.tz = None;
        d.hour = 0;
        d.minute = 0;
        d.second = 0;
        d.millis = 0;
        d
    }

    pub fn time_of_day() -> Time {
        let d = DateTime::now();
        Time { hour: d.hour, minute: d.minute, second: d.second, millis: d.millis, precision: Precision::Millis }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if self.precision >= Precision::Month {
            write!(f, "-{:02}", self.month)?;
        }
        if self.precision >= Precision::Day {
            write!(f, "-{:02}", self.day)?;
        }
        if self.precision >= Precision::Hour {
            f.write_str("T")?;
            write_clock(f, self.hour, self.minute, self.second, self.millis, self.precision)?;
            match self.tz {
                Some(0) => f.write_str("Z")?,
                Some(m) => write!(f, "{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl Time {
    pub fn parse(s: &str) -> Option<Time> {
        match parse_time_part(s)? {
            (t, "") => Some(t),
            _ => None,
        }
    }

    pub fn partial_cmp_t(&self, o: &Time) -> Option<Ordering> {
        let levels: [(Precision, i64, i64); 3] = [
            (Precision::Hour, self.hour as i64, o.hour as i64),
            (Precision::Minute, self.minute as i64, o.minute as i64),
            (
                Precision::Second,
                self.second as i64 * 1000 + self.millis as i64,
                o.second as i64 * 1000 + o.millis as i64,
            ),
        ];
        for (p, x, y) in levels {
            match (self.precision >= p, o.precision >= p) {
                (true, true) => {
                    if x != y {
                        return Some(x.cmp(&y));
                    }
                }
                (false, false) => return Some(Ordering::Equal),
                _ => return None,
            }
        }
        Some(Ordering::Equal)
    }

    pub fn add(&self, amount: i64, unit: &str) -> Option<Time> {
        let ms: i64 = match unit {
            "hour" => amount.checked_mul(3_600_000)?,
            "minute" => amount.checked_mul(60_000)?,
            "second" => amount.checked_mul(1000)?,
            "millisecond" => amount,
            _ => return None,
        };
        let cur = ((self.hour as i64 * 60 + self.minute as i64) * 60 + self.second as i64) * 1000 + self.millis as i64;
        let t = cur.checked_add(ms)?.rem_euclid(86_400_000);
        Some(Time {
            hour: (t / 3_600_000) as u8,
            minute: (t / 60_000 % 60) as u8,
            second: (t / 1000 % 60) as u8,
            millis: (t % 1000) as u16,
            precision: self.precision,
        })
    }

    pub fn precision_digits(&self) -> i64 {
        match self.precision {
            Precision::Hour => 2,
            Precision::Minute => 4,
            Precision::Second => 6,
            _ => 9,
        }
    }

    pub fn boundary(&self, digits: i64, high: bool) -> Option<Time> {
        let p = match digits {
            2 => Precision::Hour,
            4 => Precision::Minute,
            6 => Precision::Second,
            9 => Precision::Millis,
            _ => return None,
        };
        let mut t = *self;
        if self.precision < Precision::Minute {
            t.minute = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Second {
            t.second = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Millis {
            t.millis = if high { 999 } else { 0 };
        }
        t.precision = p;
        Some(t)
    }
}

/// `hh[:mm[:ss[.fff]]]` to the given precision (hours at least), shared by DateTime and Time.
fn write_clock(f: &mut fmt::Formatter<'_>, h: u8, m: u8, s: u8, ms: u16, p: Precision) -> fmt::Result {
    write!(f, "{h:02}")?;
    if p >= Precision::Minute {
        write!(f, ":{m:02}")?;
    }
    if p >= Precision::Second {
        write!(f, ":{s:02}")?;
    }
    if p >= Precision::Millis {
        write!(f, ".{ms:03}")?;
    }
    Ok(())
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_clock(f, self.hour, self.minute, self.second, self.millis, self.precision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse_datetime(s).unwrap()
    }

    #[test]
    fn partial_precision_is_unknown() {
        assert_eq!(dt("2018-03").partial_cmp_dt(&dt("2018-03-01")), None);
        assert_eq!(dt("2018-03").partial_cmp_dt(&dt("2018-04-01")), Some(Ordering::Less));
        assert_eq!(dt("2012-04-15T15:30:31").partial_cmp_dt(&dt("2012-04-15T15:30:31.0")), Some(Ordering::Equal));
    }

    #[test]
    fn zones_are_normalised() {
        let a = dt("2017-11-05T01:30:00.0-04:00");
        let b = dt("2017-11-05T00:30:00.0-05:00");
        assert_eq!(a.partial_cmp_dt(&b), Some(Ordering::Equal));
        assert_eq!(dt("2012-04-15T15:00:00Z").partial_cmp_dt(&dt("2012-04-15T10:00:00")), None);
    }

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(dt("1973-12-25").add(1, "month").unwrap().to_string(), "1974-01-25");
        assert_eq!(dt("2020-01-31").add(1, "month").unwrap().to_string(), "2020-02-29");
        assert_eq!(
            dt("1973-12-25T00:00:00.000+10:00").add(1, "hour").unwrap().to_string(),
            "1973-12-25T01:00:00.000+10:00"
        );
    }
}
