//! `restore`: rebuilds a data directory from one generation.
//!
//! Bodies are decrypted pack by pack (each checked against its SHA-256) into a spool
//! file, then every version is written back in the original write order through
//! `Interactions::restore_prepared`, which recomputes the search indexes with the same
//! code as a normal write. The new store is built beside the target and moved into place
//! only after its digest equals the one recorded at backup time.

use crate::digest::{index_digest, DigestBuilder, StoreDigest};
use crate::files::{sync_dir, unhex, GENERATIONS, PACKS};
use crate::keys::{decrypt_from, Identity};
use crate::manifest::{catalog_name, load_all, CatalogEntry, CatalogHeader, Manifest};
use crate::pack::{read_bodies, read_header, BlobId};
use crate::verify::verify;
use crate::BackupError;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tsunagu_interaction::PreparedVersion;
use tsunagu_store::{Method, ResourceVersion, Snapshot, SqliteStore, Store, SyncMode};

/// Where each body is in the spool file: offset and length.
type Offsets = HashMap<BlobId, (u64, u32)>;

/// Versions per write transaction during a restore.
const VERSIONS_PER_COMMIT: usize = 5_000;

#[derive(Debug)]
pub struct Restored {
    pub generation: String,
    pub digest: StoreDigest,
    /// Rebuilt indexes equal those of the source at backup time (they differ only if the
    /// index code changed between the two releases). False when they were not compared.
    pub indexes_identical: bool,
    /// Whether the rebuilt indexes could be compared with the source's: only when both
    /// are SQLite data directories. A backup taken from another backend records no index
    /// digest, and a restore into a store (PostgreSQL) has no SQLite index tables to
    /// digest: the indexes were rebuilt, and not compared.
    pub indexes_compared: bool,
    pub seconds: f64,
    /// Bytes of the packs decrypted.
    pub pack_bytes: u64,
}

/// The generation chosen, checked (key-less verify, key, catalog chain) and its catalog.
struct Opened {
    manifest: Manifest,
    header: CatalogHeader,
    entries: Vec<CatalogEntry>,
}

fn open_generation(dest: &Path, generation: Option<&str>, identity: &Identity) -> Result<Opened, BackupError> {
    let found = load_all(dest)?;
    let chosen = match generation {
        Some(g) => found.iter().find(|f| f.manifest.generation == g),
        None => found.last(),
    }
    .ok_or_else(|| {
        BackupError::Usage(match generation {
            Some(g) => format!("{} has no generation {g}", dest.display()),
            None => format!("{} holds no generation", dest.display()),
        })
    })?;
    let m = &chosen.manifest;
    // Key-less checks first: a damaged file is reported as such, not as a decrypt error.
    let v = verify(dest, None)?;
    let own: Vec<&String> = v.problems.iter().filter(|p| p.starts_with(&format!("{}:", m.generation))).collect();
    if !own.is_empty() {
        return Err(BackupError::Damaged(own.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")));
    }
    if identity.to_public().to_string() != m.recipient {
        return Err(BackupError::WrongKey { recipient: m.recipient.clone() });
    }
    let (header, entries) = read_catalog(dest, m, identity)?;
    Ok(Opened { manifest: m.clone(), header, entries })
}

/// Restores a generation (the newest when `generation` is `None`) into a new SQLite data
/// directory `target`: built beside it, proven (digest, integrity, consistency), then
/// moved into place.
pub fn restore(
    dest: &Path,
    generation: Option<&str>,
    identity: &Identity,
    target: &Path,
) -> Result<Restored, BackupError> {
    let start = Instant::now();
    let Opened { manifest, header, entries } = open_generation(dest, generation, identity)?;
    let m = &manifest;
    if target.exists() && std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::Usage(format!(
            "{} is not empty; restore into a new directory (move the old one aside first)",
            target.display()
        )));
    }
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(BackupError::io(parent))?;
    let (spool, offsets, pack_bytes) = spool_bodies(dest, m, identity, &entries, parent)?;
    let building = sibling(target, "restoring");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(BackupError::io(&building))?;
    }
    write_store(&building, &entries, &spool, &offsets)?;
    drop(spool);

    // Prove it before moving it into place.
    let snap = Snapshot::open(&building)?;
    let mut d = DigestBuilder::default();
    snap.versions(|v| -> Result<(), BackupError> {
        d.add(&v, &crate::files::sha256(&v.body));
        Ok(())
    })?;
    let digest = d.finish();
    if digest != header.digest {
        return Err(BackupError::Damaged(format!(
            "the restored store differs from the backup ({} versions, digest {}; expected {} versions, digest {})",
            digest.versions, digest.sha256, header.digest.versions, header.digest.sha256
        )));
    }
    let mut problems = snap.integrity_check()?;
    problems.extend(snap.consistency_check()?);
    if !problems.is_empty() {
        return Err(BackupError::Damaged(format!("the restored store is inconsistent: {}", problems.join("; "))));
    }
    let indexes_compared = !header.index_sha256.is_empty();
    let indexes_identical = indexes_compared && index_digest(&snap)? == header.index_sha256;
    drop(snap);
    if target.exists() {
        std::fs::remove_dir(target).map_err(BackupError::io(target))?;
    }
    std::fs::rename(&building, target).map_err(BackupError::io(target))?;
    sync_dir(parent)?;
    Ok(Restored {
        generation: m.generation.clone(),
        digest,
        indexes_identical,
        indexes_compared,
        seconds: start.elapsed().as_secs_f64(),
        pack_bytes,
    })
}

/// Restores a generation (the newest when `generation` is `None`) into `store`, a store
/// of any backend (PostgreSQL) that must hold no version yet: every version is written
/// in the original write order through the same index rebuild as [`restore`], then the
/// store is read back through one pinned view and its digest compared with the backup's.
/// Bodies are decrypted into an unnamed temporary file under `scratch` (the system's
/// temporary directory when `None`).
///
/// Unlike [`restore`] nothing is built aside: if the restore fails part way (or the
/// digest differs), the store holds what was written and should be emptied (a new
/// database) before trying again. Audit records are not part of a backup, and the store's
/// own are left as they are.
pub fn restore_into_store(
    dest: &Path,
    generation: Option<&str>,
    identity: &Identity,
    store: Arc<dyn Store>,
    scratch: Option<&Path>,
) -> Result<Restored, BackupError> {
    let start = Instant::now();
    let Opened { manifest, header, entries } = open_generation(dest, generation, identity)?;
    let m = &manifest;
    let held = store.pinned()?.high_seq();
    if held != 0 {
        return Err(BackupError::Usage(format!(
            "the target store is not empty (it holds versions up to seq {held}); restore into an empty database"
        )));
    }
    let scratch = scratch.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let (spool, offsets, pack_bytes) = spool_bodies(dest, m, identity, &entries, &scratch)?;
    fill(store.clone(), &entries, &spool, &offsets, &scratch)?;
    drop(spool);
    store.refresh_statistics()?;
    let digest = crate::source::digest_store(store.as_ref())?;
    if digest != header.digest {
        return Err(BackupError::Damaged(format!(
            "the restored store differs from the backup ({} versions, digest {}; expected {} versions, digest {})",
            digest.versions, digest.sha256, header.digest.versions, header.digest.sha256
        )));
    }
    Ok(Restored {
        generation: m.generation.clone(),
        digest,
        indexes_identical: false,
        indexes_compared: false,
        seconds: start.elapsed().as_secs_f64(),
        pack_bytes,
    })
}

fn sibling(target: &Path, what: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    target.with_file_name(format!("{name}.{what}"))
}

fn read_catalog(
    dest: &Path,
    m: &Manifest,
    identity: &Identity,
) -> Result<(CatalogHeader, Vec<CatalogEntry>), BackupError> {
    let mut entries = Vec::with_capacity(m.stats.versions as usize);
    let mut last: Option<CatalogHeader> = None;
    for c in &m.catalogs {
        let header = read_one_catalog(dest, &c.name, m, identity, &mut entries)?;
        // Each delta must continue exactly the catalog before it.
        let expected_base = last.as_ref().map(|h| h.generation.clone());
        if header.base != expected_base || catalog_name(&header.generation) != c.name {
            return Err(BackupError::Damaged(format!("catalog {} does not continue {:?}", c.name, expected_base)));
        }
        last = Some(header);
    }
    let header = last.ok_or_else(|| BackupError::Damaged(format!("{} has no catalog", m.generation)))?;
    if header.generation != m.generation {
        return Err(BackupError::Damaged(format!(
            "the catalog of {} belongs to generation {}",
            m.generation, header.generation
        )));
    }
    if entries.len() as u64 != header.digest.versions {
        return Err(BackupError::Damaged(format!(
            "the catalogs of {} list {} versions, the snapshot had {}",
            m.generation,
            entries.len(),
            header.digest.versions
        )));
    }
    Ok((header, entries))
}

fn read_one_catalog(
    dest: &Path,
    file: &str,
    m: &Manifest,
    identity: &Identity,
    entries: &mut Vec<CatalogEntry>,
) -> Result<CatalogHeader, BackupError> {
    let path = dest.join(GENERATIONS).join(file);
    let f = std::fs::File::open(&path).map_err(BackupError::io(&path))?;
    let name = path.display().to_string();
    let dec = decrypt_from(identity, BufReader::new(f), &name, &m.recipient)?;
    let z = zstd::Decoder::new(dec).map_err(BackupError::io(&path))?;
    let bad = |e: String| BackupError::Decrypt { file: name.clone(), reason: e };
    let mut lines = BufReader::new(z).lines();
    let first = lines.next().ok_or_else(|| bad("empty catalog".into()))?.map_err(|e| bad(e.to_string()))?;
    let header: CatalogHeader = serde_json::from_str(&first).map_err(|e| bad(e.to_string()))?;
    let before = entries.len();
    for line in lines {
        let line = line.map_err(|e| bad(e.to_string()))?;
        entries.push(serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?);
    }
    if (entries.len() - before) as u64 != header.entries {
        return Err(bad(format!("{} entries, the header says {}", entries.len() - before, header.entries)));
    }
    Ok(header)
}

/// Decrypts the bodies the catalog needs into an unnamed temporary file; returns where
/// each one is.
fn spool_bodies(
    dest: &Path,
    m: &Manifest,
    identity: &Identity,
    entries: &[CatalogEntry],
    scratch: &Path,
) -> Result<(std::fs::File, Offsets, u64), BackupError> {
    let mut needed: HashMap<BlobId, Option<(u64, u32)>> = HashMap::new();
    for e in entries.iter().filter(|e| !e.5) {
        let id = unhex(&e.6).ok_or_else(|| BackupError::Damaged(format!("bad body id {}", e.6)))?;
        needed.insert(id, None);
    }
    let mut spool = tempfile::tempfile_in(scratch).map_err(BackupError::io(scratch))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut spool);
    let mut offset = 0u64;
    let mut pack_bytes = 0;
    for p in &m.packs {
        let path = dest.join(PACKS).join(&p.name);
        let wanted = read_header(&path)?.iter().any(|(id, _)| matches!(needed.get(id), Some(None)));
        if !wanted {
            continue;
        }
        pack_bytes += p.bytes;
        read_bodies(&path, identity, &m.recipient, |id, body| {
            if let Some(slot @ None) = needed.get_mut(id) {
                w.write_all(body).map_err(BackupError::io(scratch))?;
                *slot = Some((offset, body.len() as u32));
                offset += body.len() as u64;
            }
            Ok(())
        })?;
    }
    w.flush().map_err(BackupError::io(scratch))?;
    drop(w);
    spool.seek(SeekFrom::Start(0)).map_err(BackupError::io(scratch))?;
    let mut offsets = HashMap::with_capacity(needed.len());
    for (id, slot) in needed {
        let at = slot.ok_or_else(|| {
            BackupError::Damaged(format!(
                "body {} is in no pack of generation {}",
                crate::files::hex(&id),
                m.generation
            ))
        })?;
        offsets.insert(id, at);
    }
    Ok((spool, offsets, pack_bytes))
}

fn write_store(
    dir: &Path,
    entries: &[CatalogEntry],
    spool: &std::fs::File,
    offsets: &Offsets,
) -> Result<(), BackupError> {
    // NORMAL is safe here: nothing is acknowledged until the finished store has been
    // checked and moved into place, and closing the store checkpoints and syncs it.
    let store = Arc::new(SqliteStore::open(dir, SyncMode::Normal)?);
    fill(store.clone(), entries, spool, offsets, dir)?;
    drop(store);
    for f in ["tsunagu.sqlite", ""] {
        let p = dir.join(f);
        if let Ok(file) = std::fs::File::open(&p) {
            file.sync_all().map_err(BackupError::io(&p))?;
        }
    }
    Ok(())
}

/// Writes every catalog entry into `store`, in order, through the interaction layer's
/// restore path (indexes recomputed as by a normal write). `dir` names the spool's place
/// in errors.
fn fill(
    store: Arc<dyn Store>,
    entries: &[CatalogEntry],
    spool: &std::fs::File,
    offsets: &Offsets,
    dir: &Path,
) -> Result<(), BackupError> {
    let fhir =
        tsunagu_interaction::Interactions::new(store, Arc::new(tsunagu_interaction::NoCheck), Default::default());
    // Index extraction (parsing JSON, evaluating search expressions) is the costly part:
    // worker w prepares batches w, w + n, w + 2n … and the single writer takes them in
    // order from each worker's own channel, so the write order is the original one.
    let chunks: Vec<&[CatalogEntry]> = entries.chunks(VERSIONS_PER_COMMIT).collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1);
    std::thread::scope(|scope| -> Result<(), BackupError> {
        let mut receivers = Vec::new();
        for w in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<PreparedVersion>, BackupError>>(1);
            receivers.push(rx);
            let (chunks, fhir) = (&chunks, &fhir);
            scope.spawn(move || {
                for chunk in chunks.iter().skip(w).step_by(workers) {
                    let prepared = chunk
                        .iter()
                        .map(|e| {
                            let v = version(e, spool, offsets, dir)?;
                            Ok(fhir.prepare_restore(v)?)
                        })
                        .collect::<Result<Vec<_>, BackupError>>();
                    let failed = prepared.is_err();
                    if tx.send(prepared).is_err() || failed {
                        return;
                    }
                }
            });
        }
        for i in 0..chunks.len() {
            let batch = receivers[i % workers]
                .recv()
                .map_err(|_| BackupError::Damaged("a restore worker stopped".into()))??;
            fhir.restore_prepared(&batch)?;
        }
        Ok(())
    })?;
    drop(fhir);
    Ok(())
}

/// A catalog entry with its body read back from the spool file.
fn version(
    e: &CatalogEntry,
    spool: &std::fs::File,
    offsets: &Offsets,
    dir: &Path,
) -> Result<ResourceVersion, BackupError> {
    let body = if e.5 {
        Vec::new()
    } else {
        let id = unhex(&e.6).expect("checked when spooling");
        let (at, len) = offsets[&id];
        let mut b = vec![0u8; len as usize];
        spool.read_exact_at(&mut b, at).map_err(BackupError::io(dir))?;
        b
    };
    Ok(ResourceVersion {
        resource_type: e.0.clone(),
        id: e.1.clone(),
        version: e.2,
        last_updated_ms: e.3,
        deleted: e.5,
        method: method(&e.4),
        body,
        seq: e.7,
    })
}

fn method(s: &str) -> Method {
    match s {
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Put,
    }
}
