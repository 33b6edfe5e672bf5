//! File plumbing: checksums, durable writes (temporary name, fsync, rename, fsync of the
//! directory) so that an interrupted backup never leaves a half-written file under a
//! final name, and the layout of a backup directory.

use crate::BackupError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `DIR/FORMAT` says what the directory is, for a person finding the media years later.
pub const FORMAT_FILE: &str = "FORMAT";
pub const FORMAT: &str = "tsunagu-backup/1";
pub const PACKS: &str = "packs";
pub const GENERATIONS: &str = "generations";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 and size of a whole file, read in large blocks.
pub fn file_sha256(path: &Path) -> Result<(String, u64), BackupError> {
    let mut f = File::open(path).map_err(BackupError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(BackupError::io(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

/// A file being written under a temporary name in its final directory.
pub struct NewFile {
    dir: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    hash: Sha256,
    len: u64,
}

impl NewFile {
    pub fn create(dir: &Path) -> Result<NewFile, BackupError> {
        std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = File::create(&tmp).map_err(BackupError::io(&tmp))?;
        Ok(NewFile {
            dir: dir.to_path_buf(),
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            len: 0,
        })
    }

    /// fsyncs the content and moves it to `name` (or, when `None`, to its own SHA-256:
    /// content addressing). Returns the final name, the checksum and the size.
    pub fn commit(mut self, name: Option<&str>) -> Result<(String, String, u64), BackupError> {
        self.file.flush().map_err(BackupError::io(&self.tmp))?;
        let file = self.file.into_inner().map_err(|e| BackupError::io(&self.tmp)(e.into_error()))?;
        file.sync_all().map_err(BackupError::io(&self.tmp))?;
        let sum = hex(&self.hash.finalize());
        let name = name.map(str::to_string).unwrap_or_else(|| sum.clone());
        let dest = self.dir.join(&name);
        std::fs::rename(&self.tmp, &dest).map_err(BackupError::io(&dest))?;
        Ok((name, sum, self.len))
    }
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// fsync of a directory makes the renames into it durable.
pub fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(BackupError::io(dir))
}

/// Removes temporary files left by an interrupted run.
pub fn remove_leftovers(dir: &Path) -> Result<usize, BackupError> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            std::fs::remove_file(e.path()).map_err(BackupError::io(e.path()))?;
            n += 1;
        }
    }
    Ok(n)
}
