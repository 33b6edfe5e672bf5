//! The store the test suites of the layers above run on: the embedded SQLite store in a
//! directory, or, when `TSUNAGU_TEST_BACKEND=postgres`, a fresh database on the
//! process-wide throwaway PostgreSQL cluster. `.ci/run` runs the storage, search and
//! interaction suites once per backend this way.

use std::path::Path;
use std::sync::Arc;

use tsunagu_store::{SqliteStore, Store, SyncMode};

/// Which backend `TSUNAGU_TEST_BACKEND` asks for (`sqlite` when unset).
pub fn postgres_requested() -> bool {
    match std::env::var("TSUNAGU_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("TSUNAGU_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
    }
}

/// A fresh, empty store for one test; `dir` is used by SQLite only. A run that asked for
/// PostgreSQL where it is not installed fails: it must not pass on SQLite instead.
pub fn fresh_store(dir: &Path) -> Arc<dyn Store> {
    if postgres_requested() {
        // Opened on a plain thread: async tests call this on their runtime's thread, where
        // the synchronous client must not block.
        let store = std::thread::spawn(crate::throwaway::test_store)
            .join()
            .expect("the throwaway cluster started")
            .expect("TSUNAGU_TEST_BACKEND=postgres, but PostgreSQL is not installed (initdb, pg_ctl)");
        return store;
    }
    Arc::new(SqliteStore::open(dir, SyncMode::Normal).expect("open a SQLite store"))
}
