//! Tenant security settings. For now: the password policy, which a tenant may make stricter
//! than the platform baseline but never weaker.

use crate::db::TenantTx;
use kluis_crypto::password::PasswordPolicy;
use serde::{Deserialize, Serialize};

use crate::{Actor, Error, Kluis, Permission, RequestContext, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyDoc {
    pub min_length: usize,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_special: bool,
    pub reject_common: bool,
}

impl From<PasswordPolicy> for PasswordPolicyDoc {
    fn from(p: PasswordPolicy) -> Self {
        PasswordPolicyDoc {
            min_length: p.min_length,
            require_upper: p.require_upper,
            require_lower: p.require_lower,
            require_digit: p.require_digit,
            require_special: p.require_special,
            reject_common: p.reject_common,
        }
    }
}

impl From<PasswordPolicyDoc> for PasswordPolicy {
    fn from(d: PasswordPolicyDoc) -> Self {
        PasswordPolicy {
            min_length: d.min_length,
            require_upper: d.require_upper,
            require_lower: d.require_lower,
            require_digit: d.require_digit,
            require_special: d.require_special,
            reject_common: d.reject_common,
        }
    }
}

/// The policy in force for this tenant: its stored policy, never below the baseline (even if
/// someone edited the database row).
pub(crate) async fn effective_policy(tx: &mut TenantTx) -> Result<PasswordPolicy> {
    let stored = match tx.password_policy().await? {
        Some(json) => serde_json::from_str::<PasswordPolicy>(&json)
            .map_err(|_| Error::internal("stored password policy is unreadable"))?,
        None => PasswordPolicy::BASELINE,
    };
    Ok(stored.stricter_of(&PasswordPolicy::BASELINE))
}

/// Checks a new password against a policy; the error names the rule, never the password.
pub(crate) fn check_password(policy: &PasswordPolicy, password: &str) -> Result<()> {
    policy
        .check(password)
        .map_err(|v| Error::validation("password", v.code(), v.to_string()))
}

impl Kluis {
    pub async fn password_policy(&self, actor: &Actor) -> Result<PasswordPolicyDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(effective_policy(&mut tx).await?.into())
    }

    pub async fn set_password_policy(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        policy: PasswordPolicyDoc,
    ) -> Result<PasswordPolicyDoc> {
        actor.require(Permission::SettingsManage)?;
        let policy: PasswordPolicy = policy.into();
        if !policy.at_least(&PasswordPolicy::BASELINE) {
            return Err(Error::validation(
                "policy",
                "policy_weaker_than_baseline",
                "a tenant may make the password policy stricter than the platform baseline, never weaker",
            ));
        }
        if policy.min_length > 256 {
            return Err(Error::validation(
                "min_length",
                "invalid_min_length",
                "must be at most 256",
            ));
        }
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let before = PasswordPolicyDoc::from(effective_policy(&mut tx).await?);
        tx.put_password_policy(&json, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event {
            action: "settings.password_policy.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("password_policy".into()),
            details: serde_json::json!({"old": before, "new": PasswordPolicyDoc::from(policy.clone())}),
        };
        self.audit(&mut tx, &keys, &crate::audit::actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(policy.into())
    }
}

/// What CRM writes do with payment card numbers, IBANs and national id numbers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SensitiveDataDoc {
    /// `block` (default): refuse the write with 422 `sensitive_data`. `flag`: store it and mark
    /// the record with the kinds found.
    pub mode: String,
}

impl Kluis {
    pub async fn sensitive_data_setting(&self, actor: &Actor) -> Result<SensitiveDataDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(SensitiveDataDoc {
            mode: crate::crm::sensitive_mode(&mut tx).await?,
        })
    }

    pub async fn set_sensitive_data_setting(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: SensitiveDataDoc,
    ) -> Result<SensitiveDataDoc> {
        actor.require(Permission::SettingsManage)?;
        if !matches!(doc.mode.as_str(), "block" | "flag") {
            return Err(Error::validation(
                "mode",
                "invalid_mode",
                "must be block or flag",
            ));
        }
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let before = crate::crm::sensitive_mode(&mut tx).await?;
        // Only used if the tenant has no settings row yet: the policy in force now.
        let policy = effective_policy(&mut tx).await?;
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_sensitive_data_mode(&doc.mode, &json, self.now())
            .await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event {
            action: "settings.sensitive_data.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("sensitive_data".into()),
            details: serde_json::json!({"old": before, "new": doc.mode}),
        };
        self.audit(&mut tx, &keys, &crate::audit::actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(doc)
    }
}

/// How long deleted CRM records stay restorable in this tenant's trash before the daily
/// retention job purges them for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrashRetentionDoc {
    /// Days, 1 to 365; `null`: the server's default (`trash_retention_days`, 30 unless the
    /// operator changed it).
    pub days: Option<u16>,
}

/// The bounds of a tenant's own trash retention, in days.
pub const TRASH_RETENTION_DAYS: std::ops::RangeInclusive<u16> = 1..=365;

impl Kluis {
    pub async fn trash_retention_setting(&self, actor: &Actor) -> Result<TrashRetentionDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(TrashRetentionDoc {
            days: stored_trash_retention(&mut tx).await?,
        })
    }

    pub async fn set_trash_retention_setting(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: TrashRetentionDoc,
    ) -> Result<TrashRetentionDoc> {
        actor.require(Permission::SettingsManage)?;
        if let Some(d) = doc.days
            && !TRASH_RETENTION_DAYS.contains(&d)
        {
            return Err(Error::validation(
                "days",
                "invalid_days",
                "a number of days from 1 to 365, or null for the server's default",
            ));
        }
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let before = stored_trash_retention(&mut tx).await?;
        let policy = effective_policy(&mut tx).await?;
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_trash_retention_days(doc.days.map(i64::from), &json, self.now())
            .await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event {
            action: "settings.trash_retention.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("trash_retention".into()),
            details: serde_json::json!({"old": before, "new": doc.days}),
        };
        self.audit(&mut tx, &keys, &crate::audit::actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(doc)
    }
}

/// The tenant's own trash retention in days, if it set one (a value outside the bounds, which
/// the database's CHECK already refuses, reads as unset).
pub(crate) async fn stored_trash_retention(tx: &mut TenantTx) -> Result<Option<u16>> {
    Ok(tx
        .trash_retention_days()
        .await?
        .and_then(|d| u16::try_from(d).ok())
        .filter(|d| TRASH_RETENTION_DAYS.contains(d)))
}

/// The organisation's default language for emails (a user's own choice wins).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocaleDoc {
    /// `en` or `nl`.
    pub locale: crate::mail::Locale,
}

impl Kluis {
    pub async fn locale_setting(&self, actor: &Actor) -> Result<LocaleDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let locale = tx
            .tenant_locale()
            .await?
            .as_deref()
            .and_then(crate::mail::Locale::parse)
            .unwrap_or(crate::mail::Locale::En);
        Ok(LocaleDoc { locale })
    }

    pub async fn set_locale_setting(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: LocaleDoc,
    ) -> Result<LocaleDoc> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let before = tx.tenant_locale().await?;
        let policy = effective_policy(&mut tx).await?;
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_tenant_locale(doc.locale.as_str(), &json, self.now())
            .await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event {
            action: "settings.locale.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("locale".into()),
            details: serde_json::json!({"old": before, "new": doc.locale.as_str()}),
        };
        self.audit(&mut tx, &keys, &crate::audit::actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(doc)
    }
}
