//! `/status`: the public status page in English and Dutch, and the maintenance announcement of
//! the sign-in page.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kluis_core::status::{Component, ComponentState, Notice, NoticeKind};

use super::i18n::{Lang, Text};
use super::{Nav, Notice as PageNotice, render};
use crate::AppState;

struct StatusText {
    title: &'static str,
    components: &'static str,
    component: &'static str,
    state: &'static str,
    notices: &'static str,
    none: &'static str,
    all_ok: &'static str,
    not_all_ok: &'static str,
}

const EN: StatusText = StatusText {
    title: "Service status",
    components: "Components",
    component: "Component",
    state: "State",
    notices: "Incidents and maintenance",
    none: "Nothing to report in the last 7 days.",
    all_ok: "All systems operational",
    not_all_ok: "Some systems are affected",
};

const NL: StatusText = StatusText {
    title: "Status van de dienst",
    components: "Onderdelen",
    component: "Onderdeel",
    state: "Status",
    notices: "Storingen en onderhoud",
    none: "Niets te melden in de afgelopen 7 dagen.",
    all_ok: "Alle systemen werken normaal",
    not_all_ok: "Sommige systemen hebben last van een storing of onderhoud",
};

fn component_name(lang: Lang, c: Component) -> &'static str {
    match (lang, c) {
        (Lang::En, Component::Api) => "API",
        (Lang::En, Component::Web) => "Web app",
        (Lang::En, Component::SignIn) => "Sign-in",
        (Lang::En, Component::Email) => "Email",
        (Lang::En, Component::Backups) => "Backups",
        (Lang::Nl, Component::Api) => "API",
        (Lang::Nl, Component::Web) => "Webapplicatie",
        (Lang::Nl, Component::SignIn) => "Inloggen",
        (Lang::Nl, Component::Email) => "E-mail",
        (Lang::Nl, Component::Backups) => "Back-ups",
    }
}

fn state_name(lang: Lang, s: ComponentState) -> &'static str {
    match (lang, s) {
        (Lang::En, ComponentState::Operational) => "Operational",
        (Lang::En, ComponentState::Maintenance) => "Under maintenance",
        (Lang::En, ComponentState::Degraded) => "Degraded",
        (Lang::En, ComponentState::Outage) => "Outage",
        (Lang::Nl, ComponentState::Operational) => "Werkt normaal",
        (Lang::Nl, ComponentState::Maintenance) => "In onderhoud",
        (Lang::Nl, ComponentState::Degraded) => "Verminderd",
        (Lang::Nl, ComponentState::Outage) => "Storing",
    }
}

fn notice_state(lang: Lang, state: &str) -> &'static str {
    match (lang, state) {
        (Lang::En, "scheduled") => "Scheduled",
        (Lang::En, "active") => "In progress",
        (Lang::En, "resolved") => "Resolved",
        (Lang::En, _) => "Completed",
        (Lang::Nl, "scheduled") => "Gepland",
        (Lang::Nl, "active") => "Bezig",
        (Lang::Nl, "resolved") => "Opgelost",
        (Lang::Nl, _) => "Afgerond",
    }
}

/// "25-11-2026 02:00 – 25-11-2026 04:00 (UTC)" in the page's language.
fn period(lang: Lang, n: &Notice) -> String {
    let from = super::format::datetime(lang, &n.starts_at);
    match &n.ends_at {
        Some(e) => format!("{from} – {} (UTC)", super::format::datetime(lang, e)),
        None => format!("{from} (UTC)"),
    }
}

struct NoticeView {
    title: String,
    what: &'static str,
    when: String,
    state: &'static str,
    body: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<PageNotice>,
    s: &'static StatusText,
    overall: &'static str,
    overall_ok: bool,
    components: Vec<(&'static str, &'static str)>,
    notices: Vec<NoticeView>,
}

pub async fn page(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let s = if lang == Lang::Nl { &NL } else { &EN };
    let doc = match st.kluis.public_status().await {
        Ok(d) => d,
        Err(_) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "status unavailable").into_response();
        }
    };
    let ok = doc.overall == ComponentState::Operational;
    let what = |k: NoticeKind| match (lang, k) {
        (Lang::En, NoticeKind::Incident) => "Incident",
        (Lang::En, NoticeKind::Maintenance) => "Planned maintenance",
        (Lang::Nl, NoticeKind::Incident) => "Storing",
        (Lang::Nl, NoticeKind::Maintenance) => "Gepland onderhoud",
    };
    render(
        StatusCode::OK,
        &StatusPage {
            t: lang.text(),
            nav: Nav::anonymous("/status"),
            notice: None,
            s,
            overall: if ok { s.all_ok } else { s.not_all_ok },
            overall_ok: ok,
            components: doc
                .components
                .iter()
                .map(|c| (component_name(lang, c.component), state_name(lang, c.state)))
                .collect(),
            notices: doc
                .notices
                .iter()
                .map(|n| NoticeView {
                    title: if lang == Lang::Nl {
                        n.title_nl.clone()
                    } else {
                        n.title_en.clone()
                    },
                    what: what(n.kind),
                    when: period(lang, n),
                    state: notice_state(lang, n.state),
                    body: if lang == Lang::Nl {
                        n.body_nl.clone()
                    } else {
                        n.body_en.clone()
                    },
                })
                .collect(),
        },
    )
}

/// The sign-in page's line about coming maintenance, in the page's language.
pub(super) async fn announcement(st: &AppState, lang: Lang) -> Option<PageNotice> {
    let n = st.kluis.sign_in_announcement().await.ok()??;
    let title = if lang == Lang::Nl {
        &n.title_nl
    } else {
        &n.title_en
    };
    let lead = match lang {
        Lang::En => "Planned maintenance",
        Lang::Nl => "Gepland onderhoud",
    };
    Some(PageNotice {
        kind: "ok",
        text: format!("{lead}: {title}, {}", period(lang, &n)),
    })
}
