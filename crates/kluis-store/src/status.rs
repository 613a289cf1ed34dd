//! Status page notices (platform data).

use uuid::Uuid;

use crate::{PlatformTx, Result, on_conn};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoticeRow {
    pub id: Uuid,
    pub kind: String,
    pub impact: String,
    pub components: String,
    pub title_en: String,
    pub title_nl: String,
    pub body_en: String,
    pub body_nl: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, kind, impact, components, title_en, title_nl, body_en, body_nl, \
                       starts_at, ends_at, resolved_at, created_at";

impl PlatformTx {
    pub async fn insert_notice(&mut self, n: &NoticeRow) -> Result<()> {
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO status_notices (id, kind, impact, components, title_en, title_nl, body_en, \
             body_nl, starts_at, ends_at, resolved_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
        .bind(n.id)
        .bind(&n.kind)
        .bind(&n.impact)
        .bind(&n.components)
        .bind(&n.title_en)
        .bind(&n.title_nl)
        .bind(&n.body_en)
        .bind(&n.body_nl)
        .bind(n.starts_at)
        .bind(n.ends_at)
        .bind(n.resolved_at)
        .bind(n.created_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Marks a notice resolved at `now`; false when there is no such open notice.
    pub async fn resolve_notice(&mut self, id: Uuid, now: i64) -> Result<bool> {
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE status_notices SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Notices that matter at `now`: open ones, ones resolved or ended after `since`, and
    /// planned ones not ended yet; newest start first.
    pub async fn live_notices(&mut self, now: i64, since: i64) -> Result<Vec<NoticeRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM status_notices WHERE \
             (resolved_at IS NULL AND (ends_at IS NULL OR ends_at > $1)) \
             OR resolved_at > $2 OR (resolved_at IS NULL AND ends_at > $2) \
             ORDER BY starts_at DESC LIMIT 200"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(now)
        .bind(since)
        .fetch_all(c)
        .await?))
    }
}
