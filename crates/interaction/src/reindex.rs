//! Rebuilding search indexes after parameter definitions change: in batches, in write
//! order, with the position saved in the same transaction as each batch's index rows, so
//! an interrupted reindex resumes where it stopped and never skips a resource.

use crate::error::InteractionError;
use crate::write::in_txn;
use crate::Interactions;
use serde_json::Value;

const CURSOR: &str = "reindex.cursor";

/// Where a reindex stands after a step.
#[derive(Debug, Clone, Copy)]
pub struct ReindexStep {
    /// Resources reindexed by this step.
    pub done: usize,
    /// Current resources still after the cursor.
    pub remaining: u64,
}

impl Interactions {
    /// Forgets a saved position, so the next step starts from the first resource.
    pub fn reindex_restart(&self) -> Result<(), InteractionError> {
        in_txn(self, |txn| Ok(txn.set_setting(CURSOR, None)?))
    }

    /// Reindexes the next `batch` resources after the saved position. When `remaining`
    /// reaches 0 the reindex is complete and the position is cleared.
    pub fn reindex_step(&self, batch: usize) -> Result<ReindexStep, InteractionError> {
        let cursor = in_txn(self, |txn| Ok(txn.get_setting(CURSOR)?))?.and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        let versions = self.store.current_after(cursor, batch)?;
        // Extraction runs outside the write lock; the transaction only checks and writes.
        let prepared: Vec<_> = versions
            .iter()
            .map(|v| {
                let entries = serde_json::from_slice::<Value>(&v.body)
                    .map(|r| self.search.index_entries(&v.resource_type, &r))
                    .unwrap_or_default();
                (v, entries)
            })
            .collect();
        let last = versions.last().map(|v| v.seq);
        in_txn(self, |txn| {
            for (v, entries) in &prepared {
                // A resource updated since it was read has been indexed by that write.
                let still_current = txn.current(&v.resource_type, &v.id)?.is_some_and(|c| c.version == v.version);
                if still_current {
                    txn.replace_index(v.seq, &v.resource_type, entries)?;
                }
            }
            match last {
                Some(seq) => txn.set_setting(CURSOR, Some(&seq.to_string()))?,
                None => txn.set_setting(CURSOR, None)?,
            }
            Ok(())
        })?;
        let remaining = match last {
            Some(seq) => self.store.count_current_after(seq)?,
            None => 0,
        };
        if remaining == 0 {
            // Finished (also when the last resources after the cursor were deleted since the
            // step before, which leaves this one nothing to read): the next reindex starts
            // from the beginning again, and the store's kept statistics are counted again
            // with the indexes. An empty batch cleared the position in its transaction.
            if last.is_some() {
                in_txn(self, |txn| Ok(txn.set_setting(CURSOR, None)?))?;
            }
            self.store.recount_statistics()?;
        }
        Ok(ReindexStep { done: versions.len(), remaining })
    }
}
