//! Math functions and precision boundaries.

use super::opt;
use crate::compile::Node as CNode;
use crate::decimal::Decimal;
use crate::error::Result;
use crate::eval::{exec, singleton, Env, Items, Scope};
use crate::func::Func;
use crate::item::{Item, Prim};
use crate::quantity::Quantity;
use std::sync::Arc;

impl<'a> Env<'a> {
    pub(super) fn math(
        &self,
        f: Func,
        items: &[Item<'a>],
        args: &[CNode],
        sc: Scope<'_, 'a>,
        pos: usize,
    ) -> Result<Items<'a>> {
        use Func::*;
        let Some(i) = singleton(items, pos, "a math function")? else {
            return Ok(vec![]);
        };
        let p = i.prim();
        let d = match &p {
            // A primitive with only extensions has no value.
            Prim::Null => return Ok(vec![]),
            Prim::Int(v) | Prim::Long(v) => Decimal::from_i64(*v),
            Prim::Dec(d) => *d,
            Prim::Quantity(q) if f == Abs => {
                return Ok(vec![Item::Quantity(Arc::new(Quantity { value: q.value.abs(), unit: q.unit.clone() }))])
            }
            _ => return Err(exec(pos, format!("expected a number, found {}", i.type_name()))),
        };
        let int = |v: Decimal| opt(v.to_integer().map(Item::Integer));
        let float = |v: f64| opt(Decimal::from_f64(v).map(Item::Decimal));
        match f {
            Abs => Ok(vec![match p {
                Prim::Int(v) => match v.checked_abs() {
                    Some(a) => Item::Integer(a),
                    None => return Ok(vec![]),
                },
                Prim::Long(v) => match v.checked_abs() {
                    Some(a) => Item::Long(a),
                    None => return Ok(vec![]),
                },
                _ => Item::Decimal(d.abs()),
            }]),
            Ceiling => int(d.ceil(0)),
            Floor => int(d.floor(0)),
            Truncate => int(d.truncate(0)),
            Round => {
                let n = self.arg_int(args, 0, sc, pos)?.unwrap_or(0);
                if n < 0 {
                    return Err(exec(pos, "round() precision must be >= 0"));
                }
                Ok(vec![Item::Decimal(d.round(n.min(38) as u32))])
            }
            Exp => float(d.to_f64().exp()),
            Ln => float(d.to_f64().ln()),
            Sqrt => float(d.to_f64().sqrt()),
            Log => {
                let base = self.arg(args, 0, sc)?;
                let Some(bv) = singleton(&base, pos, "log()")? else {
                    return Ok(vec![]);
                };
                let base = match bv.prim() {
                    Prim::Int(v) => v as f64,
                    Prim::Dec(d) => d.to_f64(),
                    _ => return Err(exec(pos, "log() base must be a number")),
                };
                float(d.to_f64().ln() / base.ln())
            }
            Power => {
                let e = self.arg(args, 0, sc)?;
                let Some(ev) = singleton(&e, pos, "power()")? else {
                    return Ok(vec![]);
                };
                match (&p, ev.prim()) {
                    (Prim::Int(x), Prim::Int(y)) if y >= 0 => {
                        opt(u32::try_from(y).ok().and_then(|y| x.checked_pow(y)).map(Item::Integer))
                    }
                    (_, Prim::Int(y)) => float(d.to_f64().powf(y as f64)),
                    (_, Prim::Dec(y)) => float(d.to_f64().powf(y.to_f64())),
                    _ => Err(exec(pos, "power() exponent must be a number")),
                }
            }
            _ => unreachable!(),
        }
    }
}

fn dec_boundary(d: Decimal, p: Option<i64>, high: bool) -> Option<Decimal> {
    let p = p.unwrap_or(8);
    if !(0..=28).contains(&p) {
        return None;
    }
    let p = p as u32;
    let half = Decimal::new(5, d.scale() + 1);
    // A value too small to show at this precision has both boundaries at zero.
    if p < d.scale() && d.truncate(p).is_zero() && d.abs().checked_add(&half)?.truncate(p).is_zero() {
        return Some(if d.mantissa() < 0 { Decimal::negative_zero(p) } else { Decimal::new(0, p) });
    }
    let edge = if high { d.checked_add(&half)? } else { d.checked_sub(&half)? };
    Some(if high { edge.ceil(p) } else { edge.floor(p) })
}

pub(super) fn boundary<'a>(i: &Item<'a>, p: Option<i64>, high: bool) -> Option<Item<'a>> {
    match i.prim() {
        Prim::Int(v) => dec_boundary(Decimal::from_i64(v), p, high).map(Item::Decimal),
        Prim::Dec(d) => dec_boundary(d, p, high).map(Item::Decimal),
        Prim::Quantity(q) => dec_boundary(q.value, p, high)
            .map(|v| Item::Quantity(Arc::new(Quantity { value: v, unit: q.unit.clone() }))),
        Prim::Date(d) => d.boundary(p.unwrap_or(8), high, true).map(Item::Date),
        Prim::DateTime(d) => d.boundary(p.unwrap_or(17), high, false).map(Item::DateTime),
        Prim::Time(t) => t.boundary(p.unwrap_or(9), high).map(Item::Time),
        _ => None,
    }
}
