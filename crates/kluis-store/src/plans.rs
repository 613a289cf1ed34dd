//! Query plans of the keyset (cursor) pages, for the test that proves each one seeks its
//! index instead of walking the tenant's rows from the start (quadratic over a full walk).
//! Each plan is of the statement text and binds the real method uses.

use crate::crm::{bind_list_records, list_records_sql, record_fields_page_sql};
use crate::crm::{record_state_page_sql, versions_page_sql};
use crate::engine::Tx;
use crate::rows::{AuditFilter, RecordFilter};
use crate::tenant::{AUDIT_LEAF_HASHES, api_keys_page_sql, audit_page_sql, bind_audit_page};
use crate::tenant::{sessions_page_sql, users_page_sql};
use crate::{PlatformTx, Result, TenantTx, on_conn};
use sqlx::Row;
use uuid::Uuid;

/// `EXPLAIN QUERY PLAN` (SQLite: the `detail` lines) or `EXPLAIN` (PostgreSQL) of `$sql` with
/// the binds `$bind` applies to a query, one line per plan row. On PostgreSQL sequential scans
/// and sorts are priced out first: on a test's near-empty tables a scan is cheapest whatever
/// the statement, while the question here is whether an index path exists that seeks the
/// cursor and yields the order.
macro_rules! explain {
    ($tx:expr, $sql:expr, |$q:ident| $bind:expr) => {{
        let tx: &mut Tx = $tx;
        let pg = matches!(tx, Tx::Pg(_));
        if pg {
            on_conn!(&mut *tx, |c| {
                sqlx::raw_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
                    .execute(&mut *c)
                    .await?;
            });
        }
        let sql = format!(
            "{} {}",
            if pg { "EXPLAIN" } else { "EXPLAIN QUERY PLAN" },
            $sql
        );
        let col: usize = if pg { 0 } else { 3 };
        let rows = on_conn!(&mut *tx, |c| {
            let $q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            let rows = $bind.fetch_all(&mut *c).await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(col))
                .collect::<std::result::Result<Vec<_>, _>>()?
        });
        rows.join("\n")
    }};
}

impl TenantTx {
    /// `(name, plan)` of every keyset page of this tenant's tables, cursor set.
    pub async fn keyset_plans(&mut self) -> Result<Vec<(&'static str, String)>> {
        let t = self.tenant;
        let after = Some(Uuid::nil());
        let seq = Some(5i64);
        let mut out = Vec::new();
        let none = AuditFilter::default();
        let plan = explain!(&mut self.tx, audit_page_sql(true, &none), |q| {
            bind_audit_page!(q, t, seq, &none, 100i64)
        });
        out.push(("audit_events", plan));
        let by_actor = AuditFilter {
            actor: Some("user:x".into()),
            ..AuditFilter::default()
        };
        let plan = explain!(&mut self.tx, audit_page_sql(true, &by_actor), |q| {
            bind_audit_page!(q, t, seq, &by_actor, 100i64)
        });
        out.push(("audit_events_by_actor", plan));
        let plan = explain!(&mut self.tx, AUDIT_LEAF_HASHES, |q| q
            .bind(t)
            .bind(5i64)
            .bind(100i64));
        out.push(("audit_leaf_hashes", plan));
        for (name, sql) in [
            ("users", users_page_sql(true)),
            ("sessions", sessions_page_sql(true)),
            ("api_keys", api_keys_page_sql(true)),
            ("record_fields", record_fields_page_sql(true)),
            ("record_state", record_state_page_sql(true)),
        ] {
            let plan = explain!(&mut self.tx, sql, |q| q.bind(t).bind(after).bind(100i64));
            out.push((name, plan));
        }
        let plan = explain!(&mut self.tx, versions_page_sql(true), |q| q
            .bind(t)
            .bind(after)
            .bind(3i64)
            .bind(100i64));
        out.push(("versions", plan));
        for (name, descending) in [("records", false), ("records_desc", true)] {
            let f = RecordFilter {
                object_type: Some("contact".into()),
                descending,
                ..RecordFilter::default()
            };
            let plan = explain!(&mut self.tx, list_records_sql(&f, true), |q| {
                bind_list_records!(q, t, &f, after, 100i64)
            });
            out.push((name, plan));
        }
        Ok(out)
    }
}

impl PlatformTx {
    /// The plan of the tenant directory's keyset page, cursor set.
    pub async fn keyset_plans(&mut self) -> Result<Vec<(&'static str, String)>> {
        let after = Some(Uuid::nil());
        let plan = explain!(&mut self.tx, crate::platform::tenants_page_sql(true), |q| q
            .bind(after)
            .bind(100i64));
        Ok(vec![("tenants", plan)])
    }
}
