//! The server's signing keys: ECDSA P-384 (ES384, the algorithm SMART asks servers and
//! clients to support), kept as PKCS#8 PEM files in a directory of the data directory,
//! the newest signing and the older ones still verifying until their tokens have expired.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::AuthError;

/// One signing key with its id (the RFC 7638 thumbprint of its public JWK).
pub struct SigningKey {
    kid: String,
    private_pem: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x: String,
    y: String,
}

impl SigningKey {
    /// A new random P-384 key.
    pub fn generate() -> Result<SigningKey, AuthError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(|e| AuthError::Key(format!("generating a P-384 key: {e}")))?;
        SigningKey::from_pem(&pair.serialize_pem())
    }

    /// A key from its PKCS#8 PEM text.
    pub fn from_pem(pem: &str) -> Result<SigningKey, AuthError> {
        let pair = rcgen::KeyPair::from_pem(pem).map_err(|e| AuthError::Key(format!("reading the key: {e}")))?;
        if !pair.is_compatible(&rcgen::PKCS_ECDSA_P384_SHA384) {
            return Err(AuthError::Key("the signing key must be ECDSA P-384".into()));
        }
        // The uncompressed point: 0x04, then x and y of 48 bytes each.
        let point = pair.public_key_raw();
        if point.len() != 97 || point[0] != 4 {
            return Err(AuthError::Key("unexpected P-384 public key encoding".into()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..49]);
        let y = URL_SAFE_NO_PAD.encode(&point[49..]);
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| AuthError::Key(format!("signing key: {e}")))?;
        let decoding =
            DecodingKey::from_ec_components(&x, &y).map_err(|e| AuthError::Key(format!("verifying key: {e}")))?;
        // RFC 7638: the required members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(SigningKey { kid, private_pem: pem.to_string(), encoding, decoding, x, y })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for the server's JWKS document.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-384", "x": self.x, "y": self.y,
                           "kid": self.kid, "alg": "ES384", "use": "sig"})
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The keys in a directory: files `key-<n>.pem`, the highest `n` signing.
pub struct KeyRing {
    dir: PathBuf,
    /// Oldest first; never empty.
    keys: Vec<(u64, SigningKey)>,
}

impl KeyRing {
    /// Reads the keys in `dir`, creating the directory and a first key when there is none.
    pub fn load_or_create(dir: &Path) -> Result<KeyRing, AuthError> {
        create_private_dir(dir)?;
        let mut keys = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| AuthError::Key(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| AuthError::Key(e.to_string()))?.path();
            let Some(n) = key_number(&path) else { continue };
            let pem = std::fs::read_to_string(&path).map_err(|e| AuthError::Key(format!("{}: {e}", path.display())))?;
            let key = SigningKey::from_pem(&pem).map_err(|e| AuthError::Key(format!("{}: {e}", path.display())))?;
            keys.push((n, key));
        }
        keys.sort_by_key(|(n, _)| *n);
        let mut ring = KeyRing { dir: dir.to_path_buf(), keys };
        if ring.keys.is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    /// Adds a new key that signs from now on; the older ones keep verifying.
    pub fn rotate(&mut self) -> Result<&SigningKey, AuthError> {
        let n = self.keys.last().map_or(1, |(n, _)| n + 1);
        let key = SigningKey::generate()?;
        write_private(&self.dir.join(format!("key-{n}.pem")), &key.private_pem)?;
        self.keys.push((n, key));
        Ok(self.signing())
    }

    /// Drops all but the newest `keep` keys (at least one), deleting their files: tokens
    /// signed with them stop verifying.
    pub fn retire(&mut self, keep: usize) -> Result<(), AuthError> {
        let keep = keep.max(1);
        while self.keys.len() > keep {
            let (n, _) = self.keys.remove(0);
            let path = self.dir.join(format!("key-{n}.pem"));
            std::fs::remove_file(&path).map_err(|e| AuthError::Key(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    pub fn signing(&self) -> &SigningKey {
        &self.keys.last().expect("a key ring is never empty").1
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().map(|(_, k)| k).find(|k| k.kid == kid)
    }

    /// `{"keys": [...]}` with every key that still verifies.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.iter().map(|(_, k)| k.public_jwk()).collect::<Vec<_>>()})
    }
}

fn key_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("key-")?.strip_suffix(".pem")?.parse().ok()
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), AuthError> {
    std::fs::create_dir_all(dir).map_err(|e| AuthError::Key(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AuthError::Key(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Writes a private key readable by its owner only, complete or not at all.
fn write_private(path: &Path, text: &str) -> Result<(), AuthError> {
    use std::io::Write;
    let err = |e: std::io::Error| AuthError::Key(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
