//! Customer-managed keys (BYOK / hold-your-own-key).
//!
//! Normally a tenant's root key is wrapped by the platform KEK. A tenant owner can instead have
//! it wrapped by an AES-256 key in the tenant's OWN PKCS#11 token: wrapping and unwrapping then
//! happen inside that token, and the platform holds only the wrapped root key plus the PIN it
//! was granted (sealed under the platform KEK, so a copy of the key directory alone is useless).
//!
//! When the tenant revokes that key (deletes or disables it, or cuts the platform off its
//! token), the root key no longer unwraps: every request that needs the tenant's data gets
//! `423 customer_key_unavailable` within the key cache TTL, and other tenants are untouched.
//! Restoring the key ("re-grant") restores access; nothing was re-encrypted or lost.
//!
//! Which PKCS#11 modules may be loaded is the operator's choice (`byok_pkcs11_modules`): a
//! tenant only picks one of them, never a path of its own, because loading a module runs its
//! code inside the server.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kluis_crypto::envelope::{self, DataKey, KeyRing, Kms, Pkcs11Kms, SealContext};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::keys::{StoredRootKey, wrap_aad as root_wrap_aad};
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, TenantId};

/// Where a tenant's customer-managed key lives, as recorded next to its wrapped root key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CustomerKeyRef {
    /// Only `pkcs11` for now.
    provider: String,
    module: PathBuf,
    token_label: String,
    key_label: String,
    /// The PIN the tenant granted the platform, sealed under the platform KEK.
    pin: SealedSecret,
}

/// A small secret sealed under the platform KEK: a fresh data key wrapped by the KEK, and the
/// secret sealed (AES-256-GCM) under that data key, bound to tenant and purpose.
#[derive(Clone, Serialize, Deserialize)]
struct SealedSecret {
    kek_id: String,
    wrapped_key: String,
    sealed: String,
}

const PIN_PURPOSE: &str = "customer-key-pin";

fn pin_context(tenant: TenantId) -> SealContext<'static> {
    SealContext {
        tenant: *tenant.0.as_bytes(),
        table: "customer_key",
        column: "pin",
        record: [0; 16],
    }
}

/// The error every tenant request gets while its customer-managed key is unusable.
pub(crate) fn customer_key_unavailable(why: &str) -> Error {
    tracing::warn!(why, "customer-managed key unavailable");
    Error::new(
        ErrorKind::Locked,
        "customer_key_unavailable",
        "this organisation's data is locked: its customer-managed encryption key is revoked or \
         unreachable; the organisation's key administrator can restore access",
    )
}

fn rejected(message: &str) -> Error {
    Error::new(ErrorKind::Validation, "customer_key_rejected", message)
}

/// A customer key as an owner submits it.
pub struct CustomerKeyInput {
    /// One of the operator's allowed PKCS#11 modules.
    pub module: String,
    pub token_label: String,
    pub key_label: String,
    pub pin: SecretString,
}

/// What `GET /api/v1/keys/customer-key` shows. Never the PIN.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerKeyStatus {
    /// `platform` (root key wrapped by the platform KEK) or `customer` (by the tenant's key).
    pub mode: String,
    pub provider: Option<String>,
    pub module: Option<String>,
    pub token_label: Option<String>,
    pub key_label: Option<String>,
    /// Whether the root key unwraps right now.
    pub available: bool,
    /// The PKCS#11 modules this server allows for customer keys.
    pub allowed_modules: Vec<String>,
}

impl CustomerKeyRef {
    /// The platform KEK the granted PIN is sealed under.
    pub(crate) fn pin_kek_id(&self) -> &str {
        &self.pin.kek_id
    }
}

impl Kluis {
    fn seal_secret(&self, tenant: TenantId, secret: &[u8]) -> Result<SealedSecret> {
        let kms = &self.keks.primary;
        let key = DataKey::generate(1)?;
        let wrapped = kms.wrap(&key, &root_wrap_aad(tenant, PIN_PURPOSE))?;
        let sealed = envelope::seal(&key, &pin_context(tenant), secret)?;
        Ok(SealedSecret {
            kek_id: kms.key_id(),
            wrapped_key: B64.encode(wrapped),
            sealed: B64.encode(sealed),
        })
    }

    fn open_secret(&self, tenant: TenantId, s: &SealedSecret) -> Result<SecretString> {
        let kms = self
            .keks
            .by_id(&s.kek_id)
            .ok_or_else(|| customer_key_unavailable("PIN sealed under an unknown KEK"))?;
        let bad = || customer_key_unavailable("sealed PIN unreadable");
        let wrapped = B64.decode(&s.wrapped_key).map_err(|_| bad())?;
        let sealed = B64.decode(&s.sealed).map_err(|_| bad())?;
        let key = kms
            .unwrap(&wrapped, &root_wrap_aad(tenant, PIN_PURPOSE))
            .map_err(|_| bad())?;
        let pin =
            envelope::open(&KeyRing::new(key), &pin_context(tenant), &sealed).map_err(|_| bad())?;
        String::from_utf8(pin)
            .map(SecretString::from)
            .map_err(|_| bad())
    }

    /// Opens the tenant's key in its token. Any failure (module, token, PIN, key gone or no
    /// longer allowed to decrypt) means the tenant's data is locked.
    pub(crate) fn customer_kms(
        &self,
        tenant: TenantId,
        r: &CustomerKeyRef,
    ) -> Result<Arc<dyn Kms>> {
        if !self.config.byok_pkcs11_modules.contains(&r.module) {
            return Err(customer_key_unavailable(
                "the customer key's PKCS#11 module is no longer allowed",
            ));
        }
        let pin = self.open_secret(tenant, &r.pin)?;
        Pkcs11Kms::open(&r.module, &r.token_label, pin, &r.key_label)
            .map(|k| Arc::new(k) as Arc<dyn Kms>)
            .map_err(|e| customer_key_unavailable(&e.to_string()))
    }

    /// KEK rotation: the PIN is the only thing of a customer-key tenant under the platform KEK.
    /// Returns true if it was re-sealed.
    pub(crate) fn reseal_customer_pin(
        &self,
        tenant: TenantId,
        r: &mut CustomerKeyRef,
    ) -> Result<bool> {
        if r.pin.kek_id == self.keks.primary_id() {
            return Ok(false);
        }
        let pin = self.open_secret(tenant, &r.pin)?;
        r.pin = self.seal_secret(tenant, pin.expose_secret().as_bytes())?;
        Ok(true)
    }

    fn allowed_modules(&self) -> Vec<String> {
        self.config
            .byok_pkcs11_modules
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    fn status_of(&self, stored: &StoredRootKey, available: bool) -> CustomerKeyStatus {
        let c = stored.customer.as_ref();
        CustomerKeyStatus {
            mode: if c.is_some() { "customer" } else { "platform" }.to_owned(),
            provider: c.map(|c| c.provider.clone()),
            module: c.map(|c| c.module.display().to_string()),
            token_label: c.map(|c| c.token_label.clone()),
            key_label: c.map(|c| c.key_label.clone()),
            available,
            allowed_modules: self.allowed_modules(),
        }
    }

    /// Which key protects the tenant's root key, and whether it is usable now.
    pub async fn customer_key_status(&self, actor: &Actor) -> Result<CustomerKeyStatus> {
        actor.require(Permission::EncryptionKeysManage)?;
        let tenant = actor.tenant();
        let stored = self.stored_root(tenant)?;
        let available = self.load_root(tenant).is_ok();
        Ok(self.status_of(&stored, available))
    }

    /// Moves the tenant's root key under its own PKCS#11 key. The key must be a sensitive,
    /// non-extractable AES-256 key allowed to encrypt and decrypt; the wrap is checked by
    /// unwrapping it again before anything is stored.
    pub async fn set_customer_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: CustomerKeyInput,
    ) -> Result<CustomerKeyStatus> {
        actor.require(Permission::EncryptionKeysManage)?;
        actor.require_user()?;
        let tenant = actor.tenant();
        let module = PathBuf::from(&input.module);
        if !self.config.byok_pkcs11_modules.contains(&module) {
            return Err(Error::new(
                ErrorKind::Validation,
                "module_not_allowed",
                "this PKCS#11 module is not among the server's allowed modules (see allowed_modules)",
            )
            .with_field("module"));
        }
        for (field, v) in [
            ("token_label", &input.token_label),
            ("key_label", &input.key_label),
        ] {
            if v.is_empty() || v.len() > 64 {
                return Err(Error::validation(
                    field,
                    "invalid_label",
                    "must be 1 to 64 characters",
                ));
            }
        }
        let pin_bytes = input.pin.expose_secret().as_bytes().to_vec();
        let kms = Pkcs11Kms::open(&module, &input.token_label, input.pin, &input.key_label)
            .map_err(|e| {
                // The crypto error names the operation and return code, never the PIN.
                tracing::info!(error = %e, "customer key refused");
                rejected(
                    "the key could not be used: check module, token label, key label and PIN; \
                     the key must be a sensitive, non-extractable AES-256 key allowed to \
                     encrypt and decrypt",
                )
            })?;
        let previous = self.stored_root(tenant)?;
        let (root, _) = self.load_root(tenant)?;
        let aad = root_wrap_aad(tenant, "root");
        let wrapped = kms.wrap(&root, &aad)?;
        // Prove the round trip inside the token before the platform's wrap is dropped.
        let back = kms
            .unwrap(&wrapped, &aad)
            .map_err(|_| rejected("the key wraps but does not unwrap"))?;
        if back.expose_secret() != root.expose_secret() {
            return Err(rejected("the key does not round-trip"));
        }
        let customer = CustomerKeyRef {
            provider: "pkcs11".into(),
            module,
            token_label: input.token_label,
            key_label: input.key_label,
            pin: self.seal_secret(tenant, &pin_bytes)?,
        };
        let stored = StoredRootKey {
            kek_id: kms.key_id(),
            wrapped: B64.encode(wrapped),
            customer: Some(customer),
        };
        let details = json!({
            "provider": "pkcs11",
            "token_label": stored.customer.as_ref().map(|c| &c.token_label),
            "key_label": stored.customer.as_ref().map(|c| &c.key_label),
            "previous_mode": if previous.customer.is_some() { "customer" } else { "platform" },
        });
        self.switch_root(
            actor,
            ctx,
            &previous,
            &stored,
            "keys.customer_key.set",
            details,
        )
        .await?;
        Ok(self.status_of(&stored, true))
    }

    /// Moves the tenant's root key back under the platform KEK. Needs the customer key to be
    /// usable (the root key must be unwrapped once more).
    pub async fn remove_customer_key(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<CustomerKeyStatus> {
        actor.require(Permission::EncryptionKeysManage)?;
        actor.require_user()?;
        let tenant = actor.tenant();
        let previous = self.stored_root(tenant)?;
        if previous.customer.is_none() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "no_customer_key",
                "this organisation's data is already protected by the platform key",
            ));
        }
        let (root, _) = self.load_root(tenant)?;
        let stored: StoredRootKey = serde_json::from_slice(&self.encode_root(tenant, &root)?)
            .map_err(|_| Error::internal("root key encoding"))?;
        self.switch_root(
            actor,
            ctx,
            &previous,
            &stored,
            "keys.customer_key.remove",
            json!({"previous_mode": "customer"}),
        )
        .await?;
        Ok(self.status_of(&stored, true))
    }

    /// Replaces the stored root key and records the change, so that either both happen or the
    /// previous file is put back.
    async fn switch_root(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        previous: &StoredRootKey,
        next: &StoredRootKey,
        action: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        let tenant = actor.tenant();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok(action, "tenant_keys", tenant).with(details);
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        self.put_stored_root(tenant, next)?;
        if let Err(e) = tx.commit().await {
            // Best effort: the event did not commit, so the change must not stay either.
            if let Err(undo) = self.put_stored_root(tenant, previous) {
                tracing::error!(%tenant, error = %undo, "could not restore the previous root key after a failed commit");
            }
            return Err(e.into());
        }
        self.key_cache.evict(tenant);
        Ok(())
    }
}
