//! Private app keys (API keys): create (secret shown once), list, view, rotate (old secret
//! valid for a configurable overlap), revoke. Stored as SHA-256 hashes. Privileged: only a
//! signed-in user with `ApiKeysManage` (or the console) may manage them, never a key.

use crate::db::rows::{ApiKeyRow, NewApiKey};
use kluis_crypto::token;
use serde::{Deserialize, Serialize};

use crate::audit::{Event, actor_label};
use crate::users::rfc3339;
use crate::{
    Actor, ApiKeyId, Error, Kluis, Page, Principal, RequestContext, Result, Scope, UserId, ms,
    page_limit, tokens, validate,
};
use serde_json::json;

pub(crate) mod cache;
use cache::VerifiedKey;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    #[schema(value_type = uuid::Uuid)]
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The user who created it; absent when created at the server console.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub created_by: Option<UserId>,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = Error;
    fn try_from(r: ApiKeyRow) -> Result<Self> {
        Ok(ApiKey {
            id: r.id,
            name: r.name,
            scopes: serde_json::from_str(&r.scopes)
                .map_err(|_| Error::internal("stored scopes unreadable"))?,
            created_by: r.created_by,
            created_at: rfc3339(r.created_at),
            rotated_at: r.rotated_at.map(rfc3339),
            last_used_at: r.last_used_at.map(rfc3339),
            revoked_at: r.revoked_at.map(rfc3339),
        })
    }
}

/// A key together with its secret: returned exactly once, at creation or rotation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Use as `Authorization: Bearer <secret>`. Not retrievable later.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyInput {
    pub name: String,
    pub scopes: Vec<Scope>,
}

const TOUCH_EVERY_MS: i64 = 60_000;

impl Kluis {
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: NewApiKeyInput,
    ) -> Result<ApiKeyWithSecret> {
        let creator = actor.require_key_manager()?;
        let name = validate::name("name", &input.name)?;
        if input.scopes.is_empty() {
            return Err(Error::validation(
                "scopes",
                "scopes_required",
                "give at least one scope",
            ));
        }
        // Nobody hands out more than they hold.
        for s in &input.scopes {
            if !actor.can(s.needs()) {
                return Err(
                    Error::forbidden("you cannot grant a scope you do not hold yourself")
                        .with_field("scopes"),
                );
            }
        }
        let mut scopes = input.scopes.clone();
        scopes.sort_by_key(|s| *s as u8);
        scopes.dedup();
        let scopes_json =
            serde_json::to_string(&scopes).map_err(|_| Error::internal("serialise scopes"))?;
        let secret = token::generate_secret();
        let id = ApiKeyId::new();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        tx.insert_api_key(&NewApiKey {
            id,
            name: &name,
            scopes: &scopes_json,
            secret_hash: &token::hash_secret(&secret),
            created_by: creator,
            now: self.now(),
        })
        .await?;
        let key: ApiKey = tx
            .api_key(id)
            .await?
            .ok_or_else(Error::not_found)?
            .try_into()?;
        self.audit_key(
            &mut tx,
            actor,
            ctx,
            "apikey.create",
            id,
            json!({"name": key.name, "scopes": key.scopes}),
        )
        .await?;
        tx.commit().await?;
        Ok(ApiKeyWithSecret {
            key,
            secret: tokens::api_key(actor.tenant(), &secret),
        })
    }

    /// Key management is privileged: every action, views included, is recorded.
    async fn audit_key(
        &self,
        tx: &mut crate::db::TenantTx,
        actor: &Actor,
        ctx: &RequestContext,
        action: &str,
        id: impl ToString,
        details: serde_json::Value,
    ) -> Result<()> {
        let keys = self.keys(tx).await?;
        let ev = Event {
            action,
            success: true,
            object_type: Some("apikey"),
            object_id: Some(id.to_string()),
            details,
        };
        self.audit(tx, &keys, &actor_label(actor), ctx, ev).await
    }

    pub async fn list_api_keys(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ApiKey>> {
        actor.require_key_manager()?;
        let after = validate::cursor::<ApiKeyId>(cursor)?;
        let limit = page_limit(limit)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let rows = tx.list_api_keys(after, limit + 1).await?;
        let page =
            crate::users::page(rows, limit, ApiKey::try_from, |k: &ApiKey| k.id.to_string())?;
        self.audit_key(
            &mut tx,
            actor,
            ctx,
            "apikey.list",
            "",
            json!({"count": page.items.len()}),
        )
        .await?;
        tx.commit().await?;
        Ok(page)
    }

    pub async fn get_api_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: ApiKeyId,
    ) -> Result<ApiKey> {
        actor.require_key_manager()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let key: ApiKey = tx
            .api_key(id)
            .await?
            .ok_or_else(Error::not_found)?
            .try_into()?;
        self.audit_key(
            &mut tx,
            actor,
            ctx,
            "apikey.view",
            id,
            json!({"name": key.name}),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// New secret; the old one keeps working for the configured overlap (default: not at all).
    pub async fn rotate_api_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: ApiKeyId,
    ) -> Result<ApiKeyWithSecret> {
        actor.require_key_manager()?;
        let secret = token::generate_secret();
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let overlap_until = now + ms(self.config.api_key_rotation_overlap);
        if !tx
            .rotate_api_key(id, &token::hash_secret(&secret), overlap_until, now)
            .await?
        {
            return Err(Error::not_found());
        }
        let key = tx
            .api_key(id)
            .await?
            .ok_or_else(Error::not_found)?
            .try_into()?;
        let overlap = self.config.api_key_rotation_overlap.as_secs();
        self.audit_key(
            &mut tx,
            actor,
            ctx,
            "apikey.rotate",
            id,
            json!({"old_secret_valid_for_secs": overlap}),
        )
        .await?;
        tx.commit().await?;
        self.api_keys_changed(actor.tenant()).await;
        Ok(ApiKeyWithSecret {
            key,
            secret: tokens::api_key(actor.tenant(), &secret),
        })
    }

    pub async fn revoke_api_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: ApiKeyId,
    ) -> Result<()> {
        actor.require_key_manager()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        if !tx.revoke_api_key(id, self.now()).await? {
            return Err(Error::not_found());
        }
        self.audit_key(&mut tx, actor, ctx, "apikey.revoke", id, json!({}))
            .await?;
        tx.commit().await?;
        self.api_keys_changed(actor.tenant()).await;
        Ok(())
    }

    /// Resolves `Authorization: Bearer kluis_...`: from the cache of recently verified keys
    /// (see `cache.rs` for why that stays exact) or from the database.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Actor> {
        let (tenant, secret) =
            tokens::parse_api_key(presented).ok_or_else(Error::unauthenticated)?;
        let now = self.now();
        let hash = token::hash_secret(secret);
        let key = match self.api_key_cache.get(&hash) {
            // The database lookup is within the token's tenant; so is a cache hit.
            Some(k) if k.tenant == tenant => k,
            // Boxed, like the touch below: rare paths whose state would otherwise be copied
            // with every request's future.
            _ => Box::pin(self.verify_api_key(tenant, hash)).await?,
        };
        if key.valid_until.is_some_and(|until| now >= until) {
            return Err(Error::unauthenticated());
        }
        if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            Box::pin(self.touch_api_key(tenant, key.id, now)).await?;
            self.api_key_cache.touched(&hash, now);
        }
        Ok(Actor::new(
            tenant,
            Principal::ApiKey {
                id: key.id,
                scopes: key.scopes,
            },
        ))
    }

    async fn touch_api_key(&self, tenant: crate::TenantId, id: ApiKeyId, now: i64) -> Result<()> {
        let mut w = self.store.tenant(tenant).begin().await?;
        w.touch_api_key(id, now).await?;
        w.commit().await?;
        Ok(())
    }

    /// Reads the key behind a secret (current or pre-rotation) and its tenant's status in one
    /// statement, and remembers a key that may be used.
    async fn verify_api_key(&self, tenant: crate::TenantId, hash: [u8; 32]) -> Result<VerifiedKey> {
        let ticket = self.api_key_cache.ticket();
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let m = tx
            .api_key_by_secret_hash(&hash)
            .await?
            .ok_or_else(Error::unauthenticated)?;
        drop(tx);
        if !m.tenant_status.is_active() {
            return Err(crate::sessions::suspended_or_unknown());
        }
        let valid_until = if m.via_previous {
            Some(
                m.key
                    .previous_valid_until
                    .ok_or_else(Error::unauthenticated)?,
            )
        } else {
            None
        };
        let key = VerifiedKey {
            tenant,
            id: m.key.id,
            scopes: serde_json::from_str(&m.key.scopes)
                .map_err(|_| Error::internal("stored scopes unreadable"))?,
            valid_until,
            last_used_at: m.key.last_used_at,
        };
        self.api_key_cache.store(ticket, hash, key.clone());
        Ok(key)
    }

    /// To be called after committing anything that can end API keys of `tenant` (revoke,
    /// rotate, deprovisioning a user, suspending or shredding the tenant): forgets them in this
    /// process at once, and returns only when no process can still be using a verification
    /// made before the change.
    pub(crate) async fn api_keys_changed(&self, tenant: crate::TenantId) {
        self.api_key_cache.evict_tenant(tenant);
        let ttl = self.api_key_cache.ttl();
        if !ttl.is_zero() {
            // A few ms over: other processes' clocks tick at the same rate, not in step.
            tokio::time::sleep(ttl + std::time::Duration::from_millis(5)).await;
        }
    }
}
