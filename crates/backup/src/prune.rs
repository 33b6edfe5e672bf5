//! `backup prune`: keeps the newest generation of each of the last N days, weeks and
//! months (and the last N generations), deletes the rest and the packs nothing kept
//! refers to. The newest generation is always kept. On write-once media prune is not
//! used: retention is the media's own.

use crate::files::{GENERATIONS, PACKS};
use crate::manifest::{load_all, manifest_name};
use crate::BackupError;
use chrono::{DateTime, Datelike, Utc};
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    pub packs_removed: usize,
    pub bytes_freed: u64,
}

pub fn prune(dest: &Path, keep: Keep, dry_run: bool) -> Result<Pruned, BackupError> {
    let found = load_all(dest)?;
    let times: Vec<DateTime<Utc>> = found
        .iter()
        .map(|f| {
            DateTime::parse_from_rfc3339(&f.manifest.created)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| BackupError::Damaged(format!("{}: {e}", f.manifest.generation)))
        })
        .collect::<Result<_, _>>()?;
    let mut keep_idx: HashSet<usize> = HashSet::new();
    let n = found.len();
    if n > 0 {
        keep_idx.insert(n - 1);
    }
    keep_idx.extend((0..n).rev().take(keep.last));
    type Bucket = fn(&DateTime<Utc>) -> (i32, u32);
    let buckets: [(usize, Bucket); 3] = [
        (keep.daily, |t| (t.year(), t.ordinal())),
        (keep.weekly, |t| (t.iso_week().year(), t.iso_week().week())),
        (keep.monthly, |t| (t.year(), t.month())),
    ];
    for (count, bucket) in buckets {
        let mut seen = HashSet::new();
        for i in (0..n).rev() {
            if seen.len() >= count {
                break;
            }
            // Newest first, so the first generation of each bucket is its newest.
            if seen.insert(bucket(&times[i])) {
                keep_idx.insert(i);
            }
        }
    }
    let mut out = Pruned::default();
    let mut live_packs = HashSet::new();
    let mut live_catalogs = HashSet::new();
    for (i, f) in found.iter().enumerate() {
        if keep_idx.contains(&i) {
            out.kept.push(f.manifest.generation.clone());
            live_packs.extend(f.manifest.packs.iter().map(|p| p.name.clone()));
            live_catalogs.extend(f.manifest.catalogs.iter().map(|c| c.name.clone()));
        } else {
            out.removed.push(f.manifest.generation.clone());
        }
    }
    let gens = dest.join(GENERATIONS);
    // Manifests go first: a generation without its manifest no longer exists. Catalogs of
    // removed generations stay while a kept generation's delta chain starts from them.
    for g in &out.removed {
        remove(&gens.join(manifest_name(g)), dry_run, &mut out.bytes_freed)?;
    }
    if let Ok(rd) = std::fs::read_dir(&gens) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".catalog") && !live_catalogs.contains(&name) {
                remove(&e.path(), dry_run, &mut out.bytes_freed)?;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(dest.join(PACKS)) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !live_packs.contains(&name) {
                remove(&e.path(), dry_run, &mut out.bytes_freed)?;
                out.packs_removed += 1;
            }
        }
    }
    Ok(out)
}

fn remove(path: &Path, dry_run: bool, freed: &mut u64) -> Result<(), BackupError> {
    if let Ok(m) = std::fs::metadata(path) {
        *freed += m.len();
        if !dry_run {
            std::fs::remove_file(path).map_err(BackupError::io(path))?;
        }
    }
    Ok(())
}
