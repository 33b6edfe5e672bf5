//! Kept counts: how many current, live resources each type has (`live_count`, schema V6),
//! so that a total without conditions (`Observation?_summary=count`, `_total=accurate`
//! on a bare type or on every type) is one row read instead of a count of every row of
//! the type: 3 ms on the Synthea sample, and growing with the data.
//!
//! They are exact. A write transaction sums its changes in memory ([`Deltas`]) and writes
//! them in one statement just before its commit: every writer holds the write lock, so the
//! counts change in commit order and never interleave. A reader sees them in its own
//! snapshot (a pinned view's, a replica's), as it sees the rows they count.
//! [`recount`] counts them again from the data (a reindex ends with it); `tsunagu check`
//! compares them with the versions it reads.

use std::collections::BTreeMap;

use postgres::GenericClient;
use tsunagu_store::StoreError;

use crate::db::Cached;
use crate::Pg;

/// Changes to the live resources of each type made by one write transaction, not yet
/// written.
#[derive(Default)]
pub(crate) struct Deltas(BTreeMap<String, i64>);

impl Deltas {
    /// A live current version of `ty` written (`delta` 1), or one no longer current or
    /// live (-1).
    pub(crate) fn add(&mut self, ty: &str, delta: i64) {
        match self.0.get_mut(ty) {
            Some(n) => *n += delta,
            None => {
                self.0.insert(ty.to_string(), delta);
            }
        }
    }

    /// Writes the sums in one statement, and forgets them.
    pub(crate) fn flush(&mut self, c: &mut Cached<'_, impl GenericClient>) -> Result<(), StoreError> {
        let (types, deltas): (Vec<String>, Vec<i64>) =
            std::mem::take(&mut self.0).into_iter().filter(|(_, d)| *d != 0).unzip();
        if types.is_empty() {
            return Ok(());
        }
        c.execute(
            "INSERT INTO live_count (type, n) SELECT * FROM unnest($1::text[], $2::int8[]) \
             ON CONFLICT (type) DO UPDATE SET n = live_count.n + EXCLUDED.n",
            &[&types, &deltas],
        )
        .pg()?;
        Ok(())
    }
}

/// The live resources of `ty`, or of every type (`None`), from the kept counts.
pub(crate) fn total(c: &mut Cached<'_, impl GenericClient>, ty: Option<&str>) -> Result<u64, StoreError> {
    let n: i64 = match ty {
        // One plan: the primary key, whatever the type.
        Some(ty) => c.query_opt_once("SELECT n FROM live_count WHERE type = $1", &[&ty]).pg()?.map_or(0, |r| r.get(0)),
        None => c.query_once("SELECT COALESCE(SUM(n), 0)::int8 FROM live_count", &[]).pg()?[0].get(0),
    };
    Ok(n.max(0) as u64)
}

/// Counts every type again from the data, under the write lock.
pub(crate) fn recount(c: &mut impl GenericClient) -> Result<(), StoreError> {
    let mut tx = c.transaction().pg()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({}); DELETE FROM live_count; INSERT INTO live_count (type, n) \
         SELECT type, COUNT(*) FROM resource WHERE current AND NOT deleted GROUP BY type",
        crate::WRITE_LOCK
    ))
    .pg()?;
    tx.commit().pg()
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Method, NewVersion, SearchQuery, Store, StoreError};

    use crate::PostgresStore;

    fn total(store: &dyn Store, ty: Option<&str>) -> u64 {
        let q = SearchQuery { resource_type: ty.map(str::to_string), total: true, ..Default::default() };
        store.search(&q).unwrap().total.unwrap()
    }

    /// The kept totals equal a count of the data, per type and over every type.
    fn assert_kept(store: &PostgresStore, when: &str) {
        let counted = store.live_counts().unwrap();
        for (ty, n) in &counted {
            assert_eq!(total(store, Some(ty)), *n, "{ty} {when}");
        }
        assert_eq!(total(store, None), counted.iter().map(|(_, n)| n).sum::<u64>(), "every type {when}");
    }

    fn version<'a>(ty: &'a str, id: &'a str, version: u64, body: Option<&'a [u8]>) -> NewVersion<'a> {
        NewVersion { resource_type: ty, id, version, last_updated_ms: 1, method: Method::Put, body, index: &[] }
    }

    #[test]
    fn kept_totals_follow_every_kind_of_write() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        assert_eq!((total(&store, Some("Patient")), total(&store, None)), (0, 0));
        // First versions by INSERT (a few) and by COPY (a batch of 64 or more).
        let ids: Vec<String> = (0..100).map(|i| format!("o{i}")).collect();
        let few: Vec<NewVersion> = ids[..3].iter().map(|id| version("Observation", id, 1, Some(b"{}"))).collect();
        store.write(&mut |txn| txn.put_new(&few)).unwrap();
        let many: Vec<NewVersion> = ids[3..].iter().map(|id| version("Observation", id, 1, Some(b"{}"))).collect();
        store.write(&mut |txn| txn.put_new(&many)).unwrap();
        crate::test_writes::put_token(&store, "Patient", "p", "identifier", "x");
        assert_eq!(total(&store, Some("Observation")), 100);
        assert_kept(&store, "after first versions");
        // An update, a deletion, a second deletion, and a version after the deletion.
        store.write(&mut |txn| txn.put(&version("Observation", "o0", 2, Some(b"{}")))).unwrap();
        assert_kept(&store, "after an update");
        store.write(&mut |txn| txn.put(&version("Observation", "o1", 2, None))).unwrap();
        assert_eq!(total(&store, Some("Observation")), 99);
        store.write(&mut |txn| txn.put(&version("Observation", "o1", 3, None))).unwrap();
        assert_eq!(total(&store, Some("Observation")), 99, "deleting a deleted resource");
        store.write(&mut |txn| txn.put(&version("Observation", "o1", 4, Some(b"{}")))).unwrap();
        assert_eq!(total(&store, Some("Observation")), 100, "written again after its deletion");
        // Several writes of two types in one transaction; a transaction that failed after
        // its writes changes nothing.
        store
            .write(&mut |txn| {
                txn.put(&version("Observation", "o2", 2, None))?;
                txn.put(&version("Observation", "o3", 2, None))?;
                txn.put(&version("Patient", "p2", 1, Some(b"{}")))
            })
            .unwrap();
        assert_eq!((total(&store, Some("Observation")), total(&store, Some("Patient"))), (98, 2));
        let failed = store.write(&mut |txn| {
            txn.put(&version("Observation", "o4", 2, None))?;
            Err(StoreError::VersionConflict("refused".into()))
        });
        assert!(failed.is_err());
        assert_eq!(total(&store, Some("Observation")), 98, "a rolled-back write");
        assert_kept(&store, "after mixed writes");
        // A pinned view keeps the totals of its moment.
        let view = store.pinned().unwrap();
        store.write(&mut |txn| txn.put(&version("Patient", "p3", 1, Some(b"{}")))).unwrap();
        let q = SearchQuery { resource_type: Some("Patient".into()), total: true, ..Default::default() };
        assert_eq!(view.search(&q).unwrap().total, Some(2));
        assert_eq!(total(&store, Some("Patient")), 3);
        drop(view);
        // Counts that went wrong (a node of an older build writing) are repaired by a recount.
        let mut c = store.primary.get().unwrap();
        c.client.batch_execute("UPDATE live_count SET n = n + 7 WHERE type = 'Observation'").unwrap();
        drop(c);
        assert_eq!(total(&store, Some("Observation")), 105);
        store.recount_statistics().unwrap();
        assert_kept(&store, "after a recount");
    }
}
