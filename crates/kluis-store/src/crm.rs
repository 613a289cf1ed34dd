//! CRM records, their lookups (blind indexes), versions, the trash and Idempotency-Key
//! outcomes. Same rule as the rest of [`TenantTx`]: every statement binds `self.tenant` as `$1`.

use crate::engine::Tx;
use crate::ids::{PipelineId, RecordId, SavedViewId, StageId, TagId, UserId};
use crate::rows::{
    CrmRecordRow, CrmVersionRow, CustomFieldRow, CustomValueRow, IdempotencyRow, OwnerScope,
    PipelineRow, RecordFilter, RecordWrite, SavedViewRow, StageRow, TagRow,
};
use crate::{Result, TenantTx, on_conn};

const RECORD_COLS: &str = "id, object_type, owner_id, company_id, revision, fields, created_at, \
                           updated_at, created_by, updated_by, deleted_at, deleted_by, \
                           pipeline_id, stage_id, amount_minor, currency, close_date, sensitive, \
                           due_date, done_at, priority";

/// Rows per multi-row statement: well inside SQLite's 32,766 and PostgreSQL's 65,535 bind
/// parameters for the widest row (18 columns).
pub(crate) const BULK_ROWS: usize = 500;

/// `(?, ?), (?, ?)` (SQLite) or `($1, $2), ($3, $4)` (PostgreSQL) for `rows` rows of `width`
/// parameters. SQLite gets anonymous parameters: it resolves numbered ones through a linear
/// list per parameter, quadratic in a statement with thousands of them.
pub(crate) fn placeholders(sqlite: bool, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let ps: Vec<String> = (0..width)
                .map(|k| {
                    if sqlite {
                        "?".to_owned()
                    } else {
                        format!("${}", r * width + k + 1)
                    }
                })
                .collect();
            format!("({})", ps.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn record_fields_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT id, fields FROM crm_records WHERE tenant_id = $1 AND {} ORDER BY id LIMIT $3",
        crate::tenant::keyset(has_cursor)
    )
}

pub(crate) fn record_state_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT id, revision, deleted_at, fields FROM crm_records WHERE tenant_id = $1 AND {} ORDER BY id LIMIT $3",
        crate::tenant::keyset(has_cursor)
    )
}

/// Versions after the cursor `($2, $3)`, a row-value comparison both engines seek.
pub(crate) fn versions_page_sql(has_cursor: bool) -> String {
    let cursor = if has_cursor {
        "(record_id, revision) > ($2, $3)"
    } else {
        "$2 IS NULL AND $3 = 0"
    };
    format!(
        "SELECT record_id, revision, fields FROM crm_versions WHERE tenant_id = $1 AND {cursor} \
         ORDER BY record_id, revision LIMIT $4"
    )
}

/// The parameters of [`list_records_sql`] bound to a query, in order (shared with the plan
/// test, so it explains the statement with the same binds).
macro_rules! bind_list_records {
    ($q:expr, $t:expr, $f:expr, $after:expr, $limit:expr) => {{
        let f: &$crate::rows::RecordFilter = $f;
        let (field, bidx) = f.lookup.as_ref().map_or((None, None), |(f, b)| {
            (Some(f.as_str()), Some(b.as_slice()))
        });
        let scope_user = match f.scope {
            $crate::rows::OwnerScope::All => None,
            $crate::rows::OwnerScope::Own(u) | $crate::rows::OwnerScope::Team(u) => Some(u),
        };
        $q.bind($t)
            .bind(f.object_type.as_deref())
            .bind(f.deleted)
            .bind($after)
            .bind(f.owner_id)
            .bind(f.company_id)
            .bind(f.created_from)
            .bind(f.created_to)
            .bind(f.updated_from)
            .bind(f.updated_to)
            .bind(field)
            .bind(bidx)
            .bind($limit)
            .bind(f.pipeline_id)
            .bind(f.stage_id)
            .bind(f.outcome.as_deref())
            .bind(f.close_from.as_deref())
            .bind(f.close_to.as_deref())
            .bind(f.associated_with)
            .bind(f.done)
            .bind(f.due_from.as_deref())
            .bind(f.due_to.as_deref())
            .bind(f.tag_id)
            .bind(f.priority.as_deref())
            .bind(scope_user)
    }};
}
#[cfg(feature = "testing")]
pub(crate) use bind_list_records;

/// The statement of [`TenantTx::list_records`]: cursor `$4`, binds in that method's order.
pub(crate) fn list_records_sql(f: &RecordFilter, has_cursor: bool) -> String {
    let (cmp, order) = if f.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    // Type, trash state and cursor as plain comparisons, so both engines seek the
    // (tenant_id, object_type, deleted_at, id) index; the other filters are residual. An
    // exact-match lookup instead drives from `crm_lookup` (a handful of rows) and joins the
    // records, so it never walks the type's index: `CROSS JOIN` makes SQLite keep that
    // order (its planner would otherwise walk the records to avoid a sort); PostgreSQL plans
    // it freely with its statistics.
    let r = if f.lookup.is_some() { "r." } else { "" };
    let object_type = if f.object_type.is_some() {
        format!("{r}object_type = $2")
    } else {
        "$2 IS NULL".to_owned()
    };
    let deleted = if f.deleted {
        format!("{r}deleted_at IS NOT NULL AND $3")
    } else {
        format!("{r}deleted_at IS NULL AND NOT $3")
    };
    let cursor = if has_cursor {
        format!("{r}id {cmp} $4")
    } else {
        "$4 IS NULL".to_owned()
    };
    let (from, lookup) = if f.lookup.is_some() {
        (
            "crm_lookup l CROSS JOIN crm_records r \
             WHERE r.tenant_id = l.tenant_id AND r.id = l.record_id \
             AND l.tenant_id = $1 AND l.object_type = $2 AND l.field = $11 AND l.bidx = $12 \
             AND r.tenant_id = $1"
                .to_owned(),
            "",
        )
    } else {
        (
            "crm_records WHERE tenant_id = $1".to_owned(),
            "AND $11 IS NULL AND $12 IS NULL",
        )
    };
    // Record scope as a plain comparison, so "own" seeks the (tenant, type, owner, id)
    // index; "team" asks the membership table once per statement.
    let scope = match f.scope {
        OwnerScope::All => "AND $25 IS NULL".to_owned(),
        OwnerScope::Own(_) => format!("AND {r}owner_id = $25"),
        OwnerScope::Team(_) => format!(
            "AND ({r}owner_id = $25 OR {r}owner_id IN (SELECT m2.user_id FROM team_members m1 \
                 JOIN team_members m2 ON m2.tenant_id = m1.tenant_id AND m2.team_id = m1.team_id \
                 WHERE m1.tenant_id = $1 AND m1.user_id = $25))"
        ),
    };
    let cols = crate::tenant::prefixed_cols(r, RECORD_COLS);
    format!(
        "SELECT {cols} FROM {from} {lookup} \
         AND {object_type} AND {deleted} \
         AND {cursor} AND ($5 IS NULL OR {r}owner_id = $5) \
         AND ($6 IS NULL OR {r}company_id = $6) \
         AND ($7 IS NULL OR {r}created_at >= $7) AND ($8 IS NULL OR {r}created_at < $8) \
         AND ($9 IS NULL OR {r}updated_at >= $9) AND ($10 IS NULL OR {r}updated_at < $10) \
         AND ($14 IS NULL OR {r}pipeline_id = $14) AND ($15 IS NULL OR {r}stage_id = $15) \
         AND ($16 IS NULL OR {r}stage_id IN (SELECT id FROM crm_stages WHERE tenant_id = $1 AND outcome = $16)) \
         AND ($17 IS NULL OR {r}close_date >= $17) AND ($18 IS NULL OR {r}close_date <= $18) \
         AND ($19 IS NULL OR {r}id IN (SELECT record_id FROM crm_associations WHERE tenant_id = $1 AND other_id = $19)) \
         AND ($20 IS NULL OR ({r}done_at IS NOT NULL) = $20) \
         AND ($21 IS NULL OR {r}due_date >= $21) AND ($22 IS NULL OR {r}due_date <= $22) \
         AND ($23 IS NULL OR {r}id IN (SELECT record_id FROM crm_record_tags WHERE tenant_id = $1 AND tag_id = $23)) \
         AND ($24 IS NULL OR {r}priority = $24) {scope} \
         ORDER BY {r}id {order} LIMIT $13"
    )
}

impl TenantTx {
    pub async fn insert_record(&mut self, r: &RecordWrite<'_>) -> Result<()> {
        self.insert_records(std::slice::from_ref(r)).await
    }

    /// New records, many per statement (bulk import).
    pub async fn insert_records(&mut self, rs: &[RecordWrite<'_>]) -> Result<()> {
        let t = self.tenant;
        for chunk in rs.chunks(BULK_ROWS) {
            let sql = format!(
                "INSERT INTO crm_records (tenant_id, id, object_type, owner_id, company_id, revision, \
                 fields, created_at, updated_at, created_by, updated_by, \
                 pipeline_id, stage_id, amount_minor, currency, close_date, sensitive, due_date, done_at, \
                 priority) VALUES {}",
                placeholders(self.is_sqlite(), chunk.len(), 20)
            );
            on_conn!(&mut self.tx, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for r in chunk {
                    q = q
                        .bind(t)
                        .bind(r.id)
                        .bind(r.object_type)
                        .bind(r.owner_id)
                        .bind(r.company_id)
                        .bind(r.revision)
                        .bind(r.fields)
                        .bind(r.at)
                        .bind(r.at)
                        .bind(r.by)
                        .bind(r.by)
                        .bind(r.deal.pipeline_id)
                        .bind(r.deal.stage_id)
                        .bind(r.deal.amount_minor)
                        .bind(r.deal.currency.as_deref())
                        .bind(r.deal.close_date.as_deref())
                        .bind(r.sensitive)
                        .bind(r.task.due_date.as_deref())
                        .bind(r.task.done_at)
                        .bind(r.deal.priority.as_deref());
                }
                q.execute(c).await?.rows_affected()
            });
        }
        Ok(())
    }

    /// Blind-index entries of new records (no earlier entries to replace), many per statement.
    pub async fn insert_lookups(
        &mut self,
        object_type: &str,
        entries: &[(RecordId, &str, &[u8])],
    ) -> Result<()> {
        let t = self.tenant;
        for chunk in entries.chunks(BULK_ROWS) {
            let sql = format!(
                "INSERT INTO crm_lookup (tenant_id, object_type, field, bidx, record_id) VALUES {} \
                 ON CONFLICT DO NOTHING",
                placeholders(self.is_sqlite(), chunk.len(), 5)
            );
            on_conn!(&mut self.tx, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (id, field, bidx) in chunk {
                    q = q
                        .bind(t)
                        .bind(object_type)
                        .bind(*field)
                        .bind(*bidx)
                        .bind(*id);
                }
                q.execute(c).await?.rows_affected()
            });
        }
        Ok(())
    }

    /// Live records of this type whose `field` has one of these blind indexes, as
    /// (blind index, record) pairs.
    pub async fn lookup_live_many(
        &mut self,
        object_type: &str,
        field: &str,
        bidxs: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, RecordId)>> {
        let t = self.tenant;
        if let Tx::Pg(_) = &self.tx {
            // One equality lookup per value. Inside a large import transaction PostgreSQL's
            // statistics still describe the tables as they were before it, and with `bidx IN
            // (...)` or `= ANY(...)` (also through a LATERAL join) it applied the list as a
            // filter over the whole (tenant, type, field) index range: seconds per batch at a
            // few hundred thousand rows (EXPLAIN ANALYZE). An equality is always an index
            // condition.
            let mut out = Vec::new();
            for b in bidxs {
                for id in self.lookup_live(object_type, field, b).await? {
                    out.push((b.clone(), id));
                }
            }
            return Ok(out);
        }
        let mut out = Vec::new();
        for chunk in bidxs.chunks(BULK_ROWS) {
            let list = vec!["?"; chunk.len()].join(", ");
            // SQLite seeks the index once per listed value.
            let sql = format!(
                "SELECT l.bidx, l.record_id FROM crm_lookup l JOIN crm_records r \
                   ON r.tenant_id = l.tenant_id AND r.id = l.record_id \
                 WHERE l.tenant_id = ? AND l.object_type = ? AND l.field = ? AND l.bidx IN ({list}) \
                   AND r.deleted_at IS NULL"
            );
            let rows: Vec<(Vec<u8>, RecordId)> = on_conn!(&mut self.tx, |c| {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(t)
                    .bind(object_type)
                    .bind(field);
                for b in chunk {
                    q = q.bind(b.as_slice());
                }
                q.fetch_all(c).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// A record of this type, live or in the trash.
    pub async fn record(
        &mut self,
        object_type: &str,
        id: RecordId,
    ) -> Result<Option<CrmRecordRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {RECORD_COLS} FROM crm_records WHERE tenant_id = $1 AND id = $2 AND object_type = $3"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .bind(object_type)
        .fetch_optional(c)
        .await?))
    }

    /// A record of any type (the trash works across types).
    pub async fn any_record(&mut self, id: RecordId) -> Result<Option<CrmRecordRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {RECORD_COLS} FROM crm_records WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Replaces a live record's state if it is still at `expected` revision (optimistic
    /// concurrency in the statement itself: a concurrent writer makes this return false).
    pub async fn update_record(&mut self, expected: i64, r: &RecordWrite<'_>) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE crm_records SET owner_id = $3, company_id = $4, revision = $5, fields = $6, \
             updated_at = $7, updated_by = $8, pipeline_id = $10, stage_id = $11, \
             amount_minor = $12, currency = $13, close_date = $14, sensitive = $15, \
             due_date = $16, done_at = $17, priority = $18 \
             WHERE tenant_id = $1 AND id = $2 AND revision = $9 AND deleted_at IS NULL"
        )
        .bind(t)
        .bind(r.id)
        .bind(r.owner_id)
        .bind(r.company_id)
        .bind(r.revision)
        .bind(r.fields)
        .bind(r.at)
        .bind(r.by)
        .bind(expected)
        .bind(r.deal.pipeline_id)
        .bind(r.deal.stage_id)
        .bind(r.deal.amount_minor)
        .bind(r.deal.currency.as_deref())
        .bind(r.deal.close_date.as_deref())
        .bind(r.sensitive)
        .bind(r.task.due_date.as_deref())
        .bind(r.task.done_at)
        .bind(r.deal.priority.as_deref())
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Moves a live record to the trash (`Some`) or restores it from there (`None`).
    pub async fn set_record_deleted(
        &mut self,
        id: RecordId,
        deleted: Option<(i64, &str)>,
    ) -> Result<bool> {
        let t = self.tenant;
        let (at, by) = deleted.map_or((None, None), |(a, b)| (Some(a), Some(b)));
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_records SET deleted_at = $3, deleted_by = $4 \
             WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NULL) = ($3 IS NOT NULL)"
        )
        .bind(t)
        .bind(id)
        .bind(at)
        .bind(by)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Deletes a record for good, with its versions and lookups.
    pub async fn purge_record(&mut self, id: RecordId) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "DELETE FROM crm_associations WHERE tenant_id = $1 AND (record_id = $2 OR other_id = $2)"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected()
        });
        for table in ["crm_lookup", "crm_versions", "crm_record_tags"] {
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
        // Contacts of a purged company lose the association, not their data.
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_records SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_records WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Trash entries deleted before `before`, oldest first.
    pub async fn trash_older_than(&mut self, before: i64, limit: i64) -> Result<Vec<RecordId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT id FROM crm_records WHERE tenant_id = $1 AND deleted_at IS NOT NULL \
             AND deleted_at < $2 ORDER BY deleted_at LIMIT $3"
        )
        .bind(t)
        .bind(before)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// One page of records in id (= creation) order after the cursor `after`.
    pub async fn list_records(
        &mut self,
        f: &RecordFilter,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Vec<CrmRecordRow>> {
        let t = self.tenant;
        let sql = list_records_sql(f, after.is_some());
        Ok(on_conn!(&mut self.tx, |c| bind_list_records!(
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())),
            t,
            f,
            after,
            limit
        )
        .fetch_all(c)
        .await?))
    }

    /// Replaces a record's blind-index entries.
    pub async fn set_lookups(
        &mut self,
        object_type: &str,
        id: RecordId,
        entries: &[(String, [u8; 32])],
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_lookup WHERE tenant_id = $1 AND record_id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        for (field, bidx) in entries {
            on_conn!(&mut self.tx, |c| sqlx::query(
                "INSERT INTO crm_lookup (tenant_id, object_type, field, bidx, record_id) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
            )
            .bind(t)
            .bind(object_type)
            .bind(field.as_str())
            .bind(&bidx[..])
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(())
    }

    /// Live records of this type whose `field` has this blind index.
    pub async fn lookup_live(
        &mut self,
        object_type: &str,
        field: &str,
        bidx: &[u8],
    ) -> Result<Vec<RecordId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT l.record_id FROM crm_lookup l JOIN crm_records r \
               ON r.tenant_id = l.tenant_id AND r.id = l.record_id \
             WHERE l.tenant_id = $1 AND l.object_type = $2 AND l.field = $3 AND l.bidx = $4 \
               AND r.deleted_at IS NULL ORDER BY l.record_id"
        )
        .bind(t)
        .bind(object_type)
        .bind(field)
        .bind(bidx)
        .fetch_all(c)
        .await?))
    }

    pub async fn insert_version(
        &mut self,
        id: RecordId,
        revision: i64,
        sealed: &[u8],
        at: i64,
        by: &str,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO crm_versions (tenant_id, record_id, revision, fields, changed_at, changed_by) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(t)
        .bind(id)
        .bind(revision)
        .bind(sealed)
        .bind(at)
        .bind(by)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Earlier versions of a record, newest first.
    pub async fn versions(&mut self, id: RecordId) -> Result<Vec<CrmVersionRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT revision, fields, changed_at, changed_by FROM crm_versions \
             WHERE tenant_id = $1 AND record_id = $2 ORDER BY revision DESC"
        )
        .bind(t)
        .bind(id)
        .fetch_all(c)
        .await?))
    }

    pub async fn idempotency(&mut self, key_hash: &[u8]) -> Result<Option<IdempotencyRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT request_hash, status, response, created_at FROM idempotency_keys \
             WHERE tenant_id = $1 AND key_hash = $2"
        )
        .bind(t)
        .bind(key_hash)
        .fetch_optional(c)
        .await?))
    }

    pub async fn insert_idempotency(
        &mut self,
        key_hash: &[u8],
        request_hash: &[u8],
        status: i32,
        sealed_response: &[u8],
        at: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key_hash, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(t)
        .bind(key_hash)
        .bind(request_hash)
        .bind(status)
        .bind(sealed_response)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn delete_idempotency(&mut self, key_hash: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key_hash = $2"
        )
        .bind(t)
        .bind(key_hash)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Forgets Idempotency-Key outcomes older than `before`.
    pub async fn expire_idempotency(&mut self, before: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2"
        )
        .bind(t)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }

    // ---- associations -----------------------------------------------------------------

    /// Replaces the records `id` is associated with (e.g. a deal's contacts).
    pub async fn set_associations(&mut self, id: RecordId, others: &[RecordId]) -> Result<()> {
        let others: Vec<uuid::Uuid> = others.iter().map(|o| o.0).collect();
        self.replace_links("crm_associations", "other_id", id, &others)
            .await
    }

    /// Replaces the rows `(tenant, id, other)` of a link table with `others`.
    async fn replace_links(
        &mut self,
        table: &'static str,
        other_col: &'static str,
        id: RecordId,
        others: &[uuid::Uuid],
    ) -> Result<()> {
        let t = self.tenant;
        let delete = format!("DELETE FROM {table} WHERE tenant_id = $1 AND record_id = $2");
        on_conn!(&mut self.tx, |c| sqlx::query(sqlx::AssertSqlSafe(
            delete.clone()
        ))
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        let insert = format!(
            "INSERT INTO {table} (tenant_id, record_id, {other_col}) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        );
        for other in others {
            on_conn!(&mut self.tx, |c| sqlx::query(sqlx::AssertSqlSafe(
                insert.clone()
            ))
            .bind(t)
            .bind(id)
            .bind(*other)
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(())
    }

    pub async fn associations(&mut self, id: RecordId) -> Result<Vec<RecordId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "SELECT other_id FROM crm_associations WHERE tenant_id = $1 AND record_id = $2 ORDER BY other_id"
        )
        .bind(t)
        .bind(id)
        .fetch_all(c)
        .await?
        }))
    }

    // ---- pipelines and stages ----------------------------------------------------------

    pub async fn pipelines(&mut self, object_type: &str) -> Result<Vec<PipelineRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, object_type, name, position, created_at, updated_at FROM crm_pipelines \
             WHERE tenant_id = $1 AND object_type = $2 ORDER BY position, id"
        )
        .bind(t)
        .bind(object_type)
        .fetch_all(c)
        .await?))
    }

    /// Stages of every pipeline of a type, in pipeline then stage order.
    pub async fn stages(&mut self, object_type: &str) -> Result<Vec<StageRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT s.id, s.pipeline_id, s.name, s.position, s.outcome FROM crm_stages s \
             JOIN crm_pipelines p ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id \
             WHERE s.tenant_id = $1 AND p.object_type = $2 ORDER BY p.position, p.id, s.position"
        )
        .bind(t)
        .bind(object_type)
        .fetch_all(c)
        .await?))
    }

    pub async fn upsert_pipeline(&mut self, p: &PipelineRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO crm_pipelines (tenant_id, id, object_type, name, position, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = $4, position = $5, updated_at = $7"
        )
        .bind(t)
        .bind(p.id)
        .bind(&p.object_type)
        .bind(&p.name)
        .bind(p.position)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn upsert_stage(&mut self, s: &StageRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO crm_stages (tenant_id, id, pipeline_id, name, position, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = $4, position = $5, outcome = $6"
        )
        .bind(t)
        .bind(s.id)
        .bind(s.pipeline_id)
        .bind(&s.name)
        .bind(s.position)
        .bind(&s.outcome)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn delete_stage(&mut self, id: StageId) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_stages WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn delete_pipeline(&mut self, id: PipelineId) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_stages WHERE tenant_id = $1 AND pipeline_id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_pipelines WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Records (live or in the trash) in a stage or pipeline: these cannot be removed.
    pub async fn records_in(
        &mut self,
        pipeline: Option<PipelineId>,
        stage: Option<StageId>,
    ) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM crm_records WHERE tenant_id = $1 \
             AND ($2 IS NULL OR pipeline_id = $2) AND ($3 IS NULL OR stage_id = $3)"
        )
        .bind(t)
        .bind(pipeline)
        .bind(stage)
        .fetch_one(c)
        .await?))
    }

    // ---- custom fields and values ------------------------------------------------------

    /// Definitions of one type (or all), in position order; deleted ones only if asked.
    pub async fn custom_fields(
        &mut self,
        object_type: Option<&str>,
        include_deleted: bool,
    ) -> Result<Vec<CustomFieldRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT id, object_type, key, label, kind, required, is_unique, options, position, \
                    created_at, updated_at, deleted_at FROM crm_custom_fields \
             WHERE tenant_id = $1 AND ($2 IS NULL OR object_type = $2) AND ($3 OR deleted_at IS NULL) \
             ORDER BY object_type, position, key"
        )
        .bind(t)
        .bind(object_type)
        .bind(include_deleted)
        .fetch_all(c)
        .await?
        }))
    }

    pub async fn upsert_custom_field(&mut self, f: &CustomFieldRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO crm_custom_fields (tenant_id, id, object_type, key, label, kind, required, \
               is_unique, options, position, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET label = $5, required = $7, is_unique = $8, \
               options = $9, position = $10, updated_at = $12, deleted_at = $13"
        )
        .bind(t)
        .bind(f.id)
        .bind(&f.object_type)
        .bind(&f.key)
        .bind(&f.label)
        .bind(&f.kind)
        .bind(f.required)
        .bind(f.is_unique)
        .bind(&f.options)
        .bind(f.position)
        .bind(f.created_at)
        .bind(f.updated_at)
        .bind(f.deleted_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn custom_values(&mut self) -> Result<Vec<CustomValueRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
                "SELECT key, value, updated_at, updated_by, deleted_at FROM crm_custom_values \
             WHERE tenant_id = $1 ORDER BY key",
            )
            .bind(t)
            .fetch_all(c)
            .await?
        }))
    }

    pub async fn put_custom_value(
        &mut self,
        key: &str,
        sealed: &[u8],
        at: i64,
        by: &str,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO crm_custom_values (tenant_id, key, value, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = $3, updated_at = $4, updated_by = $5"
        )
        .bind(t)
        .bind(key)
        .bind(sealed)
        .bind(at)
        .bind(by)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Moves a custom value to the trash (`Some(when)`) or back (`None`).
    pub async fn set_custom_value_deleted(&mut self, key: &str, at: Option<i64>) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_custom_values SET deleted_at = $3 WHERE tenant_id = $1 AND key = $2"
        )
        .bind(t)
        .bind(key)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Custom values in the trash since before `before`.
    pub async fn custom_values_trashed_before(&mut self, before: i64) -> Result<Vec<String>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT key FROM crm_custom_values WHERE tenant_id = $1 AND deleted_at < $2"
        )
        .bind(t)
        .bind(before)
        .fetch_all(c)
        .await?))
    }

    pub async fn delete_custom_value(&mut self, key: &str) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_custom_values WHERE tenant_id = $1 AND key = $2"
        )
        .bind(t)
        .bind(key)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    // ---- re-encryption (data-key rotation) ---------------------------------------------

    /// Sealed record field maps after `after`, in id order, trash included.
    pub async fn record_fields_batch(
        &mut self,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Vec<(RecordId, Vec<u8>)>> {
        let t = self.tenant;
        let sql = record_fields_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// `(id, revision, deleted_at, sealed fields)` of records (live and in the trash) in id
    /// order, for state verification.
    #[allow(clippy::type_complexity)]
    pub async fn record_state_batch(
        &mut self,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Vec<(RecordId, i64, Option<i64>, Vec<u8>)>> {
        let t = self.tenant;
        let sql = record_state_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Replaces a record's sealed fields with the same values under another key: not a change,
    /// so revision and times stay.
    pub async fn reseal_record(&mut self, id: RecordId, sealed: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_records SET fields = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Sealed versions after `(record, revision)`, in key order.
    pub async fn version_fields_batch(
        &mut self,
        after: Option<(RecordId, i64)>,
        limit: i64,
    ) -> Result<Vec<(RecordId, i64, Vec<u8>)>> {
        let t = self.tenant;
        let (id, rev) = after.map_or((None, 0), |(i, r)| (Some(i), r));
        let sql = versions_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(id)
        .bind(rev)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    pub async fn reseal_version(
        &mut self,
        id: RecordId,
        revision: i64,
        sealed: &[u8],
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE crm_versions SET fields = $4 WHERE tenant_id = $1 AND record_id = $2 AND revision = $3"
        )
        .bind(t)
        .bind(id)
        .bind(revision)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Every stored Idempotency-Key response (few: they expire after a day).
    pub async fn idempotency_responses(&mut self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT key_hash, response FROM idempotency_keys WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    pub async fn reseal_idempotency(&mut self, key_hash: &[u8], sealed: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE idempotency_keys SET response = $3 WHERE tenant_id = $1 AND key_hash = $2"
        )
        .bind(t)
        .bind(key_hash)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn reseal_custom_value(&mut self, key: &str, sealed: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_custom_values SET value = $3 WHERE tenant_id = $1 AND key = $2"
        )
        .bind(t)
        .bind(key)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    // ---- tags --------------------------------------------------------------------------

    /// Saved views of a table: the shared ones and `user`'s own, oldest first.
    pub async fn saved_views(
        &mut self,
        object_type: &str,
        user: UserId,
    ) -> Result<Vec<SavedViewRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, object_type, user_id, shared, view, created_at FROM crm_saved_views \
             WHERE tenant_id = $1 AND object_type = $2 AND (shared OR user_id = $3) ORDER BY id"
        )
        .bind(t)
        .bind(object_type)
        .bind(user)
        .fetch_all(c)
        .await?))
    }

    pub async fn saved_view(&mut self, id: SavedViewId) -> Result<Option<SavedViewRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, object_type, user_id, shared, view, created_at FROM crm_saved_views \
             WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Views `user` has made of a table (to bound them).
    pub async fn count_saved_views(&mut self, object_type: &str, user: UserId) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "SELECT count(*) FROM crm_saved_views WHERE tenant_id = $1 AND object_type = $2 AND user_id = $3"
        )
        .bind(t)
        .bind(object_type)
        .bind(user)
        .fetch_one(c)
        .await?
        }))
    }

    pub async fn insert_saved_view(&mut self, r: &SavedViewRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO crm_saved_views (tenant_id, id, object_type, user_id, shared, view, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t)
            .bind(r.id)
            .bind(&r.object_type)
            .bind(r.user_id)
            .bind(r.shared)
            .bind(&r.view)
            .bind(r.created_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Every saved view of the tenant (data-key rotation).
    pub async fn all_saved_views(&mut self) -> Result<Vec<SavedViewRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, object_type, user_id, shared, view, created_at FROM crm_saved_views \
             WHERE tenant_id = $1 ORDER BY id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    pub async fn reseal_saved_view(&mut self, id: SavedViewId, view: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_saved_views SET view = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(view)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn delete_saved_view(&mut self, id: SavedViewId) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM crm_saved_views WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn tags(&mut self, include_deleted: bool) -> Result<Vec<TagRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, name, name_bidx, color, created_at, updated_at, deleted_at FROM crm_tags \
             WHERE tenant_id = $1 AND ($2 OR deleted_at IS NULL) ORDER BY id"
        )
        .bind(t)
        .bind(include_deleted)
        .fetch_all(c)
        .await?))
    }

    pub async fn upsert_tag(&mut self, r: &TagRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO crm_tags (tenant_id, id, name, name_bidx, color, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = $3, name_bidx = $4, color = $5, \
               updated_at = $7, deleted_at = $8"
        )
        .bind(t)
        .bind(r.id)
        .bind(&r.name)
        .bind(&r.name_bidx)
        .bind(&r.color)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.deleted_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The tags of records, as (record, tag) pairs. A page of records is one range query (ids
    /// are time-ordered, so a page is a narrow range); a few scattered ids are looked up singly.
    pub async fn record_tags(&mut self, ids: &[RecordId]) -> Result<Vec<(RecordId, TagId)>> {
        let t = self.tenant;
        let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(Vec::new());
        };
        if ids.len() > 8 {
            let rows: Vec<(RecordId, TagId)> = on_conn!(&mut self.tx, |c| {
                sqlx::query_as(
                    "SELECT record_id, tag_id FROM crm_record_tags WHERE tenant_id = $1 \
                     AND record_id >= $2 AND record_id <= $3 ORDER BY record_id, tag_id",
                )
                .bind(t)
                .bind(*lo)
                .bind(*hi)
                .fetch_all(c)
                .await?
            });
            return Ok(rows.into_iter().filter(|(r, _)| ids.contains(r)).collect());
        }
        let mut out = Vec::new();
        for id in ids {
            let rows: Vec<(RecordId, TagId)> = on_conn!(&mut self.tx, |c| {
                sqlx::query_as(
                    "SELECT record_id, tag_id FROM crm_record_tags WHERE tenant_id = $1 \
                     AND record_id = $2 ORDER BY tag_id",
                )
                .bind(t)
                .bind(*id)
                .fetch_all(c)
                .await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    pub async fn set_record_tags(&mut self, id: RecordId, tags: &[TagId]) -> Result<()> {
        let tags: Vec<uuid::Uuid> = tags.iter().map(|t| t.0).collect();
        self.replace_links("crm_record_tags", "tag_id", id, &tags)
            .await
    }

    pub async fn reseal_tag_name(&mut self, id: TagId, sealed: &[u8]) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE crm_tags SET name = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(sealed)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }
}
