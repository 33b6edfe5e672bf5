//! The aggregate helpers of FHIRPath 3.0 (STU): `sum()`, `min()`, `max()`, `avg()`.
//!
//! Empty input gives empty. Items without a value (primitives with only extensions) are
//! skipped. Items that cannot be added or compared with the others (a string in a sum, a
//! quantity among numbers) are an error, as for the operators these functions stand for.

use crate::error::Result;
use crate::eval::{exec, Items};
use crate::func::Func;
use crate::item::{Item, Prim};
use crate::ops::{self, ArithOp};
use std::cmp::Ordering;
use std::sync::Arc;

pub(super) fn aggregate<'a>(f: Func, items: &[Item<'a>], pos: usize) -> Result<Items<'a>> {
    let values: Vec<&Item<'a>> = items.iter().filter(|i| !matches!(i.prim(), Prim::Null)).collect();
    if values.is_empty() {
        return Ok(vec![]);
    }
    let r = match f {
        Func::Sum => sum(&values, pos)?,
        Func::Avg => match sum(&values, pos)? {
            Some(total) => divide(&total, values.len(), pos)?,
            None => None,
        },
        Func::Min => extreme(&values, Ordering::Less, pos)?,
        _ => extreme(&values, Ordering::Greater, pos)?,
    };
    Ok(r.into_iter().collect())
}

fn numeric_or_quantity(i: &Item) -> bool {
    matches!(i.prim(), Prim::Int(_) | Prim::Long(_) | Prim::Dec(_) | Prim::Quantity(_))
}

/// `Ok(None)` on overflow (as for `+`).
fn sum<'a>(values: &[&Item<'a>], pos: usize) -> Result<Option<Item<'a>>> {
    let mut total: Item<'a> = values[0].clone();
    if !numeric_or_quantity(&total) {
        return Err(exec(pos, format!("sum() needs numbers or quantities, found {}", total.type_name())));
    }
    for v in &values[1..] {
        if !numeric_or_quantity(v) {
            return Err(exec(pos, format!("sum() needs numbers or quantities, found {}", v.type_name())));
        }
        match ops::arith(ArithOp::Add, &total, v).map_err(|m| exec(pos, m))? {
            Some(t) => total = t,
            None => return Ok(None),
        }
    }
    // A lone FHIR node is returned as its system value, like any arithmetic result.
    if values.len() == 1 {
        total = match total.prim() {
            Prim::Int(i) => Item::Integer(i),
            Prim::Long(i) => Item::Long(i),
            Prim::Dec(d) => Item::Decimal(d),
            Prim::Quantity(q) => Item::Quantity(Arc::new(q.into_owned())),
            _ => total,
        };
    }
    Ok(Some(total))
}

fn divide<'a>(total: &Item<'a>, n: usize, pos: usize) -> Result<Option<Item<'a>>> {
    ops::arith(ArithOp::Div, total, &Item::Integer(n as i64)).map_err(|m| exec(pos, m))
}

/// The least (`Less`) or greatest (`Greater`) item; empty when an ordering is unknown
/// (dates of different precisions).
fn extreme<'a>(values: &[&Item<'a>], want: Ordering, pos: usize) -> Result<Option<Item<'a>>> {
    let mut best = values[0];
    for v in &values[1..] {
        match ops::compare(v, best).map_err(|m| exec(pos, m))? {
            Some(o) if o == want => best = v,
            Some(_) => {}
            None => return Ok(None),
        }
    }
    // Booleans and complex values have no order.
    if values.len() == 1 {
        ops::compare(best, best).map_err(|m| exec(pos, m))?;
    }
    Ok(Some(best.clone()))
}
