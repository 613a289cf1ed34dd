//! First start: a one-time setup link (valid one hour, single use) lets the first person
//! create the first tenant and its owner.

use kluis_crypto::token;
use serde::{Deserialize, Serialize};

use crate::RequestContext;
use crate::audit::Event;
use crate::tenants::{Tenant, slug_taken};
use crate::users::{NewUserInput, User, insert_user};
use crate::{Error, ErrorKind, Kluis, Result, Role, TenantId, ms, validate};
use serde_json::json;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupInput {
    pub token: String,
    pub tenant_slug: String,
    pub tenant_name: String,
    pub owner_email: String,
    pub owner_name: String,
    pub owner_password: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetupResult {
    pub tenant: Tenant,
    pub owner: User,
}

impl Kluis {
    /// When no tenant exists yet, returns the setup token: `previous` (the link printed at an
    /// earlier start) while it is unused and unexpired, so a restart before finishing setup
    /// does not kill the link someone has open; otherwise a fresh one (invalidating older
    /// ones). None once a tenant exists. Called at `kluis serve` start.
    pub async fn issue_setup_token_if_unconfigured(
        &self,
        previous: Option<&str>,
    ) -> Result<Option<String>> {
        let mut p = self.store.platform().await?;
        if p.count_tenants().await? > 0 {
            return Ok(None);
        }
        if let Some(prev) = previous
            && p.live_setup_token(&token::hash_secret(prev), self.now())
                .await?
                .is_some()
        {
            return Ok(Some(prev.to_owned()));
        }
        let secret = token::generate_secret();
        let now = self.now();
        p.replace_setup_token(
            &token::hash_secret(&secret),
            now,
            now + ms(self.config.setup_token_ttl),
        )
        .await?;
        p.commit().await?;
        Ok(Some(secret))
    }

    /// Consumes the setup token and creates tenant + settings + owner in one transaction.
    pub async fn complete_setup(
        &self,
        input: SetupInput,
        ctx: &RequestContext,
    ) -> Result<SetupResult> {
        let slug = validate::slug("tenant_slug", &input.tenant_slug)?;
        let name = validate::name("tenant_name", &input.tenant_name)?;
        let now = self.now();
        let mut p = self.store.platform().await?;
        if !p
            .consume_setup_token(&token::hash_secret(&input.token), now)
            .await?
        {
            return Err(Error::new(
                ErrorKind::Gone,
                "setup_link_invalid",
                "this setup link is unknown, expired or already used",
            ));
        }
        let id = TenantId::new();
        p.insert_tenant(id, &slug, &name, now)
            .await
            .map_err(slug_taken)?;
        let tenant: Tenant = p
            .tenant(id)
            .await?
            .ok_or_else(Error::not_found)?
            .try_into()?;
        let mut tx = p.enter_tenant(id).await?;
        self.provision_keys(&mut tx).await?;
        let owner = insert_user(
            self,
            &mut tx,
            &NewUserInput {
                email: input.owner_email,
                display_name: input.owner_name,
                role: Role::Owner,
                password: Some(input.owner_password),
            },
            now,
        )
        .await
        .map_err(|e| match e.field.as_deref() {
            // Name setup's own fields so the form can point at them.
            Some("email") => e.with_field("owner_email"),
            Some("display_name") => e.with_field("owner_name"),
            Some("password") => e.with_field("owner_password"),
            _ => e,
        })?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("user.create", "user", owner.id)
            .with(json!({"email": owner.email, "role": owner.role, "via": "setup_link"}));
        self.audit(&mut tx, &keys, "setup-link", ctx, ev).await?;
        let ev = Event::ok("tenant.create", "tenant", id)
            .with(json!({"slug": tenant.slug, "via": "setup_link"}));
        let tx = self.audit_platform(tx, "setup-link", ctx, ev).await?;
        // Any error above drops the transaction: the token stays unused, nothing is written.
        tx.commit().await?;
        Ok(SetupResult { tenant, owner })
    }
}
