//! Reads: current versions, searches (with totals and both kinds of paging), history and
//! the live-version walk, on any connection or transaction (pooled primary or replica,
//! a write transaction, a pinned view).

use postgres::{GenericClient, Row};

use crate::db::Cached;
use tsunagu_store::{
    ByteCap, Condition, CostlyPart, HistoryPage, HistoryQuery, HistoryScope, IndexKind, Method, ResourceVersion,
    SearchPage, SearchQuery, SizedRow, SortParam, StoreError, Test,
};

use crate::ceiling::Timeout;

use crate::query::{order_by, where_clause, Probe};
use crate::value::{number, refs, V};
use crate::Pg;

/// Why a page in write order is walked after its plan was canceled (`explain`).
const CEILING_REACHED: &str = "ceiling reached";

pub(crate) const COLUMNS: &str = "r.type, r.id, r.version, r.last_updated, r.deleted, r.method, r.body, r.seq";

/// The columns of a page's rows (alias `r`), for [`sized_row`]: each body only when it is
/// at most [`tsunagu_store::INLINE_BODY_BYTES`] (`octet_length` of a stored value reads its
/// header, not the value), and every body's length.
pub(crate) const PAGE_COLUMNS: &str = "r.type, r.id, r.version, r.last_updated, r.deleted, r.method, \
     CASE WHEN octet_length(r.body) <= 65536 THEN r.body END, r.seq, octet_length(r.body)::int8";

pub(crate) fn sized_row(r: &Row) -> SizedRow {
    (version(r), r.get::<_, i64>(8) as u64)
}

/// The rows of `rows` that fit `cap`, the large bodies read now (`page_bytes::fit`).
pub(crate) fn fit(
    c: &mut Cached<'_, impl GenericClient>,
    rows: Vec<SizedRow>,
    cap: Option<ByteCap>,
) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
    tsunagu_store::fit_page_bytes(rows, cap, |seq| {
        // One plan: the primary key.
        Ok(c.query_opt_once("SELECT body FROM resource WHERE seq = $1", &[&seq]).pg()?.map(|r| r.get(0)))
    })
}

fn method(s: &str) -> Method {
    match s {
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Put,
    }
}

pub(crate) fn version(r: &Row) -> ResourceVersion {
    ResourceVersion {
        resource_type: r.get(0),
        id: r.get(1),
        version: r.get::<_, i64>(2) as u64,
        last_updated_ms: r.get(3),
        deleted: r.get(4),
        method: method(r.get(5)),
        // NULL: a page's body too large to come with its row (`PAGE_COLUMNS`).
        body: r.get::<_, Option<Vec<u8>>>(6).unwrap_or_default(),
        seq: r.get(7),
    }
}

/// The index rows of `clause` of type `ty`, counted up to `cap` (`query::capped_rows_sql`);
/// `None` for a clause that is not index rows. From a cap of [`ESTIMATED_FROM_CAP`], an
/// eighth of it is counted first; where that many are there and PostgreSQL's planner
/// expects more than [`ESTIMATE_MARGIN`] times the cap, the clause is taken to reach it: a
/// plan choice (a sort walk's, a `_has`'s, a driver's), where counting 18,724 rows of a
/// common code cost 6.4 ms of a 9 ms `_has` page at 937k resources.
pub(crate) fn capped_rows(
    c: &mut Cached<'_, impl GenericClient>,
    clause: &tsunagu_store::Clause,
    ty: &str,
    cap: i64,
) -> Result<Option<i64>, StoreError> {
    let count = |c: &mut Cached<'_, _>, cap: i64| -> Result<Option<i64>, StoreError> {
        let mut values = Vec::new();
        let Some(sql) = crate::query::capped_rows_sql(clause, ty, cap, &mut values) else { return Ok(None) };
        Ok(Some(query(c, &sql, &values)?[0].get(0)))
    };
    if cap >= ESTIMATED_FROM_CAP && crate::query::is_rows_clause(clause) {
        let few = cap / FIRST_SHARE as i64;
        let n = count(c, few)?.expect("a rows clause");
        if n < few {
            return Ok(Some(n));
        }
        let mut values = Vec::new();
        let rows = crate::query::clause_rows_select(clause, ty, &mut values);
        if expected_past(c, &rows, &values, cap)?.is_some() {
            tsunagu_store::trace::plan(|| format!("at least {cap} rows, as the planner expects ({few} counted)"));
            return Ok(Some(cap));
        }
    }
    count(c, cap)
}

/// The cap from which [`capped_rows`] counts an eighth first: below it the planner's
/// answer costs about as much as the count.
const ESTIMATED_FROM_CAP: i64 = 4096;

/// The share of a threshold of rows read or counted before the planner is asked whether a
/// clause passes it ([`expected_past`]).
pub(crate) const FIRST_SHARE: usize = 8;

/// How many times more rows than a threshold PostgreSQL's planner must expect of a clause
/// for it to be taken as past the threshold.
const ESTIMATE_MARGIN: f64 = 1.25;

/// PostgreSQL's estimate of the rows of `rows` (with `values`), when it expects more than
/// [`ESTIMATE_MARGIN`] times `threshold`. Asked only of a clause of which a
/// [`FIRST_SHARE`]th of the threshold was found: the planner multiplies its columns'
/// frequencies, so a code common under another parameter may be estimated large and have
/// none here.
pub(crate) fn expected_past(
    c: &mut Cached<'_, impl GenericClient>,
    rows: &str,
    values: &[V],
    threshold: i64,
) -> Result<Option<f64>, StoreError> {
    let estimate = planner_rows(c, rows, values)?;
    Ok((estimate > threshold as f64 * ESTIMATE_MARGIN).then_some(estimate))
}

/// The rows PostgreSQL's planner expects `rows` (with `values`) to return: the `rows=` of
/// the first line of its `EXPLAIN` (0 where it cannot be read).
fn planner_rows(c: &mut Cached<'_, impl GenericClient>, rows: &str, values: &[V]) -> Result<f64, StoreError> {
    let sql = number(&format!("EXPLAIN {rows}"), values);
    let plan = c.query(&sql, &refs(values)).pg()?;
    let first: Option<String> = plan.first().map(|r| r.get(0));
    Ok(first.as_deref().and_then(estimated_rows).unwrap_or(0.0))
}

/// The `rows=` of a line of `EXPLAIN` output.
pub(crate) fn estimated_rows(line: &str) -> Option<f64> {
    let at = line.find(" rows=")? + " rows=".len();
    line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn query(c: &mut Cached<'_, impl GenericClient>, sql: &str, values: &[V]) -> Result<Vec<Row>, StoreError> {
    let sql = number(sql, values);
    tsunagu_store::trace::statement(&sql, values);
    c.query(&sql, &refs(values)).pg()
}

/// [`query`] for a statement whose plan does not depend on its values
/// ([`Cached::query_once`]).
fn query_once(c: &mut Cached<'_, impl GenericClient>, sql: &str, values: &[V]) -> Result<Vec<Row>, StoreError> {
    let sql = number(sql, values);
    tsunagu_store::trace::statement(&sql, values);
    c.query_once(&sql, &refs(values)).pg()
}

/// How the statements of a search page of `q` are planned: once when the page is one walk
/// of an index key (`drive::alone`), a string test's few rows (`few::alone`), found by ids
/// alone or only a kept total, per values otherwise.
pub(crate) fn plans_for(q: &SearchQuery) -> crate::db::Plans {
    if crate::drive::alone(q) || crate::few::alone(q) || ids_alone(q) || kept_total_alone(q) {
        crate::db::Plans::Once
    } else {
        crate::db::Plans::PerValues
    }
}

/// Whether `q` asks only for the total of a type or of every type, which is kept
/// (`counts.rs`): a read of `live_count`'s key.
fn kept_total_alone(q: &SearchQuery) -> bool {
    q.total && q.count == 0 && q.clauses.is_empty()
}

/// Whether a page of `q` is found by ids alone (`Patient?_id=a,b`), in write order and
/// without a total: its one statement probes the (type, id, version) index whatever the
/// ids, so it is planned once ([`Cached::query_once`]).
fn ids_alone(q: &SearchQuery) -> bool {
    q.resource_type.is_some()
        && q.sort.is_empty()
        && !q.total
        && q.count > 0
        && !q.clauses.is_empty()
        && q.clauses.iter().all(|c| !c.any.is_empty() && c.any.iter().all(|c| matches!(c, Condition::Id(_))))
}

/// `q` with only the sort keys some live resource of its type has a value of
/// ([`tsunagu_store::sort_keys_with_values_only`]): one probe of the key's index per key
/// (dates and composites are taken to have values: theirs are kept in more than one
/// place). `None`: nothing to leave out.
fn without_valueless_keys(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
) -> Result<Option<SearchQuery>, StoreError> {
    let Some(ty) = q.resource_type.as_deref().filter(|_| q.sort.len() > 1) else { return Ok(None) };
    let mut valued = Vec::with_capacity(q.sort.len());
    for key in &q.sort {
        valued.push(match &key.param {
            SortParam::Index { param, kind } if !matches!(kind, IndexKind::Date | IndexKind::Composite) => {
                let sql = format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE type = ? AND param = ?)",
                    crate::query::table(*kind)
                );
                query_once(c, &sql, &[V::Text(ty.to_string()), V::Text(param.clone())])?[0].get::<_, bool>(0)
            }
            _ => true,
        });
    }
    Ok(tsunagu_store::sort_keys_with_values_only(&q.sort, &valued).map(|sort| SearchQuery { sort, ..q.clone() }))
}

pub(crate) fn current(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    id: &str,
) -> Result<Option<ResourceVersion>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM resource r WHERE type = $1 AND id = $2 ORDER BY version DESC LIMIT 1");
    // One plan: the (type, id, version) index, whatever the id.
    Ok(c.query_opt_once(&sql, &[&ty, &id]).pg()?.as_ref().map(version))
}

/// The newest version of each (type, id) in `keys` that is stored, in the order of
/// `keys`, while they fit `cap`, in one statement (and one per large body).
pub(crate) fn current_many(
    c: &mut Cached<'_, impl GenericClient>,
    keys: &[(String, String)],
    cap: Option<ByteCap>,
) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
    let types: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|(_, i)| i.as_str()).collect();
    let sql = format!(
        "SELECT {PAGE_COLUMNS} FROM unnest($1::text[], $2::text[]) WITH ORDINALITY k(type, id, n) CROSS JOIN \
         LATERAL (SELECT * FROM resource x WHERE x.type = k.type AND x.id = k.id ORDER BY x.version DESC LIMIT 1) r \
         ORDER BY k.n"
    );
    // One plan: a probe of the (type, id, version) index per key.
    let rows = c.query_once(&sql, &[&types, &ids]).pg()?.iter().map(sized_row).collect();
    fit(c, rows, cap)
}

pub(crate) fn vread(
    c: &mut Cached<'_, impl GenericClient>,
    ty: &str,
    id: &str,
    v: u64,
) -> Result<Option<ResourceVersion>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM resource r WHERE type = $1 AND id = $2 AND version = $3");
    // One plan: the (type, id, version) index.
    Ok(c.query_opt_once(&sql, &[&ty, &id, &(v as i64)]).pg()?.as_ref().map(version))
}

pub(crate) fn search_ids(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut values = Vec::new();
    let mut sql = format!("SELECT r.type, r.id FROM resource r WHERE {}", where_clause(q, "r", &mut values));
    if q.count > 0 {
        sql.push_str(&format!(" LIMIT {}", q.count));
    }
    Ok(query(c, &sql, &values)?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One page of a search, under the ceiling `t` when there is one (`ceiling.rs`, which
/// sets it): a statement canceled there makes the page [`StoreError::TooCostly`], or for a
/// page in write order, the write-order walk's.
pub(crate) fn search<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: Option<&Timeout>,
    walk_from: i64,
) -> Result<SearchPage, StoreError> {
    let trimmed = without_valueless_keys(c, q)?;
    let q = trimmed.as_ref().unwrap_or(q);
    let costly = |part| move |e| crate::ceiling::costly(e, part, t);
    let mut values = Vec::new();
    let filter = where_clause(q, "r", &mut values);
    let total = if q.total && q.clauses.is_empty() {
        tsunagu_store::trace::plan(|| "_total: the kept count of live resources".into());
        Some(crate::counts::total(c, q.resource_type.as_deref())?)
    } else if q.total {
        let mut index_values = Vec::new();
        let rows = match crate::indexonly::count(q, &mut index_values) {
            Some(sql) => {
                tsunagu_store::trace::plan(|| "_total: count the matches in index rows alone".into());
                query(c, &sql, &index_values)
            }
            None => {
                tsunagu_store::trace::plan(|| "_total: count every match".into());
                query(c, &format!("SELECT COUNT(*) FROM resource r WHERE {filter}"), &values)
            }
        }
        .map_err(costly(CostlyPart::Total))?;
        Some(rows[0].get::<_, i64>(0) as u64)
    } else {
        None
    };
    if q.count == 0 {
        return Ok(SearchPage { resources: Vec::new(), total, more: false, resume_after: None, stopped_by: None });
    }
    match crate::drive::page(c, q).and_then(|p| match p {
        Some(p) => Ok(Some(p)),
        None => crate::few::page(c, q),
    }) {
        Ok(Some(mut rows)) => {
            let more = rows.len() > q.count;
            rows.truncate(q.count);
            let (resources, cut) = fit(c, rows, q.max_bytes)?;
            return Ok(SearchPage::fitted(resources, cut, more, total, q));
        }
        Ok(None) => {}
        // Past the ceiling (it reads a page's index rows, so hardly ever): as the general SQL.
        Err(StoreError::Canceled(m)) => match t {
            Some(t) => return crate::ceiling::write_order_walk(c, q, t, CEILING_REACHED),
            None => return Err(StoreError::Canceled(m)),
        },
        Err(e) => return Err(e),
    }
    let mut walked = crate::sortwalk::page(c, q, walk_from).map_err(costly(CostlyPart::Sort))?;
    if walked.is_none() {
        let mut index_values = Vec::new();
        if let Some(sql) = crate::indexonly::sorted_page(q, &mut index_values) {
            tsunagu_store::trace::plan(|| "sorted: the matches in index rows alone, then the page's resources".into());
            let rows = query(c, &sql, &index_values).map_err(costly(CostlyPart::Sort))?;
            walked = Some(rows.iter().map(|r| r.get::<_, i64>(0)).collect());
        }
    }
    if let Some(seqs) = walked {
        let more = seqs.len() > q.count;
        let seqs = &seqs[..seqs.len().min(q.count)];
        // One plan: the page's rows by primary key.
        let rows = c
            .query_once(&format!("SELECT {PAGE_COLUMNS} FROM resource r WHERE r.seq = ANY($1)"), &[&seqs])
            .pg()
            .map_err(costly(CostlyPart::Sort))?;
        let mut rows: Vec<SizedRow> = rows.iter().map(sized_row).collect();
        rows.sort_by_key(|(v, _)| seqs.iter().position(|s| *s == v.seq));
        let (resources, cut) = fit(c, rows, q.max_bytes)?;
        return Ok(SearchPage::fitted(resources, cut, more, total, q));
    }
    if let (true, Some(t)) = (q.sort.is_empty() && matches_most(q), t) {
        let page = crate::ceiling::write_order_walk(c, q, t, "the conditions match most resources")?;
        return Ok(SearchPage { total, ..page });
    }
    let has_walk = if q.sort.is_empty() && t.is_some() { common_has(c, q)? } else { None };
    if let (true, Some(t)) = (q.sort.is_empty() && (probed_when_common(q) || has_walk.is_some()), t) {
        if let Some(page) = crate::ceiling::common_walk(c, q, t, has_walk.unwrap_or(Probe::Each))? {
            return Ok(SearchPage { total, ..page });
        }
    }
    let sql = if q.sort.is_empty() {
        tsunagu_store::trace::plan(|| "write order: the general SQL".into());
        let mut page_filter = filter;
        if let Some(after) = q.after_seq {
            page_filter.push_str(" AND r.seq > ?");
            values.push(V::Int(after));
        }
        values.push(V::Int(q.count as i64 + 1));
        format!("SELECT {PAGE_COLUMNS} FROM resource r WHERE {page_filter} ORDER BY r.seq LIMIT ?")
    } else {
        tsunagu_store::trace::plan(|| "sorted: the general SQL".into());
        let order = order_by(&q.sort, "r", &mut values);
        values.push(V::Int(q.count as i64 + 1));
        values.push(V::Int(q.offset as i64));
        format!("SELECT {PAGE_COLUMNS} FROM resource r WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?")
    };
    let rows = if ids_alone(q) { query_once(c, &sql, &values) } else { query(c, &sql, &values) };
    let rows = match (rows, t) {
        (Err(StoreError::Canceled(_)), Some(t)) if q.sort.is_empty() => {
            return crate::ceiling::write_order_walk(c, q, t, CEILING_REACHED);
        }
        (rows, _) => rows.map_err(costly(CostlyPart::Sort))?,
    };
    let mut rows: Vec<SizedRow> = rows.iter().map(sized_row).collect();
    let more = rows.len() > q.count;
    rows.truncate(q.count);
    let (resources, cut) = fit(c, rows, q.max_bytes)?;
    Ok(SearchPage::fitted(resources, cut, more, total, q))
}

/// Whether a page in write order has a condition the general SQL answers by collecting
/// every match before ordering them, where a walk probing each resource stops after the
/// page when the matches are common: a chain, a negation or a `:text` (its codes' rows
/// are collected: `Observation?code:text=glucose`, 12,910 of 937,000 resources, 130 ms).
/// (`_has` and `:missing` were slower walked: a `_has` is tested against every one of its
/// rows collected anyway, and PostgreSQL already walks a `:missing` in write order.)
fn probed_when_common(q: &SearchQuery) -> bool {
    let probed = |c: &Condition| match c {
        Condition::Chain { .. } | Condition::Index { test: Test::TokenText(_), .. } => true,
        Condition::Index { negate, .. } | Condition::FullText { negate, .. } => *negate,
        _ => false,
    };
    q.resource_type.is_some() && q.count > 0 && q.clauses.iter().any(|c| c.any.iter().any(probed))
}

/// How a page in write order is walked for a `_has` whose source conditions have so many
/// index rows that probing each resource's own references from the cursor reads fewer
/// than collecting the targets of every passing reference (`None`: collected). The
/// threshold is √(page × live resources of the source type): N rows collected cost N
/// probes, a walk about page × live / N, one probe per reference until one passes. Up to
/// [`HASHED_HAS`] times it, the source rows are hashed once per statement and each
/// reference tested against the hash ([`Probe::EachHashingHas`]); past that the hash costs
/// more than probing until the first reference passes. At 937k resources,
/// `Patient?_has:Observation:patient:code=` (threshold 4,681): glucose, 12,600 rows,
/// 135–147 ms collected, 63 ms each reference probed, 20–37 ms hashed; body height, 25,860
/// rows, 230 ms collected, 11 ms probed.
fn common_has(c: &mut Cached<'_, impl GenericClient>, q: &SearchQuery) -> Result<Option<Probe>, StoreError> {
    if q.resource_type.is_none() || q.count == 0 {
        return Ok(None);
    }
    // Each source type's live resources read once, however many `_has` name it.
    let mut lives: Vec<(&str, u64)> = Vec::new();
    for cond in q.clauses.iter().flat_map(|c| &c.any) {
        let Condition::Has { source_type, query: inner, .. } = cond else { continue };
        let Some(rows) = inner.clauses.iter().find(|c| crate::query::is_rows_clause(c)) else { continue };
        let live = match lives.iter().find(|(t, _)| t == source_type) {
            Some((_, n)) => *n,
            None => {
                let n = crate::counts::total(c, Some(source_type))?;
                lives.push((source_type, n));
                n
            }
        };
        let threshold = ((q.count as f64 + 1.0) * live as f64).sqrt().ceil() as i64;
        let Some(n) = capped_rows(c, rows, source_type, threshold * HASHED_HAS)? else { continue };
        let how = if n >= threshold * HASHED_HAS {
            Probe::Each
        } else if n >= threshold {
            Probe::EachHashingHas
        } else {
            continue;
        };
        tsunagu_store::trace::plan(|| {
            let each = if how == Probe::Each { "each probed" } else { "hashed" };
            format!(
                "_has: {n} of at most {} source rows counted, walked from {threshold}: {each}",
                threshold * HASHED_HAS
            )
        });
        return Ok(Some(how));
    }
    Ok(None)
}

/// See [`common_has`].
const HASHED_HAS: i64 = 4;

/// Whether the query matches most resources: a compartment of every resource of its type
/// (`Patient/$everything` at type level), otherwise clauses that take whole resource types
/// (its care dates: a date test or one of the types without one).
fn matches_most(q: &SearchQuery) -> bool {
    let every = |c: &Condition| matches!(c, Condition::Compartment { target_id: None, .. });
    let types = |c: &Condition| matches!(c, Condition::ResourceType(_));
    let broad = |c: &tsunagu_store::Clause| c.any.iter().all(|x| every(x) || types(x)) || c.any.iter().any(types);
    q.clauses.iter().any(|c| c.any.iter().any(every)) && q.clauses.iter().all(broad)
}

fn history_sql(q: &HistoryQuery, values: &mut Vec<V>) -> String {
    let mut sql = String::from(" WHERE TRUE");
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND r.type = ?");
            values.push(V::Text(t.clone()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND r.type = ? AND r.id = ?");
            values.push(V::Text(t.clone()));
            values.push(V::Text(id.clone()));
        }
    }
    if let Some(since) = q.since_ms {
        sql.push_str(" AND r.last_updated >= ?");
        values.push(V::Int(since));
    }
    if let Some((from, until)) = q.at {
        // Current at some moment of the period: written before its end, and not superseded
        // at or before its start.
        sql.push_str(
            " AND r.last_updated < ? AND NOT EXISTS (SELECT 1 FROM resource n WHERE n.type = r.type \
              AND n.id = r.id AND n.version > r.version AND n.last_updated <= ?)",
        );
        values.push(V::Int(until));
        values.push(V::Int(from));
    }
    if let Some(before) = q.before_seq {
        sql.push_str(" AND r.seq < ?");
        values.push(V::Int(before));
    }
    sql
}

pub(crate) fn history(c: &mut Cached<'_, impl GenericClient>, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
    let mut values = Vec::new();
    let sql =
        format!("SELECT {PAGE_COLUMNS} FROM resource r{} ORDER BY r.seq DESC LIMIT ?", history_sql(q, &mut values));
    values.push(V::Int(q.count as i64));
    let rows = query(c, &sql, &values)?.iter().map(sized_row).collect();
    let (versions, cut) = fit(c, rows, q.max_bytes)?;
    Ok(HistoryPage { versions, cut })
}

pub(crate) fn history_count(c: &mut Cached<'_, impl GenericClient>, q: &HistoryQuery) -> Result<u64, StoreError> {
    let mut values = Vec::new();
    let q = HistoryQuery { before_seq: None, ..q.clone() };
    let sql = format!("SELECT COUNT(*) FROM resource r{}", history_sql(&q, &mut values));
    Ok(query(c, &sql, &values)?[0].get::<_, i64>(0) as u64)
}

pub(crate) fn current_after(
    c: &mut Cached<'_, impl GenericClient>,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<ResourceVersion>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM resource r WHERE current AND NOT deleted AND seq > $1 ORDER BY seq LIMIT $2");
    Ok(c.query(&sql, &[&after_seq, &(limit as i64)]).pg()?.iter().map(version).collect())
}

pub(crate) fn count_current_after(c: &mut Cached<'_, impl GenericClient>, after_seq: i64) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM resource WHERE current AND NOT deleted AND seq > $1", &[&after_seq])
        .pg()?
        .get(0);
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_columns_inline_what_the_store_says() {
        let inline = format!("<= {} THEN", tsunagu_store::INLINE_BODY_BYTES);
        assert!(super::PAGE_COLUMNS.contains(&inline), "{}", super::PAGE_COLUMNS);
    }
}
