//! Sorted pages driven by the first sort key's own index.
//!
//! The general plan for `_sort` collects every match, computes each one's sort values and
//! sorts them all: fine for a few hundred matches, slow for `Observation?code=…&_sort=-date`
//! over tens of thousands. When the filter matches many resources, walking the index of
//! the first sort key in key order and keeping the first rows that pass the filter finds
//! the page after reading about `page × (rows / matches)` index entries instead.
//!
//! The walk yields each resource at its smallest value (ascending) or largest value
//! (descending) first, which is exactly the general plan's `MIN`/`MAX` sort value of the
//! first key (a date by its start `lo` in both directions), and breaks ties by `seq` in
//! the sort direction like the general plan. With more keys, the resources sharing one
//! first-key value form a group; a group that reaches into the page is ordered by the
//! general plan's own `ORDER BY` terms for the later keys (computed for its members only),
//! or when large walked by the next key's index (`sqlite_sort_group`); a group before the
//! page is only counted. Resources without a first-key value sort last;
//! when the walk runs out before the page is full, the caller falls back to the general
//! plan, which places them — unless a condition requires a value of the first key, when
//! the walk has met every match.
//!
//! A date walk starts at the bound a condition on the same parameter sets
//! (`date=ge2020-01-01&date=lt2020-02-01&_sort=date` walks from 2020-01-01, descending from
//! 2020-02-01) only where that bound provably holds for every value of every match: the
//! condition holds for *some* value of a resource, so only while no resource of the type
//! has two values of the parameter (`idx_date_multi` counts them); and a lower bound from
//! `gt`/`ge`/`ap`/a window holds for values at most a day wide, so the wider ones before it
//! (`idx_date_wide`, few) are read apart and go first ascending, last descending. Bounds on
//! `lo` from `le`/`eb`/`ne` are not used (they would need `lo <= hi`, which the data does
//! not promise). A quantity walk likewise starts (and stops) at the bounds conditions on
//! the same quantity set (`value-quantity=gt150&_sort=value-quantity` from 150) while no
//! resource has two values of it (`idx_presence.multi`). The estimate that chooses this
//! plan leaves out the bounding clauses: the walk reads only rows that can pass them.
//!
//! Index rows exist only for current, live versions, so when every condition is an index
//! test the walk reads index rows alone, and a group's later keys come from the index
//! records: no resource row is read before the page's own. A condition that matches many
//! resources is tested on each walked row's index record, not collected before the walk
//! (`common_conditions`): the walk stops after a page, the collection would not.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rusqlite::types::Value as V;
use rusqlite::Connection;
use rustc_hash::FxHashSet;

use crate::query::{Condition, IndexKind, RangeOp, SearchQuery, SortParam, SortWithin, Test};
use crate::sqlite_query::test_kind;
use crate::StoreError;

/// Below this many matches the general plan is cheap enough.
const DRIVE_MIN_MATCHES: i64 = 2000;
/// The longest walk before giving up on this plan.
pub(crate) const WALK_MAX_ROWS: usize = 50_000;

/// When the sort-driven plan is tried, and how often it answered: a store's setting, so that
/// tests and benchmarks can compare it with the general plan on the same data.
#[derive(Debug)]
pub(crate) struct SortWalk {
    /// The estimated matches from which the walk is tried; `i64::MAX`: never.
    min_matches: AtomicI64,
    /// Pages the walk answered.
    pages: AtomicU64,
}

impl Default for SortWalk {
    fn default() -> Self {
        SortWalk { min_matches: AtomicI64::new(DRIVE_MIN_MATCHES), pages: AtomicU64::new(0) }
    }
}

impl SortWalk {
    pub(crate) fn set(&self, min_matches: Option<u64>) {
        let n = min_matches.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.min_matches.store(n, Ordering::Relaxed);
    }

    /// The estimated matches from which walks are tried (`i64::MAX`: never).
    pub(crate) fn min_matches(&self) -> i64 {
        self.min_matches.load(Ordering::Relaxed)
    }

    /// The type of `q` when plans other than the general one may be chosen for it: a
    /// type-level search, with walks not switched off (the choices of `sqlite_rare_dates`
    /// and `sqlite_negation` go with them, so tests compare them with the general plan).
    pub(crate) fn planned_type<'q>(&self, q: &'q SearchQuery) -> Option<&'q str> {
        q.resource_type.as_deref().filter(|_| self.min_matches() != i64::MAX)
    }

    pub(crate) fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }
}

/// Steps of the page's ceiling a sort walk may take before the general plan answers
/// instead: a walk whose rows rarely pass the filter (glucose values among every quantity
/// in value order, the lowest first) would otherwise use the whole ceiling and answer 422
/// where the general plan, sorting the matches, takes tens of milliseconds.
const SORT_WALK_STEPS: u64 = 1_000_000;

/// [`SORT_WALK_STEPS`] for a walk led by a quantity over every unit: its values cluster by
/// unit and by code (glucose in mg/dL, heights in cm), so a filter on the code is met in
/// runs after whole runs of other values, and a walk that has not filled its page within
/// this many steps rarely does soon after.
const QUANTITY_WALK_STEPS: u64 = 250_000;

thread_local! {
    /// Matching rows the last sort walk on this thread had met when it stopped: read after
    /// its share of the ceiling ran out, to project the steps a whole page would take.
    static MET_WHEN_STOPPED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The steps a page of `q` would take by the sort walk that just ran out of `spent` steps,
/// projected from the matching rows it had met (each resource of the page needs one);
/// `None` when it met none.
pub(crate) fn projected_steps(q: &SearchQuery, spent: u64) -> Option<u64> {
    let met = MET_WHEN_STOPPED.with(|m| m.get()) as u64;
    let wanted = (q.offset + q.count + 1) as u64;
    (met > 0).then(|| spent.saturating_mul(wanted) / met)
}

/// The steps a sort walk for `q` may take ([`SORT_WALK_STEPS`], [`QUANTITY_WALK_STEPS`]).
pub(crate) fn walk_steps(q: &SearchQuery) -> u64 {
    match q.sort.first().map(|k| &k.param) {
        // A walk of one code's paired values meets no other code's runs.
        Some(SortParam::Index { kind: IndexKind::Quantity, .. }) if q.sort_within.is_none() => QUANTITY_WALK_STEPS,
        _ => SORT_WALK_STEPS,
    }
}

/// The index column a sort walks; `None` where the index cannot give its order. A quantity's
/// `value` follows the unit code in its key: its walk merges one run per unit
/// ([`quantity_walk`]).
pub(crate) fn sort_column(kind: IndexKind) -> Option<&'static str> {
    match kind {
        IndexKind::Date => Some("lo"),
        IndexKind::Token => Some("code"),
        IndexKind::String => Some("norm"),
        IndexKind::Number | IndexKind::Uri | IndexKind::Quantity => Some("value"),
        IndexKind::Reference | IndexKind::Composite => None,
    }
}

/// The most unit codes of one quantity parameter a walk merges; past it the general plan
/// answers (SQLite refuses a compound of more than 500 `SELECT`s).
const MAX_MERGED_UNITS: usize = 64;

/// The unit codes of quantity parameter `param` of `ty`, one primary-key probe each (a
/// skip scan); `None` past [`MAX_MERGED_UNITS`].
pub(crate) fn quantity_units(c: &Connection, ty: &str, param: &str) -> Result<Option<Vec<String>>, StoreError> {
    let sql = format!(
        "WITH RECURSIVE u(code) AS (SELECT (SELECT MIN(code) FROM idx_quantity WHERE type = ?1 AND param = ?2) \
         UNION ALL SELECT (SELECT MIN(code) FROM idx_quantity WHERE type = ?1 AND param = ?2 AND code > u.code) \
         FROM u WHERE u.code IS NOT NULL LIMIT {}) SELECT code FROM u WHERE code IS NOT NULL",
        MAX_MERGED_UNITS + 2
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let units: Vec<String> = stmt.query_map(rusqlite::params![ty, param], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok((units.len() <= MAX_MERGED_UNITS).then_some(units))
}

/// Where a quantity walk reads its values: one arm of a merge per key prefix, each read in
/// value order.
pub(crate) enum Arms<'a> {
    /// `idx_quantity` rows of quantity parameter `param`, one arm per unit code.
    Units { param: &'a str, units: &'a [String] },
    /// `idx_composite` rows of `within`'s composite and code, one arm per system of that
    /// code ([`paired_systems`]).
    Paired { within: &'a SortWithin, systems: &'a [String] },
}

impl Arms<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Arms::Units { units, .. } => units.is_empty(),
            Arms::Paired { systems, .. } => systems.is_empty(),
        }
    }
}

/// The systems `within`'s code has in its composite's rows, one index probe each (a skip
/// scan); only its own system when it names one; `None` past [`MAX_MERGED_UNITS`].
pub(crate) fn paired_systems(c: &Connection, ty: &str, within: &SortWithin) -> Result<Option<Vec<String>>, StoreError> {
    if let Some(s) = &within.system {
        return Ok(Some(vec![s.clone()]));
    }
    let sql = format!(
        "WITH RECURSIVE u(s) AS (SELECT (SELECT MIN(c_system) FROM idx_composite WHERE type = ?1 AND param = ?2 \
         AND c_code = ?3) UNION ALL SELECT (SELECT MIN(c_system) FROM idx_composite WHERE type = ?1 AND param = ?2 \
         AND c_code = ?3 AND c_system > u.s) FROM u WHERE u.s IS NOT NULL LIMIT {}) SELECT s FROM u WHERE s IS NOT NULL",
        MAX_MERGED_UNITS + 2
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let systems: Vec<String> = stmt
        .query_map(rusqlite::params![ty, within.composite, within.code], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((systems.len() <= MAX_MERGED_UNITS).then_some(systems))
}

/// A walk statement giving (value, `seq`) from `arms` in value order `dir`, within `range`
/// (inclusive bounds, where given): each arm read in its index's value order, merged by
/// SQLite (a compound `SELECT` with `ORDER BY`); one statement over the parameter would
/// sort all its rows before the first. `rest` (with `rest_values`) filters the merged rows,
/// aliased `d`, after `join`: inside the arms, an arm none of whose rows passes would be
/// read to its end before the merge's first row (`LIMIT -1` keeps SQLite from pushing it
/// there). `tie` orders equal values by `seq`, or leaves them unordered when later sort
/// keys order them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantity_walk(
    arms: &Arms<'_>,
    ty: &str,
    range: (Option<f64>, Option<f64>),
    join: &str,
    rest: &str,
    rest_values: &[V],
    dir: &str,
    tie: Option<&str>,
) -> (String, Vec<V>) {
    let mut values = Vec::new();
    let bounded = match range {
        (Some(_), Some(_)) => " AND value >= ? AND value <= ?",
        (Some(_), None) => " AND value >= ?",
        (None, Some(_)) => " AND value <= ?",
        (None, None) => "",
    };
    // Each arm's key prefix after `type`.
    let (table, key, prefixes): (_, _, Vec<Vec<&str>>) = match arms {
        Arms::Units { param, units } => ("idx_quantity", "code = ?", units.iter().map(|u| vec![*param, u]).collect()),
        Arms::Paired { within, systems } => (
            "idx_composite",
            "c_code = ? AND c_system = ? AND value IS NOT NULL",
            systems.iter().map(|s| vec![within.composite.as_str(), &within.code, s]).collect(),
        ),
    };
    let arms: Vec<String> = prefixes
        .iter()
        .map(|prefix| {
            values.push(V::Text(ty.into()));
            values.extend(prefix.iter().map(|p| V::Text(p.to_string())));
            values.extend([range.0, range.1].into_iter().flatten().map(V::Real));
            format!("SELECT value, seq FROM {table} WHERE type = ? AND param = ? AND {key}{bounded}")
        })
        .collect();
    values.extend(rest_values.iter().cloned());
    let tie = tie.map_or(String::new(), |t| format!(", 2 {t}"));
    let merged = format!("{} ORDER BY 1 {dir}{tie} LIMIT -1", arms.join(" UNION ALL "));
    (format!("SELECT d.value, d.seq FROM ({merged}) d{join} WHERE {rest}"), values)
}

/// The `seq`s of the requested page (plus one, to tell whether more follow), or `None`
/// when this plan does not apply or cannot fill the page.
pub(crate) fn sorted_page(
    c: &Connection,
    q: &SearchQuery,
    filter: &str,
    values: &[V],
    walk: &SortWalk,
) -> Result<Option<Vec<i64>>, StoreError> {
    // Before anything the ceiling can stop: a walk stopped early met nothing of this page.
    MET_WHEN_STOPPED.with(|m| m.set(0));
    let Some(first) = q.sort.first() else { return Ok(None) };
    let min_matches = walk.min_matches.load(Ordering::Relaxed);
    let Some(ty) = q.resource_type.as_ref().filter(|_| min_matches != i64::MAX) else { return Ok(None) };
    let SortParam::Index { param, kind } = &first.param else {
        return resource_order_page(c, q, ty, filter, values, walk);
    };
    if *kind == IndexKind::Reference {
        return reference_page(c, q, ty, param, filter, values, walk);
    }
    let Some(col) = sort_column(*kind) else { return Ok(None) };
    let bounds = match kind {
        IndexKind::Date => date_bounds(c, q, ty, param)?,
        IndexKind::Quantity => quantity_bounds(c, q, ty, param)?,
        _ => Bounds::default(),
    };
    // The walk reads only index rows that can pass the bounding clauses, so only the others
    // can make it long (and counting a half-open date condition reads half the index).
    let estimate = crate::sqlite_has::fewest_matches_except(c, q, min_matches, &bounds.clauses)?;
    if estimate < min_matches {
        crate::trace::plan(|| format!("no sort walk: about {estimate} matches (walk from {min_matches})"));
        return Ok(None);
    }
    let dir = if first.descending { "DESC" } else { "ASC" };
    let table = crate::sqlite_query::table(*kind);
    // A date's bounding clauses are probed through `idx_date`'s `seq` index as they are; a
    // quantity's have no such index (and cannot be counted on their own: its key leads with
    // the unit), so they are tested on each walked row's record rather than collected whole
    // (every value of the parameter read) before the walk's first row.
    let (skip, probe): (&[usize], &[usize]) =
        if *kind == IndexKind::Date { (&bounds.clauses, &[]) } else { (&[], &bounds.clauses) };
    let crate::sqlite_sort_group::WalkFilter { join, filter, values } =
        walk_filter(c, q, ty, skip, probe, min_matches, filter, values)?;
    // With later keys a group is ordered by them: the walk need not sort its ties by `seq`
    // (a sort of the whole first group before its first row).
    // With one key, the rows of a code (a normalized string) are walked in the primary
    // key's order, and a value found in several systems (spellings) is collected.
    let split = match kind {
        _ if q.sort.len() > 1 => None,
        IndexKind::Token => Some("system"),
        IndexKind::String => Some("exact"),
        _ => None,
    };
    let ties = match split {
        _ if q.sort.len() > 1 => String::new(),
        Some(split) => format!(", d.{split} {dir}, d.seq {dir}"),
        None => format!(", d.seq {dir}"),
    };
    let mut segments = Vec::new();
    if *kind == IndexKind::Quantity {
        let tie = (q.sort.len() == 1).then_some(dir);
        let range = (bounds.value_from, bounds.value_to);
        // The caller's paired composite when it gives this key's values, else every unit.
        let paired = match &q.sort_within {
            Some(w) => paired_systems(c, ty, w)?.map(|systems| (w, systems)),
            None => None,
        };
        let units = if paired.is_none() { quantity_units(c, ty, param)? } else { None };
        let arms = match (&paired, &units) {
            (Some((within, systems)), _) => Arms::Paired { within, systems },
            (None, Some(units)) => Arms::Units { param, units },
            (None, None) => return Ok(None),
        };
        if let Arms::Paired { within, .. } = &arms {
            crate::trace::plan(|| format!("the quantity walk reads {} of code {}", within.composite, within.code));
        }
        // No arm (no resource with the code has a value): no row to walk, the matches are
        // found without values below.
        if !arms.is_empty() {
            segments.push(quantity_walk(&arms, ty, range, &join, &filter, &values, dir, tie));
        }
    } else {
        let mut range = String::new();
        let mut main = vec![V::Text(ty.clone()), V::Text(param.clone())];
        if let Some(lo) = bounds.from {
            range.push_str(&format!(" AND d.{col} >= ?"));
            main.push(V::Integer(lo));
        }
        if let Some(hi) = bounds.below {
            range.push_str(&format!(" AND d.{col} < ?"));
            main.push(V::Integer(hi));
        }
        main.extend(values.iter().cloned());
        let sql = format!(
            "SELECT d.{col}, d.seq FROM {table} d{join} \
             WHERE d.type = ? AND d.param = ?{range} AND {filter} ORDER BY d.{col} {dir}{ties}"
        );
        segments.push((sql, main));
    }
    if let (Some(lo), true) = (bounds.from, bounds.wide_before) {
        // The wide values before the start: they come first ascending, last descending.
        let mut wide = vec![V::Text(ty.clone()), V::Text(param.clone()), V::Integer(lo)];
        wide.extend(values.iter().cloned());
        let sql = format!(
            "SELECT d.lo, d.seq FROM idx_date_wide d{join} \
             WHERE d.type = ? AND d.param = ? AND d.lo < ? AND {filter} ORDER BY d.lo {dir}{ties}"
        );
        segments.insert(if first.descending { 1 } else { 0 }, (sql, wide));
    }
    let f = crate::sqlite_sort_group::WalkFilter { join, filter, values };
    let mut page = crate::sqlite_sort_group::Page::new(q, usize::try_from(min_matches).unwrap_or(usize::MAX));
    if let Some(split) = split {
        page = page.split_by(table, col, split, ty, param);
    }
    let mut seen = FxHashSet::default();
    let mut walked = 0;
    for (sql, params) in segments {
        let step = page.walk(c, q, &f, &sql, params, &mut seen, &mut walked);
        MET_WHEN_STOPPED.with(|m| m.set(walked));
        match step? {
            Some(true) => {
                crate::trace::plan(|| format!("sort walk over {table} ({param}), {walked} rows read"));
                walk.pages.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(page.seqs));
            }
            Some(false) => {}
            None => {
                crate::trace::plan(|| format!("sort walk over {table} gave up after {WALK_MAX_ROWS} rows"));
                return Ok(None);
            }
        }
    }
    // Every match met (when each has a value of the first key) or only those with a value.
    if page.finish(c, q)? || every_match_has_value(q, param, *kind) {
        crate::trace::plan(|| format!("sort walk over {table} ({param}) to its end, {walked} rows read"));
        walk.pages.fetch_add(1, Ordering::Relaxed);
        return Ok(Some(page.seqs));
    }
    Ok(None)
}

/// A page whose first sort key is `_lastUpdated` or `_id`, by walking the resource table's
/// own index of it (`sqlite_sort_group::key_rows`) as `sorted_page` walks an index: every
/// resource has both, so a walk that ends has met every match.
fn resource_order_page(
    c: &Connection,
    q: &SearchQuery,
    ty: &str,
    filter: &str,
    values: &[V],
    walk: &SortWalk,
) -> Result<Option<Vec<i64>>, StoreError> {
    let Some(f) = one_statement_filter(c, q, ty, filter, values, walk)? else { return Ok(None) };
    let first = &q.sort[0];
    let Some(rows) = crate::sqlite_sort_group::key_rows(first, ty) else { return Ok(None) };
    let dir = if first.descending { "DESC" } else { "ASC" };
    let ties = if q.sort.len() > 1 { String::new() } else { format!(", d.seq {dir}") };
    let sql = format!(
        "SELECT d.{}, d.seq FROM {}{} WHERE {} AND {} ORDER BY d.{} {dir}{ties}",
        rows.column, rows.from, f.join, rows.keyed, f.filter, rows.column
    );
    let mut params = rows.values;
    params.extend(f.values.iter().cloned());
    one_statement_page(c, q, walk, &f, &sql, params, &rows.name, true)
}

/// A page whose first sort key is a reference parameter, by walking `idx_reference` in its
/// primary key's order, which is the order references sort in (target id, target type,
/// the reference as written: `sqlite_record::reference_sort_key`, the value each row
/// gives, so that resources equal in it form a group for the later keys), ties by `seq`.
/// A large group is collected rather than walked by the next key (`sort_column` has no
/// single column for a reference).
fn reference_page(
    c: &Connection,
    q: &SearchQuery,
    ty: &str,
    param: &str,
    filter: &str,
    values: &[V],
    walk: &SortWalk,
) -> Result<Option<Vec<i64>>, StoreError> {
    let Some(f) = one_statement_filter(c, q, ty, filter, values, walk)? else { return Ok(None) };
    let dir = if q.sort[0].descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT d.target_id || char(1) || d.target_type || char(1) || d.url, d.seq FROM idx_reference d{} \
         WHERE d.type = ? AND d.param = ? AND {} \
         ORDER BY d.target_id {dir}, d.target_type {dir}, d.url {dir}, d.seq {dir}",
        f.join, f.filter
    );
    let mut params = vec![V::Text(ty.to_string()), V::Text(param.to_string())];
    params.extend(f.values.iter().cloned());
    // Resources without a reference sort last: a walk that ends has met every match only
    // when a condition requires one.
    let complete = every_match_has_value(q, param, IndexKind::Reference);
    one_statement_page(c, q, walk, &f, &sql, params, &format!("idx_reference ({param})"), complete)
}

/// The filter of a walk read by one statement, or `None` when too few resources match for a
/// walk to be worth it.
fn one_statement_filter(
    c: &Connection,
    q: &SearchQuery,
    ty: &str,
    filter: &str,
    values: &[V],
    walk: &SortWalk,
) -> Result<Option<crate::sqlite_sort_group::WalkFilter>, StoreError> {
    let min_matches = walk.min_matches();
    let estimate = crate::sqlite_has::fewest_matches(c, q, min_matches)?;
    if estimate < min_matches {
        crate::trace::plan(|| format!("no sort walk: about {estimate} matches (walk from {min_matches})"));
        return Ok(None);
    }
    walk_filter(c, q, ty, &[], &[], min_matches, filter, values).map(Some)
}

/// The page `sql` (rows of value and `seq`, in sort order) walks to, or `None` when the walk
/// gives up, or runs out without having met every match (`complete`: a walk to the end has).
#[allow(clippy::too_many_arguments)]
fn one_statement_page(
    c: &Connection,
    q: &SearchQuery,
    walk: &SortWalk,
    f: &crate::sqlite_sort_group::WalkFilter,
    sql: &str,
    params: Vec<V>,
    name: &str,
    complete: bool,
) -> Result<Option<Vec<i64>>, StoreError> {
    let mut page = crate::sqlite_sort_group::Page::new(q, usize::try_from(walk.min_matches()).unwrap_or(usize::MAX));
    let (mut seen, mut walked) = (FxHashSet::default(), 0);
    match page.walk(c, q, f, sql, params, &mut seen, &mut walked)? {
        None => {
            crate::trace::plan(|| format!("sort walk over {name} gave up after {WALK_MAX_ROWS} rows"));
            return Ok(None);
        }
        Some(true) => {}
        Some(false) => {
            if !page.finish(c, q)? && !complete {
                return Ok(None);
            }
        }
    }
    crate::trace::plan(|| format!("sort walk over {name}, {walked} rows read"));
    walk.pages.fetch_add(1, Ordering::Relaxed);
    Ok(Some(page.seqs))
}

/// The join and filter of a walk's rows (aliased `d`): on the index rows alone when every
/// condition is an index test (index rows exist only for current, live versions, so the
/// walk need not read the resource row of each), else on the joined resource `r`; common
/// conditions (`common_conditions`, leaving out the clauses `skip`) and the clauses `probe`
/// probed on each row. `filter` and `values` are the query's own, built without probes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk_filter(
    c: &Connection,
    q: &SearchQuery,
    ty: &str,
    skip: &[usize],
    probe: &[usize],
    min_matches: i64,
    filter: &str,
    values: &[V],
) -> Result<crate::sqlite_sort_group::WalkFilter, StoreError> {
    let not_counted: Vec<usize> = skip.iter().chain(probe).copied().collect();
    let mut probed = common_conditions(c, q, ty, &not_counted, min_matches.saturating_mul(PROBE_FROM_WALK_MIN))?;
    probed.extend(
        probe.iter().flat_map(|i| q.clauses[*i].any.iter()).filter(|cond| crate::sqlite_query::probe_decides(cond)),
    );
    if !probed.is_empty() {
        let n = probed.len();
        crate::trace::plan(|| format!("{n} common condition(s) tested on each walked row's index record"));
    }
    let join = " CROSS JOIN resource r ON r.seq = d.seq".to_string();
    Ok(crate::sqlite_query::with_probed(&probed, || {
        let mut own = Vec::new();
        let (join, filter) = if crate::sqlite_query::index_only(q) {
            (String::new(), crate::sqlite_query::index_row_clause(q, "d", &mut own))
        } else if probed.is_empty() {
            own = values.to_vec();
            (join, filter.to_string())
        } else {
            (join, crate::sqlite_query::where_clause(q, "r", &mut own))
        };
        crate::sqlite_sort_group::WalkFilter { join, filter, values: own }
    }))
}

/// From this many times the walk's own threshold (`SortWalk::min_matches`, so 10,000 index
/// rows unless set; every condition when tests set it to 0) a condition is tested on each
/// row the walk meets rather than collected before it: collecting `category=laboratory`
/// and `status=final` (290,000 and 470,000 rows at a million resources) took 0.2 s of a
/// page whose walk read 11 rows.
const PROBE_FROM_WALK_MIN: i64 = 5;

/// The conditions of `q` (not among the walk's bounding clauses `skip`) whose collection
/// would read at least `min_rows` index rows, counted on their own index up to that: `:not`
/// and `:missing` collect the rows of the positive test or of the whole parameter, and the
/// values of one clause are counted together.
fn common_conditions<'q>(
    c: &Connection,
    q: &'q SearchQuery,
    ty: &str,
    skip: &[usize],
    min_rows: i64,
) -> Result<Vec<&'q Condition>, StoreError> {
    let mut common = Vec::new();
    for (i, clause) in q.clauses.iter().enumerate() {
        if skip.contains(&i) {
            continue;
        }
        let [cond] = clause.any.as_slice() else {
            // Several values (`status=final,amended`): all probed, or all collected.
            let plain = crate::sqlite_query::plain_alternatives(clause).is_some();
            if plain && clause.any.iter().all(crate::sqlite_query::probe_decides) {
                let mut values = Vec::new();
                let Some(sql) = crate::sqlite_query::estimate_sql(clause, ty, min_rows.max(1), &mut values) else {
                    continue;
                };
                let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
                if n >= min_rows {
                    common.extend(clause.any.iter());
                }
            }
            continue;
        };
        if !crate::sqlite_query::probe_decides(cond) {
            continue;
        }
        let collected = match cond {
            Condition::Index { param, test, .. } => {
                Condition::Index { param: param.clone(), test: test.clone(), negate: false }
            }
            Condition::Missing { param, kind, .. } => {
                Condition::Missing { param: param.clone(), kind: *kind, missing: false }
            }
            _ => continue,
        };
        let mut values = Vec::new();
        let clause = crate::query::Clause { any: vec![collected] };
        let Some(sql) = crate::sqlite_query::estimate_sql(&clause, ty, min_rows.max(1), &mut values) else { continue };
        let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
        if n >= min_rows {
            common.push(cond);
        }
    }
    Ok(common)
}

/// Whether some clause requires a value of the sort parameter (so no match lacks one).
fn every_match_has_value(q: &SearchQuery, param: &str, kind: IndexKind) -> bool {
    q.clauses.iter().any(|clause| {
        !clause.any.is_empty()
            && clause.any.iter().all(|c| match c {
                Condition::Index { param: p, test, negate: false } => p == param && test_kind(test) == kind,
                Condition::DateWindow { param: p, .. } => p == param && kind == IndexKind::Date,
                Condition::Missing { param: p, kind: k, missing: false } => p == param && *k == kind,
                _ => false,
            })
    })
}

/// Where a walk of a date parameter's values (in `idx_date`) or of a quantity's may start and stop.
#[derive(Default, Debug)]
pub(crate) struct Bounds {
    /// Every match has its values at `lo >= from`, except (with `wide_before`) values wider
    /// than a day, which `idx_date_wide` lists again.
    pub(crate) from: Option<i64>,
    pub(crate) wide_before: bool,
    /// Every match has its values at `lo < below`.
    pub(crate) below: Option<i64>,
    /// A quantity: every match has its value at least `value_from`, at most `value_to`.
    pub(crate) value_from: Option<f64>,
    pub(crate) value_to: Option<f64>,
    /// The clauses that set them.
    clauses: Vec<usize>,
}

/// The bounds the date conditions on `param` set on the values of every match, when each
/// resource has at most one value of it (`idx_date_multi` has no count for it): a condition
/// holds for some value of a resource, and that is its only value. Without them, or with a
/// resource holding two values, the walk covers the whole index.
fn date_bounds(c: &Connection, q: &SearchQuery, ty: &str, param: &str) -> Result<Bounds, StoreError> {
    let mut b = Bounds::default();
    for (i, clause) in q.clauses.iter().enumerate() {
        let [cond] = clause.any.as_slice() else { continue };
        let Some(one) = condition_bounds(cond, param) else { continue };
        b.clauses.push(i);
        // Every match passes every clause: the highest start and the lowest stop hold.
        if let Some(from) = one.from {
            if b.from.is_none_or(|f| from > f || (from == f && !one.wide_before)) {
                (b.from, b.wide_before) = (Some(from), one.wide_before);
            }
        }
        if let Some(below) = one.below {
            b.below = Some(b.below.map_or(below, |x: i64| x.min(below)));
        }
    }
    if b.from.is_none() && b.below.is_none() {
        return Ok(b);
    }
    let several: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM idx_date_multi WHERE type = ?1 AND param = ?2)")?
        .query_row([ty, param], |r| r.get(0))?;
    if several {
        return Ok(Bounds::default());
    }
    if let (Some(from), true) = (b.from, b.wide_before) {
        // The wide values before the start are read apart: not when they are many.
        let n: i64 = c
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM idx_date_wide WHERE type = ?1 AND param = ?2 AND lo < ?3 \
                 LIMIT {WALK_MAX_ROWS})"
            ))?
            .query_row(rusqlite::params![ty, param, from], |r| r.get(0))?;
        if n as usize >= WALK_MAX_ROWS {
            (b.from, b.wide_before) = (None, false);
            b.clauses.clear();
        }
    }
    Ok(b)
}

/// The bounds the quantity conditions on `param` set on the value of every match (inclusive
/// ones: the conditions still filter the walk), when no resource has more than one entry of
/// it (`sqlite_presence`): a condition holds for *some* value of a resource, which bounds
/// its sort value only when that is its one value. `value-quantity=gt150&_sort=value-quantity`
/// then starts its walk at 150 instead of reading every smaller value first.
fn quantity_bounds(c: &Connection, q: &SearchQuery, ty: &str, param: &str) -> Result<Bounds, StoreError> {
    let mut b = Bounds::default();
    for (i, clause) in q.clauses.iter().enumerate() {
        let [cond] = clause.any.as_slice() else { continue };
        let Some(Test::Quantity { op, value, lo, hi, .. }) = quantity_test(q, param, cond) else { continue };
        let (from, to) = match op {
            RangeOp::Eq | RangeOp::Ap => (Some(*lo), Some(*hi)),
            RangeOp::Gt | RangeOp::Sa | RangeOp::Ge => (Some(*value), None),
            RangeOp::Lt | RangeOp::Eb | RangeOp::Le => (None, Some(*value)),
            RangeOp::Ne => continue,
        };
        b.clauses.push(i);
        if let Some(from) = from {
            b.value_from = Some(b.value_from.map_or(from, |f: f64| f.max(from)));
        }
        if let Some(to) = to {
            b.value_to = Some(b.value_to.map_or(to, |t: f64| t.min(to)));
        }
    }
    if b.clauses.is_empty()
        || !crate::sqlite_presence::single_valued(c, ty, crate::sqlite_record::table::QUANTITY, param)?
    {
        return Ok(Bounds::default());
    }
    crate::trace::plan(|| format!("quantity walk bounded to {:?}..={:?}", b.value_from, b.value_to));
    Ok(b)
}

/// The test of `cond` on quantity `param`: its own, or one on the composite a paired walk
/// reads with the walk's code (whose rows hold the same values of each match).
fn quantity_test<'q>(q: &'q SearchQuery, param: &str, cond: &'q Condition) -> Option<&'q Test> {
    match cond {
        Condition::Index { param: p, test, negate: false } if p == param => Some(test),
        Condition::Index { param: p, test: Test::Composite { code, second, .. }, negate: false } => {
            let within = q.sort_within.as_ref()?;
            (&within.composite == p && &within.code == code).then_some(second.as_ref())
        }
        _ => None,
    }
}

/// The bounds one condition sets on the value (`lo`, `hi`) that satisfies it, from the SQL
/// it becomes (`sqlite_query::range_sql` and the `DateWindow` probe). Only bounds that hold
/// for every satisfying value, whatever its width or even with `hi < lo`, except that a
/// lower bound may leave out values wider than a day (`wide_before`): a value at most a day
/// wide (`hi - lo <= DAY`) with `hi > x` has `lo >= x + 1 - DAY`.
pub(crate) fn condition_bounds(cond: &Condition, param: &str) -> Option<Bounds> {
    const DAY: i64 = crate::sqlite_index::DAY_MS;
    let narrow_above = |x: i64| x.saturating_add(1).saturating_sub(DAY);
    let (from, wide_before, below) = match cond {
        Condition::Index { param: p, test: Test::Date { op, lo, hi }, negate: false } if p == param => match op {
            // lo >= s_lo AND hi <= s_hi
            RangeOp::Eq => (Some(*lo), false, None),
            // lo >= s_hi
            RangeOp::Sa => (Some(*hi), false, None),
            // hi > s_hi
            RangeOp::Gt => (Some(narrow_above(*hi)), true, None),
            // hi > s_hi OR lo >= s_lo
            RangeOp::Ge => (Some(narrow_above(*hi).min(*lo)), true, None),
            // lo < s_lo
            RangeOp::Lt => (None, false, Some(*lo)),
            // lo < s_hi AND hi > s_lo
            RangeOp::Ap => (Some(narrow_above(*lo)), true, Some(*hi)),
            // Le (lo < s_lo OR hi <= s_hi), Eb (hi <= s_lo) and Ne bound no `lo`.
            RangeOp::Le | RangeOp::Eb | RangeOp::Ne => return None,
        },
        // idx_date: lo >= w_lo - DAY AND lo < w_hi AND hi > w_lo; idx_date_wide: lo < w_hi AND hi > w_lo.
        Condition::DateWindow { param: p, lo, hi } if p == param => (Some(lo.saturating_sub(DAY)), true, Some(*hi)),
        _ => return None,
    };
    Some(Bounds { from, wide_before, below, ..Bounds::default() })
}
