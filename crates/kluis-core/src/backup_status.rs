//! What the platform's backup status endpoint shows: kept in memory by the running server,
//! updated by its backup schedule (the `kluis` binary), read by `GET /api/v1/platform/backups`.

use serde::Serialize;

use crate::Kluis;
use crate::tenants::PlatformActor;

/// Backups of this installation as the running server sees them.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BackupStatus {
    /// A backup repository is configured and the schedule runs in this process.
    pub configured: bool,
    /// Where (a directory or `s3://bucket/prefix`; no credentials).
    pub repository: Option<String>,
    /// The generation being written (the latest snapshot plus shipped changes).
    pub generation: Option<String>,
    /// The latest change shipped into the repository (RFC 3339).
    pub last_backup: Option<String>,
    /// Its age in seconds, at the time of the request.
    pub last_backup_age_secs: Option<i64>,
    /// The latest restore drill: when (RFC 3339), which backup, and whether it passed.
    pub last_drill: Option<String>,
    pub last_drill_backup: Option<String>,
    pub last_drill_ok: Option<bool>,
    /// Problems needing an operator: a backup older than 26 h, a failed drill, shipping errors.
    pub alerts: Vec<String>,
    #[serde(skip)]
    pub last_backup_unix: Option<i64>,
    #[serde(skip)]
    pub shipping_error: Option<String>,
}

/// A backup older than this raises an alert.
pub const MAX_BACKUP_AGE_SECS: i64 = 26 * 3600;

impl Kluis {
    /// Updates the backup status (the server's backup schedule).
    pub fn update_backup_status(&self, f: impl FnOnce(&mut BackupStatus)) {
        if let Ok(mut s) = self.backup_status.write() {
            f(&mut s);
        }
    }

    /// The backup status, with ages and alerts computed now (platform operators).
    pub fn backup_status(&self, _by: &PlatformActor) -> BackupStatus {
        let mut s = self
            .backup_status
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let now = self.now() / 1000;
        s.last_backup_age_secs = s.last_backup_unix.map(|t| now - t);
        s.alerts.clear();
        if s.configured {
            match s.last_backup_age_secs {
                Some(age) if age > MAX_BACKUP_AGE_SECS => s
                    .alerts
                    .push(format!("the latest backup is {} h old", age / 3600)),
                None => s.alerts.push("no backup yet".into()),
                _ => {}
            }
            if s.last_drill_ok == Some(false) {
                s.alerts.push("the latest restore drill failed".into());
            }
            if let Some(e) = &s.shipping_error {
                s.alerts.push(format!("backup shipping fails: {e}"));
            }
        } else {
            s.alerts.push("no backup repository configured".into());
        }
        s
    }
}
