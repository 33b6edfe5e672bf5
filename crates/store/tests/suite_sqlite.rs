//! The backend-generic store suite (`suite/mod.rs`) on the embedded SQLite store.

#[macro_use]
#[path = "suite/mod.rs"]
mod suite;

fn fresh() -> Option<(tempfile::TempDir, std::sync::Arc<dyn tsunagu_store::Store>)> {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    Some((dir, std::sync::Arc::new(store)))
}

store_suite!(fresh());
