//! Support access on the settings page: every request and grant of Kluis staff, approve or
//! refuse a request, revoke a grant, and what was done under each grant (access transparency).
//! The same services as `/api/v1/support-access/...` (owners and admins, audited).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kluis_core::support::SupportGrantId;
use serde::Deserialize;

use super::super::i18n::{Lang, Text};
use super::super::{Nav, Notice, render};
use super::{SText, Who, done, poster, viewer};
use crate::AppState;
use crate::auth::Ctx;

/// This page's strings (kept out of the shared tables so slices do not collide).
pub struct SupportText {
    pub title: &'static str,
    pub intro: &'static str,
    pub none: &'static str,
    pub operator: &'static str,
    pub reason: &'static str,
    pub access: &'static str,
    pub status: &'static str,
    pub until: &'static str,
    pub first_use: &'static str,
    pub approve: &'static str,
    pub refuse: &'static str,
    pub revoke: &'static str,
    pub activity: &'static str,
    pub activity_of: &'static str,
    pub when: &'static str,
    pub what: &'static str,
    pub no_activity: &'static str,
}

const EN: SupportText = SupportText {
    title: "Support access",
    intro: "Kluis staff can reach your organisation's data only when an owner or admin approves, for at most 24 hours. Every request they make is recorded here; deleting, exporting, importing, keys and settings are always refused to them; email addresses and phone numbers are shown to them masked.",
    none: "No support access has been requested or granted.",
    operator: "Staff member",
    reason: "Reason",
    access: "Access",
    status: "Status",
    until: "Until",
    first_use: "First used",
    approve: "Approve",
    refuse: "Refuse",
    revoke: "Revoke",
    activity: "Activity",
    activity_of: "Activity under this grant",
    when: "When",
    what: "What",
    no_activity: "Nothing was done under this grant.",
};

const NL: SupportText = SupportText {
    title: "Supporttoegang",
    intro: "Medewerkers van Kluis kunnen alleen bij de gegevens van je organisatie als een eigenaar of beheerder dat goedkeurt, voor hoogstens 24 uur. Elk verzoek dat ze doen staat hier; verwijderen, exporteren, importeren, sleutels en instellingen worden hun altijd geweigerd; e-mailadressen en telefoonnummers zien ze gemaskeerd.",
    none: "Er is geen supporttoegang aangevraagd of verleend.",
    operator: "Medewerker",
    reason: "Reden",
    access: "Toegang",
    status: "Status",
    until: "Tot",
    first_use: "Eerst gebruikt",
    approve: "Goedkeuren",
    refuse: "Weigeren",
    revoke: "Intrekken",
    activity: "Activiteit",
    activity_of: "Activiteit onder deze toegang",
    when: "Wanneer",
    what: "Wat",
    no_activity: "Onder deze toegang is niets gedaan.",
};

impl SupportText {
    pub fn of(lang: Lang) -> &'static SupportText {
        match lang {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }
}

fn status_label(lang: Lang, s: &str) -> &'static str {
    match (lang, s) {
        (Lang::En, "requested") => "requested",
        (Lang::En, "active") => "active",
        (Lang::En, "expired") => "expired",
        (Lang::En, "refused") => "refused",
        (Lang::En, "revoked") => "revoked",
        (Lang::Nl, "requested") => "aangevraagd",
        (Lang::Nl, "active") => "actief",
        (Lang::Nl, "expired") => "verlopen",
        (Lang::Nl, "refused") => "geweigerd",
        (Lang::Nl, "revoked") => "ingetrokken",
        _ => "",
    }
}

struct GrantLine {
    id: String,
    operator: String,
    reason: String,
    access: &'static str,
    status: String,
    status_label: &'static str,
    until: String,
    first_use: String,
}

struct ActivityLine {
    when: String,
    action: String,
    what: String,
}

#[derive(Template)]
#[template(path = "settings_support.html")]
struct SupportPage {
    t: &'static Text,
    x: &'static SText,
    s: &'static SupportText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    grants: Vec<GrantLine>,
    /// The grant whose activity is shown, and its lines.
    activity: Option<(String, Vec<ActivityLine>)>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SupportQuery {
    done: Option<String>,
    grant: Option<String>,
}

async fn show(
    st: &AppState,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
    grant: Option<&str>,
) -> Response {
    let lang = w.lang;
    let l = w.t.lang;
    let (mut status, mut notice) = (status, notice);
    let grants = match st.kluis.list_support_grants(&w.user.actor).await {
        Ok(gs) => gs
            .into_iter()
            .map(|g| GrantLine {
                id: g.id.to_string(),
                operator: g.operator,
                reason: g.reason,
                access: match (lang, g.access) {
                    (Lang::En, kluis_core::support::SupportAccessLevel::Read) => "read",
                    (Lang::En, kluis_core::support::SupportAccessLevel::Write) => "read and write",
                    (Lang::Nl, kluis_core::support::SupportAccessLevel::Read) => "lezen",
                    (Lang::Nl, kluis_core::support::SupportAccessLevel::Write) => {
                        "lezen en schrijven"
                    }
                },
                status_label: status_label(lang, &g.status),
                status: g.status,
                until: super::fmt::datetime_opt(l, g.expires_at.as_ref()),
                first_use: super::fmt::datetime_opt(l, g.first_used_at.as_ref()),
            })
            .collect(),
        Err(e) => {
            (status, notice) = w.error(e);
            Vec::new()
        }
    };
    let activity = match grant.and_then(|g| g.parse::<SupportGrantId>().ok()) {
        Some(id) => match st.kluis.support_grant_activity(&w.user.actor, id).await {
            Ok(events) => Some((
                id.to_string(),
                events
                    .into_iter()
                    .map(|e| ActivityLine {
                        when: super::fmt::datetime(l, &e.at),
                        what: match (e.details["method"].as_str(), e.details["path"].as_str()) {
                            (Some(m), Some(p)) => format!("{m} {p}"),
                            _ => e.object_id.unwrap_or_default(),
                        },
                        action: e.action,
                    })
                    .collect(),
            )),
            Err(e) => {
                (status, notice) = w.error(e);
                None
            }
        },
        None => None,
    };
    render(
        status,
        &SupportPage {
            t: w.t,
            x: w.x,
            s: SupportText::of(lang),
            nav: w.nav("/settings/support-access"),
            notice,
            csrf: w.csrf(),
            section: "support",
            grants,
            activity,
        },
    )
}

pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SupportQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show(&s, &w, StatusCode::OK, notice, q.grant.as_deref()).await
}

#[derive(Debug, Deserialize)]
pub struct GrantForm {
    csrf: String,
    grant: String,
    action: String,
}

/// Approve, refuse or revoke one grant.
pub async fn decide(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<GrantForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Ok(id) = f.grant.parse::<SupportGrantId>() else {
        let (st, n) = w.error(kluis_core::Error::not_found());
        return show(&s, &w, st, n, None).await;
    };
    let a = &w.user.actor;
    let r = match f.action.as_str() {
        "approve" => s.kluis.approve_support_request(a, &c, id).await,
        "refuse" => s.kluis.refuse_support_request(a, &c, id).await,
        "revoke" => s.kluis.revoke_support_grant(a, &c, id).await,
        _ => Err(kluis_core::Error::validation(
            "action",
            "invalid",
            "approve, refuse or revoke",
        )),
    };
    match r {
        Ok(_) => done("/settings/support-access", "saved"),
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &w, st, n, None).await
        }
    }
}
