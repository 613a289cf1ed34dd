//! Where backup objects live: a local directory or an S3-compatible bucket with Object Lock.
//!
//! The contract every repository keeps (the tests in `tests/backup.rs` run against each):
//! - `put_locked` creates an object that can be neither replaced nor deleted before
//!   `retain_until` (locally: a read-only file plus its retention date recorded beside it; on S3:
//!   Object Lock in compliance mode). Writing a name that exists is refused.
//! - `put_mutable` writes an object that may be replaced or deleted at any time: the key ledger
//!   (tenant root keys, which shredding must be able to destroy) and the shipper's position.
//! - `delete` of a locked object before its retention ends is refused with `RepoError::Retained`.
//! - Names are relative, `/`-separated, of `[A-Za-z0-9._-]` segments; anything else is refused.

use time::OffsetDateTime;

use crate::s3::S3Repo;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("backup object not found: {0}")]
    NotFound(String),
    #[error("backup object already exists: {0}")]
    Exists(String),
    #[error("backup object is under retention until {until}: {name}")]
    Retained { name: String, until: OffsetDateTime },
    #[error("invalid backup object name: {0}")]
    BadName(String),
    #[error("backup repository: {0}")]
    Io(String),
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
    /// None for mutable objects.
    pub retain_until: Option<OffsetDateTime>,
}

/// A backup repository. An enum rather than a trait object: there are two kinds, both known
/// here, and async methods stay plain `async fn`.
pub enum Repo {
    // Local(local::LocalRepo),
    S3(S3Repo),
}

impl Repo {
    /// `s3://bucket[/prefix]` -> S3 (endpoint and credentials from the environment, see
    /// [`crate::s3::S3Config::from_env`]); a path -> Local.
    pub async fn open(location: &str) -> Result<Repo, RepoError> {
        if location.starts_with("s3://") {
            return Ok(Repo::S3(S3Repo::open_location(location).await?));
        }
        // Replaced by the Local arm when the local repository lands.
        Err(RepoError::Io(format!(
            "not an s3:// location (local repositories are not built in yet): {location}"
        )))
    }

    pub async fn put_locked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        retain_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        match self {
            Repo::S3(r) => r.put_locked(name, bytes, retain_until).await,
        }
    }

    pub async fn put_mutable(&self, name: &str, bytes: Vec<u8>) -> Result<(), RepoError> {
        match self {
            Repo::S3(r) => r.put_mutable(name, bytes).await,
        }
    }

    pub async fn get(&self, name: &str) -> Result<Vec<u8>, RepoError> {
        match self {
            Repo::S3(r) => r.get(name).await,
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RepoError> {
        match self {
            Repo::S3(r) => r.list(prefix).await,
        }
    }

    /// Makes every object written so far durable (S3: a completed PUT already is).
    pub async fn flush(&self) -> Result<(), RepoError> {
        match self {
            Repo::S3(r) => r.flush().await,
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), RepoError> {
        match self {
            Repo::S3(r) => r.delete(name).await,
        }
    }
}
