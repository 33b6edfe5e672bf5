//! Choosing how a chained condition (`subject:Patient.gender=female`) is tested.
//!
//! The SQL of a chain collects every reference to a matching target before the first row:
//! cheap when few targets match (`subject:Patient.name=Tanaka`), but for a common one
//! every reference to half the patients (at a million resources 236,000 rows, 1.1 s for a
//! first page of ten). Here the chain's inner query is estimated (its most selective
//! countable condition, `sqlite_has::estimate`); from [`PROBE_MIN_TARGETS`] matching
//! targets on, the builder tests each candidate's own references instead, from its index
//! record (`sqlite_query::record_probe`), against the matching targets' ids: a page in
//! write order then fills after a few candidates (not with `_total`, which counts every
//! match: the collection is cheaper for that). The threshold follows the walks'
//! (`SqliteStore::set_sort_walk`: `None` never probes, `Some(0)` always), so tests can
//! compare both plans. Per thread, for the one query being built, like `sqlite_has`.

use rusqlite::Connection;

use crate::query::{Condition, SearchQuery};
use crate::StoreError;

/// Matching targets from which a chain is probed, as a fraction of the walks' threshold
/// (2,000 unless set: 100 targets).
const PROBE_MIN_TARGETS: i64 = 20;

/// Whether the SQL builder should probe this chain on each candidate's index record.
pub(crate) fn probed(c: &Condition) -> bool {
    crate::sqlite_choices::made(crate::sqlite_choices::Choice::ProbedChain, c)
}

/// Decides, for every top-level chain of `q`, whether it is probed; runs `build` with
/// those decisions visible, then forgets them.
pub(crate) fn with_plans<T>(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    build: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let min = walk.min_matches();
    let mut chosen = Vec::new();
    // A total counts every match: collecting the references once is then cheaper than a
    // probe of every candidate.
    if min != i64::MAX && !q.total {
        let targets = (min / PROBE_MIN_TARGETS).max(1);
        for cond in q.clauses.iter().flat_map(|cl| &cl.any) {
            let Condition::Chain { query, .. } = cond else { continue };
            if crate::sqlite_has::estimate(c, query, targets)?.is_some_and(|n| n as i64 >= targets.min(min)) {
                chosen.push(cond);
            }
        }
    }
    if !chosen.is_empty() {
        let n = chosen.len();
        crate::trace::plan(|| format!("{n} chain(s) with many matching targets tested on each candidate's references"));
    }
    crate::sqlite_choices::with_made(crate::sqlite_choices::Choice::ProbedChain, &chosen, build)
}

/// Runs `build` with no chain probed: for a plan that visits every match anyway (a sorted
/// general plan), where collecting each chain's references once beats probing every
/// candidate of the type (`Observation?encounter.type=…&_sort=-date` at a million
/// resources: 430,000 records decoded, past the ceiling).
pub(crate) fn collected<T>(build: impl FnOnce() -> T) -> T {
    crate::sqlite_choices::without(crate::sqlite_choices::Choice::ProbedChain, build)
}

/// Whether a top-level chain of `q` is probed in the query being built.
pub(crate) fn any_probed(q: &SearchQuery) -> bool {
    q.clauses.iter().flat_map(|cl| &cl.any).any(probed)
}
