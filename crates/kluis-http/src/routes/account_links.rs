//! Password reset by email and invitation acceptance, plus their two small pages.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use kluis_core::UserId;
use kluis_core::account_links::{
    InvitationAcceptance, PasswordResetCompletion, PasswordResetRequest,
};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub message: &'static str,
}

const RESET_ACCEPTED: &str =
    "if this organisation has an active account with this email, a reset link is on its way";

/// Ask for a password reset link by email. The answer is the same whether or not the
/// account exists; the work happens after the answer.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody)))]
pub async fn request_reset(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasswordResetRequest>,
) -> (StatusCode, Json<Accepted>) {
    s.kluis.request_password_reset(input, c);
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: RESET_ACCEPTED,
        }),
    )
}

/// Set a new password with the token from a reset link. Every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/complete", tag = "auth", request_body = PasswordResetCompletion,
    responses((status = 204), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete_reset(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasswordResetCompletion>,
) -> ApiResult<StatusCode> {
    s.kluis.complete_password_reset(input, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation: choose the first password with the token from the invitation link.
#[utoipa::path(post, path = "/api/v1/auth/invitation/accept", tag = "auth", request_body = InvitationAcceptance,
    responses((status = 204), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn accept_invitation(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<InvitationAcceptance>,
) -> ApiResult<StatusCode> {
    s.kluis.accept_invitation(input, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send an invited user a new invitation email; earlier invitation links stop working.
#[utoipa::path(post, path = "/api/v1/users/{id}/invitation", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn resend_invitation(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    s.kluis.resend_invitation(&a, &c, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "a new invitation email is on its way",
        }),
    ))
}

// ---- pages -----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Nl,
}

/// Dutch when the browser prefers it over English, else English.
fn lang(headers: &HeaderMap) -> Lang {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    for part in accept.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("nl") {
            return Lang::Nl;
        }
        if tag.starts_with("en") {
            return Lang::En;
        }
    }
    Lang::En
}

struct PageText {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    password: &'static str,
    hint: &'static str,
    button: &'static str,
    done: &'static str,
    error: &'static str,
    missing: &'static str,
}

fn page_text(kind: &str, l: Lang) -> PageText {
    match (kind, l) {
        ("reset", Lang::En) => PageText {
            lang: "en",
            title: "Choose a new password",
            intro: "Choose a new password for your Kluis account. This link works once; afterwards you are signed out everywhere.",
            password: "New password",
            hint: HINT_EN,
            button: "Set password",
            done: "Done. Your password is changed; sign in with the new password.",
            error: "Error: ",
            missing: "This page needs the link from your email.",
        },
        ("reset", Lang::Nl) => PageText {
            lang: "nl",
            title: "Kies een nieuw wachtwoord",
            intro: "Kies een nieuw wachtwoord voor je Kluis-account. Deze link werkt één keer; daarna ben je overal afgemeld.",
            password: "Nieuw wachtwoord",
            hint: HINT_NL,
            button: "Wachtwoord instellen",
            done: "Klaar. Je wachtwoord is gewijzigd; meld je aan met het nieuwe wachtwoord.",
            error: "Fout: ",
            missing: "Deze pagina heeft de link uit je e-mail nodig.",
        },
        (_, Lang::En) => PageText {
            lang: "en",
            title: "Accept your invitation",
            intro: "Choose a password to activate your Kluis account. This link works once.",
            password: "Password",
            hint: HINT_EN,
            button: "Activate account",
            done: "Done. Your account is active; sign in with your email and this password.",
            error: "Error: ",
            missing: "This page needs the link from your invitation email.",
        },
        (_, Lang::Nl) => PageText {
            lang: "nl",
            title: "Accepteer je uitnodiging",
            intro: "Kies een wachtwoord om je Kluis-account te activeren. Deze link werkt één keer.",
            password: "Wachtwoord",
            hint: HINT_NL,
            button: "Account activeren",
            done: "Klaar. Je account is actief; meld je aan met je e-mailadres en dit wachtwoord.",
            error: "Fout: ",
            missing: "Deze pagina heeft de link uit je uitnodigingsmail nodig.",
        },
    }
}

const HINT_EN: &str = "At least 8 characters with an upper-case letter, a lower-case letter, a digit and a special character; common passwords are refused. Your organisation may ask for more.";
const HINT_NL: &str = "Minstens 8 tekens met een hoofdletter, een kleine letter, een cijfer en een leesteken; veelgebruikte wachtwoorden worden geweigerd. Je organisatie kan strengere eisen stellen.";

fn render_page(kind: &str, headers: &HeaderMap) -> impl IntoResponse + use<> {
    let t = page_text(kind, lang(headers));
    let (endpoint, field) = if kind == "reset" {
        ("/api/v1/auth/password-reset/complete", "new_password")
    } else {
        ("/api/v1/auth/invitation/accept", "password")
    };
    // Only constant strings go into this page; nothing from the request is reflected.
    let html = format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} - Kluis</title>
<link rel="stylesheet" href="/assets/kluis.css">
<script src="/assets/account-link.js" defer></script>
</head>
<body>
<main class="card">
<h1>{title}</h1>
<p>{intro}</p>
<form id="account-link" data-endpoint="{endpoint}" data-field="{field}" data-done="{done}" data-error="{error}" data-missing="{missing}">
  <label>{password} <input name="{field}" type="password" required minlength="8" autocomplete="new-password"></label>
  <p class="hint">{hint}</p>
  <button type="submit">{button}</button>
  <p id="result" role="status"></p>
</form>
</main>
</body>
</html>
"#,
        lang = t.lang,
        title = t.title,
        intro = t.intro,
        password = t.password,
        hint = t.hint,
        button = t.button,
        done = t.done,
        error = t.error,
        missing = t.missing,
    );
    ([(header::VARY, "Accept-Language")], Html(html))
}

/// The password reset page. The token travels in the URL fragment (`/reset#<token>`), which
/// browsers never send to the server.
pub async fn reset_page(headers: HeaderMap) -> impl IntoResponse {
    render_page("reset", &headers)
}

/// The invitation page (`/invite#<token>`).
pub async fn invite_page(headers: HeaderMap) -> impl IntoResponse {
    render_page("invite", &headers)
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/account-link.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_follows_accept_language() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                header::ACCEPT_LANGUAGE,
                v.parse().unwrap_or_else(|_| unreachable!()),
            );
            m
        };
        assert!(lang(&h("nl-NL,nl;q=0.9,en;q=0.8")) == Lang::Nl);
        assert!(lang(&h("en-GB,nl;q=0.5")) == Lang::En);
        assert!(lang(&h("de-DE,nl;q=0.5")) == Lang::Nl);
        assert!(lang(&HeaderMap::new()) == Lang::En);
    }
}
