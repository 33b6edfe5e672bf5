//! Conversion functions (`toX()` / `convertsToX()`) and `type()`.

use super::{b, opt};
use crate::datetime::{DateTime, Precision, Time};
use crate::decimal::Decimal;
use crate::error::Result;
use crate::eval::{singleton, Items};
use crate::item::{Item, Prim, TypeInfo};
use crate::quantity::{calendar_unit, is_known_ucum, Quantity};
use std::sync::Arc;

pub(super) fn conv<'a>(
    to: bool,
    items: &[Item<'a>],
    pos: usize,
    f: impl Fn(&Item<'a>) -> Option<Item<'a>>,
) -> Result<Items<'a>> {
    match singleton(items, pos, "a conversion")? {
        None => Ok(vec![]),
        Some(i) => {
            let r = f(i);
            if to {
                opt(r)
            } else {
                b(r.is_some())
            }
        }
    }
}

pub(super) fn to_boolean<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    let v = match i.prim() {
        Prim::Bool(v) => v,
        Prim::Int(1) => true,
        Prim::Int(0) => false,
        Prim::Dec(d) if d == Decimal::from_i64(1) => true,
        Prim::Dec(d) if d.is_zero() => false,
        Prim::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => true,
            "false" | "f" | "no" | "n" | "0" | "0.0" => false,
            _ => return None,
        },
        _ => return None,
    };
    Some(Item::Boolean(v))
}

fn is_int_text(s: &str) -> bool {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
}

pub(super) fn to_integer<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match i.prim() {
        Prim::Int(v) | Prim::Long(v) => Some(Item::Integer(v)),
        Prim::Bool(v) => Some(Item::Integer(v as i64)),
        Prim::Str(s) if is_int_text(s) => s.parse().ok().map(Item::Integer),
        _ => None,
    }
}

/// `toLong()`: as `toInteger()`, giving a System.Long.
pub(super) fn to_long<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match to_integer(i)? {
        Item::Integer(v) => Some(Item::Long(v)),
        _ => None,
    }
}

fn dec_text(s: &str) -> Option<Decimal> {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok =
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit() || c == b'.') && !d.starts_with('.') && !d.ends_with('.');
    if ok {
        Decimal::parse(s)
    } else {
        None
    }
}

pub(super) fn to_decimal<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match i.prim() {
        Prim::Int(v) | Prim::Long(v) => Some(Item::Decimal(Decimal::from_i64(v))),
        Prim::Dec(d) => Some(Item::Decimal(d)),
        Prim::Bool(v) => Some(Item::Decimal(Decimal::new(v as i128 * 10, 1))),
        Prim::Str(s) => dec_text(s).map(Item::Decimal),
        _ => None,
    }
}

pub(super) fn to_date<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    let trunc = |mut d: DateTime| {
        if d.precision > Precision::Day {
            d.precision = Precision::Day;
            d.tz = None;
        }
        Item::Date(d)
    };
    match i.prim() {
        Prim::Date(d) | Prim::DateTime(d) => Some(trunc(d)),
        Prim::Str(s) => DateTime::parse_date(s).or_else(|| DateTime::parse_datetime(s)).map(trunc),
        _ => None,
    }
}

pub(super) fn to_datetime<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match i.prim() {
        Prim::Date(d) | Prim::DateTime(d) => Some(Item::DateTime(d)),
        Prim::Str(s) => DateTime::parse_datetime(s).map(Item::DateTime),
        _ => None,
    }
}

pub(super) fn to_time<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match i.prim() {
        Prim::Time(t) => Some(Item::Time(t)),
        Prim::Str(s) => Time::parse(s).map(Item::Time),
        _ => None,
    }
}

pub(super) fn to_quantity<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    let q = match i.prim() {
        Prim::Int(v) | Prim::Long(v) => Quantity::new(Decimal::from_i64(v), "1"),
        Prim::Dec(d) => Quantity::new(d, "1"),
        Prim::Bool(v) => Quantity::new(Decimal::new(v as i128 * 10, 1), "1"),
        Prim::Quantity(q) => q.into_owned(),
        Prim::Str(s) => {
            let s = s.trim();
            let (num, rest) = match s.find(' ') {
                Some(k) => (&s[..k], s[k..].trim()),
                None => (s, ""),
            };
            let value = dec_text(num)?;
            let unit = if rest.is_empty() {
                "1".to_string()
            } else if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                if !is_known_ucum(u) && calendar_unit(u).is_none() {
                    return None;
                }
                u.to_string()
            } else if calendar_unit(rest).is_some() {
                rest.to_string()
            } else {
                return None;
            };
            Quantity::new(value, &unit)
        }
        _ => return None,
    };
    Some(Item::Quantity(Arc::new(q)))
}

pub(super) fn type_of<'a>(i: &Item<'a>) -> Item<'a> {
    let (ns, name): (&'static str, &str) = match i {
        // Untyped JSON (not described by the model) holds System values.
        Item::Node(n) if n.fhir_type.is_empty() && n.is_primitive() && n.value.is_some() => match n.type_name() {
            "boolean" => ("System", "Boolean"),
            "integer" => ("System", "Integer"),
            "decimal" => ("System", "Decimal"),
            _ => ("System", "String"),
        },
        Item::Node(n) => ("FHIR", n.type_name()),
        Item::Boolean(_) => ("System", "Boolean"),
        Item::String(_) => ("System", "String"),
        Item::Integer(_) => ("System", "Integer"),
        Item::Long(_) => ("System", "Long"),
        Item::Decimal(_) => ("System", "Decimal"),
        Item::Date(_) => ("System", "Date"),
        Item::DateTime(_) => ("System", "DateTime"),
        Item::Time(_) => ("System", "Time"),
        Item::Quantity(_) => ("System", "Quantity"),
        Item::TypeInfo(_) => ("System", "TypeInfo"),
    };
    Item::TypeInfo(Arc::new(TypeInfo { namespace: ns, name: Arc::from(name) }))
}
