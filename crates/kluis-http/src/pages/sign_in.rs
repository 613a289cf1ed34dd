//! Sign-in, the second step, forced enrolment, single sign-on, sign-out, forgotten password.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use kluis_core::AuthStage;
use kluis_core::account_links::PasswordResetRequest;
use kluis_core::mfa::{MfaChallenge, TotpCode};
use kluis_core::sessions::{LoginInput, LoginStatus, SessionUse};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::{FormToken, Nav, Notice, form_user, non_empty, render, see_other};
use crate::AppState;
use crate::auth::{Ctx, SESSION_COOKIE, cookie};
use crate::error::{ApiError, ApiQuery};
use crate::routes::auth::{clearing_cookies, session_cookies};
use crate::routes::sso::StartQuery;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    form_token: &'a str,
    organisation: &'a str,
    email: &'a str,
}

#[derive(Debug, Deserialize, Default)]
pub struct SignInQuery {
    organisation: Option<String>,
}

pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let t = lang.text();
    let token = FormToken::for_page(&headers);
    // Maintenance is announced here from 24 hours before it starts (seed 001).
    let notice = super::status::announcement(&s, lang).await;
    let mut res = render(
        StatusCode::OK,
        &SignInPage {
            t,
            nav: Nav::anonymous("/sign-in"),
            notice,
            form_token: &token.value,
            organisation: q.organisation.as_deref().unwrap_or(""),
            email: "",
        },
    );
    res.headers_mut().extend(token.set_cookie);
    res
}

#[derive(Deserialize)]
pub struct SignInForm {
    form_token: String,
    organisation: String,
    email: String,
    password: String,
}

pub(super) fn error_page(headers: &HeaderMap, e: &ApiError) -> Response {
    sign_in_error(headers, e, "", "")
}

fn sign_in_error(headers: &HeaderMap, e: &ApiError, organisation: &str, email: &str) -> Response {
    let t = Lang::of(headers).text();
    let token = FormToken::for_page(headers);
    let mut res = render(
        e.status,
        &SignInPage {
            t,
            nav: Nav::anonymous("/sign-in"),
            notice: Notice::error(t, e),
            form_token: &token.value,
            organisation,
            email,
        },
    );
    res.headers_mut().extend(token.set_cookie);
    res
}

/// Password sign-in: the same service (throttling, lockout, audit, equal timing) as
/// `POST /api/v1/auth/login`; then on to the second step if one is due.
pub async fn submit(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    if let Err(e) = FormToken::check(&headers, &f.form_token) {
        return sign_in_error(&headers, &e, &f.organisation, &f.email);
    }
    let input = LoginInput {
        tenant: f.organisation.trim().to_owned(),
        email: f.email.clone(),
        password: f.password,
    };
    let out = match s.kluis.login(input, &c).await {
        Ok(out) => out,
        Err(e) => return sign_in_error(&headers, &e.into(), &f.organisation, &f.email),
    };
    let cookies = match session_cookies(&out) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let to = match out.status {
        LoginStatus::Complete => "/account",
        LoginStatus::MfaRequired => "/sign-in/2fa",
        LoginStatus::MfaEnrolmentRequired => "/sign-in/enrol",
    };
    see_other(to, cookies)
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
}

/// The second step: only for a session that is waiting for it.
pub async fn mfa_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let t = Lang::of(&headers).text();
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/sign-in").into_response();
    };
    if s.kluis
        .authenticate_session_for(&token, None, false, SessionUse::Challenge)
        .await
        .is_err()
    {
        return Redirect::to("/sign-in").into_response();
    }
    render(
        StatusCode::OK,
        &MfaPage {
            t,
            nav: Nav::anonymous("/sign-in/2fa"),
            notice: None,
            csrf: cookie(&headers, crate::auth::CSRF_COOKIE).unwrap_or_default(),
        },
    )
}

#[derive(Deserialize)]
pub struct MfaForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
}

pub async fn mfa_submit(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<MfaForm>,
) -> Response {
    let t = Lang::of(&headers).text();
    let actor = match form_user(&s, &headers, &f.csrf, SessionUse::Challenge).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let input = MfaChallenge {
        code: non_empty(&f.code),
        recovery_code: non_empty(&f.recovery_code),
    };
    match s.kluis.answer_mfa_challenge(&actor, &c, input).await {
        Ok(out) => match session_cookies(&out) {
            Ok(cookies) => see_other("/account", cookies),
            Err(e) => e.into_response(),
        },
        Err(e) => {
            let e: ApiError = e.into();
            render(
                e.status,
                &MfaPage {
                    t,
                    nav: Nav::anonymous("/sign-in/2fa"),
                    notice: Notice::error(t, &e),
                    csrf: f.csrf,
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    /// The organisation requires it (a pending sign-in), rather than a voluntary set-up.
    required: bool,
    /// After "start": the QR code as a data URI (an `<img>`, so no inline SVG or script) and
    /// the key to type.
    qr_data_uri: Option<String>,
    secret: String,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub t: &'static Text,
    pub nav: Nav,
    pub notice: Option<Notice>,
    pub codes: Vec<String>,
}

fn enrol_nav(actor: &kluis_core::Actor, headers: &HeaderMap) -> Nav {
    let full = actor.stage() == AuthStage::Full;
    Nav {
        signed_in: full,
        admin: false,
        csrf: if full {
            cookie(headers, crate::auth::CSRF_COOKIE).unwrap_or_default()
        } else {
            String::new()
        },
        ..Nav::anonymous("/sign-in/enrol")
    }
}

/// Enrolment: for a sign-in the organisation holds until a second factor exists, or for a
/// signed-in user who sets one up.
pub async fn enrol_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let t = Lang::of(&headers).text();
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/sign-in").into_response();
    };
    let actor = match s
        .kluis
        .authenticate_session_for(&token, None, false, SessionUse::Enrolment)
        .await
    {
        Ok(a) => a,
        Err(_) => return Redirect::to("/sign-in").into_response(),
    };
    render(
        StatusCode::OK,
        &EnrolPage {
            t,
            nav: enrol_nav(&actor, &headers),
            notice: None,
            csrf: cookie(&headers, crate::auth::CSRF_COOKIE).unwrap_or_default(),
            required: actor.stage() == AuthStage::PendingEnrol,
            qr_data_uri: None,
            secret: String::new(),
        },
    )
}

/// The QR code as a data URI (an `<img>`, so no inline SVG or script).
fn qr_data_uri(svg: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
    format!("data:image/svg+xml;base64,{b64}")
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn enrol_start(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let t = Lang::of(&headers).text();
    let actor = match form_user(&s, &headers, &f.csrf, SessionUse::Enrolment).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (status, notice, qr, secret) = match s.kluis.start_totp_enrolment(&actor, &c).await {
        Ok(e) => (StatusCode::OK, None, Some(qr_data_uri(&e.qr_svg)), e.secret),
        Err(e) => {
            let e: ApiError = e.into();
            (e.status, Notice::error(t, &e), None, String::new())
        }
    };
    render(
        status,
        &EnrolPage {
            t,
            nav: enrol_nav(&actor, &headers),
            notice,
            csrf: f.csrf,
            required: actor.stage() == AuthStage::PendingEnrol,
            qr_data_uri: qr,
            secret,
        },
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

pub async fn enrol_confirm(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = Lang::of(&headers).text();
    let actor = match form_user(&s, &headers, &f.csrf, SessionUse::Enrolment).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let input = TotpCode {
        code: f.code.trim().to_owned(),
    };
    match s.kluis.confirm_totp_enrolment(&actor, &c, input).await {
        Ok(out) => {
            let (cookies, csrf) = match &out.login {
                Some(l) => match session_cookies(l) {
                    Ok(h) => (h, l.csrf_token.clone()),
                    Err(e) => return e.into_response(),
                },
                None => (HeaderMap::new(), f.csrf.clone()),
            };
            let mut res = render(
                StatusCode::OK,
                &RecoveryCodesPage {
                    t,
                    nav: Nav {
                        signed_in: true,
                        admin: false,
                        csrf,
                        ..Nav::anonymous("/account")
                    },
                    notice: None,
                    codes: out.recovery_codes,
                },
            );
            res.headers_mut().extend(cookies);
            res
        }
        Err(e) => {
            // A wrong code: the key stays the same, so the same QR code and key again (the
            // one just scanned keeps working); "start" only when none is pending.
            let e: ApiError = e.into();
            let pending = s.kluis.pending_totp_enrolment(&actor).await.ok().flatten();
            let (qr, secret) = match pending {
                Some(p) => (Some(qr_data_uri(&p.qr_svg)), p.secret),
                None => (None, String::new()),
            };
            render(
                e.status,
                &EnrolPage {
                    t,
                    nav: enrol_nav(&actor, &headers),
                    notice: Notice::error(t, &e),
                    csrf: f.csrf,
                    required: actor.stage() == AuthStage::PendingEnrol,
                    qr_data_uri: qr,
                    secret,
                },
            )
        }
    }
}

/// "Sign in with single sign-on": on to the organisation's identity provider, or back to the
/// sign-in page with the reason.
pub async fn sso(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let org = q.organisation.clone().unwrap_or_default();
    let query = || {
        ApiQuery(StartQuery {
            organisation: Some(org.trim().to_owned()),
        })
    };
    let Ctx(c) = ctx;
    let started = match crate::routes::sso::start(State(s.clone()), Ctx(c.clone()), query()).await {
        // The organisation uses SAML rather than OpenID Connect.
        Err(e) if e.code == "sso_use_saml" => {
            crate::routes::saml::start(State(s), Ctx(c), query()).await
        }
        other => other,
    };
    match started {
        Ok(r) => r.into_response(),
        Err(e) => sign_in_error(&headers, &e, &org, ""),
    }
}

pub async fn sign_out(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let actor = match form_user(&s, &headers, &f.csrf, SessionUse::Api).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(e) = s.kluis.logout(&actor, &c).await {
        return ApiError::from(e).into_response();
    }
    match clearing_cookies() {
        Ok(h) => see_other("/sign-in", h),
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    form_token: &'a str,
    sent: bool,
    /// This server sends no email: say so instead of promising a link.
    no_mail: Option<&'static str>,
}

fn no_mail(s: &AppState, headers: &HeaderMap) -> Option<&'static str> {
    (!s.kluis.mail_configured())
        .then(|| super::settings::SText::of(Lang::of(headers)).forgot_no_mail)
}

pub async fn forgot_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let t = Lang::of(&headers).text();
    let token = FormToken::for_page(&headers);
    let mut res = render(
        StatusCode::OK,
        &ForgotPage {
            t,
            nav: Nav::anonymous("/forgot-password"),
            notice: None,
            form_token: &token.value,
            sent: false,
            no_mail: no_mail(&s, &headers),
        },
    );
    res.headers_mut().extend(token.set_cookie);
    res
}

#[derive(Deserialize)]
pub struct ForgotForm {
    form_token: String,
    organisation: String,
    email: String,
}

/// The same answer whether or not the account exists; the work happens after it.
pub async fn forgot_submit(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Response {
    let t = Lang::of(&headers).text();
    let token = FormToken::for_page(&headers);
    let no_mail = no_mail(&s, &headers);
    if no_mail.is_some() {
        // Nothing can be sent; the page says so (whatever the address).
        return render(
            StatusCode::OK,
            &ForgotPage {
                t,
                nav: Nav::anonymous("/forgot-password"),
                notice: None,
                form_token: &token.value,
                sent: true,
                no_mail,
            },
        );
    }
    let checked = FormToken::check(&headers, &f.form_token);
    if checked.is_ok() {
        s.kluis.request_password_reset(
            PasswordResetRequest {
                organisation: f.organisation.trim().to_owned(),
                email: f.email,
            },
            c,
        );
    }
    let (status, notice) = match &checked {
        Ok(()) => (StatusCode::OK, Notice::ok(t.forgot_sent)),
        Err(e) => (e.status, Notice::error(t, e)),
    };
    render(
        status,
        &ForgotPage {
            t,
            nav: Nav::anonymous("/forgot-password"),
            notice,
            form_token: &token.value,
            sent: checked.is_ok(),
            no_mail: None,
        },
    )
}
