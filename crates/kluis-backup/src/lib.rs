//! Kluis backups.
//!
//! A backup repository holds sealed objects (AES-256-GCM under a backup key that the KEK wraps),
//! written once and kept immutable until their retention ends, and signed manifests that list
//! every object with its SHA-256. SQLite is backed up as a snapshot plus the WAL frames shipped
//! after it (point-in-time recovery to within the shipping interval); PostgreSQL through the
//! real pgBackRest. See ARCHITECTURE.md, "Backups".
//!
//! This crate knows files, objects and keys; it does not know tenants' records. What a restored
//! database must satisfy (the audit log verifies, row counts match) is checked by the caller
//! through kluis-core.

pub mod ledger;
pub mod local;
pub mod manifest;
pub mod pgbackrest;
pub mod repo;
pub mod report;
pub mod retention;
pub mod s3;
pub mod seal;
pub mod sqlite;

use std::sync::Arc;

use kluis_crypto::checkpoint::{CheckpointSigner, CheckpointVerifier};
use kluis_crypto::envelope::Kms;

pub use repo::{ObjectInfo, Repo, RepoError};
pub use report::{BackupSummary, CheckReport};
pub use retention::RetentionPolicy;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("{0}")]
    Io(String),
    /// The repository's content is not what it should be (tampering, a missing object).
    #[error("backup refused: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Sqlite(e.to_string())
    }
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        BackupError::Io(e.to_string())
    }
}

/// Name of the repository's identity object (mutable: altering it makes every object fail to
/// open, it cannot make a foreign object open).
pub const REPOSITORY_OBJECT: &str = "repository.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct RepositoryDoc {
    id: uuid::Uuid,
    format: u32,
}

/// The repository's id (bound into every object's AEAD), created on first use if `create`.
pub async fn repository_id(repo: &Repo, create: bool) -> Result<uuid::Uuid, BackupError> {
    match repo.get(REPOSITORY_OBJECT).await {
        Ok(bytes) => {
            let doc: RepositoryDoc = serde_json::from_slice(&bytes)
                .map_err(|_| BackupError::Invalid("repository.json is malformed".into()))?;
            Ok(doc.id)
        }
        Err(RepoError::NotFound(_)) if create => {
            let doc = RepositoryDoc {
                id: uuid::Uuid::new_v4(),
                format: 1,
            };
            let bytes = serde_json::to_vec(&doc).map_err(|e| BackupError::Io(e.to_string()))?;
            repo.put_mutable(REPOSITORY_OBJECT, bytes).await?;
            Ok(doc.id)
        }
        Err(RepoError::NotFound(_)) => Err(BackupError::NotFound(
            "no backup repository here (repository.json missing)".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Everything the SQLite engine needs to write, read and check backups in one repository.
#[derive(Clone)]
pub struct Backups {
    pub repo: Arc<Repo>,
    pub repo_id: uuid::Uuid,
    pub kms: Arc<dyn Kms>,
    /// Signs manifests (the installation's audit signing key). Required to write.
    pub signer: Option<Arc<CheckpointSigner>>,
    /// When set, manifests must be signed by this key (otherwise the key named inside the
    /// AEAD-authenticated manifest is used).
    pub trusted: Option<CheckpointVerifier>,
    pub policy: RetentionPolicy,
}

impl Backups {
    /// Opens the repository at `location` (creating its identity if `create`).
    pub async fn open(
        location: &str,
        kms: Arc<dyn Kms>,
        signer: Option<Arc<CheckpointSigner>>,
        create: bool,
    ) -> Result<Backups, BackupError> {
        let repo = Repo::open(location).await?;
        let repo_id = repository_id(&repo, create).await?;
        let trusted = signer.as_ref().map(|s| s.verifier());
        Ok(Backups {
            repo: Arc::new(repo),
            repo_id,
            kms,
            signer,
            trusted,
            policy: RetentionPolicy::default(),
        })
    }
}
