//! The FHIRPath function library (N1, the FHIR additions, and the FHIRPath 3.0 functions).
//! This file dispatches and holds the collection functions; strings, math, conversions,
//! aggregates, date/time components and tree navigation have their own modules.

mod aggregates;
mod codec;
mod convert;
mod math;
mod strings;
mod temporal;
mod tree;

use crate::compile::{Node as CNode, Op};
use crate::datetime::{self, Time};
use crate::decimal::Decimal;
use crate::error::Result;
use crate::eval::{exec, get2, singleton, to_bool, Env, Items, Scope};
use crate::func::Func;
use crate::item::{Item, Node, Prim};
use crate::nav;
use crate::ops;
use crate::quantity::Quantity;
use serde_json::Value;
use std::sync::Arc;

use convert::{conv, to_boolean, to_date, to_datetime, to_decimal, to_integer, to_long, to_quantity, to_time, type_of};
use math::boundary;
use tree::{children, same_item};

/// Bound on `repeat()` results: the function has no other way to stop on inputs whose
/// projection always yields new values.
const REPEAT_LIMIT: usize = 10_000;

fn b<'a>(v: bool) -> Result<Items<'a>> {
    Ok(vec![Item::Boolean(v)])
}

fn opt<'a>(v: Option<Item<'a>>) -> Result<Items<'a>> {
    Ok(v.into_iter().collect())
}

impl<'a> Env<'a> {
    pub(super) fn arg(&self, args: &[CNode], k: usize, sc: Scope<'_, 'a>) -> Result<Items<'a>> {
        match args.get(k) {
            Some(a) => self.eval(a, sc),
            None => Ok(vec![]),
        }
    }

    /// A string argument; literals are shared, not copied.
    pub(super) fn arg_str(&self, args: &[CNode], k: usize, sc: Scope<'_, 'a>, pos: usize) -> Result<Option<Arc<str>>> {
        if let Some(CNode { op: Op::Literal(Item::String(s)), .. }) = args.get(k) {
            return Ok(Some(s.clone()));
        }
        let v = self.arg(args, k, sc)?;
        match singleton(&v, pos, "argument")? {
            None => Ok(None),
            Some(Item::String(s)) => Ok(Some(s.clone())),
            Some(i) => i.as_str().map(|s| Some(Arc::from(s))).ok_or_else(|| exec(pos, "argument must be a string")),
        }
    }

    pub(super) fn arg_int(&self, args: &[CNode], k: usize, sc: Scope<'_, 'a>, pos: usize) -> Result<Option<i64>> {
        let v = self.arg(args, k, sc)?;
        match singleton(&v, pos, "argument")?.map(Item::prim) {
            None => Ok(None),
            Some(Prim::Int(i)) => Ok(Some(i)),
            Some(_) => Err(exec(pos, "argument must be an integer")),
        }
    }

    /// Evaluates a lambda argument once per input item.
    fn each<F>(&self, items: &[Item<'a>], arg: &CNode, sc: Scope<'_, 'a>, mut f: F) -> Result<()>
    where
        F: FnMut(usize, &Item<'a>, Items<'a>) -> Result<bool>,
    {
        for (k, it) in items.iter().enumerate() {
            let s = Scope { this: std::slice::from_ref(it), index: k as i64, total: sc.total };
            let r = self.eval(arg, s)?;
            self.budget.items(r.len() + 1, arg.pos)?;
            if !f(k, it, r)? {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn input_str(items: &[Item<'a>], pos: usize) -> Result<Option<String>> {
        match singleton(items, pos, "a string function")? {
            None => Ok(None),
            // A primitive with only extensions has no value: empty, like an absent one.
            Some(i) if matches!(i.prim(), Prim::Null) => Ok(None),
            Some(i) => match i.as_str() {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(exec(pos, format!("expected a string, found {}", i.type_name()))),
            },
        }
    }

    pub(crate) fn call(
        &self,
        f: Func,
        items: Items<'a>,
        args: &[CNode],
        sc: Scope<'_, 'a>,
        pos: usize,
        has_target: bool,
    ) -> Result<Items<'a>> {
        use Func::*;
        match f {
            Empty => b(items.is_empty()),
            Exists => {
                if args.is_empty() {
                    return b(!items.is_empty());
                }
                let mut found = false;
                self.each(&items, &args[0], sc, |_, _, r| {
                    found = to_bool(&r, pos)? == Some(true);
                    Ok(!found)
                })?;
                b(found)
            }
            All => {
                let mut all = true;
                self.each(&items, &args[0], sc, |_, _, r| {
                    all = to_bool(&r, pos)? == Some(true);
                    Ok(all)
                })?;
                b(all)
            }
            AllTrue | AnyTrue | AllFalse | AnyFalse => {
                let mut bools = Vec::with_capacity(items.len());
                for i in &items {
                    match i.prim() {
                        Prim::Bool(v) => bools.push(v),
                        _ => return Err(exec(pos, format!("expected booleans, found {}", i.type_name()))),
                    }
                }
                b(match f {
                    AllTrue => bools.iter().all(|v| *v),
                    AnyTrue => bools.iter().any(|v| *v),
                    AllFalse => bools.iter().all(|v| !*v),
                    _ => bools.iter().any(|v| !*v),
                })
            }
            SubsetOf | SupersetOf => {
                let other = self.arg(args, 0, sc)?;
                let (small, big) = if f == SubsetOf { (&items, &other) } else { (&other, &items) };
                for x in small.iter() {
                    if !self.holds_equal(big, x, pos)? {
                        return b(false);
                    }
                }
                b(true)
            }
            Count => Ok(vec![Item::Integer(items.len() as i64)]),
            Distinct => self.distinct(items, pos),
            IsDistinct => {
                let n = items.len();
                b(self.distinct(items, pos)?.len() == n)
            }
            Where => {
                let mut out = Vec::new();
                self.each(&items, &args[0], sc, |_, it, r| {
                    if to_bool(&r, pos)? == Some(true) {
                        out.push(it.clone());
                    }
                    Ok(true)
                })?;
                Ok(out)
            }
            Select => {
                let mut out = Vec::new();
                self.each(&items, &args[0], sc, |_, _, r| {
                    out.extend(r);
                    Ok(true)
                })?;
                Ok(out)
            }
            Repeat => {
                let mut out: Items<'a> = Vec::new();
                let mut frontier = items;
                while !frontier.is_empty() {
                    let mut next = Vec::new();
                    self.each(&frontier, &args[0], sc, |_, _, r| {
                        for i in r {
                            for o in &out {
                                self.budget.compare(o, &i, pos)?;
                            }
                            if !out.iter().any(|o| same_item(o, &i)) {
                                out.push(i.clone());
                                next.push(i);
                            }
                        }
                        Ok(true)
                    })?;
                    frontier = next;
                    // `1.repeat($this + 1)` never stops producing new items.
                    if out.len() > REPEAT_LIMIT {
                        return Err(exec(pos, format!("repeat() produced over {REPEAT_LIMIT} items")));
                    }
                }
                Ok(out)
            }
            RepeatAll => {
                // As repeat(), keeping duplicates: only the bound stops a cycle.
                let mut out: Items<'a> = Vec::new();
                let mut frontier = items;
                while !frontier.is_empty() {
                    let mut next = Vec::new();
                    self.each(&frontier, &args[0], sc, |_, _, r| {
                        next.extend(r);
                        Ok(true)
                    })?;
                    self.budget.items(next.len(), pos)?;
                    out.extend(next.iter().cloned());
                    if out.len() > REPEAT_LIMIT {
                        return Err(exec(pos, format!("repeatAll() produced over {REPEAT_LIMIT} items")));
                    }
                    frontier = next;
                }
                Ok(out)
            }
            Coalesce => {
                // The first argument that is not empty (arguments after it are not evaluated).
                for k in 0..args.len() {
                    let v = self.arg(args, k, sc)?;
                    if !v.is_empty() {
                        return Ok(v);
                    }
                }
                Ok(vec![])
            }
            Single => Ok(singleton(&items, pos, "single()")?.cloned().into_iter().collect()),
            First => Ok(items.into_iter().take(1).collect()),
            Last => Ok(items.last().cloned().into_iter().collect()),
            Tail => Ok(items.into_iter().skip(1).collect()),
            Skip | Take => {
                let n = self.arg_int(args, 0, sc, pos)?.unwrap_or(0).max(0) as usize;
                Ok(if f == Skip { items.into_iter().skip(n).collect() } else { items.into_iter().take(n).collect() })
            }
            Intersect => {
                let other = self.arg(args, 0, sc)?;
                let mut keep = Vec::new();
                for x in items {
                    if self.holds_equal(&other, &x, pos)? {
                        keep.push(x);
                    }
                }
                self.distinct(keep, pos)
            }
            Exclude => {
                let other = self.arg(args, 0, sc)?;
                let mut keep = Vec::new();
                for x in items {
                    if !self.holds_equal(&other, &x, pos)? {
                        keep.push(x);
                    }
                }
                Ok(keep)
            }
            Union => {
                let other = self.arg(args, 0, sc)?;
                let mut all = items;
                all.extend(other);
                self.distinct(all, pos)
            }
            Combine => {
                let mut all = items;
                all.extend(self.arg(args, 0, sc)?);
                Ok(all)
            }
            Iif => {
                if has_target && items.len() > 1 {
                    return Err(exec(pos, "iif() input must have at most one item"));
                }
                let scope = if has_target && items.len() == 1 {
                    Scope { this: &items[..], index: 0, total: sc.total }
                } else {
                    sc
                };
                let c = to_bool(&self.eval(&args[0], scope)?, pos)?;
                if c == Some(true) {
                    self.eval(&args[1], scope)
                } else if let Some(e) = args.get(2) {
                    self.eval(e, scope)
                } else {
                    Ok(vec![])
                }
            }
            ToBoolean | ConvertsToBoolean => conv(f == ToBoolean, &items, pos, to_boolean),
            ToInteger | ConvertsToInteger => conv(f == ToInteger, &items, pos, to_integer),
            ToDecimal | ConvertsToDecimal => conv(f == ToDecimal, &items, pos, to_decimal),
            ToString | ConvertsToString => conv(f == ToString, &items, pos, |i| i.to_text().map(|s| Item::string(&s))),
            ToDate | ConvertsToDate => conv(f == ToDate, &items, pos, to_date),
            ToDateTime | ConvertsToDateTime => conv(f == ToDateTime, &items, pos, to_datetime),
            ToTime | ConvertsToTime => conv(f == ToTime, &items, pos, to_time),
            ToLong | ConvertsToLong => conv(f == ToLong, &items, pos, to_long),
            ToQuantity | ConvertsToQuantity => {
                let unit = self.arg_str(args, 0, sc, pos)?.map(|u| u.to_string());
                conv(f == ToQuantity, &items, pos, |i| {
                    let q = to_quantity(i)?;
                    match &unit {
                        None => Some(q),
                        Some(u) => {
                            let Item::Quantity(q) = q else { return None };
                            let target = Quantity::new(Decimal::from_i64(1), u);
                            let v = target.convert_to_unit_of(&q)?;
                            Some(Item::Quantity(Arc::new(Quantity::new(v, u))))
                        }
                    }
                })
            }
            IndexOf | LastIndexOf | Substring | StartsWith | EndsWith | Contains | Upper | Lower | Replace
            | Matches | MatchesFull | ReplaceMatches | Length | ToChars | Trim | Split | Encode | Decode | Escape
            | Unescape => self.string_fn(f, &items, args, sc, pos),
            Join => {
                let sep = self.arg_str(args, 0, sc, pos)?.map(|s| s.to_string()).unwrap_or_default();
                // Charged before anything is copied: the items may be one long string many times.
                let mut bytes = sep.len().saturating_mul(items.len());
                for i in &items {
                    bytes = bytes.saturating_add(i.as_str().ok_or_else(|| exec(pos, "join() needs strings"))?.len());
                }
                self.budget.bytes(bytes, pos)?;
                let parts: Vec<&str> = items.iter().filter_map(Item::as_str).collect();
                Ok(vec![Item::string(&parts.join(&sep))])
            }
            Abs | Ceiling | Exp | Floor | Ln | Log | Power | Round | Sqrt | Truncate => {
                self.math(f, &items, args, sc, pos)
            }
            Children => {
                let mut out = Vec::new();
                for i in &items {
                    let before = out.len();
                    children(i, &mut out);
                    self.budget.items(out.len() - before, pos)?;
                }
                Ok(out)
            }
            Descendants => {
                let mut out = Vec::new();
                let mut frontier = items;
                while !frontier.is_empty() {
                    let mut next = Vec::new();
                    for i in &frontier {
                        let before = next.len();
                        children(i, &mut next);
                        self.budget.items(next.len() - before, pos)?;
                    }
                    out.extend(next.iter().cloned());
                    frontier = next;
                }
                Ok(out)
            }
            Trace => {
                let name = self.arg_str(args, 0, sc, pos)?.map(|s| s.to_string()).unwrap_or_default();
                if let Some(p) = args.get(1) {
                    let mut shown = Vec::new();
                    self.each(&items, p, sc, |_, _, r| {
                        shown.extend(r);
                        Ok(true)
                    })?;
                    self.trace(&name, &shown);
                } else {
                    self.trace(&name, &items);
                }
                Ok(items)
            }
            Now => Ok(vec![Item::DateTime(self.now())]),
            Today => {
                let mut d = self.now();
                d.precision = datetime::Precision::Day;
                d.tz = None;
                Ok(vec![Item::Date(d)])
            }
            TimeOfDay => {
                let d = self.now();
                Ok(vec![Item::Time(Time {
                    hour: d.hour,
                    minute: d.minute,
                    second: d.second,
                    millis: d.millis,
                    precision: datetime::Precision::Millis,
                })])
            }
            Aggregate => {
                let mut total = self.arg(args, 1, sc)?;
                for (k, it) in items.iter().enumerate() {
                    let s = Scope { this: std::slice::from_ref(it), index: k as i64, total: Some(&total) };
                    total = self.eval(&args[0], s)?;
                    self.budget.items(total.len() + 1, pos)?;
                }
                Ok(total)
            }
            Sort => self.sort(items, args, sc, pos),
            Sum | Min | Max | Avg => aggregates::aggregate(f, &items, pos),
            YearOf | MonthOf | DayOf | HourOf | MinuteOf | SecondOf | MillisecondOf | TimezoneOffsetOf | DateOf
            | TimeOf => match singleton(&items, pos, "a date/time component function")? {
                None => Ok(vec![]),
                Some(i) => opt(temporal::component(f, i, pos)?),
            },
            Not => match singleton(&items, pos, "not()")? {
                None => Ok(vec![]),
                Some(i) => b(!matches!(i.prim(), Prim::Bool(true)) && matches!(i.prim(), Prim::Bool(false))),
            },
            Type => Ok(items.iter().map(type_of).collect()),
            LowBoundary | HighBoundary => {
                let p = self.arg_int(args, 0, sc, pos)?;
                match singleton(&items, pos, "boundary")? {
                    None => Ok(vec![]),
                    Some(i) => opt(boundary(i, p, f == HighBoundary)),
                }
            }
            Precision => match singleton(&items, pos, "precision()")?.map(Item::prim) {
                None => Ok(vec![]),
                Some(Prim::Dec(d)) => Ok(vec![Item::Integer(d.scale() as i64)]),
                Some(Prim::Int(_)) => Ok(vec![Item::Integer(0)]),
                Some(Prim::Date(d)) | Some(Prim::DateTime(d)) => Ok(vec![Item::Integer(d.precision_digits())]),
                Some(Prim::Time(t)) => Ok(vec![Item::Integer(t.precision_digits())]),
                Some(_) => Ok(vec![]),
            },
            Comparable => {
                let other = self.arg(args, 0, sc)?;
                match (singleton(&items, pos, "comparable()")?, singleton(&other, pos, "comparable()")?) {
                    (Some(x), Some(y)) => match (x.prim(), y.prim()) {
                        (Prim::Quantity(a), Prim::Quantity(c)) => b(a.comparable(&c)),
                        _ => Err(exec(pos, "comparable() needs quantities")),
                    },
                    _ => Ok(vec![]),
                }
            }
            HasValue => match singleton(&items, pos, "hasValue()")? {
                None => b(false),
                Some(Item::Node(n)) => b(n.is_primitive() && n.value.is_some_and(|v| !v.is_null())),
                Some(_) => b(true),
            },
            GetValue => Ok(items
                .into_iter()
                .filter(|i| match i {
                    Item::Node(n) => n.is_primitive() && n.value.is_some(),
                    _ => true,
                })
                .collect()),
            HasExtension => {
                let found = self.call(Extension, items, args, sc, pos, has_target)?;
                b(!found.is_empty())
            }
            Extension => {
                let url = self.arg_str(args, 0, sc, pos)?;
                let Some(url) = url else { return Ok(vec![]) };
                let mut out = Vec::new();
                for i in &items {
                    let Item::Node(n) = i else { continue };
                    let holder = match n.value {
                        Some(v @ Value::Object(_)) => Some(v),
                        _ => n.ext,
                    };
                    let Some(Value::Object(h)) = holder else {
                        continue;
                    };
                    let Some(Value::Array(exts)) = get2(h, "extension", None).0 else {
                        continue;
                    };
                    for e in exts {
                        let Value::Object(em) = e else { continue };
                        if get2(em, "url", None).0.and_then(Value::as_str) == Some(&*url) {
                            out.push(Item::Node(Node {
                                value: Some(e),
                                ext: None,
                                fhir_type: "Extension",
                                path: "Extension",
                            }));
                        }
                    }
                }
                Ok(out)
            }
            Resolve => {
                let mut out = Vec::new();
                for i in &items {
                    let r = match i {
                        Item::Node(n) if matches!(n.value, Some(Value::Object(_))) => {
                            n.value.and_then(|v| v.get("reference")).and_then(Value::as_str)
                        }
                        _ => i.as_str(),
                    };
                    if let Some(node) = r.and_then(|r| self.resolve(r)) {
                        out.push(Item::Node(node));
                    }
                }
                Ok(out)
            }
            MemberOf => {
                let url = self.arg_str(args, 0, sc, pos)?;
                let (Some(url), Some(i)) = (url, singleton(&items, pos, "memberOf()")?) else {
                    return Ok(vec![]);
                };
                opt(self.member_of(i, &url).map(Item::Boolean))
            }
            ConformsTo => {
                let url = self.arg_str(args, 0, sc, pos)?;
                let (Some(url), Some(i)) = (url, singleton(&items, pos, "conformsTo()")?) else {
                    return Ok(vec![]);
                };
                let Some(n) = i.as_node().filter(|n| n.value.is_some()) else {
                    return b(false);
                };
                let v = n.value.unwrap_or(&Value::Null);
                if let Some(ty) = url.strip_prefix("http://hl7.org/fhir/StructureDefinition/").and_then(nav::type_name)
                {
                    return b(nav::model().is_subtype(n.type_name(), ty));
                }
                match self.hooks().and_then(|h| h.conforms_to(v, &url)) {
                    Some(r) => b(r),
                    None => Err(exec(pos, format!("cannot check conformance to '{url}'"))),
                }
            }
            HtmlChecks => match singleton(&items, pos, "htmlChecks()")? {
                None => Ok(vec![]),
                Some(i) => {
                    let s = i.as_str().unwrap_or("");
                    let lower = s.to_ascii_lowercase();
                    b(lower.trim_start().starts_with("<div")
                        && !lower.contains("<script")
                        && !lower.contains("javascript:"))
                }
            },
            OfType | Is | As => unreachable!("compiled to a type operation"),
        }
    }

    fn member_of(&self, i: &Item<'a>, url: &str) -> Option<bool> {
        let (v, ty) = match i {
            Item::Node(n) => (n.value?.clone(), n.type_name()),
            Item::String(s) => (Value::String(s.to_string()), "code"),
            _ => return None,
        };
        if let Some(r) = self.hooks().and_then(|h| h.member_of(&v, ty, url)) {
            return Some(r);
        }
        let codes = nav::model().value_set_codes(url)?;
        let has = |system: Option<&str>, code: &str| {
            codes.iter().any(|(sys, cs)| system.is_none_or(|s| s == *sys) && cs.contains(&code))
        };
        let coding = |c: &Value| -> bool {
            c.get("code").and_then(Value::as_str).is_some_and(|code| has(c.get("system").and_then(Value::as_str), code))
        };
        Some(match &v {
            Value::String(code) => has(None, code),
            Value::Object(m) if m.contains_key("coding") => {
                m["coding"].as_array().is_some_and(|cs| cs.iter().any(coding))
            }
            Value::Object(_) => coding(&v),
            _ => false,
        })
    }

    /// The items without repeats, first occurrence kept; charged per comparison.
    fn distinct(&self, items: Items<'a>, pos: usize) -> Result<Items<'a>> {
        // Strings are equal only when identical: a hash set finds repeats in one pass
        // (invariants such as bdl-7 and csd-1 ask this of thousands of values).
        if items.iter().all(|i| i.as_str().is_some()) {
            let bytes: usize = items.iter().filter_map(Item::as_str).map(str::len).sum();
            self.budget.comparisons(items.len(), pos)?;
            self.budget.bytes(bytes, pos)?;
            let first: Vec<bool> = {
                let mut seen = std::collections::HashSet::with_capacity(items.len());
                items.iter().map(|i| seen.insert(i.as_str().unwrap_or_default())).collect()
            };
            return Ok(items.into_iter().zip(first).filter_map(|(i, keep)| keep.then_some(i)).collect());
        }
        let mut out: Items<'a> = Vec::with_capacity(items.len());
        for i in items {
            if !self.holds_equal(&out, &i, pos)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn sort(&self, items: Items<'a>, args: &[CNode], sc: Scope<'_, 'a>, pos: usize) -> Result<Items<'a>> {
        // n log n comparisons, each of up to the longest string key (charged once the keys
        // are known, below).
        let n = items.len();
        let log_n = usize::BITS as usize - n.leading_zeros() as usize;
        self.budget.comparisons(n.saturating_mul(log_n), pos)?;
        // Each key: (expression, descending). A leading unary minus means descending.
        let keys: Vec<(&CNode, bool)> = args
            .iter()
            .map(|a| match &a.op {
                Op::Neg(inner) => (&**inner, true),
                _ => (a, false),
            })
            .collect();
        let mut rows: Vec<(Vec<Option<Item<'a>>>, Item<'a>)> = Vec::with_capacity(items.len());
        for (k, it) in items.into_iter().enumerate() {
            let mut kv = Vec::with_capacity(keys.len().max(1));
            if keys.is_empty() {
                kv.push(Some(it.clone()));
            }
            for (e, _) in &keys {
                let s = Scope { this: std::slice::from_ref(&it), index: k as i64, total: sc.total };
                let r = self.eval(e, s)?;
                self.budget.items(r.len() + 1, pos)?;
                kv.push(singleton(&r, pos, "a sort key")?.cloned());
            }
            rows.push((kv, it));
        }
        let longest = rows.iter().flat_map(|(kv, _)| kv.iter().flatten()).filter_map(Item::as_str).map(str::len).max();
        self.budget.bytes(longest.unwrap_or(0).saturating_mul(n.saturating_mul(log_n)), pos)?;
        let mut err = None;
        rows.sort_by(|(a, _), (c, _)| {
            for (k, (x, y)) in a.iter().zip(c).enumerate() {
                let desc = keys.get(k).is_some_and(|k| k.1);
                let o = match (x, y) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => match ops::compare(x, y) {
                        Ok(o) => o.unwrap_or(std::cmp::Ordering::Equal),
                        Err(m) => {
                            err.get_or_insert(m);
                            std::cmp::Ordering::Equal
                        }
                    },
                };
                // Empty keys sort first in either direction.
                let o = if desc && x.is_some() && y.is_some() { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        if let Some(m) = err {
            return Err(exec(pos, m));
        }
        Ok(rows.into_iter().map(|(_, i)| i).collect())
    }
}
