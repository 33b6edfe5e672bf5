//! Imports into an empty database without maintaining the lookup indexes row by row:
//! [`PostgresStore::defer_indexes`] drops the indexes of
//! [`DEFERRABLE_INDEXES`](crate::schema::DEFERRABLE_INDEXES), the import writes, and
//! [`DeferredIndexes::finish`] builds them again, each in one sorted pass (`CREATE
//! INDEX`), which costs a fraction of inserting every entry at a random place and leaves
//! the indexes about half the size.
//!
//! **Crash safety.** The session that deferred the indexes holds the session-level advisory
//! lock [`IMPORT_LOCK`] until they are built again. PostgreSQL releases it when that
//! session ends in any way (the process killed, the connection lost), and every
//! [`PostgresStore::open`] builds the indexes that are missing when it can take the lock:
//! so the first open after an import that died restores them, while an open during a live
//! import leaves them to it. `CREATE INDEX` (not `CONCURRENTLY`) is transactional: one
//! interrupted leaves no half-built index behind, only a missing one.
//!
//! **Meanwhile.** Uniqueness holds throughout (the unique indexes are never deferred, and
//! writers check versions under the write lock anyway), and searches on other nodes give
//! the same answers, only by scanning the index tables rather than probing an index, so
//! slower.

use postgres::Client;

use crate::schema::DEFERRABLE_INDEXES;
use crate::{blocking, Pg, PostgresStore, StoreError, WRITE_LOCK};

/// The session-level advisory lock held while indexes are deferred ("tsunagu" + 3).
pub const IMPORT_LOCK: i64 = 0x7473_756e_6167_7503;

/// `application_name` of the session that holds [`IMPORT_LOCK`] (visible in
/// `pg_stat_activity`).
pub const DEFERRING_SESSION: &str = "tsunagu deferred indexes";

/// Memory for each index build: the sort of the largest index of a Synthea import of
/// 100,000 resources (450,000 token rows) fits in it, so it does not spill to disk; larger
/// imports sort partly on disk. Per build, so at most this per import.
const BUILD_MEMORY: &str = "256MB";

/// The lookup indexes of an import in progress; [`finish`](Self::finish) builds them.
/// Dropped without `finish`, the session ends and the next [`PostgresStore::open`] builds
/// them.
pub struct DeferredIndexes {
    session: Option<Client>,
}

impl PostgresStore {
    /// For an import into an empty database (no resource stored): drops the lookup indexes
    /// so that the import does not maintain them row by row; build them with
    /// [`DeferredIndexes::finish`]. `None` (nothing dropped) when resources are stored or
    /// another import defers them already.
    pub fn defer_indexes(&self) -> Result<Option<DeferredIndexes>, StoreError> {
        blocking::blocking(|| {
            let mut c = self.primary.connect()?;
            c.batch_execute(&format!("SET application_name = '{DEFERRING_SESSION}'")).pg()?;
            let locked: bool = c.query_one("SELECT pg_try_advisory_lock($1)", &[&IMPORT_LOCK]).pg()?.get(0);
            if !locked {
                blocking::drop_outside_runtime(c);
                return Ok(None);
            }
            // Under the write lock, no writer adds a resource between the check and the drop.
            let mut tx = c.transaction().pg()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]).pg()?;
            let empty: bool = tx.query_one("SELECT NOT EXISTS (SELECT 1 FROM resource)", &[]).pg()?.get(0);
            if empty {
                let names: Vec<&str> = DEFERRABLE_INDEXES.iter().map(|(name, _)| *name).collect();
                tx.batch_execute(&format!("DROP INDEX IF EXISTS {}", names.join(", "))).pg()?;
            }
            tx.commit().pg()?;
            if !empty {
                blocking::drop_outside_runtime(c);
                return Ok(None);
            }
            Ok(Some(DeferredIndexes { session: Some(c) }))
        })
    }
}

impl DeferredIndexes {
    /// Builds the deferred indexes, refreshes the planner's statistics of every table (as
    /// [`PostgresStore::analyze`]) and ends the deferral.
    pub fn finish(mut self, store: &PostgresStore) -> Result<(), StoreError> {
        let mut c = self.session.take().expect("present until finished or dropped");
        let result = blocking::blocking(|| {
            build_and_analyze(store, Some(&mut c))?;
            c.execute("SELECT pg_advisory_unlock($1)", &[&IMPORT_LOCK]).pg()?;
            Ok(())
        });
        blocking::drop_outside_runtime(c);
        result
    }
}

/// Refreshes the statistics of the store's tables and their visibility maps (`VACUUM
/// (ANALYZE)`: a freshly loaded page is not yet marked all-visible, so until autovacuum came
/// by, every index-only scan also read the table's rows; a search after an import read
/// 2,000 heap pages for 2,000 index rows), and with `deferring` (the
/// session that holds [`IMPORT_LOCK`]) first builds the deferred indexes each lacks. Two
/// sessions share the tables, largest first, so both cores work to the end: a table's
/// indexes and then its statistics (`ANALYZE` waits for a `CREATE INDEX` on the same
/// table), each index built by one session without parallel workers. On a Synthea import
/// the builds and statistics one after the other, on one session and then two, took 3.3 s;
/// the system catalogs are left alone.
pub(crate) fn build_and_analyze(store: &PostgresStore, mut deferring: Option<&mut Client>) -> Result<(), StoreError> {
    let mut first = store.primary.get()?;
    let tables: Vec<String> = first
        .client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             ORDER BY pg_total_relation_size(quote_ident(tablename)) DESC",
            &[],
        )
        .pg()?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let builds = match deferring {
        Some(ref mut c) => missing(c)?,
        None => Vec::new(),
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = |c: &mut Client| -> Result<(), StoreError> {
        c.batch_execute(&format!(
            "SET maintenance_work_mem = '{BUILD_MEMORY}'; SET max_parallel_maintenance_workers = 0"
        ))
        .pg()?;
        while let Some(t) = tables.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            for (name, on) in builds.iter().filter(|(_, on)| table_of(on) == t) {
                c.batch_execute(&format!("CREATE INDEX IF NOT EXISTS {name} {on}")).pg()?;
            }
            c.batch_execute(&format!("VACUUM (ANALYZE) \"{}\"", t.replace('"', "\"\""))).pg()?;
        }
        c.batch_execute("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers").pg()?;
        Ok(())
    };
    let mut second = store.primary.get()?;
    std::thread::scope(|s| {
        let other = s.spawn(|| work(&mut second.client));
        let mine = match deferring {
            Some(c) => work(c),
            None => work(&mut first.client),
        };
        other.join().unwrap_or_else(|_| Err(StoreError::Unavailable("ANALYZE thread panicked".into())))?;
        mine
    })
}

/// The table of a deferrable index's `ON table USING …` clause.
fn table_of(on: &str) -> &str {
    on.split_whitespace().nth(1).unwrap_or_default()
}

impl Drop for DeferredIndexes {
    fn drop(&mut self) {
        if let Some(c) = self.session.take() {
            blocking::drop_outside_runtime(c);
        }
    }
}

/// The deferrable indexes this database lacks.
fn missing(c: &mut Client) -> Result<Vec<&'static (&'static str, &'static str)>, StoreError> {
    let present: Vec<String> = c
        .query("SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()", &[])
        .pg()?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(DEFERRABLE_INDEXES.iter().filter(|(name, _)| !present.iter().any(|p| p == name)).collect())
}

/// Builds the deferrable indexes that are missing, each in a transaction of its own (one
/// interrupted loses only itself).
fn build_missing(c: &mut Client) -> Result<(), StoreError> {
    c.batch_execute(&format!("SET maintenance_work_mem = '{BUILD_MEMORY}'")).pg()?;
    for (name, on) in missing(c)? {
        c.batch_execute(&format!("CREATE INDEX IF NOT EXISTS {name} {on}")).pg()?;
    }
    c.batch_execute("RESET maintenance_work_mem").pg()?;
    Ok(())
}

/// At open: builds the deferrable indexes an import that died left out, unless an import
/// in progress holds [`IMPORT_LOCK`] (it builds them when it ends, or the next open does).
pub(crate) fn restore(c: &mut Client) -> Result<(), StoreError> {
    if missing(c)?.is_empty() {
        return Ok(());
    }
    let locked: bool = c.query_one("SELECT pg_try_advisory_lock($1)", &[&IMPORT_LOCK]).pg()?.get(0);
    if !locked {
        return Ok(());
    }
    let built = build_missing(c);
    let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&IMPORT_LOCK]).pg();
    built.and(unlocked.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, SearchQuery, Store, Test};

    use super::missing;
    use crate::schema::DEFERRABLE_INDEXES;
    use crate::PostgresStore;

    fn put(store: &PostgresStore, id: &str) {
        crate::test_writes::put_token(store, "Observation", id, "code", "c");
    }

    fn found(store: &PostgresStore) -> usize {
        let test = Test::Token { system: tsunagu_store::SystemMatch::Is("urn:s".into()), code: Some("c".into()) };
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: "code".into(), test, negate: false }] }],
            count: 10,
            ..Default::default()
        };
        store.search(&q).unwrap().resources.len()
    }

    /// Every deferrable index names its table where `build_and_analyze` looks for it.
    #[test]
    fn deferrable_indexes_name_their_tables() {
        for (name, on) in DEFERRABLE_INDEXES {
            let table = super::table_of(on);
            assert!(name.starts_with(table), "{name}: {table}");
        }
    }

    /// The list of deferrable indexes is exactly what the migrations create: a migration
    /// that changes one of them must change the list too, or a deferred import would
    /// rebuild an old definition.
    #[test]
    fn deferrable_indexes_are_those_the_migrations_create() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let config = cluster.fresh_config();
        let _store = PostgresStore::open(&config).unwrap();
        let mut c = crate::pool::connect(&config.url).unwrap();
        for (name, on) in DEFERRABLE_INDEXES {
            let def: String = c
                .query_one("SELECT indexdef FROM pg_indexes WHERE indexname = $1", &[name])
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .get(0);
            assert_eq!(def.replace(" ON public.", " ON "), format!("CREATE INDEX {name} {on}"));
        }
    }

    /// Deferred on an empty database only; built again by `finish`, or, when the import
    /// died (its session gone), by the next open; meanwhile searches give the same answers.
    #[test]
    fn deferred_indexes_come_back_after_finish_or_a_dead_import() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let config = cluster.fresh_config();
        let store = PostgresStore::open(&config).unwrap();
        let mut c = crate::pool::connect(&config.url).unwrap();

        let deferred = store.defer_indexes().unwrap().expect("an empty database defers");
        assert_eq!(missing(&mut c).unwrap().len(), DEFERRABLE_INDEXES.len());
        assert!(store.defer_indexes().unwrap().is_none(), "one import defers at a time");
        // An open while the import runs leaves the indexes to it.
        drop(PostgresStore::open(&config).unwrap());
        assert_eq!(missing(&mut c).unwrap().len(), DEFERRABLE_INDEXES.len());
        put(&store, "a");
        assert_eq!(found(&store), 1);
        deferred.finish(&store).unwrap();
        assert!(missing(&mut c).unwrap().is_empty());
        assert_eq!(found(&store), 1);
        assert!(store.defer_indexes().unwrap().is_none(), "a database with resources does not defer");

        // An import that dies: its session ends without building them; the next open does.
        let config = cluster.fresh_config();
        let store = PostgresStore::open(&config).unwrap();
        let mut c = crate::pool::connect(&config.url).unwrap();
        let deferred = store.defer_indexes().unwrap().unwrap();
        put(&store, "b");
        drop(deferred);
        // The session's end (and its advisory lock's release) reaches the server shortly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            drop(PostgresStore::open(&config).unwrap());
            if missing(&mut c).unwrap().is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the indexes were not built again");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(found(&store), 1);
    }
}
