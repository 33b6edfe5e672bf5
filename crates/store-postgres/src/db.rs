//! Statements prepared once per connection: a statement sent unprepared costs a second
//! round trip (parse and describe) every time, about six times the cost of running a
//! prepared one on the loopback. Each connection keeps its statements by SQL text.
//! It also knows the `statement_timeout` a search left on it (`Cache::timeout`), which
//! `Cached::set_timeout` and `Cached::reset_timeout` change only when it differs, and
//! which plans its statements get (`Cache::plans`).
//!
//! A prepared statement is planned again at each execution with its values
//! (`force_custom_plan`, set when the session connects), since one plan for all values of
//! a search could scan a whole table for a rare code because a common one would. Planning
//! was most of a small statement's time, though: 0.2–0.6 ms of binding against 0.04–0.3 ms
//! of executing, on the Synthea sample. Work made only of statements whose plans cannot
//! depend on their values (a read by id, a search by ids alone, a walk of one index key in
//! `seq` order) makes its session plan them once (`force_generic_plan`, [`Plans::Once`])
//! and runs them with [`Cached::query_once`]; any other statement makes its session plan
//! per values again first. The setting is changed only when it differs (a round trip), and
//! the pool hands out sessions already planning as the work wants first, so that reads and
//! searches come to keep sessions of their own.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement};

/// More distinct statements than this on one connection (searches of many shapes): the
/// cache starts again, closing those it held.
const MAX_STATEMENTS: usize = 512;

/// What a connection holds besides the client.
#[derive(Default)]
pub(crate) struct Cache {
    statements: HashMap<String, Statement>,
    /// The `statement_timeout` the session runs under. A search page sets its ceiling and
    /// leaves it for the next search on the session (`ceiling.rs`: two round trips fewer a
    /// page); the pool undoes it before the session serves anything else
    /// ([`Pool::get`](crate::pool::Pool::get)).
    pub(crate) timeout: SessionTimeout,
    /// The session's `plan_cache_mode`.
    pub(crate) plans: Plans,
    /// Clauses a sort walk found too many to read whole, and when (`known.rs`): the pool's.
    pub(crate) large_clauses: std::sync::Arc<crate::known::LargeClauses>,
}

/// Which plans a session's prepared statements get.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plans {
    /// Planned at each execution with its values (`force_custom_plan`, set at connect).
    #[default]
    PerValues,
    /// Planned once per statement for every execution (`force_generic_plan`).
    Once,
    /// Being set when an error came: not known, so the session is not pooled again.
    Unknown,
    /// Left as a transaction set it (`SET LOCAL` in a write) or as a pinned view found
    /// it: never changed, since a rollback would undo a change unseen.
    Fixed,
}

/// What a session's `statement_timeout` is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionTimeout {
    /// The session's own default (the role's or the database's): never set.
    #[default]
    Default,
    /// Set to this many milliseconds by a search (0: none).
    Ms(u64),
    /// Being set when an error came: not known, so the session is not pooled again.
    Unknown,
}

/// A connection and its prepared statements.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) cache: Cache,
}

impl Session {
    /// A session of `client`, sharing what its pool knows of large clauses.
    pub(crate) fn new(client: Client, large_clauses: std::sync::Arc<crate::known::LargeClauses>) -> Session {
        Session { client, cache: Cache { large_clauses, ..Cache::default() } }
    }

    pub(crate) fn db(&mut self) -> Cached<'_, Client> {
        Cached { c: &mut self.client, cache: &mut self.cache }
    }
}

/// A client or transaction with the statement cache of its connection.
pub(crate) struct Cached<'a, C> {
    pub(crate) c: &'a mut C,
    pub(crate) cache: &'a mut Cache,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Cached<'_, C> {
    /// The session's `statement_timeout` made `ms` (0: none), unless it is already. Marked
    /// unknown until the server confirmed it, so that a session left between the two is not
    /// pooled again.
    pub(crate) fn set_timeout(&mut self, ms: u64) -> Result<(), postgres::Error> {
        if self.cache.timeout == SessionTimeout::Ms(ms) {
            return Ok(());
        }
        self.cache.timeout = SessionTimeout::Unknown;
        self.c.batch_execute(&format!("SET statement_timeout = {ms}"))?;
        self.cache.timeout = SessionTimeout::Ms(ms);
        Ok(())
    }

    /// The session back to its own `statement_timeout`, unless it is already.
    pub(crate) fn reset_timeout(&mut self) -> Result<(), postgres::Error> {
        if self.cache.timeout == SessionTimeout::Default {
            return Ok(());
        }
        self.cache.timeout = SessionTimeout::Unknown;
        self.c.batch_execute("RESET statement_timeout")?;
        self.cache.timeout = SessionTimeout::Default;
        Ok(())
    }

    /// The session's statements planned as `want` says, unless they are already or the
    /// session's plans are [`Plans::Fixed`].
    pub(crate) fn plans(&mut self, want: Plans) -> Result<(), postgres::Error> {
        let now = self.cache.plans;
        if now == want || now == Plans::Fixed {
            return Ok(());
        }
        self.cache.plans = Plans::Unknown;
        self.c.batch_execute(match want {
            Plans::Once => "SET plan_cache_mode = force_generic_plan",
            _ => "SET plan_cache_mode = force_custom_plan",
        })?;
        self.cache.plans = want;
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.cache.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        if self.cache.statements.len() >= MAX_STATEMENTS {
            self.cache.statements.clear();
        }
        self.cache.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        self.plans(Plans::PerValues)?;
        let s = self.statement(sql)?;
        self.c.query(&s, params)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        self.plans(Plans::PerValues)?;
        let s = self.statement(sql)?;
        self.c.query_opt(&s, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        self.plans(Plans::PerValues)?;
        let s = self.statement(sql)?;
        self.c.query_one(&s, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        self.plans(Plans::PerValues)?;
        let s = self.statement(sql)?;
        self.c.execute(&s, params)
    }

    /// [`query`](Self::query) for a statement whose plan does not depend on its values
    /// (the caller says why): run under the session's plans as they are, so planned once
    /// where the caller's work made the session so ([`Plans::Once`]), without changing them
    /// for this statement alone.
    pub(crate) fn query_once(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query(&s, params)
    }

    /// [`query_opt`](Self::query_opt) for a statement whose plan does not depend on its
    /// values, as [`query_once`](Self::query_once).
    pub(crate) fn query_opt_once(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_opt(&s, params)
    }
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, SearchQuery, Store, StoreError, SystemMatch, Test};

    use super::Plans;
    use crate::PostgresStore;

    /// The store's one pooled session: what the server says its plans are, checked against
    /// what the session believes.
    fn plans_of(store: &PostgresStore) -> Plans {
        let mut conn = store.primary.get_for_search(Plans::PerValues).unwrap();
        let shown: String = conn.client.query_one("SHOW plan_cache_mode", &[]).unwrap().get(0);
        let believed = conn.cache.plans;
        let want = match believed {
            Plans::Once => "force_generic_plan",
            _ => "force_custom_plan",
        };
        assert_eq!(shown, want, "the session believes {believed:?}");
        believed
    }

    fn search(code: Option<&str>, total: bool) -> SearchQuery {
        let test = Test::Token { system: SystemMatch::Is("urn:s".into()), code: code.map(str::to_string) };
        SearchQuery {
            resource_type: Some("Patient".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: "identifier".into(), test, negate: false }] }],
            count: 10,
            total,
            ..Default::default()
        }
    }

    /// Reads, searches by ids alone and walks of one index key make their session plan
    /// once; any other search makes it plan per values again; writes (`SET LOCAL`) and
    /// failed writes leave the session as they found it; and the session's belief always
    /// matches the server.
    #[test]
    fn sessions_plan_as_their_work_wants() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let config = crate::PostgresConfig { pool_size: 1, ..cluster.fresh_config() };
        let store = PostgresStore::open(&config).unwrap();
        let put = |id: &str| crate::test_writes::put_token(&store, "Patient", id, "identifier", id);
        put("a");
        assert_eq!(plans_of(&store), Plans::PerValues);
        assert_eq!(store.read("Patient", "a").unwrap().unwrap().id, "a");
        assert_eq!(plans_of(&store), Plans::Once);
        put("b");
        assert_eq!(plans_of(&store), Plans::Once, "a write leaves the session's own plans");
        let failed = store.write(&mut |_| Err(StoreError::VersionConflict("refused".into())));
        assert!(failed.is_err());
        assert_eq!(plans_of(&store), Plans::Once, "so does a write that failed");
        let page = store.search(&search(Some("b"), false)).unwrap();
        assert_eq!(page.resources.len(), 1);
        assert_eq!(plans_of(&store), Plans::Once, "a walk of one key in seq order plans once");
        let page = store.search(&search(None, false)).unwrap();
        assert_eq!(page.resources.len(), 2);
        assert_eq!(plans_of(&store), Plans::PerValues, "any other search plans per values");
        let page = store.search(&search(Some("a"), true)).unwrap();
        assert_eq!((page.resources.len(), page.total), (1, Some(1)));
        assert_eq!(plans_of(&store), Plans::PerValues, "a total counted first plans per values");
        let by_ids = SearchQuery {
            resource_type: Some("Patient".into()),
            clauses: vec![Clause { any: vec![Condition::Id("a".into()), Condition::Id("b".into())] }],
            count: 10,
            ..Default::default()
        };
        assert_eq!(store.search(&by_ids).unwrap().resources.len(), 2);
        assert_eq!(plans_of(&store), Plans::Once, "so does a search by ids alone");
        let page = store.search(&search(None, false)).unwrap();
        assert_eq!(page.resources.len(), 2);
        assert_eq!(store.read_many(&[("Patient".into(), "b".into())], None).unwrap().0.len(), 1);
        assert_eq!(plans_of(&store), Plans::Once);
    }
}
