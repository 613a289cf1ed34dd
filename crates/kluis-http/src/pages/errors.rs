//! Error pages in the app's style and language: 403 (signed in, but not allowed) and 404
//! (unknown page). Browsers asking for HTML get these; the JSON API keeps its JSON errors.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::boards::text::{self, BText};
use super::i18n::{Lang, Text};
use super::{Nav, Notice, PageUser, render, wants_html};
use crate::AppState;
use crate::auth::{SESSION_COOKIE, cookie};
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "boards_error.html")]
struct ErrorPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    title: &'static str,
    text: &'static str,
    home: &'static str,
}

fn page(headers: &HeaderMap, user: Option<&PageUser>, status: StatusCode) -> Response {
    let lang = Lang::of(headers);
    let (t, b) = (lang.text(), text::of(lang));
    let (title, body) = if status == StatusCode::FORBIDDEN {
        (b.forbidden_title, b.forbidden_text)
    } else {
        (b.not_found_title, b.not_found_text)
    };
    let (nav, home) = match user {
        Some(u) => (u.nav("/"), "/"),
        None => (Nav::anonymous("/"), "/sign-in"),
    };
    render(
        status,
        &ErrorPage {
            t,
            b,
            nav,
            notice: None,
            title,
            text: body,
            home,
        },
    )
}

/// The 403 page: a signed-in person without the permission a page needs.
pub fn forbidden_page(headers: &HeaderMap, user: Option<&PageUser>) -> Response {
    page(headers, user, StatusCode::FORBIDDEN)
}

/// The 404 page.
pub fn not_found_page(headers: &HeaderMap, user: Option<&PageUser>) -> Response {
    page(headers, user, StatusCode::NOT_FOUND)
}

/// A service error on a page view: 403 and 404 as pages, anything else as the API's error.
pub fn service_error_page(headers: &HeaderMap, user: &PageUser, e: ApiError) -> Response {
    match e.status {
        StatusCode::FORBIDDEN => forbidden_page(headers, Some(user)),
        StatusCode::NOT_FOUND => not_found_page(headers, Some(user)),
        _ => e.into_response(),
    }
}

/// The router's fallback: browsers get the 404 page, API clients the JSON 404.
pub async fn fallback(State(s): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let api = uri.path().starts_with("/api/") || uri.path().starts_with("/scim/");
    if api || !wants_html(&headers) {
        return ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint")
            .into_response();
    }
    // The menu of a signed-in person, when the session is a full one; never a redirect.
    let user = if cookie(&headers, SESSION_COOKIE).is_some() {
        super::page_user(&s, &headers).await.ok()
    } else {
        None
    };
    not_found_page(&headers, user.as_ref())
}
