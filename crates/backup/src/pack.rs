//! Pack files: many resource-version bodies, zstd-compressed together then age-encrypted.
//!
//! ```text
//! "TSGPACK1\n"  u32 LE count  count × (32-byte SHA-256 of the body, u32 LE body length)
//! age( zstd( body₁ body₂ … ) )
//! ```
//! The plaintext header lists which bodies a pack holds, so the next backup can skip what
//! is already stored without the private key. A pack is named by the SHA-256 of the
//! whole file: anyone can recheck it with `sha256sum`, and a changed byte changes the name.

use crate::files::NewFile;
use crate::keys::{decrypt_from, encrypt_to, Identity, Recipient};
use crate::BackupError;
use std::io::{BufReader, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 9] = b"TSGPACK1\n";
/// Bodies per pack, by plaintext size: big enough for good compression and few files,
/// small enough to hold in memory while the pack is filled.
pub const PACK_TARGET_BYTES: usize = 32 << 20;
const ZSTD_LEVEL: i32 = 3;

pub type BlobId = [u8; 32];

pub struct PackWriter {
    ids: Vec<(BlobId, u32)>,
    data: Vec<u8>,
}

impl PackWriter {
    pub fn new() -> Self {
        PackWriter { ids: Vec::new(), data: Vec::new() }
    }

    pub fn add(&mut self, id: BlobId, body: &[u8]) {
        self.ids.push((id, body.len() as u32));
        self.data.extend_from_slice(body);
    }

    pub fn is_full(&self) -> bool {
        self.data.len() >= PACK_TARGET_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Writes the pack into `dir`; returns (name, size in bytes).
    pub fn write(&mut self, dir: &Path, recipient: &Recipient) -> Result<(String, u64), BackupError> {
        let mut f = NewFile::create(dir)?;
        let io = |e| BackupError::io(dir)(e);
        f.write_all(MAGIC).map_err(io)?;
        f.write_all(&(self.ids.len() as u32).to_le_bytes()).map_err(io)?;
        for (id, len) in &self.ids {
            f.write_all(id).map_err(io)?;
            f.write_all(&len.to_le_bytes()).map_err(io)?;
        }
        let enc = encrypt_to(recipient, f)?;
        let mut z = zstd::Encoder::new(enc, ZSTD_LEVEL).map_err(io)?;
        z.write_all(&self.data).map_err(io)?;
        let f = z.finish().map_err(io)?.finish().map_err(io)?;
        let (name, _, len) = f.commit(None)?;
        self.ids.clear();
        self.data.clear();
        Ok((name, len))
    }
}

/// The blob list of a pack (no key needed).
pub fn read_header(path: &Path) -> Result<Vec<(BlobId, u32)>, BackupError> {
    let f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    header(&mut BufReader::new(f), path)
}

fn header(r: &mut impl Read, path: &Path) -> Result<Vec<(BlobId, u32)>, BackupError> {
    let damaged = || BackupError::Damaged(format!("{}: bad pack header", path.display()));
    let mut magic = [0u8; 9];
    r.read_exact(&mut magic).map_err(|_| damaged())?;
    if &magic != MAGIC {
        return Err(damaged());
    }
    let mut n = [0u8; 4];
    r.read_exact(&mut n).map_err(|_| damaged())?;
    let n = u32::from_le_bytes(n) as usize;
    if n > 50_000_000 {
        return Err(damaged());
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut id = [0u8; 32];
        let mut len = [0u8; 4];
        r.read_exact(&mut id).map_err(|_| damaged())?;
        r.read_exact(&mut len).map_err(|_| damaged())?;
        out.push((id, u32::from_le_bytes(len)));
    }
    Ok(out)
}

/// Decrypts a pack and hands each body to `f`, after checking it against its SHA-256.
pub fn read_bodies(
    path: &Path,
    identity: &Identity,
    recipient: &str,
    mut f: impl FnMut(&BlobId, &[u8]) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let file = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let ids = header(&mut r, path)?;
    let name = path.display().to_string();
    let dec = decrypt_from(identity, r, &name, recipient)?;
    let mut z = zstd::Decoder::new(dec).map_err(BackupError::io(path))?;
    let mut body = Vec::new();
    for (id, len) in &ids {
        body.resize(*len as usize, 0);
        z.read_exact(&mut body).map_err(|e| BackupError::Decrypt { file: name.clone(), reason: e.to_string() })?;
        if &crate::files::sha256(&body) != id {
            return Err(BackupError::Damaged(format!("{name}: a body does not match its checksum")));
        }
        f(id, &body)?;
    }
    Ok(())
}
