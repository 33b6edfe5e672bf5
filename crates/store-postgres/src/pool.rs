//! A small pool of connections to one server (the primary or one replica): idle
//! connections kept in a list, new ones opened when none is idle. A connection that an
//! error closed is dropped rather than returned.

use parking_lot::Mutex;
use postgres::{Client, NoTls};

use crate::db::Session;
use crate::{Pg, StoreError};

pub(crate) struct Pool {
    url: String,
    idle: Mutex<Vec<Session>>,
    /// At most this many idle connections are kept.
    max_idle: usize,
}

/// A connection taken from a pool; back to it when dropped, unless it was closed.
pub(crate) struct Conn<'p> {
    pool: &'p Pool,
    client: Option<Session>,
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
            if c.client.is_closed() {
                self.pool.idle.lock().clear();
            }
        }
    }

    /// The session itself, no longer the pool's (a pinned view keeps its own).
    pub(crate) fn detach(mut self) -> Session {
        self.client.take().expect("present until dropped")
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
        crate::blocking::drop_outside_runtime(std::mem::take(&mut *self.idle.lock()));
    }
}

impl Pool {
    pub(crate) fn new(url: &str, max_idle: usize) -> Pool {
        Pool { url: url.to_string(), idle: Mutex::new(Vec::new()), max_idle: max_idle.max(1) }
    }

    /// A new connection, not from the pool.
    pub(crate) fn connect(&self) -> Result<Client, StoreError> {
        connect(&self.url)
    }

    pub(crate) fn get(&self) -> Result<Conn<'_>, StoreError> {
        loop {
            let c = self.idle.lock().pop();
            match c {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => return Ok(Conn { pool: self, client: Some(c) }),
                None => return Ok(Conn { pool: self, client: Some(Session::new(self.connect()?)) }),
            }
        }
    }

    fn put_back(&self, c: Session) {
        if c.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(c);
        }
    }
}

/// Opens a connection. The synchronous client runs a small runtime of its own per
/// connection, so this must not be called on an async runtime's own threads (call it from
/// a plain thread or `tokio::task::spawn_blocking`).
///
/// Statements are prepared once per connection (`db`), so each session plans every
/// execution with its values (`force_custom_plan`): a plan made once for all values of a
/// search could scan a whole table for a rare code because a common one would.
pub(crate) fn connect(url: &str) -> Result<Client, StoreError> {
    let mut c = Client::connect(url, NoTls).pg()?;
    c.batch_execute("SET plan_cache_mode = force_custom_plan; SET application_name = 'tsunagu'").pg()?;
    Ok(c)
}
