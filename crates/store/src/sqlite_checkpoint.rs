//! Checkpoints on their own thread.
//!
//! In WAL mode every commit appends pages to the WAL, and a checkpoint copies them back into
//! the database file and fsyncs it. Left to SQLite's automatic checkpoint, that copy runs
//! inside the commit that crosses the threshold, on the single writer: at a million
//! resources it was a fifth of a bulk load's writer time, while the other core waited. Here
//! a thread with its own connection runs a PASSIVE checkpoint (it never blocks the writer
//! or readers) after writes, at most once per interval; the writer's automatic checkpoint
//! stays as a backstop at a larger size in case this thread falls behind.

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
    pub(crate) fn start(path: &Path, sync: SyncMode) -> Result<Checkpointer, crate::StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(match sync {
            SyncMode::Full => "PRAGMA synchronous=FULL;",
            SyncMode::Normal => "PRAGMA synchronous=NORMAL;",
        })?;
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &state))
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

fn run(conn: &Connection, shared: &(Mutex<State>, Condvar)) {
    let (state, wake) = shared;
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
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
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
