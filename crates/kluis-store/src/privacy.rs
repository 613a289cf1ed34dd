//! Data-subject requests and audit redaction (issue 19).

use uuid::Uuid;

use crate::{RecordId, Result, TenantTx, on_conn};

/// A data-subject request as stored; `subject` is sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PrivacyRequestRow {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub subject: Vec<u8>,
    pub created_at: i64,
    pub created_by: String,
    pub due_at: i64,
    pub exported_at: Option<i64>,
    pub erased_at: Option<i64>,
}

const COLUMNS: &str =
    "id, kind, status, subject, created_at, created_by, due_at, exported_at, erased_at";

impl TenantTx {
    pub async fn insert_privacy_request(&mut self, r: &PrivacyRequestRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO privacy_requests (tenant_id, id, kind, status, subject, created_at, \
                 created_by, due_at, exported_at, erased_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t)
            .bind(r.id)
            .bind(&r.kind)
            .bind(&r.status)
            .bind(&r.subject)
            .bind(r.created_at)
            .bind(&r.created_by)
            .bind(r.due_at)
            .bind(r.exported_at)
            .bind(r.erased_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn privacy_request(&mut self, id: Uuid) -> Result<Option<PrivacyRequestRow>> {
        let t = self.tenant;
        let sql =
            format!("SELECT {COLUMNS} FROM privacy_requests WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Requests, newest first.
    pub async fn privacy_requests(&mut self, limit: i64) -> Result<Vec<PrivacyRequestRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {COLUMNS} FROM privacy_requests WHERE tenant_id = $1 \
             ORDER BY created_at DESC, id LIMIT $2"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Writes a request's status, subject and step times.
    pub async fn update_privacy_request(&mut self, r: &PrivacyRequestRow) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE privacy_requests SET status = $3, subject = $4, exported_at = $5, erased_at = $6 \
             WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(r.id)
        .bind(&r.status)
        .bind(&r.subject)
        .bind(r.exported_at)
        .bind(r.erased_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records of this type (live or in the trash) whose `field` has this blind index.
    pub async fn lookup_any(
        &mut self,
        object_type: &str,
        field: &str,
        bidx: &[u8],
    ) -> Result<Vec<RecordId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT record_id FROM crm_lookup \
             WHERE tenant_id = $1 AND object_type = $2 AND field = $3 AND bidx = $4 \
             ORDER BY record_id"
        )
        .bind(t)
        .bind(object_type)
        .bind(field)
        .bind(bidx)
        .fetch_all(c)
        .await?))
    }

    /// Records associated with `id` in either direction, and records whose company it is.
    pub async fn linked_records(&mut self, id: RecordId) -> Result<Vec<RecordId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT other_id FROM crm_associations WHERE tenant_id = $1 AND record_id = $2 \
             UNION SELECT record_id FROM crm_associations WHERE tenant_id = $1 AND other_id = $2"
        )
        .bind(t)
        .bind(id)
        .fetch_all(c)
        .await?))
    }

    /// Replaces an event's sealed details (the erasure that lists it is `by_seq`). The
    /// database refuses any other change to an event, and this one without the redaction row.
    pub async fn redact_audit_event(&mut self, seq: i64, by_seq: i64, sealed: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO audit_redactions (tenant_id, seq, by_seq) VALUES ($1, $2, $3)"
        )
        .bind(t)
        .bind(seq)
        .bind(by_seq)
        .execute(c)
        .await?
        .rows_affected());
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE audit_events SET details = $3 WHERE tenant_id = $1 AND seq = $2"
        )
        .bind(t)
        .bind(seq)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Every redaction of this log: (event, erasure event).
    pub async fn audit_redactions(&mut self) -> Result<Vec<(i64, i64)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT seq, by_seq FROM audit_redactions WHERE tenant_id = $1 ORDER BY seq"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }
}
