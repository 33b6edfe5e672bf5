//! Generations: a plaintext manifest per generation (what files it needs, with their
//! checksums, and the checksum of the previous manifest) and an encrypted catalog (which
//! versions it holds and where their bodies are).

use crate::digest::StoreDigest;
use crate::files::{file_sha256, GENERATIONS};
use crate::BackupError;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// UTC time of the snapshot, `20261126T153012Z`, unique and sortable.
    pub generation: String,
    pub created: String,
    /// The generation before this one and the SHA-256 of its manifest file: a chain that
    /// shows a changed or swapped older manifest without any key.
    pub previous: Option<PreviousLink>,
    /// The age public key everything in this generation is encrypted to.
    pub recipient: String,
    /// Catalog files, oldest first; the last is this generation's own. Versions are never
    /// rewritten, so a catalog lists only what was written after its base generation.
    pub catalogs: Vec<FileRef>,
    /// Every pack this generation needs, including those written by earlier ones.
    pub packs: Vec<FileRef>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousLink {
    pub generation: String,
    pub manifest_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub versions: u64,
    pub live_resources: u64,
    pub body_bytes: u64,
    pub high_seq: i64,
    pub new_blobs: u64,
    pub reused_blobs: u64,
    pub new_packs: u64,
    /// Bytes this generation added to the backup directory (new packs, catalog, manifest).
    pub bytes_written: u64,
    pub seconds: f64,
}

/// First line of a catalog: binds it to its generation and carries the source digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogHeader {
    pub generation: String,
    /// The generation whose catalog chain this one continues; `None` for a full catalog.
    pub base: Option<String>,
    /// Entries in this file (versions with `seq` above the base's `high_seq`).
    pub entries: u64,
    pub high_seq: i64,
    pub digest: StoreDigest,
    pub index_sha256: String,
}

/// One version: (type, id, version, lastUpdated ms, method, deleted, body SHA-256, seq).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry(pub String, pub String, pub u64, pub i64, pub String, pub bool, pub String, pub i64);

pub fn manifest_name(generation: &str) -> String {
    format!("{generation}.json")
}

pub fn catalog_name(generation: &str) -> String {
    format!("{generation}.catalog")
}

/// A manifest as found on disk, with the checksum of its file.
pub struct Found {
    pub manifest: Manifest,
    pub sha256: String,
}

/// All manifests of a backup directory, oldest first.
pub fn load_all(dest: &Path) -> Result<Vec<Found>, BackupError> {
    let dir = dest.join(GENERATIONS);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(BackupError::io(&dir)(e)),
    };
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let path = dir.join(&n);
        let bytes = std::fs::read(&path).map_err(BackupError::io(&path))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| BackupError::Damaged(format!("{}: {e}", path.display())))?;
        if manifest_name(&manifest.generation) != n {
            return Err(BackupError::Damaged(format!("{}: names generation {}", path.display(), manifest.generation)));
        }
        let (sha256, _) = file_sha256(&path)?;
        out.push(Found { manifest, sha256 });
    }
    Ok(out)
}
