//! The cost ceiling of one search page on PostgreSQL (`SearchQuery::max_ms`, the
//! `max_search_ms` limit), and what a page does when it reaches it: the same answers as the
//! SQLite store's step ceiling (`tsunagu_store::sqlite_budget`), counted in time.
//!
//! PostgreSQL has no hook that counts work as it runs, so the ceiling is its
//! `statement_timeout`: each statement of the page is canceled past `max_ms` (SQLSTATE
//! 57014), which bounds every plan shape alike, as SQLite's steps do. A page runs a few
//! statements (a count, the page, the batches of a sort walk), each under the ceiling.
//!
//! A page in write order (no `_sort`, no `_total`) canceled that way is answered again by
//! [`write_order_walk`]: the live resources of the type after the cursor, in `seq` order, a
//! batch at a time, each batch's resources tested against the whole filter on their own
//! index rows (`query::probe_clause`). Each batch is a statement under the ceiling, and
//! none starts once the walk has run for the ceiling's time (so the walk takes at most
//! twice it). It stops there, or where a batch is canceled, and reports the last `seq` of
//! the last batch it finished, so the next page continues exactly there: no match is lost
//! or repeated, and the page may hold fewer than `_count` entries. A sorted page or a total
//! cannot be cut that way, and neither can a walk whose first batch does not finish: those
//! are [`StoreError::TooCostly`].
//!
//! Only searches run under the timeout. On a pooled connection (no transaction open) it is
//! `SET` when the session's differs and left in force after the page, so that the next
//! search on the session sends nothing more (a canceled statement leaves such a session
//! usable); the session remembers it (`db::Cache::timeout`), the pool `RESET`s it before
//! handing the session to anything but a search, and a session whose `SET` did not
//! complete is never pooled again. Inside a pinned view's transaction it is `SET LOCAL`
//! under a savepoint, rolled back to after a cancel (which aborts the transaction) and at
//! the end. Reads, writes and everything else on the store run without it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use postgres::GenericClient;
use tsunagu_store::{Ceiling, CostlyPart, SearchPage, SearchQuery, StoreError};

use crate::db::Cached;
use crate::query::Probe;
use crate::value::{number, refs, V};
use crate::Pg;

/// Resources in the walk's first batch; each next batch is twice as large, up to
/// [`MAX_BATCH`]. Small, so that a costly filter still finishes one batch within the
/// ceiling; growing, so that a cheap one is not held back by round trips.
const FIRST_BATCH: i64 = 64;
const MAX_BATCH: i64 = 16_384;

/// Where the search runs: on a pooled connection with no transaction open, or inside a
/// transaction that must survive a canceled statement (a pinned view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session,
    Transaction,
}

/// The `statement_timeout` of one search page, in force from [`Timeout::begin`] until
/// [`Timeout::end`].
pub(crate) struct Timeout {
    scope: Scope,
    /// The page's ceiling.
    pub(crate) ms: u64,
    /// In a transaction, the timeout in force now (0: none), so that it is not set again; a
    /// session keeps its own in `db::Cache::timeout`.
    now: Cell<u64>,
}

impl Timeout {
    pub(crate) fn begin<C: GenericClient>(c: &mut Cached<'_, C>, scope: Scope, ms: u64) -> Result<Timeout, StoreError> {
        match scope {
            Scope::Session => c.set_timeout(ms).pg()?,
            Scope::Transaction => {
                c.c.batch_execute(&format!("SAVEPOINT tsunagu_search; SET LOCAL statement_timeout = {ms}")).pg()?
            }
        }
        Ok(Timeout { scope, ms, now: Cell::new(ms) })
    }

    /// A timeout of `ms` from the next statement on (0: none).
    pub(crate) fn set<C: GenericClient>(&self, c: &mut Cached<'_, C>, ms: u64) -> Result<(), StoreError> {
        match self.scope {
            Scope::Session => c.set_timeout(ms).pg(),
            Scope::Transaction if self.now.get() == ms => Ok(()),
            Scope::Transaction => {
                c.c.batch_execute(&format!("SET LOCAL statement_timeout = {ms}")).pg()?;
                self.now.set(ms);
                Ok(())
            }
        }
    }

    /// After a canceled statement, a session that can run statements again, with a timeout
    /// of `ms`: a transaction is aborted until rolled back to the savepoint (which also
    /// undoes the `SET LOCAL`).
    pub(crate) fn recover<C: GenericClient>(&self, c: &mut Cached<'_, C>, ms: u64) -> Result<(), StoreError> {
        match self.scope {
            Scope::Session => self.set(c, ms),
            Scope::Transaction => {
                c.c.batch_execute(&format!("ROLLBACK TO SAVEPOINT tsunagu_search; SET LOCAL statement_timeout = {ms}"))
                    .pg()?;
                self.now.set(ms);
                Ok(())
            }
        }
    }

    /// The page is done. A session keeps its timeout for the next search
    /// (`db::Cache::timeout`); a transaction's is undone.
    pub(crate) fn end<C: GenericClient>(self, c: &mut Cached<'_, C>) -> Result<(), StoreError> {
        if self.scope == Scope::Transaction {
            c.c.batch_execute("ROLLBACK TO SAVEPOINT tsunagu_search; RELEASE SAVEPOINT tsunagu_search").pg()?;
        }
        Ok(())
    }
}

/// One page of a search, within the query's ceiling when it has one; `walk_from` as
/// `sortwalk::page` takes it.
pub(crate) fn search<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    scope: Scope,
    walk_from: i64,
) -> Result<SearchPage, StoreError> {
    let Some(ms) = q.max_ms.filter(|m| *m > 0) else {
        // No ceiling: not one an earlier search left on the session either.
        if scope == Scope::Session {
            c.reset_timeout().pg()?;
        }
        return crate::read::search(c, q, None, walk_from);
    };
    let timeout = Timeout::begin(c, scope, ms)?;
    let page = crate::read::search(c, q, Some(&timeout), walk_from);
    // A transaction whose savepoint could not be undone may be broken: that error wins, so
    // that the caller drops the connection.
    timeout.end(c)?;
    page
}

/// `e`, or when it is a statement canceled under the page's ceiling, the page being too
/// costly for that reason.
pub(crate) fn costly(e: StoreError, part: CostlyPart, t: Option<&Timeout>) -> StoreError {
    match (e, t) {
        (StoreError::Canceled(_), Some(t)) => StoreError::TooCostly { part, ceiling: Ceiling::Millis(t.ms) },
        (e, _) => e,
    }
}

/// A page in write order walked from its cursor a batch at a time, as far as a fresh
/// ceiling allows: for a query whose plan was canceled at the ceiling, and for one whose
/// conditions match most resources (every patient's compartment: type-level
/// `Patient/$everything`), where the general SQL would collect every match first. `why`
/// is what `explain` shows.
pub(crate) fn write_order_walk<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: &Timeout,
    why: &'static str,
) -> Result<SearchPage, StoreError> {
    tsunagu_store::trace::plan(|| format!("{why}: write-order walk from the cursor, a batch at a time"));
    let deadline = Instant::now() + Duration::from_millis(t.ms);
    walk(c, q, t, &mut || Instant::now() < deadline)
}

/// The most resources [`common_walk`] looks at before it leaves the page to the general
/// SQL: matches one resource in 30 or more fill a page of 10 within it.
const COMMON_WALK_ROWS: i64 = 448;

/// A page in write order tried first by walking the type's resources from the cursor a
/// batch at a time (as [`write_order_walk`]): the general SQL collects every match of a
/// common chain or negation before it orders them
/// (`Observation?subject:Patient.gender=female`: 18,389 on the Synthea sample, 55 ms),
/// where a page is met among the first hundred resources. `None` when the first
/// [`COMMON_WALK_ROWS`] resources do not fill the page (the matches are rarer): the
/// general SQL answers then. Past the ceiling's time, it answers as [`write_order_walk`].
pub(crate) fn common_walk<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: &Timeout,
    probe: Probe,
) -> Result<Option<SearchPage>, StoreError> {
    tsunagu_store::trace::plan(|| {
        format!("write-order walk from the cursor, for {COMMON_WALK_ROWS} resources at most")
    });
    let deadline = Instant::now() + Duration::from_millis(t.ms);
    common_walk_while(c, q, t, probe, &mut || Instant::now() < deadline)
}

/// [`common_walk`], starting another batch while `in_time` says so (the ceiling's time, as
/// [`write_order_walk`]; tests stop it after so many batches): a page stopped by it is
/// answered as that walk's (what it met, and where the next page goes on), not tried again.
fn common_walk_while<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: &Timeout,
    probe: Probe,
    in_time: &mut dyn FnMut() -> bool,
) -> Result<Option<SearchPage>, StoreError> {
    let mut out_of_time = false;
    let walked = batches(c, q, probe, &mut |looked_at| {
        out_of_time = !in_time();
        !out_of_time && looked_at < COMMON_WALK_ROWS
    });
    let too_costly = || StoreError::TooCostly { part: CostlyPart::Conditions, ceiling: Ceiling::Millis(t.ms) };
    let walked = match walked {
        Err(StoreError::Canceled(_)) => {
            t.recover(c, 0)?;
            return Err(too_costly());
        }
        Err(e) => return Err(e),
        Ok(w) => w,
    };
    if walked.canceled {
        t.recover(c, 0)?;
    } else if !out_of_time && !walked.full(q) && !walked.finished {
        tsunagu_store::trace::plan(|| format!("too few matches in {COMMON_WALK_ROWS} resources: the general SQL"));
        return Ok(None);
    }
    if !walked.walked_any && !walked.full(q) && !walked.finished {
        return Err(too_costly());
    }
    page_of(c, q, t, walked).map(Some)
}

/// What the batches of a walk met.
struct Walked {
    /// The matches, in `seq` order.
    found: Vec<i64>,
    /// Whether the walk reached the last resource of the type.
    finished: bool,
    /// Whether a batch completed.
    walked_any: bool,
    /// The last `seq` of the last batch completed.
    after: Option<i64>,
    /// Whether a batch was canceled at the ceiling.
    canceled: bool,
}

impl Walked {
    fn full(&self, q: &SearchQuery) -> bool {
        self.found.len() > q.count
    }
}

/// The walk's batches from the cursor until the page is full, the type ends, a batch is
/// canceled, or `go_on` (given the resources looked at so far) says to stop.
fn batches<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    probe: Probe,
    go_on: &mut dyn FnMut(i64) -> bool,
) -> Result<Walked, StoreError> {
    let mut w = Walked { found: Vec::new(), finished: false, walked_any: false, after: q.after_seq, canceled: false };
    let mut batch = FIRST_BATCH;
    let mut looked_at = 0;
    while go_on(looked_at) {
        let need = (q.count + 1 - w.found.len()) as i64;
        match walk_batch(c, q, probe, w.after, batch, need) {
            Ok(b) => {
                w.walked_any = true;
                w.found.extend(b.matches);
                looked_at += b.looked_at;
                if b.looked_at < batch {
                    w.finished = true;
                    break;
                }
                w.after = b.last;
                if w.full(q) {
                    break;
                }
                batch = (batch * 2).min(MAX_BATCH);
            }
            Err(StoreError::Canceled(m)) => {
                w.canceled = true;
                if !w.walked_any {
                    return Err(StoreError::Canceled(m));
                }
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(w)
}

/// The walk, starting another batch while `go_on` says so (the time left; tests stop it
/// after so many batches).
fn walk<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: &Timeout,
    go_on: &mut dyn FnMut() -> bool,
) -> Result<SearchPage, StoreError> {
    t.recover(c, t.ms)?;
    let walked = match batches(c, q, Probe::Each, &mut |_| go_on()) {
        Err(StoreError::Canceled(_)) => {
            t.recover(c, 0)?;
            return Err(StoreError::TooCostly { part: CostlyPart::Conditions, ceiling: Ceiling::Millis(t.ms) });
        }
        Err(e) => return Err(e),
        Ok(w) if w.canceled => {
            t.recover(c, 0)?;
            w
        }
        Ok(w) => w,
    };
    if !walked.full(q) && !walked.finished && !walked.walked_any {
        return Err(StoreError::TooCostly { part: CostlyPart::Conditions, ceiling: Ceiling::Millis(t.ms) });
    }
    page_of(c, q, t, walked)
}

/// The page of the matches a walk met: their bodies, and where the next page starts when
/// the walk stopped before it was full.
fn page_of<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    t: &Timeout,
    walked: Walked,
) -> Result<SearchPage, StoreError> {
    let Walked { found, finished, after, .. } = walked;
    let full = found.len() > q.count;
    // The page is chosen: its bodies are read whatever the time left.
    t.set(c, 0)?;
    let seqs = &found[..found.len().min(q.count)];
    let rows = c
        .query(&format!("SELECT {} FROM resource r WHERE r.seq = ANY($1)", crate::read::PAGE_COLUMNS), &[&seqs])
        .pg()?;
    let mut rows: Vec<_> = rows.iter().map(crate::read::sized_row).collect();
    rows.sort_by_key(|(v, _)| seqs.iter().position(|s| *s == v.seq));
    let (resources, cut) = crate::read::fit(c, rows, q.max_bytes)?;
    if cut {
        return Ok(SearchPage::fitted(resources, cut, true, None, q));
    }
    let stopped = !full && !finished;
    let resume_after = after.filter(|_| stopped);
    Ok(SearchPage {
        resources,
        total: None,
        more: full || stopped,
        resume_after,
        stopped_by: resume_after.map(|_| Ceiling::Millis(t.ms)),
    })
}

/// What one batch of the walk found.
struct Batch {
    /// Resources of the batch (fewer than asked: the last ones).
    looked_at: i64,
    /// The last `seq` of the batch.
    last: Option<i64>,
    /// Its matches in `seq` order, at most as many as asked for.
    matches: Vec<i64>,
}

/// The next `size` live resources of the query's type after `after`, and which of them
/// match (the first `need`), in one statement.
fn walk_batch<C: GenericClient>(
    c: &mut Cached<'_, C>,
    q: &SearchQuery,
    probe: Probe,
    after: Option<i64>,
    size: i64,
    need: i64,
) -> Result<Batch, StoreError> {
    let mut values = Vec::new();
    let mut batch = String::from("SELECT b.seq FROM resource b WHERE b.current AND NOT b.deleted");
    if let Some(t) = &q.resource_type {
        batch.push_str(" AND b.type = ?");
        values.push(V::Text(t.clone()));
    }
    if let Some(a) = after {
        batch.push_str(" AND b.seq > ?");
        values.push(V::Int(a));
    }
    batch.push_str(" ORDER BY b.seq LIMIT ?");
    values.push(V::Int(size));
    let filter = crate::query::probe_clause(q, "r", &mut values, probe);
    values.push(V::Int(need));
    // The filter in a select list behind `OFFSET 0`, so that PostgreSQL tests it on each
    // resource of the batch: in a `WHERE` it may turn a condition into a join and collect
    // every resource that passes it first (a chain it estimated at one row, for 18,389).
    let sql = format!(
        "WITH batch AS MATERIALIZED ({batch}) SELECT (SELECT COUNT(*) FROM batch), (SELECT MAX(seq) FROM batch), \
         ARRAY(SELECT t.seq FROM (SELECT r.seq, {filter} AS hit FROM resource r WHERE r.seq IN (SELECT seq FROM batch) \
         OFFSET 0) t WHERE t.hit ORDER BY t.seq LIMIT ?)"
    );
    let sql = number(&sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    let row = c.query_one(&sql, &refs(&values)).pg()?;
    Ok(Batch { looked_at: row.get(0), last: row.get(1), matches: row.get(2) })
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{
        Ceiling, Clause, Condition, CostlyPart, IndexEntry, IndexKind, IndexValue, Method, NewVersion, RangeOp,
        SearchQuery, SortKey, SortParam, Store, StoreError, SystemMatch, Test,
    };

    use super::{walk, Scope, Timeout};
    use crate::query::Probe;
    use crate::PostgresStore;

    fn token(param: &str, code: &str) -> IndexEntry {
        IndexEntry {
            param: param.into(),
            value: IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None },
        }
    }

    /// 600 Observations of 10 Patients (every eleventh without a subject), with codes,
    /// statuses, dates and values spread so that each condition below matches some.
    fn loaded() -> Option<(PostgresStore, String)> {
        let cluster = crate::throwaway::shared()?;
        let config = cluster.fresh_config();
        let store = PostgresStore::open(&config).unwrap();
        store
            .write(&mut |txn| {
                for p in 0..10 {
                    let id = format!("p{p}");
                    let name = IndexEntry {
                        param: "name".into(),
                        value: IndexValue::String { norm: format!("n{p}"), exact: format!("N{p}") },
                    };
                    txn.put(&NewVersion {
                        resource_type: "Patient",
                        id: &id,
                        version: 1,
                        last_updated_ms: 1,
                        method: Method::Post,
                        body: Some(b"{}"),
                        index: &[name],
                    })?;
                }
                for i in 0..600usize {
                    let id = format!("o{i}");
                    let day = 86_400_000 * (i % 28) as i64;
                    let coded = IndexValue::Token {
                        system: Some("urn:s".into()),
                        code: format!("c{}", i % 7),
                        display: Some(format!("Code c{}", i % 7)),
                    };
                    let mut index = vec![
                        IndexEntry { param: "code".into(), value: coded },
                        token("status", if i % 5 == 0 { "preliminary" } else { "final" }),
                        IndexEntry { param: "date".into(), value: IndexValue::Date { lo: day, hi: day + 86_400_000 } },
                        IndexEntry {
                            param: "value".into(),
                            value: IndexValue::Quantity { system: None, code: None, value: (i % 100) as f64 },
                        },
                    ];
                    if i % 11 != 0 {
                        let p = format!("p{}", i % 10);
                        index.push(IndexEntry {
                            param: "subject".into(),
                            value: IndexValue::Reference {
                                target_type: Some("Patient".into()),
                                target_id: Some(p.clone()),
                                url: format!("Patient/{p}"),
                            },
                        });
                    }
                    txn.put(&NewVersion {
                        resource_type: "Observation",
                        id: &id,
                        version: 1,
                        last_updated_ms: 1,
                        method: Method::Post,
                        body: Some(b"{}"),
                        index: &index,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        store.analyze().unwrap();
        Some((store, config.url))
    }

    fn cond(param: &str, test: Test, negate: bool) -> Condition {
        Condition::Index { param: param.into(), test, negate }
    }

    fn code(c: &str) -> Test {
        Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some(c.into()) }
    }

    fn query(ty: &str, conditions: Vec<Vec<Condition>>) -> SearchQuery {
        SearchQuery {
            resource_type: Some(ty.into()),
            clauses: conditions.into_iter().map(|any| Clause { any }).collect(),
            count: 25,
            ..Default::default()
        }
    }

    /// Every kind of condition the walk decides, tested on each resource's own rows
    /// (`probe_clause`), against the general SQL.
    fn queries() -> Vec<SearchQuery> {
        let subject =
            |p: &str| Test::Reference { target_type: Some("Patient".into()), target_id: Some(p.into()), url: None };
        let name = SearchQuery {
            resource_type: Some("Patient".into()),
            clauses: vec![Clause { any: vec![cond("name", Test::StringExact("N3".into()), false)] }],
            ..Default::default()
        };
        let has = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause { any: vec![cond("code", code("c3"), false)] }],
            ..Default::default()
        };
        vec![
            query("Observation", vec![vec![cond("code", code("c3"), false)]]),
            query("Observation", vec![vec![cond("status", code("final"), true)]]),
            query("Observation", vec![vec![cond("code", code("c1"), false), cond("code", code("c2"), false)]]),
            query(
                "Observation",
                vec![vec![Condition::Missing { param: "subject".into(), kind: IndexKind::Reference, missing: true }]],
            ),
            query(
                "Observation",
                vec![
                    vec![Condition::Missing { param: "subject".into(), kind: IndexKind::Reference, missing: false }],
                    vec![cond("code", code("c4"), true)],
                ],
            ),
            query(
                "Observation",
                vec![vec![cond(
                    "value",
                    Test::Quantity { op: RangeOp::Gt, value: 50.0, lo: 49.5, hi: 50.5, system: None, code: None },
                    false,
                )]],
            ),
            query(
                "Observation",
                vec![
                    vec![Condition::DateWindow { param: "date".into(), lo: 86_400_000 * 3, hi: 86_400_000 * 9 }],
                    vec![cond("date", Test::Date { op: RangeOp::Ge, lo: 86_400_000 * 3, hi: 86_400_000 * 4 }, false)],
                ],
            ),
            query(
                "Observation",
                vec![vec![cond("subject", subject("p3"), false)], vec![cond("status", code("final"), false)]],
            ),
            query(
                "Observation",
                vec![vec![Condition::Chain {
                    param: "subject".into(),
                    target_type: "Patient".into(),
                    query: Box::new(name),
                }]],
            ),
            query(
                "Observation",
                vec![vec![Condition::Compartment {
                    params: vec![("Observation".into(), "subject".into())],
                    target_type: "Patient".into(),
                    target_id: Some("p7".into()),
                }]],
            ),
            query("Observation", vec![vec![Condition::Id("o5".into()), Condition::Id("o500".into())]]),
            query(
                "Patient",
                vec![vec![Condition::Has {
                    source_type: "Observation".into(),
                    param: "subject".into(),
                    query: Box::new(has),
                }]],
            ),
        ]
    }

    /// Ids of every page, following the cursor (`resume_after` first) until none follows,
    /// and how many pages stopped early.
    fn pages(mut page: impl FnMut(&SearchQuery) -> tsunagu_store::SearchPage, q: &SearchQuery) -> (Vec<String>, usize) {
        let (mut q, mut ids, mut cut) = (q.clone(), Vec::new(), 0);
        loop {
            let p = page(&q);
            ids.extend(p.resources.iter().map(|v| v.id.clone()));
            if p.resume_after.is_some() {
                assert_eq!(p.stopped_by, Some(Ceiling::Millis(60_000)));
                cut += 1;
            }
            if !p.more {
                return (ids, cut);
            }
            q.after_seq = p.resume_after.or(p.resources.last().map(|v| v.seq));
        }
    }

    /// Walks stopped after each batch continue exactly where they stopped: the pages add
    /// up to what the general SQL answers, for every kind of condition.
    #[test]
    fn walks_stopped_after_each_batch_add_up_to_the_whole_result() {
        let Some((store, _)) = loaded() else { return };
        let mut conn = store.primary.get().unwrap();
        let c = &mut conn.db();
        let mut cut = 0;
        for q in queries() {
            let (want, _) = pages(|q| crate::read::search(c, q, None, crate::sortwalk::WALK_FROM).unwrap(), &q);
            assert!(!want.is_empty(), "{q:?} matches something");
            let (got, n) = pages(
                |q| {
                    let t = Timeout::begin(c, Scope::Session, 60_000).unwrap();
                    let mut batches = 0;
                    let page = walk(c, q, &t, &mut || {
                        batches += 1;
                        batches == 1
                    });
                    t.end(c).unwrap();
                    page.unwrap()
                },
                &q,
            );
            assert_eq!(got, want, "{q:?}");
            cut += n;
        }
        assert!(cut > 20, "{cut} pages stopped early");
    }

    /// Under a ceiling, a page in write order with a chain or a negation is first walked
    /// from the cursor (`common_walk`): page after page, the same as the general SQL's; a
    /// negation that many pass fills its page from the walk, one that few pass with
    /// another condition (one Observation in 35) is left to the general SQL after 448.
    #[test]
    fn common_walks_answer_as_the_general_sql() {
        let Some((store, _)) = loaded() else { return };
        let many = query("Observation", vec![vec![cond("code", code("c3"), true)]]);
        // The code in any system: not an equality on a whole key, which would drive the
        // page (`drive.rs`).
        let any_system = Test::Token { system: SystemMatch::Any, code: Some("c3".into()) };
        let few = query(
            "Observation",
            vec![vec![cond("status", code("final"), true)], vec![cond("code", any_system, false)]],
        );
        let text = |t: &str| {
            query(
                "Observation",
                vec![vec![Condition::Index { param: "code".into(), test: Test::TokenText(t.into()), negate: false }]],
            )
        };
        // `_has` over 600 Observations, pages of 25: walked from √(26 × 600) = 125 source
        // rows, hashed below 500 of them.
        let has = |clauses: Vec<Vec<Condition>>, also: Vec<Vec<Condition>>| {
            let source = query("Observation", clauses);
            let has =
                Condition::Has { source_type: "Observation".into(), param: "subject".into(), query: Box::new(source) };
            query("Patient", [vec![vec![has]], also].concat())
        };
        let final_ = || cond("status", code("final"), false);
        let hashed = has(vec![vec![final_()], vec![cond("code", code("c3"), true)]], vec![]);
        let each = has(vec![vec![final_(), cond("status", code("preliminary"), false)]], vec![]);
        // Another clause walked (a negation), with a `_has` of conditions on the resource row.
        let joined = has(
            vec![vec![Condition::Id("o5".into()), Condition::Id("o13".into())]],
            vec![vec![cond("name", Test::StringExact("N3".into()), true)]],
        );
        let mut all = queries();
        all.extend([many.clone(), few.clone(), text("code c3"), text("CODE"), text("code c9")]);
        all.extend([hashed.clone(), each.clone(), joined.clone()]);
        {
            let mut conn = store.primary.get().unwrap();
            let c = &mut conn.db();
            for q in &all {
                let (want, _) = pages(|q| crate::read::search(c, q, None, crate::sortwalk::WALK_FROM).unwrap(), q);
                let (got, _) = pages(
                    |q| {
                        let t = Timeout::begin(c, Scope::Session, 60_000).unwrap();
                        let page = crate::read::search(c, q, Some(&t), crate::sortwalk::WALK_FROM);
                        t.end(c).unwrap();
                        page.unwrap()
                    },
                    q,
                );
                assert_eq!(got, want, "{q:?}");
            }
        }
        let plans = |q: &SearchQuery| {
            let q = SearchQuery { max_ms: Some(60_000), ..q.clone() };
            store.explain(&q).unwrap().plans.join("; ")
        };
        for q in [&many, &text("code c3")] {
            let walked = plans(q);
            assert!(walked.contains("write-order walk") && !walked.contains("too few"), "{walked}");
        }
        let counted = |n| format!("_has: {n} of at most 500 source rows counted, walked from 125: ");
        assert!(plans(&hashed).contains(&(counted(480) + "hashed")), "{}", plans(&hashed));
        assert!(plans(&each).contains(&(counted(500) + "each probed")), "{}", plans(&each));
        let left = plans(&few);
        assert!(left.contains("too few matches") && left.contains("the general SQL"), "{left}");
    }

    /// A common walk stopped by the ceiling's time answers what it met and where the next
    /// page goes on: stopped after each batch, the pages add up to the general SQL's.
    #[test]
    fn common_walks_stopped_by_time_add_up_to_the_whole_result() {
        let Some((store, _)) = loaded() else { return };
        let mut conn = store.primary.get().unwrap();
        let c = &mut conn.db();
        // One Observation in 35: a batch of 64 never fills a page of 25.
        let q = query(
            "Observation",
            vec![vec![cond("status", code("final"), true)], vec![cond("code", code("c3"), false)]],
        );
        let (want, _) = pages(|q| crate::read::search(c, q, None, crate::sortwalk::WALK_FROM).unwrap(), &q);
        assert!(!want.is_empty());
        let (got, cut) = pages(
            |q| {
                let t = Timeout::begin(c, Scope::Session, 60_000).unwrap();
                let mut batches = 0;
                let page = super::common_walk_while(c, q, &t, Probe::Each, &mut || {
                    batches += 1;
                    batches == 1
                });
                t.end(c).unwrap();
                page.unwrap().expect("a page, stopped or full")
            },
            &q,
        );
        assert_eq!(got, want);
        assert!(cut > 0, "{cut} pages stopped early");
    }

    fn costly(part: CostlyPart, ms: u64) -> impl Fn(&StoreError) -> bool {
        move |e| matches!(e, StoreError::TooCostly { part: p, ceiling: Ceiling::Millis(m) } if *p == part && *m == ms)
    }

    /// A statement that cannot finish within the ceiling (here: waiting for a lock another
    /// session holds) is canceled and answered as too costly, naming what; the session is
    /// left as it was, in the pool and in a pinned view, and nothing else is bounded.
    #[test]
    fn canceled_statements_are_too_costly_and_leave_sessions_as_they_were() {
        let Some((store, url)) = loaded() else { return };
        let ms = 100;
        let mut q = query("Observation", vec![vec![cond("code", code("c3"), false)]]);
        q.max_ms = Some(ms);
        let sorted = SearchQuery {
            sort: vec![SortKey {
                param: SortParam::Index { param: "date".into(), kind: IndexKind::Date },
                descending: true,
            }],
            ..q.clone()
        };
        let total = SearchQuery { total: true, ..q.clone() };
        let view = store.pinned().unwrap();
        assert_eq!(store.search(&q).unwrap().resources.len(), 25);

        let mut locker = crate::pool::connect(&url).unwrap();
        locker.batch_execute("BEGIN; LOCK TABLE idx_token IN ACCESS EXCLUSIVE MODE").unwrap();
        let started = std::time::Instant::now();
        assert!(costly(CostlyPart::Sort, ms)(&store.search(&sorted).unwrap_err()));
        assert!(costly(CostlyPart::Total, ms)(&store.search(&total).unwrap_err()));
        // In write order: the walk after the plan, whose first batch waits as well.
        assert!(costly(CostlyPart::Conditions, ms)(&store.search(&q).unwrap_err()));
        assert!(costly(CostlyPart::Conditions, ms)(&view.search(&q).unwrap_err()));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "canceled at the ceiling");
        // Other reads and writes are not bounded: they wait for the lock and then succeed.
        let unlock = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(3 * ms));
            locker.batch_execute("COMMIT").unwrap();
        });
        store
            .write(&mut |txn| {
                txn.put(&NewVersion {
                    resource_type: "Observation",
                    id: "late",
                    version: 1,
                    last_updated_ms: 2,
                    method: Method::Post,
                    body: Some(b"{}"),
                    index: &[token("code", "c3")],
                })
            })
            .unwrap();
        unlock.join().unwrap();

        // The view's transaction survived its canceled statement.
        assert!(view.read("Observation", "o3").unwrap().is_some());
        assert_eq!(view.search(&total).unwrap().total, Some(86));
        assert_eq!(store.search(&total).unwrap().total, Some(87));
        // Every pooled session is back to its own timeout.
        let conns: Vec<_> = (0..3).map(|_| store.primary.get().unwrap()).collect();
        for mut c in conns {
            let t: String = c.client.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
            assert_eq!(t, "0");
        }
    }
}
