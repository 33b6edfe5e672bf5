//! Date/time component extraction (FHIRPath 3.0, STU): `yearOf()` … `millisecondOf()`,
//! `timezoneOffsetOf()`, `dateOf()`, `timeOf()`.
//!
//! A value that does not carry the component asked for (`@2014.monthOf()`) gives empty, not
//! zero; a value of a type the function does not take (a string, a number) is an error.

use crate::datetime::{DateTime, Precision as Prec, Time};
use crate::decimal::Decimal;
use crate::error::Result;
use crate::eval::exec;
use crate::func::Func;
use crate::item::{Item, Prim};

/// The component `f` of one item; `Ok(None)` when the value lacks it.
pub(super) fn component<'a>(f: Func, item: &Item<'a>, pos: usize) -> Result<Option<Item<'a>>> {
    use Func::*;
    let p = item.prim();
    // A primitive with only extensions has no value to take a component of.
    if matches!(p, Prim::Null) {
        return Ok(None);
    }
    let wrong = || exec(pos, format!("{}() is not defined for {}", name(f), item.type_name()));
    let int = |v: i64| Some(Item::Integer(v));
    Ok(match (f, p) {
        (YearOf, Prim::Date(d) | Prim::DateTime(d)) => int(d.year as i64),
        (MonthOf, Prim::Date(d) | Prim::DateTime(d)) => at_least(d.precision, Prec::Month, d.month as i64),
        (DayOf, Prim::Date(d) | Prim::DateTime(d)) => at_least(d.precision, Prec::Day, d.day as i64),
        (HourOf | MinuteOf | SecondOf | MillisecondOf, Prim::DateTime(d)) => clock_part(f, &clock_of(&d)),
        (HourOf | MinuteOf | SecondOf | MillisecondOf, Prim::Time(t)) => clock_part(f, &t),
        (TimezoneOffsetOf, Prim::DateTime(d)) => d.tz.map(|m| Item::Decimal(hours(m))),
        (DateOf, Prim::Date(d) | Prim::DateTime(d)) => Some(Item::Date(date_part(d))),
        (TimeOf, Prim::DateTime(d)) => (d.precision >= Prec::Hour).then(|| Item::Time(clock_of(&d))),
        _ => return Err(wrong()),
    })
}

fn at_least(have: Prec, need: Prec, v: i64) -> Option<Item<'static>> {
    (have >= need).then_some(Item::Integer(v))
}

fn clock_of(d: &DateTime) -> Time {
    Time { hour: d.hour, minute: d.minute, second: d.second, millis: d.millis, precision: d.precision }
}

fn clock_part(f: Func, t: &Time) -> Option<Item<'static>> {
    use Func::*;
    let (need, v) = match f {
        HourOf => (Prec::Hour, t.hour as i64),
        MinuteOf => (Prec::Minute, t.minute as i64),
        SecondOf => (Prec::Second, t.second as i64),
        _ => (Prec::Millis, t.millis as i64),
    };
    at_least(t.precision, need, v)
}

fn date_part(mut d: DateTime) -> DateTime {
    if d.precision > Prec::Day {
        d.precision = Prec::Day;
    }
    (d.hour, d.minute, d.second, d.millis, d.tz) = (0, 0, 0, 0, None);
    d
}

/// An offset in minutes as decimal hours (`+05:30` is 5.5); exact for quarter hours.
fn hours(minutes: i16) -> Decimal {
    let m = minutes as i64;
    if (m * 10) % 60 == 0 {
        Decimal::new((m * 10 / 60) as i128, 1)
    } else if (m * 100) % 60 == 0 {
        Decimal::new((m * 100 / 60) as i128, 2)
    } else {
        Decimal::from_i64(m).checked_div(&Decimal::from_i64(60)).unwrap_or(Decimal::ZERO)
    }
}

fn name(f: Func) -> &'static str {
    use Func::*;
    match f {
        YearOf => "yearOf",
        MonthOf => "monthOf",
        DayOf => "dayOf",
        HourOf => "hourOf",
        MinuteOf => "minuteOf",
        SecondOf => "secondOf",
        MillisecondOf => "millisecondOf",
        TimezoneOffsetOf => "timezoneOffsetOf",
        DateOf => "dateOf",
        _ => "timeOf",
    }
}
