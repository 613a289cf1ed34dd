//! The incident and breach register (issue 19; GDPR art. 33-34, seed 003): operators record
//! incidents with a severity, the affected organisations and the data categories; Kluis
//! computes the deadlines (customer notice within 2 business days, the authority within 72
//! hours, see [`deadlines`]), shows what is overdue, tells the affected organisations' owners
//! by email in their language, and exports what the authority asks for. Every step is in the
//! platform audit log; a notice also in the log of each organisation told.

pub mod deadlines;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::Event;
use crate::db::incidents::IncidentRow;
use crate::mail::templates::{self, IncidentNotice, Recipient};
use crate::tenants::PlatformActor;
use crate::users::rfc3339;
use crate::{Error, ErrorKind, Kluis, RequestContext, Result, TenantId};

/// Incidents listed at most.
const LIST_MAX: i64 = 500;

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub title: String,
    pub description: String,
    /// What kinds of data are concerned, e.g. `contact details`, `notes`.
    #[serde(default)]
    pub data_categories: Vec<String>,
    /// Whether personal data was breached (then the authority deadline applies).
    pub personal_data_breach: bool,
    pub subjects_estimate: Option<i64>,
    /// Likely consequences (art. 33(3)(c)).
    #[serde(default)]
    pub consequences: String,
    /// Measures taken or proposed (art. 33(3)(d)).
    #[serde(default)]
    pub measures: String,
    /// When the operator became aware (RFC 3339); default now.
    pub detected_at: Option<String>,
    /// The organisations affected.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub tenant_ids: Vec<TenantId>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorityNotice {
    /// The authority's reference of the notification.
    pub reference: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: Uuid,
    pub severity: String,
    pub title: String,
    pub description: String,
    pub data_categories: Vec<String>,
    pub personal_data_breach: bool,
    pub subjects_estimate: Option<i64>,
    pub consequences: String,
    pub measures: String,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub tenant_ids: Vec<TenantId>,
    pub detected_at: String,
    pub created_at: String,
    pub created_by: String,
    /// 24:00 Amsterdam time of the second business day after detection.
    pub customer_notice_due: String,
    pub customers_notified_at: Option<String>,
    /// 72 hours after detection; only for personal-data breaches.
    pub authority_due: Option<String>,
    pub authority_notified_at: Option<String>,
    pub authority_reference: Option<String>,
    pub closed_at: Option<String>,
    /// Past due and not done (now, or done late: see `*_late`).
    pub customer_notice_overdue: bool,
    pub authority_overdue: bool,
    pub customer_notice_late: bool,
    pub authority_late: bool,
}

fn text(field: &str, s: &str, max: usize, required: bool) -> Result<String> {
    let s = s.trim();
    if (required && s.is_empty())
        || s.chars().count() > max
        || s.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Error::validation(
            field,
            "invalid_text",
            format!("{} to {max} characters", u8::from(required)),
        ));
    }
    Ok(s.to_owned())
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_of(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn view(r: IncidentRow, tenants: Vec<TenantId>, now: i64) -> Result<Incident> {
    let data_categories: Vec<String> = serde_json::from_str(&r.data_categories)
        .map_err(|_| Error::internal("stored incident unreadable"))?;
    let late = |due: Option<i64>, done: Option<i64>| match (due, done) {
        (Some(due), Some(done)) => done > due,
        _ => false,
    };
    let overdue =
        |due: Option<i64>, done: Option<i64>| due.is_some_and(|d| done.is_none() && now > d);
    Ok(Incident {
        customer_notice_overdue: overdue(Some(r.customer_due_at), r.customers_notified_at),
        authority_overdue: overdue(r.authority_due_at, r.authority_notified_at),
        customer_notice_late: late(Some(r.customer_due_at), r.customers_notified_at),
        authority_late: late(r.authority_due_at, r.authority_notified_at),
        id: r.id,
        severity: r.severity,
        title: r.title,
        description: r.description,
        data_categories,
        personal_data_breach: r.personal_data_breach,
        subjects_estimate: r.subjects_estimate,
        consequences: r.consequences,
        measures: r.measures,
        tenant_ids: tenants,
        detected_at: rfc3339(r.detected_at),
        created_at: rfc3339(r.created_at),
        created_by: r.created_by,
        customer_notice_due: rfc3339(r.customer_due_at),
        customers_notified_at: r.customers_notified_at.map(rfc3339),
        authority_due: r.authority_due_at.map(rfc3339),
        authority_notified_at: r.authority_notified_at.map(rfc3339),
        authority_reference: r.authority_reference,
        closed_at: r.closed_at.map(rfc3339),
    })
}

impl Kluis {
    pub async fn record_incident(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        n: NewIncident,
    ) -> Result<Incident> {
        let now = self.now();
        if !SEVERITIES.contains(&n.severity.as_str()) {
            return Err(Error::validation(
                "severity",
                "invalid_severity",
                "low, medium, high or critical",
            ));
        }
        let detected = match n.detected_at.as_deref() {
            Some(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    Error::validation("detected_at", "invalid_time", "an RFC 3339 time")
                })?,
            None => time_of(now),
        };
        if ms_of(detected) > now {
            return Err(Error::validation(
                "detected_at",
                "invalid_time",
                "detection cannot be in the future",
            ));
        }
        let mut categories = Vec::new();
        for c in &n.data_categories {
            categories.push(text("data_categories", c, 100, true)?);
        }
        if n.subjects_estimate.is_some_and(|s| s < 0) {
            return Err(Error::validation(
                "subjects_estimate",
                "invalid_number",
                "zero or more",
            ));
        }
        let mut tenants = n.tenant_ids.clone();
        tenants.sort_by_key(|t| t.0);
        tenants.dedup();
        let mut p = self.store.platform().await?;
        for t in &tenants {
            if p.tenant(*t).await?.is_none() {
                return Err(Error::validation(
                    "tenant_ids",
                    "unknown_tenant",
                    "no such organisation",
                ));
            }
        }
        let row = IncidentRow {
            id: Uuid::now_v7(),
            severity: n.severity.clone(),
            title: text("title", &n.title, 200, true)?,
            description: text("description", &n.description, 10_000, true)?,
            data_categories: serde_json::to_string(&categories)
                .map_err(|_| Error::internal("encoding"))?,
            personal_data_breach: n.personal_data_breach,
            subjects_estimate: n.subjects_estimate,
            consequences: text("consequences", &n.consequences, 10_000, false)?,
            measures: text("measures", &n.measures, 10_000, false)?,
            detected_at: ms_of(detected),
            created_at: now,
            created_by: by.label().to_owned(),
            customer_due_at: ms_of(deadlines::customer_notice_due(detected)),
            authority_due_at: n
                .personal_data_breach
                .then(|| ms_of(deadlines::authority_due(detected))),
            customers_notified_at: None,
            authority_notified_at: None,
            authority_reference: None,
            closed_at: None,
        };
        p.insert_incident(&row, &tenants).await?;
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("incident.record", "incident", row.id).with(json!({
            "severity": row.severity,
            "personal_data_breach": row.personal_data_breach,
            "tenants": tenants.len(),
            "customer_notice_due": rfc3339(row.customer_due_at),
            "authority_due": row.authority_due_at.map(rfc3339),
        }));
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        view(row, tenants, now)
    }

    pub async fn list_incidents(&self, _by: &PlatformActor) -> Result<Vec<Incident>> {
        let now = self.now();
        let mut p = self.store.platform_read().await?;
        let mut out = Vec::new();
        for r in p.incidents(LIST_MAX).await? {
            let tenants = p.incident_tenants(r.id).await?;
            out.push(view(r, tenants, now)?);
        }
        p.commit().await?;
        Ok(out)
    }

    pub async fn incident(&self, _by: &PlatformActor, id: Uuid) -> Result<Incident> {
        let mut p = self.store.platform_read().await?;
        let r = p.incident(id).await?.ok_or_else(Error::not_found)?;
        let tenants = p.incident_tenants(id).await?;
        p.commit().await?;
        view(r, tenants, self.now())
    }

    /// Emails the owners of every affected organisation, each in their language, through the
    /// outbox; records the notice in each organisation's log and the step in the platform log.
    pub async fn notify_incident_customers(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Incident> {
        if self.mail.is_none() {
            return Err(crate::mail::mail_not_configured());
        }
        let current = self.incident(by, id).await?;
        let mut mails = 0;
        for t in &current.tenant_ids {
            let organisation = self.organisation_name(*t).await?;
            let mut tx = self.store.tenant(*t).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let mut owners = 0;
            let mut after = None;
            loop {
                let users = tx.list_users(after, 200).await?;
                let Some(last) = users.last() else { break };
                after = Some(last.id);
                for u in users.iter().filter(|u| {
                    u.role == kluis_types::Role::Owner && u.status == kluis_types::Status::Active
                }) {
                    let (email, name) = self.recipient_of(&keys, u).await?;
                    let locale = self.locale_for(&mut tx, u.id).await?;
                    let mail = templates::incident_notice(
                        locale,
                        &Recipient {
                            email: &email,
                            name: &name,
                            organisation: &organisation,
                        },
                        &IncidentNotice {
                            severity: &current.severity,
                            title: &current.title,
                            description: &current.description,
                            detected_utc: &current.detected_at,
                            categories: &current.data_categories,
                            personal_data_breach: current.personal_data_breach,
                            measures: &current.measures,
                        },
                    );
                    self.queue_mail(&mut tx, &keys, "incident_notice", &mail)
                        .await?;
                    owners += 1;
                }
            }
            let ev = Event::ok("incident.notice", "incident", id).with(json!({
                "severity": current.severity,
                "owners": owners,
                "personal_data_breach": current.personal_data_breach,
            }));
            self.audit(&mut tx, &keys, by.label(), ctx, ev).await?;
            tx.commit().await?;
            self.wake_mailer(*t);
            mails += owners;
        }
        let now = self.now();
        self.incident_step(
            by,
            ctx,
            id,
            "incident.notify_customers",
            json!({"tenants": current.tenant_ids.len(), "mails": mails}),
            |r| {
                r.customers_notified_at = Some(now);
                Ok(())
            },
        )
        .await
    }

    /// Records that the authority was notified, with its reference.
    pub async fn incident_authority_notified(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
        n: AuthorityNotice,
    ) -> Result<Incident> {
        let reference = text("reference", &n.reference, 200, true)?;
        let now = self.now();
        self.incident_step(
            by,
            ctx,
            id,
            "incident.authority_notified",
            json!({"reference": reference}),
            |r| {
                if !r.personal_data_breach {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        "not_a_breach",
                        "only personal-data breaches are notified to the authority",
                    ));
                }
                r.authority_notified_at = Some(now);
                r.authority_reference = Some(reference.clone());
                Ok(())
            },
        )
        .await
    }

    pub async fn close_incident(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Incident> {
        let now = self.now();
        self.incident_step(by, ctx, id, "incident.close", json!({}), |r| {
            if r.closed_at.is_some() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "closed",
                    "the incident is closed",
                ));
            }
            r.closed_at = Some(now);
            Ok(())
        })
        .await
    }

    async fn incident_step(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
        action: &'static str,
        details: serde_json::Value,
        change: impl FnOnce(&mut IncidentRow) -> Result<()>,
    ) -> Result<Incident> {
        let mut p = self.store.platform().await?;
        let mut r = p.incident(id).await?.ok_or_else(Error::not_found)?;
        change(&mut r)?;
        p.update_incident_steps(&r).await?;
        let tenants = p.incident_tenants(id).await?;
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok(action, "incident", id).with(details);
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        view(r, tenants, self.now())
    }

    /// What the data-protection authority asks for (GDPR art. 33(3)) and the timeline, as one
    /// JSON document; the export is recorded.
    pub async fn export_incident(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<serde_json::Value> {
        let i = self.incident(by, id).await?;
        let doc = json!({
            "format": "kluis-breach-notification/1",
            "exported_at": rfc3339(self.now()),
            "incident": i.id,
            "severity": i.severity,
            "personal_data_breach": i.personal_data_breach,
            "nature": {
                "description": i.description,
                "data_categories": i.data_categories,
                "approximate_subjects": i.subjects_estimate,
                "organisations_affected": i.tenant_ids.len(),
            },
            "likely_consequences": i.consequences,
            "measures": i.measures,
            "timeline": {
                "detected_at": i.detected_at,
                "recorded_at": i.created_at,
                "customer_notice_due": i.customer_notice_due,
                "customers_notified_at": i.customers_notified_at,
                "authority_due": i.authority_due,
                "authority_notified_at": i.authority_notified_at,
                "authority_reference": i.authority_reference,
                "closed_at": i.closed_at,
            },
            "deadlines_met": {
                "customer_notice": !(i.customer_notice_overdue || i.customer_notice_late),
                "authority": !(i.authority_overdue || i.authority_late),
            },
            "deadline_rules": {
                "customer_notice": "24:00 Europe/Amsterdam of the second business day after detection (Dutch national holidays excluded)",
                "authority": "72 hours after detection (GDPR art. 33(1))",
            },
        });
        let p = self.store.platform().await?;
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("incident.export", "incident", id);
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        Ok(doc)
    }
}
