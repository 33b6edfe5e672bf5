//! Calendar dates without a time-zone library: every generated time is Japan time
//! (+09:00), and only day arithmetic is needed.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

impl Date {
    pub(crate) fn ymd(year: i64, month: i64, day: i64) -> Date {
        // Howard Hinnant's days_from_civil.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Date { days: era * 146_097 + doe - 719_468 }
    }

    pub(crate) fn parts(self) -> (i64, i64, i64) {
        // civil_from_days.
        let z = self.days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    pub(crate) fn year(self) -> i64 {
        self.parts().0
    }

    pub(crate) fn plus_days(self, days: i64) -> Date {
        Date { days: self.days + days }
    }

    /// `YYYY-MM-DDThh:mm:00+09:00`.
    pub(crate) fn at(self, hour: i64, minute: i64) -> String {
        format!("{self}T{hour:02}:{minute:02}:00+09:00")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.parts();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (y, m, d) in [(1930, 6, 28), (2000, 2, 29), (2024, 12, 31), (1970, 1, 1)] {
            assert_eq!(Date::ymd(y, m, d).parts(), (y, m, d));
        }
        assert_eq!(Date::ymd(2024, 2, 28).plus_days(1).to_string(), "2024-02-29");
        assert_eq!(Date::ymd(2024, 12, 31).plus_days(1).at(9, 5), "2025-01-01T09:05:00+09:00");
    }
}
