//! age keys: backups are encrypted to a public key (recipient), so the server that makes
//! them never holds the means to read them; only `restore` takes the private key.

use crate::BackupError;
use age::secrecy::ExposeSecret;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

pub use age::x25519::{Identity, Recipient};

/// A new X25519 identity, as the text of an identity file (age's format, readable by the
/// `age` tool too) and its public key.
pub fn keygen() -> (String, String) {
    let identity = Identity::generate();
    let public = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    );
    (text, public)
}

pub fn parse_recipient(s: &str) -> Result<Recipient, BackupError> {
    Recipient::from_str(s.trim()).map_err(|e| BackupError::Key(format!("'{}' is not an age public key: {e}", s.trim())))
}

/// Reads an identity file (the first `AGE-SECRET-KEY-` line).
pub fn load_identity(path: &Path) -> Result<Identity, BackupError> {
    let text = std::fs::read_to_string(path).map_err(BackupError::io(path))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or_else(|| BackupError::Key(format!("{}: no AGE-SECRET-KEY line", path.display())))?;
    Identity::from_str(line).map_err(|e| BackupError::Key(format!("{}: invalid identity: {e}", path.display())))
}

/// Encrypts everything written to the returned writer; `finish` it to get `w` back.
pub fn encrypt_to<W: Write>(recipient: &Recipient, w: W) -> Result<age::stream::StreamWriter<W>, BackupError> {
    let enc = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .map_err(|e| BackupError::Key(e.to_string()))?;
    enc.wrap_output(w).map_err(|e| BackupError::Key(format!("encryption: {e}")))
}

/// Decrypts `r`; a key that does not match gives [`BackupError::WrongKey`].
pub fn decrypt_from<R: Read>(
    identity: &Identity,
    r: R,
    file: &str,
    recipient: &str,
) -> Result<age::stream::StreamReader<R>, BackupError> {
    let dec = age::Decryptor::new(r).map_err(|e| BackupError::Decrypt { file: file.into(), reason: e.to_string() })?;
    dec.decrypt(std::iter::once(identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => BackupError::WrongKey { recipient: recipient.into() },
        e => BackupError::Decrypt { file: file.into(), reason: e.to_string() },
    })
}
