//! The store's backend-generic suite (`crates/store/tests/it/suite`) on PostgreSQL.

#[macro_use]
#[path = "../../../store/tests/it/suite/mod.rs"]
mod suite;

fn fresh() -> Option<((), std::sync::Arc<dyn tsunagu_store::Store>)> {
    tsunagu_store_postgres::throwaway::test_store().map(|s| ((), s as std::sync::Arc<dyn tsunagu_store::Store>))
}

store_suite!(fresh());
