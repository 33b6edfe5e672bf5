//! `backup verify`: rechecks every byte of a backup directory without the private key.
//!
//! What a key-less check proves: every pack and catalog is exactly the file its manifest
//! names (SHA-256 over all bytes, and a pack's name is its own checksum), nothing a
//! generation needs is missing, and every manifest still has the checksum its successor
//! recorded. What it cannot prove: that the newest manifest is genuine, since anyone with
//! the public key can make a whole new, self-consistent generation. The operator closes
//! that gap by keeping the manifest checksum printed by `backup` outside the media and
//! passing it as `--expect`. Decrypting bodies (with the identity) is `restore`'s job; it
//! checks each body against its SHA-256 as it goes.

use crate::files::{file_sha256, GENERATIONS, PACKS};
use crate::manifest::{load_all, FileRef};
use crate::pack::read_header;
use crate::BackupError;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Default)]
pub struct Verified {
    pub generations: Vec<GenerationStatus>,
    pub files_checked: u64,
    pub bytes_checked: u64,
    /// Problems found; empty means the backup is intact.
    pub problems: Vec<String>,
    /// Files no generation refers to (an interrupted backup); harmless, removed by prune.
    pub unreferenced: Vec<String>,
}

#[derive(Debug)]
pub struct GenerationStatus {
    pub generation: String,
    pub manifest_sha256: String,
    pub versions: u64,
    pub ok: bool,
}

pub fn verify(dest: &Path, expect: Option<&str>) -> Result<Verified, BackupError> {
    let mut out = Verified::default();
    let format = dest.join(crate::files::FORMAT_FILE);
    match std::fs::read_to_string(&format) {
        Ok(s) if s == format!("{}\n", crate::files::FORMAT) => {}
        _ => out.problems.push(format!("{} is missing or does not say {}", format.display(), crate::files::FORMAT)),
    }
    let found = load_all(dest)?;
    if found.is_empty() {
        out.problems.push(format!("{} holds no generation", dest.display()));
        return Ok(out);
    }
    // Each file is hashed once even when many generations share it.
    let mut checked: HashMap<String, Result<(), String>> = HashMap::new();
    let mut referenced: HashSet<String> = HashSet::new();
    let by_gen: HashMap<&str, &str> =
        found.iter().map(|f| (f.manifest.generation.as_str(), f.sha256.as_str())).collect();
    for f in &found {
        let m = &f.manifest;
        let mut problems = Vec::new();
        if m.format != crate::files::FORMAT {
            problems.push(format!("{}: unknown format {}", m.generation, m.format));
        }
        if let Some(prev) = &m.previous {
            match by_gen.get(prev.generation.as_str()) {
                Some(sum) if *sum == prev.manifest_sha256 => {}
                Some(_) => problems.push(format!(
                    "{}: the manifest of {} was changed after {} was made",
                    m.generation, prev.generation, m.generation
                )),
                // Pruned: the link cannot be checked, which is expected.
                None => {}
            }
        }
        let mut files: Vec<(String, &FileRef, bool)> = Vec::new();
        for c in &m.catalogs {
            let rel = format!("{GENERATIONS}/{}", c.name);
            referenced.insert(rel.clone());
            files.push((rel, c, false));
        }
        if m.catalogs.is_empty() {
            problems.push(format!("{}: the manifest lists no catalog", m.generation));
        }
        for p in &m.packs {
            let rel = format!("{PACKS}/{}", p.name);
            referenced.insert(rel.clone());
            files.push((rel, p, true));
        }
        for (rel, r, is_pack) in files {
            let res = checked
                .entry(rel.clone())
                .or_insert_with(|| check_file(dest, &rel, r, is_pack, &mut out.files_checked, &mut out.bytes_checked))
                .clone();
            if let Err(e) = res {
                problems.push(format!("{}: {e}", m.generation));
            }
        }
        out.generations.push(GenerationStatus {
            generation: m.generation.clone(),
            manifest_sha256: f.sha256.clone(),
            versions: m.stats.versions,
            ok: problems.is_empty(),
        });
        out.problems.extend(problems);
    }
    if let Some(expect) = expect {
        let latest = found.last().expect("not empty");
        if !found.iter().any(|f| f.sha256 == expect.trim()) {
            out.problems.push(format!(
                "no manifest has the expected checksum {expect}; the newest ({}) has {}",
                latest.manifest.generation, latest.sha256
            ));
        }
    }
    for (dir, keep_json) in [(PACKS, false), (GENERATIONS, true)] {
        let Ok(rd) = std::fs::read_dir(dest.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{dir}/{name}");
            let is_manifest = keep_json && name.ends_with(".json");
            if !is_manifest && !referenced.contains(&rel) {
                out.unreferenced.push(rel);
            }
        }
    }
    out.unreferenced.sort();
    Ok(out)
}

fn check_file(
    dest: &Path,
    rel: &str,
    r: &FileRef,
    is_pack: bool,
    files: &mut u64,
    bytes: &mut u64,
) -> Result<(), String> {
    let path = dest.join(rel);
    if !path.exists() {
        return Err(format!("{rel} is missing"));
    }
    let (sum, len) = file_sha256(&path).map_err(|e| e.to_string())?;
    *files += 1;
    *bytes += len;
    if len != r.bytes {
        return Err(format!("{rel} has {len} bytes, the manifest says {}", r.bytes));
    }
    if sum != r.sha256 {
        return Err(format!("{rel} does not match its checksum (changed or damaged)"));
    }
    if is_pack {
        if sum != r.name {
            return Err(format!("{rel} is not named by its checksum"));
        }
        read_header(&path).map_err(|e| e.to_string())?;
    }
    Ok(())
}
