//! Statements prepared once per connection: a statement sent unprepared costs a second
//! round trip (parse and describe) every time, about six times the cost of running a
//! prepared one on the loopback. Each connection keeps its statements by SQL text.
//! It also knows the `statement_timeout` a search left on it (`Cache::timeout`), which
//! `Cached::set_timeout` and `Cached::reset_timeout` change only when it differs.

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
    pub(crate) fn new(client: Client) -> Session {
        Session { client, cache: Cache::default() }
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
        let s = self.statement(sql)?;
        self.c.query(&s, params)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_opt(&s, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_one(&s, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.execute(&s, params)
    }
}
