//! Who may do what: built-in roles, API key scopes, and one deny-by-default check.
//!
//! An [`Actor`] can only be produced by authentication in this crate (its fields are private),
//! so a handler cannot invent one for another tenant. Every service starts with
//! [`Actor::require`], and every tenant transaction is opened for `actor.tenant()`.

use serde::{Deserialize, Serialize};

use crate::{ApiKeyId, Error, Result, SessionId, TenantId, UserId};

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
            Principal::ApiKey { .. } | Principal::Console | Principal::Scim { .. } => None,
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
        }
    }

    /// The single authorization check: deny unless the table grants `p`.
    pub fn require(&self, p: Permission) -> Result<()> {
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
        self.user_id().ok_or_else(|| {
            Error::forbidden(
                "this action requires a signed-in user, not an API key; with a key use \
                 /api/v1/apikeys/{id} for the key itself and /api/v1/users for people",
            )
        })
    }
}

impl Actor {
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
