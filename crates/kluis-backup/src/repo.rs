//! Where backup objects live: a local directory or an S3-compatible bucket with Object Lock.
//!
//! The contract every repository keeps (the tests in `tests/backup.rs` run against each):
//! - `put_locked` creates an object that can be neither replaced nor deleted before
//!   `retain_until` (locally: a read-only file plus its retention date recorded beside it; on S3:
//!   Object Lock in compliance mode). Writing a name that exists is refused.
//! - `put_mutable` writes an object that may be replaced or deleted at any time: the key ledger
//!   (tenant root keys, which shredding must be able to destroy) and the shipper's position.
//! - `delete` of a locked object before its retention ends is refused with `RepoError::Retained`.
//! - `put_locked` objects are durable once `flush` returns (a local repository syncs in
//!   batches; S3 is durable per PUT).
//! - Names are relative, `/`-separated, of `[A-Za-z0-9._-]` segments; anything else is refused.

use time::OffsetDateTime;

use crate::local::LocalRepo;
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

/// Refuses names outside the contract: empty, absolute, `.`/`..` segments, other characters.
pub(crate) fn check_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(RepoError::BadName(name.to_owned()))
    }
}

/// A backup repository. An enum rather than a trait object: there are two kinds, both known
/// here, and async methods stay plain `async fn`.
pub enum Repo {
    Local(LocalRepo),
    S3(S3Repo),
}

impl Repo {
    /// A path -> Local; `s3://bucket/prefix` (endpoint and credentials from the environment
    /// or options) -> S3.
    pub async fn open(location: &str) -> Result<Repo, RepoError> {
        if location.starts_with("s3://") {
            return Ok(Repo::S3(S3Repo::open_location(location).await?));
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        Ok(Repo::Local(LocalRepo::open(path)?))
    }

    pub async fn put_locked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        retain_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        match self {
            Repo::Local(r) => r.put_locked(name, bytes, retain_until).await,
            Repo::S3(r) => r.put_locked(name, bytes, retain_until).await,
        }
    }

    pub async fn put_mutable(&self, name: &str, bytes: Vec<u8>) -> Result<(), RepoError> {
        match self {
            Repo::Local(r) => r.put_mutable(name, bytes).await,
            Repo::S3(r) => r.put_mutable(name, bytes).await,
        }
    }

    pub async fn get(&self, name: &str) -> Result<Vec<u8>, RepoError> {
        match self {
            Repo::Local(r) => r.get(name).await,
            Repo::S3(r) => r.get(name).await,
        }
    }

    /// Objects whose name starts with `prefix`, sorted by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RepoError> {
        match self {
            Repo::Local(r) => r.list(prefix).await,
            Repo::S3(r) => r.list(prefix).await,
        }
    }

    /// Makes every object written so far durable. `put_locked` may return before its
    /// object is on stable storage (locally: synced in batches); writers call this before a
    /// manifest part names the objects and after writing it. (S3: a no-op, a completed PUT is
    /// durable.)
    pub async fn flush(&self) -> Result<(), RepoError> {
        match self {
            Repo::Local(r) => r.flush().await,
            // A completed PUT is durable.
            Repo::S3(_) => Ok(()),
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), RepoError> {
        match self {
            Repo::Local(r) => r.delete(name).await,
            Repo::S3(r) => r.delete(name).await,
        }
    }
}
