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

pub mod repo;
pub mod report;
pub mod s3;

pub use repo::{ObjectInfo, Repo, RepoError};
pub use report::{BackupSummary, CheckReport};
