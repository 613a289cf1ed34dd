//! Password hashes at rest: the argon2id PHC string is sealed (AES-256-GCM) under the tenant's
//! current data key, bound to the user's row (`users.password_hash`, user id). The data key is
//! wrapped by the tenant root key, which lives outside the database wrapped by the KEK in the
//! KMS (local key file or PKCS#11): a copy of the database alone (a dump, a backup) yields no
//! hash to guess against offline.
//!
//! Stored form: `$kluis-sealed$<base64url(sealed)>`. Hashes written before sealing existed
//! (`$argon2id$...`) still verify and are sealed at the user's next sign-in, or for all users at
//! once by `kluis keys seal-passwords`. A data-key rotation works the same way: a hash sealed
//! under an older version verifies and is re-sealed under the current one at sign-in, or by
//! `kluis keys seal-passwords` (which `keys reencrypt` runs too).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use kluis_crypto::envelope;
use kluis_crypto::password;
use uuid::Uuid;

use crate::db::TenantTx;
use crate::db::rows::UserPatch;
use crate::keys::TenantKeys;
use crate::{Error, Kluis, Result, TenantId, UserId, blocking};

pub(crate) const SEALED_PREFIX: &str = "$kluis-sealed$";
const TABLE: &str = "users";
const COLUMN: &str = "password_hash";

/// Seals a PHC string for `user`'s row.
pub(crate) fn seal(keys: &TenantKeys, user: Uuid, phc: &str) -> Result<String> {
    let sealed = keys.seal_str(TABLE, COLUMN, user, phc)?;
    Ok(format!("{SEALED_PREFIX}{}", B64.encode(sealed)))
}

/// The PHC string inside a stored hash, and whether the stored form should be re-sealed
/// (legacy plain hash, or sealed under a data key older than the current one).
pub(crate) fn open(keys: &TenantKeys, user: Uuid, stored: &str) -> Result<(String, bool)> {
    match stored.strip_prefix(SEALED_PREFIX) {
        Some(b64) => {
            let sealed = B64
                .decode(b64)
                .map_err(|_| Error::internal("a stored password hash is malformed"))?;
            let stale = envelope::sealed_key_version(&sealed)
                .map_or(true, |v| i64::from(v) != keys.current_version());
            Ok((keys.open_str(TABLE, COLUMN, user, &sealed)?, stale))
        }
        // Written before hashes were sealed.
        None => Ok((stored.to_owned(), true)),
    }
}

/// Checks `password` against a stored hash inside an open transaction (re-authentication
/// for sensitive changes); no re-sealing here, the caller's transaction may be a writer.
pub(crate) async fn verify_with(
    keys: &TenantKeys,
    user: Uuid,
    stored: Option<&str>,
    password: String,
) -> Result<bool> {
    let Some(stored) = stored else {
        return Ok(false);
    };
    let (phc, _) = open(keys, user, stored)?;
    blocking(move || password::verify_password(&password, &phc))
        .await?
        .map_err(Error::from)
}

/// Whether a stored hash is in the sealed form.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

impl Kluis {
    /// Hashes a new password (argon2id) and seals the hash for `user`, counting the sealed value
    /// against the data key's budget in `tx`.
    pub(crate) async fn new_password_hash(
        &self,
        tx: &mut TenantTx,
        user: UserId,
        password: String,
    ) -> Result<String> {
        let phc = blocking(move || password::hash_password(&password)).await??;
        let keys = self.keys(tx).await?;
        let stored = seal(&keys, user.0, &phc)?;
        self.count_sealed(tx, &keys, 1).await?;
        Ok(stored)
    }

    /// The PHC string inside a user's stored hash, and whether the stored form is stale.
    pub(crate) async fn open_password_hash(
        &self,
        tenant: TenantId,
        user: UserId,
        stored: &str,
    ) -> Result<(String, bool)> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        open(&keys, user.0, stored)
    }

    /// After a successful sign-in: a hash stored in an old form (plain, or under a retired
    /// data key) is re-sealed under the current key, only if the row still holds it. Best
    /// effort: a failure leaves the old form, which still verifies.
    pub(crate) async fn reseal_after_sign_in(&self, tenant: TenantId, user: UserId, stored: &str) {
        if let Err(e) = self.reseal_one(tenant, user, stored).await {
            tracing::warn!(tenant = %tenant, error = %e, "re-sealing a password hash failed");
        }
    }

    async fn reseal_one(&self, tenant: TenantId, user: UserId, stored: &str) -> Result<bool> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let Some(row) = tx.user(user).await? else {
            return Ok(false);
        };
        if row.password_hash.as_deref() != Some(stored) {
            return Ok(false);
        }
        let keys = self.keys(&mut tx).await?;
        let (phc, _) = open(&keys, user.0, stored)?;
        let sealed = seal(&keys, user.0, &phc)?;
        // The stored form changes, the hash inside does not: no audit event (the user's state
        // digest covers the PHC string, not its sealed form, so state verification agrees).
        tx.update_user(
            user,
            &UserPatch {
                password_hash: Some(&sealed),
                ..Default::default()
            },
            row.updated_at,
        )
        .await?;
        self.count_sealed(&mut tx, &keys, 1).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Seals every plain password hash of a tenant and re-seals those under an older data key
    /// (`kluis keys seal-passwords`, also run by `keys reencrypt`). Returns how many changed.
    pub async fn seal_password_hashes(&self, tenant: TenantId) -> Result<u64> {
        let mut n = 0;
        let mut after = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let page = tx.list_users(after, 500).await?;
            drop(tx);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for u in &page {
                let Some(stored) = u.password_hash.as_deref() else {
                    continue;
                };
                let (_, stale) = open(&keys, u.id.0, stored)?;
                if stale && self.reseal_one(tenant, u.id, stored).await? {
                    n += 1;
                }
            }
        }
        if n > 0 {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let ev = crate::audit::Event::ok("keys.seal_passwords", "tenant_keys", tenant)
                .with(serde_json::json!({"resealed": n, "version": keys.current_version()}));
            self.audit(
                &mut tx,
                &keys,
                "console",
                &crate::RequestContext::default(),
                ev,
            )
            .await?;
            tx.commit().await?;
            self.checkpoint_soon(tenant);
        }
        Ok(n)
    }

    /// The PHC string inside a stored hash (for the state digest).
    pub(crate) fn password_phc(
        keys: &TenantKeys,
        user: Uuid,
        stored: Option<&str>,
    ) -> Result<String> {
        match stored {
            Some(s) => Ok(open(keys, user, s)?.0),
            None => Ok(String::new()),
        }
    }
}
