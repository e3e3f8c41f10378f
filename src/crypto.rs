//! Secrets at rest and message signatures.
//!
//! Whatever weft must show again later (an integration's secrets, an application's client
//! secret, signing keys) is sealed with the server key (XChaCha20-Poly1305, a random nonce
//! per value). What it only has to recognise (API tokens) is hashed instead, see
//! [`crate::auth`].

use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Sealed values start with this, so a future key or algorithm change can be told apart.
const SEALED_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 24;

/// Seals and opens secrets with the server key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Derived from the server key: the root of the signing secrets given to modules, so
    /// that they need no storage and every replica derives the same ones.
    signing_root: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// A sealed value could not be opened: wrong key or corrupted data.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened (wrong server key or corrupted data)")]
pub struct OpenError;

impl SecretBox {
    /// A box for a 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&key.into()), signing_root: hmac_sha256(&key, b"weft signing secrets") }
    }

    /// The signing secret of `subject` (an integration, installation or space/site
    /// installation id) that a module's environment carries as GitBook's `signingSecrets`:
    /// stable for the server key, different for every subject.
    pub fn signing_secret(&self, subject: &str) -> String {
        hex::encode(hmac_sha256(&self.signing_root, subject.as_bytes()))
    }

    /// Parses a key given as 64 hex digits or base64 of 32 bytes.
    pub fn from_encoded(encoded: &str) -> anyhow::Result<Self> {
        let encoded = encoded.trim();
        let bytes = hex::decode(encoded)
            .ok()
            .or_else(|| BASE64.decode(encoded).ok())
            .context("the secret key must be 32 bytes as 64 hex digits or base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("the secret key must be exactly 32 bytes"))?;
        Ok(Self::new(key))
    }

    /// The key from `configured`, else from `key_file`, else a new key written to `key_file`
    /// (readable by its owner only).
    pub fn load_or_create(configured: Option<&str>, key_file: &Path) -> anyhow::Result<Self> {
        if let Some(encoded) = configured {
            return Self::from_encoded(encoded);
        }
        if key_file.exists() {
            let encoded = std::fs::read_to_string(key_file)
                .with_context(|| format!("reading the secret key {}", key_file.display()))?;
            return Self::from_encoded(&encoded).with_context(|| format!("in {}", key_file.display()));
        }
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        write_private(key_file, &hex::encode(key))?;
        tracing::info!(path = %key_file.display(), "generated a new secret key");
        Ok(Self::new(key))
    }

    /// Encrypts `plaintext` as a printable string.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("encryption with a valid key cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", BASE64.encode(sealed))
    }

    /// Decrypts a value from [`SecretBox::seal`].
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let bytes = sealed.strip_prefix(SEALED_PREFIX).and_then(|b| BASE64.decode(b).ok()).ok_or(OpenError)?;
        if bytes.len() < NONCE_BYTES {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.cipher.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| OpenError)
    }

    /// [`SecretBox::open`] for a UTF-8 secret.
    pub fn open_string(&self, sealed: &str) -> Result<String, OpenError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| OpenError)
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} appeared while creating it", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("creating the secret key {}", path.display())),
    };
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// HMAC-SHA256 of `message` with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in constant time (for signatures and tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let secret_box = SecretBox::new([7; 32]);
        let sealed = secret_box.seal(b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, secret_box.seal(b"hunter2"), "every seal uses a fresh nonce");
        assert_eq!(secret_box.open(&sealed).unwrap(), b"hunter2");
        assert!(SecretBox::new([8; 32]).open(&sealed).is_err());
        assert!(secret_box.open("v1:AAAA").is_err());
    }

    #[test]
    fn a_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.key");
        let first = SecretBox::load_or_create(None, &path).unwrap();
        let sealed = first.seal(b"x");
        let second = SecretBox::load_or_create(None, &path).unwrap();
        assert_eq!(second.open(&sealed).unwrap(), b"x");
        assert!(SecretBox::from_encoded("too short").is_err());
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
