//! A read view pinned at one moment (`Store::pinned`): one read transaction on a
//! connection of its own. In WAL mode that transaction sees the database as it was at its
//! first read, however long it stays open and whatever the writer commits meanwhile; the
//! checkpointer cannot move the WAL past it, so the WAL grows while a view is open (a bulk
//! export holds one for its whole run).

use rusqlite::Connection;

use crate::{PinnedView, ResourceVersion, SearchPage, SearchQuery, StoreError};

pub(crate) struct SqlitePinned {
    conn: Connection,
    high_seq: i64,
    last_updated_ms: i64,
    sort_walk: std::sync::Arc<crate::sqlite_sort::SortWalk>,
}

impl SqlitePinned {
    pub(crate) fn begin(
        conn: Connection,
        sort_walk: std::sync::Arc<crate::sqlite_sort::SortWalk>,
    ) -> Result<SqlitePinned, StoreError> {
        conn.execute_batch("BEGIN")?;
        // The first read starts the read transaction; everything after sees this state.
        let (high_seq, last_updated_ms): (i64, i64) =
            conn.query_row("SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(last_updated), 0) FROM resource", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(SqlitePinned { conn, high_seq, last_updated_ms, sort_walk })
    }
}

impl PinnedView for SqlitePinned {
    fn high_seq(&self) -> i64 {
        self.high_seq
    }

    fn last_updated_ms(&self) -> i64 {
        self.last_updated_ms
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        crate::sqlite::search_on(&self.conn, q, &self.sort_walk)
    }

    fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        crate::sqlite::current(&self.conn, resource_type, id)
    }

    fn versions_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM resource r WHERE r.seq > ?1 ORDER BY r.seq LIMIT ?2",
            crate::sqlite::PAGE_COLUMNS
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(rusqlite::params![after_seq, limit], crate::sqlite::sized_row)?;
        let cap = crate::ByteCap { max: crate::VERSIONS_PAGE_BYTES, first_always: true };
        Ok(crate::sqlite::fit(&self.conn, rows.collect::<Result<_, _>>()?, Some(cap))?.0)
    }

    fn count_versions_upto(&self, seq: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM resource WHERE seq <= ?1", [seq], |r| r.get(0))?;
        Ok(n as u64)
    }
}

impl Drop for SqlitePinned {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}
