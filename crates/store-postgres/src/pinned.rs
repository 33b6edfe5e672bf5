//! A read view pinned at one moment (`Store::pinned`): a `REPEATABLE READ READ ONLY`
//! transaction held on a connection of its own (of the primary, or of a replica that has
//! replayed this store's last write). Every statement in it sees the snapshot its first
//! statement took.

use crate::db::Session;
use crate::pool::Detached;
use parking_lot::Mutex;
use tsunagu_store::{PinnedView, ResourceVersion, SearchPage, SearchQuery, StoreError};

use crate::Pg;

pub(crate) struct PgPinned {
    /// `None` only while being dropped.
    client: Mutex<Option<Detached>>,
    high_seq: i64,
    last_updated_ms: i64,
    /// The store's `sortwalk` setting when the view began.
    walk_from: i64,
}

impl PgPinned {
    pub(crate) fn begin(mut client: Detached, walk_from: i64) -> Result<PgPinned, StoreError> {
        // The view's statements keep the plans in force: a savepoint rolled back after a
        // canceled search would undo a change of them unseen.
        client.session.cache.plans = crate::db::Plans::Fixed;
        client.session.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").pg()?;
        // The first statement takes the snapshot; everything after sees this state.
        let row = client
            .session
            .db()
            .query_one("SELECT COALESCE(MAX(seq), 0)::int8, COALESCE(MAX(last_updated), 0)::int8 FROM resource", &[])
            .pg()?;
        Ok(PgPinned { high_seq: row.get(0), last_updated_ms: row.get(1), walk_from, client: Mutex::new(Some(client)) })
    }
}

impl PgPinned {
    fn session(&self) -> parking_lot::MappedMutexGuard<'_, Session> {
        parking_lot::MutexGuard::map(self.client.lock(), |c| &mut c.as_mut().expect("present until dropped").session)
    }
}

impl PinnedView for PgPinned {
    fn high_seq(&self) -> i64 {
        self.high_seq
    }

    fn last_updated_ms(&self) -> i64 {
        self.last_updated_ms
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        // Under a savepoint: a statement canceled at the ceiling must not end the view.
        let scope = crate::ceiling::Scope::Transaction;
        crate::blocking::blocking(|| crate::ceiling::search(&mut self.session().db(), q, scope, self.walk_from))
    }

    fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        crate::blocking::blocking(|| crate::read::current(&mut self.session().db(), resource_type, id))
    }

    fn versions_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError> {
        crate::blocking::blocking(|| crate::versions::versions_after(&mut self.session().db(), after_seq, limit))
    }

    fn count_versions_upto(&self, seq: i64) -> Result<u64, StoreError> {
        crate::blocking::blocking(|| crate::versions::count_versions_upto(&mut self.session().db(), seq))
    }
}

impl Drop for PgPinned {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.get_mut().take() {
            // Ending the read transaction; closing the connection would end it too.
            let _ = crate::blocking::blocking(|| client.session.client.batch_execute("COMMIT").pg());
            crate::blocking::drop_outside_runtime(client);
        }
    }
}
