//! Content digests of a store: what "the same data" means when a backup is restored.
//!
//! The resource digest is SHA-256 over every version in write order (type, id, version,
//! lastUpdated, method, deleted, SHA-256 of the body). Two stores with equal digests hold
//! the same resources with the same histories, byte for byte. The index digest covers the
//! rows of every derived index table, to show that rebuilt indexes equal the originals.

use crate::files::{hex, sha256};
use crate::BackupError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use tsunagu_store::{ResourceVersion, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDigest {
    pub versions: u64,
    pub resources: u64,
    /// Resources whose current version is not a deletion.
    pub live_resources: u64,
    pub body_bytes: u64,
    pub sha256: String,
}

#[derive(Default)]
pub struct DigestBuilder {
    hash: Sha256,
    versions: u64,
    body_bytes: u64,
    deleted: HashMap<(String, String), bool>,
}

impl DigestBuilder {
    /// `body_sha256` is passed in because the backup computes it anyway.
    pub fn add(&mut self, v: &ResourceVersion, body_sha256: &[u8; 32]) {
        let h = &mut self.hash;
        h.update(v.resource_type.as_bytes());
        h.update([0]);
        h.update(v.id.as_bytes());
        h.update([0]);
        h.update(v.version.to_le_bytes());
        h.update(v.last_updated_ms.to_le_bytes());
        h.update(v.method.as_str().as_bytes());
        h.update([v.deleted as u8]);
        h.update(body_sha256);
        self.versions += 1;
        self.body_bytes += v.body.len() as u64;
        self.deleted.insert((v.resource_type.clone(), v.id.clone()), v.deleted);
    }

    pub fn finish(self) -> StoreDigest {
        StoreDigest {
            versions: self.versions,
            resources: self.deleted.len() as u64,
            live_resources: self.deleted.values().filter(|d| !**d).count() as u64,
            body_bytes: self.body_bytes,
            sha256: hex(&self.hash.finalize()),
        }
    }
}

/// SHA-256 over the rows of every index table.
pub fn index_digest(snap: &Snapshot) -> Result<String, BackupError> {
    let mut h = Sha256::new();
    snap.index_rows(|table, row| -> Result<(), BackupError> {
        h.update(table.as_bytes());
        h.update([0]);
        h.update(row.as_bytes());
        h.update([b'\n']);
        Ok(())
    })?;
    Ok(hex(&h.finalize()))
}

/// Digests of a data directory, read from one consistent snapshot.
pub fn digest_dir(dir: &Path) -> Result<(StoreDigest, String), BackupError> {
    let snap = Snapshot::open(dir)?;
    let mut d = DigestBuilder::default();
    snap.versions(|v| -> Result<(), BackupError> {
        d.add(&v, &sha256(&v.body));
        Ok(())
    })?;
    Ok((d.finish(), index_digest(&snap)?))
}
