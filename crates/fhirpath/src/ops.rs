//! Equality, equivalence, ordering and arithmetic on single items.

use crate::datetime::{DateTime, Precision};
use crate::decimal::Decimal;
use crate::item::{Item, Prim};
use crate::quantity::{calendar_unit, ucum_time_as_calendar, Quantity};
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;

fn num(p: &Prim) -> Option<Decimal> {
    match p {
        Prim::Int(i) | Prim::Long(i) => Some(Decimal::from_i64(*i)),
        Prim::Dec(d) => Some(*d),
        _ => None,
    }
}

fn dt(p: &Prim) -> Option<DateTime> {
    match p {
        Prim::Date(d) | Prim::DateTime(d) => Some(*d),
        _ => None,
    }
}

/// Both operands as whole numbers, when both are Integer or Long, and whether either is a
/// Long (Integer converts implicitly to Long, so a mix computes as Long).
fn whole(a: &Prim, b: &Prim) -> Option<(i64, i64, bool)> {
    match (a, b) {
        (Prim::Int(x), Prim::Int(y)) => Some((*x, *y, false)),
        (Prim::Int(x) | Prim::Long(x), Prim::Int(y) | Prim::Long(y)) => Some((*x, *y, true)),
        _ => None,
    }
}

/// `=` on two items: `None` when the answer is unknown (different precisions).
pub(crate) fn eq(a: &Item, b: &Item) -> Option<bool> {
    let (pa, pb) = (a.prim(), b.prim());
    match (&pa, &pb) {
        (Prim::Bool(x), Prim::Bool(y)) => Some(x == y),
        (Prim::Str(x), Prim::Str(y)) => Some(x == y),
        (Prim::Int(x) | Prim::Long(x), Prim::Int(y) | Prim::Long(y)) => Some(x == y),
        (Prim::Time(x), Prim::Time(y)) => x.partial_cmp_t(y).map(|o| o == Ordering::Equal),
        (Prim::Quantity(x), Prim::Quantity(y)) => x.partial_cmp_q(y).map(|o| o == Ordering::Equal),
        (Prim::Complex(x), Prim::Complex(y)) => Some(json_eq(x, y)),
        (Prim::TypeInfo(x), Prim::TypeInfo(y)) => Some(x == y),
        (Prim::Null, _) | (_, Prim::Null) => None,
        _ => {
            if let (Some(x), Some(y)) = (num(&pa), num(&pb)) {
                return Some(x.cmp_num(&y) == Ordering::Equal);
            }
            if let (Some(x), Some(y)) = (dt(&pa), dt(&pb)) {
                return x.partial_cmp_dt(&y).map(|o| o == Ordering::Equal);
            }
            Some(false)
        }
    }
}

thread_local! {
    /// Work of the JSON comparisons made on this thread since last taken, in the budget's
    /// quarter steps: a node and four bytes of string each count one.
    static JSON_WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The work of the complex comparisons made since the last call (see [`JSON_WORK`]).
pub(crate) fn take_json_work() -> u64 {
    JSON_WORK.with(|w| w.replace(0))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    if std::ptr::eq(a, b) {
        return true;
    }
    let strings = match (a, b) {
        (Value::String(x), Value::String(y)) => x.len().min(y.len()) as u64 / 4,
        _ => 0,
    };
    JSON_WORK.with(|w| w.set(w.get().saturating_add(1 + strings)));
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Decimal::parse(x.as_str()), Decimal::parse(y.as_str())) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_eq(v, w)),
        _ => a == b,
    }
}

fn norm_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// `~` on two items.
pub(crate) fn equiv(a: &Item, b: &Item) -> bool {
    let (pa, pb) = (a.prim(), b.prim());
    match (&pa, &pb) {
        (Prim::Str(x), Prim::Str(y)) => norm_ws(x) == norm_ws(y),
        (Prim::Quantity(x), Prim::Quantity(y)) => x.equivalent(y),
        (Prim::Time(x), Prim::Time(y)) => x.partial_cmp_t(y) == Some(Ordering::Equal),
        (Prim::Null, Prim::Null) => true,
        _ => {
            if let (Some(x), Some(y)) = (num(&pa), num(&pb)) {
                let s = x.scale().min(y.scale());
                return x.round(s).cmp_num(&y.round(s)) == Ordering::Equal;
            }
            if let (Some(x), Some(y)) = (dt(&pa), dt(&pb)) {
                return x.partial_cmp_dt(&y) == Some(Ordering::Equal);
            }
            eq(a, b) == Some(true)
        }
    }
}

/// Ordering for `<` etc.: `Ok(None)` when unknown, `Err` when the types cannot be compared.
pub(crate) fn compare(a: &Item, b: &Item) -> Result<Option<Ordering>, String> {
    let (pa, pb) = (a.prim(), b.prim());
    match (&pa, &pb) {
        (Prim::Int(x) | Prim::Long(x), Prim::Int(y) | Prim::Long(y)) => return Ok(Some(x.cmp(y))),
        (Prim::Str(x), Prim::Str(y)) => return Ok(Some(x.cmp(y))),
        (Prim::Time(x), Prim::Time(y)) => return Ok(x.partial_cmp_t(y)),
        (Prim::Quantity(x), Prim::Quantity(y)) => return Ok(x.partial_cmp_q(y)),
        _ => {}
    }
    if let (Some(x), Some(y)) = (num(&pa), num(&pb)) {
        return Ok(Some(x.cmp_num(&y)));
    }
    if let (Some(x), Some(y)) = (dt(&pa), dt(&pb)) {
        return Ok(x.partial_cmp_dt(&y));
    }
    Err(format!("cannot compare {} with {}", a.type_name(), b.type_name()))
}

pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
}

/// Arithmetic on two singletons. `Ok(None)` is an empty result (division by zero,
/// overflow); `Err` a type error.
pub(crate) fn arith<'a>(op: ArithOp, a: &Item<'a>, b: &Item<'a>) -> Result<Option<Item<'a>>, String> {
    let (pa, pb) = (a.prim(), b.prim());
    let err = || Err(format!("operator not defined for {} and {}", a.type_name(), b.type_name()));
    // Integer arithmetic stays integer (except `/`); with a Long operand it is Long.
    if let Some((x, y, long)) = whole(&pa, &pb) {
        let (x, y) = (&x, &y);
        let r = match op {
            ArithOp::Add => x.checked_add(*y),
            ArithOp::Sub => x.checked_sub(*y),
            ArithOp::Mul => x.checked_mul(*y),
            ArithOp::IntDiv => {
                if *y == 0 {
                    None
                } else {
                    x.checked_div(*y)
                }
            }
            ArithOp::Mod => {
                if *y == 0 {
                    None
                } else {
                    x.checked_rem(*y)
                }
            }
            ArithOp::Div => {
                return Ok(Decimal::from_i64(*x).checked_div(&Decimal::from_i64(*y)).map(Item::Decimal));
            }
        };
        return Ok(r.map(if long { Item::Long } else { Item::Integer }));
    }
    if let (Some(x), Some(y)) = (num(&pa), num(&pb)) {
        return Ok(match op {
            ArithOp::Add => x.checked_add(&y).map(Item::Decimal),
            ArithOp::Sub => x.checked_sub(&y).map(Item::Decimal),
            ArithOp::Mul => x.checked_mul(&y).map(Item::Decimal),
            ArithOp::Div => x.checked_div(&y).map(Item::Decimal),
            ArithOp::IntDiv => x.div_trunc(&y).and_then(|v| i64::try_from(v).ok()).map(Item::Integer),
            ArithOp::Mod => x.checked_rem(&y).map(Item::Decimal),
        });
    }
    match (&pa, &pb, &op) {
        (Prim::Str(x), Prim::Str(y), ArithOp::Add) => Ok(Some(Item::String(Arc::from(format!("{x}{y}").as_str())))),
        (Prim::Date(d), Prim::Quantity(q), ArithOp::Add | ArithOp::Sub) => {
            date_add(d, q, matches!(op, ArithOp::Sub)).map(|r| r.map(Item::Date))
        }
        (Prim::DateTime(d), Prim::Quantity(q), ArithOp::Add | ArithOp::Sub) => {
            date_add(d, q, matches!(op, ArithOp::Sub)).map(|r| r.map(Item::DateTime))
        }
        (Prim::Time(t), Prim::Quantity(q), ArithOp::Add | ArithOp::Sub) => {
            let (n, unit) = calendar_amount(q)?;
            let n = if matches!(op, ArithOp::Sub) { n.checked_neg().ok_or("duration out of range")? } else { n };
            Ok(t.add(n, unit).map(Item::Time))
        }
        (Prim::Quantity(x), Prim::Quantity(y), ArithOp::Add | ArithOp::Sub) => {
            let Some(v) = x.convert_to_unit_of(y) else {
                return Err(format!("incompatible units '{}' and '{}'", x.unit, y.unit));
            };
            let r = if matches!(op, ArithOp::Add) { x.value.checked_add(&v) } else { x.value.checked_sub(&v) };
            Ok(r.map(|value| Item::Quantity(Arc::new(Quantity { value, unit: x.unit.clone() }))))
        }
        (Prim::Quantity(x), Prim::Quantity(y), ArithOp::Mul | ArithOp::Div) => {
            Ok(x.mul(y, matches!(op, ArithOp::Div)).map(|q| Item::Quantity(Arc::new(q))))
        }
        (Prim::Quantity(x), _, ArithOp::Mul | ArithOp::Div) if num(&pb).is_some() => {
            let y = num(&pb).unwrap_or(Decimal::ZERO);
            let v = if matches!(op, ArithOp::Mul) { x.value.checked_mul(&y) } else { x.value.checked_div(&y) };
            Ok(v.map(|value| Item::Quantity(Arc::new(Quantity { value, unit: x.unit.clone() }))))
        }
        (_, Prim::Quantity(y), ArithOp::Mul) if num(&pa).is_some() => {
            let x = num(&pa).unwrap_or(Decimal::ZERO);
            Ok(x.checked_mul(&y.value).map(|value| Item::Quantity(Arc::new(Quantity { value, unit: y.unit.clone() }))))
        }
        _ => err(),
    }
}

/// A time-valued quantity as whole calendar steps (`7.7 days` → 7 days).
fn calendar_amount(q: &Quantity) -> Result<(i64, &'static str), String> {
    let unit = calendar_unit(&q.unit)
        .or_else(|| ucum_time_as_calendar(&q.unit))
        .ok_or_else(|| format!("'{}' is not a calendar duration", q.unit))?;
    let n = q.value.trunc_i64().ok_or("duration out of range")?;
    Ok((n, unit))
}

fn unit_seconds(u: &str) -> f64 {
    match u {
        "year" => 365.0 * 86400.0,
        "month" => 30.0 * 86400.0,
        "week" => 7.0 * 86400.0,
        "day" => 86400.0,
        "hour" => 3600.0,
        "minute" => 60.0,
        "second" => 1.0,
        _ => 0.001,
    }
}

fn date_add(d: &DateTime, q: &Quantity, negate: bool) -> Result<Option<DateTime>, String> {
    let (mut n, mut unit) = calendar_amount(q)?;
    if negate {
        n = n.checked_neg().ok_or("duration out of range")?;
    }
    // A step finer than the value's precision is first converted to that precision.
    let prec_unit = match d.precision {
        Precision::Year => "year",
        Precision::Month => "month",
        Precision::Day => "day",
        Precision::Hour => "hour",
        Precision::Minute => "minute",
        Precision::Second => "second",
        Precision::Millis => "millisecond",
    };
    if unit_seconds(unit) < unit_seconds(prec_unit) && !(unit == "week" && prec_unit == "day") {
        n = (n as f64 * unit_seconds(unit) / unit_seconds(prec_unit)).trunc() as i64;
        unit = prec_unit;
    }
    Ok(d.add(n, unit))
}
