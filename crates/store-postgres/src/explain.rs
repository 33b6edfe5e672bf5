//! `tsunagu explain` on PostgreSQL ([`PostgresStore::explain`]): one search page run as
//! [`Store::search`](tsunagu_store::Store::search) runs it, with the plans it took, and
//! each statement that chose its matches run again under `EXPLAIN (ANALYZE, BUFFERS)`,
//! which gives every plan node's estimated and actual rows, its time and the pages it read.

use std::time::{Duration, Instant};

use tsunagu_store::{SearchPage, SearchQuery, StoreError};

use crate::ceiling::{Scope, Timeout};
use crate::db::Cached;
use crate::value::{refs, show, V};
use crate::{Pg, PostgresStore};

/// How one search page was answered ([`PostgresStore::explain`]).
#[derive(Debug)]
pub struct Explain {
    /// The plans taken, in order (the general SQL may give way to the write-order walk
    /// past the ceiling).
    pub plans: Vec<String>,
    pub statements: Vec<ExplainedStatement>,
    /// The page, or why there is none (the ceiling, say).
    pub page: Result<SearchPage, StoreError>,
    /// The time of the page itself (not of explaining it).
    pub elapsed: Duration,
}

/// One statement a search ran, its bound values and PostgreSQL's plan for it.
#[derive(Debug)]
pub struct ExplainedStatement {
    /// As sent (placeholders `$n` with their casts).
    pub sql: String,
    pub values: Vec<String>,
    /// `EXPLAIN (ANALYZE, BUFFERS)` of the statement run again with the same values and
    /// under the same ceiling: `rows=` the planner's estimate, `actual … rows=` what came;
    /// when it ran past the ceiling again, plain `EXPLAIN` (estimates only).
    pub plan: Vec<String>,
    /// Whether `plan` has the actual rows (false: estimates only).
    pub analyzed: bool,
}

impl PostgresStore {
    /// Runs one search page as [`Store::search`](tsunagu_store::Store::search) would,
    /// recording how: the plans taken, and each statement run, with its plan from
    /// `EXPLAIN (ANALYZE, BUFFERS)` (`tsunagu explain`). The statements run twice, once for
    /// the page and once explained.
    pub fn explain(&self, q: &SearchQuery) -> Result<Explain, StoreError> {
        self.with_searcher(crate::db::Plans::PerValues, |c| {
            tsunagu_store::trace::start::<crate::value::V>();
            let started = Instant::now();
            let page = crate::ceiling::search(c, q, Scope::Session, self.walk_from());
            let elapsed = started.elapsed();
            let trace = tsunagu_store::trace::take::<crate::value::V>();
            let mut statements = Vec::new();
            for (sql, values) in trace.statements {
                let (plan, analyzed) = explained(c, q.max_ms.filter(|m| *m > 0), &sql, &values)?;
                let values = values.iter().map(show).collect();
                statements.push(ExplainedStatement { sql, values, plan, analyzed });
            }
            Ok(Explain { plans: trace.plans, statements, page, elapsed })
        })
    }
}

/// The plan of `sql` with `values`: analyzed within `max_ms`, else estimated.
fn explained(
    c: &mut Cached<'_, postgres::Client>,
    max_ms: Option<u64>,
    sql: &str,
    values: &[V],
) -> Result<(Vec<String>, bool), StoreError> {
    let lines = |rows: Vec<postgres::Row>| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
    let timeout = max_ms.map(|ms| Timeout::begin(c, Scope::Session, ms)).transpose()?;
    let analyzed = c.c.query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &refs(values)).pg();
    let out = match analyzed {
        Ok(rows) => Ok((lines(rows), true)),
        // Planning alone is cheap: the estimates at least.
        Err(StoreError::Canceled(_)) => {
            c.c.query(&format!("EXPLAIN {sql}"), &refs(values)).pg().map(|r| (lines(r), false))
        }
        Err(e) => Err(e),
    };
    if let Some(t) = timeout {
        t.end(c)?;
    }
    out
}
