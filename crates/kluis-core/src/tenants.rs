//! The platform side: the tenant directory (create, list, suspend, resume) and platform keys.
//! Platform callers never touch tenant tables except through tenant provisioning.

use kluis_crypto::token;
use kluis_store::rows::TenantRow;
use serde::{Deserialize, Serialize};

use crate::tokens::PLATFORM_KEY_PREFIX;
use crate::{Error, ErrorKind, Kluis, Page, Result, TenantId, page_limit, validate};

/// An authenticated platform operator (platform key, or the console).
#[derive(Debug, Clone)]
pub struct PlatformActor {
    _private: (),
}

impl PlatformActor {
    /// The operator at the server console. Holds the database credentials already.
    pub fn console() -> Self {
        PlatformActor { _private: () }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    #[schema(value_type = uuid::Uuid)]
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
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
            Some(_) => Ok(PlatformActor { _private: () }),
            None => Err(Error::unauthenticated()),
        }
    }

    /// Creates a platform key (console only); returns the secret, shown once.
    pub async fn create_platform_key(&self, _by: &PlatformActor, name: &str) -> Result<String> {
        let name = validate::name("name", name)?;
        let secret = token::generate_secret();
        let mut p = self.store.platform().await?;
        p.insert_platform_key(
            kluis_store::PlatformKeyId::new(),
            &name,
            &token::hash_secret(&secret),
            self.now(),
        )
        .await?;
        p.commit().await?;
        Ok(format!("{PLATFORM_KEY_PREFIX}{secret}"))
    }

    pub async fn create_tenant(
        &self,
        _by: &PlatformActor,
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
        tx.commit().await?;
        row.try_into()
    }

    pub async fn list_tenants(
        &self,
        _by: &PlatformActor,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Tenant>> {
        let after = validate::cursor::<TenantId>(cursor)?;
        let limit = page_limit(limit);
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
        _by: &PlatformActor,
        id: TenantId,
        suspended: bool,
    ) -> Result<Tenant> {
        let mut p = self.store.platform().await?;
        let status = if suspended { "suspended" } else { "active" };
        if !p.set_tenant_status(id, status, self.now()).await? {
            return Err(Error::not_found());
        }
        let row = p.tenant(id).await?.ok_or_else(Error::not_found)?;
        p.commit().await?;
        row.try_into()
    }
}

pub(crate) fn slug_taken(e: kluis_store::StoreError) -> Error {
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
