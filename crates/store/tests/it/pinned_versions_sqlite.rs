//! The backend-neutral version reader (`tests/it/pinned_versions`) on SQLite.

#[path = "pinned_versions/mod.rs"]
mod pinned_versions;

#[test]
fn every_version_in_write_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    pinned_versions::every_version_in_write_order(&store);
}
