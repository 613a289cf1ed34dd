//! Data-key rotation for CRM data: records, versions, Idempotency-Key responses, saved views
//! and custom values, in batches of one transaction each (resumable: values already under the current key
//! are skipped). Called by `Kluis::reencrypt_tenant` after users and sessions.

use kluis_types::RecordId;

use crate::keys::ReencryptProgress;
use crate::{Error, Kluis, Result, TenantId};

impl Kluis {
    pub(crate) async fn reencrypt_crm(
        &self,
        tenant: TenantId,
        batch: i64,
        p: &mut ReencryptProgress,
        progress: &mut impl FnMut(&ReencryptProgress),
    ) -> Result<()> {
        // Records.
        let mut after: Option<RecordId> = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let rows = tx.record_fields_batch(after, batch).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.0);
            let mut n = 0;
            for (id, sealed) in &rows {
                if keys.stale(sealed) {
                    let fresh = keys.reseal("crm_records", "fields", id.0, sealed)?;
                    tx.reseal_record(*id, &fresh).await?;
                    n += 1;
                }
            }
            self.count_sealed(&mut tx, &keys, n).await?;
            tx.commit().await?;
            p.rows_seen += rows.len() as u64;
            p.values_resealed += n as u64;
            progress(p);
            crate::audit::failpoint_after_batch()?;
        }
        // Versions.
        let mut after: Option<(RecordId, i64)> = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let rows = tx.version_fields_batch(after, batch).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.0, last.1));
            let mut n = 0;
            for (id, revision, sealed) in &rows {
                if keys.stale(sealed) {
                    let fresh = keys.reseal("crm_versions", "fields", id.0, sealed)?;
                    tx.reseal_version(*id, *revision, &fresh).await?;
                    n += 1;
                }
            }
            self.count_sealed(&mut tx, &keys, n).await?;
            tx.commit().await?;
            p.rows_seen += rows.len() as u64;
            p.values_resealed += n as u64;
            progress(p);
            crate::audit::failpoint_after_batch()?;
        }
        // Idempotency-Key responses, tags and custom values: few rows, one transaction.
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut n = 0;
        for (key_hash, sealed) in tx.idempotency_responses().await? {
            let hash: [u8; 32] = key_hash
                .as_slice()
                .try_into()
                .map_err(|_| Error::internal("stored key hash"))?;
            if keys.stale(&sealed) {
                let ctx = super::idem_ctx(&hash);
                let fresh = keys.reseal("idempotency_keys", "response", ctx, &sealed)?;
                tx.reseal_idempotency(&key_hash, &fresh).await?;
                n += 1;
            }
            p.rows_seen += 1;
        }
        for r in tx.tags(true).await? {
            if keys.stale(&r.name) {
                let fresh = keys.reseal("crm_tags", "name", r.id.0, &r.name)?;
                tx.reseal_tag_name(r.id, &fresh).await?;
                n += 1;
            }
            p.rows_seen += 1;
        }
        for r in tx.all_saved_views().await? {
            if keys.stale(&r.view) {
                let fresh = keys.reseal("crm_saved_views", "view", r.id.0, &r.view)?;
                tx.reseal_saved_view(r.id, &fresh).await?;
                n += 1;
            }
            p.rows_seen += 1;
        }
        for r in tx.custom_values().await? {
            if keys.stale(&r.value) {
                let ctx = super::custom::value_ctx(&r.key);
                let fresh = keys.reseal("crm_custom_values", "value", ctx, &r.value)?;
                tx.reseal_custom_value(&r.key, &fresh).await?;
                n += 1;
            }
            p.rows_seen += 1;
        }
        // The tenant's SSO client secret (one value).
        if let Some(cfg) = tx.sso_config().await?
            && keys.stale(&cfg.client_secret)
        {
            let fresh =
                keys.reseal("sso_configs", "client_secret", tenant.0, &cfg.client_secret)?;
            if tx
                .reseal_sso_client_secret(&cfg.client_secret, &fresh)
                .await?
            {
                n += 1;
            }
            p.rows_seen += 1;
        }
        self.count_sealed(&mut tx, &keys, n).await?;
        tx.commit().await?;
        p.values_resealed += n as u64;
        progress(p);
        Ok(())
    }
}
