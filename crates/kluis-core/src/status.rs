//! The public status page: components and their state, incidents and planned maintenance,
//! posted by operators in English and Dutch. Maintenance is announced on the sign-in page (and
//! in the `Kluis-Notice` header) from 24 hours before it starts until it ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::status::NoticeRow;
use crate::tenants::PlatformActor;
use crate::users::rfc3339;
use crate::{Error, Kluis, RequestContext, Result, TenantId};

/// How long before maintenance starts it is announced at sign-in.
pub const ANNOUNCE_AHEAD: Duration = Duration::from_secs(24 * 3600);
/// Resolved incidents and finished maintenance stay on the page this long.
const HISTORY: Duration = Duration::from_secs(7 * 86_400);
/// The sign-in announcement is read at most this often per process.
const ANNOUNCEMENT_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Api,
    Web,
    SignIn,
    Email,
    Backups,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::Api,
        Component::Web,
        Component::SignIn,
        Component::Email,
        Component::Backups,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Incident,
    Maintenance,
}

/// What a notice does to its components while it is active.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Maintenance,
    Degraded,
    Outage,
}

/// A component's state on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Operational,
    Maintenance,
    Degraded,
    Outage,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotice {
    pub kind: NoticeKind,
    /// Default: `maintenance` for maintenance, `degraded` for an incident.
    pub impact: Option<Impact>,
    pub components: Vec<Component>,
    pub title_en: String,
    pub title_nl: String,
    #[serde(default)]
    pub body_en: String,
    #[serde(default)]
    pub body_nl: String,
    /// RFC 3339; default now (incidents). Required for maintenance.
    pub starts_at: Option<String>,
    /// RFC 3339; required for maintenance (its planned end).
    pub ends_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub id: Uuid,
    pub kind: NoticeKind,
    pub impact: Impact,
    pub components: Vec<Component>,
    pub title_en: String,
    pub title_nl: String,
    pub body_en: String,
    pub body_nl: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub resolved_at: Option<String>,
    /// `scheduled`, `active`, `resolved` (closed by an operator) or `completed` (ended).
    pub state: &'static str,
    #[serde(skip)]
    pub starts_at_ms: i64,
    #[serde(skip)]
    pub ends_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ComponentStatus {
    pub component: Component,
    pub state: ComponentState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatusDoc {
    /// The worst component state.
    pub overall: ComponentState,
    pub components: Vec<ComponentStatus>,
    /// Active and scheduled notices, then those that ended in the last 7 days.
    pub notices: Vec<Notice>,
}

#[derive(Default)]
pub struct AnnouncementCache(Mutex<Option<(Instant, Option<Notice>)>>);

fn parse_time(field: &str, s: &str) -> Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            Error::validation(
                field,
                "invalid_time",
                "an RFC 3339 time, e.g. 2026-12-24T02:00:00Z",
            )
        })
}

fn text(field: &str, s: &str, max: usize, required: bool) -> Result<String> {
    let s = s.trim();
    if (required && s.is_empty()) || s.chars().count() > max {
        return Err(Error::validation(
            field,
            "invalid_text",
            format!("{} to {max} characters", u8::from(required)),
        ));
    }
    Ok(s.to_owned())
}

fn from_row(r: NoticeRow, now: i64) -> Result<Notice> {
    let corrupt = || Error::internal("stored status notice is unreadable");
    let kind = serde_json::from_value(serde_json::Value::String(r.kind)).map_err(|_| corrupt())?;
    let impact =
        serde_json::from_value(serde_json::Value::String(r.impact)).map_err(|_| corrupt())?;
    let components = serde_json::from_str(&r.components).map_err(|_| corrupt())?;
    let state = match (r.resolved_at, r.ends_at) {
        (Some(_), _) => "resolved",
        (None, Some(end)) if end <= now => "completed",
        _ if r.starts_at > now => "scheduled",
        _ => "active",
    };
    Ok(Notice {
        id: r.id,
        kind,
        impact,
        components,
        title_en: r.title_en,
        title_nl: r.title_nl,
        body_en: r.body_en,
        body_nl: r.body_nl,
        starts_at: rfc3339(r.starts_at),
        ends_at: r.ends_at.map(rfc3339),
        resolved_at: r.resolved_at.map(rfc3339),
        state,
        starts_at_ms: r.starts_at,
        ends_at_ms: r.ends_at,
    })
}

impl Kluis {
    /// Posts an incident or planned maintenance (platform operators; audited).
    pub async fn post_notice(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        n: NewNotice,
    ) -> Result<Notice> {
        let now = self.now();
        if n.components.is_empty() {
            return Err(Error::validation(
                "components",
                "invalid_components",
                "name at least one component",
            ));
        }
        let starts_at = match (&n.starts_at, n.kind) {
            (Some(s), _) => parse_time("starts_at", s)?,
            (None, NoticeKind::Incident) => now,
            (None, NoticeKind::Maintenance) => {
                return Err(Error::validation(
                    "starts_at",
                    "invalid_time",
                    "maintenance needs its start",
                ));
            }
        };
        let ends_at = n
            .ends_at
            .as_deref()
            .map(|e| parse_time("ends_at", e))
            .transpose()?;
        if n.kind == NoticeKind::Maintenance && ends_at.is_none_or(|e| e <= starts_at) {
            return Err(Error::validation(
                "ends_at",
                "invalid_time",
                "maintenance needs an end after its start",
            ));
        }
        let impact = n.impact.unwrap_or(match n.kind {
            NoticeKind::Maintenance => Impact::Maintenance,
            NoticeKind::Incident => Impact::Degraded,
        });
        let mut components = n.components.clone();
        components.sort_by_key(|c| Component::ALL.iter().position(|a| a == c));
        components.dedup();
        let row = NoticeRow {
            id: Uuid::now_v7(),
            kind: name(&n.kind)?,
            impact: name(&impact)?,
            components: serde_json::to_string(&components)
                .map_err(|_| Error::internal("serialise components"))?,
            title_en: text("title_en", &n.title_en, 200, true)?,
            title_nl: text("title_nl", &n.title_nl, 200, true)?,
            body_en: text("body_en", &n.body_en, 5000, false)?,
            body_nl: text("body_nl", &n.body_nl, 5000, false)?,
            starts_at,
            ends_at,
            resolved_at: None,
            created_at: now,
        };
        let mut p = self.store.platform().await?;
        p.insert_notice(&row).await?;
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = crate::audit::Event::ok("status.notice.post", "status_notice", row.id).with(
            serde_json::json!({"kind": row.kind, "impact": row.impact, "starts_at": rfc3339(starts_at)}),
        );
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        self.announcement
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        from_row(row, now)
    }

    /// Closes an incident or ends maintenance early (audited).
    pub async fn resolve_notice(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<()> {
        let mut p = self.store.platform().await?;
        if !p.resolve_notice(id, self.now()).await? {
            return Err(Error::not_found());
        }
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = crate::audit::Event::ok("status.notice.resolve", "status_notice", id);
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        self.announcement
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Ok(())
    }

    /// The public status: no authentication, nothing about any organisation.
    pub async fn public_status(&self) -> Result<StatusDoc> {
        let now = self.now();
        let since = now - HISTORY.as_millis() as i64;
        let mut p = self.store.platform_read().await?;
        let rows = p.live_notices(now, since).await?;
        p.commit().await?;
        let notices: Vec<Notice> = rows
            .into_iter()
            .map(|r| from_row(r, now))
            .collect::<Result<_>>()?;
        let components: Vec<ComponentStatus> = Component::ALL
            .iter()
            .map(|&c| {
                let state = notices
                    .iter()
                    .filter(|n| n.state == "active" && n.components.contains(&c))
                    .map(|n| match n.impact {
                        Impact::Maintenance => ComponentState::Maintenance,
                        Impact::Degraded => ComponentState::Degraded,
                        Impact::Outage => ComponentState::Outage,
                    })
                    .max()
                    .unwrap_or(ComponentState::Operational);
                ComponentStatus {
                    component: c,
                    state,
                }
            })
            .collect();
        let overall = components
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(ComponentState::Operational);
        let mut notices = notices;
        // Current and coming first, then history; each newest first.
        notices.sort_by_key(|n| (matches!(n.state, "resolved" | "completed"), -n.starts_at_ms));
        Ok(StatusDoc {
            overall,
            components,
            notices,
        })
    }

    /// Maintenance to announce at sign-in: the soonest one that starts within 24 hours or is
    /// under way. Cached for a few seconds per process.
    pub async fn sign_in_announcement(&self) -> Result<Option<Notice>> {
        if let Some((at, n)) = self
            .announcement
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < ANNOUNCEMENT_TTL
        {
            return Ok(n.clone());
        }
        let now = self.now();
        let ahead = ANNOUNCE_AHEAD.as_millis() as i64;
        let n = self
            .public_status()
            .await?
            .notices
            .into_iter()
            .filter(|n| {
                n.kind == NoticeKind::Maintenance
                    && matches!(n.state, "scheduled" | "active")
                    && n.starts_at_ms - ahead <= now
            })
            .min_by_key(|n| n.starts_at_ms);
        *self
            .announcement
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), n.clone()));
        Ok(n)
    }
}

/// An enum value as stored: its serde name.
fn name<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::internal("not a unit enum")),
    }
}
