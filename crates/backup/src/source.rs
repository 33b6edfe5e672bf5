//! What a backup reads: one consistent moment of a store.
//!
//! A SQLite data directory is read through a [`Snapshot`] (a read-only connection that
//! may sit beside a running server, in another process), which can also digest the
//! SQLite index tables. Any other store — PostgreSQL — is read through its
//! [`PinnedView`] (`Store::pinned`): the same versions in the same write order, but no
//! index digest, since index rows are laid out differently on each backend. A backup
//! from such a source records an empty index digest, meaning "not comparable"; a restore
//! then reports that the indexes were rebuilt without comparing them.

use crate::digest::{index_digest, DigestBuilder, StoreDigest};
use crate::files::sha256;
use crate::BackupError;
use tsunagu_store::{all_versions, PinnedView, ResourceVersion, Snapshot, Store};

pub(crate) enum Source {
    Sqlite(Snapshot),
    Pinned(Box<dyn PinnedView>),
}

impl Source {
    pub(crate) fn of_store(store: &dyn Store) -> Result<Source, BackupError> {
        Ok(Source::Pinned(store.pinned()?))
    }

    pub(crate) fn high_seq(&self) -> i64 {
        match self {
            Source::Sqlite(s) => s.high_seq(),
            Source::Pinned(v) => v.high_seq(),
        }
    }

    pub(crate) fn count_versions_upto(&self, seq: i64) -> Result<u64, BackupError> {
        Ok(match self {
            Source::Sqlite(s) => s.count_versions_upto(seq)?,
            Source::Pinned(v) => v.count_versions_upto(seq)?,
        })
    }

    /// Every version in write order.
    pub(crate) fn versions(
        &self,
        f: impl FnMut(ResourceVersion) -> Result<(), BackupError>,
    ) -> Result<(), BackupError> {
        match self {
            Source::Sqlite(s) => s.versions(f),
            Source::Pinned(v) => all_versions(v.as_ref(), f),
        }
    }

    /// SHA-256 of the index tables; empty ("not comparable") for a pinned view.
    pub(crate) fn index_digest(&self) -> Result<String, BackupError> {
        match self {
            Source::Sqlite(s) => index_digest(s),
            Source::Pinned(_) => Ok(String::new()),
        }
    }
}

/// The resource digest of what a pinned view holds (every version, in write order).
pub fn digest_view(view: &dyn PinnedView) -> Result<StoreDigest, BackupError> {
    let mut d = DigestBuilder::default();
    all_versions(view, |v| -> Result<(), BackupError> {
        d.add(&v, &sha256(&v.body));
        Ok(())
    })?;
    Ok(d.finish())
}

/// The resource digest of a store of any backend, read from one pinned view. Equal to
/// the first half of [`crate::digest_dir`] for the same data.
pub fn digest_store(store: &dyn Store) -> Result<StoreDigest, BackupError> {
    digest_view(store.pinned()?.as_ref())
}
