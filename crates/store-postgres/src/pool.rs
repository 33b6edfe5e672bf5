//! A small pool of connections to one server (the primary or one replica): idle
//! connections kept in a list, new ones opened when none is idle, up to a maximum of open
//! connections (idle, in use, or held by a pinned view). When all are in use a caller
//! waits a bounded time for one to come free, then gets [`StoreError::Unavailable`] (503
//! and `Retry-After` to a client). A connection that an error closed is dropped rather
//! than returned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::{Client, NoTls};

use crate::db::{Plans, Session, SessionTimeout};
use crate::{Pg, StoreError};

/// How many connections a pool keeps and opens, and how long a caller waits for one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// At most this many idle connections are kept.
    pub max_idle: usize,
    /// At most this many are open at once.
    pub max_open: usize,
    /// The longest wait for a free connection when `max_open` are open.
    pub wait: Duration,
}

struct State {
    idle: Vec<Session>,
    /// Connections open: idle, taken, or detached into a pinned view.
    open: usize,
}

/// What the pool and the connections it handed out share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a connection goes back idle or is closed.
    freed: Condvar,
}

impl Shared {
    /// One connection fewer is open.
    fn release(&self) {
        self.state.lock().open -= 1;
        self.freed.notify_one();
    }
}

pub(crate) struct Pool {
    url: String,
    shared: Arc<Shared>,
    bounds: Bounds,
    /// What its sessions' sort walks found of large clauses (`known.rs`).
    large_clauses: Arc<crate::known::LargeClauses>,
}

/// A connection taken from a pool; back to it when dropped, unless it was closed.
pub(crate) struct Conn<'p> {
    pool: &'p Pool,
    client: Option<Session>,
}

/// A connection no longer the pool's (a pinned view's own), still counted among its open
/// ones until dropped.
pub(crate) struct Detached {
    pub(crate) session: Session,
    _slot: Slot,
}

/// One place among a pool's open connections, given back when dropped.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl std::ops::Deref for Conn<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Conn<'_> {
    /// Closes the connection rather than returning it (it may be broken). When the server
    /// closed it, the idle ones are likely closed too (a restart, a failover): they go as
    /// well, since an idle connection cannot tell before it is used.
    pub(crate) fn discard(mut self) {
        if let Some(c) = self.client.take() {
            let mut state = self.pool.shared.state.lock();
            let stale = if c.client.is_closed() { std::mem::take(&mut state.idle) } else { Vec::new() };
            state.open -= 1 + stale.len();
            drop(state);
            self.pool.shared.freed.notify_all();
            drop((c, stale));
        }
    }

    /// The session itself, no longer the pool's (a pinned view keeps its own).
    pub(crate) fn detach(mut self) -> Detached {
        let session = self.client.take().expect("present until dropped");
        Detached { session, _slot: Slot(self.pool.shared.clone()) }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.pool.put_back(c);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        crate::blocking::drop_outside_runtime(std::mem::take(&mut self.shared.state.lock().idle));
    }
}

impl Pool {
    pub(crate) fn new(url: &str, bounds: Bounds) -> Pool {
        let bounds = Bounds { max_idle: bounds.max_idle.max(1), max_open: bounds.max_open.max(1), ..bounds };
        let state = State { idle: Vec::new(), open: 0 };
        Pool {
            url: url.to_string(),
            shared: Arc::new(Shared { state: Mutex::new(state), freed: Condvar::new() }),
            bounds,
            large_clauses: Arc::default(),
        }
    }

    /// A new connection, not from the pool nor counted by it.
    pub(crate) fn connect(&self) -> Result<Client, StoreError> {
        connect(&self.url)
    }

    /// A connection under the session's own `statement_timeout`, waiting up to the
    /// pool's `wait` for one when all are in use.
    pub(crate) fn get(&self) -> Result<Conn<'_>, StoreError> {
        self.get_within(self.bounds.wait, Plans::PerValues)
    }

    /// [`get`](Self::get), taking first a session whose statements are planned as
    /// `prefer` says.
    pub(crate) fn get_preferring(&self, prefer: Plans) -> Result<Conn<'_>, StoreError> {
        self.get_within(self.bounds.wait, prefer)
    }

    /// A connection under the session's own `statement_timeout`, waiting up to `wait` for
    /// one when all are in use: a search's timeout left on an idle session is undone here.
    /// One whose statements are planned as `prefer` says is taken first
    /// ([`get_for_search_within`](Self::get_for_search_within)).
    pub(crate) fn get_within(&self, wait: Duration, prefer: Plans) -> Result<Conn<'_>, StoreError> {
        loop {
            let mut conn = self.take(wait, prefer, false)?;
            if conn.db().reset_timeout().is_ok() {
                return Ok(conn);
            }
            conn.discard();
        }
    }

    /// A connection for a search page, which sets its own `statement_timeout`
    /// (`ceiling.rs`): perhaps one a search left in force.
    pub(crate) fn get_for_search(&self, prefer: Plans) -> Result<Conn<'_>, StoreError> {
        self.get_for_search_within(self.bounds.wait, prefer)
    }

    /// A connection perhaps under a search's timeout ([`take`](Self::take)).
    pub(crate) fn get_for_search_within(&self, wait: Duration, prefer: Plans) -> Result<Conn<'_>, StoreError> {
        self.take(wait, prefer, true)
    }

    /// An idle session as the caller would leave it is taken first: its statements planned
    /// as `prefer` says (`db::Plans`), and under a search's timeout or not as `searching`
    /// says, so that a caller rarely changes either setting (a round trip each: a search
    /// page that reads its `_include`s by id after it set and reset the timeout every
    /// time). When none is, another is opened while fewer than `max_idle` are open, so
    /// that reads and searches of each kind come to keep sessions of their own; past that,
    /// an idle one planning as wanted, else any.
    fn take(&self, wait: Duration, prefer: Plans, searching: bool) -> Result<Conn<'_>, StoreError> {
        let deadline = Instant::now() + wait;
        let as_left =
            |c: &Session| c.cache.plans == prefer && matches!(c.cache.timeout, SessionTimeout::Ms(_)) == searching;
        let mut state = self.shared.state.lock();
        loop {
            let before = state.idle.len();
            state.idle.retain(|c| !c.client.is_closed());
            state.open -= before - state.idle.len();
            if let Some(i) = state.idle.iter().rposition(as_left) {
                let c = state.idle.remove(i);
                return Ok(Conn { pool: self, client: Some(c) });
            }
            let room = state.open < self.bounds.max_idle.min(self.bounds.max_open);
            if !room {
                let planned = state.idle.iter().rposition(|c| c.cache.plans == prefer);
                if let Some(i) = planned.or_else(|| state.idle.len().checked_sub(1)) {
                    let c = state.idle.remove(i);
                    return Ok(Conn { pool: self, client: Some(c) });
                }
            }
            if state.open < self.bounds.max_open {
                // The place is taken before connecting, outside the lock (a connection takes
                // a round trip or more), and given back if connecting fails.
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(c) => Ok(Conn { pool: self, client: Some(Session::new(c, self.large_clauses.clone())) }),
                    Err(e) => {
                        self.shared.release();
                        Err(e)
                    }
                };
            }
            if self.shared.freed.wait_until(&mut state, deadline).timed_out() {
                return Err(StoreError::Unavailable(format!(
                    "no free database connection within {} ms: all {} (max_database_connections) are in use",
                    wait.as_millis(),
                    self.bounds.max_open
                )));
            }
        }
    }

    fn put_back(&self, c: Session) {
        // A session closed, or whose timeout or plans are not known, is not used again.
        let keep = !c.client.is_closed()
            && c.cache.timeout != SessionTimeout::Unknown
            && !matches!(c.cache.plans, Plans::Unknown | Plans::Fixed);
        let mut state = self.shared.state.lock();
        if keep && state.idle.len() < self.bounds.max_idle {
            state.idle.push(c);
            drop(state);
            self.shared.freed.notify_one();
            return;
        }
        state.open -= 1;
        drop(state);
        self.shared.freed.notify_one();
        drop(c);
    }

    /// Every connection it may open is open and none is idle: a caller would wait.
    pub(crate) fn is_full(&self) -> bool {
        let state = self.shared.state.lock();
        state.idle.is_empty() && state.open >= self.bounds.max_open
    }

    /// Connections open now (idle, taken, or held by pinned views).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.shared.state.lock().open
    }
}

/// Opens a connection. The synchronous client runs a small runtime of its own per
/// connection, so this must not be called on an async runtime's own threads (call it from
/// a plain thread or `tokio::task::spawn_blocking`).
///
/// Statements are prepared once per connection (`db`), and the session plans every
/// execution with its values (`force_custom_plan`) until work that wants one plan per
/// statement changes that (`db::Plans`).
///
/// Where nobody configured them (their source is PostgreSQL's default), the session sets
/// the planner settings of [`SESSION_DEFAULTS`]; a value set for the server, database or
/// role is kept.
pub(crate) fn connect(url: &str) -> Result<Client, StoreError> {
    let mut c = Client::connect(url, NoTls).pg()?;
    c.batch_execute("SET plan_cache_mode = force_custom_plan; SET application_name = 'tsunagu'").pg()?;
    let names: Vec<&str> = SESSION_DEFAULTS.iter().map(|(name, _)| *name).collect();
    let defaulted: Vec<String> = c
        .query("SELECT name FROM pg_settings WHERE name = ANY($1) AND source = 'default'", &[&names])
        .pg()?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (name, value) in SESSION_DEFAULTS.iter().filter(|(name, _)| defaulted.iter().any(|d| d == name)) {
        c.batch_execute(&format!("SET {name} = {value}")).pg()?;
    }
    Ok(c)
}

/// Planner settings of a session where the operator configured none (see [`connect`]);
/// figures from `bench search --shapes` on the Synthea sample.
/// - `random_page_cost` 1.1, as commonly advised for SSDs and cached data: at
///   PostgreSQL's 4 an index probe per walked row looks dearer than hashing every row of a
///   common condition (`Observation?category=laboratory&status=final&_sort=-date`: a walk
///   batch 27–30 ms hashing 70,000 rows, 1.3–2 ms probing 400).
/// - `max_parallel_workers_per_gather` 0: a search is one request's work among many, and
///   starting a worker costs more than it saves on these statements
///   (`Observation?code=8302-2&_sort=-value-quantity,-date` 40 → 14 ms,
///   `code:missing=false&_total=accurate` 38 → 13 ms).
/// - `jit` off: a statement the planner costs above `jit_above_cost` (any page that sorts
///   every match of a common condition) spent 10–12 ms compiling itself before it ran, more
///   than most such statements then take (`Observation?code=…&_sort=-date` p50 6.5 → 4.6 ms,
///   `Observation?category=vital-signs&_sort=-date` 6.7 → 3.9 ms).
pub const SESSION_DEFAULTS: [(&str, &str); 3] =
    [("random_page_cost", "1.1"), ("max_parallel_workers_per_gather", "0"), ("jit", "off")];

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Bounds, Plans, Pool, SessionTimeout};
    use crate::StoreError;

    /// A session plans with [`super::SESSION_DEFAULTS`] unless a setting was configured,
    /// here for the database.
    #[test]
    fn sessions_keep_configured_planner_settings() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let name = cluster.create_database();
        let url = cluster.url(&name);
        let shown = |setting: &str| {
            let mut c = super::connect(&url).unwrap();
            c.query_one(&format!("SHOW {setting}"), &[]).unwrap().get::<_, String>(0)
        };
        for (setting, value) in super::SESSION_DEFAULTS {
            assert_eq!(shown(setting), value);
        }
        let mut admin = super::connect(&url).unwrap();
        admin.batch_execute(&format!("ALTER DATABASE \"{name}\" SET random_page_cost = 3")).unwrap();
        assert_eq!(shown("random_page_cost"), "3");
        assert_eq!(shown("max_parallel_workers_per_gather"), "0");
    }

    /// An idle session planning as the caller wants is taken first; when none is, another
    /// is opened while fewer than `max_idle` are open, and past that an idle one of the
    /// other kind is taken.
    #[test]
    fn sessions_planning_as_wanted_are_taken_first() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let pool = Pool::new(&url, Bounds { max_idle: 2, max_open: 3, wait: Duration::from_millis(200) });
        let pid =
            |c: &mut super::Conn<'_>| c.db().c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get::<_, i32>(0);
        let mut once = pool.get_for_search(Plans::Once).unwrap();
        once.db().plans(Plans::Once).unwrap();
        let once_pid = pid(&mut once);
        drop(once);
        let mut per_values = pool.get_for_search(Plans::PerValues).unwrap();
        assert_ne!(pid(&mut per_values), once_pid, "a second session rather than a change of plans");
        assert_eq!(pool.open(), 2);
        drop(per_values);
        for _ in 0..3 {
            let mut c = pool.get_for_search(Plans::Once).unwrap();
            assert_eq!((pid(&mut c), c.cache.plans), (once_pid, Plans::Once));
        }
        let held = pool.get_for_search(Plans::PerValues).unwrap();
        let mut other = pool.get_for_search(Plans::PerValues).unwrap();
        assert_eq!((pid(&mut other), pool.open()), (once_pid, 2), "max_idle open: the other kind is taken");
        drop((held, other));
    }

    /// A session a search left under its timeout serves the next search, and one under its
    /// own timeout the next read: neither is set and reset in turn.
    #[test]
    fn sessions_under_a_search_timeout_are_kept_for_searches() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let pool = Pool::new(&url, Bounds { max_idle: 2, max_open: 3, wait: Duration::from_millis(200) });
        let pid =
            |c: &mut super::Conn<'_>| c.db().c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get::<_, i32>(0);
        let mut search = pool.get_for_search(Plans::PerValues).unwrap();
        search.db().set_timeout(1000).unwrap();
        let search_pid = pid(&mut search);
        drop(search);
        let mut read = pool.get().unwrap();
        let read_pid = pid(&mut read);
        assert_ne!(read_pid, search_pid, "a second session rather than a reset timeout");
        drop(read);
        for _ in 0..2 {
            let mut search = pool.get_for_search(Plans::PerValues).unwrap();
            assert_eq!((pid(&mut search), search.cache.timeout), (search_pid, SessionTimeout::Ms(1000)));
            drop(search);
            let mut read = pool.get().unwrap();
            assert_eq!((pid(&mut read), read.cache.timeout), (read_pid, SessionTimeout::Default));
        }
        // With `max_idle` open, a read takes the search's session and resets its timeout.
        let held = pool.get().unwrap();
        let mut read = pool.get().unwrap();
        assert_eq!((pid(&mut read), read.cache.timeout, pool.open()), (search_pid, SessionTimeout::Default, 2));
        let shown: String = read.db().c.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
        assert_eq!(shown, "0");
        drop((held, read));
    }

    /// At most `max_open` connections are open, whether taken, idle or detached; the next
    /// caller waits for one to come free, and past the wait is told the database is
    /// unavailable (503 to a client).
    #[test]
    fn open_connections_are_bounded_and_callers_wait_a_bounded_time() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let wait = Duration::from_millis(200);
        let pool = Pool::new(&url, Bounds { max_idle: 1, max_open: 2, wait });
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        let started = Instant::now();
        let Err(StoreError::Unavailable(m)) = pool.get() else { panic!("a third connection") };
        assert!(started.elapsed() >= wait && m.contains("max_database_connections"), "{m}");
        assert_eq!(pool.open(), 2);
        // A connection given back serves the next caller; one detached into a pinned view
        // still counts until dropped.
        drop(a);
        let pinned = pool.get().unwrap().detach();
        assert!(pool.get_within(Duration::ZERO, Plans::PerValues).is_err());
        drop(pinned);
        let c = pool.get().unwrap();
        // A discarded one frees its place; so does one more than the idle ones kept.
        c.discard();
        assert_eq!(pool.open(), 1);
        let c = pool.get().unwrap();
        drop(b);
        drop(c);
        assert_eq!(pool.open(), 1, "one idle kept, the other closed");
        // A caller waiting is served as soon as another gives one back.
        let (x, y) = (pool.get().unwrap(), pool.get().unwrap());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pool.get().map(|_| ()));
            std::thread::sleep(Duration::from_millis(50));
            drop(x);
            assert!(waiter.join().unwrap().is_ok());
        });
        // A session whose timeout is not known is closed, not pooled.
        drop(y);
        assert_eq!(pool.open(), 1);
        let mut z = pool.get().unwrap();
        z.cache.timeout = SessionTimeout::Unknown;
        drop(z);
        assert_eq!(pool.open(), 0);
        assert!(pool.shared.state.lock().idle.is_empty());
        // A search's timeout stays for the next search, and is undone for anything else.
        let mut s = pool.get_for_search(Plans::PerValues).unwrap();
        (*s).client.batch_execute("SET statement_timeout = 1234").unwrap();
        s.cache.timeout = SessionTimeout::Ms(1234);
        drop(s);
        let mut s = pool.get_for_search(Plans::PerValues).unwrap();
        assert_eq!(s.cache.timeout, SessionTimeout::Ms(1234));
        let shown: String = (*s).client.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
        assert_eq!(shown, "1234ms");
        drop(s);
        let mut s = pool.get().unwrap();
        assert_eq!(s.cache.timeout, SessionTimeout::Default);
        let shown: String = (*s).client.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
        assert_eq!(shown, "0");
        assert_eq!(pool.open(), 1);
    }
}
