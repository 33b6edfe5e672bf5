//! Read replicas that never show a client data older than its own writes: after each
//! commit (and after migrating) the store records the primary's WAL insert position, and a
//! read goes to a replica only once that replica has replayed past it (polled for up to
//! [`MAX_WAIT`]); otherwise to the primary. A replica that did not catch up in time, or
//! could not be asked, rests for [`REST`]: reads go straight to the primary meanwhile, so
//! that a replica stuck or gone costs one wait a second, not one a read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postgres::Client;
use tsunagu_store::StoreError;

use crate::db::Plans;
use crate::pool::{Bounds, Conn, Pool};
use crate::Pg;

pub(crate) const MAX_WAIT: Duration = Duration::from_millis(100);
/// How long a replica that failed a read is not asked again.
pub(crate) const REST: Duration = Duration::from_secs(1);

pub(crate) struct Replicas {
    pools: Vec<Pool>,
    next: AtomicUsize,
    /// The WAL position after this store's last commit.
    lsn: AtomicU64,
    /// Reads a replica served, and reads that went to the primary instead.
    pub(crate) served: AtomicU64,
    pub(crate) fell_back: AtomicU64,
    /// Reads that waited [`MAX_WAIT`] for a replica in vain.
    pub(crate) waited: AtomicU64,
    /// Per replica: not asked before this many ms after `epoch` ([`REST`]).
    resting_until: Vec<AtomicU64>,
    epoch: Instant,
}

/// `16/B374D848` as a number.
pub(crate) fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

impl Replicas {
    pub(crate) fn new(urls: &[String], bounds: Bounds) -> Replicas {
        Replicas {
            pools: urls.iter().map(|u| Pool::new(u, bounds)).collect(),
            next: AtomicUsize::new(0),
            lsn: AtomicU64::new(0),
            served: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            resting_until: urls.iter().map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
        }
    }

    /// Records the primary's WAL position after a commit, read on `c` (a primary connection).
    pub(crate) fn wrote(&self, c: &mut Client, primary: &Pool) {
        if self.pools.is_empty() {
            return;
        }
        let read = |c: &mut Client| -> Result<u64, StoreError> {
            let messages = c.simple_query("SELECT pg_current_wal_insert_lsn()::text").pg()?;
            let s = messages.iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                _ => None,
            });
            s.as_deref()
                .and_then(parse_lsn)
                .ok_or_else(|| StoreError::Backend(format!("unreadable WAL position {s:?}")))
        };
        // Any primary connection's position is past our commit; without one (none free
        // at once either: this writer holds one already), no replica is trusted.
        let lsn = read(c)
            .or_else(|_| read(&mut primary.get_within(Duration::ZERO, Plans::PerValues)?.client))
            .unwrap_or(u64::MAX);
        self.lsn.fetch_max(lsn, Ordering::SeqCst);
    }

    /// A replica connection that has replayed this store's last write, if one comes in time;
    /// for a `search` page, perhaps under a search's timeout (`Pool::get_for_search`).
    pub(crate) fn reader(&self, search: bool, plans: Plans) -> Option<Conn<'_>> {
        if self.pools.is_empty() {
            return None;
        }
        let found = self.caught_up(search, plans);
        let counter = if found.is_some() { &self.served } else { &self.fell_back };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn caught_up(&self, search: bool, plans: Plans) -> Option<Conn<'_>> {
        let wanted = self.lsn.load(Ordering::SeqCst);
        if wanted == u64::MAX {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pools.len();
        let now_ms = || self.epoch.elapsed().as_millis() as u64;
        if now_ms() < self.resting_until[i].load(Ordering::Relaxed) {
            return None;
        }
        let rest = || {
            self.resting_until[i].store(now_ms() + REST.as_millis() as u64, Ordering::Relaxed);
            None
        };
        let pool = &self.pools[i];
        // A replica with none free: the primary now, rather than waiting here.
        let taken = if search {
            pool.get_for_search_within(Duration::ZERO, plans)
        } else {
            pool.get_within(Duration::ZERO, plans)
        };
        let mut conn = match taken {
            Ok(c) => c,
            Err(_) if pool.is_full() => return None,
            Err(_) => return rest(),
        };
        let start = Instant::now();
        loop {
            // No parameters, so one plan whatever the session's plans are: asked for without
            // changing them (a round trip each way on every read of a session planning once).
            let replayed = match conn.db().query_once("SELECT pg_last_wal_replay_lsn()::text", &[]) {
                Ok(rows) => rows.first().and_then(|r| r.get::<_, Option<String>>(0)).and_then(|s| parse_lsn(&s)),
                Err(_) => return rest(),
            };
            match replayed {
                Some(at) if at >= wanted => return Some(conn),
                // NULL: not a standby at all; not trusted.
                None => return rest(),
                Some(_) if start.elapsed() >= MAX_WAIT => {
                    self.waited.fetch_add(1, Ordering::Relaxed);
                    return rest();
                }
                Some(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wal_positions_are_numbers() {
        assert_eq!(super::parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(super::parse_lsn("0/0"), Some(0));
        assert_eq!(super::parse_lsn("x"), None);
    }
}
