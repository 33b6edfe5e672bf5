//! `backup`: one new generation from one consistent snapshot of a live data directory.

use crate::digest::DigestBuilder;
use crate::files::{self, sha256, sync_dir, NewFile, GENERATIONS, PACKS};
use crate::keys::{encrypt_to, Recipient};
use crate::manifest::{
    catalog_name, load_all, manifest_name, CatalogEntry, CatalogHeader, FileRef, Manifest, PreviousLink, Stats,
};
use crate::pack::{read_header, BlobId, PackWriter};
use crate::source::Source;
use crate::BackupError;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use tsunagu_store::{Snapshot, Store};

/// Longest chain of delta catalogs before a full one is written again, so that a restore
/// never reads an unbounded number of files.
const MAX_CATALOG_CHAIN: usize = 30;

pub struct Created {
    pub manifest: Manifest,
    /// Keep this somewhere the backup media is not (a log, a ticket): `verify --expect`
    /// compares against it, which is what catches a forged newest generation.
    pub manifest_sha256: String,
}

/// A new generation from a SQLite data directory, read through a [`Snapshot`] (it may
/// run beside the server that owns `data`). Records the index digest of the SQLite index
/// tables, so that a restore can show its rebuilt indexes are the same.
pub fn backup(data: &Path, dest: &Path, recipient: &Recipient) -> Result<Created, BackupError> {
    backup_from(dest, recipient, || Ok(Source::Sqlite(Snapshot::open(data)?)))
}

/// A new generation from a store of any backend (PostgreSQL), read through one
/// [`tsunagu_store::PinnedView`] (`Store::pinned`), in the same format as [`backup`]: a
/// SQLite backup and a store backup restore onto either backend. The index digest is
/// left empty ("not comparable": index rows differ between backends), so a restore of
/// this generation rebuilds the indexes without comparing them.
pub fn backup_store(store: &dyn Store, dest: &Path, recipient: &Recipient) -> Result<Created, BackupError> {
    backup_from(dest, recipient, || Source::of_store(store))
}

fn backup_from(
    dest: &Path,
    recipient: &Recipient,
    open: impl FnOnce() -> Result<Source, BackupError>,
) -> Result<Created, BackupError> {
    let start = Instant::now();
    let packs_dir = dest.join(PACKS);
    let gens_dir = dest.join(GENERATIONS);
    init(dest)?;
    files::remove_leftovers(&packs_dir)?;
    files::remove_leftovers(&gens_dir)?;
    let recipient_text = recipient.to_string();

    let existing = load_all(dest)?;
    // Bodies already stored, by the packs that hold them. Only packs made for the same
    // public key are reused: a restore needs one identity, not every key ever used.
    let mut known: HashMap<BlobId, String> = HashMap::new();
    let mut headers_read = HashSet::new();
    for found in existing.iter().filter(|f| f.manifest.recipient == recipient_text) {
        for p in &found.manifest.packs {
            if headers_read.insert(p.name.clone()) {
                let path = packs_dir.join(&p.name);
                for (id, _) in read_header(&path)? {
                    known.insert(id, p.name.clone());
                }
            }
        }
    }

    let snap = open()?;
    // A delta catalog continues the newest generation made for the same key, if the
    // versions it saw are still exactly there (history is append-only; if it was ever
    // rewritten, a full catalog is written instead).
    let base = match existing.last() {
        Some(f)
            if f.manifest.recipient == recipient_text
                && f.manifest.catalogs.len() < MAX_CATALOG_CHAIN
                && f.manifest.stats.high_seq <= snap.high_seq()
                && snap.count_versions_upto(f.manifest.stats.high_seq)? == f.manifest.stats.versions =>
        {
            Some(f)
        }
        _ => None,
    };
    let base_seq = base.map_or(0, |f| f.manifest.stats.high_seq);
    let mut entry_count = 0u64;
    let generation = new_generation_id(existing.last().map(|f| f.manifest.generation.as_str()));
    let mut digest = DigestBuilder::default();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut pack = PackWriter::new();
    let mut pending: HashSet<BlobId> = HashSet::new();
    let mut stats = Stats {
        versions: 0,
        live_resources: 0,
        body_bytes: 0,
        high_seq: snap.high_seq(),
        new_blobs: 0,
        reused_blobs: 0,
        new_packs: 0,
        bytes_written: 0,
        seconds: 0.0,
    };
    let mut entries = zstd::Encoder::new(Vec::new(), 3).map_err(BackupError::io(dest))?;
    let flush = |pack: &mut PackWriter,
                 pending: &mut HashSet<BlobId>,
                 known: &mut HashMap<BlobId, String>,
                 used: &mut BTreeSet<String>,
                 stats: &mut Stats|
     -> Result<(), BackupError> {
        let (name, bytes) = pack.write(&packs_dir, recipient)?;
        for id in pending.drain() {
            known.insert(id, name.clone());
        }
        used.insert(name);
        stats.new_packs += 1;
        stats.bytes_written += bytes;
        Ok(())
    };
    snap.versions(|v| -> Result<(), BackupError> {
        let id = sha256(&v.body);
        digest.add(&v, &id);
        if !v.deleted {
            if let Some(p) = known.get(&id) {
                used.insert(p.clone());
                stats.reused_blobs += 1;
            } else if pending.insert(id) {
                pack.add(id, &v.body);
                stats.new_blobs += 1;
                if pack.is_full() {
                    flush(&mut pack, &mut pending, &mut known, &mut used, &mut stats)?;
                }
            }
        }
        if v.seq <= base_seq {
            return Ok(());
        }
        entry_count += 1;
        let entry = CatalogEntry(
            v.resource_type,
            v.id,
            v.version,
            v.last_updated_ms,
            v.method.as_str().into(),
            v.deleted,
            files::hex(&id),
            v.seq,
        );
        serde_json::to_writer(&mut entries, &entry).expect("entries serialise");
        entries.write_all(b"\n").map_err(BackupError::io(dest))?;
        Ok(())
    })?;
    if !pack.is_empty() {
        flush(&mut pack, &mut pending, &mut known, &mut used, &mut stats)?;
    }
    let index_sha256 = snap.index_digest()?;
    // The snapshot is released as soon as it has been read: a long-open reader stops
    // the server's WAL checkpoints from completing.
    drop(snap);
    let digest = digest.finish();
    stats.versions = digest.versions;
    stats.live_resources = digest.live_resources;
    stats.body_bytes = digest.body_bytes;
    let entries = entries.finish().map_err(BackupError::io(dest))?;

    // Catalog: a header frame then the entries frame, inside one age stream.
    let header = CatalogHeader {
        generation: generation.clone(),
        base: base.map(|f| f.manifest.generation.clone()),
        entries: entry_count,
        high_seq: stats.high_seq,
        digest,
        index_sha256,
    };
    let mut header_line = serde_json::to_vec(&header).expect("header serialises");
    header_line.push(b'\n');
    let header_frame = zstd::encode_all(header_line.as_slice(), 3).map_err(BackupError::io(dest))?;
    let f = NewFile::create(&gens_dir)?;
    let mut enc = encrypt_to(recipient, f)?;
    enc.write_all(&header_frame).and_then(|_| enc.write_all(&entries)).map_err(BackupError::io(&gens_dir))?;
    let f = enc.finish().map_err(BackupError::io(&gens_dir))?;
    let (name, sum, bytes) = f.commit(Some(&catalog_name(&generation)))?;
    let mut catalogs = base.map_or_else(Vec::new, |f| f.manifest.catalogs.clone());
    catalogs.push(FileRef { name, sha256: sum, bytes });
    stats.bytes_written += bytes;

    let mut packs = Vec::new();
    for name in used {
        let path = packs_dir.join(&name);
        let bytes = std::fs::metadata(&path).map_err(BackupError::io(&path))?.len();
        packs.push(FileRef { sha256: name.clone(), name, bytes });
    }
    // Packs and catalog must be durable before a manifest may point at them.
    sync_dir(&packs_dir)?;
    stats.seconds = start.elapsed().as_secs_f64();
    let manifest = Manifest {
        format: files::FORMAT.into(),
        generation: generation.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        previous: existing
            .last()
            .map(|f| PreviousLink { generation: f.manifest.generation.clone(), manifest_sha256: f.sha256.clone() }),
        recipient: recipient_text,
        catalogs,
        packs,
        stats,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    text.push(b'\n');
    let mut f = NewFile::create(&gens_dir)?;
    f.write_all(&text).map_err(BackupError::io(&gens_dir))?;
    let (_, manifest_sha256, _) = f.commit(Some(&manifest_name(&generation)))?;
    sync_dir(&gens_dir)?;
    Ok(Created { manifest, manifest_sha256 })
}

/// Creates the layout of a new backup directory; an existing one must be ours.
fn init(dest: &Path) -> Result<(), BackupError> {
    let format = dest.join(files::FORMAT_FILE);
    match std::fs::read_to_string(&format) {
        Ok(s) if s.trim() == files::FORMAT => {}
        Ok(s) => {
            return Err(BackupError::Usage(format!("{} is a backup of another format ({})", dest.display(), s.trim())))
        }
        Err(_) => {
            let non_empty = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some());
            if non_empty {
                return Err(BackupError::Usage(format!(
                    "{} is not empty and not a Tsunagu backup; choose an empty or new directory",
                    dest.display()
                )));
            }
            std::fs::create_dir_all(dest).map_err(BackupError::io(dest))?;
            std::fs::write(&format, format!("{}\n", files::FORMAT)).map_err(BackupError::io(&format))?;
        }
    }
    for d in [PACKS, GENERATIONS] {
        std::fs::create_dir_all(dest.join(d)).map_err(BackupError::io(dest.join(d)))?;
    }
    Ok(())
}

/// `20261126T153012.345Z`: the time of the backup, and always after the previous one.
fn new_generation_id(previous: Option<&str>) -> String {
    let mut t = chrono::Utc::now();
    loop {
        let id = t.format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let after_previous = match previous {
            Some(p) => id.as_str() > p,
            None => true,
        };
        if after_previous {
            return id;
        }
        t += chrono::Duration::milliseconds(1);
    }
}
