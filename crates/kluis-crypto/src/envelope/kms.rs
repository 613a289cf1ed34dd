//! Key-encryption keys, DEK wrapping, and key-management providers.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::DataKey;
use crate::CryptoError;
use crate::aead::{self, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::encoding::put_len_prefixed;
use crate::token::try_random_bytes;

/// Format byte of wrapped DEKs.
const WRAP_FORMAT_V1: u8 = 1;
const WRAP_HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const WRAPPED_LEN: usize = WRAP_HEADER_LEN + KEY_LEN + TAG_LEN;
const WRAP_AAD_LABEL: &[u8] = b"kluis.dek-wrap";
/// Key files hold base64 of 32 bytes plus a newline; anything much larger is not a key file.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// A 256-bit key-encryption key. Wiped on drop; `Debug` shows nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; KEY_LEN]);

impl Kek {
    /// A fresh random KEK.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(try_random_bytes()?))
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Decodes base64 (standard with padding, or URL-safe without) of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let encoded = encoded.trim();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded))
                .map_err(|_| CryptoError::InvalidKeyEncoding)?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Self(bytes))
    }

    /// A short public fingerprint (16 hex chars): identifies the key without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"kluis.kek-fingerprint\0");
        h.update(self.0);
        hex::encode(&h.finalize()[..8])
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// The canonical AAD naming a tenant, for wrapping that tenant's DEKs
/// (`kms.wrap(&dek, &tenant_wrap_aad(&tenant))`).
pub fn tenant_wrap_aad(tenant: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(4 + 6 + 16);
    put_len_prefixed(&mut aad, b"tenant");
    aad.extend_from_slice(tenant);
    aad
}

/// The associated data actually authenticated: label, format, DEK version, caller's AAD.
fn wrap_aad(dek_version: u32, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + WRAP_AAD_LABEL.len() + 1 + 4 + 4 + aad.len());
    put_len_prefixed(&mut out, WRAP_AAD_LABEL);
    out.push(WRAP_FORMAT_V1);
    out.extend_from_slice(&dek_version.to_be_bytes());
    put_len_prefixed(&mut out, aad);
    out
}

/// Wraps (encrypts) a DEK under a KEK with AES-256-GCM.
///
/// Output: `format (1) || DEK version (u32 BE) || nonce (12) || encrypted key (32) || tag (16)`.
/// The DEK version and `aad` (normally [`tenant_wrap_aad`]) are authenticated, so a wrapped key
/// cannot be moved to another tenant or relabelled with another version.
pub fn wrap_key(kek: &Kek, dek: &DataKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce: [u8; NONCE_LEN] = try_random_bytes()?;
    let body = aead::seal_with_nonce(
        &kek.0,
        &nonce,
        &wrap_aad(dek.version(), aad),
        dek.expose_secret(),
    )?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAP_FORMAT_V1);
    out.extend_from_slice(&dek.version().to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reverses [`wrap_key`]; fails unless the KEK and `aad` match and the blob is untouched.
pub fn unwrap_key(kek: &Kek, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, CryptoError> {
    let (&format, rest) = wrapped
        .split_first()
        .ok_or(CryptoError::MalformedCiphertext)?;
    if format != WRAP_FORMAT_V1 {
        return Err(CryptoError::UnsupportedFormat(format));
    }
    if wrapped.len() != WRAPPED_LEN {
        return Err(CryptoError::MalformedCiphertext);
    }
    let (version, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(CryptoError::MalformedCiphertext)?;
    let (nonce, body) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(CryptoError::MalformedCiphertext)?;
    let version = u32::from_be_bytes(*version);
    let key = Zeroizing::new(aead::open_with_nonce(
        &kek.0,
        nonce,
        &wrap_aad(version, aad),
        body,
    )?);
    DataKey::from_slice(version, &key)
}

/// A key-management provider: wraps and unwraps data keys under a key it holds.
pub trait Kms: Send + Sync {
    /// Encrypts `dek`, authenticating `aad` (use [`tenant_wrap_aad`]) and the DEK version.
    fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Decrypts a blob from [`Kms::wrap`] with the same `aad`.
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, CryptoError>;
    /// Identifies the provider and its key (no secret material), for storing next to wrapped keys.
    fn key_id(&self) -> String;
}

/// A [`Kms`] whose KEK lives in a local file or an environment variable.
pub struct LocalKms {
    kek: Kek,
}

impl LocalKms {
    /// Uses an in-memory KEK.
    pub fn new(kek: Kek) -> Self {
        Self { kek }
    }

    /// Reads the KEK from base64 (e.g. from an environment variable).
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        Kek::from_base64(encoded).map(Self::new)
    }

    /// Loads the key file at `path`, creating it with a fresh random key and mode 0600 if it does
    /// not exist.
    pub fn create_or_load(path: impl AsRef<Path>) -> Result<Self, CryptoError> {
        let path = path.as_ref();
        // create_new: if two processes race, exactly one creates and the other loads.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => {
                let kek = Kek::generate()?;
                if let Err(e) = write_key_file(file, &kek) {
                    // Never leave a truncated key file behind for the next start to trip over.
                    let _ = fs::remove_file(path);
                    return Err(CryptoError::KeyFile(format!(
                        "cannot write key file {}: {e}",
                        path.display()
                    )));
                }
                Ok(Self::new(kek))
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(CryptoError::KeyFile(format!(
                "cannot create key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Loads an existing key file, refusing one that is not a regular file, is readable or
    /// writable by group or others (mode looser than 0600), or does not hold base64 of 32 bytes.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CryptoError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| {
            CryptoError::KeyFile(format!("cannot open key file {}: {e}", path.display()))
        })?;
        // Check the opened file, not the path, so it cannot be swapped between check and read.
        let meta = file.metadata().map_err(|e| {
            CryptoError::KeyFile(format!("cannot stat key file {}: {e}", path.display()))
        })?;
        if !meta.is_file() {
            return Err(CryptoError::KeyFile(format!(
                "key file {} is not a regular file",
                path.display()
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & !0o600 != 0 {
            return Err(CryptoError::KeyFile(format!(
                "key file {} has mode {mode:04o}, looser than 0600; run: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(CryptoError::KeyFile(format!(
                "key file {} is too large to be a key file",
                path.display()
            )));
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(|e| {
            CryptoError::KeyFile(format!("cannot read key file {}: {e}", path.display()))
        })?;
        Kek::from_base64(&text).map(Self::new).map_err(|e| {
            CryptoError::KeyFile(format!(
                "key file {} does not hold a 256-bit base64 key ({e})",
                path.display()
            ))
        })
    }
}

fn write_key_file(mut file: File, kek: &Kek) -> std::io::Result<()> {
    let mut text = Zeroizing::new(STANDARD.encode(kek.0));
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl Kms for LocalKms {
    fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        wrap_key(&self.kek, dek, aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, CryptoError> {
        unwrap_key(&self.kek, wrapped, aad)
    }

    fn key_id(&self) -> String {
        format!("local:{}", self.kek.fingerprint())
    }
}

impl fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKms")
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TENANT: [u8; 16] = [9; 16];

    #[test]
    fn wrap_round_trip_keeps_version() {
        let kek = Kek::generate().unwrap();
        let dek = DataKey::generate(42).unwrap();
        let aad = tenant_wrap_aad(&TENANT);
        let wrapped = wrap_key(&kek, &dek, &aad).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        let back = unwrap_key(&kek, &wrapped, &aad).unwrap();
        assert_eq!(back.version(), 42);
        assert_eq!(back.expose_secret(), dek.expose_secret());
    }

    #[test]
    fn wrap_binds_tenant_version_and_kek() {
        let kek = Kek::generate().unwrap();
        let dek = DataKey::generate(1).unwrap();
        let aad = tenant_wrap_aad(&TENANT);
        let wrapped = wrap_key(&kek, &dek, &aad).unwrap();
        assert!(unwrap_key(&kek, &wrapped, &tenant_wrap_aad(&[8; 16])).is_err());
        assert!(unwrap_key(&Kek::generate().unwrap(), &wrapped, &aad).is_err());
        let mut relabelled = wrapped.clone();
        relabelled[4] ^= 1; // DEK version 1 -> 0
        assert!(matches!(
            unwrap_key(&kek, &relabelled, &aad),
            Err(CryptoError::Decrypt)
        ));
        assert!(unwrap_key(&kek, &wrapped[..WRAPPED_LEN - 1], &aad).is_err());
    }

    #[test]
    fn base64_key_parsing() {
        let b64 = STANDARD.encode([5u8; 32]);
        let kms = LocalKms::from_base64(&format!(" {b64}\n")).unwrap();
        assert!(kms.key_id().starts_with("local:"));
        assert!(matches!(
            LocalKms::from_base64(&STANDARD.encode([5u8; 31])),
            Err(CryptoError::InvalidKeyLength)
        ));
        assert!(matches!(
            LocalKms::from_base64("not base64!"),
            Err(CryptoError::InvalidKeyEncoding)
        ));
        // key_id and Debug are fingerprints, not the key.
        assert!(!format!("{kms:?}").contains(&b64));
        assert!(!kms.key_id().contains(&b64));
    }
}
