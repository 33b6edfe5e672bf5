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

/// A narrow date window over many dated resources (`date=ge…&date=lt…` adds one) is
/// estimated by the window's own rows: its page comes from the window's few candidates,
/// not from a walk of every resource in write order that the two half-open conditions,
/// each matching half the type, would suggest.
#[test]
fn narrow_date_windows_are_estimated_by_their_own_rows() {
    use tsunagu_store::{Condition, RangeOp, Test};
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    for d in 0..6000 {
        suite::put(&store, "Observation", &format!("o{d}"), 1, &[suite::date("date", d * DAY, d * DAY + DAY - 1)]);
    }
    let (lo, hi) = (3000 * DAY, 3007 * DAY);
    let q = suite::q(
        Some("Observation"),
        vec![
            vec![suite::index("date", Test::Date { op: RangeOp::Ge, lo, hi: lo + DAY - 1 })],
            vec![suite::index("date", Test::Date { op: RangeOp::Lt, lo: hi, hi: hi + DAY - 1 })],
            vec![Condition::DateWindow { param: "date".into(), lo, hi }],
        ],
    );
    let x = store.explain(&q).unwrap();
    assert_eq!(x.estimate, Some(7), "the window's own rows");
    assert!(!x.plans.iter().any(|p| p.contains("dense")), "{:?}", x.plans);
    let ids: Vec<String> = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
    assert_eq!(ids, (3000..3007).map(|d| format!("o{d}")).collect::<Vec<_>>());
}
