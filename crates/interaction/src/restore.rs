//! Writing back versions that were stored before (restore from a backup), exactly as they
//! were: same version numbers, `lastUpdated`, method and body bytes, in the original write
//! order. Index entries are computed by the same extraction as a normal write, so a
//! restore rebuilds the search indexes instead of trusting copied ones.
//!
//! Extraction ([`Interactions::prepare_restore`]) is separate from writing
//! ([`Interactions::restore_prepared`]) so that callers can extract on several threads
//! while the single writer writes.
//!
//! Keep this in step with `write::put_version`: every index it fills must be filled here.

use crate::error::InteractionError;
use crate::write::in_txn;
use crate::Interactions;
use serde_json::Value;
use tsunagu_store::{IndexEntry, NewVersion, ResourceVersion, StoreError};

/// A stored version with its index entries extracted, ready to be written back.
pub struct PreparedVersion {
    pub version: ResourceVersion,
    index: Vec<IndexEntry>,
}

impl Interactions {
    /// Writes `versions` (in write order) in one atomic transaction. Each must be the next
    /// version of its resource, so a restore can only rebuild history, never rewrite it.
    pub fn restore_versions(&self, versions: &[ResourceVersion]) -> Result<(), InteractionError> {
        let prepared = versions.iter().map(|v| self.prepare_restore(v.clone())).collect::<Result<Vec<_>, _>>()?;
        self.restore_prepared(&prepared)
    }

    /// Extracts the index entries of a version (CPU only; safe to run on many threads).
    pub fn prepare_restore(&self, v: ResourceVersion) -> Result<PreparedVersion, InteractionError> {
        let index = if v.deleted {
            Vec::new()
        } else {
            let resource: Value = serde_json::from_slice(&v.body)
                .map_err(|e| StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id)))?;
            self.search.index_entries(&v.resource_type, &resource)
        };
        Ok(PreparedVersion { version: v, index })
    }

    /// Writes prepared versions (in write order) in one atomic transaction.
    pub fn restore_prepared(&self, versions: &[PreparedVersion]) -> Result<(), InteractionError> {
        in_txn(self, |txn| {
            for p in versions {
                let v = &p.version;
                let ty = v.resource_type.as_str();
                let expected = txn.current(ty, &v.id)?.map_or(1, |c| c.version + 1);
                if v.version != expected {
                    return Err(StoreError::Corrupt(format!(
                        "{ty}/{}: restoring version {} but the next version is {expected}",
                        v.id, v.version
                    ))
                    .into());
                }
                txn.put(&NewVersion {
                    resource_type: ty,
                    id: &v.id,
                    version: v.version,
                    last_updated_ms: v.last_updated_ms,
                    method: v.method,
                    body: (!v.deleted).then_some(v.body.as_slice()),
                    index: &p.index,
                })?;
            }
            Ok(())
        })
    }
}
