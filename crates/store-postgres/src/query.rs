//! SQL for searches: the same conditions as the SQLite store's `sqlite_query`, on the
//! same table layout, so that both answer every query alike. Every value is bound, never
//! spliced. Text columns use the "C" collation, so comparisons and sorts are by bytes as
//! in SQLite, and `ILIKE` there folds ASCII letters only, as SQLite's `LIKE` does.

use crate::value::V;
use tsunagu_store::{Clause, Condition, IndexKind, RangeOp, SearchQuery, SortKey, SortParam, SystemMatch, Test};

/// How many leading characters of a string value `idx_string.norm_key` holds.
const NORM_KEY_CHARS: usize = 200;

/// How many leading characters of a long-able text column (token code and system, URI,
/// reference target id and type, composite first component) its key column `<col>_key`
/// holds, which the lookup indexes hold instead of the column (schema version 2): a
/// B-tree entry holds at most about 2,700 bytes.
pub(crate) const KEY_CHARS: usize = 128;

/// Whether `v` is shorter than a key can be (in bytes, so also in characters): then a key
/// equals `v` only when its whole value does, and the key alone decides (an index-only
/// scan, as before keys); a longer `v` needs the whole value tested too.
fn fits_key(v: &str) -> bool {
    v.len() < KEY_CHARS
}

/// `col = ?` on an indexed long-able column: its key (the index), and for a value as long
/// as a key the whole value after.
pub(crate) fn keyed_eq(col: &str, v: &str, values: &mut Vec<V>) -> String {
    values.push(V::Text(v.to_string()));
    if fits_key(v) {
        return format!("{col}_key = ?");
    }
    values.push(V::Text(v.to_string()));
    format!("{col}_key = left(?, {KEY_CHARS}) AND {col} = ?")
}

/// `col = ?` on `col`, through its key when `keyed` (the column's own table indexes it).
fn eq(col: &str, v: &str, keyed: bool, values: &mut Vec<V>) -> String {
    if keyed {
        keyed_eq(col, v, values)
    } else {
        values.push(V::Text(v.to_string()));
        format!("{col} = ?")
    }
}

/// `col = ''` (an absent optional part), through the column's key when `keyed`: a key is
/// empty exactly when its value is.
fn empty(col: &str, keyed: bool) -> String {
    if keyed {
        format!("{col}_key = ''")
    } else {
        format!("{col} = ''")
    }
}

/// Date values up to this wide live only in `idx_date`; wider ones also in `idx_date_wide`.
pub(crate) const DAY_MS: i64 = 86_400_000;

pub(crate) fn table(kind: IndexKind) -> &'static str {
    match kind {
        IndexKind::Token => "idx_token",
        IndexKind::String => "idx_string",
        IndexKind::Date => "idx_date",
        IndexKind::Number => "idx_number",
        IndexKind::Quantity => "idx_quantity",
        IndexKind::Reference => "idx_reference",
        IndexKind::Uri => "idx_uri",
        IndexKind::Composite => "idx_composite",
    }
}

pub(crate) fn test_kind(t: &Test) -> IndexKind {
    match t {
        Test::Token { .. } | Test::TokenText(_) | Test::TokenIn(_) => IndexKind::Token,
        Test::StringStarts(_) | Test::StringContains(_) | Test::StringExact(_) => IndexKind::String,
        Test::Date { .. } => IndexKind::Date,
        Test::Number { .. } => IndexKind::Number,
        Test::Quantity { .. } => IndexKind::Quantity,
        Test::Reference { .. } => IndexKind::Reference,
        Test::UriExact(_) | Test::UriBelow(_) | Test::UriAbove(_) => IndexKind::Uri,
        Test::Composite { .. } => IndexKind::Composite,
    }
}

/// How conditions on index rows are tested.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Probe {
    /// Every row of the condition collected: `alias.seq IN (SELECT seq …)`.
    No,
    /// A probe of the rows of `alias` itself (see [`probe_clause`]).
    Each,
    /// As `Each`, but a `_has` tests each reference probed against its source conditions'
    /// rows collected once per statement (a hash): for source conditions of thousands of
    /// rows, where probing those rows for each reference read them again for every one of
    /// a Patient's references (143 each at 937k resources).
    EachHashingHas,
}

impl Probe {
    /// Whether the rows of `alias` itself are probed.
    pub(crate) fn on(self) -> bool {
        self != Probe::No
    }
}

/// `alias.current AND NOT alias.deleted AND …` for a query on `resource` rows aliased `alias`.
pub(crate) fn where_clause(q: &SearchQuery, alias: &str, values: &mut Vec<V>) -> String {
    filter(q, alias, values, Probe::No)
}

/// As [`where_clause`], with each condition on index rows tested on the resource's own
/// rows (`(SELECT 1 … WHERE seq = r.seq … LIMIT 1) IS NOT NULL`, through the `(seq, param)`
/// indexes): for the write-order walk past the ceiling (`ceiling.rs`), which tests a few
/// hundred resources at a time. `NOT IN (…)` would collect every row of a negated
/// condition first, for each batch, where the probe reads the batch's own.
pub(crate) fn probe_clause(q: &SearchQuery, alias: &str, values: &mut Vec<V>, probe: Probe) -> String {
    filter(q, alias, values, probe)
}

/// The query's clauses alone, each condition tested as in [`probe_clause`] on the `seq` of
/// `alias`, which need be no resource (a walk's index rows); `None` when a condition reads
/// another column of the resource (`_id`, `_lastUpdated`, `_has`, a type), or there is none.
pub(crate) fn seq_probe(q: &SearchQuery, alias: &str, values: &mut Vec<V>) -> Option<String> {
    if q.clauses.is_empty() || !q.clauses.iter().all(|c| c.any.iter().all(on_seq)) {
        return None;
    }
    let parts: Vec<String> =
        q.clauses.iter().map(|c| clause_sql(c, q.resource_type.as_deref(), alias, values, Probe::Each)).collect();
    Some(parts.join(" AND "))
}

/// Whether a condition is a test of index rows by `seq` alone, so that it holds for a
/// `seq` whether or not a resource row is at hand: not `_id`, `_lastUpdated`, `_has` or a type.
pub(crate) fn on_seq(c: &Condition) -> bool {
    !matches!(c, Condition::Id(_) | Condition::LastUpdated { .. } | Condition::Has { .. } | Condition::ResourceType(_))
}

/// The index rows of a clause that is index rows ([`is_rows_clause`]: a positive index
/// condition, several on one table, a compartment, a date window), counted up to `cap`
/// (index-only scans of at most `cap` entries); `None` for other clauses.
pub(crate) fn capped_rows_sql(c: &Clause, ty: &str, cap: i64, values: &mut Vec<V>) -> Option<String> {
    if !is_rows_clause(c) {
        return None;
    }
    let rows = clause_rows_select(c, ty, values);
    values.push(V::Int(cap));
    Some(format!("SELECT count(*) FROM ({rows} LIMIT ?) x"))
}

fn filter(q: &SearchQuery, alias: &str, values: &mut Vec<V>, probe: Probe) -> String {
    let mut sql = format!("{alias}.current AND NOT {alias}.deleted");
    if let Some(t) = &q.resource_type {
        sql.push_str(&format!(" AND {alias}.type = ?"));
        values.push(V::Text(t.clone()));
    }
    for clause in &q.clauses {
        sql.push_str(" AND ");
        sql.push_str(&clause_sql(clause, q.resource_type.as_deref(), alias, values, probe));
    }
    sql
}

pub(crate) fn clause_sql(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>, probe: Probe) -> String {
    if c.any.is_empty() {
        return "FALSE".into();
    }
    if let Some(sql) = alternatives_sql(c, ty, alias, values, probe) {
        return sql;
    }
    let parts: Vec<String> = c.any.iter().map(|cond| condition_sql(cond, ty, alias, values, probe)).collect();
    format!("({})", parts.join(" OR "))
}

/// A clause of several positive conditions on one index table (`code=a,b,c`, up to the
/// 1,000 values `max_values_per_parameter` allows) as one membership test whose rows match
/// any of them, which PostgreSQL reads as one bitmap OR of index scans: an OR of one
/// membership per value made a subplan each, and 1,000 of them under a sort ran 20 s
/// without heeding `statement_timeout`. `None` for other clauses.
fn alternatives_sql(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>, probe: Probe) -> Option<String> {
    let tests: Vec<(&String, &Test)> = c
        .any
        .iter()
        .map(|cond| match cond {
            Condition::Index { param, test, negate: false } => Some((param, test)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let tbl = table(test_kind(tests.first()?.1));
    if tests.len() < 2 || tests.iter().any(|(_, t)| table(test_kind(t)) != tbl) {
        return None;
    }
    Some(member(alias, false, tbl, &alternative_rows(&tests, row_type(ty, probe), values), probe.on()))
}

/// The type an index row condition names: none in a probe by `seq`, whose rows are all of
/// the probed resource's own type. Without it the probe goes through the `(seq, param)`
/// index, which holds the columns the tests read (schema V9); with it, PostgreSQL chose
/// the index led by the type, parameter and value, three times as slow a probe (a sort
/// walk's 1,096 rows: 4.0 ms, 1.8 ms by `seq`, 937k resources).
fn row_type(ty: Option<&str>, probe: Probe) -> Option<&str> {
    if probe.on() {
        None
    } else {
        ty
    }
}

/// `((row test 1) OR (row test 2) …)` of index conditions on one table.
fn alternative_rows(tests: &[(&String, &Test)], ty: Option<&str>, values: &mut Vec<V>) -> String {
    let arms: Vec<String> =
        tests.iter().map(|(param, test)| format!("({})", index_row(ty, param, test, values))).collect();
    format!("({})", arms.join(" OR "))
}

/// Whether a clause is the parser's date window (`date=ge…&date=lt…`), there to be read
/// before its bounds, each of which may match half the table.
pub(crate) fn is_date_window(c: &Clause) -> bool {
    matches!(c.any.as_slice(), [Condition::DateWindow { .. }])
}

/// Whether a clause's matches are exactly the resources of some index rows (one positive
/// index condition, several on one table, a compartment, a date window), which
/// [`clause_rows_select`] selects.
pub(crate) fn is_rows_clause(c: &Clause) -> bool {
    match c.any.as_slice() {
        [Condition::Compartment { params, .. }] => !params.is_empty(),
        [Condition::DateWindow { .. }] => true,
        [Condition::Index { test, negate: false, .. }, rest @ ..] => {
            let tbl = table(test_kind(test));
            rest.iter()
                .all(|c| matches!(c, Condition::Index { test, negate: false, .. } if table(test_kind(test)) == tbl))
        }
        _ => false,
    }
}

/// `SELECT seq FROM …`: the index rows of a clause [`is_rows_clause`] accepts, of type `ty`.
pub(crate) fn clause_rows_select(c: &Clause, ty: &str, values: &mut Vec<V>) -> String {
    match c.any.as_slice() {
        [Condition::Index { param, test, .. }] => {
            let cond = index_row(Some(ty), param, test, values);
            format!("SELECT seq FROM {} WHERE {cond}", table(test_kind(test)))
        }
        [Condition::Compartment { params, target_type, target_id }] => {
            values.push(V::Text(ty.to_string()));
            let cond = compartment_rows(params, target_type, target_id.as_deref(), values);
            format!("SELECT seq FROM idx_reference WHERE type = ? AND ({cond})")
        }
        [Condition::DateWindow { param, lo, hi }] => {
            let (narrow, wide) = date_window_rows(Some(ty), param, *lo, *hi, values);
            date_window_select(&narrow, &wide)
        }
        conds => {
            let tests: Vec<(&String, &Test)> = conds
                .iter()
                .filter_map(|cond| match cond {
                    Condition::Index { param, test, .. } => Some((param, test)),
                    _ => None,
                })
                .collect();
            let tbl = tests.first().map_or("idx_token", |(_, t)| table(test_kind(t)));
            format!("SELECT seq FROM {tbl} WHERE {}", alternative_rows(&tests, Some(ty), values))
        }
    }
}

/// The `idx_reference` rows of a compartment: one of its (type, parameter) pairs naming
/// the compartment's resource (or any of its type).
fn compartment_rows(
    params: &[(String, String)],
    target_type: &str,
    target_id: Option<&str>,
    values: &mut Vec<V>,
) -> String {
    let pairs = if params.len() > MAX_OR_PAIRS {
        // A type name has no space, so "type param" names one pair.
        values.push(V::TextArray(params.iter().map(|(t, p)| format!("{t} {p}")).collect()));
        "type || ' ' || param = ANY(?)".to_string()
    } else {
        for (t, p) in params {
            values.push(V::Text(t.clone()));
            values.push(V::Text(p.clone()));
        }
        let pairs: Vec<&str> = params.iter().map(|_| "(type = ? AND param = ?)").collect();
        format!("({})", pairs.join(" OR "))
    };
    let type_test = keyed_eq("target_type", target_type, values);
    let id_test = match target_id {
        Some(id) => format!(" AND {}", keyed_eq("target_id", id, values)),
        None => String::new(),
    };
    format!("{pairs} AND {type_test}{id_test}")
}

/// The most (type, parameter) pairs of a compartment written as an `OR` of equalities,
/// which PostgreSQL plans arm by arm: the 70 of every patient's compartment
/// (`Patient/$everything`) took 9–14 ms to plan a statement that ran in 0.4 ms. More are
/// one test of the row's pair against an array, which PostgreSQL hashes (as a semi-join
/// with the pairs unnested, a batch of 64 resources tested in 1.5 ms, against 0.2 ms).
const MAX_OR_PAIRS: usize = 8;

/// The conditions on `idx_date` rows (narrow values) and `idx_date_wide` rows of a date
/// window, in that order in `values`; of every type without `ty` (a probe's, by `seq`).
fn date_window_rows(ty: Option<&str>, param: &str, lo: i64, hi: i64, values: &mut Vec<V>) -> (String, String) {
    // Narrow values overlapping the window start at most a day before it.
    let narrow = format!("{}param = ? AND lo >= ? AND lo < ? AND hi > ?", type_filter(ty, values));
    values.extend([V::Text(param.into()), V::Int(lo.saturating_sub(DAY_MS)), V::Int(hi), V::Int(lo)]);
    let wide = format!("{}param = ? AND lo < ? AND hi > ?", type_filter(ty, values));
    values.extend([V::Text(param.into()), V::Int(hi), V::Int(lo)]);
    (narrow, wide)
}

fn date_window_select(narrow: &str, wide: &str) -> String {
    format!("SELECT seq FROM idx_date WHERE {narrow} UNION SELECT seq FROM idx_date_wide WHERE {wide}")
}

/// `alias.seq [NOT] IN (SELECT seq FROM {table} WHERE {cond})`, or with `probe` the same
/// test as a probe of the rows of `alias` itself. `cond` holds its own `?`s only;
/// the probe adds none, so the values stay in order.
///
/// The probe is a scalar subquery, not `EXISTS`: PostgreSQL may run an `EXISTS` as a hash
/// of every row of the condition, which it costs far too low. A walk's batch of 400 rows
/// tested for `category=laboratory` hashed its 26,528 rows, 9.5 ms, against 0.8 ms probed.
/// Walks test conditions of thousands of rows (`sortwalk.rs` reads rarer ones whole) on
/// batches of hundreds, where probing is the cheaper of the two.
fn member(alias: &str, negate: bool, table: &str, cond: &str, probe: bool) -> String {
    let not = if negate { "NOT " } else { "" };
    if probe {
        let is = if negate { "IS NULL" } else { "IS NOT NULL" };
        format!("(SELECT 1 FROM {table} WHERE seq = {alias}.seq AND {cond} LIMIT 1) {is}")
    } else {
        format!("{alias}.seq {not}IN (SELECT seq FROM {table} WHERE {cond})")
    }
}

/// An index row of `param` (of type `ty`, when given) that passes `test`, in its kind's
/// own table: `type = ? AND param = ? AND …`.
/// A `:text` test also names the codes whose display matches, from `idx_token_text`, so
/// that only their rows are read: as an array (computed once) that `idx_token_key` is
/// searched by, which PostgreSQL does even inside an `OR` of alternatives, where an
/// `IN (subquery)` was only a filter on every row of the parameter.
pub(crate) fn index_row(ty: Option<&str>, param: &str, test: &Test, values: &mut Vec<V>) -> String {
    let tf = type_filter(ty, values);
    values.push(V::Text(param.to_string()));
    let row = format!("{tf}param = ? AND {}", test_sql(test, "value", values));
    let (Test::TokenText(_), Some(ty)) = (test, ty) else { return row };
    values.push(V::Text(ty.to_string()));
    values.push(V::Text(param.to_string()));
    let like = test_sql(test, "value", values);
    format!(
        "{row} AND code_key = ANY (ARRAY(SELECT DISTINCT left(code, {KEY_CHARS}) FROM idx_token_text \
         WHERE type = ? AND param = ? AND {like}))"
    )
}

fn type_filter(ty: Option<&str>, values: &mut Vec<V>) -> String {
    match ty {
        Some(t) => {
            values.push(V::Text(t.to_string()));
            "type = ? AND ".into()
        }
        None => String::new(),
    }
}

fn condition_sql(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>, probe: Probe) -> String {
    match c {
        Condition::Id(id) => {
            values.push(V::Text(id.clone()));
            format!("{alias}.id = ?")
        }
        Condition::LastUpdated { lo, hi } => {
            values.push(V::Int(*lo));
            values.push(V::Int(*hi));
            format!("({alias}.last_updated >= ? AND {alias}.last_updated < ?)")
        }
        Condition::Index { param, test, negate } => {
            let cond = index_row(row_type(ty, probe), param, test, values);
            // Without a type (system level; `$everything`'s care dates) a half-open date
            // test's rows are those of every type, read whole without an index that
            // leads with the parameter: each candidate is probed by its `seq` instead.
            let every_type = ty.is_none() && !*negate && matches!(test, Test::Date { op, .. } if op.half_open());
            member(alias, *negate, table(test_kind(test)), &cond, probe.on() || every_type)
        }
        Condition::DateWindow { param, lo, hi } => {
            // Without a type a window matches nothing, as in the SQLite store (the parser
            // makes windows for a type's searches alone).
            let window_type = if ty.is_some() { row_type(ty, probe) } else { Some("") };
            let (narrow, wide) = date_window_rows(window_type, param, *lo, *hi, values);
            if probe.on() {
                let (narrow, wide) = (
                    member(alias, false, "idx_date", &narrow, true),
                    member(alias, false, "idx_date_wide", &wide, true),
                );
                return format!("({narrow} OR {wide})");
            }
            format!("{alias}.seq IN ({})", date_window_select(&narrow, &wide))
        }
        Condition::Missing { param, kind, missing } => {
            let tf = type_filter(row_type(ty, probe), values);
            values.push(V::Text(param.clone()));
            member(alias, *missing, table(*kind), &format!("{tf}param = ?"), probe.on())
        }
        Condition::Chain { param, target_type, query } => {
            let tf = type_filter(ty, values);
            values.push(V::Text(param.clone()));
            let target = target_type.clone();
            let target_type = keyed_eq("target_type", target_type, values);
            // Aliases grow with nesting so inner queries never shadow outer ones.
            let t = format!("{alias}t");
            if probe.on() {
                // Each reference of the resource to its target, found by type and id, and
                // the target tested on its own rows: correlated throughout, so that a walk
                // tests a batch's rows (1 ms for 64) instead of collecting every reference to
                // every target first (18,389 for `subject:Patient.gender=female`, 10 ms).
                // The target's tests under `IS TRUE`, which PostgreSQL does not turn into
                // joins (it drove them from the target's index rows, one estimated for 133).
                let x = format!("{alias}x");
                values.push(V::Text(target));
                let inner = probe_clause(query, &t, values, Probe::Each);
                return format!(
                    "EXISTS (SELECT 1 FROM idx_reference {x} WHERE {x}.seq = {alias}.seq AND {tf}param = ? \
                     AND {target_type} AND EXISTS (SELECT 1 FROM resource {t} WHERE {t}.type = ? \
                     AND {t}.id = {x}.target_id AND ({inner}) IS TRUE))"
                );
            }
            let inner = where_clause(query, &t, values);
            // The target's id through the key of `target_id` too (the index), then whole.
            let cond = format!(
                "{tf}param = ? AND {target_type} AND (target_id_key, target_id) IN \
                 (SELECT left({t}.id, {KEY_CHARS}), {t}.id FROM resource {t} WHERE {inner})"
            );
            member(alias, false, "idx_reference", &cond, probe.on())
        }
        Condition::Has { .. } => has_sql(c, ty, alias, values, probe),
        Condition::FullText { narrative_only, query, negate } => {
            match crate::fulltext::row_condition(query, *narrative_only, values) {
                Some(test) => member(alias, *negate, "idx_fulltext", &test, probe.on()),
                // Nothing searchable: matches nothing, as an FTS5 query without terms.
                None if *negate => "TRUE".into(),
                None => "FALSE".into(),
            }
        }
        Condition::Compartment { params, target_type, target_id } => {
            if params.is_empty() {
                return "FALSE".into();
            }
            let rows = compartment_rows(params, target_type, target_id.as_deref(), values);
            member(alias, false, "idx_reference", &rows, probe.on())
        }
        Condition::ResourceType(t) => {
            values.push(V::Text(t.clone()));
            format!("{alias}.type = ?")
        }
    }
}

/// `_has`: the resource is the target of a reference of `param` from a resource of
/// `source_type` that passes `query`. Index rows exist only for current, live versions, so
/// where each condition of `query` tests index rows by `seq`, it is tested on the
/// reference's own `seq` and no source resource is read (that read every live source of
/// the type: 429,595 Observations for `Patient?_has:Observation:patient:code=…` at 937k
/// resources). Probed (a walk's batch), the resource's own references are read through the
/// reference key, and the first that passes ends the test; otherwise the targets of every
/// passing reference are collected.
fn has_sql(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>, probe: Probe) -> String {
    let Condition::Has { source_type, param, query } = c else { unreachable!("has_sql of another condition") };
    let (s, i) = (format!("{alias}s"), format!("{alias}i"));
    values.push(V::Text(source_type.clone()));
    values.push(V::Text(param.clone()));
    let target_type = match (ty, probe.on()) {
        (Some(t), true) => keyed_eq(&format!("{i}.target_type"), t, values),
        (Some(t), false) => {
            values.push(V::Text(t.to_string()));
            format!("{i}.target_type = ?")
        }
        (None, true) => {
            format!("{i}.target_type_key = left({alias}.type, {KEY_CHARS}) AND {i}.target_type = {alias}.type")
        }
        (None, false) => format!("{i}.target_type = {alias}.type"),
    };
    let target = if probe.on() {
        format!("{target_type} AND {i}.target_id_key = left({alias}.id, {KEY_CHARS}) AND {}", same_id(&i, alias))
    } else {
        target_type
    };
    let (join, inner) = if query.clauses.iter().all(|c| c.any.iter().all(on_seq)) {
        // Hashing: each clause's rows collected (a hash built once), tested `IS TRUE`, which
        // PostgreSQL does not turn into a join run again for each resource probed.
        let (form, test): (Probe, fn(String) -> String) = match probe {
            Probe::EachHashingHas => (Probe::No, |p| format!(" AND ({p}) IS TRUE")),
            _ => (probe, |p| format!(" AND {p}")),
        };
        let parts: Vec<String> =
            query.clauses.iter().map(|c| test(clause_sql(c, Some(source_type), &i, values, form))).collect();
        (String::new(), parts.concat())
    } else {
        (format!(" JOIN resource {s} ON {s}.seq = {i}.seq"), format!(" AND {}", filter(query, &s, values, probe)))
    };
    let rows = format!("FROM idx_reference {i}{join} WHERE {i}.type = ? AND {i}.param = ? AND {target}{inner}");
    if probe.on() {
        format!("EXISTS (SELECT 1 {rows})")
    } else {
        format!("{alias}.id IN (SELECT {i}.target_id {rows})")
    }
}

/// That the reference `x` (found by `target_id_key`) names the id of `alias` exactly. An id
/// shorter than the key is equal to its key, so this reads nothing more and the references
/// are read from their key alone (index-only): `target_id` itself, not in the key, was a
/// read of each reference's table row, half of a `_has` probe's time.
pub(crate) fn same_id(x: &str, alias: &str) -> String {
    format!(
        "(length({alias}.id) < {KEY_CHARS} OR EXISTS (SELECT 1 FROM idx_reference {x}e WHERE {x}e.seq = {x}.seq \
         AND {x}e.param = {x}.param AND {x}e.target_id = {alias}.id))"
    )
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The smallest string greater than every string starting with `s`.
fn prefix_end(s: &str) -> String {
    format!("{s}\u{10FFFF}")
}

fn range_sql(op: RangeOp, lo: i64, hi: i64, values: &mut Vec<V>) -> String {
    let mut bind = |v: i64| values.push(V::Int(v));
    match op {
        RangeOp::Eq => {
            // `lo <= hi`, implied (a value starts before it ends), bounds the index range
            // above: `date=2015-03-05` read every value from that day on (200 ms at 937k
            // resources for a day of none).
            bind(lo);
            bind(hi);
            bind(hi);
            "(lo >= ? AND lo <= ? AND hi <= ?)".into()
        }
        RangeOp::Ne => {
            bind(lo);
            bind(hi);
            "NOT (lo >= ? AND hi <= ?)".into()
        }
        RangeOp::Gt => {
            bind(hi);
            "hi > ?".into()
        }
        RangeOp::Lt => {
            bind(lo);
            "lo < ?".into()
        }
        RangeOp::Ge => {
            bind(hi);
            bind(lo);
            "(hi > ? OR lo >= ?)".into()
        }
        RangeOp::Le => {
            bind(lo);
            bind(hi);
            "(lo < ? OR hi <= ?)".into()
        }
        RangeOp::Sa => {
            bind(hi);
            "lo >= ?".into()
        }
        RangeOp::Eb => {
            bind(lo);
            "hi <= ?".into()
        }
        RangeOp::Ap => {
            bind(hi);
            bind(lo);
            "(lo < ? AND hi > ?)".into()
        }
    }
}

/// Point values (numbers, quantities) against a search value and its precision range.
fn point_sql(op: RangeOp, value: f64, lo: f64, hi: f64, values: &mut Vec<V>) -> String {
    let mut bind = |v: f64| values.push(V::Real(v));
    match op {
        RangeOp::Eq | RangeOp::Ap => {
            bind(lo);
            bind(hi);
            "(value >= ? AND value < ?)".into()
        }
        RangeOp::Ne => {
            bind(lo);
            bind(hi);
            "NOT (value >= ? AND value < ?)".into()
        }
        RangeOp::Gt | RangeOp::Sa => {
            bind(value);
            "value > ?".into()
        }
        RangeOp::Lt | RangeOp::Eb => {
            bind(value);
            "value < ?".into()
        }
        RangeOp::Ge => {
            bind(value);
            "value >= ?".into()
        }
        RangeOp::Le => {
            bind(value);
            "value <= ?".into()
        }
    }
}

/// The test on one index row; `uri` names the column a URI value is in (`value` in the
/// kind's own table, `uri` in `idx_composite`, whose `value` is a number), and so also
/// tells whether the row is a composite's.
pub(crate) fn test_sql(t: &Test, uri: &str, values: &mut Vec<V>) -> String {
    // Long-able columns of the kind's own table are indexed by their keys; a composite's
    // second component is not indexed.
    let own = uri == "value";
    match t {
        Test::Token { system, code } => {
            let mut parts = Vec::new();
            if let Some(code) = code {
                parts.push(eq("code", code, own, values));
            }
            match system {
                SystemMatch::Any => {}
                SystemMatch::Absent => parts.push(empty("system", own)),
                SystemMatch::Is(s) => parts.push(eq("system", s, own, values)),
            }
            if parts.is_empty() {
                "TRUE".into()
            } else {
                parts.join(" AND ")
            }
        }
        Test::TokenText(s) => {
            values.push(V::Text(format!("{}%", like_escape(s))));
            values.push(V::Text(format!("%{}{}%", tsunagu_store::TOKEN_TEXT_SEPARATOR, like_escape(s))));
            "(display ILIKE ? ESCAPE '\\' OR display ILIKE ? ESCAPE '\\')".into()
        }
        Test::StringStarts(s) if uri == "value" => {
            // Through `norm_key` (the first NORM_KEY_CHARS characters of `norm`): a value
            // starts with `s` exactly when its key starts with `s`'s first characters and,
            // for a longer `s`, the value itself starts with `s`.
            let head: String = s.chars().take(NORM_KEY_CHARS).collect();
            values.push(V::Text(head.clone()));
            values.push(V::Text(prefix_end(&head)));
            if head.len() == s.len() {
                "norm_key >= ? AND norm_key < ?".into()
            } else {
                values.push(V::Text(s.clone()));
                values.push(V::Text(prefix_end(s)));
                "norm_key >= ? AND norm_key < ? AND norm >= ? AND norm < ?".into()
            }
        }
        Test::StringStarts(s) => {
            values.push(V::Text(s.clone()));
            values.push(V::Text(prefix_end(s)));
            "norm >= ? AND norm < ?".into()
        }
        Test::StringContains(s) => {
            values.push(V::Text(format!("%{}%", like_escape(s))));
            "norm ILIKE ? ESCAPE '\\'".into()
        }
        Test::StringExact(s) => {
            values.push(V::Text(s.clone()));
            "exact = ?".into()
        }
        Test::Date { op, lo, hi } => range_sql(*op, *lo, *hi, values),
        Test::Number { op, value, lo, hi } => point_sql(*op, *value, *lo, *hi, values),
        Test::Quantity { op, value, lo, hi, system, code } => {
            let mut sql = point_sql(*op, *value, *lo, *hi, values);
            if let Some(c) = code {
                sql.push_str(&format!(" AND {}", eq("code", c, own, values)));
            }
            if let Some(s) = system {
                sql.push_str(&format!(" AND {}", eq("system", s, own, values)));
            }
            sql
        }
        Test::Reference { target_type, target_id, url } => {
            let mut parts = Vec::new();
            if let Some(id) = target_id {
                parts.push(eq("target_id", id, own, values));
            }
            if let Some(t) = target_type {
                parts.push(eq("target_type", t, own, values));
            }
            if let Some(u) = url {
                parts.push(eq("url", u, false, values));
            }
            if parts.is_empty() {
                "TRUE".into()
            } else {
                parts.join(" AND ")
            }
        }
        Test::UriExact(s) => eq(uri, s, own, values),
        Test::UriBelow(s) if own && fits_key(s) => {
            // A value starts with a shorter `s` exactly when its key does.
            values.push(V::Text(s.clone()));
            values.push(V::Text(prefix_end(s)));
            format!("{uri}_key >= ? AND {uri}_key < ?")
        }
        Test::UriBelow(s) if own => {
            // The keys starting with the key of `s` (the index), then the whole values.
            values.extend([s.clone(), s.clone(), s.clone(), prefix_end(s)].map(V::Text));
            format!(
                "{uri}_key >= left(?, {KEY_CHARS}) AND {uri}_key < (left(?, {KEY_CHARS}) || chr(1114111)) \
                 AND {uri} >= ? AND {uri} < ?"
            )
        }
        Test::UriBelow(s) => {
            values.push(V::Text(s.clone()));
            values.push(V::Text(prefix_end(s)));
            format!("{uri} >= ? AND {uri} < ?")
        }
        Test::UriAbove(s) => {
            values.push(V::Text(s.clone()));
            format!("substr(?, 1, length({uri})) = {uri}")
        }
        Test::TokenIn(pairs) => token_in_sql(pairs, own, values),
        Test::Composite { system, code, second } => {
            let code = keyed_eq("c_code", code, values);
            let system = match system {
                SystemMatch::Any => String::new(),
                SystemMatch::Absent => format!(" AND {}", empty("c_system", true)),
                SystemMatch::Is(s) => format!(" AND {}", keyed_eq("c_system", s, values)),
            };
            // The second component sits in the columns its own kind's table uses.
            let second = test_sql(second, "uri", values);
            format!("{code}{system} AND ({second})")
        }
    }
}

/// A list of codes per system as `code = ANY(?)`: one bound array however long the list.
fn token_in_sql(pairs: &[(String, String)], own: bool, values: &mut Vec<V>) -> String {
    let mut by_system: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (system, code) in pairs {
        by_system.entry(system.as_str()).or_default().push(code.clone());
    }
    if by_system.is_empty() {
        return "FALSE".into();
    }
    let mut parts = Vec::new();
    for (system, codes) in by_system {
        let codes_sql = if !own {
            values.push(V::TextArray(codes));
            "code = ANY(?)".to_string()
        } else if codes.iter().all(|c| fits_key(c)) {
            values.push(V::TextArray(codes));
            "code_key = ANY(?)".to_string()
        } else {
            // The codes' keys (computed once, the index), then the whole codes.
            values.push(V::TextArray(codes.clone()));
            values.push(V::TextArray(codes));
            format!("code_key = ANY(ARRAY(SELECT left(x, {KEY_CHARS}) FROM unnest(?) AS x)) AND code = ANY(?)")
        };
        let system = eq("system", system, own, values);
        parts.push(format!("({codes_sql} AND {system})"));
    }
    format!("({})", parts.join(" OR "))
}

/// `ORDER BY` for the query's sort keys (missing values last), `seq` breaking ties in the
/// first key's direction; each resource sorts by its smallest value ascending and its
/// largest descending (a date by its start both ways), as in SQLite.
pub(crate) fn order_by(keys: &[SortKey], alias: &str, values: &mut Vec<V>) -> String {
    order_by_tied(keys, keys.first().is_some_and(|k| k.descending), alias, values)
}

/// [`order_by`] with ties in the direction `tie_descending` rather than the first key's:
/// for a group of resources equal in an earlier key, ordered by the keys after it.
pub(crate) fn order_by_tied(keys: &[SortKey], tie_descending: bool, alias: &str, values: &mut Vec<V>) -> String {
    let mut parts = Vec::new();
    for k in keys {
        let dir = if k.descending { "DESC" } else { "ASC" };
        let agg = if k.descending { "MAX" } else { "MIN" };
        let mut sort_value = |table: &str, col: &str| {
            values.push(V::Text(match &k.param {
                SortParam::Index { param, .. } => param.clone(),
                _ => String::new(),
            }));
            format!("(SELECT {agg}({col}) FROM {table} WHERE seq = {alias}.seq AND param = ?) {dir} NULLS LAST")
        };
        match &k.param {
            // Never NULL, so without `NULLS LAST`, which would keep PostgreSQL from reading
            // `resource_live_updated` backwards for a descending sort.
            SortParam::Id => parts.push(format!("{alias}.id {dir}")),
            SortParam::LastUpdated => parts.push(format!("{alias}.last_updated {dir}")),
            SortParam::Index { kind: IndexKind::Composite, .. } => {
                // SQLite holds a number or a URI in one column and orders numbers first.
                if k.descending {
                    parts.push(sort_value("idx_composite", "uri"));
                    parts.push(sort_value("idx_composite", "value"));
                } else {
                    parts.push(sort_value("idx_composite", "value"));
                    parts.push(sort_value("idx_composite", "uri"));
                }
            }
            SortParam::Index { kind, .. } => {
                let col = match kind {
                    IndexKind::Date => "lo",
                    IndexKind::Token => "code",
                    IndexKind::String => "norm",
                    // As SQLite's `reference_sort_key`: target id, type, then the reference.
                    IndexKind::Reference => "target_id || chr(1) || target_type || chr(1) || url",
                    _ => "value",
                };
                parts.push(sort_value(table(*kind), col));
            }
        }
    }
    let tie = if tie_descending { "DESC" } else { "ASC" };
    parts.push(format!("{alias}.seq {tie}"));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, RangeOp, SearchQuery, SystemMatch, Test};

    use super::*;
    use crate::value::{number, refs};

    /// Rows of ordinary values, many per table, as a server holds them.
    const DATA: &str = "
        INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body)
            SELECT 'p' || g % 500, g, 'Observation', 'o' || g, 1, g, false, true, 'POST', '{}'::bytea
            FROM generate_series(1, 20000) g;
        INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body)
            SELECT 'p' || g, 100000 + g, 'Patient', 'p' || g, 1, g, false, true, 'POST', '{}'::bytea
            FROM generate_series(1, 500) g;
        INSERT INTO idx_token (shard, type, param, code, system, seq)
            SELECT 'p' || g % 500, 'Observation', 'code', 'c' || g % 5000, 'http://loinc.org/' || g % 3, g
            FROM generate_series(1, 20000) g;
        INSERT INTO idx_uri (shard, type, param, value, seq)
            SELECT 'p' || g % 500, 'Observation', 'url', 'http://e.org/fhir/' || g % 5000, g
            FROM generate_series(1, 20000) g;
        INSERT INTO idx_reference (shard, type, param, target_id, target_type, url, seq)
            SELECT 'p' || g % 500, 'Observation', 'subject', 'p' || g % 500, 'Patient', 'Patient/p' || g % 500, g
            FROM generate_series(1, 20000) g;
        INSERT INTO idx_quantity (shard, type, param, code, value, system, seq)
            SELECT 'p' || g % 500, 'Observation', 'value', 'u' || g % 50, g % 1000, 'http://unitsofmeasure.org', g
            FROM generate_series(1, 20000) g;
        INSERT INTO idx_composite (shard, type, param, c_code, c_system, seq, uri)
            SELECT 'p' || g % 500, 'Observation', 'code-uri', 'c' || g % 5000, 'http://loinc.org', g,
                'http://e.org/' || g % 7
            FROM generate_series(1, 20000) g;
        INSERT INTO idx_string (shard, type, param, norm, exact, seq)
            SELECT 'p' || g, 'Patient', 'name', 'name' || g, 'Name' || g, 100000 + g FROM generate_series(1, 500) g;
        ANALYZE;";

    fn plan(c: &mut postgres::Client, sql: &str, values: &[V]) -> String {
        let rows = c.query(&format!("EXPLAIN (COSTS OFF) {}", number(sql, values)), &refs(values)).unwrap();
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
    }

    fn search(param: &str, test: Test) -> SearchQuery {
        SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: param.into(), test, negate: false }] }],
            ..Default::default()
        }
    }

    /// Searches for ordinary values go through the same indexes as before version 2 (the
    /// plans are printed: `cargo test -p tsunagu-store-postgres --lib plans -- --nocapture`).
    #[test]
    fn plans_of_ordinary_lookups_use_the_indexes() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let mut c = crate::pool::connect(&url).unwrap();
        crate::schema::migrate(&mut c).unwrap();
        c.batch_execute(DATA).unwrap();
        c.batch_execute("VACUUM ANALYZE").unwrap();
        let is = |s: &str| SystemMatch::Is(s.into());
        let token = |system, code: &str| Test::Token { system, code: Some(code.into()) };
        let chain = Condition::Chain {
            param: "subject".into(),
            target_type: "Patient".into(),
            query: Box::new(SearchQuery {
                resource_type: Some("Patient".into()),
                clauses: vec![Clause {
                    any: vec![Condition::Index {
                        param: "name".into(),
                        test: Test::StringExact("Name7".into()),
                        negate: false,
                    }],
                }],
                ..Default::default()
            }),
        };
        let compartment = Condition::Compartment {
            params: vec![("Observation".into(), "subject".into())],
            target_type: "Patient".into(),
            target_id: Some("p7".into()),
        };
        let with = |condition: Condition| SearchQuery {
            resource_type: None,
            clauses: vec![Clause { any: vec![condition] }],
            ..Default::default()
        };
        let shapes: Vec<(&str, SearchQuery, &str)> = vec![
            ("token code|system", search("code", token(is("http://loinc.org/1"), "c42")), "idx_token_key"),
            ("token code", search("code", token(SystemMatch::Any, "c42")), "idx_token_key"),
            ("token |code", search("code", token(SystemMatch::Absent, "c42")), "idx_token_key"),
            ("token, a long code", search("code", token(SystemMatch::Any, &"c".repeat(300))), "idx_token_key"),
            (
                "token in",
                search("code", Test::TokenIn(vec![("http://loinc.org/1".into(), "c42".into()); 2])),
                "idx_token_key",
            ),
            ("uri", search("url", Test::UriExact("http://e.org/fhir/42".into())), "idx_uri_key"),
            ("uri:below", search("url", Test::UriBelow("http://e.org/fhir/42".into())), "idx_uri_key"),
            (
                "reference",
                search(
                    "subject",
                    Test::Reference { target_type: Some("Patient".into()), target_id: Some("p7".into()), url: None },
                ),
                "idx_reference_key",
            ),
            (
                "quantity",
                search(
                    "value",
                    Test::Quantity {
                        op: RangeOp::Eq,
                        value: 42.0,
                        lo: 41.5,
                        hi: 42.5,
                        system: Some("http://unitsofmeasure.org".into()),
                        code: Some("u42".into()),
                    },
                ),
                "idx_quantity_key",
            ),
            (
                "composite",
                search(
                    "code-uri",
                    Test::Composite {
                        system: is("http://loinc.org"),
                        code: "c42".into(),
                        second: Box::new(Test::UriExact("http://e.org/0".into())),
                    },
                ),
                "idx_composite_value",
            ),
            ("compartment", with(compartment), "idx_reference_"),
            ("chain", with(chain), "idx_reference_"),
        ];
        let mut missing = Vec::new();
        for (name, q, index) in shapes {
            let mut values = Vec::new();
            let sql = format!("SELECT r.seq FROM resource r WHERE {}", where_clause(&q, "r", &mut values));
            let p = plan(&mut c, &sql, &values);
            println!("== {name}\n{p}\n");
            if !p.contains(index) {
                missing.push(format!("{name}: no {index} in\n{p}"));
            }
        }
        // The sort walk's first batch and a later one (see `sortwalk.rs`).
        for (name, sql, values) in [
            (
                "sort walk, keys alone",
                "SELECT seq, code_key FROM idx_token WHERE type = ? AND param = ? ORDER BY code_key, seq LIMIT ?"
                    .to_string(),
                vec![V::Text("Observation".into()), V::Text("code".into()), V::Int(100)],
            ),
            (
                "sort walk, keys alone, resumed",
                "SELECT seq, code_key FROM idx_token WHERE type = ? AND param = ? AND (code_key, seq) > (?, ?) \
                 ORDER BY code_key, seq LIMIT ?"
                    .to_string(),
                vec![
                    V::Text("Observation".into()),
                    V::Text("code".into()),
                    V::Text("c42".into()),
                    V::Int(42),
                    V::Int(100),
                ],
            ),
            (
                "sort walk",
                "SELECT seq, code FROM idx_token WHERE type = ? AND param = ? ORDER BY code_key, code, seq LIMIT ?"
                    .to_string(),
                vec![V::Text("Observation".into()), V::Text("code".into()), V::Int(100)],
            ),
            (
                "sort walk, resumed",
                format!(
                    "SELECT seq, code FROM idx_token WHERE type = ? AND param = ? AND code_key >= left(?, {KEY_CHARS}) \
                     AND (code, seq) > (?, ?) ORDER BY code_key, code, seq LIMIT ?"
                ),
                vec![
                    V::Text("Observation".into()),
                    V::Text("code".into()),
                    V::Text("c42".into()),
                    V::Text("c42".into()),
                    V::Int(42),
                    V::Int(100),
                ],
            ),
        ] {
            let p = plan(&mut c, &sql, &values);
            println!("== {name}\n{p}\n");
            if !p.contains("idx_token_key") || p.contains("Seq Scan") {
                missing.push(format!("{name}: not through idx_token_key:\n{p}"));
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n\n"));
    }
}
