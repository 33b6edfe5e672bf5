//! `_sort` led by an indexed parameter (`Observation?_sort=-date`,
//! `Observation?code=…&_sort=-date`): the general plan computes every match's sort value
//! before it can order them (about 2.5 µs per resource: 100 ms for 40,000; 8 ms for the
//! 2,586 heights of the Synthea sample), so instead the parameter's index is walked in the
//! sort order, in batches, until the page is full. The first row of each resource met
//! ascending holds its smallest value, descending its largest: the values the general plan
//! sorts by. Index rows exist only for current, live versions of their type, so with no
//! condition every resource met is a match; resources without a value follow in write
//! order, as `NULLS LAST` puts them.
//!
//! With later sort keys (`_sort=-date,code`), the walk goes on past the page's last row
//! to the end of its group of equal first-key values, and the matches met are ordered by
//! every key (the general SQL's `ORDER BY` on their `seq`s alone): every match not met sorts
//! after them. A group reaching into the page with [`WALK_FROM`] members or more (a first
//! key of few values, `_sort=status,date`: every Observation is `final`) is not walked to
//! its end: its members are walked by the next key instead (that key's index, or for
//! `_lastUpdated` and `_id` the resource table's order), each walked row tested for the
//! group's value (`Group`), and the groups before it ordered as above. A walk that meets
//! more than [`GROUPS_MAX_ROWS`] rows first leaves the page to the general SQL.
//!
//! With conditions, each batch's rows are tested on their own `seq` (`query::seq_probe`:
//! PostgreSQL probes each row's index entries, or hashes a condition's rows when they are
//! few), which pays when matches are common among the walked rows: only when every
//! clause that is index rows (`query::is_rows_clause`: one or more positive conditions on one
//! table, a compartment, a date window) has at least [`WALK_FROM`] rows
//! (counted up to that, as the SQLite store estimates), and for at most [`WALK_MAX_ROWS`]
//! rows, after which the general plan answers. The first countable clause is read whole
//! when it has at most `known::read_max` rows: the walk then tests it in the process, the
//! other clauses on its matches alone, and is tried from fewer matches than [`WALK_FROM`]
//! while it costs less than the general plan (`known.rs`). Conditions that read other
//! columns of the resource (`_id`, `_lastUpdated`, `_has`) take the general plan.
//!
//! Only kinds whose index leads with the sort column qualify (token code, date start,
//! number, URI, and as the only key a reference's target id), and quantities, whose index
//! leads with the unit, by merging one run per unit (at most [`MAX_MERGED_UNITS`]; a filtered quantity walk gives up after
//! [`QUANTITY_WALK_MAX_ROWS`]); other sorts take the general plan. Token codes and URIs
//! are indexed by their keys, their first `KEY_CHARS` characters: a batch is read from the
//! keys alone (an index-only scan) when they all are shorter than a key can be, so whole
//! values; else it orders by the key and then the whole value, which is the order of the
//! whole value (a key is smaller than another only when its value is), the index giving
//! the first and a sort within equal keys the rest.

use std::collections::HashSet;

use postgres::GenericClient;
use tsunagu_store::{Condition, IndexKind, SearchQuery, SortParam, SortWithin, StoreError};

use crate::db::Cached;
use crate::known::{self, Known};
use crate::query::KEY_CHARS;
use crate::value::{number, refs, V};
use crate::Pg;

/// The estimated matches (the rows of the rarest countable clause) from which a filtered
/// walk is tried: below, the general plan sorts few enough.
pub const WALK_FROM: i64 = 2000;
/// The most index rows a filtered walk reads before the general plan answers instead.
const WALK_MAX_ROWS: usize = 50_000;
/// The most index rows a filtered walk reads when none of its conditions can be counted
/// (a chain, a negation, `:missing`, `_text`): common ones fill a page well within it
/// (`subject:Patient.gender=female&_sort=-date`), rare ones give up soon for the general plan.
const UNCOUNTED_WALK_MAX_ROWS: usize = 2_000;
/// The most index rows a walk for a sort with later keys reads (its groups of equal
/// first keys are then ordered by every key, as the general SQL orders all matches).
const GROUPS_MAX_ROWS: usize = 10_000;
/// The largest batch of a filtered walk.
const MAX_FILTERED_BATCH: usize = 16_384;
/// The most index rows a filtered walk of a quantity reads: values cluster by code (the
/// heights among every length in cm), so a filter on the code is met in runs after whole
/// runs of other values, and a walk that has not filled its page by then rarely does soon.
const QUANTITY_WALK_MAX_ROWS: usize = 2_000;
/// A filtered quantity walk is tried from this many times [`WALK_FROM`] matches (the
/// heights of the Synthea sample, 2,586, are sorted faster by the general plan).
const QUANTITY_WALK_FACTOR: i64 = 5;
/// The most unit codes of one quantity parameter a walk merges; past it the general plan.
const MAX_MERGED_UNITS: usize = 64;

/// The page's `seq`s (at most `count + 1`, in order), or `None` when the query does not
/// qualify or a filtered walk gave up; `walk_from` is [`WALK_FROM`] unless a test set it
/// (`i64::MAX`: filtered walks never).
pub(crate) fn page(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    walk_from: i64,
) -> Result<Option<Vec<i64>>, StoreError> {
    walk(c, q, &Span { level: 0, group: None, offset: q.offset, need: q.offset + q.count + 1 }, walk_from)
}

/// What one walk pages: the matches in the order of sort key `level` (0: the query's
/// page), or with `group` only those of one group of the first key (a large group reaching
/// into the page, walked by the next key); positions `offset..need` of them.
struct Span<'a> {
    level: usize,
    group: Option<&'a Group>,
    offset: usize,
    need: usize,
}

/// The resources whose sort value of the first key is `value`: a resource has a row of
/// that value and none before it in the sort's direction (its smallest value ascending,
/// its largest descending, as the walk meets it first).
struct Group {
    table: &'static str,
    column: &'static str,
    param: String,
    value: V,
    descending: bool,
}

impl Group {
    /// The test of `alias.seq`'s membership, by probes of the `(seq, param)` index.
    fn sql(&self, alias: &str, values: &mut Vec<V>) -> String {
        let (t, col) = (self.table, self.column);
        let before = if self.descending { ">" } else { "<" };
        for _ in 0..2 {
            values.extend([V::Text(self.param.clone()), self.value.clone()]);
        }
        format!(
            "EXISTS (SELECT 1 FROM {t} g WHERE g.seq = {alias}.seq AND g.param = ? AND g.{col} = ?) AND NOT EXISTS \
             (SELECT 1 FROM {t} g WHERE g.seq = {alias}.seq AND g.param = ? AND g.{col} {before} ?)"
        )
    }
}

fn walk(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    span: &Span<'_>,
    walk_from: i64,
) -> Result<Option<Vec<i64>>, StoreError> {
    let (Some(ty), Some(key)) = (q.resource_type.as_deref(), q.sort.get(span.level)) else { return Ok(None) };
    // A group's walk completes its last tie too, and orders what it met by every key.
    let later_keys = q.sort.len() > span.level + 1 || span.level > 0;
    let SortParam::Index { param, kind } = &key.param else {
        return match span.group {
            Some(g) => resource_order_group(c, q, span, g),
            None => Ok(None),
        };
    };
    let (table, column, keyed) = match kind {
        IndexKind::Token => ("idx_token", "code", true),
        IndexKind::Date => ("idx_date", "lo", false),
        IndexKind::Number => ("idx_number", "value", false),
        IndexKind::Uri => ("idx_uri", "value", true),
        IndexKind::Quantity => ("idx_quantity", "value", false),
        // One key only: a group's membership would test the whole sort value (target id,
        // type and reference), which no one column holds.
        IndexKind::Reference if !later_keys => ("idx_reference", "target_id", true),
        _ => return Ok(None),
    };
    // The index column after the sort column, before `seq` (see `by_split`).
    let split_column = match kind {
        IndexKind::Token => Some("system_key"),
        IndexKind::Reference => Some("target_type_key"),
        _ => None,
    };
    // A quantity's index leads with its unit: the walk merges one run per unit. Not under a
    // condition on the same quantity (`value-quantity=gt150`): the walk would start below
    // its bound.
    let quantity = *kind == IndexKind::Quantity;
    // The caller's composite pairing this quantity with a required code, whose rows of that
    // code hold exactly the values of the matches (`SearchQuery::sort_within`); a condition
    // on it bounds the walk as one on the quantity does.
    let within = q.sort_within.as_ref().filter(|_| quantity && span.level == 0);
    let bounded_here = |c: &Condition| matches!(c, Condition::Index { param: p, .. } if p == param || within.is_some_and(|w| *p == w.composite));
    if quantity && q.clauses.iter().any(|c| c.any.iter().any(bounded_here)) {
        return Ok(None);
    }
    let mut max_filtered = if quantity { QUANTITY_WALK_MAX_ROWS } else { WALK_MAX_ROWS };
    // The conditions tested on each walked row (and a group's membership), and their values.
    let mut probe_values = Vec::new();
    let mut tests = Vec::new();
    // A clause's matches read whole, when few (`known.rs`).
    let mut known: Option<Known> = None;
    // The first batch of a probed walk, when the planner's estimate sizes it.
    let mut first_batch: Option<usize> = None;
    if !q.clauses.is_empty() {
        if !q.clauses.iter().all(|c| c.any.iter().all(crate::query::on_seq)) {
            return Ok(None);
        }
        // A quantity walk needs more matches: its values cluster by code.
        let from = if quantity { walk_from.saturating_mul(QUANTITY_WALK_FACTOR) } else { walk_from };
        if walk_from == i64::MAX {
            return Ok(None);
        }
        if span.level == 0 {
            // Read whole only where the walk starts at its matches' values: not for a
            // quantity (its values cluster by code, its filtered walk gives up soon), nor
            // under a condition on the sorted parameter (a window the walk reaches only
            // after every value before it).
            let on_key = |c: &Condition| match c {
                Condition::Index { param: p, .. } | Condition::DateWindow { param: p, .. } => p == param,
                _ => false,
            };
            let read_whole = !quantity && !q.clauses.iter().any(|c| c.any.iter().any(on_key));
            // Probing each walked row in SQL costs more than the sorted page per match (a
            // `walk_from` a test set is kept, so that small data walks).
            // The type's live resources, for the thresholds below (a quantity walk has none).
            let live = if quantity { 0 } else { crate::counts::total(c, Some(ty))? };
            let cap =
                if quantity || walk_from != WALK_FROM { from } else { from.max(probed_walk_from(span.need, live)) };
            let fewest = fewest_rows(c, q, ty, cap, read_whole.then(|| known::read_max(span.need, live)), live)?;
            match (fewest.rows, &fewest.known) {
                (Some(n), _) if n < cap => return Ok(None),
                (_, Some(k)) if k.len() as i64 >= from => {}
                // Fewer, but read whole: walked while that costs less than the general plan.
                (_, Some(k)) if k.worth_walking(span.need) => max_filtered = max_filtered.min(k.walk_bound()),
                (_, Some(_)) => {
                    tsunagu_store::trace::plan(|| "too few to walk: the general SQL".into());
                    return Ok(None);
                }
                (Some(_), None) => {}
                // Nothing to count (a chain, a negation): tried, but not far.
                (None, None) => max_filtered = max_filtered.min(UNCOUNTED_WALK_MAX_ROWS),
            }
            known = fewest.known;
            // A first batch as large as the planner's estimate of the first clause says
            // the page needs, a quarter again for chance: `code=…72514-3&_sort=-date` at
            // 937k (about 30,000 rows) read 408, 306 and 295 rows in three statements.
            first_batch = fewest.estimate.filter(|e| *e >= 1.0).map(|e| {
                let rows = span.need as f64 * live.max(1) as f64 / e * 1.25;
                (rows as usize).clamp(400, MAX_FILTERED_BATCH)
            });
        }
        // Unless read whole, when they are tested in the process instead (`Known::matches`).
        if known.is_none() {
            tests.push(crate::query::seq_probe(q, "w", &mut probe_values).expect("every condition on seq"));
        }
    }
    if let Some(g) = span.group {
        tests.push(g.sql("w", &mut probe_values));
    }
    let probe = (!tests.is_empty()).then(|| tests.join(" AND "));
    let arms = if quantity {
        let paired = match within {
            Some(w) => paired_systems(c, ty, w)?.map(|systems| Arms::Paired(w, systems)),
            None => None,
        };
        let arms = match paired {
            Some(arms) => Some(arms),
            None => quantity_units(c, ty, param)?.map(Arms::Units),
        };
        match arms {
            Some(arms) if !arms.is_empty() => Some(arms),
            _ => return Ok(None),
        }
    } else {
        None
    };
    if let Some(Arms::Paired(w, _)) = &arms {
        tsunagu_store::trace::plan(|| format!("the quantity walk reads {} of code {}", w.composite, w.code));
    }
    tsunagu_store::trace::plan(|| format!("sort walk: {table} in the order of {column}"));
    let bounded = format!("{column}_key");
    let (dir, cmp) = if key.descending { ("DESC", "<") } else { ("ASC", ">") };
    let need = span.need;
    let mut found: Vec<i64> = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut after: Option<(V, i64)> = None;
    // A token's index orders a code's rows by system before `seq`: walked in that order
    // (index only, stopping after the batch) while every code met has one system, whose
    // rows are then in `seq` order; else by code and `seq`, which sorts all of a code's
    // rows first (`_sort=status`: 42,960 `final`s read for a page of 10). A reference's
    // orders a target id's rows by the target's type, as its sort value does (id, type,
    // then the reference as written): walked in that order while each target met is
    // written one way, else the general plan. `split` is the last row's value of that
    // column, where the walk resumes.
    let mut by_split = split_column.is_some();
    let mut split: Option<String> = None;
    // A filtered walk starts wider: its matches are at least common, not every row.
    let filtered = probe.is_some() || known.is_some();
    let mut batch = match (&known, first_batch) {
        (Some(k), _) => k.first_batch(need, MAX_FILTERED_BATCH),
        (None, Some(rows)) => rows,
        (None, None) if filtered => (need * 8).max(400),
        (None, None) => (need * 2).max(100),
    };
    let mut exhausted = false;
    let mut walked = 0;
    // With later keys: the first key's value of the page's last row, and whether a row of
    // another value has been met since (the group is whole).
    let mut boundary: Option<V> = None;
    let mut closed = false;
    // The value of the last match met and where in `found` its group began.
    let mut group: Option<(V, usize)> = None;
    // From how many members a group reaching into the page is walked by the next key.
    let group_from = usize::try_from(walk_from).unwrap_or(usize::MAX);
    while found.len() < need || (later_keys && !closed) {
        // Keyed kinds first try the keys alone, in an index-only scan (after a value shorter
        // than a key, so that the keys resume where the values do): a batch of keys all
        // shorter than a key can be are whole values, in their order. Otherwise (a key
        // perhaps cut short among them) the batch is read again ordered by whole values.
        let short_after = after.as_ref().is_none_or(|(v, _)| matches!(v, V::Text(t) if t.len() < KEY_CHARS));
        let modes: &[bool] = if keyed && short_after { &[true, false] } else { &[false] };
        let mut rows = Vec::new();
        for &keys_only in modes {
            let col = if keys_only { bounded.as_str() } else { column };
            let mut values = vec![V::Text(ty.to_string()), V::Text(param.clone())];
            let in_split = by_split && keys_only;
            if *kind == IndexKind::Reference && !in_split {
                tsunagu_store::trace::plan(|| "a long target id: the general SQL".into());
                return Ok(None);
            }
            let sc = split_column.unwrap_or("");
            let sys = split_column.map(|c| format!(", {c}")).unwrap_or_default();
            let mut sql = format!("SELECT seq, {col}{sys} FROM {table} WHERE type = ? AND param = ?");
            if let Some(arms) = &arms {
                (sql, values) = merged_arms(arms, ty, param, after.as_ref(), (cmp, dir), batch);
            } else if let (Some((v, s)), true, Some(last)) = (&after, in_split, &split) {
                sql.push_str(&format!(" AND ({col}, {sc}, seq) {cmp} (?, ?, ?)"));
                values.extend([v.clone(), V::Text(last.clone()), V::Int(*s)]);
            } else if let Some((v, s)) = &after {
                if keyed && !keys_only {
                    // Where the index resumes (the key of the last value, included), then exactly.
                    sql.push_str(&format!(" AND {bounded} {cmp}= left(?, {KEY_CHARS})"));
                    values.push(v.clone());
                }
                sql.push_str(&format!(" AND ({col}, seq) {cmp} (?, ?)"));
                values.push(v.clone());
                values.push(V::Int(*s));
            }
            if keyed && !keys_only {
                sql.push_str(&format!(" ORDER BY {bounded} {dir}, {column} {dir}, seq {dir} LIMIT ?"));
            } else if in_split {
                sql.push_str(&format!(" ORDER BY {col} {dir}, {sc} {dir}, seq {dir} LIMIT ?"));
            } else {
                sql.push_str(&format!(" ORDER BY {col} {dir}, seq {dir} LIMIT ?"));
            }
            values.push(V::Int(batch as i64));
            if let Some(p) = &probe {
                // The split column last, so that the probe's answer stays the third column.
                let sys = split_column.map(|c| format!(", w.{c}")).unwrap_or_default();
                let by = if in_split { format!(", 4 {dir}") } else { String::new() };
                sql = format!(
                    "WITH w AS MATERIALIZED ({sql}) SELECT w.seq, w.{col}, {p}{sys} FROM w ORDER BY 2 {dir}{by}, 1 {dir}"
                );
                values.extend(probe_values.iter().cloned());
            }
            let sql = number(&sql, &values);
            tsunagu_store::trace::statement(&sql, &values);
            rows = c.query(&sql, &refs(&values)).pg()?;
            if !keys_only || rows.iter().all(|r| r.get::<_, &str>(1).len() < KEY_CHARS) {
                break;
            }
        }
        if by_split && !rows.is_empty() {
            if *kind == IndexKind::Reference {
                if several_spellings(c, ty, param, &rows)? {
                    tsunagu_store::trace::plan(|| "a target met is referred to in two ways: the general SQL".into());
                    return Ok(None);
                }
            } else if several_systems(c, ty, param, &rows)? {
                tsunagu_store::trace::plan(|| "a code met has several systems: walked by code and seq".into());
                by_split = false;
                continue;
            }
        }
        let known_matches = match &known {
            Some(k) => Some(k.matches(c, rows.iter().map(|r| r.get::<_, i64>(0)))?),
            None => None,
        };
        for r in &rows {
            let seq: i64 = r.get(0);
            let matches = match &known_matches {
                Some(m) => m.contains(&seq),
                None => probe.is_none() || r.get::<_, bool>(2),
            };
            if boundary.as_ref().is_some_and(|b| *b != value(*kind, r)) {
                closed = true;
                break;
            }
            // A resource's first row holds its sort value: it is a match or not there.
            if seen.insert(seq) && matches {
                let v = value(*kind, r);
                if group.as_ref().is_none_or(|(g, _)| *g != v) {
                    group = Some((v, found.len()));
                }
                found.push(seq);
                if later_keys && found.len() == need {
                    boundary = Some(value(*kind, r));
                }
                // A large group reaching into the page: walked by the next key instead.
                if span.level == 0
                    && later_keys
                    && group.as_ref().is_some_and(|(_, start)| found.len() - start >= group_from)
                {
                    let (value, start) = group.take().expect("checked above");
                    let g = Group { table, column, param: param.clone(), value, descending: key.descending };
                    return group_page(c, q, span, &found, start, &g, walk_from);
                }
            }
        }
        walked += rows.len();
        if closed {
            break;
        }
        let Some(last) = rows.last() else {
            exhausted = true;
            break;
        };
        after = Some((value(*kind, last), last.get(0)));
        if split_column.is_some() {
            split = Some(last.get(last.len() - 1));
        }
        if rows.len() < batch {
            exhausted = true;
            break;
        }
        if later_keys && walked >= GROUPS_MAX_ROWS {
            tsunagu_store::trace::plan(|| format!("sort walk given up after {walked} rows: the general SQL"));
            return Ok(None);
        }
        if later_keys {
            // Read no further than the walk may go, nor far past a group's walk.
            batch = (batch * 4).min(GROUPS_MAX_ROWS - walked).min(group_from.max(100));
        } else if filtered {
            if walked >= max_filtered && found.len() < need {
                tsunagu_store::trace::plan(|| format!("sort walk given up after {walked} rows: the general SQL"));
                return Ok(None);
            }
            // As many rows as the matches met so far say the page still needs, half as many
            // again for chance; four times as many while none was met. (Four times at each
            // step read 1,632 rows for the 10–30 matches a page still lacked.)
            batch = match found.len() {
                0 => batch * 4,
                met => (need.saturating_sub(met) * walked).div_ceil(met) * 3 / 2,
            }
            .clamp(100, MAX_FILTERED_BATCH)
            // No further than the walk may go (once the page is full, the loop ends anyway).
            .min(max_filtered.saturating_sub(walked))
            .max(1);
        } else {
            batch *= 4;
        }
    }
    tsunagu_store::trace::plan(|| format!("sort walk read {walked} index rows"));
    if later_keys {
        return later_keys_page(c, q, found, span.offset, need);
    }
    let valued = found.len();
    let mut page: Vec<i64> = found.into_iter().skip(q.offset).take(q.count + 1).collect();
    if exhausted && page.len() < q.count + 1 {
        // Then the matches without a value, in write order (in the key's direction).
        let skip = q.offset.saturating_sub(valued);
        let take = q.count + 1 - page.len();
        let mut values = Vec::new();
        let filter = crate::query::where_clause(q, "r", &mut values);
        values.extend([V::Text(param.clone()), V::Int(take as i64), V::Int(skip as i64)]);
        let sql = format!(
            "SELECT r.seq FROM resource r WHERE {filter} AND NOT EXISTS \
             (SELECT 1 FROM {table} x WHERE x.seq = r.seq AND x.param = ?) ORDER BY r.seq {dir} LIMIT ? OFFSET ?"
        );
        let sql = number(&sql, &values);
        tsunagu_store::trace::statement(&sql, &values);
        let rows = c.query(&sql, &refs(&values)).pg()?;
        page.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    Ok(Some(page))
}

/// The unit keys of quantity parameter `param` of `ty`, one index probe each (a loose index
/// scan); `None` past [`MAX_MERGED_UNITS`].
fn quantity_units(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    param: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    distinct_keys(c, "idx_quantity", "code_key", "type = ? AND param = ?", &[V::Text(ty.into()), V::Text(param.into())])
}

/// The distinct values of index column `column` of `table` among the rows `filter` (with
/// `values`) selects, in order, one index probe each (a loose index scan: PostgreSQL has
/// no skip scan); `None` past [`MAX_MERGED_UNITS`].
fn distinct_keys(
    c: &mut Cached<'_, impl GenericClient>,
    table: &str,
    column: &str,
    filter: &str,
    values: &[V],
) -> Result<Option<Vec<String>>, StoreError> {
    let next = format!("SELECT min({column}) FROM {table} WHERE {filter}");
    let sql = format!(
        "WITH RECURSIVE u(k) AS (SELECT ({next}) UNION ALL SELECT ({next} AND {column} > u.k) FROM u \
         WHERE u.k IS NOT NULL) SELECT k FROM u WHERE k IS NOT NULL LIMIT {}",
        MAX_MERGED_UNITS + 1
    );
    let values: Vec<V> = values.iter().chain(values).cloned().collect();
    let sql = number(&sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    let keys: Vec<String> = c.query(&sql, &refs(&values)).pg()?.iter().map(|r| r.get(0)).collect();
    Ok((keys.len() <= MAX_MERGED_UNITS).then_some(keys))
}

/// Where a quantity walk reads its values: one run per key prefix, merged by value.
enum Arms<'q> {
    /// `idx_quantity` rows of the parameter, one run per unit key.
    Units(Vec<String>),
    /// `idx_composite` rows of the pairing composite and its code, one run per system key
    /// ([`paired_systems`]).
    Paired(&'q SortWithin, Vec<String>),
}

impl Arms<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Arms::Units(keys) | Arms::Paired(_, keys) => keys.is_empty(),
        }
    }
}

/// The system keys of `within`'s code among its composite's rows: its own system when the
/// query names one, else one index probe each (a loose index scan); `None` past
/// [`MAX_MERGED_UNITS`].
fn paired_systems(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    within: &SortWithin,
) -> Result<Option<Vec<String>>, StoreError> {
    if let Some(s) = &within.system {
        return Ok(Some(vec![s.chars().take(KEY_CHARS).collect()]));
    }
    let filter = format!("type = ? AND param = ? AND c_code_key = left(?, {KEY_CHARS}) AND c_code = ?");
    let code = V::Text(within.code.clone());
    let values = [V::Text(ty.into()), V::Text(within.composite.clone()), code.clone(), code];
    distinct_keys(c, "idx_composite", "c_system_key", &filter, &values)
}

/// A batch's source for a quantity: each run's first `batch` rows from where the walk
/// stopped (`after`; `cmp` and `dir` its direction), each read in its index's order with
/// ties on a value sorted by `seq`, and merged (PostgreSQL's Merge Append; over the arms
/// without their own `LIMIT` it appended and sorted every row of the parameter instead).
fn merged_arms(
    arms: &Arms<'_>,
    ty: &str,
    param: &str,
    after: Option<&(V, i64)>,
    (cmp, dir): (&str, &str),
    batch: usize,
) -> (String, Vec<V>) {
    let mut values = Vec::new();
    let (table, key, prefixes): (_, _, Vec<Vec<V>>) = match arms {
        Arms::Units(units) => (
            "idx_quantity",
            "code_key = ?".to_string(),
            units.iter().map(|u| vec![V::Text(param.into()), V::Text(u.clone())]).collect(),
        ),
        // A system the query names is matched whole (a key may be shared by longer ones).
        Arms::Paired(w, systems) => (
            "idx_composite",
            format!(
                "c_code_key = left(?, {KEY_CHARS}) AND c_code = ? AND c_system_key = ?{} AND value IS NOT NULL",
                if w.system.is_some() { " AND c_system = ?" } else { "" }
            ),
            systems
                .iter()
                .map(|s| {
                    let code = V::Text(w.code.clone());
                    let mut prefix = vec![V::Text(w.composite.clone()), code.clone(), code, V::Text(s.clone())];
                    prefix.extend(w.system.iter().map(|s| V::Text(s.clone())));
                    prefix
                })
                .collect(),
        ),
    };
    let arms: Vec<String> = prefixes
        .into_iter()
        .map(|prefix| {
            values.push(V::Text(ty.into()));
            values.extend(prefix);
            let mut arm = format!("SELECT seq, value FROM {table} WHERE type = ? AND param = ? AND {key}");
            if let Some((v, s)) = after {
                arm.push_str(&format!(" AND value {cmp}= ? AND (value, seq) {cmp} (?, ?)"));
                values.extend([v.clone(), v.clone(), V::Int(*s)]);
            }
            values.push(V::Int(batch as i64));
            format!("({arm} ORDER BY value {dir}, seq {dir} LIMIT ?)")
        })
        .collect();
    (format!("SELECT seq, value FROM ({}) x WHERE true", arms.join(" UNION ALL ")), values)
}

/// Whether a code of the walked token rows (their second column) has rows of more than
/// one system in the parameter's index: two probes of its ends each.
fn several_systems(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    param: &str,
    rows: &[postgres::Row],
) -> Result<bool, StoreError> {
    let mut codes: Vec<String> = rows.iter().map(|r| r.get::<_, String>(1)).collect();
    codes.dedup();
    let end = |agg: &str| {
        format!("(SELECT {agg}(system_key) FROM idx_token WHERE type = ? AND param = ? AND code_key = left(k, {KEY_CHARS}))")
    };
    let sql = format!("SELECT EXISTS (SELECT 1 FROM unnest(?) k WHERE {} IS DISTINCT FROM {})", end("min"), end("max"));
    let t = || [V::Text(ty.into()), V::Text(param.into())];
    let values: Vec<V> = [V::TextArray(codes)].into_iter().chain(t()).chain(t()).collect();
    let sql = number(&sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    Ok(c.query_one(&sql, &refs(&values)).pg()?.get(0))
}

/// Whether a target of the walked reference rows (target id and type: their second and
/// last columns) is referred to by more than one `url` (relative and absolute, say), which
/// the sort value orders by but the index does not hold: the target's rows are read.
fn several_spellings(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    param: &str,
    rows: &[postgres::Row],
) -> Result<bool, StoreError> {
    let mut targets: Vec<(String, String)> =
        rows.iter().map(|r| (r.get::<_, String>(1), r.get::<_, String>(r.len() - 1))).collect();
    targets.dedup();
    let (ids, types): (Vec<String>, Vec<String>) = targets.into_iter().unzip();
    let sql = "SELECT EXISTS (SELECT 1 FROM unnest(?, ?) k(i, t) WHERE (SELECT count(DISTINCT url) FROM idx_reference \
               WHERE type = ? AND param = ? AND target_id_key = k.i AND target_type_key = k.t) > 1)";
    let values = [V::TextArray(ids), V::TextArray(types), V::Text(ty.into()), V::Text(param.into())];
    let sql = number(sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    Ok(c.query_one(&sql, &refs(&values)).pg()?.get(0))
}

/// A walked row's first-key value (its second column).
fn value(kind: IndexKind, r: &postgres::Row) -> V {
    match kind {
        IndexKind::Date => V::Int(r.get(1)),
        IndexKind::Number | IndexKind::Quantity => V::Real(r.get(1)),
        _ => V::Text(r.get(1)),
    }
}

/// The page of a sort with later keys from the matches a walk met: every group of equal
/// first-key values up to the page's last row, whole. Any match not met sorts after them,
/// so ordering those met by every key (the general SQL's `ORDER BY`, on their `seq`s
/// alone) gives positions `offset..need`; `None` when the walk ran out first (the matches
/// without a first key are ordered by the later keys, which the general SQL does).
fn later_keys_page(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    found: Vec<i64>,
    offset: usize,
    need: usize,
) -> Result<Option<Vec<i64>>, StoreError> {
    if found.len() < need {
        tsunagu_store::trace::plan(|| "sort walk ran out before the page: the general SQL".into());
        return Ok(None);
    }
    tsunagu_store::trace::plan(|| format!("the {} matches met ordered by every sort key", found.len()));
    let mut values = vec![V::IntArray(found)];
    let order = crate::query::order_by(&q.sort, "m", &mut values);
    values.extend([V::Int((need - offset) as i64), V::Int(offset as i64)]);
    // `_lastUpdated` and `_id` are columns of the resource rows (current ones: the walk met them).
    let from = if q.sort.iter().all(|k| matches!(k.param, SortParam::Index { .. })) {
        "unnest(?) AS m(seq)"
    } else {
        "unnest(?) AS u(seq) JOIN resource m ON m.seq = u.seq AND m.current AND NOT m.deleted"
    };
    let sql = number(&format!("SELECT m.seq FROM {from} ORDER BY {order} LIMIT ? OFFSET ?"), &values);
    tsunagu_store::trace::statement(&sql, &values);
    Ok(Some(c.query(&sql, &refs(&values)).pg()?.iter().map(|r| r.get::<_, i64>(0)).collect()))
}

/// The page when the walk of the first key gave up inside a large group (`_sort=status,date`:
/// every Observation is `final`): the whole groups met before it, ordered by every key, then
/// the group's members in the next key's order (its own walk, or for `_lastUpdated` and
/// `_id` the resource table's order); `None` when that walk cannot fill its part.
fn group_page(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    span: &Span<'_>,
    found: &[i64],
    start: usize,
    g: &Group,
    walk_from: i64,
) -> Result<Option<Vec<i64>>, StoreError> {
    tsunagu_store::trace::plan(|| {
        format!("the group of the page's first key from position {start} walked by the next key")
    });
    let members = Span {
        level: span.level + 1,
        group: Some(g),
        offset: span.offset.saturating_sub(start),
        need: span.need - start,
    };
    let Some(members) = walk(c, q, &members, walk_from)? else { return Ok(None) };
    let mut page = Vec::new();
    if span.offset < start {
        let Some(before) = later_keys_page(c, q, found[..start].to_vec(), span.offset, start)? else { return Ok(None) };
        page = before;
    }
    page.extend(members);
    Ok(Some(page))
}

/// A group's members in the order of a resource column (`_lastUpdated`, `_id`) and the keys
/// after it, ties in the first key's direction: PostgreSQL reads `resource_live_updated`
/// (or `resource_type_id`) in order and stops after the page.
fn resource_order_group(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    span: &Span<'_>,
    g: &Group,
) -> Result<Option<Vec<i64>>, StoreError> {
    let mut values = Vec::new();
    let filter = crate::query::where_clause(q, "r", &mut values);
    let member = g.sql("r", &mut values);
    let tie = q.sort.first().is_some_and(|k| k.descending);
    let order = crate::query::order_by_tied(&q.sort[span.level..], tie, "r", &mut values);
    let want = span.need - span.offset;
    values.extend([V::Int(want as i64), V::Int(span.offset as i64)]);
    let sql = format!("SELECT r.seq FROM resource r WHERE {filter} AND {member} ORDER BY {order} LIMIT ? OFFSET ?");
    let sql = number(&sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    let rows: Vec<i64> = c.query(&sql, &refs(&values)).pg()?.iter().map(|r| r.get(0)).collect();
    // Fewer: the page goes on into the next group, which the general SQL places.
    Ok((rows.len() == want).then_some(rows))
}

/// The matches from which a walk that probes each row it reads in SQL is tried: one that
/// needs `need` matches among n reads about need × live / n rows (live: the resources of
/// the type), where the sorted page (`indexonly::sorted_page`) reads the n matches' sort
/// values, each costing about a [`PROBED_ROW_COST`]th of a probed row. So from
/// √(`PROBED_ROW_COST` × need × live). At 937k resources (429,600 Observations, need 51):
/// 5,234. `code=…&_sort=-date` (`explain`, two runs each): a code of 4,230 rows walked
/// 42–49 ms, sorted 27–30 ms; of 5,680 rows walked 30 ms, sorted 36 ms; of 27,980 rows
/// walked 15 ms, sorted 80 ms.
fn probed_walk_from(need: usize, live: u64) -> i64 {
    (PROBED_ROW_COST * need as f64 * live as f64).sqrt().ceil() as i64
}

/// See [`probed_walk_from`].
const PROBED_ROW_COST: f64 = 1.25;

/// What the clauses that are index rows (`query::is_rows_clause`) say before a filtered walk.
struct Fewest {
    /// The rows of the rarest but the one read whole, each counted up to `cap` (the first
    /// up to `known::read_max`); `None` when no other clause can be counted that way.
    rows: Option<i64>,
    /// The first one's matches, when they were few enough to read whole.
    known: Option<Known>,
    /// PostgreSQL's estimate of the first one's rows, when it expected more than are read
    /// whole (`known::Rows::estimate`).
    estimate: Option<f64>,
}

/// Counts the clauses that are index rows (date windows first) until one has fewer than
/// `cap`; with `read_whole` (`known::read_max`), the first is read whole when it has at
/// most that many rows.
fn fewest_rows(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    ty: &str,
    cap: i64,
    read_whole: Option<usize>,
    live: u64,
) -> Result<Fewest, StoreError> {
    let mut fewest = i64::MAX;
    let mut estimate = None;
    let mut known = None;
    let mut read_first = false;
    let window = |(_, c): &(usize, &tsunagu_store::Clause)| crate::query::is_date_window(c);
    let clauses = q.clauses.iter().enumerate();
    for (at, clause) in clauses.clone().filter(window).chain(clauses.filter(|c| !window(c))) {
        if !crate::query::is_rows_clause(clause) {
            continue;
        }
        let n = if let (Some(max), false) = (read_whole, read_first) {
            read_first = true;
            let rows = known::read(c, clause, ty, max)?;
            estimate = rows.estimate;
            if let Some(seqs) = rows.seqs {
                // Judged by its own measure (`Known::worth_walking`).
                known = Some(Known::new(q, at, seqs, live));
                continue;
            }
            // More than were read (or found lately): enough, unless the cap is higher.
            if rows.count >= cap {
                rows.count
            } else {
                capped_rows(c, clause, ty, cap)?
            }
        } else {
            capped_rows(c, clause, ty, cap)?
        };
        fewest = fewest.min(n);
        if fewest < cap {
            break;
        }
    }
    if let Some(k) = &known {
        tsunagu_store::trace::plan(|| format!("{} matches at most, read whole", k.len()));
    }
    if fewest == i64::MAX {
        if known.is_none() {
            tsunagu_store::trace::plan(|| {
                format!("no condition counted: a walk of {UNCOUNTED_WALK_MAX_ROWS} rows at most")
            });
        }
        return Ok(Fewest { rows: None, known, estimate });
    }
    tsunagu_store::trace::plan(|| format!("about {fewest} matches at most (walk from {cap})"));
    Ok(Fewest { rows: Some(fewest), known, estimate })
}

/// The index rows of `clause`, one `query::is_rows_clause` accepts, counted up to `cap`.
fn capped_rows(
    c: &mut Cached<'_, impl GenericClient>,
    clause: &tsunagu_store::Clause,
    ty: &str,
    cap: i64,
) -> Result<i64, StoreError> {
    Ok(crate::read::capped_rows(c, clause, ty, cap)?.expect("a rows clause"))
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{
        Clause, Condition, IndexEntry, IndexKind, IndexValue, SearchQuery, SortKey, SortParam, Store, SystemMatch, Test,
    };

    use crate::PostgresStore;

    /// `n` Observations `o0`… with a code (`code(i)`, system `urn:s`), a date of one day,
    /// the dates not in write order, so that a walk's order is its own, and a status
    /// (`preliminary` for every third, else `final`).
    fn put_dated_codes(store: &PostgresStore, n: i64, code: impl Fn(i64) -> &'static str) {
        let day = 86_400_000i64;
        let observations: Vec<(&str, String, Vec<IndexEntry>)> = (0..n)
            .map(|i| {
                let lo = (i * 7919 % n) * day;
                let entries = vec![
                    IndexEntry {
                        param: "code".into(),
                        value: IndexValue::Token { system: Some("urn:s".into()), code: code(i).into(), display: None },
                    },
                    IndexEntry { param: "date".into(), value: IndexValue::Date { lo, hi: lo + day - 1 } },
                    IndexEntry {
                        param: "status".into(),
                        value: IndexValue::Token {
                            system: None,
                            code: if i % 3 == 0 { "preliminary" } else { "final" }.into(),
                            display: None,
                        },
                    },
                ];
                ("Observation", format!("o{i}"), entries)
            })
            .collect();
        crate::test_writes::put_first(store, &observations);
    }

    /// A filtered walk's later batches are sized by the matches its earlier ones met: one
    /// match in ten, a page of 50 reads about 500 rows, not 2,000; the page is the general
    /// SQL's.
    #[test]
    fn later_batches_follow_the_matches_met() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        put_dated_codes(&store, 2_000, |i| if i % 10 == 3 { "a" } else { "b" });
        let test = Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some("a".into()) };
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: "code".into(), test, negate: false }] }],
            sort: vec![SortKey {
                param: SortParam::Index { param: "date".into(), kind: IndexKind::Date },
                descending: true,
            }],
            count: 50,
            ..Default::default()
        };
        let ids = |store: &PostgresStore| -> Vec<String> {
            store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect()
        };
        store.set_sort_walk(None);
        let general = ids(&store);
        store.set_sort_walk(Some(0));
        assert_eq!(ids(&store), general);
        let explained = store.explain(&q).unwrap();
        let read: usize = explained
            .plans
            .iter()
            .find_map(|p| p.strip_prefix("sort walk read ")?.strip_suffix(" index rows")?.parse().ok())
            .unwrap_or_else(|| panic!("{:?}", explained.plans));
        assert!((510..=1_000).contains(&read), "{read} rows read: {:?}", explained.plans);
    }

    /// A condition with fewer rows than `WALK_FROM` but read whole is walked when that
    /// costs less than the general plan (`known.rs`): the walk tests it in the process and
    /// the other conditions (here a status of 2,000 rows) in SQL on its matches alone; a code met late in the walk (the
    /// oldest dates, newest first) stops the walk at its bound for the general plan. Every
    /// page equals the general plan's.
    #[test]
    fn a_condition_read_whole_is_walked_while_that_costs_less() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        let n = 3_000;
        // The day of `o{i}` is `i * 7919 % n` (`put_dated_codes`): "old" are the 200 oldest.
        put_dated_codes(&store, n, |i| match i {
            _ if i * 7919 % n < 200 => "old",
            _ if i % 4 == 1 => "a",
            _ => "b",
        });
        let code = |c: &str| Clause {
            any: vec![Condition::Index {
                param: "code".into(),
                test: Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some(c.into()) },
                negate: false,
            }],
        };
        let is_final = Clause {
            any: vec![Condition::Index {
                param: "status".into(),
                test: Test::Token { system: SystemMatch::Any, code: Some("final".into()) },
                negate: false,
            }],
        };
        let query = |clauses: Vec<Clause>, descending: bool, offset: usize| SearchQuery {
            resource_type: Some("Observation".into()),
            clauses,
            sort: vec![SortKey { param: SortParam::Index { param: "date".into(), kind: IndexKind::Date }, descending }],
            count: 10,
            offset,
            ..Default::default()
        };
        let ids =
            |q: &SearchQuery| -> Vec<String> { store.search(q).unwrap().resources.into_iter().map(|v| v.id).collect() };
        let cases = [
            (vec![code("a")], true, "sort walk read"),
            (vec![code("a"), is_final.clone()], false, "sort walk read"),
            (vec![code("old")], true, "sort walk given up after"),
        ];
        for (clauses, descending, plan) in cases {
            for offset in [0, 40] {
                let q = query(clauses.clone(), descending, offset);
                store.set_sort_walk(None);
                let general = ids(&q);
                assert_eq!(general.len(), 10);
                store.set_sort_walk(Some(super::WALK_FROM as u64));
                assert_eq!(ids(&q), general, "{clauses:?}, offset {offset}");
                let plans = store.explain(&q).unwrap().plans.join("; ");
                assert!(plans.contains("read whole") && plans.contains(plan), "{plans}");
            }
        }
    }

    /// Every id of `ty` sorted by `key`, read page by page (pages of 3 through the walk),
    /// and the plans explained for the first page.
    fn sorted_ids(store: &PostgresStore, key: SortKey, n: usize) -> (Vec<String>, Vec<String>) {
        let mut q =
            SearchQuery { resource_type: Some("Observation".into()), sort: vec![key], count: 3, ..Default::default() };
        let plans = store.explain(&q).unwrap().plans;
        let mut ids = Vec::new();
        while q.offset < n + 3 {
            ids.extend(store.search(&q).unwrap().resources.into_iter().map(|v| v.id));
            q.offset += 3;
        }
        (ids, plans)
    }

    fn observations(
        entries: impl Fn(usize) -> Vec<IndexEntry>,
        n: usize,
    ) -> Vec<(&'static str, String, Vec<IndexEntry>)> {
        (0..n).map(|i| ("Observation", format!("o{i:02}"), entries(i))).collect()
    }

    /// A token sort walks the index in its order (code, system, `seq`) while each code met
    /// has one system; a code in two systems, whose rows that order interleaves, is walked
    /// by code and `seq` instead: either way each code's resources come in write order.
    /// A quantity sort beside a required code walks that code's values in the composite
    /// pairing them (`sort_within`): the same pages as the general plan, in both
    /// directions, with the code's system named or not, and its values in two systems,
    /// among other codes' values and resources of the code without one.
    #[test]
    fn a_paired_quantity_walk_pages_as_the_general_plan() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        let n = 60;
        // Codes a (systems urn:1 and urn:2), b and c; no value for every seventh.
        let code = |i: usize| ["a", "b", "a", "c"][i % 4];
        let system = |i: usize| if i % 8 == 2 { "urn:2" } else { "urn:1" };
        let value = |i: usize| ((i * 37) % 23) as f64 - 5.0;
        let entries = |i: usize| {
            let token = IndexValue::Token { system: Some(system(i).into()), code: code(i).into(), display: None };
            let mut e = vec![IndexEntry { param: "code".into(), value: token }];
            if i % 7 != 3 {
                let quantity = IndexValue::Quantity { system: None, code: Some("cm".into()), value: value(i) };
                e.push(IndexEntry { param: "value-quantity".into(), value: quantity });
                let pair = IndexValue::Composite {
                    system: Some(system(i).into()),
                    code: code(i).into(),
                    second: Box::new(IndexValue::Quantity { system: None, code: None, value: value(i) }),
                };
                e.push(IndexEntry { param: "code-value-quantity".into(), value: pair });
            }
            e
        };
        crate::test_writes::put_first(&store, &observations(entries, n));
        for (system, named) in [(SystemMatch::Any, None), (SystemMatch::Is("urn:1".into()), Some("urn:1"))] {
            for descending in [false, true] {
                let test = Test::Token { system: system.clone(), code: Some("a".into()) };
                let mut q = SearchQuery {
                    resource_type: Some("Observation".into()),
                    clauses: vec![Clause { any: vec![Condition::Index { param: "code".into(), test, negate: false }] }],
                    sort: vec![SortKey {
                        param: SortParam::Index { param: "value-quantity".into(), kind: IndexKind::Quantity },
                        descending,
                    }],
                    sort_within: Some(tsunagu_store::SortWithin {
                        composite: "code-value-quantity".into(),
                        code: "a".into(),
                        system: named.map(String::from),
                    }),
                    count: 4,
                    ..Default::default()
                };
                let mut pages = Vec::new();
                for walk in [Some(0), None] {
                    store.set_sort_walk(walk);
                    let plans = store.explain(&q).unwrap().plans;
                    let walked = plans.iter().any(|p| p.contains("reads code-value-quantity of code a"));
                    assert_eq!(walked, walk.is_some(), "{plans:?}");
                    let mut ids = Vec::new();
                    q.offset = 0;
                    while q.offset < n {
                        ids.extend(store.search(&q).unwrap().resources.into_iter().map(|v| v.id));
                        q.offset += 4;
                    }
                    pages.push(ids);
                }
                assert!(pages[0].len() > 20, "{pages:?}");
                assert_eq!(pages[0], pages[1], "{named:?}, descending {descending}");
            }
        }
    }

    #[test]
    fn a_token_sort_orders_a_code_of_two_systems_by_write_order() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let n = 30;
        let code = |i: usize| ["b", "a", "c"][i % 3];
        for split in [false, true] {
            let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
            let system = |i: usize| if split && code(i) == "a" && i.is_multiple_of(2) { "urn:2" } else { "urn:1" };
            let token = |i: usize| IndexEntry {
                param: "status".into(),
                value: IndexValue::Token { system: Some(system(i).into()), code: code(i).into(), display: None },
            };
            crate::test_writes::put_first(&store, &observations(|i| vec![token(i)], n));
            for descending in [false, true] {
                let key =
                    SortKey { param: SortParam::Index { param: "status".into(), kind: IndexKind::Token }, descending };
                let (got, plans) = sorted_ids(&store, key, n);
                let mut want: Vec<usize> = (0..n).collect();
                want.sort_by_key(|&i| (code(i), i));
                if descending {
                    want.reverse();
                }
                let want: Vec<String> = want.iter().map(|i| format!("o{i:02}")).collect();
                assert_eq!(got, want, "split {split}, descending {descending}");
                let fell_back = plans.iter().any(|p| p.contains("several systems"));
                assert!(plans.iter().any(|p| p.starts_with("sort walk")), "{plans:?}");
                assert_eq!(fell_back, split, "{plans:?}");
            }
        }
    }

    /// A reference sort walks the index by target id, then type, then `seq`, as the sort
    /// value orders (id, type, reference); a target referred to in two ways (relative and
    /// absolute) is left to the general SQL. Resources without one come last.
    #[test]
    fn a_reference_sort_walks_target_ids_then_types() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let n = 30;
        let target = |i: usize, absolute: bool| -> Option<(String, &'static str, String)> {
            let (id, ty) = (format!("p{}", i % 4), if i.is_multiple_of(5) { "Group" } else { "Patient" });
            let url =
                if absolute && i == 7 { format!("http://elsewhere.jp/fhir/{ty}/{id}") } else { format!("{ty}/{id}") };
            (i != 11).then_some((id, ty, url))
        };
        for absolute in [false, true] {
            let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
            let entries = |i: usize| {
                target(i, absolute)
                    .map(|(id, ty, url)| IndexEntry {
                        param: "subject".into(),
                        value: IndexValue::Reference { target_type: Some(ty.into()), target_id: Some(id), url },
                    })
                    .into_iter()
                    .collect()
            };
            crate::test_writes::put_first(&store, &observations(entries, n));
            for descending in [false, true] {
                let key = SortKey {
                    param: SortParam::Index { param: "subject".into(), kind: IndexKind::Reference },
                    descending,
                };
                let (got, plans) = sorted_ids(&store, key, n);
                let mut valued: Vec<usize> = (0..n).filter(|&i| target(i, absolute).is_some()).collect();
                valued.sort_by_key(|&i| (target(i, absolute), i));
                if descending {
                    valued.reverse();
                }
                // Without a value: last, in write order in the sort's direction.
                valued.push(11);
                let want: Vec<String> = valued.iter().map(|i| format!("o{i:02}")).collect();
                assert_eq!(got, want, "absolute {absolute}, descending {descending}");
                let walked = plans.iter().any(|p| p.starts_with("sort walk read"));
                assert_eq!(walked, !absolute, "{plans:?}");
            }
        }
    }

    /// A filtered sort walk whose condition cannot be counted (a negation) is tried for at
    /// most `UNCOUNTED_WALK_MAX_ROWS` index rows: a common one fills its page from the walk,
    /// a rare one gives way to the general plan; both answer as the general plan does.
    #[test]
    fn uncounted_conditions_walk_a_bounded_number_of_rows() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        put_dated_codes(&store, 6_000, |i| if i % 500 == 7 { "rare" } else { "common" });
        let not = |code: &str| SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause {
                any: vec![Condition::Index {
                    param: "code".into(),
                    test: Test::Token { system: SystemMatch::Any, code: Some(code.into()) },
                    negate: true,
                }],
            }],
            sort: vec![SortKey {
                param: SortParam::Index { param: "date".into(), kind: IndexKind::Date },
                descending: true,
            }],
            count: 10,
            ..Default::default()
        };
        let ids = |store: &PostgresStore, q: &SearchQuery| -> Vec<String> {
            store.search(q).unwrap().resources.into_iter().map(|v| v.id).collect()
        };
        for (q, walked) in [(not("rare"), true), (not("common"), false)] {
            store.set_sort_walk(None);
            let general = ids(&store, &q);
            store.set_sort_walk(Some(super::WALK_FROM as u64));
            assert_eq!(ids(&store, &q), general);
            let plans = store.explain(&q).unwrap().plans.join("; ");
            assert!(plans.contains("no condition counted"), "{plans}");
            assert_eq!(plans.contains("sort walk read"), walked, "{plans}");
            assert_eq!(plans.contains("sort walk given up after"), !walked, "{plans}");
        }
    }
}
