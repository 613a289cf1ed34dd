//! Per-tenant retention (issue 19): contacts inactive for N years are deleted or anonymised,
//! audit events are kept M years (6 by default), by the server's daily job.
//!
//! A contact's activity is its own last change or the newest change of a record linked to it
//! (a note, task, deal or ticket about them). Years are calendar years (the same date N years
//! later; 29 February counts from 28 February), so nothing is due a day early across a leap day.
//!
//! A policy only acts after a report of what it will do: a new or changed policy clears the
//! dry run, and the job's next pass (or `POST .../dry-run`) writes the report and changes
//! nothing. Passes after that apply the policy. Every step is audited.

use super::*;
use crate::db::retention::RetentionPolicyRow;

/// Audit events are kept this long unless the tenant chose otherwise (seed 003).
pub const DEFAULT_AUDIT_YEARS: u16 = 6;
/// Bounds of both year settings.
pub const YEARS: std::ops::RangeInclusive<u16> = 1..=50;
/// Contacts handled per transaction.
const BATCH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicyDoc {
    /// Years without activity after which a contact is deleted or anonymised; `null`: never.
    pub contact_inactive_years: Option<u16>,
    /// `delete` (purged for good, like the trash purge) or `anonymise` (fields, versions and
    /// files removed; the record stays as an empty contact in its links).
    pub contact_action: String,
    /// Years audit events are kept, 1 to 50 (default 6).
    pub audit_years: u16,
}

impl Default for RetentionPolicyDoc {
    fn default() -> Self {
        RetentionPolicyDoc {
            contact_inactive_years: None,
            contact_action: "delete".into(),
            audit_years: DEFAULT_AUDIT_YEARS,
        }
    }
}

/// What a pass did, or (dry run) would do. Ids and counts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionReport {
    pub at: String,
    pub dry_run: bool,
    /// Contacts inactive since before this time are due; none without a contact rule.
    pub contacts_cutoff: Option<String>,
    pub contact_action: String,
    /// The contacts due (dry run) or deleted / anonymised.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub contacts: Vec<RecordId>,
    /// Audit events before this time expire.
    pub audit_cutoff: String,
    /// Audit events older than the cutoff (dry run), or removed.
    pub audit_events: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionStatus {
    pub policy: RetentionPolicyDoc,
    /// The report of the current policy; `null`: the next pass makes it and changes nothing.
    pub dry_run: Option<RetentionReport>,
    pub last_run: Option<RetentionReport>,
}

/// `ms` minus `years` calendar years (29 February becomes 28 February).
pub fn years_before(ms: i64, years: u16) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return i64::MIN;
    };
    let y = t.year() - i32::from(years);
    let day = t.day().min(t.month().length(y));
    match time::Date::from_calendar_date(y, t.month(), day) {
        Ok(d) => (t.replace_date(d).unix_timestamp_nanos() / 1_000_000) as i64,
        Err(_) => i64::MIN,
    }
}

fn doc_of(r: &RetentionPolicyRow) -> RetentionPolicyDoc {
    RetentionPolicyDoc {
        contact_inactive_years: r.contact_inactive_years.and_then(|y| u16::try_from(y).ok()),
        contact_action: r.contact_action.clone(),
        audit_years: u16::try_from(r.audit_years).unwrap_or(DEFAULT_AUDIT_YEARS),
    }
}

fn report_of(json: Option<&str>) -> Option<RetentionReport> {
    json.and_then(|j| serde_json::from_str(j).ok())
}

fn encode(r: &RetentionReport) -> Result<String> {
    serde_json::to_string(r).map_err(|_| Error::internal("retention report encoding"))
}

impl Kluis {
    pub async fn retention_status(&self, actor: &Actor) -> Result<RetentionStatus> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(match tx.retention_policy().await? {
            Some(r) => RetentionStatus {
                policy: doc_of(&r),
                dry_run: report_of(r.dry_run_report.as_deref()),
                last_run: report_of(r.last_run_report.as_deref()),
            },
            None => RetentionStatus {
                policy: RetentionPolicyDoc::default(),
                dry_run: None,
                last_run: None,
            },
        })
    }

    /// Sets the policy; it acts only after its dry run (see the module text).
    pub async fn set_retention_policy(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: RetentionPolicyDoc,
    ) -> Result<RetentionStatus> {
        actor.require(Permission::SettingsManage)?;
        if let Some(y) = doc.contact_inactive_years
            && !YEARS.contains(&y)
        {
            return Err(Error::validation(
                "contact_inactive_years",
                "invalid_years",
                "a number of years from 1 to 50, or null for never",
            ));
        }
        if !YEARS.contains(&doc.audit_years) {
            return Err(Error::validation(
                "audit_years",
                "invalid_years",
                "a number of years from 1 to 50",
            ));
        }
        if !matches!(doc.contact_action.as_str(), "delete" | "anonymise") {
            return Err(Error::validation(
                "contact_action",
                "invalid_action",
                "delete or anonymise",
            ));
        }
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let old = tx.retention_policy().await?;
        let row = RetentionPolicyRow {
            contact_inactive_years: doc.contact_inactive_years.map(i32::from),
            contact_action: doc.contact_action.clone(),
            audit_years: i32::from(doc.audit_years),
            updated_at: self.now(),
            dry_run_at: None,
            dry_run_report: None,
            last_run_at: old.as_ref().and_then(|o| o.last_run_at),
            last_run_report: old.as_ref().and_then(|o| o.last_run_report.clone()),
        };
        tx.put_retention_policy(&row).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("settings.retention.update", "settings", "retention")
            .with(json!({"old": old.as_ref().map(doc_of), "new": doc}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(RetentionStatus {
            policy: doc,
            dry_run: None,
            last_run: report_of(row.last_run_report.as_deref()),
        })
    }

    /// Reports what the policy would do now, and records the report (which lets the job act).
    pub async fn retention_dry_run(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<RetentionReport> {
        actor.require(Permission::SettingsManage)?;
        self.dry_run_in(actor.tenant(), &actor_label(actor), ctx, None)
            .await
    }

    async fn dry_run_in(
        &self,
        tenant: TenantId,
        actor: &str,
        ctx: &RequestContext,
        default_audit_cutoff: Option<i64>,
    ) -> Result<RetentionReport> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let now = self.now();
        let row = tx.retention_policy().await?;
        let doc = row.as_ref().map(doc_of).unwrap_or_default();
        let keys = self.keys(&mut tx).await?;
        let contacts_cutoff = doc.contact_inactive_years.map(|y| years_before(now, y));
        let contacts = match contacts_cutoff {
            Some(c) => {
                self.due_contacts(&mut tx, &keys, c, &Default::default())
                    .await?
            }
            None => Vec::new(),
        };
        let audit_cutoff = match (&row, default_audit_cutoff) {
            (None, Some(d)) => d,
            _ => years_before(now, doc.audit_years),
        };
        let report = RetentionReport {
            at: rfc3339(now),
            dry_run: true,
            contacts_cutoff: contacts_cutoff.map(rfc3339),
            contact_action: doc.contact_action.clone(),
            contacts,
            audit_cutoff: rfc3339(audit_cutoff),
            audit_events: count_events_before(&mut tx, audit_cutoff).await?,
        };
        let mut stored = row.unwrap_or(RetentionPolicyRow {
            contact_inactive_years: None,
            contact_action: doc.contact_action.clone(),
            audit_years: i32::from(doc.audit_years),
            updated_at: now,
            dry_run_at: None,
            dry_run_report: None,
            last_run_at: None,
            last_run_report: None,
        });
        stored.dry_run_at = Some(now);
        stored.dry_run_report = Some(encode(&report)?);
        tx.put_retention_policy(&stored).await?;
        let ev = Event::ok("retention.dry_run", "settings", "retention").with(json!({
            "contacts": report.contacts.len(),
            "contact_action": report.contact_action,
            "audit_events": report.audit_events,
        }));
        self.audit(&mut tx, &keys, actor, ctx, ev).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Contacts whose activity (their own, or of a record linked to them) is older than
    /// `cutoff`, skipping `done` and contacts with no fields left (already anonymised).
    async fn due_contacts(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        cutoff: i64,
        done: &std::collections::HashSet<RecordId>,
    ) -> Result<Vec<RecordId>> {
        let mut out = Vec::new();
        for (id, own, linked) in tx.contact_activity().await? {
            if own.max(linked.unwrap_or(i64::MIN)) >= cutoff || done.contains(&id) {
                continue;
            }
            let Some(row) = tx.any_record(id).await? else {
                continue;
            };
            if open_fields(keys, &row)?.is_empty() {
                continue;
            }
            out.push(id);
        }
        Ok(out)
    }

    /// The daily job for one tenant: without a policy of its own, audit retention at the
    /// server's `default_audit_cutoff`; with one whose dry run is still to be made, the dry
    /// run; otherwise the policy, applied.
    pub async fn run_retention(
        &self,
        tenant: TenantId,
        default_audit_cutoff: i64,
    ) -> Result<RetentionReport> {
        let ctx = RequestContext::default();
        let row = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            tx.retention_policy().await?
        };
        let Some(row) = row else {
            return Ok(RetentionReport {
                at: rfc3339(self.now()),
                dry_run: false,
                contacts_cutoff: None,
                contact_action: "delete".into(),
                contacts: Vec::new(),
                audit_cutoff: rfc3339(default_audit_cutoff),
                audit_events: self.expire_counted(tenant, default_audit_cutoff).await?,
            });
        };
        if row.dry_run_at.is_none() {
            return self.dry_run_in(tenant, "retention", &ctx, None).await;
        }
        let doc = doc_of(&row);
        let now = self.now();
        let contacts_cutoff = doc.contact_inactive_years.map(|y| years_before(now, y));
        let mut done = std::collections::HashSet::new();
        let mut handled = Vec::new();
        if let Some(cutoff) = contacts_cutoff {
            loop {
                let mut tx = self.store.tenant(tenant).begin().await?;
                let keys = self.keys(&mut tx).await?;
                let due = self.due_contacts(&mut tx, &keys, cutoff, &done).await?;
                if due.is_empty() {
                    break;
                }
                let mut blobs = Vec::new();
                for id in due.into_iter().take(BATCH) {
                    done.insert(id);
                    blobs.extend(self.purge_record_files(&mut tx, id).await?);
                    let ev = if doc.contact_action == "anonymise" {
                        let plain = serde_json::to_vec(&Map::new())
                            .map_err(|_| Error::internal("encoding"))?;
                        let sealed =
                            keys.seal("crm_records", "fields", record_ctx_id(id), &plain)?;
                        tx.anonymise_record(id, &sealed, self.now(), "retention")
                            .await?;
                        event(
                            ObjectType::Contact,
                            "anonymise",
                            id,
                            json!({"reason": "retention", "inactive_since_before": rfc3339(cutoff), "versions_dropped": true}),
                        )
                    } else {
                        tx.purge_record(id).await?;
                        event(
                            ObjectType::Contact,
                            "purge",
                            id,
                            json!({"reason": "retention", "inactive_since_before": rfc3339(cutoff)}),
                        )
                    };
                    self.audit(&mut tx, &keys, "retention", &ctx, ev).await?;
                    handled.push(id);
                }
                tx.commit().await?;
                crate::files::remove_blobs(blobs).await;
            }
        }
        let audit_cutoff = years_before(now, doc.audit_years);
        let audit_events = self.expire_counted(tenant, audit_cutoff).await?;
        let report = RetentionReport {
            at: rfc3339(now),
            dry_run: false,
            contacts_cutoff: contacts_cutoff.map(rfc3339),
            contact_action: doc.contact_action.clone(),
            contacts: handled,
            audit_cutoff: rfc3339(audit_cutoff),
            audit_events,
        };
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut row = tx.retention_policy().await?.unwrap_or(row);
        row.last_run_at = Some(now);
        row.last_run_report = Some(encode(&report)?);
        tx.put_retention_policy(&row).await?;
        let ev = Event::ok("retention.run", "settings", "retention").with(json!({
            "contacts": report.contacts.len(),
            "contact_action": report.contact_action,
            "audit_events": report.audit_events,
        }));
        self.audit(&mut tx, &keys, "retention", &ctx, ev).await?;
        tx.commit().await?;
        if !report.contacts.is_empty() {
            self.checkpoint_soon(tenant);
        }
        Ok(report)
    }
}

impl Kluis {
    /// [`Kluis::expire_log`], returning how many events it removed.
    async fn expire_counted(&self, tenant: TenantId, cutoff: i64) -> Result<i64> {
        let before = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            tx.audit_truncation().await?.0
        };
        let after = self.expire_log(tenant, cutoff).await?.unwrap_or(before);
        Ok(after - before)
    }
}

/// Audit events recorded before `cutoff` (still stored).
async fn count_events_before(tx: &mut TenantTx, cutoff: i64) -> Result<i64> {
    let mut n = 0;
    let mut after = None;
    loop {
        let batch = tx
            .audit_events(after, 5000, &crate::db::rows::AuditFilter::default())
            .await?;
        let Some(last) = batch.last() else {
            return Ok(n);
        };
        after = Some(last.seq);
        for r in &batch {
            if r.at >= cutoff {
                return Ok(n);
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn years_are_calendar_years() {
        assert_eq!(
            years_before(ms("2026-12-07T10:00:00Z"), 2),
            ms("2024-12-07T10:00:00Z")
        );
        assert_eq!(
            years_before(ms("2028-02-29T00:00:00Z"), 1),
            ms("2027-02-28T00:00:00Z")
        );
        assert_eq!(
            years_before(ms("2026-03-01T00:00:00Z"), 6),
            ms("2020-03-01T00:00:00Z")
        );
    }
}
