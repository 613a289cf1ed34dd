//! Sealing backup objects: AES-256-GCM (ring, through `kluis_crypto::envelope`) under a random
//! 256-bit backup key per generation, wrapped by the installation's KEK.
//!
//! The associated data binds every object to its repository id and its full name, so an object
//! copied into another repository, renamed, or swapped with a neighbour (segment 7 stored as
//! segment 8) fails to open. Objects are at most [`CHUNK`] bytes of plaintext: large files
//! (the database snapshot) are split by the caller into numbered objects, so memory stays
//! bounded and each chunk is authenticated on its own.

use std::sync::Arc;

use kluis_crypto::envelope::{DataKey, Kms, SealContext};

/// Plaintext bytes per object: the snapshot is cut into objects of this size.
pub const CHUNK: usize = 4 << 20;

/// Domain label of the key-wrap AAD, so a wrapped backup key cannot pass for a tenant's DEK.
const WRAP_LABEL: &[u8] = b"kluis.backup-key.v1";
/// The "table" of the envelope context: separates backup objects from column values.
const TABLE: &str = "kluis-backup";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The KEK could not unwrap the backup key: a different KEK, or a tampered key object.
    #[error(
        "the backup key does not open with this installation's key-encryption key (wrong KEK, or the key object was altered)"
    )]
    WrongKek,
    /// Authentication failed: altered bytes, or an object under another name/repository.
    #[error("backup object {0} fails authentication (altered, moved or renamed)")]
    Tampered(String),
    #[error("crypto: {0}")]
    Crypto(String),
}

/// The key that seals one generation's objects. Wiped on drop (DataKey).
#[derive(Clone)]
pub struct BackupKey {
    key: DataKey,
    repo_id: uuid::Uuid,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupKey").finish_non_exhaustive()
    }
}

fn wrap_aad(repo_id: uuid::Uuid, generation: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 16 + generation.len());
    aad.extend_from_slice(WRAP_LABEL);
    aad.extend_from_slice(repo_id.as_bytes());
    aad.extend_from_slice(generation.as_bytes());
    aad
}

impl BackupKey {
    /// A fresh random key for `repo_id`.
    pub fn generate(repo_id: uuid::Uuid) -> Result<Self, SealError> {
        let key = DataKey::generate(1).map_err(|e| SealError::Crypto(e.to_string()))?;
        Ok(BackupKey { key, repo_id })
    }

    /// The key wrapped by the KEK, bound to the repository and generation.
    pub fn wrap(&self, kms: &Arc<dyn Kms>, generation: &str) -> Result<Vec<u8>, SealError> {
        kms.wrap(&self.key, &wrap_aad(self.repo_id, generation))
            .map_err(|e| SealError::Crypto(e.to_string()))
    }

    /// Unwraps a key from [`BackupKey::wrap`]; any failure is [`SealError::WrongKek`].
    pub fn unwrap(
        kms: &Arc<dyn Kms>,
        repo_id: uuid::Uuid,
        generation: &str,
        wrapped: &[u8],
    ) -> Result<Self, SealError> {
        let key = kms
            .unwrap(wrapped, &wrap_aad(repo_id, generation))
            .map_err(|_| SealError::WrongKek)?;
        Ok(BackupKey { key, repo_id })
    }

    fn ctx<'a>(&self, name: &'a str) -> SealContext<'a> {
        SealContext {
            tenant: *self.repo_id.as_bytes(),
            table: TABLE,
            column: name,
            record: [0; 16],
        }
    }

    /// Seals `plaintext` as the object `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        kluis_crypto::envelope::seal(&self.key, &self.ctx(name), plaintext)
            .map_err(|e| SealError::Crypto(e.to_string()))
    }

    /// Opens the object `name`; fails unless it was sealed under this key as exactly `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        kluis_crypto::envelope::open(&self.key, &self.ctx(name), sealed)
            .map_err(|_| SealError::Tampered(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_crypto::envelope::{Kek, LocalKms};

    fn kms() -> Arc<dyn Kms> {
        Arc::new(LocalKms::new(Kek::generate().unwrap()))
    }

    #[test]
    fn binds_name_repo_and_kek() {
        let repo = uuid::Uuid::new_v4();
        let k = BackupKey::generate(repo).unwrap();
        let sealed = k.seal("sqlite/g/wal/00000001", b"frames").unwrap();
        assert_eq!(k.open("sqlite/g/wal/00000001", &sealed).unwrap(), b"frames");
        assert!(k.open("sqlite/g/wal/00000002", &sealed).is_err());
        let other = BackupKey {
            key: k.key.clone(),
            repo_id: uuid::Uuid::new_v4(),
        };
        assert!(other.open("sqlite/g/wal/00000001", &sealed).is_err());

        let kms1 = kms();
        let wrapped = k.wrap(&kms1, "g").unwrap();
        assert!(BackupKey::unwrap(&kms1, repo, "g", &wrapped).is_ok());
        assert!(matches!(
            BackupKey::unwrap(&kms(), repo, "g", &wrapped),
            Err(SealError::WrongKek)
        ));
        assert!(BackupKey::unwrap(&kms1, repo, "h", &wrapped).is_err());
    }
}
