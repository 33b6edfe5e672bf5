//! Backups of a Tsunagu data directory that a ransomware attack cannot quietly destroy.
//!
//! This crate owns the backup directory format and the operations on it: `backup` (an
//! online, consistent snapshot written as a new generation: bodies content-addressed by
//! SHA-256 so unchanged versions are never written again, zstd-compressed, age-encrypted
//! to a public key), `verify` (every byte checked against manifest checksums, without the
//! private key), `prune` (daily/weekly/monthly retention) and `restore` (a new data
//! directory rebuilt through the interaction layer, indexes recomputed, digest proven).
//!
//! The same format serves every backend: [`backup`] reads a SQLite data directory
//! through a `Snapshot`, [`backup_store`] reads any store (PostgreSQL) through one pinned
//! view; [`restore`] builds a SQLite data directory, [`restore_into_store`] fills an
//! empty store of any backend. A backup taken from one restores onto the other. Only a
//! SQLite source records an index digest (SQLite's index tables); from another backend
//! it is empty, meaning "not comparable", and a restore reports `indexes_compared: false`.
//! Audit records are not part of a backup on either backend.
//!
//! It never writes to the live data directory, never holds a private key except while
//! restoring, and never interprets FHIR content: bodies are opaque bytes, and the index
//! rebuild belongs to `tsunagu-interaction`.
//!
//! Layout of a backup directory (all files are written once and never modified):
//!
//! ```text
//! FORMAT                          "tsunagu-backup/1"
//! packs/<sha256>                  plaintext blob list + age(zstd(bodies)); named by its checksum
//! generations/<ID>.json           plaintext manifest: files with checksums, previous manifest's checksum
//! generations/<ID>.catalog        age(zstd(JSON lines)): every version and its body's SHA-256
//! ```

mod create;
mod digest;
mod error;
mod files;
mod keys;
mod manifest;
mod pack;
mod prune;
mod restore;
mod source;
mod verify;

pub use create::{backup, backup_store, Created};
pub use digest::{digest_dir, StoreDigest};
pub use error::BackupError;
pub use keys::{keygen, load_identity, parse_recipient, Identity, Recipient};
pub use manifest::{load_all as generations, Found, Manifest, Stats};
pub use prune::{prune, Keep, Pruned};
pub use restore::{restore, restore_into_store, Restored};
pub use source::{digest_store, digest_view};
pub use verify::{verify, GenerationStatus, Verified};
