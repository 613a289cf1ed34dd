//! The signed-in user's own security settings: second factor, password, sessions.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kluis_core::mfa::{MfaDisable, MfaStatus, TotpCode};
use kluis_core::passkeys::{PasskeyDelete, PasskeyInfo};
use kluis_core::sessions::{PasswordChange, SessionInfo};
use kluis_core::users::User;
use kluis_core::{RequestContext, SessionId};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::sign_in::RecoveryCodesPage;
use super::{Done, Nav, Notice, PageUser, page_user, render, see_other};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::routes::auth::clearing_cookies;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    me: User,
    role_name: &'static str,
    mfa: MfaStatus,
    sessions: Vec<SessionInfo>,
    passkeys: Vec<PasskeyInfo>,
}

async fn render_account(
    s: &AppState,
    t: &'static Text,
    user: &PageUser,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let loaded = async {
        let me = s.kluis.me(&user.actor).await?;
        let mfa = s.kluis.mfa_status(&user.actor).await?;
        let sessions = s.kluis.my_sessions(&user.actor).await?;
        let passkeys = s.kluis.my_passkeys(&user.actor).await?;
        Ok::<_, kluis_core::Error>((me, mfa, sessions, passkeys))
    }
    .await;
    match loaded {
        Ok((me, mfa, sessions, passkeys)) => render(
            status,
            &AccountPage {
                t,
                nav: user.nav("/account"),
                notice,
                csrf: user.csrf.clone(),
                role_name: t.role_name(me.role.as_str()),
                me,
                mfa,
                sessions,
                passkeys,
            },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Response {
    let t = Lang::of(&headers).text();
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    render_account(&s, t, &user, StatusCode::OK, done.notice(t)).await
}

async fn poster(s: &AppState, headers: &HeaderMap, csrf: &str) -> Result<PageUser, Response> {
    super::form_page_user(s, headers, csrf).await
}

/// After an action: back to the page with a notice, or the page again with the error.
async fn after(
    s: &AppState,
    headers: &HeaderMap,
    user: &PageUser,
    result: kluis_core::Result<()>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/account?done={done}"), HeaderMap::new()),
        Err(e) => {
            let t = Lang::of(headers).text();
            let e: ApiError = e.into();
            render_account(s, t, user, e.status, Notice::error(t, &e)).await
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input = PasswordChange {
        current_password: f.current_password,
        new_password: f.new_password,
    };
    let r = s.kluis.change_password(&user.actor, &c, input).await;
    after(&s, &headers, &user, r, "password").await
}

#[derive(Deserialize)]
pub struct DisableForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

pub async fn disable_mfa(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<DisableForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input = MfaDisable {
        code: super::non_empty(&f.code),
        // A password is compared as typed, spaces included.
        password: (!f.password.is_empty()).then_some(f.password),
    };
    let r = s.kluis.disable_mfa(&user.actor, &c, input).await;
    after(&s, &headers, &user, r, "mfa_off").await
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

pub async fn recovery_codes(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = Lang::of(&headers).text();
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input = TotpCode {
        code: f.code.trim().to_owned(),
    };
    match s
        .kluis
        .regenerate_recovery_codes(&user.actor, &c, input)
        .await
    {
        Ok(codes) => render(
            StatusCode::OK,
            &RecoveryCodesPage {
                t,
                nav: user.nav("/account"),
                notice: None,
                codes: codes.recovery_codes,
            },
        ),
        Err(e) => after(&s, &headers, &user, Err(e), "").await,
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    session: String,
}

pub async fn revoke_session(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<RevokeForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let r = match uuid::Uuid::parse_str(&f.session) {
        Ok(id) => revoke(&s, &user, &c, SessionId(id)).await,
        Err(_) => Err(kluis_core::Error::not_found()),
    };
    after(&s, &headers, &user, r, "revoked").await
}

async fn revoke(
    s: &AppState,
    user: &PageUser,
    c: &RequestContext,
    id: SessionId,
) -> kluis_core::Result<()> {
    s.kluis.revoke_my_session(&user.actor, c, id).await
}

#[derive(Deserialize)]
pub struct PasskeyDeleteForm {
    csrf: String,
    passkey: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// Removing a passkey proves presence like turning off TOTP: a current code or the password.
pub async fn delete_passkey(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<PasskeyDeleteForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let proof = PasskeyDelete {
        code: super::non_empty(&f.code),
        password: (!f.password.is_empty()).then_some(f.password),
    };
    let r = match uuid::Uuid::parse_str(&f.passkey) {
        Ok(id) => s.kluis.delete_my_passkey(&user.actor, &c, id, proof).await,
        Err(_) => Err(kluis_core::Error::not_found()),
    };
    after(&s, &headers, &user, r, "passkey_deleted").await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn revoke_all(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match s.kluis.logout_everywhere(&user.actor, &c).await {
        Ok(_) => match clearing_cookies() {
            Ok(h) => see_other("/sign-in", h),
            Err(e) => e.into_response(),
        },
        Err(e) => after(&s, &headers, &user, Err(e), "").await,
    }
}
