//! Choosing how a half-open date condition (`date=gt2021-06-01`) finds its matches.
//!
//! Such a condition usually matches most of the table, so the SQL builder tests it on each
//! candidate (an `EXISTS` probe of the resource's own `idx_date` rows): the page fills after
//! a few candidates. When it matches few resources, or none, the same probe visits every
//! resource of the type before the page is known (at a million resources, 0 matches of
//! `Observation?date=gt2021-06-01` took 0.9 s). Here the condition's matches are counted
//! from its lower bound (as `sqlite_query::estimate_sql` does, stopping at
//! [`COLLECT_MAX_MATCHES`]); below that the builder collects them from that bound in
//! `idx_date` (and the wide values before it in `idx_date_wide`) instead. The decision is
//! per thread, for the one query being built, like `sqlite_has`. It is switched with the
//! walks (`SqliteStore::set_sort_walk(None)`: always probe), so the tests that compare
//! those plans with the general one on the same data compare this choice too.

use rusqlite::Connection;

use crate::query::{Condition, SearchQuery, Test};
use crate::StoreError;

/// Below this many matching index rows the condition's matches are collected.
const COLLECT_MAX_MATCHES: i64 = 5000;

/// Whether the SQL builder should collect this condition's matches from its lower bound.
pub(crate) fn collected(c: &Condition) -> bool {
    crate::sqlite_choices::made(crate::sqlite_choices::Choice::CollectedDate, c)
}

/// Decides, for every top-level clause of `q` that is one half-open date condition with a
/// lower bound, whether it is collected; runs `build` with those decisions visible, then
/// forgets them.
pub(crate) fn with_plans<T>(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    build: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut chosen = Vec::new();
    let ty = walk.planned_type(q);
    if let Some(ty) = ty {
        for clause in &q.clauses {
            let [cond @ Condition::Index { test: Test::Date { .. }, negate: false, .. }] = clause.any.as_slice() else {
                continue;
            };
            let mut values = Vec::new();
            let Some(sql) = crate::sqlite_query::bounded_date_estimate_sql(cond, ty, COLLECT_MAX_MATCHES, &mut values)
            else {
                continue;
            };
            let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
            if n < COLLECT_MAX_MATCHES {
                chosen.push(cond);
            }
        }
    }
    if !chosen.is_empty() {
        let n = chosen.len();
        crate::trace::plan(|| format!("{n} rare half-open date condition(s) collected from their lower bound"));
    }
    crate::sqlite_choices::with_made(crate::sqlite_choices::Choice::CollectedDate, &chosen, build)
}
