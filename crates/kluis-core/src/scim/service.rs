//! SCIM services: the tenant's SCIM token and group-to-role mapping (admin API), and the
//! provisioning of users and groups (SCIM token only). Every change and its audit event
//! commit in one tenant transaction.
//!
//! Rules: owners are never created, changed, deactivated or deleted over SCIM, and no group
//! maps to the owner role (taking over a tenant must not be one IdP misconfiguration away).
//! `active: false` and DELETE deprovision: the user's sessions and the API keys they created are
//! revoked in the same transaction. Provisioned users have no password: they sign in with SSO
//! (or an admin sends them an invitation).

use std::collections::{BTreeSet, HashMap};

use crate::db::TenantTx;
use crate::db::rows::UserPatch;
use crate::db::scim::PutScimUser;
use kluis_crypto::token;
use kluis_types::{Email, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::filter::{self, Filter, Resource};
use super::patch::{self, PatchRequest};
use super::{GROUP_SCHEMA, ListParams, MAX_RESULTS, USER_SCHEMA, list_response, project};
use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::users::{NewUserInput, User, insert_user, rfc3339, user_from_row};
use crate::{
    Actor, Error, ErrorKind, Kluis, Permission, Principal, RequestContext, Result, Role, UserId,
    tokens, validate,
};

// ---- admin API -------------------------------------------------------------------------------

/// The new SCIM token: shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScimTokenCreated {
    /// Give to the identity provider as its secret token (`Authorization: Bearer ...`).
    pub token: String,
    pub created_at: String,
    /// True when a previous token was revoked by this one.
    pub rotated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// The group's `displayName` as the identity provider sends it (exact match).
    pub group: String,
    /// Any role but `owner`.
    pub role: Role,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimSettingsInput {
    /// Role of a provisioned user in no mapped group (not `owner`).
    pub default_role: Role,
    pub mappings: Vec<RoleMapping>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScimSettingsDoc {
    pub token_active: bool,
    pub token_created_at: Option<String>,
    pub default_role: Role,
    pub mappings: Vec<RoleMapping>,
}

const MAX_MAPPINGS: usize = 100;

struct Mapping {
    default_role: Role,
    groups: HashMap<String, Role>,
}

async fn load_mapping(tx: &mut TenantTx) -> Result<(Role, Vec<RoleMapping>)> {
    match tx.scim_settings().await? {
        None => Ok((Role::ReadOnly, Vec::new())),
        Some(r) => Ok((
            r.default_role,
            serde_json::from_str(&r.role_mappings)
                .map_err(|_| Error::internal("stored SCIM mappings unreadable"))?,
        )),
    }
}

/// Rank for "highest role": owner 0 .. read_only 4.
fn rank(r: Role) -> usize {
    Role::ALL.iter().position(|x| *x == r).unwrap_or(usize::MAX)
}

impl Kluis {
    /// Creates the tenant's SCIM token, revoking any previous one (rotation). Owners and admins,
    /// signed in (never an API key); audited.
    pub async fn create_scim_token(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ScimTokenCreated> {
        let by = actor.require_user()?;
        actor.require(Permission::ScimManage)?;
        let secret = token::generate_secret();
        let now = self.now();
        let id = Uuid::now_v7();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let rotated = tx.revoke_scim_tokens(now).await? > 0;
        tx.insert_scim_token(id, &token::hash_secret(&secret), Some(by), now)
            .await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("scim.token.create", "scim_token", id).with(json!({"rotated": rotated}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(ScimTokenCreated {
            token: tokens::scim_token(actor.tenant(), &secret),
            created_at: rfc3339(now),
            rotated,
        })
    }

    pub async fn revoke_scim_token(&self, actor: &Actor, ctx: &RequestContext) -> Result<()> {
        actor.require_user()?;
        actor.require(Permission::ScimManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        if tx.revoke_scim_tokens(self.now()).await? == 0 {
            return Err(Error::not_found());
        }
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("scim.token.revoke", "scim_token", "");
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn scim_settings(&self, actor: &Actor) -> Result<ScimSettingsDoc> {
        actor.require_user()?;
        actor.require(Permission::ScimManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let token = tx.live_scim_token().await?;
        let (default_role, mappings) = load_mapping(&mut tx).await?;
        Ok(ScimSettingsDoc {
            token_active: token.is_some(),
            token_created_at: token.map(|t| rfc3339(t.created_at)),
            default_role,
            mappings,
        })
    }

    /// Sets the group-to-role mapping and re-derives the role of every group member at once.
    pub async fn put_scim_settings(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: ScimSettingsInput,
    ) -> Result<ScimSettingsDoc> {
        actor.require_user()?;
        actor.require(Permission::ScimManage)?;
        if input.default_role == Role::Owner {
            return Err(Error::validation(
                "default_role",
                "owner_not_mappable",
                "the owner role cannot be granted over SCIM",
            ));
        }
        if input.mappings.len() > MAX_MAPPINGS {
            return Err(Error::validation(
                "mappings",
                "too_many_mappings",
                "at most 100 mappings",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut mappings = Vec::new();
        for m in input.mappings {
            let group = validate::name("mappings", &m.group)?;
            if m.role == Role::Owner {
                return Err(Error::validation(
                    "mappings",
                    "owner_not_mappable",
                    "the owner role cannot be granted over SCIM",
                ));
            }
            if !seen.insert(group.clone()) {
                return Err(Error::validation(
                    "mappings",
                    "duplicate_group",
                    "each group may be mapped once",
                ));
            }
            mappings.push(RoleMapping {
                group,
                role: m.role,
            });
        }
        let json = serde_json::to_string(&mappings).map_err(|_| Error::internal("serialise"))?;
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        tx.put_scim_settings(input.default_role, &json, now).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("scim.settings.update", "scim_settings", actor.tenant())
            .with(json!({"default_role": input.default_role, "mappings": mappings}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        let members: BTreeSet<UserId> = tx
            .scim_members(None)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        self.recompute_roles(&mut tx, &keys, actor, ctx, members)
            .await?;
        let token = tx.live_scim_token().await?;
        tx.commit().await?;
        Ok(ScimSettingsDoc {
            token_active: token.is_some(),
            token_created_at: token.map(|t| rfc3339(t.created_at)),
            default_role: input.default_role,
            mappings,
        })
    }

    /// Resolves `Authorization: Bearer kluisscim_...` to the tenant's SCIM actor.
    pub async fn authenticate_scim(&self, presented: &str) -> Result<Actor> {
        let (tenant, secret) =
            tokens::parse_scim_token(presented).ok_or_else(Error::unauthenticated)?;
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let m = tx
            .scim_token_by_hash(&token::hash_secret(secret))
            .await?
            .ok_or_else(Error::unauthenticated)?;
        if !m.tenant_status.is_active() {
            return Err(crate::sessions::suspended_or_unknown());
        }
        Ok(Actor::new(tenant, Principal::Scim { token: m.id }))
    }

    /// Re-seals provisioned users' SCIM attributes under the current data key (part of
    /// `reencrypt_tenant`).
    pub(crate) async fn reencrypt_scim(
        &self,
        tenant: crate::TenantId,
        p: &mut crate::keys::ReencryptProgress,
    ) -> Result<()> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut n = 0;
        for row in tx.scim_users().await? {
            if keys.stale(&row.attrs) {
                let fresh = keys.reseal("scim_users", "attrs", row.id.0, &row.attrs)?;
                if tx.reseal_scim_attrs(row.id, &row.attrs, &fresh).await? {
                    n += 1;
                }
            }
            p.rows_seen += 1;
        }
        self.count_sealed(&mut tx, &keys, n).await?;
        tx.commit().await?;
        p.values_resealed += n as u64;
        Ok(())
    }

    /// Sets each user's role to the highest role among their mapped groups (the default role
    /// when none is mapped). Owners are left alone.
    async fn recompute_roles(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        users: impl IntoIterator<Item = UserId>,
    ) -> Result<()> {
        let (default_role, list) = load_mapping(tx).await?;
        let mapping = Mapping {
            default_role,
            groups: list.into_iter().map(|m| (m.group, m.role)).collect(),
        };
        let now = self.now();
        for u in users {
            let Some(row) = tx.user(u).await? else {
                continue;
            };
            if row.role == Role::Owner {
                continue;
            }
            let groups = tx.scim_groups_of(u).await?;
            let role = groups
                .iter()
                .filter_map(|g| mapping.groups.get(g).copied())
                .min_by_key(|r| rank(*r))
                .unwrap_or(mapping.default_role);
            if role == row.role {
                continue;
            }
            tx.update_user(
                u,
                &UserPatch {
                    display_name: None,
                    role: Some(role),
                    status: None,
                    password_hash: None,
                },
                now,
            )
            .await?;
            let ev =
                Event::ok("scim.user.role", "user", u).with(json!({"old": row.role, "new": role}));
            self.audit(tx, keys, &actor_label(actor), ctx, ev).await?;
        }
        Ok(())
    }
}

// ---- users -----------------------------------------------------------------------------------

fn scim_err(kind: ErrorKind, scim_type: &'static str, msg: impl Into<String>) -> Error {
    Error::new(kind, scim_type, msg)
}

fn invalid_value(msg: impl Into<String>) -> Error {
    scim_err(ErrorKind::BadRequest, "invalidValue", msg)
}

fn uniqueness(msg: impl Into<String>) -> Error {
    scim_err(ErrorKind::Conflict, "uniqueness", msg)
}

fn owner_refused() -> Error {
    scim_err(
        ErrorKind::Forbidden,
        "mutability",
        "owners are managed in Kluis, not over SCIM",
    )
}

/// The SCIM attributes Kluis has no column for; stored sealed as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct StoredAttrs {
    user_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Map<String, Value>>,
    #[serde(default)]
    emails: Vec<Map<String, Value>>,
}

/// A validated user document (POST, PUT, or the result of a PATCH).
struct UserInput {
    attrs: StoredAttrs,
    active: bool,
}

fn short_string(v: &Value, what: &str, max: usize) -> Result<String> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid_value(format!("{what} must be a string")))?;
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(invalid_value(format!(
            "{what} must be at most {max} characters without control characters"
        )));
    }
    Ok(s.to_owned())
}

/// `true`/`false`, or Entra ID's `"True"`/`"False"` strings.
fn boolean(v: &Value, what: &str) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid_value(format!("{what} must be a boolean"))),
    }
}

fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn parse_user(doc: &Value) -> Result<UserInput> {
    let obj = doc.as_object().ok_or_else(|| {
        scim_err(
            ErrorKind::BadRequest,
            "invalidSyntax",
            "expected a JSON object",
        )
    })?;
    let user_name = get(obj, "userName")
        .ok_or_else(|| invalid_value("userName is required"))
        .and_then(|v| short_string(v, "userName", 256))?;
    if user_name.trim().is_empty() {
        return Err(invalid_value("userName is required"));
    }
    let external_id = get(obj, "externalId")
        .map(|v| short_string(v, "externalId", 256))
        .transpose()?;
    let display_name = get(obj, "displayName")
        .map(|v| short_string(v, "displayName", 200))
        .transpose()?
        .filter(|s| !s.trim().is_empty());
    let name = match get(obj, "name") {
        None => None,
        Some(Value::Object(n)) => {
            let mut out = Map::new();
            for key in ["givenName", "familyName", "formatted"] {
                if let Some(v) = get(n, key) {
                    out.insert(key.to_owned(), Value::String(short_string(v, key, 200)?));
                }
            }
            (!out.is_empty()).then_some(out)
        }
        Some(_) => return Err(invalid_value("name must be an object")),
    };
    let mut emails = Vec::new();
    match get(obj, "emails") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > 10 {
                return Err(invalid_value("at most 10 emails"));
            }
            for item in items {
                let Some(e) = item.as_object() else {
                    return Err(invalid_value("emails must be objects"));
                };
                let Some(value) = get(e, "value") else {
                    continue;
                };
                let value = validate::email("emails", &short_string(value, "emails.value", 254)?)
                    .map_err(|_| invalid_value("emails.value must be an email address"))?;
                let mut out = Map::new();
                out.insert("value".into(), Value::String(value.into_string()));
                if let Some(t) = get(e, "type") {
                    out.insert(
                        "type".into(),
                        Value::String(short_string(t, "emails.type", 32)?),
                    );
                }
                if let Some(p) = get(e, "primary") {
                    out.insert("primary".into(), Value::Bool(boolean(p, "emails.primary")?));
                }
                emails.push(out);
            }
        }
        Some(_) => return Err(invalid_value("emails must be an array")),
    }
    let active = get(obj, "active")
        .map(|v| boolean(v, "active"))
        .transpose()?
        .unwrap_or(true);
    Ok(UserInput {
        attrs: StoredAttrs {
            user_name,
            external_id,
            display_name,
            name,
            emails,
        },
        active,
    })
}

impl StoredAttrs {
    /// The Kluis sign-in address: the primary email, else the work one, else the first, else
    /// the userName when it is an address.
    fn kluis_email(&self) -> Option<String> {
        let pick = |f: &dyn Fn(&Map<String, Value>) -> bool| {
            self.emails
                .iter()
                .find(|e| f(e))
                .and_then(|e| e.get("value").and_then(Value::as_str))
                .map(str::to_owned)
        };
        pick(&|e| e.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| pick(&|e| e.get("type").and_then(Value::as_str) == Some("work")))
            .or_else(|| pick(&|_| true))
            .or_else(|| {
                validate::email("userName", &self.user_name)
                    .ok()
                    .map(Email::into_string)
            })
    }

    fn kluis_display_name(&self) -> String {
        let n = |k: &str| {
            self.name
                .as_ref()
                .and_then(|n| n.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let joined = format!("{} {}", n("givenName"), n("familyName"));
        let candidates = [
            self.display_name.as_deref().unwrap_or(""),
            n("formatted"),
            joined.trim(),
            &self.user_name,
        ];
        candidates
            .into_iter()
            .find_map(|c| validate::name("displayName", c).ok())
            .unwrap_or_else(|| "SCIM user".to_owned())
    }
}

/// A user as SCIM shows it.
struct UserView {
    user: User,
    attrs: Option<StoredAttrs>,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

fn millis(rfc: &str) -> i64 {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
        .unwrap_or(0)
}

impl UserView {
    /// The writable attributes (what a PATCH works on).
    fn doc(&self) -> Value {
        let mut o = Map::new();
        match &self.attrs {
            Some(a) => {
                o.insert("userName".into(), json!(a.user_name));
                if let Some(x) = &a.external_id {
                    o.insert("externalId".into(), json!(x));
                }
                if let Some(x) = &a.display_name {
                    o.insert("displayName".into(), json!(x));
                }
                if let Some(x) = &a.name {
                    o.insert("name".into(), Value::Object(x.clone()));
                }
                if !a.emails.is_empty() {
                    o.insert("emails".into(), json!(a.emails));
                }
            }
            // A user created in Kluis, not (yet) provisioned: its address is its userName.
            None => {
                o.insert("userName".into(), json!(self.user.email));
                o.insert("displayName".into(), json!(self.user.display_name));
                o.insert(
                    "emails".into(),
                    json!([{"value": self.user.email, "type": "work", "primary": true}]),
                );
            }
        }
        o.insert("active".into(), json!(self.user.status.is_active()));
        Value::Object(o)
    }

    fn render(&self, base: &str) -> Value {
        let mut doc = self.doc();
        let id = self.user.id.to_string();
        if let Some(o) = doc.as_object_mut() {
            o.insert("schemas".into(), json!([USER_SCHEMA]));
            o.insert("id".into(), json!(id));
            o.insert(
                "meta".into(),
                json!({
                    "resourceType": "User",
                    "created": rfc3339(self.created_at),
                    "lastModified": rfc3339(self.updated_at),
                    "location": format!("{base}/Users/{id}"),
                    "version": format!("W/\"{}-{}\"", self.version, self.updated_at),
                }),
            );
        }
        doc
    }
}

async fn user_view(tx: &mut TenantTx, keys: &TenantKeys, id: UserId) -> Result<Option<UserView>> {
    let Some(row) = tx.user(id).await? else {
        return Ok(None);
    };
    let user = user_from_row(keys, row)?;
    let scim = tx.scim_user(id).await?;
    Ok(Some(match scim {
        None => UserView {
            version: 0,
            created_at: millis(&user.created_at),
            updated_at: millis(&user.updated_at),
            user,
            attrs: None,
        },
        Some(s) => {
            let attrs: StoredAttrs =
                serde_json::from_slice(&keys.open("scim_users", "attrs", s.id.0, &s.attrs)?)
                    .map_err(|_| Error::internal("stored SCIM attributes unreadable"))?;
            UserView {
                version: s.version,
                created_at: s.created_at,
                updated_at: s.updated_at.max(millis(&user.updated_at)),
                user,
                attrs: Some(attrs),
            }
        }
    }))
}

fn not_found() -> Error {
    scim_err(ErrorKind::NotFound, "not_found", "no such resource")
}

fn parse_id<T: std::str::FromStr>(id: &str) -> Result<T> {
    id.parse().map_err(|_| not_found())
}

/// startIndex is 1-based; count is capped. Returns (start, count).
fn paging(p: &ListParams) -> (usize, usize) {
    let start = usize::try_from(p.start_index.unwrap_or(1).max(1)).unwrap_or(1);
    let count = usize::try_from(p.count.unwrap_or(MAX_RESULTS as i64).max(0))
        .unwrap_or(0)
        .min(MAX_RESULTS);
    (start, count)
}

fn page(resource: Resource, all: Vec<Value>, p: &ListParams) -> Value {
    let (start, count) = paging(p);
    let total = all.len();
    let items = all
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|d| {
            project(
                resource,
                d,
                p.attributes.as_deref(),
                p.excluded_attributes.as_deref(),
            )
        })
        .collect();
    list_response(items, total, start)
}

impl Kluis {
    fn user_name_index(keys: &TenantKeys, user_name: &str) -> [u8; 32] {
        keys.blind("scim_users.user_name", &user_name.trim().to_lowercase())
    }

    fn external_id_index(keys: &TenantKeys, external_id: &str) -> [u8; 32] {
        keys.blind("scim_users.external_id", external_id)
    }

    /// Refuses a userName held by another user (a provisioned one, or a Kluis user whose
    /// address it is).
    async fn check_user_name_free(
        tx: &mut TenantTx,
        keys: &TenantKeys,
        user_name: &str,
        me: Option<UserId>,
    ) -> Result<()> {
        if let Some(other) = tx
            .scim_user_by_name_index(&Self::user_name_index(keys, user_name))
            .await?
            && Some(other) != me
        {
            return Err(uniqueness("userName is already taken"));
        }
        if let Ok(email) = validate::email("userName", user_name)
            && let Some(other) = tx.user_by_email_index(&keys.email_index(&email)).await?
            && Some(other.id) != me
            && tx.scim_user(other.id).await?.is_none()
        {
            return Err(uniqueness("userName is already taken"));
        }
        Ok(())
    }

    async fn store_attrs(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        id: UserId,
        attrs: &StoredAttrs,
        now: i64,
    ) -> Result<()> {
        let plain = serde_json::to_vec(attrs).map_err(|_| Error::internal("serialise"))?;
        let sealed = keys.seal("scim_users", "attrs", id.0, &plain)?;
        let ext = attrs
            .external_id
            .as_deref()
            .map(|e| Self::external_id_index(keys, e));
        tx.put_scim_user(&PutScimUser {
            id,
            user_name_bidx: &Self::user_name_index(keys, &attrs.user_name),
            external_id_bidx: ext.as_ref().map(|e| &e[..]),
            attrs: &sealed,
            now,
        })
        .await
        .map_err(|e| match Error::from(e) {
            c if c.kind == ErrorKind::Conflict => uniqueness("userName is already taken"),
            other => other,
        })?;
        self.count_sealed(tx, keys, 1).await
    }

    pub async fn scim_create_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        body: &Value,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let input = parse_user(body)?;
        let email = input.attrs.kluis_email().ok_or_else(|| {
            invalid_value("give an email address (emails, or a userName that is one)")
        })?;
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        Self::check_user_name_free(&mut tx, &keys, &input.attrs.user_name, None).await?;
        let (default_role, _) = load_mapping(&mut tx).await?;
        let new = NewUserInput {
            email,
            display_name: input.attrs.kluis_display_name(),
            role: default_role,
            password: None,
        };
        let user = insert_user(self, &mut tx, &new, now)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::Conflict => uniqueness("a user with this email already exists"),
                _ => e,
            })?;
        if !input.active {
            tx.update_user(
                user.id,
                &UserPatch {
                    display_name: None,
                    role: None,
                    status: Some(Status::Disabled),
                    password_hash: None,
                },
                now,
            )
            .await?;
        }
        self.store_attrs(&mut tx, &keys, user.id, &input.attrs, now)
            .await?;
        let ev = Event::ok("scim.user.create", "user", user.id).with(json!({
            "user_name": input.attrs.user_name, "email": user.email, "role": user.role,
            "active": input.active
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        let view = user_view(&mut tx, &keys, user.id)
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(view.render(base))
    }

    pub async fn scim_get_user(&self, actor: &Actor, base: &str, id: &str) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: UserId = parse_id(id)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let view = user_view(&mut tx, &keys, id).await?.ok_or_else(not_found)?;
        Ok(view.render(base))
    }

    pub async fn scim_list_users(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        params: &ListParams,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let filter = params
            .filter
            .as_deref()
            .map(|f| filter::parse(Resource::User, f))
            .transpose()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let ids = self
            .user_candidates(&mut tx, &keys, filter.as_ref())
            .await?;
        let mut all = Vec::new();
        for id in ids {
            if let Some(v) = user_view(&mut tx, &keys, id).await? {
                let doc = v.render(base);
                if filter.as_ref().is_none_or(|f| f.matches(&doc)) {
                    all.push(doc);
                }
            }
        }
        drop(tx);
        let out = page(Resource::User, all, params);
        // Bulk reads of personal data are recorded as counts.
        let mut w = self.store.tenant(actor.tenant()).begin().await?;
        let ev = Event {
            action: "scim.user.list",
            success: true,
            object_type: Some("user"),
            object_id: None,
            details: json!({"count": out["itemsPerPage"], "filtered": filter.is_some()}),
        };
        self.audit(&mut w, &keys, &actor_label(actor), ctx, ev)
            .await?;
        w.commit().await?;
        Ok(out)
    }

    /// The users a filter can match: by blind index for `userName eq` / `externalId eq`
    /// (Entra ID's lookups before each create), else every user of the tenant.
    async fn user_candidates(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        filter: Option<&Filter>,
    ) -> Result<Vec<UserId>> {
        if let Some(name) = filter.and_then(|f| f.required_eq("userName")) {
            let mut ids = Vec::new();
            if let Some(id) = tx
                .scim_user_by_name_index(&Self::user_name_index(keys, name))
                .await?
            {
                ids.push(id);
            }
            if let Ok(email) = validate::email("userName", name)
                && let Some(u) = tx.user_by_email_index(&keys.email_index(&email)).await?
                && !ids.contains(&u.id)
            {
                ids.push(u.id);
            }
            return Ok(ids);
        }
        if let Some(ext) = filter.and_then(|f| f.required_eq("externalId")) {
            return tx
                .scim_users_by_external_index(&Self::external_id_index(keys, ext))
                .await
                .map_err(Into::into);
        }
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let rows = tx.list_users(after, 500).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            ids.extend(rows.iter().map(|r| r.id));
        }
        Ok(ids)
    }

    pub async fn scim_replace_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: &str,
        body: &Value,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: UserId = parse_id(id)?;
        let input = parse_user(body)?;
        self.scim_write_user(actor, ctx, base, id, |_| Ok(input))
            .await
    }

    pub async fn scim_patch_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: &str,
        req: PatchRequest,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: UserId = parse_id(id)?;
        self.scim_write_user(actor, ctx, base, id, move |view| {
            let mut doc = view.doc();
            patch::apply(Resource::User, &mut doc, req)?;
            parse_user(&doc)
        })
        .await
    }

    /// PUT and PATCH: the new state of the user from the current one, stored with its audit
    /// events; `active: false` deprovisions.
    async fn scim_write_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: UserId,
        next: impl FnOnce(&UserView) -> Result<UserInput>,
    ) -> Result<Value> {
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let view = user_view(&mut tx, &keys, id).await?.ok_or_else(not_found)?;
        if view.user.role == Role::Owner {
            return Err(owner_refused());
        }
        let input = next(&view)?;
        Self::check_user_name_free(&mut tx, &keys, &input.attrs.user_name, Some(id)).await?;
        let email = input
            .attrs
            .kluis_email()
            .unwrap_or_else(|| view.user.email.clone());
        let mut changed = Vec::new();
        if email != view.user.email {
            // Stored SCIM attributes hold strings; the Email is made here, where it is used.
            let email = Email::parse(&email).map_err(|_| {
                Error::validation("emails", "invalid_email", "not a valid email address")
            })?;
            let bidx = keys.email_index(&email);
            let sealed = keys.seal_str("users", "email", id.0, email.as_str())?;
            tx.update_user_email(id, &bidx, &sealed, now)
                .await
                .map_err(|e| match Error::from(e) {
                    c if c.kind == ErrorKind::Conflict => {
                        uniqueness("a user with this email already exists")
                    }
                    other => other,
                })?;
            self.count_sealed(&mut tx, &keys, 1).await?;
            changed.push("email");
        }
        let display = input.attrs.kluis_display_name();
        let sealed_name = if display == view.user.display_name {
            None
        } else {
            changed.push("display_name");
            Some(keys.seal_str("users", "display_name", id.0, &display)?)
        };
        let was_active = view.user.status.is_active();
        let status = match (was_active, input.active) {
            (true, false) => Some(Status::Disabled),
            (false, true) => Some(Status::Active),
            _ => None,
        };
        if sealed_name.is_some() || status.is_some() {
            tx.update_user(
                id,
                &UserPatch {
                    display_name: sealed_name.as_deref(),
                    role: None,
                    status,
                    password_hash: None,
                },
                now,
            )
            .await?;
            if sealed_name.is_some() {
                self.count_sealed(&mut tx, &keys, 1).await?;
            }
        }
        if view.attrs.as_ref() != Some(&input.attrs) {
            changed.push("scim_attributes");
        }
        self.store_attrs(&mut tx, &keys, id, &input.attrs, now)
            .await?;
        let label = actor_label(actor);
        let ev = Event::ok("scim.user.update", "user", id)
            .with(json!({"user_name": input.attrs.user_name, "changed": changed}));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        let mut keys_revoked = 0;
        match status {
            Some(Status::Disabled) => {
                let (sessions, api_keys) = self.deprovision(&mut tx, id, now).await?;
                keys_revoked = api_keys;
                let ev = Event::ok("scim.user.deprovision", "user", id).with(json!({
                    "sessions_revoked": sessions, "api_keys_revoked": api_keys
                }));
                self.audit(&mut tx, &keys, &label, ctx, ev).await?;
            }
            Some(_) => {
                let ev = Event::ok("scim.user.reactivate", "user", id);
                self.audit(&mut tx, &keys, &label, ctx, ev).await?;
            }
            None => {}
        }
        let view = user_view(&mut tx, &keys, id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        if keys_revoked > 0 {
            self.api_keys_changed(actor.tenant()).await;
        }
        Ok(view.render(base))
    }

    /// Deletes the user; their sessions go with them and the API keys they created are revoked.
    pub async fn scim_delete_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<()> {
        actor.require(Permission::ScimProvision)?;
        let id: UserId = parse_id(id)?;
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(id).await?.ok_or_else(not_found)?;
        if row.role == Role::Owner {
            return Err(owner_refused());
        }
        let gone = user_from_row(&keys, row)?;
        let (sessions, api_keys) = self.deprovision(&mut tx, id, now).await?;
        tx.delete_user(id).await?;
        let ev = Event::ok("scim.user.delete", "user", id).with(json!({
            "email": gone.email, "role": gone.role,
            "sessions_revoked": sessions, "api_keys_revoked": api_keys
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        if api_keys > 0 {
            self.api_keys_changed(actor.tenant()).await;
        }
        Ok(())
    }
}

// ---- groups ----------------------------------------------------------------------------------

struct GroupInput {
    display_name: String,
    external_id: Option<String>,
    members: BTreeSet<UserId>,
}

const MAX_MEMBERS: usize = 10_000;

fn parse_group(doc: &Value) -> Result<GroupInput> {
    let obj = doc.as_object().ok_or_else(|| {
        scim_err(
            ErrorKind::BadRequest,
            "invalidSyntax",
            "expected a JSON object",
        )
    })?;
    let display_name = get(obj, "displayName")
        .ok_or_else(|| invalid_value("displayName is required"))
        .and_then(|v| short_string(v, "displayName", 200))?;
    let display_name = validate::name("displayName", &display_name)
        .map_err(|_| invalid_value("displayName must be 1 to 200 characters"))?;
    let external_id = get(obj, "externalId")
        .map(|v| short_string(v, "externalId", 256))
        .transpose()?;
    let mut members = BTreeSet::new();
    match get(obj, "members") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_MEMBERS {
                return Err(invalid_value("too many members in one request"));
            }
            for m in items {
                let v = m
                    .as_object()
                    .and_then(|o| get(o, "value"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid_value("members need a value (a user id)"))?;
                let id: UserId = v
                    .parse()
                    .map_err(|_| invalid_value("members.value must be a user id"))?;
                members.insert(id);
            }
        }
        Some(_) => return Err(invalid_value("members must be an array")),
    }
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

struct GroupView {
    row: crate::db::scim::ScimGroupRow,
    members: Vec<UserId>,
}

impl GroupView {
    fn doc(&self, base: &str) -> Value {
        let mut o = Map::new();
        o.insert("displayName".into(), json!(self.row.display_name));
        if let Some(x) = &self.row.external_id {
            o.insert("externalId".into(), json!(x));
        }
        if !self.members.is_empty() {
            let members: Vec<Value> = self
                .members
                .iter()
                .map(|m| json!({"value": m.to_string(), "$ref": format!("{base}/Users/{m}"), "type": "User"}))
                .collect();
            o.insert("members".into(), Value::Array(members));
        }
        Value::Object(o)
    }

    fn render(&self, base: &str) -> Value {
        let mut doc = self.doc(base);
        let id = self.row.id.to_string();
        if let Some(o) = doc.as_object_mut() {
            o.insert("schemas".into(), json!([GROUP_SCHEMA]));
            o.insert("id".into(), json!(id));
            o.insert(
                "meta".into(),
                json!({
                    "resourceType": "Group",
                    "created": rfc3339(self.row.created_at),
                    "lastModified": rfc3339(self.row.updated_at),
                    "location": format!("{base}/Groups/{id}"),
                    "version": format!("W/\"{}\"", self.row.version),
                }),
            );
        }
        doc
    }
}

async fn group_view(tx: &mut TenantTx, id: Uuid) -> Result<Option<GroupView>> {
    let Some(row) = tx.scim_group(id).await? else {
        return Ok(None);
    };
    let members = tx
        .scim_members(Some(id))
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    Ok(Some(GroupView { row, members }))
}

fn group_conflict(e: crate::db::StoreError) -> Error {
    match Error::from(e) {
        c if c.kind == ErrorKind::Conflict => uniqueness("a group with this displayName exists"),
        other => other,
    }
}

impl Kluis {
    /// Members must be users of this tenant (another tenant's id is simply unknown here).
    async fn check_members(tx: &mut TenantTx, members: &BTreeSet<UserId>) -> Result<()> {
        for m in members {
            if tx.user(*m).await?.is_none() {
                return Err(invalid_value(format!("no user {m}")));
            }
        }
        Ok(())
    }

    pub async fn scim_create_group(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        body: &Value,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let input = parse_group(body)?;
        let now = self.now();
        let id = Uuid::now_v7();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        Self::check_members(&mut tx, &input.members).await?;
        tx.insert_scim_group(id, &input.display_name, input.external_id.as_deref(), now)
            .await
            .map_err(group_conflict)?;
        for m in &input.members {
            tx.add_scim_member(id, *m).await?;
        }
        let ev = Event::ok("scim.group.create", "scim_group", id).with(json!({
            "display_name": input.display_name, "members": input.members.len()
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        self.recompute_roles(&mut tx, &keys, actor, ctx, input.members.iter().copied())
            .await?;
        let view = group_view(&mut tx, id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(view.render(base))
    }

    pub async fn scim_get_group(&self, actor: &Actor, base: &str, id: &str) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: Uuid = parse_id(id)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let view = group_view(&mut tx, id).await?.ok_or_else(not_found)?;
        Ok(view.render(base))
    }

    pub async fn scim_list_groups(
        &self,
        actor: &Actor,
        base: &str,
        params: &ListParams,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let filter = params
            .filter
            .as_deref()
            .map(|f| filter::parse(Resource::Group, f))
            .transpose()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let groups = tx.scim_groups().await?;
        let mut members: HashMap<Uuid, Vec<UserId>> = HashMap::new();
        for m in tx.scim_members(None).await? {
            members.entry(m.group_id).or_default().push(m.user_id);
        }
        let all = groups
            .into_iter()
            .map(|row| {
                let members = members.remove(&row.id).unwrap_or_default();
                GroupView { row, members }.render(base)
            })
            .filter(|doc| filter.as_ref().is_none_or(|f| f.matches(doc)))
            .collect();
        Ok(page(Resource::Group, all, params))
    }

    pub async fn scim_replace_group(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: &str,
        body: &Value,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: Uuid = parse_id(id)?;
        let input = parse_group(body)?;
        self.scim_write_group(actor, ctx, base, id, |_| Ok(input))
            .await
    }

    pub async fn scim_patch_group(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: &str,
        req: PatchRequest,
    ) -> Result<Value> {
        actor.require(Permission::ScimProvision)?;
        let id: Uuid = parse_id(id)?;
        let b = base.to_owned();
        self.scim_write_group(actor, ctx, base, id, move |view| {
            let mut doc = view.doc(&b);
            patch::apply(Resource::Group, &mut doc, req)?;
            parse_group(&doc)
        })
        .await
    }

    async fn scim_write_group(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        base: &str,
        id: Uuid,
        next: impl FnOnce(&GroupView) -> Result<GroupInput>,
    ) -> Result<Value> {
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let view = group_view(&mut tx, id).await?.ok_or_else(not_found)?;
        let input = next(&view)?;
        let before: BTreeSet<UserId> = view.members.iter().copied().collect();
        let added: Vec<UserId> = input.members.difference(&before).copied().collect();
        let removed: Vec<UserId> = before.difference(&input.members).copied().collect();
        Self::check_members(&mut tx, &added.iter().copied().collect()).await?;
        tx.update_scim_group(id, &input.display_name, input.external_id.as_deref(), now)
            .await
            .map_err(group_conflict)?;
        for m in &added {
            tx.add_scim_member(id, *m).await?;
        }
        for m in &removed {
            tx.remove_scim_member(id, *m).await?;
        }
        let renamed = input.display_name != view.row.display_name;
        let ev = Event::ok("scim.group.update", "scim_group", id).with(json!({
            "display_name": input.display_name, "renamed": renamed,
            "members_added": added.len(), "members_removed": removed.len()
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        let affected: BTreeSet<UserId> = if renamed {
            before.union(&input.members).copied().collect()
        } else {
            added.iter().chain(&removed).copied().collect()
        };
        self.recompute_roles(&mut tx, &keys, actor, ctx, affected)
            .await?;
        let view = group_view(&mut tx, id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(view.render(base))
    }

    pub async fn scim_delete_group(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<()> {
        actor.require(Permission::ScimProvision)?;
        let id: Uuid = parse_id(id)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let view = group_view(&mut tx, id).await?.ok_or_else(not_found)?;
        tx.delete_scim_group(id).await?;
        let ev = Event::ok("scim.group.delete", "scim_group", id).with(json!({
            "display_name": view.row.display_name, "members": view.members.len()
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        self.recompute_roles(&mut tx, &keys, actor, ctx, view.members.iter().copied())
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
