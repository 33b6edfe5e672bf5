//! Choosing how `:missing` and a token `:not=` find their matches when the kept counts
//! (`sqlite_presence`) say every resource of the type has the parameter, and totals read
//! from those counts.
//!
//! Both are written as "not in the rows of …", which visits every resource of the type:
//! at a million resources `Observation?status:not=final&_sort=-date` took 0.16–0.23 s for
//! no match, and `code:missing=true&_total=accurate` 0.57 s. When every resource has a
//! row of the parameter, `:missing=true` matches nothing (and `:missing=false` everything),
//! and `:not=x` matches exactly the
//! resources with a row of another value and none of `x`: the other values are two ranges
//! of the index key around `x` (four with a system), read as such, and each of their
//! resources has its record probed for `x`. That is chosen when those rows are fewer than
//! [`OTHERS_MAX_ROWS`]; otherwise the negation stays as it is (its matches are many, and
//! a page fills soon, which the estimate from the same rows tells the walks). The decision is per thread, for the one query being built, and is
//! switched with the walks (`SqliteStore::set_sort_walk(None)`: never), so the tests that
//! compare those plans with the general one on the same data compare this choice too. A
//! `_total` (and `_summary=count`) of a type with no other clause is its count of live
//! resources ([`kept_total`]): at a million, `Observation?_summary=count` counted 470,000
//! rows of an index for it.

use rusqlite::types::Value as V;
use rusqlite::Connection;

use crate::query::{Condition, SearchQuery, SystemMatch, Test};
use crate::sqlite_choices::{made, with_made, Choice};
use crate::sqlite_record::table;
use crate::StoreError;

/// Below this many rows of other values a token `:not=` is found through them.
const OTHERS_MAX_ROWS: i64 = 5000;

/// The most `:not=` clauses of one query whose other values are counted: each count reads
/// up to [`OTHERS_MAX_ROWS`] before the page's ceiling applies, and a query may repeat the
/// parameter a thousand times (`category:not=x0&…&category:not=x999` took 0.67 s counting
/// them all, against 38 ms left as they were).
const MAX_COUNTED_NEGATIONS: usize = 4;

/// Decides for every top-level clause of `q` that is one `:missing=true` or one token
/// `:not=` whether it is answered from the kept counts; runs `build` with those decisions
/// visible, then forgets them.
pub(crate) fn with_plans<T>(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    build: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut none_missing = Vec::new();
    let mut all_have = Vec::new();
    let mut counted = Vec::new();
    let mut by_others = Vec::new();
    if let Some(ty) = walk.planned_type(q) {
        for clause in &q.clauses {
            match clause.any.as_slice() {
                [cond @ Condition::Missing { param, kind, missing }] => {
                    let tbl = crate::sqlite_record::tag(crate::sqlite_query::table(*kind));
                    if crate::sqlite_presence::everyone_has(c, ty, tbl, param)? {
                        if *missing { &mut none_missing } else { &mut all_have }.push(cond);
                    }
                }
                [cond @ Condition::Index { param, test, negate: true }] if counted.len() < MAX_COUNTED_NEGATIONS => {
                    let mut values = Vec::new();
                    let Some(others) = others_sql(ty, param, test, &mut values) else { continue };
                    if !crate::sqlite_presence::everyone_has(c, ty, table::TOKEN, param)? {
                        continue;
                    }
                    counted.push(cond);
                    let sql = format!("SELECT COUNT(*) FROM ({others} LIMIT {OTHERS_MAX_ROWS})");
                    let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
                    if n < OTHERS_MAX_ROWS {
                        by_others.push(cond);
                    }
                }
                _ => {}
            }
        }
    }
    if !none_missing.is_empty() || !all_have.is_empty() || !by_others.is_empty() {
        let (m, a, o) = (none_missing.len(), all_have.len(), by_others.len());
        crate::trace::plan(|| {
            format!(
                "every resource has the parameter: {m} :missing=true matching nothing, {a} :missing=false matching \
                 all, {o} :not= found through the other values"
            )
        });
    }
    with_made(Choice::NoneMissing, &none_missing, || {
        with_made(Choice::AllHave, &all_have, || {
            with_made(Choice::NotCounted, &counted, || with_made(Choice::NotByOthers, &by_others, build))
        })
    })
}

/// The total of `q` from the kept counts, without visiting rows, when every clause was
/// decided by them (or there are none): 0 when one matches nothing, else the type's live
/// resources.
pub(crate) fn kept_total(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
) -> Result<Option<u64>, StoreError> {
    let Some(ty) = walk.planned_type(q) else { return Ok(None) };
    let mut none = false;
    for clause in &q.clauses {
        match clause.any.as_slice() {
            [cond] if made(Choice::NoneMissing, cond) => none = true,
            [cond] if made(Choice::AllHave, cond) => {}
            _ => return Ok(None),
        }
    }
    if none {
        return Ok(Some(0));
    }
    Ok(Some(crate::sqlite_presence::resources(c, ty)?))
}

/// The rows (`seq`) of token parameter `param` of `ty` whose value is not the one `test`
/// names, as ranges of the index key; `None` for tests other than a code (with or without
/// a system).
fn others_sql(ty: &str, param: &str, test: &Test, values: &mut Vec<V>) -> Option<String> {
    let Test::Token { system, code: Some(code) } = test else { return None };
    let mut arms: Vec<(&str, Option<&str>)> = vec![("code < ?", None), ("code > ?", None)];
    match system {
        SystemMatch::Any => {}
        SystemMatch::Absent => arms.push(("code = ? AND system > ''", None)),
        SystemMatch::Is(s) => {
            arms.push(("code = ? AND system < ?", Some(s)));
            arms.push(("code = ? AND system > ?", Some(s)));
        }
    }
    let mut sql = Vec::new();
    for (test, system) in arms {
        values.extend([V::Text(ty.into()), V::Text(param.into()), V::Text(code.clone())]);
        values.extend(system.map(|s| V::Text(s.into())));
        sql.push(format!("SELECT seq FROM idx_token WHERE type = ? AND param = ? AND {test}"));
    }
    Some(sql.join(" UNION ALL "))
}

/// The SQL of a condition chosen here, on the resource aliased `alias`.
pub(crate) fn condition_sql(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    if made(Choice::NoneMissing, c) {
        return Some("0".into());
    }
    if made(Choice::AllHave, c) {
        return Some("1".into());
    }
    let (Condition::Index { param, test, .. }, Some(ty)) = (c, ty) else { return None };
    if !made(Choice::NotByOthers, c) {
        return None;
    }
    let others = others_sql(ty, param, test, values)?;
    values.push(V::Text(param.clone()));
    let t = crate::sqlite_query::test_sql(test, values);
    Some(format!(
        "({alias}.seq IN ({others}) AND NOT EXISTS (SELECT 1 FROM tsunagu_index_rows((SELECT entries FROM idx_record \
         WHERE seq = {alias}.seq)) WHERE tbl = {} AND param = ? AND {t}))",
        table::TOKEN
    ))
}

/// The estimate of a clause that is one condition chosen here: none, or for a `:not=` its
/// rows of other values counted up to `cap` (each match has one; a resource with both
/// values is counted though it does not match, so this errs high, as the walks can bear).
pub(crate) fn estimate_sql(c: &Condition, ty: &str, cap: i64, values: &mut Vec<V>) -> Option<String> {
    if made(Choice::NoneMissing, c) {
        return Some("SELECT 0".into());
    }
    let Condition::Index { param, test, .. } = c else { return None };
    if !made(Choice::NotCounted, c) {
        return None;
    }
    let others = others_sql(ty, param, test, values)?;
    Some(format!("SELECT COUNT(*) FROM ({others} LIMIT {cap})"))
}
