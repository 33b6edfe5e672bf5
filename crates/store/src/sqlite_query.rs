//! SQL for searches. Every value is bound, never spliced. Each condition becomes a
//! `seq IN (…)` probe into one index table, so SQLite can drive a selective condition
//! from its index and check the others by primary key.

use crate::query::{Clause, Condition, IndexKind, RangeOp, SearchQuery, SortKey, SortParam, SystemMatch, Test};
use rusqlite::types::Value as V;

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

/// `[alias.]current = 1 AND deleted = 0 AND …` for a query on rows aliased `alias`.
pub(crate) fn where_clause(q: &SearchQuery, alias: &str, values: &mut Vec<V>) -> String {
    where_clause_except(q, alias, None, values)
}

/// As [`where_clause`], leaving out clause `skip` (the one a driven query scans itself).
pub(crate) fn where_clause_except(q: &SearchQuery, alias: &str, skip: Option<usize>, values: &mut Vec<V>) -> String {
    let mut sql = format!("{alias}.current = 1 AND {alias}.deleted = 0");
    if let Some(t) = &q.resource_type {
        sql.push_str(&format!(" AND {alias}.type = ?"));
        values.push(V::Text(t.clone()));
    }
    let clauses: Vec<String> = q
        .clauses
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, clause)| clause_sql(clause, q.resource_type.as_deref(), alias, values))
        .collect();
    if !clauses.is_empty() {
        sql.push_str(" AND ");
        sql.push_str(&balanced(&clauses, " AND "));
    }
    sql
}

/// The query's clauses alone, on the `seq` of an index row aliased `alias`: for a query
/// whose conditions are all index tests ([`index_only`]), what [`where_clause`] says of a
/// resource that has index rows (they exist only for current, live versions of their type).
pub(crate) fn index_row_clause(q: &SearchQuery, alias: &str, values: &mut Vec<V>) -> String {
    index_row_clause_except(q, alias, None, values)
}

/// As [`index_row_clause`], leaving out clause `skip` (the one whose rows are read).
pub(crate) fn index_row_clause_except(
    q: &SearchQuery,
    alias: &str,
    skip: Option<usize>,
    values: &mut Vec<V>,
) -> String {
    let ty = q.resource_type.as_deref();
    let clauses: Vec<String> = q
        .clauses
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, clause)| clause_sql(clause, ty, alias, values))
        .collect();
    if clauses.is_empty() {
        "1 = 1".into()
    } else {
        balanced(&clauses, " AND ")
    }
}

fn clause_sql(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> String {
    if c.any.is_empty() {
        return "0 = 1".into();
    }
    if let Some(sql) = collected_alternatives(c, ty, alias, values) {
        return sql;
    }
    if let Some(sql) = collected_chains(c, ty, alias, values) {
        return sql;
    }
    if let Some(sql) = collected_ids(c, ty, alias, values) {
        return sql;
    }
    let parts: Vec<String> = c.any.iter().map(|cond| condition_sql(cond, ty, alias, values)).collect();
    balanced(&parts, " OR ")
}

/// The most alternatives one compound `SELECT` holds: SQLite refuses more than 500.
const ALTERNATIVES_PER_COMPOUND: usize = 64;

/// A clause of several plain index tests (`status=amended,corrected`, `code=a,b,c`) as one
/// collection of their rows: `seq IN (SELECT … UNION ALL SELECT …)`. Written as an `OR` of
/// one `seq IN` per value, SQLite cannot drive the page by any of them and tests every
/// live resource of the type against each list (a full scan when none matches). Not for
/// dates (half-open ones are probed, rare ones collected from their bound) or negations,
/// nor where a value is tested on each row's index record instead of collected.
fn collected_alternatives(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    let alternatives = plain_alternatives(c)?;
    let probing = alias == "r" && RECORD_PROBES.with(|p| p.get());
    if probing
        || c.any.iter().any(|cond| crate::sqlite_choices::made(crate::sqlite_choices::Choice::ProbedInWalk, cond))
    {
        return None;
    }
    let selects =
        alternatives.into_iter().map(|(param, test)| alternative_rows("seq", ty, param, test, values)).collect();
    Some(format!("{alias}.seq IN ({})", union_all(selects)))
}

/// A clause of chains through a reference to several target types (`encounter.type=x`
/// reaches Encounter and EpisodeOfCare) as one collection of the referring rows, for the
/// reason above: as an `OR` of one `seq IN` per type, every live resource of the type was
/// tested against both lists (`Observation?encounter.type=…&_summary=count` at a million
/// resources: 430,000 rows, 190 ms). Not when a chain is probed on each candidate instead.
fn collected_chains(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    if c.any.len() < 2 || c.any.len() > ALTERNATIVES_PER_COMPOUND {
        return None;
    }
    let plain =
        |cond: &Condition| matches!(cond, Condition::Chain { .. }) && !crate::sqlite_common_chains::probed(cond);
    if !c.any.iter().all(plain) {
        return None;
    }
    let selects = c.any.iter().filter_map(|cond| chain_rows(cond, ty, alias, values)).collect();
    Some(format!("{alias}.seq IN ({})", union_all(selects)))
}

/// A clause of several ids of one type (`Observation?_id=a,b`) as one lookup through the
/// (type, id) index, for the reason above: as an `OR` of one `seq IN` per id, SQLite tested
/// every live resource of the type (937,000 resources: 64 ms for two ids that match none).
fn collected_ids(c: &Clause, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    let ty = ty?;
    let ids: Vec<&String> =
        c.any.iter().map(|cond| if let Condition::Id(id) = cond { Some(id) } else { None }).collect::<Option<_>>()?;
    if ids.len() < 2 {
        return None;
    }
    values.push(V::Text(ty.to_string()));
    values.extend(ids.iter().map(|id| V::Text(id.to_string())));
    let marks = vec!["?"; ids.len()].join(", ");
    Some(format!("{alias}.seq IN (SELECT seq FROM resource WHERE type = ? AND id IN ({marks}))"))
}

/// The `seq`s of the rows referring to a chain's matching targets.
fn chain_rows(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    let Condition::Chain { param, target_type, query } = c else { return None };
    let tf = type_filter(ty, values);
    values.push(V::Text(param.clone()));
    values.push(V::Text(target_type.clone()));
    // Aliases grow with nesting so inner queries never shadow outer ones.
    let t = format!("{alias}t");
    let inner = where_clause(query, &t, values);
    Some(format!(
        "SELECT seq FROM idx_reference WHERE {tf}param = ? AND target_type = ? AND target_id IN \
         (SELECT {t}.id FROM resource {t} WHERE {inner})"
    ))
}

/// The parameters and tests of a clause of two or more values that are all plain index
/// tests: not negated, not dates (half-open ones are probed, rare ones collected from
/// their bound).
pub(crate) fn plain_alternatives(c: &Clause) -> Option<Vec<(&str, &Test)>> {
    if c.any.len() < 2 {
        return None;
    }
    c.any
        .iter()
        .map(|cond| match cond {
            Condition::Index { param, test, negate: false } if test_kind(test) != IndexKind::Date => {
                Some((param.as_str(), test))
            }
            _ => None,
        })
        .collect()
}

/// `SELECT {column} FROM` the index rows of one value of a clause.
fn alternative_rows(column: &str, ty: Option<&str>, param: &str, test: &Test, values: &mut Vec<V>) -> String {
    let tf = type_filter(ty, values);
    values.push(V::Text(param.to_string()));
    let t = index_test_sql(ty, param, test, values);
    format!("SELECT {column} FROM {} WHERE {tf}param = ? AND {t}", table(test_kind(test)))
}

/// `SELECT`s of one column joined by `UNION ALL`, nested in groups of at most
/// [`ALTERNATIVES_PER_COMPOUND`] (SQLite refuses a compound of more than 500), so a clause
/// of a thousand values stays one list SQLite can drive a page from.
fn union_all(selects: Vec<String>) -> String {
    if selects.len() <= ALTERNATIVES_PER_COMPOUND {
        return selects.join(" UNION ALL ");
    }
    let groups: Vec<String> = selects
        .chunks(ALTERNATIVES_PER_COMPOUND)
        .map(|group| format!("SELECT * FROM ({})", union_all(group.to_vec())))
        .collect();
    union_all(groups)
}

/// `(a OR b OR c …)` nested as a balanced tree. SQLite parses a flat chain of n terms
/// into an expression n levels deep and refuses more than 1,000 levels; a search with a
/// thousand values must not hit that.
fn balanced(parts: &[String], op: &str) -> String {
    match parts {
        [one] => format!("({one})"),
        _ if parts.len() <= 8 => format!("({})", parts.join(op)),
        _ => {
            let (a, b) = parts.split_at(parts.len() / 2);
            format!("({}{op}{})", balanced(a, op), balanced(b, op))
        }
    }
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

thread_local! {
    /// Whether conditions on the outermost resource (`r`) test its index record rather
    /// than collect their index rows ([`with_record_probes`]).
    static RECORD_PROBES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Builds SQL with `f` in which every index condition on the outermost resource that its
/// index record can decide (all but `:text` on tokens, composites and full text) is tested
/// on that record (`sqlite_rows`): O(1) per resource, nothing collected first.
pub(crate) fn with_record_probes<T>(f: impl FnOnce() -> T) -> T {
    RECORD_PROBES.with(|p| p.set(true));
    let out = f();
    RECORD_PROBES.with(|p| p.set(false));
    out
}

/// Builds SQL with `f` in which the conditions `probed` (of the query being built) are
/// tested on the index record of the row they filter instead of collecting their index
/// rows first: for a walk that meets candidates in its own order and stops after a page,
/// a condition matching hundreds of thousands of resources would otherwise be collected
/// whole before the first row (`sqlite_sort`).
pub(crate) fn with_probed<T>(probed: &[&Condition], f: impl FnOnce() -> T) -> T {
    crate::sqlite_choices::with_made(crate::sqlite_choices::Choice::ProbedInWalk, probed, f)
}

/// Whether [`record_probe`] can decide condition `c` from an index record.
pub(crate) fn probe_decides(c: &Condition) -> bool {
    match c {
        Condition::Index { test: Test::Composite { second, .. }, .. } => record_holds_second(second),
        Condition::Index { test: Test::TokenText(_), .. } => false,
        Condition::Index { .. } | Condition::Missing { .. } | Condition::DateWindow { .. } => true,
        _ => false,
    }
}

/// Whether a composite's second test reads only what an index record keeps of a composite
/// row besides its first component: the value of a number or of a quantity (its unit is
/// not kept).
fn record_holds_second(second: &Test) -> bool {
    matches!(second, Test::Number { .. } | Test::Quantity { system: None, code: None, .. })
}

/// The record probe of condition `c` on the row aliased `alias` (a resource of type `ty`,
/// where known), when there is one.
fn record_probe(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    use crate::sqlite_record::tag;
    let rows = format!("tsunagu_index_rows((SELECT entries FROM idx_record WHERE seq = {alias}.seq))");
    if let Condition::Chain { param, target_type, query } = c {
        if !crate::sqlite_common_chains::probed(c) {
            return None;
        }
        // The candidate's own references to the type, against the matching targets' ids
        // (collected once: the subquery is not correlated).
        values.push(V::Text(param.clone()));
        values.push(V::Text(target_type.clone()));
        let t = format!("{}t", alias.trim_start_matches('+'));
        let inner = where_clause(query, &t, values);
        let r = tag("idx_reference");
        return Some(format!(
            "EXISTS (SELECT 1 FROM {rows} WHERE tbl = {r} AND param = ? AND target_type = ? AND target_id IN \
             (SELECT {t}.id FROM resource {t} WHERE {inner}))"
        ));
    }
    let everything = alias == "r" && RECORD_PROBES.with(|p| p.get());
    if !everything && !crate::sqlite_choices::made(crate::sqlite_choices::Choice::ProbedInWalk, c) {
        return None;
    }
    // In a sort walk only: a dense write-order walk meets few rows per page, and there the
    // record (one lookup) beats finding the code's systems first.
    if let Some(sql) = ty.filter(|_| !everything).and_then(|ty| token_key_probe(c, ty, alias, values)) {
        return Some(sql);
    }
    if let Some(sql) = date_key_probe(c, alias, values) {
        return Some(sql);
    }
    let (not, tbl, param, test) = match c {
        Condition::Index { test: Test::Composite { second, .. }, .. } if !record_holds_second(second) => return None,
        Condition::Index { test: Test::TokenText(_), .. } => return None,
        Condition::Index { param, test, negate } => (*negate, tag(table(test_kind(test))), param, Some(test)),
        Condition::Missing { param, kind, missing } => (*missing, tag(table(*kind)), param, None),
        Condition::DateWindow { param, lo, hi } => {
            values.push(V::Text(param.clone()));
            values.push(V::Integer(*hi));
            values.push(V::Integer(*lo));
            let t = tag("idx_date");
            return Some(format!("EXISTS (SELECT 1 FROM {rows} WHERE tbl = {t} AND param = ? AND lo < ? AND hi > ?)"));
        }
        _ => return None,
    };
    values.push(V::Text(param.clone()));
    let test = match test {
        Some(t) => format!(" AND ({})", test_sql(t, values)),
        None => String::new(),
    };
    let not = if not { "NOT " } else { "" };
    Some(format!("{not}EXISTS (SELECT 1 FROM {rows} WHERE tbl = {tbl} AND param = ?{test})"))
}

/// A token condition with a code probed by `idx_token`'s whole primary key rather than on
/// the row's index record: one B-tree lookup per system instead of decoding a record of
/// hundreds of bytes, which made a walk of `category=vital-signs&_sort=-value-quantity`
/// (14,000 rows of larger lab values before the page) give up. Without a system, the
/// code's systems are found once per statement by a skip scan (an uncorrelated `IN`).
fn token_key_probe(c: &Condition, ty: &str, alias: &str, values: &mut Vec<V>) -> Option<String> {
    let Condition::Index { param, test: Test::Token { system, code: Some(code) }, negate } = c else { return None };
    values.extend([V::Text(ty.into()), V::Text(param.clone()), V::Text(code.clone())]);
    let systems = match system {
        SystemMatch::Absent => "= ''".to_string(),
        SystemMatch::Is(s) => {
            values.push(V::Text(s.clone()));
            "= ?".to_string()
        }
        SystemMatch::Any => {
            for _ in 0..2 {
                values.extend([V::Text(ty.into()), V::Text(param.clone()), V::Text(code.clone())]);
            }
            "IN (WITH RECURSIVE s(v) AS (\
             SELECT (SELECT MIN(system) FROM idx_token WHERE type = ? AND param = ? AND code = ?) \
             UNION ALL SELECT (SELECT MIN(system) FROM idx_token WHERE type = ? AND param = ? AND code = ? \
             AND system > s.v) FROM s WHERE s.v IS NOT NULL) SELECT v FROM s WHERE v IS NOT NULL)"
                .to_string()
        }
    };
    let not = if *negate { "NOT " } else { "" };
    Some(format!(
        "{not}EXISTS (SELECT 1 FROM idx_token WHERE type = ? AND param = ? AND code = ? AND system {systems} \
         AND seq = {alias}.seq)"
    ))
}

/// A date condition (or a date's `:missing`) probed through `idx_date_seq` rather than on
/// the row's index record: `idx_date` holds every date value, wide ones included, and its
/// `seq` index carries the whole key, so a probe is one lookup by an integer where the
/// record is decoded whole. A walk of `date=2015&_sort=value-quantity` at 937k resources
/// (one value in a hundred passes) gave up on the record and took 63–78 ms by the general
/// plan; probed here (with a second try, `sqlite::sort_walk`) it takes 3.4–3.6 ms.
fn date_key_probe(c: &Condition, alias: &str, values: &mut Vec<V>) -> Option<String> {
    let (not, param) = match c {
        Condition::Index { param, test: Test::Date { .. }, negate } => (*negate, param),
        Condition::DateWindow { param, .. } => (false, param),
        Condition::Missing { param, kind: IndexKind::Date, missing } => (*missing, param),
        _ => return None,
    };
    values.push(V::Text(param.clone()));
    let test = match c {
        Condition::Index { test, .. } => format!(" AND ({})", test_sql(test, values)),
        Condition::DateWindow { lo, hi, .. } => {
            values.extend([V::Integer(*hi), V::Integer(*lo)]);
            " AND lo < ? AND hi > ?".to_string()
        }
        _ => String::new(),
    };
    let not = if not { "NOT " } else { "" };
    Some(format!(
        "{not}EXISTS (SELECT 1 FROM idx_date INDEXED BY idx_date_seq WHERE seq = {alias}.seq AND param = ?{test})"
    ))
}

fn condition_sql(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> String {
    // A probe of each walked row's record first: a walk must not collect the other values.
    if let Some(sql) = record_probe(c, ty, alias, values) {
        return sql;
    }
    if let Some(sql) = crate::sqlite_negation::condition_sql(c, ty, alias, values) {
        return sql;
    }
    if let Some(sql) = collected_date(c, ty, alias, values) {
        return sql;
    }
    match c {
        Condition::Id(id) => match ty {
            // Through the (type, id, version) index: left to itself SQLite walks every
            // live resource of the type in `seq` order (for the page order) testing ids.
            Some(t) => {
                values.push(V::Text(t.to_string()));
                values.push(V::Text(id.clone()));
                format!("{alias}.seq IN (SELECT seq FROM resource WHERE type = ? AND id = ?)")
            }
            None => {
                values.push(V::Text(id.clone()));
                format!("{alias}.id = ?")
            }
        },
        Condition::LastUpdated { lo, hi } => {
            values.push(V::Integer(*lo));
            values.push(V::Integer(*hi));
            format!("({alias}.last_updated >= ? AND {alias}.last_updated < ?)")
        }
        Condition::Index { param, test: test @ Test::Date { op, .. }, negate: false } if op.half_open() => {
            // Half-open date conditions usually match most of the table: probing each
            // candidate (found by a more selective condition) beats collecting every match.
            values.push(V::Text(param.clone()));
            let t = test_sql(test, values);
            format!("EXISTS (SELECT 1 FROM idx_date WHERE seq = {alias}.seq AND param = ? AND {t})")
        }
        Condition::Index { param, test, negate } => {
            let kind = test_kind(test);
            let tf = type_filter(ty, values);
            values.push(V::Text(param.clone()));
            let t = index_test_sql(ty, param, test, values);
            let not = if *negate { "NOT " } else { "" };
            format!("{alias}.seq {not}IN (SELECT seq FROM {} WHERE {tf}param = ? AND {t})", table(kind))
        }
        Condition::DateWindow { param, lo, hi } => {
            let t = ty.unwrap_or("");
            // Narrow values overlapping the window start at most a day before it.
            values.extend([
                V::Text(t.into()),
                V::Text(param.clone()),
                V::Integer(lo.saturating_sub(crate::sqlite_index::DAY_MS)),
                V::Integer(*hi),
                V::Integer(*lo),
                V::Text(t.into()),
                V::Text(param.clone()),
                V::Integer(*hi),
                V::Integer(*lo),
            ]);
            format!(
                "{alias}.seq IN (SELECT seq FROM idx_date WHERE type = ? AND param = ? AND lo >= ? AND lo < ? AND hi > ? \
                 UNION SELECT seq FROM idx_date_wide WHERE type = ? AND param = ? AND lo < ? AND hi > ?)"
            )
        }
        Condition::Missing { param, kind, missing } => {
            let tf = type_filter(ty, values);
            values.push(V::Text(param.clone()));
            let not = if *missing { "NOT " } else { "" };
            format!("{alias}.seq {not}IN (SELECT seq FROM {} WHERE {tf}param = ?)", table(*kind))
        }
        Condition::Chain { .. } => {
            format!("{alias}.seq IN ({})", chain_rows(c, ty, alias, values).expect("a chain"))
        }
        Condition::Has { source_type, param, query } => {
            values.push(V::Text(source_type.clone()));
            values.push(V::Text(param.clone()));
            let (s, i) = (format!("{alias}s"), format!("{alias}i"));
            // With the outer type known the subquery is uncorrelated: SQLite runs it once.
            let target = match ty {
                Some(t) => {
                    values.push(V::Text(t.to_string()));
                    "?".to_string()
                }
                None => format!("{alias}.type"),
            };
            if crate::sqlite_has::correlated(query) {
                // Many sources match: test each candidate target by its own references
                // (primary-key range) instead of collecting every source first. `+` keeps
                // SQLite from driving the probe by `seq` instead.
                let mut inner = String::new();
                for clause in &query.clauses {
                    inner.push_str(" AND ");
                    inner.push_str(&clause_sql(clause, query.resource_type.as_deref(), &format!("+{i}"), values));
                }
                return format!(
                    "EXISTS (SELECT 1 FROM idx_reference {i} WHERE {i}.type = ? AND {i}.param = ? \
                     AND {i}.target_id = {alias}.id AND {i}.target_type = {target}{inner})"
                );
            }
            if index_only(query) {
                // Index rows exist only for current, live versions, so conditions that are
                // all index probes can test the reference row's own `seq`: one B-tree probe
                // per candidate fewer than joining `resource`.
                let mut inner = String::new();
                for clause in &query.clauses {
                    inner.push_str(" AND ");
                    inner.push_str(&clause_sql(clause, query.resource_type.as_deref(), &i, values));
                }
                return format!(
                    "{alias}.id IN (SELECT {i}.target_id FROM idx_reference {i} \
                     WHERE {i}.type = ? AND {i}.param = ? AND {i}.target_type = {target}{inner})"
                );
            }
            let inner = where_clause(query, &s, values);
            format!(
                "{alias}.id IN (SELECT {i}.target_id FROM idx_reference {i} JOIN resource {s} ON {s}.seq = {i}.seq \
                 WHERE {i}.type = ? AND {i}.param = ? AND {i}.target_type = {target} AND {inner})"
            )
        }
        Condition::FullText { narrative_only, query, negate } => {
            let columns = if *narrative_only { "narrative" } else { "narrative content" };
            values.push(V::Text(format!("{{{columns}}} : ({query})")));
            let not = if *negate { "NOT " } else { "" };
            format!("{alias}.seq {not}IN (SELECT rowid FROM idx_fulltext WHERE idx_fulltext MATCH ?)")
        }
        Condition::Compartment { params, target_type, target_id } => {
            if params.is_empty() {
                return "0 = 1".into();
            }
            if target_id.is_none() {
                // Membership in any compartment of the type (type-level `$everything`): the
                // IN list would collect every reference to any target of the type before
                // the first row; tested per candidate from its index record instead, a page
                // in write order reads about as many resources as it returns.
                let list: String = params.iter().map(|(t, p)| format!("{t}.{p}|")).collect();
                values.push(V::Text(format!("|{list}")));
                values.push(V::Text(target_type.clone()));
                return format!(
                    "(SELECT tsunagu_refers(entries, {alias}.type, ?, ?) FROM idx_record WHERE seq = {alias}.seq) = 1"
                );
            }
            let pairs: Vec<&str> = params.iter().map(|_| "(type = ? AND param = ?)").collect();
            for (t, p) in params {
                values.push(V::Text(t.clone()));
                values.push(V::Text(p.clone()));
            }
            values.push(V::Text(target_type.clone()));
            let id_test = match target_id {
                Some(id) => {
                    values.push(V::Text(id.clone()));
                    " AND target_id = ?"
                }
                None => "",
            };
            format!(
                "{alias}.seq IN (SELECT seq FROM idx_reference WHERE ({}) AND target_type = ?{id_test})",
                pairs.join(" OR ")
            )
        }
        Condition::ResourceType(t) => {
            values.push(V::Text(t.clone()));
            format!("{alias}.type = ?")
        }
    }
}

/// Whether every condition of `q` is a test on index rows by `seq` (none reads the
/// `resource` row's id or timestamp).
pub(crate) fn index_only(q: &SearchQuery) -> bool {
    q.resource_type.is_some()
        && q.clauses.iter().flat_map(|c| &c.any).all(|c| {
            !matches!(
                c,
                Condition::Id(_) | Condition::LastUpdated { .. } | Condition::Has { .. } | Condition::ResourceType(_)
            )
        })
}

/// Whether the `display` column holds a text starting with `s` (`:text`).
fn display_like(s: &str, values: &mut Vec<V>) -> String {
    values.push(V::Text(format!("{}%", like_escape(s))));
    values.push(V::Text(format!("%{}{}%", crate::TOKEN_TEXT_SEPARATOR, like_escape(s))));
    "(display LIKE ? ESCAPE '\\' OR display LIKE ? ESCAPE '\\')".into()
}

/// [`test_sql`] of a test on `param`'s rows of type `ty` in its index table. A `:text` test
/// also names the codes whose display matches, from `idx_token_text`, so that only their
/// rows are read: `Observation?code:text=glucose` tested every code row's display (600,000
/// at 937,000 resources) for the 12,910 it matched.
pub(crate) fn index_test_sql(ty: Option<&str>, param: &str, test: &Test, values: &mut Vec<V>) -> String {
    let t = test_sql(test, values);
    let (Test::TokenText(s), Some(ty)) = (test, ty) else { return t };
    values.push(V::Text(ty.to_string()));
    values.push(V::Text(param.to_string()));
    let like = display_like(s, values);
    format!(
        "{t} AND (code, system) IN (SELECT code, system FROM idx_token_text WHERE type = ? AND param = ? AND {like})"
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

fn range_sql(op: RangeOp, lo_col: &str, hi_col: &str, lo: V, hi: V, values: &mut Vec<V>) -> String {
    let mut bind = |v: &V| values.push(v.clone());
    match op {
        RangeOp::Eq => {
            // `lo <= hi`, implied (a value starts before it ends), bounds the index range
            // above: `Observation?date=2015-03-05` read every value from that day on
            // (40 ms at 937k resources).
            bind(&lo);
            bind(&hi);
            bind(&hi);
            format!("({lo_col} >= ? AND {lo_col} <= ? AND {hi_col} <= ?)")
        }
        RangeOp::Ne => {
            bind(&lo);
            bind(&hi);
            format!("NOT ({lo_col} >= ? AND {hi_col} <= ?)")
        }
        RangeOp::Gt => {
            bind(&hi);
            format!("{hi_col} > ?")
        }
        RangeOp::Lt => {
            bind(&lo);
            format!("{lo_col} < ?")
        }
        RangeOp::Ge => {
            bind(&hi);
            bind(&lo);
            format!("({hi_col} > ? OR {lo_col} >= ?)")
        }
        RangeOp::Le => {
            bind(&lo);
            bind(&hi);
            format!("({lo_col} < ? OR {hi_col} <= ?)")
        }
        RangeOp::Sa => {
            bind(&hi);
            format!("{lo_col} >= ?")
        }
        RangeOp::Eb => {
            bind(&lo);
            format!("{hi_col} <= ?")
        }
        RangeOp::Ap => {
            bind(&hi);
            bind(&lo);
            format!("({lo_col} < ? AND {hi_col} > ?)")
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

pub(crate) fn test_sql(t: &Test, values: &mut Vec<V>) -> String {
    match t {
        Test::Token { system, code } => {
            let mut parts = Vec::new();
            if let Some(code) = code {
                parts.push("code = ?".to_string());
                values.push(V::Text(code.clone()));
            }
            match system {
                SystemMatch::Any => {}
                SystemMatch::Absent => parts.push("system = ''".into()),
                SystemMatch::Is(s) => {
                    parts.push("system = ?".into());
                    values.push(V::Text(s.clone()));
                }
            }
            if parts.is_empty() {
                "1 = 1".into()
            } else {
                parts.join(" AND ")
            }
        }
        Test::TokenText(s) => display_like(s, values),
        Test::StringStarts(s) => {
            values.push(V::Text(s.clone()));
            values.push(V::Text(prefix_end(s)));
            "norm >= ? AND norm < ?".into()
        }
        Test::StringContains(s) => {
            values.push(V::Text(format!("%{}%", like_escape(s))));
            "norm LIKE ? ESCAPE '\\'".into()
        }
        Test::StringExact(s) => {
            values.push(V::Text(s.clone()));
            "exact = ?".into()
        }
        Test::Date { op, lo, hi } => range_sql(*op, "lo", "hi", V::Integer(*lo), V::Integer(*hi), values),
        Test::Number { op, value, lo, hi } => point_sql(*op, *value, *lo, *hi, values),
        Test::Quantity { op, value, lo, hi, system, code } => {
            let mut sql = point_sql(*op, *value, *lo, *hi, values);
            if let Some(c) = code {
                sql.push_str(" AND code = ?");
                values.push(V::Text(c.clone()));
            }
            if let Some(s) = system {
                sql.push_str(" AND system = ?");
                values.push(V::Text(s.clone()));
            }
            sql
        }
        Test::Reference { target_type, target_id, url } => {
            let mut parts = Vec::new();
            if let Some(id) = target_id {
                parts.push("target_id = ?");
                values.push(V::Text(id.clone()));
            }
            if let Some(t) = target_type {
                parts.push("target_type = ?");
                values.push(V::Text(t.clone()));
            }
            if let Some(u) = url {
                parts.push("url = ?");
                values.push(V::Text(u.clone()));
            }
            if parts.is_empty() {
                "1 = 1".into()
            } else {
                parts.join(" AND ")
            }
        }
        Test::UriExact(s) => {
            values.push(V::Text(s.clone()));
            "value = ?".into()
        }
        Test::UriBelow(s) => {
            values.push(V::Text(s.clone()));
            values.push(V::Text(prefix_end(s)));
            "value >= ? AND value < ?".into()
        }
        Test::UriAbove(s) => {
            values.push(V::Text(s.clone()));
            "substr(?, 1, length(value)) = value".into()
        }
        Test::TokenIn(pairs) => token_in_sql(pairs, values),
        Test::Composite { system, code, second } => {
            values.push(V::Text(code.clone()));
            let system = match system {
                SystemMatch::Any => String::new(),
                SystemMatch::Absent => " AND c_system = ''".into(),
                SystemMatch::Is(s) => {
                    values.push(V::Text(s.clone()));
                    " AND c_system = ?".into()
                }
            };
            // The second component sits in the columns its own kind's table uses.
            let second = test_sql(second, values);
            format!("c_code = ?{system} AND ({second})")
        }
    }
}

/// A list of codes per system as `code IN (json_each(?))`: one bound value however long
/// the list (a value set may expand to thousands of codes), which SQLite turns into an
/// ephemeral index and probes the token index with, code by code.
fn token_in_sql(pairs: &[(String, String)], values: &mut Vec<V>) -> String {
    let mut by_system: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (system, code) in pairs {
        by_system.entry(system.as_str()).or_default().push(code.as_str());
    }
    if by_system.is_empty() {
        return "0 = 1".into();
    }
    let mut parts = Vec::new();
    for (system, codes) in by_system {
        values.push(V::Text(json_string_array(&codes)));
        values.push(V::Text(system.to_string()));
        parts.push("(code IN (SELECT value FROM json_each(?)) AND system = ?)");
    }
    format!("({})", parts.join(" OR "))
}

/// `["a","b"]` with JSON string escapes (the store has no JSON library of its own).
fn json_string_array(items: &[&str]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for ch in item.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// `SELECT COUNT(*)` of the index rows matching a clause that is one positive index
/// condition or a date window, stopping at `cap`: a cheap bound on how many resources the
/// clause allows.
pub(crate) fn estimate_sql(c: &Clause, ty: &str, cap: i64, values: &mut Vec<V>) -> Option<String> {
    if let [cond] = c.any.as_slice() {
        if let Some(sql) = crate::sqlite_negation::estimate_sql(cond, ty, cap, values) {
            return Some(sql);
        }
    }
    if let [Condition::Missing { param, kind, missing: false }] = c.any.as_slice() {
        // `:missing=false`: the resources with a row of the parameter.
        values.push(V::Text(ty.to_string()));
        values.push(V::Text(param.clone()));
        return Some(format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE type = ? AND param = ? LIMIT {cap})",
            table(*kind)
        ));
    }
    if let [Condition::LastUpdated { lo, hi }] = c.any.as_slice() {
        // Versions of the type in the range (`resource_type_updated`): superseded ones count
        // too, which only raises the bound. `_lastUpdated=gt…` often matches nearly every
        // resource; counted, it lets the dense walk answer instead of sorting every match.
        values.extend([V::Text(ty.to_string()), V::Integer(*lo), V::Integer(*hi)]);
        return Some(format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM resource INDEXED BY resource_type_updated \
             WHERE type = ? AND last_updated >= ? AND last_updated < ? LIMIT {cap})"
        ));
    }
    if let [Condition::DateWindow { param, lo, hi }] = c.any.as_slice() {
        // The rows the window's own probe reads (see `condition_sql`): narrow values starting
        // at most a day before it, and the wide ones. Counted as one half-open range
        // (`lo < hi`) it would read every row before the window's end.
        let day = crate::sqlite_index::DAY_MS;
        values.extend([
            V::Text(ty.to_string()),
            V::Text(param.clone()),
            V::Integer(lo.saturating_sub(day)),
            V::Integer(*hi),
            V::Integer(*lo),
            V::Text(ty.to_string()),
            V::Text(param.clone()),
            V::Integer(*hi),
            V::Integer(*lo),
        ]);
        return Some(format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM idx_date WHERE type = ? AND param = ? AND lo >= ? AND lo < ? \
             AND hi > ? LIMIT {cap})) + (SELECT COUNT(*) FROM (SELECT 1 FROM idx_date_wide WHERE type = ? AND param = ? \
             AND lo < ? AND hi > ? LIMIT {cap}))"
        ));
    }
    if c.any.len() > 1 {
        return alternatives_estimate_sql(c, ty, cap, values);
    }
    let [cond @ Condition::Index { param, test, negate: false }] = c.any.as_slice() else { return None };
    if let Some(sql) = bounded_date_estimate_sql(cond, ty, cap, values) {
        return Some(sql);
    }
    values.push(V::Text(ty.to_string()));
    values.push(V::Text(param.clone()));
    let t = index_test_sql(Some(ty), param, test, values);
    Some(format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE type = ? AND param = ? AND {t} LIMIT {cap})",
        table(test_kind(test))
    ))
}

/// The index rows of a clause of several plain index tests (not dates, at most
/// [`ALTERNATIVES_PER_COMPOUND`]), counted together up to `cap`: the compound stops at `cap`
/// rows whichever values they come from. An upper bound of the matches (a resource with two
/// of the values counts twice).
fn alternatives_estimate_sql(c: &Clause, ty: &str, cap: i64, values: &mut Vec<V>) -> Option<String> {
    // Unestimated, many values are collected, never tested on each row's index record (a
    // dense or sort walk): that test reads the record once per value.
    if c.any.len() > ALTERNATIVES_PER_COMPOUND {
        return None;
    }
    let selects: Vec<String> = plain_alternatives(c)?
        .into_iter()
        .map(|(param, test)| alternative_rows("1", Some(ty), param, test, values))
        .collect();
    Some(format!("SELECT COUNT(*) FROM ({} LIMIT {cap})", selects.join(" UNION ALL ")))
}

/// A half-open date condition chosen rare (`sqlite_rare_dates`), as the `seq`s of its
/// matches collected from its lower bound ([`bounded_date_rows`]).
fn collected_date(c: &Condition, ty: Option<&str>, alias: &str, values: &mut Vec<V>) -> Option<String> {
    if !crate::sqlite_rare_dates::collected(c) {
        return None;
    }
    let parts = bounded_date_rows(c, ty?, values)?;
    let selects: Vec<String> = parts.iter().map(|p| format!("SELECT seq FROM {p}")).collect();
    Some(format!("{alias}.seq IN ({})", selects.join(" UNION ALL ")))
}

/// The count of a date condition whose matching values all start after a bound, read as
/// [`bounded_date_rows`] and stopping at `cap` per table: the same rows the condition's own
/// test finds, without reading every row before the bound (`hi > ? OR lo >= ?` cannot use
/// the index, and its matches are at the end). `None` for other conditions.
pub(crate) fn bounded_date_estimate_sql(cond: &Condition, ty: &str, cap: i64, values: &mut Vec<V>) -> Option<String> {
    let parts = bounded_date_rows(cond, ty, values)?;
    let counts: Vec<String> =
        parts.iter().map(|p| format!("(SELECT COUNT(*) FROM (SELECT 1 FROM {p} LIMIT {cap}))")).collect();
    Some(format!("SELECT {}", counts.join(" + ")))
}

/// The `FROM … WHERE …` parts (one or two) whose `seq`s are every resource a date condition
/// matches, when its matching values all start after a bound
/// (`sqlite_sort::condition_bounds`: `ge`, `gt`, `sa`, `eq`, `ap`): a range of `idx_date`'s
/// `lo` from that bound, and where wide values may start before it, those from
/// `idx_date_wide`. A `seq` may appear more than once.
fn bounded_date_rows(cond: &Condition, ty: &str, values: &mut Vec<V>) -> Option<Vec<String>> {
    let Condition::Index { param, test: test @ Test::Date { .. }, negate: false } = cond else { return None };
    let bounds = crate::sqlite_sort::condition_bounds(cond, param)?;
    let from = bounds.from?;
    values.extend([V::Text(ty.to_string()), V::Text(param.to_string()), V::Integer(from)]);
    let below = match bounds.below {
        Some(b) => {
            values.push(V::Integer(b));
            " AND lo < ?"
        }
        None => "",
    };
    let t = test_sql(test, values);
    let mut parts = vec![format!("idx_date WHERE type = ? AND param = ? AND lo >= ?{below} AND {t}")];
    if bounds.wide_before {
        values.extend([V::Text(ty.to_string()), V::Text(param.to_string()), V::Integer(from)]);
        let t = test_sql(test, values);
        parts.push(format!("idx_date_wide WHERE type = ? AND param = ? AND lo < ? AND {t}"));
    }
    Some(parts)
}

/// [`order_by_kept`] leaving out the keys before `from` (the sort-driven plan orders a group of
/// resources equal in those): the same terms for the keys that remain and the same
/// tie-break, `seq` in the first key's direction.
pub(crate) fn order_by_from(keys: &[SortKey], from: usize, alias: &str, values: &mut Vec<V>) -> String {
    order_by_kept(keys, |i| i >= from, alias, values)
}

/// `ORDER BY` for the query's sort keys that `keep` keeps (by position; missing values
/// last), `seq` breaking ties in the first key's direction. A key no resource has a value
/// of sorts every match alike, so leaving its term out changes no order.
pub(crate) fn order_by_kept(
    keys: &[SortKey],
    keep: impl Fn(usize) -> bool,
    alias: &str,
    values: &mut Vec<V>,
) -> String {
    let mut parts = Vec::new();
    for (_, k) in keys.iter().enumerate().filter(|(i, _)| keep(*i)) {
        let dir = if k.descending { "DESC" } else { "ASC" };
        let expr = match &k.param {
            SortParam::Id => format!("{alias}.id"),
            SortParam::LastUpdated => format!("{alias}.last_updated"),
            SortParam::Index { param, kind: IndexKind::Reference } => {
                values.push(V::Text(param.clone()));
                crate::sqlite_record::reference_sort_sql(k.descending, alias)
            }
            SortParam::Index { param, kind } => {
                // A date range sorts by its start in both directions (the index leads with
                // `lo`, so the sort-driven plan can walk it either way).
                let (agg, col) = match (kind, k.descending) {
                    (IndexKind::Date, false) => ("MIN", "lo"),
                    (IndexKind::Date, true) => ("MAX", "lo"),
                    (k, desc) => (
                        if desc { "MAX" } else { "MIN" },
                        match k {
                            IndexKind::Token => "code",
                            IndexKind::String => "norm",
                            _ => "value",
                        },
                    ),
                };
                values.push(V::Text(param.clone()));
                crate::sqlite_record::sort_value_sql(table(*kind), col, agg == "MAX", alias)
            }
        };
        // Resources without a value sort last in both directions.
        parts.push(format!("{expr} {dir} NULLS LAST"));
    }
    // Ties follow the first key's direction, as the sort-driven plan walks them.
    let tie = if keys.first().is_some_and(|k| k.descending) { "DESC" } else { "ASC" };
    parts.push(format!("{alias}.seq {tie}"));
    parts.join(", ")
}

/// A clause that can drive a page in write order: one exact token (`system|code`) or one
/// literal reference (`Type/id`), whose index rows are stored in `seq` order under that
/// key. Scanning them in order and stopping after a page costs O(page), where the general
/// plan would first collect every match.
pub(crate) struct Driver {
    pub clause: usize,
    /// `FROM … JOIN resource r` part and its key conditions, aliased `d`.
    pub from: String,
    pub values: Vec<V>,
}

/// The `seq`s of one clause's index rows, as the rows a general plan reads when every
/// condition is an index test ([`index_only`]): index rows exist only for current, live
/// versions of their type, so such a plan need not probe the resource table for each match
/// (at a million resources that probe was half of sorting 28,000 heights by value).
#[derive(Clone)]
pub(crate) struct IndexSource {
    pub clause: usize,
    /// Its index rows, as counted when it was chosen.
    pub rows: i64,
    /// `SELECT DISTINCT seq, type FROM … LIMIT -1`.
    pub sql: String,
    pub values: Vec<V>,
}

/// The clause whose rows an index-only general plan reads: one positive token with a code
/// (any system or one), one literal reference or one resource's compartment, with fewer
/// than `cap` rows; of several, the one with the fewest (each count runs under the page's
/// step ceiling). Counted up to [`FIRST_COUNT`] first, so that a selective clause is found
/// without counting a common one far.
/// Reading a clause's index rows beats the general plan on the resource table, which
/// probes the resource table for every candidate, even for common clauses (132,000
/// `category=vital-signs` rows: 270 ms sorted against 345 ms).
pub(crate) fn index_source(
    c: &rusqlite::Connection,
    q: &SearchQuery,
    cap: i64,
) -> rusqlite::Result<Option<IndexSource>> {
    let Some(ty) = q.resource_type.as_ref().filter(|_| index_only(q)) else { return Ok(None) };
    let mut candidates = Vec::new();
    for (i, clause) in q.clauses.iter().enumerate() {
        let [cond] = clause.any.as_slice() else { continue };
        let Some((rows, values)) = source_rows(ty, cond) else { continue };
        // `type` too: a condition may read it (type-level compartment membership). `LIMIT -1`
        // keeps SQLite from flattening the source into the query, where it drove the plan
        // by another clause's list instead (470,000 `status=final` rows probed against
        // 28,000 of one code).
        let sql = format!("SELECT DISTINCT seq, type FROM {rows} LIMIT -1");
        candidates.push((IndexSource { clause: i, rows: 0, sql, values }, rows));
    }
    for cap in [cap.min(FIRST_COUNT), cap] {
        let mut best: Option<(i64, usize)> = None;
        for (k, (source, rows)) in candidates.iter().enumerate() {
            // No further than the fewest so far: a clause with more cannot be chosen.
            let limit = best.map_or(cap, |(fewest, _)| fewest);
            let counted = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {rows} LIMIT ?)");
            let values = source.values.iter().cloned().chain([V::Integer(limit)]);
            let n: i64 = c.prepare_cached(&counted)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
            if n < limit {
                best = Some((n, k));
            }
        }
        if let Some((n, k)) = best {
            let (mut source, rows) = candidates.swap_remove(k);
            source.rows = n;
            if in_one_system(c, ty, &q.clauses[source.clause])? {
                // Each resource has one row: its rows come without a sort for DISTINCT (30 ms
                // of 132,000 `category=vital-signs` rows).
                source.sql = format!("SELECT seq, type FROM {rows} LIMIT -1");
            }
            return Ok(Some(source));
        }
    }
    Ok(None)
}

/// Whether `clause` is a code in any system whose index rows all have one system (two
/// probes of the key's ends): then a resource has at most one of them. Were another system
/// written between this and the page's statement, a resource could come twice; the page
/// drops repeats (`page_of_seqs`).
fn in_one_system(c: &rusqlite::Connection, ty: &str, clause: &Clause) -> rusqlite::Result<bool> {
    let [Condition::Index { param, test: Test::Token { system: SystemMatch::Any, code: Some(code) }, negate: false }] =
        clause.any.as_slice()
    else {
        return Ok(false);
    };
    let end = |dir: &str| {
        format!(
            "(SELECT system FROM idx_token WHERE type = ?1 AND param = ?2 AND code = ?3 ORDER BY system {dir} LIMIT 1)"
        )
    };
    let sql = format!("SELECT {} IS {}", end("ASC"), end("DESC"));
    c.prepare_cached(&sql)?.query_row(rusqlite::params![ty, param, code], |r| r.get(0))
}

/// The rows [`index_source`] counts its candidates to first.
const FIRST_COUNT: i64 = 100_000;

/// The index rows a positive token with a code or a literal reference selects by their key
/// alone: the table, the parameter, each key column with its value, and whether that is
/// the whole key, so that the rows under it are stored in `seq` order (a code in one
/// system, a `Type/id`; a code in any system spans several keys).
fn key_rows(cond: &Condition) -> Option<KeyRows<'_>> {
    let Condition::Index { param, test, negate: false } = cond else { return None };
    let text = |s: &str| V::Text(s.to_string());
    let (table, keys, whole_key) = match test {
        Test::Token { system: SystemMatch::Is(s), code: Some(code) } => {
            ("idx_token", vec![("code", text(code)), ("system", text(s))], true)
        }
        Test::Token { system: SystemMatch::Any, code: Some(code) } => ("idx_token", vec![("code", text(code))], false),
        Test::Reference { target_type: Some(t), target_id: Some(id), url: None } => {
            ("idx_reference", vec![("target_id", text(id)), ("target_type", text(t))], true)
        }
        _ => return None,
    };
    Some(KeyRows { table, param, keys, whole_key })
}

/// See [`key_rows`].
struct KeyRows<'c> {
    table: &'static str,
    param: &'c str,
    keys: Vec<(&'static str, V)>,
    whole_key: bool,
}

/// The table, the `WHERE` tests (on `alias.`, or unqualified where `alias` is empty) and
/// their values selecting the rows of [`key_rows`] of resources of type `ty`.
fn key_rows_sql(ty: &str, alias: &str, rows: KeyRows<'_>) -> (&'static str, String, Vec<V>) {
    let KeyRows { table, param, keys, .. } = rows;
    let a = if alias.is_empty() { String::new() } else { format!("{alias}.") };
    let mut values = vec![V::Text(ty.to_string()), V::Text(param.to_string())];
    let mut tests = vec![format!("{a}type = ?"), format!("{a}param = ?")];
    for (column, value) in keys {
        tests.push(format!("{a}{column} = ?"));
        values.push(value);
    }
    (table, tests.join(" AND "), values)
}

/// `table WHERE …` selecting the index rows of resources of type `ty` that pass `cond`,
/// with its values, for the conditions [`index_source`] reads: a code, a literal
/// reference ([`key_rows`]), or membership in one resource's compartment. A resource may
/// have several such rows (a code in two systems): the source reads `DISTINCT seq`.
fn source_rows(ty: &str, cond: &Condition) -> Option<(String, Vec<V>)> {
    if let Some(rows) = key_rows(cond) {
        let (table, tests, values) = key_rows_sql(ty, "", rows);
        return Some((format!("{table} WHERE {tests}"), values));
    }
    let Condition::Compartment { params, target_type, target_id: Some(id) } = cond else { return None };
    // Only the type's own parameters can give its resources' rows.
    let own: Vec<&str> = params.iter().filter(|(t, _)| t == ty).map(|(_, p)| p.as_str()).collect();
    if own.is_empty() {
        return None;
    }
    let text = |s: &str| V::Text(s.to_string());
    let marks = vec!["?"; own.len()].join(", ");
    let mut keys = vec![text(ty)];
    keys.extend(own.iter().map(|p| text(p)));
    keys.extend([text(target_type), text(id)]);
    Some((format!("idx_reference WHERE type = ? AND param IN ({marks}) AND target_type = ? AND target_id = ?"), keys))
}

pub(crate) fn driver(q: &SearchQuery) -> Option<Driver> {
    let ty = q.resource_type.as_ref()?;
    q.clauses.iter().enumerate().find_map(|(i, c)| {
        let [cond] = c.any.as_slice() else { return None };
        let rows = key_rows(cond).filter(|rows| rows.whole_key)?;
        let (table, tests, values) = key_rows_sql(ty, "d", rows);
        let from = format!("{table} d JOIN resource r ON r.seq = d.seq WHERE {tests}");
        Some(Driver { clause: i, from, values })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_lists_are_json_arrays_whatever_the_codes() {
        assert_eq!(super::json_string_array(&["a", "b\"c", "d\\e", "\u{1}"]), r#"["a","b\"c","d\\e","\u0001"]"#);
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let list = super::json_string_array(&["x\"y", "山田", "z\\"]);
        let back: Vec<String> = c
            .prepare("SELECT value FROM json_each(?1)")
            .unwrap()
            .query_map([list], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, ["x\"y", "山田", "z\\"]);
    }
}
