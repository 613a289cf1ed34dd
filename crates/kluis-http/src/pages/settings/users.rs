//! Users: the list, invite by email (the core's invitation with an email link), change role,
//! disable and enable. The same services as `POST /api/v1/users` and `PATCH /api/v1/users/{id}`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kluis_core::users::{NewUserInput, UserUpdate};
use kluis_core::{Role, UserId};
use serde::Deserialize;

use super::super::i18n::Text;
use super::super::{Nav, Notice, render};
use super::{SText, Who, done, poster, viewer};
use crate::AppState;
use crate::auth::Ctx;

struct RoleChoice {
    key: &'static str,
    name: &'static str,
    selected: bool,
}

struct UserLine {
    id: String,
    name: String,
    email: String,
    role_name: &'static str,
    status_name: &'static str,
    disabled: bool,
    roles: Vec<RoleChoice>,
}

#[derive(Template)]
#[template(path = "settings_users.html")]
struct UsersPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    mail_configured: bool,
    users: Vec<UserLine>,
    next_cursor: Option<String>,
    invite_roles: Vec<RoleChoice>,
}

#[derive(Debug, Deserialize, Default)]
pub struct UsersQuery {
    done: Option<String>,
    cursor: Option<String>,
}

/// The roles this person may hand out (owners only by owners; the service checks again).
fn roles(w: &Who, selected: Role) -> Vec<RoleChoice> {
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || w.user.actor.can(kluis_core::Permission::OwnersManage))
        .map(|r| RoleChoice {
            key: r.as_str(),
            name: w.t.role_name(r.as_str()),
            selected: r == selected,
        })
        .collect()
}

async fn show(
    s: &AppState,
    c: &kluis_core::RequestContext,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
    cursor: Option<&str>,
) -> Response {
    let page = match s
        .kluis
        .list_users(&w.user.actor, c, cursor, Some(100))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let (st, n) = w.error(e);
            return render_page(s, w, st, n, Vec::new(), None);
        }
    };
    let lines = page
        .items
        .into_iter()
        .map(|u| UserLine {
            id: u.id.0.to_string(),
            role_name: w.t.role_name(u.role.as_str()),
            status_name: w.x.status(u.status.as_str(), u.has_password),
            disabled: u.status == kluis_core::Status::Disabled,
            roles: roles(w, u.role),
            name: u.display_name,
            email: u.email,
        })
        .collect();
    render_page(s, w, status, notice, lines, page.next_cursor)
}

fn render_page(
    s: &AppState,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
    users: Vec<UserLine>,
    next_cursor: Option<String>,
) -> Response {
    render(
        status,
        &UsersPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/users"),
            notice,
            csrf: w.csrf(),
            section: "users",
            mail_configured: s.kluis.mail_configured(),
            users,
            next_cursor,
            invite_roles: roles(w, Role::Member),
        },
    )
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show(&s, &c, &w, StatusCode::OK, notice, q.cursor.as_deref()).await
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    csrf: String,
    email: String,
    display_name: String,
    role: String,
}

pub async fn invite(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<InviteForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(role) = Role::parse(&f.role) else {
        let e = kluis_core::Error::validation("role", "invalid_role", "unknown role");
        let (st, n) = w.error(e);
        return show(&s, &c, &w, st, n, None).await;
    };
    let input = NewUserInput {
        email: f.email.trim().to_owned(),
        display_name: f.display_name.trim().to_owned(),
        role,
        // No password: an invitation (by email when this server sends email).
        password: None,
    };
    match s.kluis.create_user(&w.user.actor, &c, input).await {
        Ok(_) if s.kluis.mail_configured() => done("/settings/users", "invited"),
        Ok(_) => done("/settings/users", "invited_no_mail"),
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &c, &w, st, n, None).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UpdateForm {
    csrf: String,
    user: String,
    role: Option<String>,
    /// `active` or `disabled`.
    status: Option<String>,
}

pub async fn update(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<UpdateForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Ok(id) = uuid::Uuid::parse_str(&f.user).map(UserId) else {
        let (st, n) = w.error(kluis_core::Error::not_found());
        return show(&s, &c, &w, st, n, None).await;
    };
    let role = match f.role.as_deref().map(Role::parse) {
        Some(None) => {
            let e = kluis_core::Error::validation("role", "invalid_role", "unknown role");
            let (st, n) = w.error(e);
            return show(&s, &c, &w, st, n, None).await;
        }
        Some(r) => r,
        None => None,
    };
    let up = UserUpdate {
        role,
        status: f.status,
        ..UserUpdate::default()
    };
    match s.kluis.update_user(&w.user.actor, &c, id, up).await {
        Ok(_) => done("/settings/users", "user_saved"),
        Err(e) => {
            let (st, n) = w.error(e);
            show(&s, &c, &w, st, n, None).await
        }
    }
}
