//! PostgreSQL storage for Tsunagu: [`PostgresStore`] implements the store traits
//! ([`Store`], [`WriteTxn`], [`PinnedView`]) of `tsunagu-store` with the same behaviour as
//! the embedded SQLite store, for servers that run several nodes on one database, with
//! read replicas, and later on Citus.
//!
//! It owns: the schema and its migrations ([`schema`](crate::schema)), versions and their
//! index rows, the SQL of searches, the audit chain, pinned views, its connection pools
//! and the routing of reads to replicas, and a throwaway cluster for tests
//! ([`throwaway`]). It never interprets FHIR beyond the index entries it is handed, never
//! sees HTTP, and never creates databases, roles or extensions in production (the
//! database named by the URL must exist; the throwaway cluster is for tests).
//!
//! **Writers across nodes.** Each write transaction first takes
//! `pg_advisory_xact_lock(WRITE_LOCK)`, so, as with SQLite's single writer, a
//! read-then-write sequence in one [`WriteTxn`] (conditional create, If-Match) never
//! interleaves with another writer on any node. `seq` (the global write order) comes from
//! a counter row updated under that lock, so it grows with commit order and keyset paging
//! by `seq` stays correct. A commit that fails is reported as an error.
//!
//! **Shard key (Citus-ready).** Every resource and index row carries `shard`: for a
//! Patient its own id; for another resource the id of the Patient it belongs to (the first
//! literal `Patient` reference among its index entries under `patient`, else under
//! `subject`, else under any parameter), decided at the first version and kept for later
//! ones; for a resource outside any patient `~Type/id`. See [`shard_key`].
//!
//! **Timestamps.** [`Store::next_timestamp_ms`] is strictly increasing across every node
//! on the database: it advances a `clock` counter row (`GREATEST(value + 1, now)`,
//! committed without waiting for the disk), and per process never goes back; if the
//! database cannot be reached it falls back to the process's own clock. A bulk load takes
//! a batch's timestamps in one step ([`Store::next_timestamps_ms`]): one round trip and one
//! transaction per resource were half of an import's time. Inside a write transaction,
//! timestamps are taken in growing blocks (1, 2, 4 … up to [`MAX_TIMESTAMP_BLOCK`]) and
//! handed out from them until it ends: every writer takes them under the write lock, so a
//! block is still newer than any other node's, and a 300-resource Bundle advances the row
//! 10 times instead of 300. Steps left over at the end are skipped.
//!
//! **Threads.** The synchronous `postgres` client runs a small runtime of its own per
//! connection: call the store from plain threads or `tokio::task::spawn_blocking`, never
//! directly on an async runtime's worker threads.

mod audit;
mod blocking;
mod ceiling;
mod counts;
mod db;
mod deferred;
mod drive;
mod explain;
mod few;
mod fulltext;
mod index;
mod indexonly;
mod known;
mod pinned;
mod pool;
mod query;
mod read;
mod record;
mod replica;
mod schema;
mod sortwalk;
pub mod test_backend;
#[cfg(test)]
mod test_writes;
pub mod throwaway;
mod value;
mod versions;

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

pub use deferred::{DeferredIndexes, DEFERRING_SESSION, IMPORT_LOCK};
pub use explain::{Explain, ExplainedStatement};
pub use record::shard_key;
use tsunagu_store::{
    AuditQuery, AuditRecord, HistoryQuery, PinnedView, ResourceVersion, SearchPage, SearchQuery, Store, StoreError,
    WriteTxn,
};

/// The advisory lock every write transaction holds ("tsunagu" + 2).
pub const WRITE_LOCK: i64 = 0x7473_756e_6167_7502;

/// Where the database is, and how many connections to it a store may hold.
#[derive(Debug, Clone, Default)]
pub struct PostgresConfig {
    /// The primary, as a libpq-style URL or key/value string
    /// (`postgres://user@host:5432/tsunagu`).
    pub url: String,
    /// Streaming replicas that reads may use.
    pub replicas: Vec<String>,
    /// Idle connections kept per server; past them a connection given back is closed. As
    /// many as may be open (`max_connections`) by default: with 8 kept, 16 concurrent reads
    /// opened and closed a connection for every other request, and 1% of them took 85 ms.
    pub pool_size: usize,
    /// Connections open at once per server (idle, in use, or held by a pinned view): the
    /// primary and each replica (`max_database_connections`). The primary has one more,
    /// kept for the shared clock (`Store::next_timestamp_ms`), which writers call while
    /// holding a connection of their own.
    pub max_connections: usize,
    /// The longest wait, in ms, for a free connection when `max_connections` are open;
    /// then [`StoreError::Unavailable`] (`database_wait_ms`). A replica with none free is
    /// not waited for: the read goes to the primary.
    pub wait_ms: u64,
}

impl PostgresConfig {
    /// The primary alone, with the default bounds of `[limits]` (`max_database_connections`,
    /// `database_wait_ms`), keeping as many idle connections as may be open.
    pub fn new(url: &str) -> PostgresConfig {
        let limits = tsunagu_limits::Limits::default();
        PostgresConfig {
            url: url.to_string(),
            replicas: Vec::new(),
            pool_size: limits.max_database_connections,
            max_connections: limits.max_database_connections,
            wait_ms: limits.database_wait_ms,
        }
    }

    fn bounds(&self) -> pool::Bounds {
        pool::Bounds {
            max_idle: self.pool_size,
            max_open: self.max_connections,
            wait: std::time::Duration::from_millis(self.wait_ms),
        }
    }
}

/// The largest block of timestamps a write transaction takes at once (see the crate's
/// documentation): at most this many milliseconds are skipped when it ends.
pub const MAX_TIMESTAMP_BLOCK: i64 = 64;

thread_local! {
    /// The timestamps taken for the write transaction running on this thread and not yet
    /// handed out; `None` outside one.
    static RESERVED: Cell<Option<Reserved>> = const { Cell::new(None) };
}

#[derive(Clone, Copy)]
struct Reserved {
    next: i64,
    last: i64,
    /// The size of the next block.
    block: i64,
}

/// Timestamps served from blocks while it lives ([`PostgresStore::write_here`]).
struct Reservation;

impl Reservation {
    fn open() -> Reservation {
        RESERVED.set(Some(Reserved { next: 1, last: 0, block: 1 }));
        Reservation
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        RESERVED.set(None);
    }
}

/// The store on a PostgreSQL primary (and optional streaming replicas). Cheap to share
/// (`Arc`); each call takes a pooled connection for its duration. Several stores — in one
/// process or on several nodes — may use one database at once.
pub struct PostgresStore {
    primary: pool::Pool,
    replicas: replica::Replicas,
    clock: tsunagu_store::Clock,
    /// The primary connection the shared clock is advanced on, outside the pool's bound:
    /// a writer asks for a timestamp while holding a pooled connection, and with every
    /// other connection held by writers waiting for the write lock, it would wait for one
    /// that only its own commit frees.
    clock_conn: parking_lot::Mutex<Option<postgres::Client>>,
    /// From how many estimated matches a filtered `_sort` page walks the sort index
    /// (`sortwalk::WALK_FROM` unless set; `i64::MAX`: never).
    walk_from: AtomicI64,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        crate::blocking::drop_outside_runtime(self.clock_conn.get_mut().take());
    }
}

/// `postgres::Error` as a [`StoreError`] (neither type is this crate's, so no `From`).
pub(crate) trait Pg<T> {
    fn pg(self) -> Result<T, StoreError>;
}

impl<T> Pg<T> for Result<T, postgres::Error> {
    fn pg(self) -> Result<T, StoreError> {
        self.map_err(|e| match e.as_db_error() {
            _ if unavailable(&e) => StoreError::Unavailable(e.to_string()),
            // A statement timeout, or an operator canceling it: a search's ceiling
            // (`ceiling.rs`) when one is in force.
            Some(db) if db.code() == &postgres::error::SqlState::QUERY_CANCELED => {
                StoreError::Canceled(format!("{}: {}", db.message(), e))
            }
            Some(db) => StoreError::Backend(format!("{} ({}): {}", db.message(), db.code().code(), e)),
            None => StoreError::Backend(e.to_string()),
        })
    }
}

/// Whether the error means the server cannot be reached or is going away (so a retry later
/// may succeed), not that the statement itself failed: a closed or refused connection, an
/// I/O error, SQLSTATE class 08 (connection exception), shutdowns (57P01–57P03) and too
/// many connections (53300).
fn unavailable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

impl PostgresStore {
    /// Connects to the primary, applies missing migrations (safe when several nodes open
    /// at once) and checks nothing else; replicas are connected when first used.
    pub fn open(config: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        blocking::blocking(|| Self::open_here(config))
    }

    fn open_here(config: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        let primary = pool::Pool::new(&config.url, config.bounds());
        let mut c = primary.get()?;
        schema::migrate(&mut c.client)?;
        // Indexes an import that died left out (see `deferred`).
        deferred::restore(&mut c.client)?;
        // The clock never starts below the newest stored version.
        let clock: i64 = c
            .client
            .query_one(
                "UPDATE counter SET value = GREATEST(value, (SELECT COALESCE(MAX(last_updated), 0) FROM resource)) \
                 WHERE name = 'clock' RETURNING value",
                &[],
            )
            .pg()?
            .get(0);
        // Replicas serve this node once they have replayed its migrations too: a fresh
        // schema on the primary is not yet on a replica.
        let replicas = replica::Replicas::new(&config.replicas, config.bounds());
        replicas.wrote(&mut c.client, &primary);
        drop(c);
        Ok(PostgresStore {
            primary,
            replicas,
            clock: tsunagu_store::Clock::new(clock),
            clock_conn: parking_lot::Mutex::new(None),
            walk_from: AtomicI64::new(sortwalk::WALK_FROM),
        })
    }

    /// From how many estimated matches a `_sort` page with conditions walks the sort
    /// key's index (2,000 unless set), or never (`None`): for tests and benchmarks that
    /// compare that plan with the general one on the same data, as
    /// `SqliteStore::set_sort_walk`.
    pub fn set_sort_walk(&self, min_matches: Option<u64>) {
        let n = min_matches.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.walk_from.store(n, Ordering::Relaxed);
    }

    fn walk_from(&self) -> i64 {
        self.walk_from.load(Ordering::Relaxed)
    }

    /// Applies the migrations without keeping a store (for `tsunagu migrate`-style
    /// commands); how many were applied.
    pub fn migrate(url: &str) -> Result<usize, StoreError> {
        blocking::blocking(|| schema::migrate(&mut pool::connect(url)?))
    }

    /// Runs `f` on a connection that has this store's last write: a replica when one is
    /// configured and caught up, else the primary.
    ///
    /// A database error drops the connection (it may be one the server closed while it
    /// sat in the pool) and the read runs once more on another: reads repeat safely.
    fn with_reader<T>(
        &self,
        f: impl Fn(&mut db::Cached<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_connection(false, db::Plans::PerValues, f)
    }

    /// [`with_reader`](Self::with_reader) for statements planned once
    /// ([`db::Cached::query_once`]): a session already planning so is taken first.
    fn with_reader_once<T>(
        &self,
        f: impl Fn(&mut db::Cached<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_connection(false, db::Plans::Once, f)
    }

    /// [`with_reader`](Self::with_reader) for a search page, which sets its own
    /// `statement_timeout` (`ceiling.rs`) and may find one a search left.
    fn with_searcher<T>(
        &self,
        plans: db::Plans,
        f: impl Fn(&mut db::Cached<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_connection(true, plans, f)
    }

    /// `plans`: how the statements `f` runs are mostly planned, so that a session already
    /// planning so is taken first (`Pool::get_for_search_within`).
    fn with_connection<T>(
        &self,
        search: bool,
        plans: db::Plans,
        f: impl Fn(&mut db::Cached<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        blocking::blocking(|| {
            let mut tries = 0;
            loop {
                tries += 1;
                let mut conn = match (self.replicas.reader(search, plans), search) {
                    (Some(c), _) => c,
                    (None, true) => self.primary.get_for_search(plans)?,
                    (None, false) => self.primary.get_preferring(plans)?,
                };
                // Statements that want plans per values set them back themselves.
                let planned = if plans == db::Plans::Once { conn.db().plans(plans).pg() } else { Ok(()) };
                match planned.and_then(|()| f(&mut conn.db())) {
                    Err(e @ (StoreError::Backend(_) | StoreError::Unavailable(_))) => {
                        conn.discard();
                        if tries == 2 {
                            return Err(e);
                        }
                    }
                    other => return other,
                }
            }
        })
    }

    fn write_here(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut retried = false;
        loop {
            let mut conn = self.primary.get()?;
            // A pooled connection the server has closed fails at BEGIN, before `f` ran:
            // then, once, another is taken (rather than asking each first, a round trip
            // per write).
            let mut began = false;
            let result = (|| {
                let _timestamps = Reservation::open();
                let db::Session { client, cache } = &mut *conn;
                // Dropped without commit (an error or a panic in `f`), the transaction
                // rolls back.
                let mut tx = client.transaction().pg()?;
                began = true;
                // Writes run the same few statements: plans made once serve them (searches
                // keep planning per execution, see `db`). `SET LOCAL` ends with the
                // transaction, so the session's own setting is as it was after it.
                tx.batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock({WRITE_LOCK}); SET LOCAL plan_cache_mode = auto"
                ))
                .pg()?;
                let plans = std::mem::replace(&mut cache.plans, db::Plans::Fixed);
                let mut txn = record::PgTxn::new(db::Cached { c: &mut tx, cache });
                let written = f(&mut txn).and_then(|()| txn.finish());
                txn.tx.cache.plans = plans;
                written?;
                // An error here (the connection lost, the server gone) means the write may
                // not have committed: it is reported, never taken for a success.
                tx.commit().pg()
            })();
            return match result {
                Ok(()) => {
                    self.replicas.wrote(&mut conn.client, &self.primary);
                    Ok(())
                }
                // The connection may be broken: not back to the pool.
                Err(e @ (StoreError::Backend(_) | StoreError::Unavailable(_))) => {
                    conn.discard();
                    if !began && !retried {
                        retried = true;
                        continue;
                    }
                    Err(e)
                }
                Err(e) => Err(e),
            };
        }
    }

    /// `n` timestamps from the shared clock row (this process's own clock when the database
    /// cannot be reached), never before one this process gave; the first of them.
    fn take_timestamps(&self, n: i64) -> i64 {
        let now = tsunagu_store::now_ms();
        // Across nodes: the shared clock row. `synchronous_commit` off: a crash may lose
        // the last steps, but `open` restarts the row at the newest stored version.
        let shared = blocking::blocking(|| Ok(self.shared_clock(now, n))).ok().flatten();
        self.clock.take(shared.map_or(now, |last| last - n + 1), n)
    }

    /// Advances the clock row shared by every node by `n` steps: `GREATEST(value + n, now +
    /// n - 1)`, committed without waiting for the disk; the last of the `n` timestamps it
    /// gave, `None` when the database cannot be reached.
    fn shared_clock(&self, now: i64, n: i64) -> Option<i64> {
        let mut conn = self.clock_conn.lock();
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = Some(self.primary.connect().ok()?);
        }
        let sql = format!(
            "BEGIN; SET LOCAL synchronous_commit TO off; \
             UPDATE counter SET value = GREATEST(value + {n}, {now} + {n} - 1) WHERE name = 'clock' \
             RETURNING value; COMMIT"
        );
        let Ok(messages) = conn.as_mut()?.simple_query(&sql) else {
            // Perhaps broken (a transaction left open, the server gone): the next call
            // opens another.
            *conn = None;
            return None;
        };
        messages.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse::<i64>().ok(),
            _ => None,
        })
    }

    /// Refreshes the planner's statistics and the visibility maps of the store's tables
    /// (`VACUUM (ANALYZE)`): after a bulk import, before autovacuum gets to it, so that
    /// searches are planned on the data as it is and index-only scans need not visit the
    /// rows. The tables, largest first, are shared by two sessions (ANALYZE runs on one core
    /// per table; the extended statistics of the index tables made it 5 s of a 20 s
    /// Synthea import on one session, 1.9 s on two); the system catalogs are left alone.
    pub fn analyze(&self) -> Result<(), StoreError> {
        blocking::blocking(|| deferred::build_and_analyze(self, None))
    }

    /// Number of live (not deleted) resources, by type.
    pub fn live_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.with_reader(|c| {
            let rows = c
                .query(
                    "SELECT type, COUNT(*) FROM resource WHERE current AND NOT deleted GROUP BY type ORDER BY type",
                    &[],
                )
                .pg()?;
            Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect())
        })
    }

    /// The size of the database on disk (tables, indexes, TOAST), as PostgreSQL counts it.
    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        let mut c = self.primary.get()?;
        let n: i64 = c.client.query_one("SELECT pg_database_size(current_database())", &[]).pg()?.get(0);
        Ok(n as u64)
    }

    /// Whether a read now would go to a replica: one has replayed this store's last write
    /// (for tests and health checks; counted in [`replica_reads`](Self::replica_reads)).
    pub fn replica_caught_up(&self) -> bool {
        blocking::blocking(|| Ok(self.replicas.reader(false, db::Plans::PerValues).is_some())).unwrap_or(false)
    }

    /// How many reads replicas served, and how many went to the primary because no
    /// replica had this store's last write in time (or none answered).
    pub fn replica_reads(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.replicas.served.load(Relaxed), self.replicas.fell_back.load(Relaxed))
    }

    /// How many reads waited for a replica to catch up and then went to the primary (a
    /// replica that failed rests a second before it is asked again).
    pub fn replica_waits(&self) -> u64 {
        self.replicas.waited.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Store for PostgresStore {
    fn read(&self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        self.with_reader_once(|c| read::current(c, ty, id))
    }

    fn read_many(
        &self,
        keys: &[(String, String)],
        cap: Option<tsunagu_store::ByteCap>,
    ) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
        self.with_reader_once(|c| read::current_many(c, keys, cap))
    }

    fn vread(&self, ty: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        self.with_reader_once(|c| read::vread(c, ty, id, version))
    }

    fn history(&self, q: &HistoryQuery) -> Result<tsunagu_store::HistoryPage, StoreError> {
        self.with_reader(|c| read::history(c, q))
    }

    fn history_count(&self, q: &HistoryQuery) -> Result<u64, StoreError> {
        self.with_reader(|c| read::history_count(c, q))
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.with_searcher(read::plans_for(q), |c| ceiling::search(c, q, ceiling::Scope::Session, self.walk_from()))
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>) -> Result<(), StoreError> {
        blocking::blocking(|| self.write_here(f))
    }

    fn next_timestamp_ms(&self) -> i64 {
        self.next_timestamps_ms(1)
    }

    fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.analyze()
    }

    fn recount_statistics(&self) -> Result<(), StoreError> {
        blocking::blocking(|| counts::recount(&mut self.primary.get()?.client))
    }

    fn next_timestamps_ms(&self, n: usize) -> i64 {
        let n = n.max(1) as i64;
        let Some(r) = RESERVED.get() else { return self.take_timestamps(n) };
        if r.last - r.next + 1 >= n {
            RESERVED.set(Some(Reserved { next: r.next + n, ..r }));
            return r.next;
        }
        let take = n.max(r.block);
        let first = self.take_timestamps(take);
        RESERVED.set(Some(Reserved {
            next: first + n,
            last: first + take - 1,
            block: (take * 2).min(MAX_TIMESTAMP_BLOCK),
        }));
        first
    }

    fn current_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError> {
        self.with_reader(|c| read::current_after(c, after_seq, limit))
    }

    fn count_current_after(&self, after_seq: i64) -> Result<u64, StoreError> {
        self.with_reader(|c| read::count_current_after(c, after_seq))
    }

    fn audit_chain(&self, after_n: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.with_reader(|c| audit::chain(c, after_n, limit))
    }

    fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.with_reader(|c| audit::search(c, q))
    }

    fn pinned(&self) -> Result<Box<dyn PinnedView>, StoreError> {
        blocking::blocking(|| {
            let client = match self.replicas.reader(false, db::Plans::PerValues) {
                Some(c) => c.detach(),
                None => self.primary.get()?.detach(),
            };
            Ok(Box::new(pinned::PgPinned::begin(client, self.walk_from())?) as Box<dyn PinnedView>)
        })
    }
}
