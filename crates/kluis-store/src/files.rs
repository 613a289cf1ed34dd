//! Files on records and their versions. Same rule as the rest of [`TenantTx`]: every statement
//! binds `self.tenant` as `$1`. The bytes live outside the database (kluis-core `files`); these
//! rows hold the sealed name, the sealed per-version key and the scan status.

use sqlx::FromRow;
use uuid::Uuid;

use crate::ids::RecordId;
use crate::{Result, TenantTx, on_conn};

/// A file on a record (its name still sealed).
#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub record_id: RecordId,
    pub object_type: String,
    pub name: Vec<u8>,
    pub current_version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
}

/// One stored version of a file.
#[derive(Debug, Clone, FromRow)]
pub struct FileVersionRow {
    pub file_id: Uuid,
    pub version: i64,
    pub blob_id: Uuid,
    pub size: i64,
    pub stored_size: i64,
    pub content_type: String,
    pub wrapped_key: Vec<u8>,
    pub status: String,
    pub scan_result: Option<String>,
    pub scanned_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

const FILE_COLS: &str = "id, record_id, object_type, name, current_version, created_at, created_by, updated_at, deleted_at, deleted_by";
const VERSION_COLS: &str = "file_id, version, blob_id, size, stored_size, content_type, wrapped_key, status, scan_result, scanned_at, created_at, created_by";

impl TenantTx {
    pub async fn insert_file(&mut self, f: &FileRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO crm_files (tenant_id, id, record_id, object_type, name, current_version, \
                 created_at, created_by, updated_at, deleted_at, deleted_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(t)
            .bind(f.id)
            .bind(f.record_id)
            .bind(&f.object_type)
            .bind(&f.name)
            .bind(f.current_version)
            .bind(f.created_at)
            .bind(&f.created_by)
            .bind(f.updated_at)
            .bind(f.deleted_at)
            .bind(&f.deleted_by)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn insert_file_version(&mut self, v: &FileVersionRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO crm_file_versions (tenant_id, file_id, version, blob_id, size, stored_size, \
                 content_type, wrapped_key, status, scan_result, scanned_at, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(t)
            .bind(v.file_id)
            .bind(v.version)
            .bind(v.blob_id)
            .bind(v.size)
            .bind(v.stored_size)
            .bind(&v.content_type)
            .bind(&v.wrapped_key)
            .bind(&v.status)
            .bind(&v.scan_result)
            .bind(v.scanned_at)
            .bind(v.created_at)
            .bind(&v.created_by)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// A file of this tenant, trashed or not.
    pub async fn file(&mut self, id: Uuid) -> Result<Option<FileRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {FILE_COLS} FROM crm_files WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// The files of a record: live ones, or those in the file trash.
    pub async fn files_of_record(
        &mut self,
        record: RecordId,
        trashed: bool,
    ) -> Result<Vec<FileRow>> {
        let t = self.tenant;
        let cond = if trashed {
            "deleted_at IS NOT NULL"
        } else {
            "deleted_at IS NULL"
        };
        let sql = format!(
            "SELECT {FILE_COLS} FROM crm_files WHERE tenant_id = $1 AND record_id = $2 AND {cond} \
             ORDER BY id LIMIT 1000"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(t)
        .bind(record)
        .fetch_all(c)
        .await?))
    }

    pub async fn file_versions(&mut self, file: Uuid) -> Result<Vec<FileVersionRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {VERSION_COLS} FROM crm_file_versions WHERE tenant_id = $1 AND file_id = $2 \
             ORDER BY version DESC"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(t)
        .bind(file)
        .fetch_all(c)
        .await?))
    }

    pub async fn file_version(
        &mut self,
        file: Uuid,
        version: i64,
    ) -> Result<Option<FileVersionRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {VERSION_COLS} FROM crm_file_versions WHERE tenant_id = $1 AND file_id = $2 \
             AND version = $3"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(t)
        .bind(file)
        .bind(version)
        .fetch_optional(c)
        .await?))
    }

    /// Stored bytes of every version of every file of this tenant (the quota counts them all:
    /// old versions and the file trash take space too).
    pub async fn file_usage(&mut self) -> Result<i64> {
        let t = self.tenant;
        let used: Option<i64> = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT CAST(SUM(size) AS BIGINT) FROM crm_file_versions WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_one(c)
        .await?);
        Ok(used.unwrap_or(0))
    }

    /// Highest version number of a file (versions refused as infected included).
    pub async fn max_file_version(&mut self, file: Uuid) -> Result<i64> {
        let t = self.tenant;
        let v: Option<i64> = on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "SELECT CAST(MAX(version) AS BIGINT) FROM crm_file_versions WHERE tenant_id = $1 AND file_id = $2"
        )
        .bind(t)
        .bind(file)
        .fetch_one(c)
        .await?
        });
        Ok(v.unwrap_or(0))
    }

    pub async fn set_file_name(&mut self, id: Uuid, name: &[u8], now: i64) -> Result<bool> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_files SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected())
            == 1)
    }

    pub async fn set_file_current(&mut self, id: Uuid, version: i64, now: i64) -> Result<bool> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE crm_files SET current_version = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(version)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        }) == 1)
    }

    /// Moves a file to the file trash (`deleted_at` set) or back (`None`).
    pub async fn set_file_deleted(
        &mut self,
        id: Uuid,
        deleted: Option<(i64, &str)>,
    ) -> Result<bool> {
        let t = self.tenant;
        let (at, by) = match deleted {
            Some((at, by)) => (Some(at), Some(by)),
            None => (None, None),
        };
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_files SET deleted_at = $3, deleted_by = $4 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(at)
        .bind(by)
        .execute(c)
        .await?
        .rows_affected())
            == 1)
    }

    pub async fn set_file_version_status(
        &mut self,
        file: Uuid,
        version: i64,
        status: &str,
        scan_result: Option<&str>,
        scanned_at: Option<i64>,
    ) -> Result<bool> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_file_versions SET status = $4, scan_result = $5, scanned_at = $6 \
             WHERE tenant_id = $1 AND file_id = $2 AND version = $3"
        )
        .bind(t)
        .bind(file)
        .bind(version)
        .bind(status)
        .bind(scan_result)
        .bind(scanned_at)
        .execute(c)
        .await?
        .rows_affected())
            == 1)
    }

    /// Deletes a file and (cascade) its version rows. The caller removes the blobs.
    pub async fn purge_file(&mut self, id: Uuid) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_file_versions WHERE tenant_id = $1 AND file_id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_files WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected())
            == 1)
    }

    /// Files in the file trash since before `before`, oldest first.
    pub async fn files_trashed_before(&mut self, before: i64, limit: i64) -> Result<Vec<Uuid>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT id FROM crm_files WHERE tenant_id = $1 AND deleted_at IS NOT NULL \
             AND deleted_at < $2 ORDER BY deleted_at LIMIT $3"
        )
        .bind(t)
        .bind(before)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Versions still waiting for a scan.
    pub async fn pending_file_versions(&mut self, limit: i64) -> Result<Vec<FileVersionRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {VERSION_COLS} FROM crm_file_versions WHERE tenant_id = $1 AND status = 'pending' \
             ORDER BY created_at LIMIT $2"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(t)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }
}
