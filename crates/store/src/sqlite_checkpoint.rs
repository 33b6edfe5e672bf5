//! Checkpoints on their own thread.
//!
//! In WAL mode every commit appends pages to the WAL, and a checkpoint copies them back into
//! the database file and fsyncs it. Left to SQLite's automatic checkpoint, that copy runs
//! inside the commit that crosses the threshold, on the single writer: at a million
//! resources it was a fifth of a bulk load's writer time, while the other core waited. Here
//! a thread with its own connection runs a PASSIVE checkpoint (it never blocks the writer
//! or readers) after writes, at most once per interval; the writer's automatic checkpoint
//! stays as a backstop at a larger size in case this thread falls behind. Once the WAL is
//! large, a RESTART checkpoint holding the writer makes the next commit write it from its
//! beginning again (the writer waits briefly; see [`restart`]).

use crate::sqlite::SyncMode;
use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Pause between checkpoints while writes continue: long enough that a page written by many
/// commits is copied once, short enough to keep the WAL to tens of megabytes.
const INTERVAL: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    /// Commits since the last checkpoint.
    dirty: bool,
    stop: bool,
}

pub(crate) struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `writer` is the store's writer connection: a RESTART is run while holding it, so
    /// that no write transaction is open then.
    pub(crate) fn start(
        path: &Path,
        sync: SyncMode,
        writer: Arc<Mutex<Connection>>,
    ) -> Result<Checkpointer, crate::StoreError> {
        let conn = Connection::open(path)?;
        // A PASSIVE pass never waits; a RESTART (run holding the writer) waits this long for
        // readers still on the WAL, then continues as PASSIVE.
        conn.busy_timeout(RESTART_WAIT)?;
        conn.execute_batch(match sync {
            SyncMode::Full => "PRAGMA synchronous=FULL;",
            SyncMode::Normal => "PRAGMA synchronous=NORMAL;",
        })?;
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &state, &writer))
            .map_err(|e| crate::StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { shared, thread: Some(thread) })
    }

    /// Called after each commit.
    pub(crate) fn wrote(&self) {
        let (state, wake) = &*self.shared;
        let mut s = state.lock();
        if !s.dirty {
            s.dirty = true;
            wake.notify_one();
        }
    }
}

fn run(conn: &Connection, shared: &(Mutex<State>, Condvar), writer: &Mutex<Connection>) {
    let (state, wake) = shared;
    let mut restart_after = 0u32;
    loop {
        {
            let mut s = state.lock();
            while !s.dirty && !s.stop {
                wake.wait(&mut s);
            }
            if s.stop {
                return;
            }
            s.dirty = false;
        }
        // Gather the writes of one interval, then copy them in one pass. A failure (a
        // reader holding old frames, a busy lock) only delays the copy to the next round or
        // to the writer's own automatic checkpoint.
        {
            let deadline = std::time::Instant::now() + INTERVAL;
            let mut s = state.lock();
            while !s.stop && !wake.wait_until(&mut s, deadline).timed_out() {}
        }
        let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)).unwrap_or(0);
        restart_after = restart_after.saturating_sub(1);
        if frames >= RESTART_FROM_FRAMES && restart_after == 0 && !restart(conn, writer) {
            restart_after = RESTART_BACKOFF;
        }
    }
}

/// WAL frames (8 KiB pages) from which a checkpoint makes the WAL start again.
const RESTART_FROM_FRAMES: i64 = 8192;
/// How long a RESTART checkpoint may wait for readers still using the WAL.
const RESTART_WAIT: Duration = Duration::from_millis(50);
/// Intervals without a RESTART after one that could not finish (a long reader).
const RESTART_BACKOFF: u32 = 10;

/// A RESTART checkpoint, holding the store's writer so that no write transaction is open:
/// the rest of the WAL is copied and the next commit writes the WAL from its beginning.
/// Under a steady writer PASSIVE passes never leave the WAL fully copied (commits append
/// while they copy), so it only ever grew, to the writer's backstop of 512 MiB, every frame
/// on a new block of the file (allocated and zeroed by the kernel: half of a commit's
/// `pwrite` time); rewritten frames land on pages already cached. A second PASSIVE pass
/// first copies what commits appended during the one before, so the writer waits only
/// for the frames of a commit or two, the database fsync and at most `RESTART_WAIT` for
/// readers. `false` when it could not finish (a reader still on the WAL).
fn restart(conn: &Connection, writer: &Mutex<Connection>) -> bool {
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    let _writer = writer.lock();
    matches!(conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)), Ok(0))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let (state, wake) = &*self.shared;
            state.lock().stop = true;
            wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
