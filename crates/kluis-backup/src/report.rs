//! What `kluis backup list | verify | drill` and `GET /api/v1/platform/backups` report, in one
//! shape for both engines (SQLite generations and pgBackRest backups).

use serde::Serialize;
use time::OffsetDateTime;

/// One backup as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackupSummary {
    /// Stable id: the SQLite generation id, or pgBackRest's label (e.g. `20261207-101500F`).
    pub id: String,
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// `snapshot` (SQLite), `full`, `diff` or `incr` (pgBackRest).
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
    /// Bytes stored in the repository for this backup (sealed, after compression if any).
    pub stored_bytes: u64,
    /// Bytes of database it covers.
    pub database_bytes: u64,
    /// The earliest and latest moment a point-in-time restore from this backup reaches.
    #[serde(with = "time::serde::rfc3339::option")]
    pub restorable_from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub restorable_until: Option<OffsetDateTime>,
    /// Why retention keeps it (`daily`, `monthly`, `yearly`, `pitr`), empty once it is due.
    pub kept_for: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retain_until: Option<OffsetDateTime>,
}

/// The outcome of `verify` or a restore drill.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    pub backup_id: String,
    pub ok: bool,
    /// Objects (or pgBackRest files) read back in full.
    pub objects_checked: u64,
    pub bytes_read: u64,
    /// One line per problem found; empty when `ok`.
    pub problems: Vec<String>,
}
