//! API keys: create with scopes (the secret shown once, on the page answering the post, never
//! in a URL), rotate (a new secret, shown once), revoke. The same services as
//! `/api/v1/apikeys`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kluis_core::apikeys::NewApiKeyInput;
use kluis_core::authz::Scope;
use kluis_core::{ApiKeyId, RequestContext};
use serde::Deserialize;

use super::super::i18n::Text;
use super::super::{Nav, Notice, render};
use super::{SText, Who, done, poster, viewer};
use crate::AppState;
use crate::auth::Ctx;

struct KeyLine {
    id: String,
    name: String,
    scopes: String,
    created: String,
    last_used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "settings_apikeys.html")]
struct KeysPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    keys: Vec<KeyLine>,
    next_cursor: Option<String>,
    scopes: Vec<&'static str>,
    /// `(key name, secret)` of a key just created or rotated: shown this once.
    secret: Option<(String, String)>,
}

fn scope_name(s: Scope) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn all_scopes() -> Vec<&'static str> {
    vec![
        "crm:read",
        "crm:write",
        "crm:export",
        "crm:import",
        "users:read",
        "users:write",
        "settings:read",
        "settings:write",
        "audit:read",
    ]
}

async fn show(
    s: &AppState,
    c: &RequestContext,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
    cursor: Option<&str>,
    secret: Option<(String, String)>,
) -> Response {
    let (status, notice, keys, next_cursor) = match s
        .kluis
        .list_api_keys(&w.user.actor, c, cursor, Some(100))
        .await
    {
        Ok(p) => {
            let lang = w.t.lang;
            let keys = p
                .items
                .into_iter()
                .map(|k| KeyLine {
                    id: k.id.0.to_string(),
                    scopes: k
                        .scopes
                        .iter()
                        .map(|s| scope_name(*s))
                        .collect::<Vec<_>>()
                        .join(", "),
                    created: super::fmt::datetime(lang, &k.created_at),
                    last_used: k
                        .last_used_at
                        .as_deref()
                        .map_or_else(|| w.x.never.to_owned(), |v| super::fmt::datetime(lang, v)),
                    revoked: k.revoked_at.is_some(),
                    name: k.name,
                })
                .collect();
            (status, notice, keys, p.next_cursor)
        }
        Err(e) => {
            let (st, n) = w.error(e);
            (st, n, Vec::new(), None)
        }
    };
    render(
        status,
        &KeysPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/api-keys"),
            notice,
            csrf: w.csrf(),
            section: "apikeys",
            keys,
            next_cursor,
            scopes: all_scopes(),
            secret,
        },
    )
}

#[derive(Debug, Deserialize, Default)]
pub struct KeysQuery {
    done: Option<String>,
    cursor: Option<String>,
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<KeysQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show(
        &s,
        &c,
        &w,
        StatusCode::OK,
        notice,
        q.cursor.as_deref(),
        None,
    )
    .await
}

/// The form as pairs: `scope` repeats, one per ticked box.
pub async fn create(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let w = match poster(&s, &headers, &value("csrf")).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let scopes: Result<Vec<Scope>, _> = pairs
        .iter()
        .filter(|(n, _)| n == "scope")
        .map(|(_, v)| serde_json::from_value::<Scope>(serde_json::Value::String(v.clone())))
        .collect();
    let Ok(scopes) = scopes else {
        let e = kluis_core::Error::validation("scopes", "invalid_scope", "unknown scope");
        let (st, n) = w.error(e);
        return show(&s, &c, &w, st, n, None, None).await;
    };
    let input = NewApiKeyInput {
        name: value("name").trim().to_owned(),
        scopes,
    };
    match s.kluis.create_api_key(&w.user.actor, &c, input).await {
        Ok(k) => {
            let n = Notice::ok(w.x.done_created);
            let secret = Some((k.key.name, k.secret));
            show(&s, &c, &w, StatusCode::OK, n, None, secret).await
        }
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &c, &w, st, n, None, None).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    csrf: String,
    key: String,
}

fn key_id(f: &KeyForm) -> kluis_core::Result<ApiKeyId> {
    uuid::Uuid::parse_str(&f.key)
        .map(ApiKeyId)
        .map_err(|_| kluis_core::Error::not_found())
}

pub async fn rotate(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = match key_id(&f) {
        Ok(id) => s.kluis.rotate_api_key(&w.user.actor, &c, id).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(k) => {
            let n = Notice::ok(w.x.done_saved);
            let secret = Some((k.key.name, k.secret));
            show(&s, &c, &w, StatusCode::OK, n, None, secret).await
        }
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &c, &w, st, n, None, None).await
        }
    }
}

pub async fn revoke(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = match key_id(&f) {
        Ok(id) => s.kluis.revoke_api_key(&w.user.actor, &c, id).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => done("/settings/api-keys", "revoked"),
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &c, &w, st, n, None, None).await
        }
    }
}
