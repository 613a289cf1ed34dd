//! Server-rendered pages: sign-in, two-step verification and its enrolment, password reset
//! request, the user's own security settings and the administrator's.
//!
//! The stack the web UI builds on: askama templates (compiled, HTML-escaped by default) in
//! `templates/`, strings in [`i18n`] (English and Dutch), plain HTML forms that post back to
//! the server (post/redirect/get), no inline script or style, so the strict CSP holds and the
//! pages work without JavaScript. Handlers stay thin, as in the JSON API: every action is the
//! same `kluis-core` service the API calls, so rules and audit events are the same.
//!
//! Forms are protected against cross-site posting twice: a state change never accepts a
//! `Sec-Fetch-Site: cross-site` request, and every form carries a token that must match a
//! cookie: the session's CSRF token once signed in, or before sign-in a random form token
//! in a `SameSite=Strict` cookie (login CSRF).

mod account;
mod admin;
mod boards;
pub mod errors;
pub mod format;
pub mod i18n;
mod record;
pub mod settings;
pub mod shell;
mod sign_in;
mod status;
mod tables;
mod tables_text;

/// Labels of built-in fields (pages, and the Dutch column names of CSV exports).
pub(crate) use tables_text::field_label;

use askama::Template;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use cookie::{Cookie, SameSite};
use kluis_core::sessions::SessionUse;
use kluis_core::{Actor, Permission};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{CSRF_COOKIE, SESSION_COOKIE, cookie};
use crate::error::ApiError;
use i18n::{LANG_COOKIE, Lang, Text};

/// Before sign-in: the double-submit form token (login CSRF).
pub const FORM_COOKIE: &str = "__Host-kluis_form";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/contacts") }))
        .route("/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/status", get(status::page))
        .route(
            "/sign-in/2fa",
            get(sign_in::mfa_page).post(sign_in::mfa_submit),
        )
        .route("/sign-in/enrol", get(sign_in::enrol_page))
        .route("/sign-in/enrol/start", post(sign_in::enrol_start))
        .route("/sign-in/enrol/confirm", post(sign_in::enrol_confirm))
        .route("/sign-in/sso", get(sign_in::sso))
        .route("/sign-out", post(sign_in::sign_out))
        .route(
            "/forgot-password",
            get(sign_in::forgot_page).post(sign_in::forgot_submit),
        )
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/mfa/disable", post(account::disable_mfa))
        .route("/account/mfa/recovery-codes", post(account::recovery_codes))
        .route("/account/sessions/revoke", post(account::revoke_session))
        .route("/account/sessions/revoke-all", post(account::revoke_all))
        .route("/admin/security", get(admin::page))
        .route("/admin/security/mfa-policy", post(admin::mfa_policy))
        .route(
            "/admin/security/password-policy",
            post(admin::password_policy),
        )
        .route("/admin/security/sso", post(admin::sso))
        .route("/admin/security/sso/remove", post(admin::sso_remove))
        .route("/admin/security/saml", post(admin::saml))
        .route("/admin/security/scim/token", post(admin::scim_token))
        .route("/admin/security/scim/revoke", post(admin::scim_revoke))
        .route("/admin/security/scim/mapping", post(admin::scim_mapping))
        .route("/admin/security/users/action", post(admin::user_action))
        .route("/account/passkeys/delete", post(account::delete_passkey))
        .route("/assets/passkeys.js", get(passkeys_script))
        .route("/lang/{code}", get(switch_language))
        .merge(boards::routes())
        .merge(settings::routes())
        .merge(record::routes())
        .merge(tables::routes())
}

/// What every page's frame needs: the navigation and the language switch.
pub struct Nav {
    pub signed_in: bool,
    pub admin: bool,
    /// The session's CSRF token, for the sign-out form (empty before sign-in).
    pub csrf: String,
    /// This page, for the language switch to come back to.
    pub path: &'static str,
    /// False on pages whose state a reload would lose (the one-time link pages keep their
    /// token only in the script's memory).
    pub lang_switch: bool,
    /// The signed-in person's name for the user menu (empty: the menu says "Account").
    pub user_name: String,
    /// The organisation's name for the user menu (empty: not shown).
    pub org_name: String,
}

impl Nav {
    pub fn anonymous(path: &'static str) -> Nav {
        Nav {
            signed_in: false,
            admin: false,
            csrf: String::new(),
            path,
            lang_switch: true,
            user_name: String::new(),
            org_name: String::new(),
        }
    }
}

/// A message at the top of a page.
pub struct Notice {
    /// `ok` or `error` (a CSS class).
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn ok(text: &str) -> Option<Notice> {
        Some(Notice {
            kind: "ok",
            text: text.to_owned(),
        })
    }

    /// The localized message for a known error code, else the service's own message (which
    /// names the rule, never the submitted value).
    pub fn error(t: &Text, e: &ApiError) -> Option<Notice> {
        let text = match t.error(e.code) {
            Some(m) => m.to_owned(),
            None if e.status.is_server_error() => t.err_generic.to_owned(),
            None => e.message.clone(),
        };
        Some(Notice {
            kind: "error",
            text,
        })
    }
}

/// Renders a template; a template failure is a 500 without details.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A 303 to `to`, plus cookies.
pub fn see_other(to: &str, cookies: HeaderMap) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().extend(cookies);
    res
}

/// `?done=` after a successful post: a code, never user data.
#[derive(Debug, Deserialize, Default)]
pub struct Done {
    pub done: Option<String>,
}

impl Done {
    pub fn notice(&self, t: &Text) -> Option<Notice> {
        self.done
            .as_deref()
            .and_then(|d| t.done(d))
            .and_then(Notice::ok)
    }
}

fn refused_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
}

/// The form token of an anonymous page: the browser's existing one, or a new one with the
/// cookie that carries it.
pub struct FormToken {
    pub value: String,
    pub set_cookie: HeaderMap,
}

impl FormToken {
    pub fn for_page(headers: &HeaderMap) -> FormToken {
        if let Some(v) = cookie(headers, FORM_COOKIE).filter(|v| v.len() == 43) {
            return FormToken {
                value: v,
                set_cookie: HeaderMap::new(),
            };
        }
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(kluis_crypto::token::random_bytes::<32>());
        let c = Cookie::build((FORM_COOKIE, value.clone()))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path("/");
        let mut set_cookie = HeaderMap::new();
        if let Ok(h) = HeaderValue::from_str(&c.build().to_string()) {
            set_cookie.insert(header::SET_COOKIE, h);
        }
        FormToken { value, set_cookie }
    }

    /// The submitted token matches the browser's cookie, and the post is not cross-site.
    pub fn check(headers: &HeaderMap, submitted: &str) -> Result<(), ApiError> {
        let ok = !refused_cross_site(headers)
            && cookie(headers, FORM_COOKIE).is_some_and(|c| {
                c.len() == 43
                    && kluis_crypto::token::constant_time_eq(c.as_bytes(), submitted.as_bytes())
            });
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "form_expired",
                "the form token is missing or wrong",
            ))
        }
    }
}

/// A signed-in person on a page, and the CSRF token their forms carry.
pub struct PageUser {
    pub actor: Actor,
    pub csrf: String,
    /// Display name for the user menu (empty if unknown).
    pub name: String,
}

impl PageUser {
    pub fn nav(&self, path: &'static str) -> Nav {
        Nav {
            signed_in: true,
            admin: self.actor.can(Permission::UsersManage)
                || self.actor.can(Permission::SettingsManage),
            csrf: self.csrf.clone(),
            path,
            lang_switch: true,
            user_name: self.name.clone(),
            org_name: String::new(),
        }
    }
}

/// Where a browser without a usable full session goes: the second step of a sign-in in
/// progress, else the sign-in page.
fn redirect_for(e: &kluis_core::Error) -> Response {
    let to = match e.code {
        "mfa_required" => "/sign-in/2fa",
        "mfa_enrolment_required" => "/sign-in/enrol",
        _ => "/sign-in",
    };
    Redirect::to(to).into_response()
}

/// The signed-in user of a page view, or a redirect to where they must go first.
pub async fn page_user(s: &AppState, headers: &HeaderMap) -> Result<PageUser, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/sign-in").into_response());
    };
    match s
        .kluis
        .authenticate_session_for(&token, None, false, SessionUse::Api)
        .await
        .map(|a| (a.tenant(), a))
    {
        Ok((tenant, actor)) => {
            if let Err(e) = s
                .kluis
                .check_network(tenant, &crate::auth::current_peer())
                .await
            {
                return Err(redirect_for(&e));
            }
            let name = s
                .kluis
                .me(&actor)
                .await
                .map(|u| u.display_name)
                .unwrap_or_default();
            Ok(PageUser {
                actor,
                csrf: cookie(headers, CSRF_COOKIE).unwrap_or_default(),
                name,
            })
        }
        Err(e) => Err(redirect_for(&e)),
    }
}

/// The session behind a form post, checked like an API call with the session cookie: not
/// cross-site, and the form's `csrf` field must be the session's CSRF token.
pub async fn form_user(
    s: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    usage: SessionUse,
) -> Result<Actor, Response> {
    if refused_cross_site(headers) {
        return Err((StatusCode::FORBIDDEN, "cross-site request refused").into_response());
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/sign-in").into_response());
    };
    match s
        .kluis
        .authenticate_session_for(&token, Some(csrf), true, usage)
        .await
    {
        Ok(actor) => match s
            .kluis
            .check_network(actor.tenant(), &crate::auth::current_peer())
            .await
        {
            Ok(()) => Ok(actor),
            Err(e) => Err(redirect_for(&e)),
        },
        Err(e) if e.code == "csrf_failed" => {
            Err((StatusCode::FORBIDDEN, "form expired: reload the page").into_response())
        }
        Err(e) => Err(redirect_for(&e)),
    }
}

/// Which one-time link page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Reset,
    Invite,
}

#[derive(Template)]
#[template(path = "account_link.html")]
struct AccountLinkPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    title: &'static str,
    intro: &'static str,
    password: &'static str,
    button: &'static str,
    done: &'static str,
    missing: &'static str,
    endpoint: &'static str,
    field: &'static str,
}

/// The password reset and invitation pages. The token is in the URL fragment, which browsers
/// never send, so a small same-origin script (`/assets/account-link.js`) reads it and posts
/// the password to the JSON API; nothing from the request is reflected in the page.
pub fn account_link_page(kind: LinkKind, headers: &HeaderMap) -> Response {
    let t = Lang::of(headers).text();
    let page = match kind {
        LinkKind::Reset => AccountLinkPage {
            t,
            nav: Nav {
                lang_switch: false,
                ..Nav::anonymous("/reset")
            },
            notice: None,
            title: t.reset_title,
            intro: t.reset_intro,
            password: t.new_password,
            button: t.reset_button,
            done: t.reset_done,
            missing: t.reset_missing,
            endpoint: "/api/v1/auth/password-reset/complete",
            field: "new_password",
        },
        LinkKind::Invite => AccountLinkPage {
            t,
            nav: Nav {
                lang_switch: false,
                ..Nav::anonymous("/invite")
            },
            notice: None,
            title: t.invite_title,
            intro: t.invite_intro,
            password: t.password,
            button: t.invite_button,
            done: t.invite_done,
            missing: t.invite_missing,
            endpoint: "/api/v1/auth/invitation/accept",
            field: "password",
        },
    };
    let mut res = render(StatusCode::OK, &page);
    res.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    res
}

/// Whether a request is a browser navigation (which wants a page, not JSON).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

#[derive(Template)]
#[template(path = "continue.html")]
struct ContinuePage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    to: &'static str,
}

/// A sign-in that ended on a request from another site (the identity provider's redirect):
/// the session cookie is `SameSite=Strict`, so a redirect from here would arrive without it.
/// This page moves on by itself (meta refresh, no script) as a same-site navigation.
pub fn signed_in_elsewhere(headers: &HeaderMap, cookies: HeaderMap) -> Response {
    let t = Lang::of(headers).text();
    let mut res = render(
        StatusCode::OK,
        &ContinuePage {
            t,
            nav: Nav::anonymous("/account"),
            notice: None,
            to: "/account",
        },
    );
    res.headers_mut().extend(cookies);
    res
}

/// A failed sign-in from another site's redirect: the sign-in page with the reason.
pub fn sign_in_failed(headers: &HeaderMap, e: &ApiError) -> Response {
    sign_in::error_page(headers, e)
}

/// The pages' only script: passkey ceremonies need `navigator.credentials`.
async fn passkeys_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/passkeys.js"),
    )
}

/// A signed-in person posting a form (CSRF token in the form's `csrf` field).
pub async fn form_page_user(
    s: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<PageUser, Response> {
    let actor = form_user(s, headers, csrf, SessionUse::Api).await?;
    Ok(PageUser {
        actor,
        csrf: cookie(headers, CSRF_COOKIE).unwrap_or_else(|| csrf.to_owned()),
        name: String::new(),
    })
}

/// A form field as an optional value: trimmed, empty = absent (not for passwords, which are
/// taken as typed).
pub fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only paths on this site: a language switch must not become an open redirect.
fn local_path(p: Option<&str>) -> &str {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/sign-in",
    }
}

async fn switch_language(
    axum::extract::Path(code): axum::extract::Path<String>,
    Query(n): Query<Next>,
) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let c = Cookie::build((LANG_COOKIE, lang.code()))
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(time::Duration::days(365));
    let mut cookies = HeaderMap::new();
    if let Ok(h) = HeaderValue::from_str(&c.build().to_string()) {
        cookies.insert(header::SET_COOKIE, h);
    }
    see_other(local_path(n.next.as_deref()), cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_switch_stays_on_this_site() {
        assert_eq!(local_path(Some("/account")), "/account");
        assert_eq!(local_path(Some("//evil.example/x")), "/sign-in");
        assert_eq!(local_path(Some("https://evil.example")), "/sign-in");
        assert_eq!(local_path(Some("/\\evil.example")), "/sign-in");
        assert_eq!(local_path(None), "/sign-in");
    }

    #[test]
    fn form_token_must_match_the_cookie_and_not_be_cross_site() {
        let t = FormToken::for_page(&HeaderMap::new());
        assert_eq!(t.value.len(), 43);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{FORM_COOKIE}={}", t.value)).unwrap(),
        );
        assert!(FormToken::check(&h, &t.value).is_ok());
        assert!(FormToken::check(&h, "x").is_err());
        assert!(FormToken::check(&HeaderMap::new(), &t.value).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(FormToken::check(&h, &t.value).is_err());
    }
}
