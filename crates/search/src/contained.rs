//! `_contained=true|both`: contained resources are not rows of their own in the store, so
//! they are matched here, in memory, against the index entries extracted from each one.
//! This keeps writes as they were (a container only gets one `_contained-type` token per
//! type it contains, to find the candidates) and keeps every condition on one contained
//! resource, where index rows under the container's `seq` would mix several of them.
//!
//! The rules mirror the store's SQL for each [`Test`]; chains, `_has` and full text are
//! not answered for contained resources.

use crate::error::SearchError;
use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue, RangeOp, SearchQuery, SystemMatch, Test};

/// The index parameter under which a container records the types it contains.
pub const CONTAINED_TYPE_PARAM: &str = "_contained-type";

/// Whether a contained resource with id `id` and these index entries passes every clause.
pub fn contained_matches(q: &SearchQuery, id: &str, entries: &[IndexEntry]) -> Result<bool, SearchError> {
    clauses_match(&q.clauses, None, id, entries)
}

/// Whether a resource of type `ty` with id `id` and these index entries passes every
/// clause, as the store would answer it; compartment and type conditions included. Used
/// to decide what a caller may see of one resource without a query.
pub fn resource_matches(clauses: &[Clause], ty: &str, id: &str, entries: &[IndexEntry]) -> Result<bool, SearchError> {
    clauses_match(clauses, Some(ty), id, entries)
}

fn clauses_match(clauses: &[Clause], ty: Option<&str>, id: &str, entries: &[IndexEntry]) -> Result<bool, SearchError> {
    for clause in clauses {
        let mut any = false;
        for c in &clause.any {
            any |= match (c, ty) {
                (Condition::ResourceType(t), Some(ty)) => t == ty,
                (Condition::Compartment { params, target_type, target_id }, Some(ty)) => {
                    params.iter().filter(|(member, _)| member == ty).any(|(_, code)| {
                        entries.iter().any(|e| {
                            e.param == *code
                                && matches!(&e.value, IndexValue::Reference { target_type: Some(t), target_id: Some(i), .. }
                                    if t == target_type && target_id.as_ref().is_none_or(|want| want == i))
                        })
                    })
                }
                _ => condition(c, id, entries)?,
            };
        }
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
}

fn condition(c: &Condition, id: &str, entries: &[IndexEntry]) -> Result<bool, SearchError> {
    let of = |param: &String| entries.iter().filter(|e| e.param == *param).map(|e| &e.value).collect::<Vec<_>>();
    Ok(match c {
        Condition::Id(x) => x == id,
        Condition::Index { param, test, negate } => of(param).into_iter().any(|v| test_matches(test, v)) != *negate,
        Condition::Missing { param, missing, .. } => of(param).is_empty() == *missing,
        Condition::DateWindow { param, lo, hi } => {
            of(param).into_iter().any(|v| matches!(v, IndexValue::Date { lo: a, hi: b } if a < hi && b > lo))
        }
        Condition::LastUpdated { .. } => return Err(unsupported("_lastUpdated")),
        Condition::Chain { .. } => return Err(unsupported("chained parameters")),
        Condition::Has { .. } => return Err(unsupported("_has")),
        Condition::FullText { .. } => return Err(unsupported("_text and _content")),
        Condition::Compartment { .. } | Condition::ResourceType(_) => return Err(unsupported("compartment search")),
    })
}

fn unsupported(what: &str) -> SearchError {
    SearchError::Unsupported(format!("{what} with _contained=true or both"))
}

fn system_matches(m: &SystemMatch, system: &Option<String>) -> bool {
    match m {
        SystemMatch::Any => true,
        SystemMatch::Absent => system.as_deref().unwrap_or("").is_empty(),
        SystemMatch::Is(s) => system.as_deref() == Some(s.as_str()),
    }
}

fn test_matches(test: &Test, value: &IndexValue) -> bool {
    use IndexValue as V;
    match (test, value) {
        (Test::Token { system, code: c }, V::Token { system: s, code, .. }) => {
            c.as_ref().is_none_or(|c| c == code) && system_matches(system, s)
        }
        (Test::TokenText(t), V::Token { display, .. }) => display
            .as_ref()
            .is_some_and(|d| d.split(tsunagu_store::TOKEN_TEXT_SEPARATOR).any(|p| p.starts_with(t.as_str()))),
        (Test::TokenIn(pairs), V::Token { system, code, .. }) => {
            let s = system.as_deref().unwrap_or("");
            pairs.iter().any(|(ps, pc)| ps == s && pc == code)
        }
        (Test::StringStarts(s), V::String { norm, .. }) => norm.starts_with(s.as_str()),
        (Test::StringContains(s), V::String { norm, .. }) => norm.contains(s.as_str()),
        (Test::StringExact(s), V::String { exact, .. }) => exact == s,
        (Test::Date { op, lo: sl, hi: sh }, V::Date { lo, hi }) => range_matches(*op, (*lo, *hi), (*sl, *sh)),
        (Test::Number { op, value: n, lo: sl, hi: sh }, V::Number { value }) => {
            point_matches(*op, *value, *n, (*sl, *sh))
        }
        (
            Test::Quantity { op, value: n, lo: sl, hi: sh, system: ts, code: tc },
            V::Quantity { system, code, value },
        ) => {
            point_matches(*op, *value, *n, (*sl, *sh))
                && tc.as_ref().is_none_or(|c| code.as_ref() == Some(c))
                && ts.as_ref().is_none_or(|s| system.as_ref() == Some(s))
        }
        (Test::Reference { target_type: tt, target_id: ti, url: tu }, V::Reference { target_type, target_id, url }) => {
            ti.as_ref().is_none_or(|i| target_id.as_ref() == Some(i))
                && tt.as_ref().is_none_or(|t| target_type.as_ref() == Some(t))
                && tu.as_ref().is_none_or(|u| u == url)
        }
        (Test::UriExact(u), V::Uri { value }) => value == u,
        (Test::UriBelow(u), V::Uri { value }) => value.starts_with(u.as_str()),
        (Test::UriAbove(u), V::Uri { value }) => u.starts_with(value.as_str()),
        (Test::Composite { system, code: c, second }, V::Composite { system: s, code, second: v }) => {
            c == code && system_matches(system, s) && test_matches(second, v)
        }
        _ => false,
    }
}

/// The store's date prefixes: the indexed range `[lo, hi)` against the search range.
fn range_matches(op: RangeOp, (lo, hi): (i64, i64), (sl, sh): (i64, i64)) -> bool {
    let within = lo >= sl && hi <= sh;
    match op {
        RangeOp::Eq => within,
        RangeOp::Ne => !within,
        RangeOp::Gt => hi > sh,
        RangeOp::Lt => lo < sl,
        RangeOp::Ge => hi > sh || lo >= sl,
        RangeOp::Le => lo < sl || hi <= sh,
        RangeOp::Sa => lo >= sh,
        RangeOp::Eb => hi <= sl,
        RangeOp::Ap => lo < sh && hi > sl,
    }
}

/// A number or quantity value against the search value `n` and its precision range.
fn point_matches(op: RangeOp, v: f64, n: f64, (lo, hi): (f64, f64)) -> bool {
    match op {
        RangeOp::Eq | RangeOp::Ap => v >= lo && v < hi,
        RangeOp::Ne => !(v >= lo && v < hi),
        RangeOp::Gt | RangeOp::Sa => v > n,
        RangeOp::Lt | RangeOp::Eb => v < n,
        RangeOp::Ge => v >= n,
        RangeOp::Le => v <= n,
    }
}
