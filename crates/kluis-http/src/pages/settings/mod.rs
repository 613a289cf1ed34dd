//! Settings in the browser, for owners and admins: users (invite, role, disable), API keys,
//! custom fields, pipelines and stages, tags, the sensitive-data mode, the trash, and the
//! audit log viewer. Every form calls the `kluis-core` service the JSON API calls (same
//! permission checks, throttling and audit events); handlers are page_user / form_user ->
//! one service call -> render (or post/redirect/get).

mod apikeys;
mod audit;
mod crm;
pub mod fmt;
mod retention;
mod support;
pub mod text;
mod users;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use kluis_core::Permission;
use kluis_core::settings::{SensitiveDataDoc, TrashRetentionDoc};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::{Nav, Notice, PageUser, form_page_user, page_user, render, see_other};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
pub use text::SText;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(index))
        .route("/settings/sensitive-data", post(sensitive_data))
        .route("/settings/trash-retention", post(retention::update))
        .route("/settings/users", get(users::page))
        .route("/settings/users/invite", post(users::invite))
        .route("/settings/users/update", post(users::update))
        .route("/settings/api-keys", get(apikeys::page))
        .route("/settings/api-keys/create", post(apikeys::create))
        .route("/settings/api-keys/rotate", post(apikeys::rotate))
        .route("/settings/api-keys/revoke", post(apikeys::revoke))
        .route("/settings/fields", get(crm::fields_page))
        .route("/settings/fields/create", post(crm::field_create))
        .route("/settings/fields/update", post(crm::field_update))
        .route("/settings/fields/delete", post(crm::field_delete))
        .route("/settings/pipelines", get(crm::pipelines_page))
        .route("/settings/pipelines/create", post(crm::pipeline_create))
        .route("/settings/pipelines/update", post(crm::pipeline_update))
        .route("/settings/pipelines/delete", post(crm::pipeline_delete))
        .route("/settings/tags", get(crm::tags_page))
        .route("/settings/tags/create", post(crm::tag_create))
        .route("/settings/tags/update", post(crm::tag_update))
        .route("/settings/tags/delete", post(crm::tag_delete))
        .route("/settings/support-access", get(support::page))
        .route("/settings/support-access/decide", post(support::decide))
        .route("/settings/audit", get(audit::page))
        .route("/settings/audit/export", get(audit::export))
}

/// A signed-in owner or admin on a settings page, with both string tables.
pub struct Who {
    pub user: PageUser,
    pub t: &'static Text,
    pub x: &'static SText,
    pub lang: Lang,
}

impl Who {
    pub fn nav(&self, path: &'static str) -> Nav {
        self.user.nav(path)
    }

    pub fn csrf(&self) -> String {
        self.user.csrf.clone()
    }

    /// The notice of `?done=`.
    pub fn done(&self, done: Option<&str>) -> Option<Notice> {
        done.and_then(|d| self.x.done(d)).and_then(Notice::ok)
    }

    /// The status and localized notice of a refused action.
    pub fn error(&self, e: kluis_core::Error) -> (StatusCode, Option<Notice>) {
        let e = ApiError::from(e);
        (e.status, Notice::error(self.t, &e))
    }
}

/// Owners and admins (who manage users or settings); the services check each action again.
fn may_administer(user: &PageUser) -> bool {
    user.actor.can(Permission::SettingsManage) || user.actor.can(Permission::UsersManage)
}

#[derive(Template)]
#[template(path = "settings_forbidden.html")]
struct ForbiddenPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
}

/// The 403 page in the app's style and language.
pub fn forbidden(user: &PageUser, headers: &HeaderMap) -> Response {
    let lang = Lang::of(headers);
    render(
        StatusCode::FORBIDDEN,
        &ForbiddenPage {
            t: lang.text(),
            x: SText::of(lang),
            nav: user.nav("/settings"),
            notice: None,
        },
    )
}

/// A settings page view: signed in (else to the sign-in page) and an administrator (else 403).
pub async fn viewer(s: &AppState, headers: &HeaderMap) -> Result<Who, Response> {
    let user = page_user(s, headers).await?;
    if !may_administer(&user) {
        return Err(forbidden(&user, headers));
    }
    Ok(who(user, headers))
}

/// A settings form post: the session's CSRF token, not cross-site, and an administrator.
pub async fn poster(s: &AppState, headers: &HeaderMap, csrf: &str) -> Result<Who, Response> {
    let user = form_page_user(s, headers, csrf).await?;
    if !may_administer(&user) {
        return Err(forbidden(&user, headers));
    }
    Ok(who(user, headers))
}

fn who(user: PageUser, headers: &HeaderMap) -> Who {
    let lang = Lang::of(headers);
    Who {
        user,
        t: lang.text(),
        x: SText::of(lang),
        lang,
    }
}

/// A 303 back to a settings page with a done code.
pub fn done(path: &str, code: &str) -> Response {
    see_other(&format!("{path}?done={code}"), HeaderMap::new())
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "settings_index.html")]
struct IndexPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    mail_configured: bool,
    /// None for someone who may manage users but not settings.
    sensitive: Option<SensitiveDataDoc>,
    /// The trash retention form's strings and value (None: may not read settings).
    rt: &'static retention::RetentionText,
    retention: Option<TrashRetentionDoc>,
}

async fn show_index(s: &AppState, w: &Who, status: StatusCode, notice: Option<Notice>) -> Response {
    let (sensitive, retention) = if w.user.actor.can(Permission::SettingsRead) {
        let read = async {
            let d = s.kluis.sensitive_data_setting(&w.user.actor).await?;
            let r = s.kluis.trash_retention_setting(&w.user.actor).await?;
            Ok::<_, kluis_core::Error>((d, r))
        };
        match read.await {
            Ok((d, r)) => (Some(d), Some(r)),
            Err(e) => {
                let (st, n) = w.error(e);
                return render_index(s, w, st, n, None, None);
            }
        }
    } else {
        (None, None)
    };
    render_index(s, w, status, notice, sensitive, retention)
}

fn render_index(
    s: &AppState,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
    sensitive: Option<SensitiveDataDoc>,
    retention: Option<TrashRetentionDoc>,
) -> Response {
    render(
        status,
        &IndexPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings"),
            notice,
            csrf: w.csrf(),
            section: "index",
            mail_configured: s.kluis.mail_configured(),
            sensitive,
            rt: retention::RetentionText::of(w.lang),
            retention,
        },
    )
}

async fn index(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show_index(&s, &w, StatusCode::OK, notice).await
}

#[derive(Debug, Deserialize)]
struct SensitiveForm {
    csrf: String,
    mode: String,
}

async fn sensitive_data(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<SensitiveForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let doc = SensitiveDataDoc { mode: f.mode };
    match s
        .kluis
        .set_sensitive_data_setting(&w.user.actor, &c, doc)
        .await
    {
        Ok(_) => done("/settings", "saved"),
        Err(e) => {
            let (st, n) = w.error(e);
            show_index(&s, &w, st, n).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    /// Every `pattern="..."` attribute of the pages and the setup page.
    fn patterns() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("assets/setup.html")];
        for e in std::fs::read_dir(root.join("templates")).unwrap() {
            files.push(e.unwrap().path());
        }
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find(" pattern=\"") {
                let after = &rest[i + 10..];
                let end = after.find('"').unwrap();
                out.push((f.display().to_string(), after[..end].to_owned()));
                rest = &after[end..];
            }
        }
        out
    }

    /// Node's verdict on `^(?:p)$` with the `v` flag (as browsers compile `pattern`):
    /// None when node is missing.
    fn compiles_with_v_flag(p: &str) -> Option<bool> {
        let script = "try { new RegExp('^(?:' + process.argv[1] + ')$', 'v'); process.exit(0) } catch (e) { console.error(String(e)); process.exit(3) }";
        let out = Command::new("node").args(["-e", script, p]).output().ok()?;
        Some(out.status.success())
    }

    /// Browsers check `pattern` in the `v`-flag mode, where e.g. an unescaped `-` in a class
    /// is an error, and an invalid pattern is silently not checked at all.
    #[test]
    fn every_pattern_attribute_compiles_with_the_v_flag() {
        let Some(bad) = compiles_with_v_flag("[a-z0-9-]") else {
            assert!(
                std::env::var_os("KLUIS_REQUIRE_BROWSER").is_none(),
                "node is required"
            );
            eprintln!("skipped: node not found, pattern attributes not checked");
            return;
        };
        assert!(
            !bad,
            "node must refuse an unescaped '-' in a class with the v flag"
        );
        let all = patterns();
        assert!(
            all.iter().any(|(f, _)| f.ends_with("setup.html")),
            "{all:?}"
        );
        for (file, p) in all {
            assert_eq!(compiles_with_v_flag(&p), Some(true), "{file}: {p}");
        }
    }
}
