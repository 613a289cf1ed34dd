//! The platform side: the tenant directory (create, list, suspend, resume) and platform keys.
//! Platform callers never touch tenant tables except through tenant provisioning.

use crate::db::rows::TenantRow;
use kluis_crypto::token;
use kluis_types::Status;
use serde::{Deserialize, Serialize};

use crate::RequestContext;
use crate::audit::Event;
use crate::tokens::PLATFORM_KEY_PREFIX;
use crate::{Error, ErrorKind, Kluis, Page, Result, TenantId, page_limit, validate};
use serde_json::json;

/// An authenticated platform operator (platform key, or the console).
#[derive(Debug, Clone)]
pub struct PlatformActor {
    /// How the operator appears in the platform audit log.
    label: String,
}

impl PlatformActor {
    /// The operator at the server console. Holds the database credentials already.
    pub fn console() -> Self {
        PlatformActor {
            label: "console".into(),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    #[schema(value_type = uuid::Uuid)]
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    /// `active` or `suspended`.
    #[schema(value_type = String)]
    pub status: Status,
    pub created_at: String,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = Error;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(Tenant {
            id: r.id,
            slug: r.slug,
            name: r.name,
            status: r.status,
            created_at: crate::users::rfc3339(r.created_at),
        })
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantInput {
    pub slug: String,
    pub name: String,
}

impl Kluis {
    /// Checks a `kluisp_...` platform key.
    pub async fn authenticate_platform_key(&self, presented: &str) -> Result<PlatformActor> {
        let secret = presented
            .strip_prefix(PLATFORM_KEY_PREFIX)
            .ok_or_else(Error::unauthenticated)?;
        let mut p = self.store.platform_read().await?;
        match p.platform_key_by_hash(&token::hash_secret(secret)).await? {
            Some(k) => Ok(PlatformActor {
                label: format!("platform-key:{}", k.id.0),
            }),
            None => Err(Error::unauthenticated()),
        }
    }

    /// Creates a platform key (console only); returns the secret, shown once.
    pub async fn create_platform_key(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<String> {
        let name = validate::name("name", name)?;
        let secret = token::generate_secret();
        let id = kluis_types::PlatformKeyId::new();
        let mut p = self.store.platform().await?;
        p.insert_platform_key(id, &name, &token::hash_secret(&secret), self.now())
            .await?;
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("platform_key.create", "platform_key", id.0).with(json!({"name": name}));
        self.audit_platform(tx, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        Ok(format!("{PLATFORM_KEY_PREFIX}{secret}"))
    }

    pub async fn create_tenant(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        input: NewTenantInput,
    ) -> Result<Tenant> {
        let slug = validate::slug("slug", &input.slug)?;
        let name = validate::name("name", &input.name)?;
        let id = TenantId::new();
        let mut p = self.store.platform().await?;
        p.insert_tenant(id, &slug, &name, self.now())
            .await
            .map_err(slug_taken)?;
        let row = p.tenant(id).await?.ok_or_else(Error::not_found)?;
        // Keys are created with the tenant, in the same transaction.
        let mut tx = p.enter_tenant(id).await?;
        self.provision_keys(&mut tx).await?;
        let ev = Event::ok("tenant.create", "tenant", id).with(json!({"slug": slug, "name": name}));
        self.audit_platform(tx, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        row.try_into()
    }

    pub async fn list_tenants(
        &self,
        _by: &PlatformActor,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Tenant>> {
        let after = validate::cursor::<TenantId>(cursor)?;
        let limit = page_limit(limit)?;
        let mut p = self.store.platform_read().await?;
        let rows = p.list_tenants(after, limit + 1).await?;
        crate::users::page(rows, limit, Tenant::try_from, |t: &Tenant| t.id.to_string())
    }

    pub async fn tenant_by_slug(&self, _by: &PlatformActor, slug: &str) -> Result<Tenant> {
        let mut p = self.store.platform_read().await?;
        p.tenant_by_slug(slug)
            .await?
            .ok_or_else(Error::not_found)?
            .try_into()
    }

    /// Suspending blocks every sign-in, session and key of the tenant at once; data is kept.
    pub async fn set_tenant_suspended(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        id: TenantId,
        suspended: bool,
    ) -> Result<Tenant> {
        let mut p = self.store.platform().await?;
        let status = if suspended {
            Status::Suspended
        } else {
            Status::Active
        };
        if !p.set_tenant_status(id, status, self.now()).await? {
            return Err(Error::not_found());
        }
        let row = p.tenant(id).await?.ok_or_else(Error::not_found)?;
        let action = if suspended {
            "tenant.suspend"
        } else {
            "tenant.resume"
        };
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        self.audit_platform(tx, by.label(), ctx, Event::ok(action, "tenant", id))
            .await?
            .commit()
            .await?;
        if suspended {
            self.api_keys_changed(id).await;
        }
        row.try_into()
    }
}

pub(crate) fn slug_taken(e: crate::db::StoreError) -> Error {
    match Error::from(e) {
        c if c.kind == ErrorKind::Conflict => Error::new(
            ErrorKind::Conflict,
            "slug_taken",
            "a tenant with this slug already exists",
        )
        .with_field("slug"),
        other => other,
    }
}
