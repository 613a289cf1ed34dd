//! Per-tenant retention policies (issue 19).

use crate::{RecordId, Result, TenantTx, on_conn};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RetentionPolicyRow {
    pub contact_inactive_years: Option<i32>,
    pub contact_action: String,
    pub audit_years: i32,
    pub updated_at: i64,
    pub dry_run_at: Option<i64>,
    pub dry_run_report: Option<String>,
    pub last_run_at: Option<i64>,
    pub last_run_report: Option<String>,
}

impl TenantTx {
    pub async fn retention_policy(&mut self) -> Result<Option<RetentionPolicyRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT contact_inactive_years, contact_action, audit_years, updated_at, dry_run_at, \
             dry_run_report, last_run_at, last_run_report FROM retention_policies WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?
        }))
    }

    pub async fn put_retention_policy(&mut self, r: &RetentionPolicyRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO retention_policies (tenant_id, contact_inactive_years, contact_action, \
             audit_years, updated_at, dry_run_at, dry_run_report, last_run_at, last_run_report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id) DO UPDATE SET \
             contact_inactive_years = $2, contact_action = $3, audit_years = $4, updated_at = $5, \
             dry_run_at = $6, dry_run_report = $7, last_run_at = $8, last_run_report = $9"
        )
        .bind(t)
        .bind(r.contact_inactive_years)
        .bind(&r.contact_action)
        .bind(r.audit_years)
        .bind(r.updated_at)
        .bind(r.dry_run_at)
        .bind(&r.dry_run_report)
        .bind(r.last_run_at)
        .bind(&r.last_run_report)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Every contact (live and in the trash) with its own last change and the newest change
    /// of a record linked to it (associations either way, or a contact's company link does
    /// not count: a company's activity is not the person's).
    pub async fn contact_activity(&mut self) -> Result<Vec<(RecordId, i64, Option<i64>)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT r.id, r.updated_at, \
               (SELECT max(o.updated_at) FROM crm_associations a JOIN crm_records o \
                  ON o.tenant_id = a.tenant_id \
                 AND o.id = CASE WHEN a.record_id = r.id THEN a.other_id ELSE a.record_id END \
                WHERE a.tenant_id = r.tenant_id AND (a.record_id = r.id OR a.other_id = r.id)) \
             FROM crm_records r WHERE r.tenant_id = $1 AND r.object_type = 'contact' ORDER BY r.id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    /// Replaces a record's fields by `sealed` (no personal data) as a new revision and drops
    /// its versions and lookups: what anonymising leaves is the record's place in the links.
    pub async fn anonymise_record(
        &mut self,
        id: RecordId,
        sealed: &[u8],
        now: i64,
        by: &str,
    ) -> Result<bool> {
        let t = self.tenant;
        for table in ["crm_lookup", "crm_versions"] {
            let sql = format!("DELETE FROM {table} WHERE tenant_id = $1 AND record_id = $2");
            on_conn!(&mut self.tx, |c| sqlx::query(sqlx::AssertSqlSafe(
                sql.clone()
            ))
            .bind(t)
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
        }
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_records SET fields = $3, revision = revision + 1, updated_at = $4, \
             updated_by = $5, sensitive = NULL WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(sealed)
        .bind(now)
        .bind(by)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }
}
