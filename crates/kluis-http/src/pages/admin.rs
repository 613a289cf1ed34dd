//! The administrator's security settings: required second factor, password policy, single
//! sign-on, and help for locked-out users. Each form calls the service the JSON API calls,
//! so the permission checks and audit events are the same.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kluis_core::mfa::MfaPolicyDoc;
use kluis_core::saml::{SamlSettingsDoc, SamlSettingsInput};
use kluis_core::scim::service::{RoleMapping, ScimSettingsDoc, ScimSettingsInput};
use kluis_core::settings::PasswordPolicyDoc;
use kluis_core::sso::{SsoProvider, SsoSettingsDoc, SsoSettingsInput};
use kluis_core::users::User;
use kluis_core::{ErrorKind, Permission, RequestContext, Role, UserId};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::{Nav, Notice, PageUser, non_empty, page_user, render, see_other};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

/// One role's line in the "required second factor" form.
struct RoleChoice {
    key: &'static str,
    name: &'static str,
    checked: bool,
}

/// One user's line in the users table.
struct UserLine {
    user: User,
    role_name: &'static str,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    roles: Vec<RoleChoice>,
    password: PasswordPolicyDoc,
    /// The OpenID Connect configuration (None when there is none, or SAML is configured).
    sso: Option<SsoSettingsDoc>,
    sso_provider: &'static str,
    saml: Option<SamlSettingsDoc>,
    saml_domains: String,
    saml_jit_roles: Vec<RoleChoice>,
    sso_domains: String,
    users: Vec<UserLine>,
    next_cursor: Option<String>,
    jit_roles: Vec<RoleChoice>,
    scim: ScimSettingsDoc,
    /// The mapping as the form edits it: one `group = role` per line.
    scim_mapping_text: String,
    scim_default_roles: Vec<RoleChoice>,
    /// A SCIM token just created: shown this once.
    new_scim_token: Option<String>,
    /// False on a build without SAML support: the SAML section is not shown.
    saml_built: bool,
    /// The warning that this server sends no email (None when it does).
    mail_off: Option<&'static str>,
    settings_title: &'static str,
}

#[derive(Debug, Deserialize, Default)]
pub struct AdminQuery {
    done: Option<String>,
    cursor: Option<String>,
}

fn provider_key(p: SsoProvider) -> &'static str {
    match p {
        SsoProvider::Entra => "entra",
        SsoProvider::Google => "google",
        SsoProvider::Oidc => "oidc",
        SsoProvider::Saml => "saml",
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's inputs: who, which page of users, what to announce"
)]
async fn render_admin(
    s: &AppState,
    ctx: &RequestContext,
    t: &'static Text,
    user: &PageUser,
    status: StatusCode,
    notice: Option<Notice>,
    cursor: Option<&str>,
    shown: Shown,
) -> Response {
    let a = &user.actor;
    let loaded = async {
        let mfa = s.kluis.mfa_policy(a).await?;
        let password = s.kluis.password_policy(a).await?;
        let sso = match s.kluis.sso_settings(a).await {
            Ok(doc) => Some(doc),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        // Absent, or this build has no SAML support (then the section is hidden).
        let saml = if kluis_core::saml::SAML_BUILT {
            s.kluis.saml_settings(a).await.ok()
        } else {
            None
        };
        let scim = s.kluis.scim_settings(a).await?;
        let users = s.kluis.list_users(a, ctx, cursor, Some(100)).await?;
        Ok::<_, kluis_core::Error>((mfa, password, sso, saml, scim, users))
    }
    .await;
    let (mfa, password, sso, saml, scim, users) = match loaded {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let choice = |r: Role, checked: bool| RoleChoice {
        key: r.as_str(),
        name: t.role_name(r.as_str()),
        checked,
    };
    let sso_provider = sso.as_ref().map_or("entra", |d| provider_key(d.provider));
    let sso = sso.filter(|d| d.provider != SsoProvider::Saml);
    let jit_role = sso.as_ref().map_or(Role::Member, |d| d.jit_role);
    let saml_jit = saml.as_ref().map_or(Role::Member, |d| d.jit_role);
    render(
        status,
        &AdminPage {
            t,
            nav: user.nav("/admin/security"),
            notice,
            csrf: user.csrf.clone(),
            roles: Role::ALL
                .into_iter()
                .map(|r| choice(r, mfa.required_roles.contains(&r)))
                .collect(),
            password,
            sso_provider,
            saml_domains: saml
                .as_ref()
                .map(|d| d.allowed_domains.join(", "))
                .unwrap_or_default(),
            saml,
            saml_jit_roles: Role::ALL
                .into_iter()
                .filter(|r| *r != Role::Owner)
                .map(|r| choice(r, r == saml_jit))
                .collect(),
            sso_domains: sso
                .as_ref()
                .map(|d| d.allowed_domains.join(", "))
                .unwrap_or_default(),
            sso,
            users: users
                .items
                .into_iter()
                .map(|u| UserLine {
                    role_name: t.role_name(u.role.as_str()),
                    user: u,
                })
                .collect(),
            next_cursor: users.next_cursor,
            jit_roles: Role::ALL
                .into_iter()
                .filter(|r| *r != Role::Owner)
                .map(|r| choice(r, r == jit_role))
                .collect(),
            scim_mapping_text: scim
                .mappings
                .iter()
                .map(|m| format!("{} = {}", m.group, m.role.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            scim_default_roles: Role::ALL
                .into_iter()
                .filter(|r| *r != Role::Owner)
                .map(|r| choice(r, r == scim.default_role))
                .collect(),
            scim,
            new_scim_token: shown.new_scim_token,
            saml_built: kluis_core::saml::SAML_BUILT,
            mail_off: (!s.kluis.mail_configured())
                .then_some(super::settings::SText::of(lang_of(t)).mail_off),
            settings_title: super::settings::SText::of(lang_of(t)).settings_title,
        },
    )
}

fn lang_of(t: &Text) -> Lang {
    Lang::parse(t.lang).unwrap_or(Lang::En)
}

/// Something shown once on the admin page after an action.
#[derive(Default)]
struct Shown {
    new_scim_token: Option<String>,
}

/// Only for people who may change security settings or manage users; everyone else gets the
/// app's 403 page (the services would refuse them anyway).
fn may_administer(user: &PageUser) -> bool {
    user.actor.can(Permission::SettingsManage) || user.actor.can(Permission::UsersManage)
}

fn forbidden(headers: &HeaderMap, user: &PageUser) -> Response {
    super::errors::forbidden_page(headers, Some(user))
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let t = Lang::of(&headers).text();
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !may_administer(&user) {
        return forbidden(&headers, &user);
    }
    let notice = q
        .done
        .as_deref()
        .and_then(|d| t.done(d))
        .and_then(Notice::ok);
    let cursor = q.cursor.as_deref();
    render_admin(
        &s,
        &c,
        t,
        &user,
        StatusCode::OK,
        notice,
        cursor,
        Shown::default(),
    )
    .await
}

async fn poster(s: &AppState, headers: &HeaderMap, csrf: &str) -> Result<PageUser, Response> {
    let user = super::form_page_user(s, headers, csrf).await?;
    if !may_administer(&user) {
        return Err(forbidden(headers, &user));
    }
    Ok(user)
}

async fn after(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    result: kluis_core::Result<()>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/admin/security?done={done}"), HeaderMap::new()),
        Err(e) => {
            let t = Lang::of(headers).text();
            let e: ApiError = e.into();
            let notice = Notice::error(t, &e);
            render_admin(s, c, t, user, e.status, notice, None, Shown::default()).await
        }
    }
}

/// A checked HTML checkbox sends its value; an unchecked one sends nothing.
#[derive(Deserialize)]
pub struct MfaPolicyForm {
    csrf: String,
    owner: Option<String>,
    admin: Option<String>,
    manager: Option<String>,
    member: Option<String>,
    read_only: Option<String>,
}

pub async fn mfa_policy(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<MfaPolicyForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let picked = [
        (Role::Owner, &f.owner),
        (Role::Admin, &f.admin),
        (Role::Manager, &f.manager),
        (Role::Member, &f.member),
        (Role::ReadOnly, &f.read_only),
    ];
    let doc = MfaPolicyDoc {
        required_roles: picked
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(r, _)| r)
            .collect(),
    };
    let r = s.kluis.set_mfa_policy(&user.actor, &c, doc).await.map(drop);
    after(&s, &c, &headers, &user, r, "saved").await
}

#[derive(Deserialize)]
pub struct PasswordPolicyForm {
    csrf: String,
    min_length: String,
    require_upper: Option<String>,
    require_lower: Option<String>,
    require_digit: Option<String>,
    require_special: Option<String>,
    reject_common: Option<String>,
}

pub async fn password_policy(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<PasswordPolicyForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let r = match f.min_length.trim().parse::<usize>() {
        Ok(min_length) => {
            let doc = PasswordPolicyDoc {
                min_length,
                require_upper: f.require_upper.is_some(),
                require_lower: f.require_lower.is_some(),
                require_digit: f.require_digit.is_some(),
                require_special: f.require_special.is_some(),
                reject_common: f.reject_common.is_some(),
            };
            s.kluis
                .set_password_policy(&user.actor, &c, doc)
                .await
                .map(drop)
        }
        Err(_) => Err(kluis_core::Error::validation(
            "min_length",
            "invalid_number",
            "minimum length must be a whole number",
        )),
    };
    after(&s, &c, &headers, &user, r, "saved").await
}

#[derive(Deserialize)]
pub struct SsoForm {
    csrf: String,
    provider: String,
    #[serde(default)]
    entra_tenant_id: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    hosted_domain: String,
    client_id: String,
    #[serde(default)]
    client_secret: String,
    allowed_domains: String,
    jit_enabled: Option<String>,
    jit_role: String,
    sso_required: Option<String>,
}

pub async fn sso(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<SsoForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let provider = [SsoProvider::Entra, SsoProvider::Google, SsoProvider::Oidc]
        .into_iter()
        .find(|p| provider_key(*p) == f.provider);
    let r = match provider {
        None => Err(kluis_core::Error::validation(
            "provider",
            "invalid_provider",
            "unknown provider",
        )),
        Some(provider) => {
            let input = SsoSettingsInput {
                provider,
                entra_tenant_id: non_empty(&f.entra_tenant_id),
                issuer: non_empty(&f.issuer),
                hosted_domain: non_empty(&f.hosted_domain),
                client_id: f.client_id.trim().to_owned(),
                // Write-only: empty keeps the stored secret. Sent as typed.
                client_secret: (!f.client_secret.is_empty()).then_some(f.client_secret),
                allowed_domains: f.allowed_domains.split(',').filter_map(non_empty).collect(),
                jit_enabled: f.jit_enabled.is_some(),
                jit_role: Role::parse(&f.jit_role),
                sso_required: f.sso_required.is_some(),
            };
            s.kluis
                .put_sso_settings(&user.actor, &c, input)
                .await
                .map(drop)
        }
    };
    after(&s, &c, &headers, &user, r, "saved").await
}

#[derive(Deserialize)]
pub struct SamlForm {
    csrf: String,
    idp_entity_id: String,
    idp_sso_url: String,
    idp_certificate_pem: String,
    allow_sha1: Option<String>,
    allowed_domains: String,
    jit_enabled: Option<String>,
    jit_role: String,
    sso_required: Option<String>,
}

/// SAML configuration (replaces an OpenID Connect one: a tenant has one SSO configuration).
pub async fn saml(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<SamlForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input = SamlSettingsInput {
        idp_entity_id: f.idp_entity_id.trim().to_owned(),
        idp_sso_url: f.idp_sso_url.trim().to_owned(),
        idp_certificate_pem: f.idp_certificate_pem,
        allow_sha1: Some(f.allow_sha1.is_some()),
        allowed_domains: f.allowed_domains.split(',').filter_map(non_empty).collect(),
        jit_enabled: f.jit_enabled.is_some(),
        jit_role: Role::parse(&f.jit_role),
        sso_required: f.sso_required.is_some(),
    };
    let r = s
        .kluis
        .put_saml_settings(&user.actor, &c, input)
        .await
        .map(drop);
    after(&s, &c, &headers, &user, r, "saved").await
}

/// A new SCIM token (the previous one stops working), shown once on the page.
pub async fn scim_token(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match s.kluis.create_scim_token(&user.actor, &c).await {
        Ok(created) => {
            let t = Lang::of(&headers).text();
            let shown = Shown {
                new_scim_token: Some(created.token),
            };
            let notice = Notice::ok(t.done_scim_token);
            render_admin(&s, &c, t, &user, StatusCode::OK, notice, None, shown).await
        }
        Err(e) => after(&s, &c, &headers, &user, Err(e), "").await,
    }
}

pub async fn scim_revoke(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let r = s.kluis.revoke_scim_token(&user.actor, &c).await;
    after(&s, &c, &headers, &user, r, "saved").await
}

#[derive(Deserialize)]
pub struct ScimMappingForm {
    csrf: String,
    default_role: String,
    #[serde(default)]
    mappings: String,
}

/// `group = role` per line; a line that does not parse is an error naming the line.
fn parse_mappings(text: &str) -> kluis_core::Result<Vec<RoleMapping>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let bad = || {
                kluis_core::Error::validation(
                    "mappings",
                    "invalid_mapping",
                    format!("line {}: write `group name = role`", i + 1),
                )
            };
            let (group, role) = l.rsplit_once('=').ok_or_else(bad)?;
            Ok(RoleMapping {
                group: group.trim().to_owned(),
                role: Role::parse(role.trim()).ok_or_else(bad)?,
            })
        })
        .collect()
}

pub async fn scim_mapping(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<ScimMappingForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let r = match (parse_mappings(&f.mappings), Role::parse(&f.default_role)) {
        (Ok(mappings), Some(default_role)) => s
            .kluis
            .put_scim_settings(
                &user.actor,
                &c,
                ScimSettingsInput {
                    default_role,
                    mappings,
                },
            )
            .await
            .map(drop),
        (Err(e), _) => Err(e),
        (_, None) => Err(kluis_core::Error::validation(
            "default_role",
            "invalid_role",
            "unknown role",
        )),
    };
    after(&s, &c, &headers, &user, r, "saved").await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sso_remove(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let r = s.kluis.delete_sso_settings(&user.actor, &c).await;
    after(&s, &c, &headers, &user, r, "sso_removed").await
}

#[derive(Deserialize)]
pub struct UserActionForm {
    csrf: String,
    user: String,
    action: String,
}

pub async fn user_action(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<UserActionForm>,
) -> Response {
    let user = match poster(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(id) = uuid::Uuid::parse_str(&f.user).map(UserId) else {
        let r = Err(kluis_core::Error::not_found());
        return after(&s, &c, &headers, &user, r, "").await;
    };
    let a = &user.actor;
    let (r, done) = match f.action.as_str() {
        "unlock" => (s.kluis.unlock_user(a, &c, id).await, "unlocked"),
        "reset_mfa" => (s.kluis.reset_user_mfa(a, &c, id).await, "mfa_reset"),
        "end_sessions" => (end_sessions(&s, a, &c, id).await, "revoked"),
        "break_glass_on" => (s.kluis.set_break_glass(a, &c, id, true).await, "saved"),
        "break_glass_off" => (s.kluis.set_break_glass(a, &c, id, false).await, "saved"),
        _ => (
            Err(kluis_core::Error::validation(
                "action",
                "invalid_action",
                "unknown action",
            )),
            "",
        ),
    };
    after(&s, &c, &headers, &user, r, done).await
}

/// Every live session of one user (each revocation is its own audit event).
async fn end_sessions(
    s: &AppState,
    a: &kluis_core::Actor,
    c: &RequestContext,
    id: UserId,
) -> kluis_core::Result<()> {
    for session in s.kluis.user_sessions(a, c, id).await? {
        if !session.current {
            s.kluis.revoke_user_session(a, c, id, session.id).await?;
        }
    }
    Ok(())
}
