//! The backend-neutral version reader (`crates/store/tests/it/pinned_versions`) on
//! PostgreSQL: `versions_after` and `count_versions_upto` in a REPEATABLE READ view.

#[path = "../../../store/tests/it/pinned_versions/mod.rs"]
mod pinned_versions;

#[test]
fn every_version_in_write_order() {
    let Some(store) = tsunagu_store_postgres::throwaway::test_store() else { return };
    pinned_versions::every_version_in_write_order(store.as_ref());
}
