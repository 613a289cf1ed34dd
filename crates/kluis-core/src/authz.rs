//! Who may do what: built-in roles, API key scopes, and one deny-by-default check.
//!
//! An [`Actor`] can only be produced by authentication in this crate (its fields are private),
//! so a handler cannot invent one for another tenant. Every service starts with
//! [`Actor::require`], and every tenant transaction is opened for `actor.tenant()`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crm::ObjectType;
use crate::db::rows::OwnerScope;
use crate::{ApiKeyId, Error, ErrorKind, Result, SessionId, TenantId, UserId};

/// A permission a service asks for. Later issues add variants (contacts, deals, ...); a new
/// variant is granted to nobody until the tables below say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    UsersRead,
    UsersManage,
    /// Grant or take away the owner role, or disable/delete an owner.
    OwnersManage,
    /// Create, view, rotate, revoke API keys (privileged).
    ApiKeysManage,
    SettingsRead,
    SettingsManage,
    /// Read and export the tenant's audit trail.
    AuditRead,
    /// Choose the key that protects the tenant's data (customer-managed key). Owners only,
    /// never an API key.
    EncryptionKeysManage,
    /// Read CRM records (contacts, companies, ...) and their versions and the trash.
    CrmRead,
    /// Create, change, delete (to the trash) and restore CRM records.
    CrmWrite,
    /// Delete CRM records for good from the trash.
    CrmPurge,
    /// Export CRM records in bulk (privileged, audited).
    CrmExport,
    /// Import CRM records in bulk from CSV (privileged, audited).
    CrmImport,
    /// Configure single sign-on: who may enter the tenant. Owners and admins, never an API
    /// key scope.
    SsoManage,
    /// Create, rotate, revoke the tenant's SCIM token and map SCIM groups to roles. Owners and
    /// admins, never an API key scope.
    ScimManage,
    /// Provision users and groups over SCIM. Held only by the SCIM token, by no role or scope.
    ScimProvision,
}

pub use kluis_types::Role;

/// The permission table for built-in roles, as a method on [`Role`] (which lives in
/// `kluis-types`, below the store; the policy stays here, in the core).
pub trait RoleGrants {
    fn grants(self, p: Permission) -> bool;
}

impl RoleGrants for Role {
    /// The permission table for built-in roles. Deny by default: anything not listed is refused.
    fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            // SCIM provisioning is the token's alone, not even an owner's.
            Role::Owner => p != ScimProvision,
            Role::Admin => matches!(
                p,
                UsersRead
                    | UsersManage
                    | ApiKeysManage
                    | SettingsRead
                    | SettingsManage
                    | AuditRead
                    | CrmRead
                    | CrmWrite
                    | CrmPurge
                    | CrmExport
                    | SsoManage
                    | CrmImport
                    | ScimManage
            ),
            Role::Manager => matches!(
                p,
                UsersRead | SettingsRead | CrmRead | CrmWrite | CrmExport | CrmImport
            ),
            Role::Member => matches!(p, UsersRead | CrmRead | CrmWrite),
            Role::ReadOnly => matches!(p, UsersRead | CrmRead),
        }
    }
}

/// An API key scope: one object type, read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "settings:read")]
    SettingsRead,
    #[serde(rename = "settings:write")]
    SettingsWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "crm:read")]
    CrmRead,
    #[serde(rename = "crm:write")]
    CrmWrite,
    #[serde(rename = "crm:export")]
    CrmExport,
    /// Bulk import; also grants `crm:write`'s permissions, since an import writes records.
    #[serde(rename = "crm:import")]
    CrmImport,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::AuditRead,
        Scope::CrmRead,
        Scope::CrmWrite,
        Scope::CrmExport,
        Scope::CrmImport,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::SettingsRead,
        Scope::SettingsWrite,
    ];

    /// What a scope grants. Managing API keys and owners is never reachable with a key:
    /// a leaked key must not be able to mint more keys or take over the tenant.
    pub fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Scope::UsersRead => p == UsersRead,
            Scope::UsersWrite => matches!(p, UsersRead | UsersManage),
            Scope::SettingsRead => p == SettingsRead,
            Scope::SettingsWrite => matches!(p, SettingsRead | SettingsManage),
            Scope::AuditRead => p == AuditRead,
            Scope::CrmRead => p == CrmRead,
            Scope::CrmWrite => matches!(p, CrmRead | CrmWrite),
            Scope::CrmExport => matches!(p, CrmRead | CrmExport),
            Scope::CrmImport => matches!(p, CrmRead | CrmWrite | CrmImport),
        }
    }

    /// The permission a holder of this scope exercises; a user may only hand out scopes
    /// whose permission they hold themselves.
    pub fn needs(self) -> Permission {
        match self {
            Scope::UsersRead => Permission::UsersRead,
            Scope::UsersWrite => Permission::UsersManage,
            Scope::SettingsRead => Permission::SettingsRead,
            Scope::SettingsWrite => Permission::SettingsManage,
            Scope::AuditRead => Permission::AuditRead,
            Scope::CrmRead => Permission::CrmRead,
            Scope::CrmWrite => Permission::CrmWrite,
            Scope::CrmExport => Permission::CrmExport,
            Scope::CrmImport => Permission::CrmImport,
        }
    }
}

// ---- rights per object type (built-in and custom roles) ----------------------------------

/// What may be done with records of one object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    Read,
    Create,
    Update,
    Delete,
    Export,
    Import,
    /// Reveal a masked field's value.
    Unmask,
}

/// Which records of a type a role reaches: those its holder owns, those owned by anyone who
/// shares a team with them, or all. Ordered from narrow to wide.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordScope {
    /// The narrowest is the default: a rule that names no scope widens nothing.
    #[default]
    Own,
    Team,
    All,
}

/// A role's rights on one object type. A right not set is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRights {
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub update: bool,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub export: bool,
    #[serde(default)]
    pub import: bool,
    /// May reveal a masked field's value (one field of one record at a time; audited).
    #[serde(default)]
    pub unmask: bool,
    #[serde(default)]
    pub scope: RecordScope,
}

impl ObjectRights {
    pub fn has(&self, r: Right) -> bool {
        match r {
            Right::Read => self.read,
            Right::Create => self.create,
            Right::Update => self.update,
            Right::Delete => self.delete,
            Right::Export => self.export,
            Right::Import => self.import,
            Right::Unmask => self.unmask,
        }
    }

    /// Both sets at once: each right held by both, the narrower scope.
    pub fn intersect(&self, o: &ObjectRights) -> ObjectRights {
        ObjectRights {
            read: self.read && o.read,
            create: self.create && o.create,
            update: self.update && o.update,
            delete: self.delete && o.delete,
            export: self.export && o.export,
            import: self.import && o.import,
            unmask: self.unmask && o.unmask,
            scope: self.scope.min(o.scope),
        }
    }
}

/// The CRM rules of a role: rights per object type. An object type the map does not name is
/// refused entirely (deny by default). Built-in roles are expressed in the same shape, so
/// there is one question: "may this actor do X on type T, and on which records".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRules {
    #[serde(default)]
    pub objects: BTreeMap<ObjectType, ObjectRights>,
    /// Field rules per object type: field name (`email`, `custom.<key>`) to rule. A field
    /// not named is shown and writable as the type's rights say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<ObjectType, BTreeMap<String, FieldRule>>,
}

/// What a role may see of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// Absent from every output (API, pages, exports, versions, audit payloads), not
    /// searchable, not writable.
    Hidden,
    /// Shown, not writable.
    ReadOnly,
    /// Shown masked (`j***@acme.nl`, `******5678`), not searchable, not writable; revealed
    /// one value at a time by a role with `unmask`.
    Masked,
}

/// The field rules of one object type for one actor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldView {
    rules: BTreeMap<String, FieldRule>,
}

impl FieldView {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, field: &str) -> Option<FieldRule> {
        self.rules.get(field).copied()
    }

    /// Whether a field's value may be matched by search or an exact lookup.
    pub fn searchable(&self, field: &str) -> bool {
        self.rule(field).is_none()
    }

    /// Removes hidden fields and masks masked ones, in place.
    pub fn redact(&self, fields: &mut serde_json::Map<String, serde_json::Value>) {
        if self.rules.is_empty() {
            return;
        }
        fields.retain(|k, _| self.rule(k) != Some(FieldRule::Hidden));
        for (k, v) in fields.iter_mut() {
            if self.rule(k) == Some(FieldRule::Masked) {
                *v = mask_value(v);
            }
        }
    }

    /// Refuses a write that sets a field this role may not write. `current` is the record's
    /// present value map (None on create); a field sent unchanged is not a write (forms send
    /// every field they show).
    pub fn check_write(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
        current: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<()> {
        for (k, v) in input {
            if self.rule(k).is_none() {
                continue;
            }
            let unchanged = match current {
                Some(cur) => cur.get(k).unwrap_or(&serde_json::Value::Null) == v,
                None => v.is_null() || v.as_str().is_some_and(str::is_empty),
            };
            if !unchanged {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "field_read_only",
                    "your role may not change this field",
                )
                .with_field(format!("fields.{k}")));
            }
        }
        Ok(())
    }
}

/// A masked display value: an email keeps its first character and domain (`j***@acme.nl`),
/// anything else its last four characters (`******5678`); short values are masked whole.
pub fn mask_value(v: &serde_json::Value) -> serde_json::Value {
    let serde_json::Value::String(s) = v else {
        return if v.is_null() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String("******".to_owned())
        };
    };
    if s.is_empty() {
        return v.clone();
    }
    if let Some((local, domain)) = s.split_once('@')
        && let Some(first) = local.chars().next()
    {
        return serde_json::Value::String(format!("{first}***@{domain}"));
    }
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 6 {
        return serde_json::Value::String("******".to_owned());
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    serde_json::Value::String(format!("******{tail}"))
}

impl RoleRules {
    /// A built-in role's rules, from its permission table: every type, every record.
    pub fn built_in(role: Role) -> RoleRules {
        RoleRules::uniform(|p| role.grants(p))
    }

    /// What an API key's scopes allow on records (any record: the creator's role narrows it).
    fn of_scopes(scopes: &[Scope]) -> RoleRules {
        RoleRules::uniform(|p| scopes.iter().any(|s| s.grants(p)))
    }

    fn uniform(has: impl Fn(Permission) -> bool) -> RoleRules {
        let write = has(Permission::CrmWrite);
        let rights = ObjectRights {
            read: has(Permission::CrmRead),
            create: write,
            update: write,
            delete: write,
            export: has(Permission::CrmExport),
            import: has(Permission::CrmImport),
            // Built-in roles see every value in full: nothing is masked for them.
            unmask: has(Permission::CrmRead),
            scope: RecordScope::All,
        };
        RoleRules {
            objects: ObjectType::ALL.into_iter().map(|t| (t, rights)).collect(),
            fields: BTreeMap::new(),
        }
    }

    pub fn rights(&self, t: ObjectType) -> ObjectRights {
        self.objects.get(&t).copied().unwrap_or_default()
    }

    pub fn field_view(&self, t: ObjectType) -> FieldView {
        FieldView {
            rules: self.fields.get(&t).cloned().unwrap_or_default(),
        }
    }

    /// Both at once: rights intersected, field rules of both (the stricter where both name
    /// a field).
    fn intersect(&self, o: &RoleRules) -> RoleRules {
        let mut fields = self.fields.clone();
        for (t, rules) in &o.fields {
            let mine = fields.entry(*t).or_default();
            for (f, r) in rules {
                let stricter = match (mine.get(f), r) {
                    (Some(FieldRule::Hidden), _) | (_, FieldRule::Hidden) => FieldRule::Hidden,
                    (Some(FieldRule::Masked), _) | (_, FieldRule::Masked) => FieldRule::Masked,
                    _ => FieldRule::ReadOnly,
                };
                mine.insert(f.clone(), stricter);
            }
        }
        RoleRules {
            objects: ObjectType::ALL
                .into_iter()
                .map(|t| (t, self.rights(t).intersect(&o.rights(t))))
                .collect(),
            fields,
        }
    }

    /// True when some type is limited to a subset of its records.
    pub fn narrows_scope(&self) -> bool {
        ObjectType::ALL
            .into_iter()
            .any(|t| self.rights(t).scope != RecordScope::All)
    }
}

/// The records an actor reaches within one object type, as the query layer applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    All,
    /// Records owned by this user.
    Own(UserId),
    /// Records owned by this user or anyone sharing a team with them (`mates` includes `me`).
    Team {
        me: UserId,
        mates: Vec<UserId>,
    },
    /// No record at all (a scope narrower than "all" with no person to anchor it).
    Nothing,
}

impl Visibility {
    /// Whether a record with this owner is within reach.
    pub fn shows(&self, owner: Option<UserId>) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Own(me) => owner == Some(*me),
            Visibility::Team { mates, .. } => owner.is_some_and(|o| mates.contains(&o)),
            Visibility::Nothing => false,
        }
    }

    /// For audit details: which scope applied.
    pub fn store_scope_name(&self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Own(_) => "own",
            Visibility::Team { .. } => "team",
            Visibility::Nothing => "none",
        }
    }

    /// The store's form of the same rule (a list filter in SQL).
    pub(crate) fn store_scope(&self) -> OwnerScope {
        match self {
            Visibility::All => OwnerScope::All,
            Visibility::Own(me) => OwnerScope::Own(*me),
            Visibility::Team { me, .. } => OwnerScope::Team(*me),
            // A nil owner id matches no record (owners are real users).
            Visibility::Nothing => OwnerScope::Own(UserId(uuid::Uuid::nil())),
        }
    }
}

/// An actor's CRM rights for one request, resolved from their role (built-in or custom),
/// their key's scopes and their teams. Only [`crate::Kluis::access`] makes one.
#[derive(Debug, Clone)]
pub struct Access {
    rules: RoleRules,
    /// Whose "own" records: the user, or the person who made the API key.
    me: Option<UserId>,
    mates: Vec<UserId>,
    /// Support access: deleting, exporting and importing are refused as blocked actions.
    support: bool,
}

/// Where a CRM right comes from, before the database tells the custom role and teams.
pub(crate) enum AccessSource {
    /// Every right on every record (the console).
    Everything,
    /// Nothing (a pending sign-in, the SCIM token, a key whose maker is gone).
    Nothing,
    /// A person: their custom role if they hold one, else their built-in role.
    User { id: UserId, role: Role },
    /// A key: its scopes, narrowed by its maker's role (None: made at the console).
    Key { id: ApiKeyId, scopes: Vec<Scope> },
    /// Support access under a grant: every record, read (and create/change with `write`),
    /// contact details masked.
    Support { write: bool },
}

impl Access {
    pub(crate) fn new(rules: RoleRules, me: Option<UserId>, mates: Vec<UserId>) -> Access {
        Access {
            rules,
            me,
            mates,
            support: false,
        }
    }

    /// Support access: every record of every type, read (and create/change with `write`),
    /// built-in fields holding contact details (email, phone) masked; each may be revealed one
    /// value at a time (audited).
    pub(crate) fn support(write: bool, masked: impl Fn(ObjectType) -> Vec<&'static str>) -> Access {
        let rights = ObjectRights {
            read: true,
            create: write,
            update: write,
            delete: false,
            export: false,
            import: false,
            unmask: true,
            scope: RecordScope::All,
        };
        let rules = RoleRules {
            objects: ObjectType::ALL.into_iter().map(|t| (t, rights)).collect(),
            fields: ObjectType::ALL
                .into_iter()
                .map(|t| {
                    let f = masked(t)
                        .into_iter()
                        .map(|n| (n.to_owned(), FieldRule::Masked))
                        .collect();
                    (t, f)
                })
                .collect(),
        };
        Access {
            rules,
            me: None,
            mates: Vec::new(),
            support: true,
        }
    }

    /// Narrows to what an API key's scopes allow.
    pub(crate) fn with_scopes(mut self, scopes: &[Scope]) -> Access {
        self.rules = self.rules.intersect(&RoleRules::of_scopes(scopes));
        self
    }

    pub fn rules(&self) -> &RoleRules {
        &self.rules
    }

    pub fn can(&self, t: ObjectType, r: Right) -> bool {
        self.rules.rights(t).has(r)
    }

    /// The single CRM check: deny unless the role grants `r` on `t`; then the records in reach.
    pub fn require(&self, t: ObjectType, r: Right) -> Result<Visibility> {
        if self.support && matches!(r, Right::Delete | Right::Export | Right::Import) {
            return Err(crate::support::support_action_blocked());
        }
        if !self.can(t, r) {
            return Err(Error::forbidden(
                "your role or key scopes do not allow this action on this object type",
            ));
        }
        Ok(self.visibility(t))
    }

    /// The field rules of `t` for this actor.
    pub fn fields(&self, t: ObjectType) -> FieldView {
        self.rules.field_view(t)
    }

    /// The records of `t` in reach (whatever the right).
    pub fn visibility(&self, t: ObjectType) -> Visibility {
        match (self.rules.rights(t).scope, self.me) {
            (RecordScope::All, _) => Visibility::All,
            (_, None) => Visibility::Nothing,
            (RecordScope::Own, Some(me)) => Visibility::Own(me),
            (RecordScope::Team, Some(me)) => Visibility::Team {
                me,
                mates: self.mates.clone(),
            },
        }
    }

    /// Reading things that span every record (the audit trail, an import that may touch any
    /// record) needs scope "all" on every type.
    pub fn require_every_record(&self) -> Result<()> {
        if self.rules.narrows_scope() {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "scope_too_narrow",
                "your role reaches only some records; this action spans all of them",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum Principal {
    User {
        id: UserId,
        role: Role,
        /// The session used, when signed in with a cookie.
        session: Option<SessionId>,
    },
    ApiKey {
        id: ApiKeyId,
        scopes: Vec<Scope>,
    },
    /// The operator at the server console (`kluis user create ...`). Whoever can run the CLI
    /// against the data directory or database already holds every key, so it is granted all.
    Console,
    /// The tenant's SCIM client (identity provider), holding only `ScimProvision`.
    Scim {
        token: uuid::Uuid,
    },
    /// A platform operator under an approved support grant (see [`crate::support`]).
    Support {
        operator: kluis_types::ids::OperatorId,
        grant: kluis_types::ids::SupportGrantId,
        /// Read-write grant (create and change records); otherwise read only.
        write: bool,
    },
}

/// What support access may do. Seed 000's high-risk actions are refused whatever the grant
/// says: settings (domain, SSO, SCIM), exports, API keys, imports, deleting records, and
/// anything about people's accounts and keys.
fn support_allows(write: bool, p: Permission) -> bool {
    use Permission::*;
    match p {
        UsersRead | SettingsRead | AuditRead | CrmRead => true,
        CrmWrite => write,
        _ => false,
    }
}

/// Whether a permission is one of the actions support access never reaches.
fn support_blocks(p: Permission) -> bool {
    use Permission::*;
    matches!(
        p,
        UsersManage
            | OwnersManage
            | ApiKeysManage
            | SettingsManage
            | EncryptionKeysManage
            | CrmPurge
            | CrmExport
            | CrmImport
            | SsoManage
            | ScimManage
    )
}

/// How far a signed-in person got. Only `Full` actors pass [`Actor::require`] or
/// [`Actor::require_user`]; a pending actor (password right, second factor still due) exists
/// only for the challenge and enrolment services, which ask for it by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStage {
    /// Signed in (API keys and the console are always `Full`).
    Full,
    /// Must answer the TOTP (or recovery code) challenge.
    PendingMfa,
    /// Must enrol a second factor first (enforced 2FA).
    PendingEnrol,
}

/// An authenticated caller inside exactly one tenant.
#[derive(Debug, Clone)]
pub struct Actor {
    tenant: TenantId,
    principal: Principal,
    stage: AuthStage,
}

impl Actor {
    pub(crate) fn new(tenant: TenantId, principal: Principal) -> Self {
        Actor {
            tenant,
            principal,
            stage: AuthStage::Full,
        }
    }

    /// A person part-way through a two-step sign-in.
    pub(crate) fn pending(tenant: TenantId, principal: Principal, stage: AuthStage) -> Self {
        Actor {
            tenant,
            principal,
            stage,
        }
    }

    pub fn stage(&self) -> AuthStage {
        self.stage
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            Principal::ApiKey { .. }
            | Principal::Console
            | Principal::Scim { .. }
            | Principal::Support { .. } => None,
        }
    }

    /// The support grant this request runs under, if any.
    pub fn support_grant(&self) -> Option<kluis_types::ids::SupportGrantId> {
        match self.principal {
            Principal::Support { grant, .. } => Some(grant),
            _ => None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        if self.stage != AuthStage::Full {
            return false;
        }
        match &self.principal {
            Principal::User { role, .. } => role.grants(p),
            Principal::ApiKey { scopes, .. } => scopes.iter().any(|s| s.grants(p)),
            Principal::Console => true,
            Principal::Scim { .. } => p == Permission::ScimProvision,
            Principal::Support { write, .. } => support_allows(*write, p),
        }
    }

    /// The single authorization check: deny unless the table grants `p`.
    pub fn require(&self, p: Permission) -> Result<()> {
        if matches!(self.principal, Principal::Support { .. }) && support_blocks(p) {
            return Err(crate::support::support_action_blocked());
        }
        if self.can(p) {
            Ok(())
        } else {
            Err(Error::forbidden(
                "your role or key scopes do not allow this action",
            ))
        }
    }

    /// For actions that need a person (e.g. managing keys), not a key.
    pub fn require_user(&self) -> Result<UserId> {
        if self.stage != AuthStage::Full {
            return Err(Error::unauthenticated());
        }
        if matches!(self.principal, Principal::Support { .. }) {
            // Account actions (passwords, second factors, keys) belong to the tenant's people.
            return Err(crate::support::support_action_blocked());
        }
        self.user_id().ok_or_else(|| {
            Error::forbidden(
                "this action requires a signed-in user, not an API key; with a key use \
                 /api/v1/apikeys/{id} for the key itself and /api/v1/users for people",
            )
        })
    }
}

impl Actor {
    /// Where this actor's CRM rights come from (see [`crate::Kluis::access`]).
    pub(crate) fn access_source(&self) -> AccessSource {
        if self.stage != AuthStage::Full {
            return AccessSource::Nothing;
        }
        match &self.principal {
            Principal::User { id, role, .. } => AccessSource::User {
                id: *id,
                role: *role,
            },
            Principal::ApiKey { id, scopes } => AccessSource::Key {
                id: *id,
                scopes: scopes.clone(),
            },
            Principal::Console => AccessSource::Everything,
            Principal::Scim { .. } => AccessSource::Nothing,
            Principal::Support { write, .. } => AccessSource::Support { write: *write },
        }
    }

    /// The console operator for one tenant (CLI only; never reachable over HTTP).
    pub fn console(tenant: TenantId) -> Actor {
        Actor::new(tenant, Principal::Console)
    }

    /// Key management needs a signed-in person with the permission, or the console.
    pub(crate) fn require_key_manager(&self) -> Result<Option<UserId>> {
        match self.principal {
            Principal::Console => Ok(None),
            Principal::User { id, .. } => {
                self.require(Permission::ApiKeysManage)?;
                Ok(Some(id))
            }
            Principal::ApiKey { .. } => Err(Error::forbidden(
                "API keys cannot manage API keys; sign in as an admin",
            )),
            Principal::Scim { .. } => Err(Error::forbidden("the SCIM token cannot manage keys")),
            Principal::Support { .. } => Err(crate::support::support_action_blocked()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_PERMS: [Permission; 7] = [
        Permission::AuditRead,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::OwnersManage,
        Permission::ApiKeysManage,
        Permission::SettingsRead,
        Permission::SettingsManage,
    ];

    #[test]
    fn role_table_is_monotonic_and_deny_by_default() {
        // Each role holds a subset of the role above it.
        for pair in Role::ALL.windows(2) {
            for p in ALL_PERMS {
                if pair[1].grants(p) {
                    assert!(
                        pair[0].grants(p),
                        "{:?} has {p:?} but {:?} does not",
                        pair[1],
                        pair[0]
                    );
                }
            }
        }
        assert!(!Role::Admin.grants(Permission::OwnersManage));
        assert!(!Role::Manager.grants(Permission::UsersManage));
        assert!(!Role::Member.grants(Permission::ApiKeysManage));
        assert!(!Role::ReadOnly.grants(Permission::SettingsRead));
    }

    #[test]
    fn no_scope_reaches_key_or_owner_management() {
        for s in Scope::ALL {
            assert!(!s.grants(Permission::ApiKeysManage));
            assert!(!s.grants(Permission::OwnersManage));
            assert!(!s.grants(Permission::SsoManage));
            assert!(s.grants(s.needs()));
        }
    }

    #[test]
    fn api_key_actor_is_limited_to_its_scopes() {
        let a = Actor::new(
            TenantId::new(),
            Principal::ApiKey {
                id: ApiKeyId::new(),
                scopes: vec![Scope::UsersRead],
            },
        );
        assert!(a.require(Permission::UsersRead).is_ok());
        assert!(a.require(Permission::UsersManage).is_err());
        assert!(a.require_user().is_err());
    }

    #[test]
    fn built_in_rules_are_the_permission_table_in_the_object_shape() {
        for role in Role::ALL {
            let rules = RoleRules::built_in(role);
            for t in ObjectType::ALL {
                let r = rules.rights(t);
                assert_eq!(r.read, role.grants(Permission::CrmRead));
                assert_eq!(r.create, role.grants(Permission::CrmWrite));
                assert_eq!(r.delete, role.grants(Permission::CrmWrite));
                assert_eq!(r.export, role.grants(Permission::CrmExport));
                assert_eq!(r.import, role.grants(Permission::CrmImport));
                assert_eq!(r.scope, RecordScope::All);
            }
        }
        assert!(
            !RoleRules::built_in(Role::Member)
                .rights(ObjectType::Contact)
                .export
        );
    }

    #[test]
    fn custom_rules_deny_what_they_do_not_name() {
        let rules: RoleRules = serde_json::from_value(serde_json::json!({
            "objects": {"contact": {"read": true}}
        }))
        .unwrap();
        let c = rules.rights(ObjectType::Contact);
        assert!(c.read && !c.create && !c.update && !c.delete && !c.export && !c.import);
        // A rule that names no scope gets the narrowest.
        assert_eq!(c.scope, RecordScope::Own);
        assert_eq!(rules.rights(ObjectType::Deal), ObjectRights::default());
        // Unknown keys are refused rather than ignored (a typo must not widen or narrow
        // rights silently).
        assert!(
            serde_json::from_value::<RoleRules>(serde_json::json!({
                "objects": {"contact": {"raed": true}}
            }))
            .is_err()
        );
    }

    #[test]
    fn a_key_gets_its_scopes_within_its_makers_rules() {
        let me = UserId::new();
        let mut objects = BTreeMap::new();
        objects.insert(
            ObjectType::Contact,
            ObjectRights {
                read: true,
                create: true,
                update: true,
                delete: true,
                export: false,
                import: false,
                unmask: false,
                scope: RecordScope::Team,
            },
        );
        let access = Access::new(
            RoleRules {
                objects,
                fields: BTreeMap::new(),
            },
            Some(me),
            vec![me],
        )
        .with_scopes(&[Scope::CrmRead, Scope::CrmExport]);
        // Read: both allow it. Export: the scope does, the role does not. Write: the role
        // does, the scope does not.
        assert!(access.can(ObjectType::Contact, Right::Read));
        assert!(!access.can(ObjectType::Contact, Right::Export));
        assert!(!access.can(ObjectType::Contact, Right::Create));
        assert!(!access.can(ObjectType::Deal, Right::Read));
        assert_eq!(
            access.require(ObjectType::Contact, Right::Read).unwrap(),
            Visibility::Team {
                me,
                mates: vec![me]
            }
        );
        assert!(access.require(ObjectType::Deal, Right::Read).is_err());
        assert!(access.require_every_record().is_err());
    }

    #[test]
    fn visibility_shows_only_what_its_scope_reaches() {
        let (me, mate, other) = (UserId::new(), UserId::new(), UserId::new());
        let own = Visibility::Own(me);
        assert!(own.shows(Some(me)));
        assert!(!own.shows(Some(other)));
        assert!(!own.shows(None));
        let team = Visibility::Team {
            me,
            mates: vec![me, mate],
        };
        assert!(team.shows(Some(mate)) && team.shows(Some(me)));
        assert!(!team.shows(Some(other)) && !team.shows(None));
        assert!(Visibility::All.shows(None));
        assert!(!Visibility::Nothing.shows(Some(me)));
        // Scope without a person to anchor it reaches nothing, never everything.
        let mut objects = BTreeMap::new();
        objects.insert(
            ObjectType::Contact,
            ObjectRights {
                read: true,
                ..Default::default()
            },
        );
        let anchorless = Access::new(
            RoleRules {
                objects,
                fields: BTreeMap::new(),
            },
            None,
            Vec::new(),
        );
        assert_eq!(
            anchorless
                .require(ObjectType::Contact, Right::Read)
                .unwrap(),
            Visibility::Nothing
        );
        assert_ne!(Visibility::Nothing.store_scope(), OwnerScope::All);
    }

    #[test]
    fn pending_actor_is_granted_nothing() {
        let principal = Principal::User {
            id: UserId::new(),
            role: Role::Owner,
            session: Some(SessionId::new()),
        };
        for stage in [AuthStage::PendingMfa, AuthStage::PendingEnrol] {
            let a = Actor::pending(TenantId::new(), principal.clone(), stage);
            assert!(a.require(Permission::UsersRead).is_err());
            assert!(a.require_user().is_err());
            assert!(a.require_key_manager().is_err());
        }
        let full = Actor::new(TenantId::new(), principal);
        assert!(full.require(Permission::UsersRead).is_ok());
    }
}
