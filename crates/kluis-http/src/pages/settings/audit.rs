//! The audit log viewer: filter by user, action, record and date range, page through the
//! events, export the filtered log (CSV or JSON Lines, the API's export), and see the latest
//! signed checkpoint and the result of verifying the whole log. The same services as
//! `/api/v1/audit/events`, `/api/v1/audit/checkpoints` and `/api/v1/audit/export` (reading
//! and exporting are themselves recorded).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kluis_core::audit::AuditQuery;
use kluis_core::{ErrorKind, RequestContext};
use serde::Deserialize;

use super::super::i18n::Text;
use super::super::{Nav, Notice, non_empty, render};
use super::{SText, Who, viewer};
use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::ApiQuery;
use crate::routes::audit::ExportQuery;

/// The filter form (GET, so a filtered view is a link).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    record: String,
    /// `YYYY-MM-DD`, from the start of that day (UTC).
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, up to and including that day (UTC).
    #[serde(default)]
    to: String,
    cursor: Option<String>,
    /// `csv` or `jsonl` (export only).
    format: Option<String>,
    /// Verify the whole log now (it reads every event, so only on request).
    verify: Option<String>,
}

/// A day as the RFC 3339 start of it; `next` for the start of the day after (an inclusive
/// "to"). Anything else is passed on as typed, and the service names the rule.
fn day_start(v: &str, next: bool) -> Option<String> {
    let v = non_empty(v)?;
    let mut it = v.splitn(3, '-');
    let parsed = (|| {
        let y = it.next()?.parse::<i32>().ok()?;
        let m = time::Month::try_from(it.next()?.parse::<u8>().ok()?).ok()?;
        let d = it.next()?.parse::<u8>().ok()?;
        time::Date::from_calendar_date(y, m, d).ok()
    })();
    Some(match parsed {
        Some(d) => {
            let d = if next { d.next_day().unwrap_or(d) } else { d };
            format!("{d}T00:00:00Z")
        }
        None => v,
    })
}

impl Filters {
    fn actor(&self) -> Option<String> {
        non_empty(&self.user).map(|u| {
            if u.contains(':') {
                u
            } else {
                format!("user:{u}")
            }
        })
    }

    fn query(&self) -> AuditQuery {
        AuditQuery {
            from: day_start(&self.from, false),
            to: day_start(&self.to, true),
            actor: self.actor(),
            action: non_empty(&self.action),
            object_id: non_empty(&self.record),
            ip: None,
            cursor: self.cursor.clone(),
            limit: Some(50),
        }
    }

    /// The filters as a query string (for export links and the next page).
    fn link(&self) -> String {
        let enc = |v: &str| url_escape(v.trim());
        format!(
            "user={}&action={}&record={}&from={}&to={}",
            enc(&self.user),
            enc(&self.action),
            enc(&self.record),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

/// Percent-encoding for a query value (everything but unreserved characters).
fn url_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct UserChoice {
    id: String,
    label: String,
    selected: bool,
}

struct EventLine {
    seq: i64,
    at: String,
    at_raw: String,
    actor: String,
    action: String,
    outcome: &'static str,
    failed: bool,
    object: String,
}

enum Verified {
    NotRun,
    Ok { events: i64, checkpoints: usize },
    Broken { seq: i64, why: String },
    Unavailable,
}

#[derive(Template)]
#[template(path = "settings_audit.html")]
struct AuditPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    section: &'static str,
    f: Filters,
    users: Vec<UserChoice>,
    events: Vec<EventLine>,
    next_link: Option<String>,
    export_link: String,
    verify_link: String,
    checkpoint: Option<String>,
    verified: Verified,
}

async fn user_names(
    s: &AppState,
    w: &Who,
    c: &RequestContext,
) -> kluis_core::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    // At most a few pages: the select is for picking people, not for huge directories.
    for _ in 0..5 {
        let page = s
            .kluis
            .list_users(&w.user.actor, c, cursor.as_deref(), Some(200))
            .await?;
        out.extend(page.items.into_iter().map(|u| {
            (
                u.id.to_string(),
                format!("{} <{}>", u.display_name, u.email),
            )
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(out)
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    show(&s, &c, &w, f, StatusCode::OK, None).await
}

async fn show(
    s: &AppState,
    c: &RequestContext,
    w: &Who,
    f: Filters,
    mut status: StatusCode,
    mut notice: Option<Notice>,
) -> Response {
    let a = &w.user.actor;
    let lang = w.t.lang;
    let names = user_names(s, w, c).await.unwrap_or_default();
    let label = |actor: &str| -> String {
        actor
            .strip_prefix("user:")
            .and_then(|id| names.iter().find(|(i, _)| i == id))
            .map_or_else(|| actor.to_owned(), |(_, n)| n.clone())
    };
    let selected = f.actor().unwrap_or_default();
    let mut events = Vec::new();
    let mut next_link = None;
    match s.kluis.audit_events(a, c, &f.query()).await {
        Ok(page) => {
            events = page
                .items
                .into_iter()
                .map(|e| EventLine {
                    seq: e.seq,
                    at: super::fmt::datetime(lang, &e.at),
                    actor: label(&e.actor),
                    outcome: w.x.outcome(&e.outcome),
                    failed: e.outcome != "success",
                    object: match (e.object_type, e.object_id) {
                        (Some(t), Some(i)) => format!("{t} {i}"),
                        (Some(t), None) => t,
                        (None, Some(i)) => i,
                        (None, None) => String::new(),
                    },
                    action: e.action,
                    at_raw: e.at,
                })
                .collect();
            next_link = page
                .next_cursor
                .map(|cur| format!("/settings/audit?{}&cursor={}", f.link(), url_escape(&cur)));
        }
        Err(e) => {
            let (st, n) = w.error(e);
            status = st;
            notice = n;
        }
    }
    let checkpoint = match s.kluis.audit_checkpoints(a).await {
        Ok(list) => list.checkpoints.last().cloned(),
        Err(_) => None,
    };
    let verified = if f.verify.is_none() {
        Verified::NotRun
    } else {
        verify(s, w).await
    };
    let users = names
        .iter()
        .map(|(id, n)| UserChoice {
            selected: selected == format!("user:{id}"),
            id: id.clone(),
            label: n.clone(),
        })
        .collect();
    render(
        status,
        &AuditPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/audit"),
            notice,
            section: "audit",
            export_link: format!("/settings/audit/export?{}", f.link()),
            verify_link: format!("/settings/audit?{}&verify=1", f.link()),
            f,
            users,
            events,
            next_link,
            checkpoint,
            verified,
        },
    )
}

async fn verify(s: &AppState, w: &Who) -> Verified {
    match s.kluis.audit_verify(&w.user.actor).await {
        Ok(r) => match r.first_broken {
            None => Verified::Ok {
                events: r.events,
                checkpoints: r.checkpoints_checked,
            },
            Some((seq, why)) => Verified::Broken { seq, why },
        },
        Err(e) if e.kind == ErrorKind::Unavailable => Verified::Unavailable,
        Err(e) => {
            tracing::error!(error = %e, "audit log verification failed to run");
            Verified::Unavailable
        }
    }
}

/// The filtered log as a download (`format=csv` or `jsonl`), through the API's export.
pub async fn export(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let q = f.query();
    let query = ExportQuery {
        format: f.format.clone(),
        from: q.from,
        to: q.to,
        actor: q.actor,
        action: q.action,
        object_id: q.object_id,
        ip: None,
    };
    let actor = w.user.actor.clone();
    match crate::routes::audit::export(
        State(s.clone()),
        Authed(actor),
        Ctx(c.clone()),
        ApiQuery(query),
    )
    .await
    {
        Ok(r) => r.into_response(),
        Err(e) => {
            let n = Notice::error(w.t, &e);
            show(&s, &c, &w, f, e.status, n).await
        }
    }
}
