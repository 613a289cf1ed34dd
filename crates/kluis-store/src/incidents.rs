//! The incident and breach register (platform data).

use uuid::Uuid;

use crate::{PlatformTx, Result, TenantId, on_conn};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: Uuid,
    pub severity: String,
    pub title: String,
    pub description: String,
    pub data_categories: String,
    pub personal_data_breach: bool,
    pub subjects_estimate: Option<i64>,
    pub consequences: String,
    pub measures: String,
    pub detected_at: i64,
    pub created_at: i64,
    pub created_by: String,
    pub customer_due_at: i64,
    pub authority_due_at: Option<i64>,
    pub customers_notified_at: Option<i64>,
    pub authority_notified_at: Option<i64>,
    pub authority_reference: Option<String>,
    pub closed_at: Option<i64>,
}

const COLUMNS: &str = "id, severity, title, description, data_categories, personal_data_breach, \
     subjects_estimate, consequences, measures, detected_at, created_at, created_by, \
     customer_due_at, authority_due_at, customers_notified_at, authority_notified_at, \
     authority_reference, closed_at";

impl PlatformTx {
    pub async fn insert_incident(&mut self, r: &IncidentRow, tenants: &[TenantId]) -> Result<()> {
        let sql = format!(
            "INSERT INTO incidents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        on_conn!(&mut self.tx, |c| sqlx::query(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(r.id)
        .bind(&r.severity)
        .bind(&r.title)
        .bind(&r.description)
        .bind(&r.data_categories)
        .bind(r.personal_data_breach)
        .bind(r.subjects_estimate)
        .bind(&r.consequences)
        .bind(&r.measures)
        .bind(r.detected_at)
        .bind(r.created_at)
        .bind(&r.created_by)
        .bind(r.customer_due_at)
        .bind(r.authority_due_at)
        .bind(r.customers_notified_at)
        .bind(r.authority_notified_at)
        .bind(&r.authority_reference)
        .bind(r.closed_at)
        .execute(c)
        .await?
        .rows_affected());
        for t in tenants {
            on_conn!(&mut self.tx, |c| sqlx::query(
                "INSERT INTO incident_tenants (incident_id, tenant_id) VALUES ($1, $2)"
            )
            .bind(r.id)
            .bind(*t)
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(())
    }

    pub async fn incident(&mut self, id: Uuid) -> Result<Option<IncidentRow>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Incidents, most recently detected first.
    pub async fn incidents(&mut self, limit: i64) -> Result<Vec<IncidentRow>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents ORDER BY detected_at DESC, id LIMIT $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    pub async fn incident_tenants(&mut self, id: Uuid) -> Result<Vec<TenantId>> {
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT tenant_id FROM incident_tenants WHERE incident_id = $1 ORDER BY tenant_id"
        )
        .bind(id)
        .fetch_all(c)
        .await?))
    }

    /// Records the steps taken (notices sent, authority notified, closed).
    pub async fn update_incident_steps(&mut self, r: &IncidentRow) -> Result<bool> {
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE incidents SET customers_notified_at = $2, authority_notified_at = $3, \
             authority_reference = $4, closed_at = $5, measures = $6 WHERE id = $1"
        )
        .bind(r.id)
        .bind(r.customers_notified_at)
        .bind(r.authority_notified_at)
        .bind(&r.authority_reference)
        .bind(r.closed_at)
        .bind(&r.measures)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }
}
