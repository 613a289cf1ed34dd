//! Custom roles and teams, and the one place an actor's CRM rights are resolved
//! ([`Kluis::access`]): built-in role or custom role, narrowed by an API key's scopes, with the
//! teams that record scope "team" reaches. The decisions themselves are in `authz.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::authz::{Access, AccessSource, FieldRule, ObjectRights, RecordScope, RoleRules};
use crate::crm::ObjectType;
use crate::db::TenantTx;
use crate::db::perms::{RoleRow, TeamRow};
use crate::users::rfc3339;
use crate::{
    Actor, Error, ErrorKind, Kluis, Permission, Principal, RequestContext, Result, Role, UserId,
    validate,
};
use crate::{RoleId, TeamId};

/// A role as the API shows it: built-in roles (id = their name, read-only) and custom roles
/// (id = a UUID) in one shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    /// `owner`, `admin`, `manager`, `member`, `read_only`, or a custom role's UUID.
    pub id: String,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    /// Rights and record scope per object type; a type not listed is refused.
    #[schema(value_type = BTreeMap<String, ObjectRights>)]
    pub objects: BTreeMap<ObjectType, ObjectRights>,
    /// Field rules per object type (`hidden`, `read_only`, `masked`).
    #[schema(value_type = BTreeMap<String, BTreeMap<String, FieldRule>>)]
    pub fields: BTreeMap<ObjectType, BTreeMap<String, FieldRule>>,
    /// Custom roles only: bumped by every change.
    pub revision: Option<i64>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, ObjectRights>)]
    pub objects: BTreeMap<ObjectType, ObjectRights>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, BTreeMap<String, FieldRule>>)]
    pub fields: BTreeMap<ObjectType, BTreeMap<String, FieldRule>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Replaces the whole map when given.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, ObjectRights>>)]
    pub objects: Option<BTreeMap<ObjectType, ObjectRights>>,
    /// Replaces every field rule when given.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, BTreeMap<String, FieldRule>>>)]
    pub fields: Option<BTreeMap<ObjectType, BTreeMap<String, FieldRule>>>,
}

/// `PUT /api/v1/users/{id}/custom-role`: a custom role's id, or null for the built-in role.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRoleAssignment {
    #[schema(value_type = Option<uuid::Uuid>)]
    pub role_id: Option<RoleId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserCustomRole {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub role_id: Option<RoleId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Team {
    #[schema(value_type = uuid::Uuid)]
    pub id: TeamId,
    pub name: String,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub members: Vec<UserId>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    pub name: String,
}

const DESCRIPTION_MAX: usize = 1000;

fn built_in_view(role: Role) -> RoleView {
    RoleView {
        id: role.as_str().to_owned(),
        name: role.as_str().to_owned(),
        description: "built-in role".to_owned(),
        built_in: true,
        objects: RoleRules::built_in(role).objects,
        fields: BTreeMap::new(),
        revision: None,
        created_at: None,
        updated_at: None,
    }
}

fn parse_rules(row: &RoleRow) -> Result<RoleRules> {
    serde_json::from_str(&row.rules).map_err(|_| Error::internal("stored role rules"))
}

fn custom_view(row: &RoleRow) -> Result<RoleView> {
    let rules = parse_rules(row)?;
    Ok(RoleView {
        id: row.id.to_string(),
        name: row.name.clone(),
        description: row.description.clone(),
        built_in: false,
        objects: rules.objects,
        fields: rules.fields,
        revision: Some(row.revision),
        created_at: Some(rfc3339(row.created_at)),
        updated_at: Some(rfc3339(row.updated_at)),
    })
}

fn description(raw: Option<&str>) -> Result<String> {
    let d = raw.unwrap_or("").trim();
    if d.chars().count() > DESCRIPTION_MAX || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::validation(
            "description",
            "invalid_description",
            "at most 1000 characters without control characters",
        ));
    }
    Ok(d.to_owned())
}

/// Field rules name built-in fields of their type or `custom.<key>` (a custom field that may
/// be defined later); anything else is a typo that would protect nothing.
fn check_field_names(rules: &RoleRules) -> Result<()> {
    for (t, fields) in &rules.fields {
        for name in fields.keys() {
            let known = t.field_names().contains(&name.as_str())
                || name.strip_prefix("custom.").is_some_and(|k| {
                    !k.is_empty()
                        && k.len() <= 64
                        && k.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                });
            if !known {
                return Err(Error::validation(
                    &format!("fields.{}.{name}", t.as_str()),
                    "unknown_field",
                    "no such field on this object type",
                ));
            }
        }
    }
    Ok(())
}

fn built_in_refused() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "built_in_role",
        "built-in roles cannot be changed or deleted",
    )
}

/// A role id in a path: a built-in role's name or a custom role's UUID.
enum RoleRef {
    BuiltIn(Role),
    Custom(RoleId),
}

fn role_ref(raw: &str) -> Result<RoleRef> {
    if let Some(r) = Role::parse(raw) {
        return Ok(RoleRef::BuiltIn(r));
    }
    raw.parse::<RoleId>()
        .map(RoleRef::Custom)
        .map_err(|_| Error::not_found())
}

impl Kluis {
    /// The actor's CRM rights for this request, read in their own transaction.
    pub async fn access(&self, actor: &Actor) -> Result<Access> {
        // Skip the read for actors whose rights need no table.
        match actor.access_source() {
            AccessSource::Everything => return Ok(everything()),
            AccessSource::Nothing => return Ok(nothing()),
            AccessSource::Support { write } => return Ok(support_access(write)),
            AccessSource::User { .. } | AccessSource::Key { .. } => {}
        }
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        self.access_in(&mut tx, actor).await
    }

    /// The actor's CRM rights, read inside `tx` (the same snapshot as the data it guards).
    pub(crate) async fn access_in(&self, tx: &mut TenantTx, actor: &Actor) -> Result<Access> {
        match actor.access_source() {
            AccessSource::Everything => Ok(everything()),
            AccessSource::Nothing => Ok(nothing()),
            AccessSource::Support { write } => Ok(support_access(write)),
            AccessSource::User { id, role } => user_access(tx, id, role).await,
            AccessSource::Key { id, scopes } => {
                let Some(maker) = tx.api_key_creator(id).await? else {
                    return Ok(nothing());
                };
                let access = match (maker.created_by, maker.role) {
                    // Made at the console: its scopes alone.
                    (None, _) => everything(),
                    (Some(u), Some(role)) => user_access(tx, u, role).await?,
                    // Its maker is gone: deny by default.
                    (Some(_), None) => nothing(),
                };
                Ok(access.with_scopes(&scopes))
            }
        }
    }

    fn require_role_manager(&self, actor: &Actor) -> Result<()> {
        match actor.principal() {
            Principal::Console => Ok(()),
            Principal::User { .. } => actor.require(Permission::UsersManage),
            Principal::ApiKey { .. } | Principal::Scim { .. } => Err(Error::forbidden(
                "roles and teams are managed by owners and admins, not with a key",
            )),
            Principal::Support { .. } => Err(crate::support::support_action_blocked()),
        }
    }

    // ---- roles --------------------------------------------------------------------------

    /// Built-in roles first (read-only), then the tenant's custom roles.
    pub async fn list_roles(&self, actor: &Actor) -> Result<Vec<RoleView>> {
        actor.require(Permission::UsersRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let mut out: Vec<RoleView> = Role::ALL.into_iter().map(built_in_view).collect();
        for r in tx.roles().await? {
            out.push(custom_view(&r)?);
        }
        Ok(out)
    }

    pub async fn get_role(&self, actor: &Actor, id: &str) -> Result<RoleView> {
        actor.require(Permission::UsersRead)?;
        match role_ref(id)? {
            RoleRef::BuiltIn(r) => Ok(built_in_view(r)),
            RoleRef::Custom(id) => {
                let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
                let row = tx.role(id).await?.ok_or_else(Error::not_found)?;
                custom_view(&row)
            }
        }
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: RoleInput,
    ) -> Result<RoleView> {
        self.require_role_manager(actor)?;
        let name = validate::name("name", &input.name)?;
        if Role::parse(&name).is_some() {
            return Err(Error::validation(
                "name",
                "reserved_name",
                "a built-in role has this name",
            ));
        }
        let rules = RoleRules {
            objects: input.objects,
            fields: input.fields,
        };
        check_field_names(&rules)?;
        let now = self.now();
        let row = RoleRow {
            id: RoleId::new(),
            name,
            description: description(input.description.as_deref())?,
            rules: serde_json::to_string(&rules).map_err(|_| Error::internal("encoding"))?,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        tx.insert_role(&row).await?;
        let ev = Event::ok("role.create", "role", row.id)
            .with(json!({"name": row.name, "objects": rules.objects, "fields": rules.fields}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        custom_view(&row)
    }

    pub async fn update_role(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: &str,
        patch: RolePatch,
    ) -> Result<RoleView> {
        self.require_role_manager(actor)?;
        let RoleRef::Custom(id) = role_ref(id)? else {
            return Err(built_in_refused());
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let old = tx.role(id).await?.ok_or_else(Error::not_found)?;
        let mut row = old.clone();
        if let Some(n) = &patch.name {
            row.name = validate::name("name", n)?;
            if Role::parse(&row.name).is_some() {
                return Err(Error::validation(
                    "name",
                    "reserved_name",
                    "a built-in role has this name",
                ));
            }
        }
        if let Some(d) = &patch.description {
            row.description = description(Some(d))?;
        }
        let old_rules = parse_rules(&old)?;
        let mut rules = old_rules.clone();
        if let Some(o) = patch.objects {
            rules.objects = o;
        }
        if let Some(f) = patch.fields {
            rules.fields = f;
        }
        check_field_names(&rules)?;
        row.rules = serde_json::to_string(&rules).map_err(|_| Error::internal("encoding"))?;
        row.revision = old.revision + 1;
        row.updated_at = self.now();
        if !tx.update_role(&row, old.revision).await? {
            return Err(Error::new(
                ErrorKind::Conflict,
                "revision_mismatch",
                "the role changed meanwhile; read it again",
            ));
        }
        let ev = Event::ok("role.update", "role", id).with(json!({
            "name": {"old": old.name, "new": row.name},
            "objects": {"old": old_rules.objects, "new": rules.objects},
            "fields": {"old": old_rules.fields, "new": rules.fields},
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        custom_view(&row)
    }

    /// Deletes a custom role nobody holds (else `409 role_in_use`: taking it away silently
    /// would change those people's rights).
    pub async fn delete_role(&self, actor: &Actor, ctx: &RequestContext, id: &str) -> Result<()> {
        self.require_role_manager(actor)?;
        let RoleRef::Custom(id) = role_ref(id)? else {
            return Err(built_in_refused());
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.role(id).await?.ok_or_else(Error::not_found)?;
        if tx.role_holders(id).await? > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "role_in_use",
                "users hold this role; give them another one first",
            ));
        }
        tx.delete_role(id).await?;
        let ev = Event::ok("role.delete", "role", id).with(json!({"name": row.name}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every user's custom role (users without one use their built-in role).
    pub async fn list_custom_role_assignments(&self, actor: &Actor) -> Result<Vec<UserCustomRole>> {
        actor.require(Permission::UsersRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(tx
            .custom_role_assignments()
            .await?
            .into_iter()
            .map(|(user_id, role_id)| UserCustomRole {
                user_id,
                role_id: Some(role_id),
            })
            .collect())
    }

    /// Gives a user a custom role (its CRM rules replace their built-in role's), or takes it
    /// away. Owners and admins; an owner's rights only by someone who may manage owners.
    pub async fn assign_custom_role(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
        input: CustomRoleAssignment,
    ) -> Result<UserCustomRole> {
        self.require_role_manager(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let target = tx.user(user).await?.ok_or_else(Error::not_found)?;
        if target.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        if let Some(r) = input.role_id
            && tx.role(r).await?.is_none()
        {
            return Err(Error::validation(
                "role_id",
                "unknown_role",
                "no custom role with this id",
            ));
        }
        let before = tx.set_user_custom_role(user, input.role_id).await?;
        let ev = Event::ok("user.custom_role", "user", user)
            .with(json!({"role_id": {"old": before, "new": input.role_id}}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(UserCustomRole {
            user_id: user,
            role_id: input.role_id,
        })
    }

    // ---- teams --------------------------------------------------------------------------

    pub async fn list_teams(&self, actor: &Actor) -> Result<Vec<Team>> {
        actor.require(Permission::UsersRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let members = tx.team_memberships().await?;
        Ok(tx
            .teams()
            .await?
            .into_iter()
            .map(|t| team_view(t, &members))
            .collect())
    }

    pub async fn get_team(&self, actor: &Actor, id: TeamId) -> Result<Team> {
        actor.require(Permission::UsersRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let row = tx.team(id).await?.ok_or_else(Error::not_found)?;
        let members = tx.team_memberships().await?;
        Ok(team_view(row, &members))
    }

    pub async fn create_team(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: TeamInput,
    ) -> Result<Team> {
        self.require_role_manager(actor)?;
        let now = self.now();
        let row = TeamRow {
            id: TeamId::new(),
            name: validate::name("name", &input.name)?,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        tx.upsert_team(&row).await?;
        let ev = Event::ok("team.create", "team", row.id).with(json!({"name": row.name}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(team_view(row, &[]))
    }

    pub async fn rename_team(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: TeamId,
        input: TeamInput,
    ) -> Result<Team> {
        self.require_role_manager(actor)?;
        let name = validate::name("name", &input.name)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let old = tx.team(id).await?.ok_or_else(Error::not_found)?;
        let row = TeamRow {
            name,
            updated_at: self.now(),
            ..old.clone()
        };
        tx.upsert_team(&row).await?;
        let ev = Event::ok("team.update", "team", id)
            .with(json!({"name": {"old": old.name, "new": row.name}}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        let members = tx.team_memberships().await?;
        tx.commit().await?;
        Ok(team_view(row, &members))
    }

    pub async fn delete_team(&self, actor: &Actor, ctx: &RequestContext, id: TeamId) -> Result<()> {
        self.require_role_manager(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.team(id).await?.ok_or_else(Error::not_found)?;
        tx.delete_team(id).await?;
        let ev = Event::ok("team.delete", "team", id).with(json!({"name": row.name}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds (true) or removes (false) a member; audited either way it changes something.
    pub async fn set_team_member(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        team: TeamId,
        user: UserId,
        member: bool,
    ) -> Result<Team> {
        self.require_role_manager(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.team(team).await?.ok_or_else(Error::not_found)?;
        tx.user(user).await?.ok_or_else(Error::not_found)?;
        let changed = if member {
            tx.add_team_member(team, user).await?
        } else {
            tx.remove_team_member(team, user).await?
        };
        if !member && !changed {
            return Err(Error::not_found());
        }
        if changed {
            let action = if member {
                "team.member_add"
            } else {
                "team.member_remove"
            };
            let ev = Event::ok(action, "team", team).with(json!({"user_id": user}));
            self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                .await?;
        }
        let members = tx.team_memberships().await?;
        tx.commit().await?;
        Ok(team_view(row, &members))
    }
}

fn team_view(row: TeamRow, members: &[(TeamId, UserId)]) -> Team {
    Team {
        id: row.id,
        name: row.name,
        members: members
            .iter()
            .filter(|(t, _)| *t == row.id)
            .map(|(_, u)| *u)
            .collect(),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

fn everything() -> Access {
    let all = ObjectRights {
        read: true,
        create: true,
        update: true,
        delete: true,
        export: true,
        import: true,
        unmask: true,
        scope: RecordScope::All,
    };
    Access::new(
        RoleRules {
            objects: ObjectType::ALL.into_iter().map(|t| (t, all)).collect(),
            fields: BTreeMap::new(),
        },
        None,
        Vec::new(),
    )
}

fn support_access(write: bool) -> Access {
    Access::support(write, ObjectType::contact_detail_fields)
}

fn nothing() -> Access {
    Access::new(RoleRules::default(), None, Vec::new())
}

/// A person's rights: their custom role if they hold one, else their built-in role; and, when
/// some type is scoped to "team", who shares a team with them.
async fn user_access(tx: &mut TenantTx, id: UserId, role: Role) -> Result<Access> {
    let rules = match tx.user_custom_role(id).await? {
        Some(row) => parse_rules(&row)?,
        None => RoleRules::built_in(role),
    };
    let needs_team = rules.objects.values().any(|r| r.scope == RecordScope::Team);
    let mates = if needs_team {
        tx.team_mates(id).await?
    } else {
        Vec::new()
    };
    Ok(Access::new(rules, Some(id), mates))
}
