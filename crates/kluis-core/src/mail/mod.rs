//! Outgoing email through an outbox.
//!
//! A change that causes an email (a reset request, an invitation, a lockout) writes the
//! rendered message, sealed, to `mail_outbox` in its own transaction, so the email exists
//! exactly when the change committed. The background sender ([`Kluis::run_mail_sender`])
//! delivers it afterwards, outside any request and any database transaction: it claims a
//! message (a lease), talks SMTP, and records `sent`, or a retry with exponential backoff,
//! or `failed` after the last attempt or a permanent refusal. Final states empty the sealed
//! message. Delivery is at least once: a crash between the relay's acceptance and the `sent`
//! write repeats the message after the lease.

pub mod smtp;
pub mod templates;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::TenantTx;
use crate::db::rows::UserRow;
use serde_json::json;
use uuid::Uuid;

use crate::audit::Event;
use crate::keys::TenantKeys;
use crate::{Error, ErrorKind, Kluis, RequestContext, Result, TenantId, UserId, ms};
pub use smtp::{MailConfig, Mailer, OutgoingMail, SendFailure, SmtpSecurity, parse_smtp_url};
pub use templates::Locale;
use templates::Recipient;

/// Messages claimed per tenant per pass.
const BATCH: i64 = 20;
/// How long a claimed message is left alone before another attempt may take it.
const LEASE: Duration = Duration::from_secs(300);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The mailer and the sender's wake-up state.
pub(crate) struct MailRuntime {
    pub(crate) mailer: Mailer,
    wake: tokio::sync::Notify,
    /// Tenants that queued a message since the sender last looked.
    dirty: Mutex<HashSet<TenantId>>,
}

pub(crate) fn mail_not_configured() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "mail_not_configured",
        "this server has no outgoing email configured (smtp_url)",
    )
}

impl Kluis {
    /// Sends email through `mailer` (without one, nothing is queued and features that need
    /// email say so).
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mail = Some(Arc::new(MailRuntime {
            mailer,
            wake: tokio::sync::Notify::new(),
            dirty: Mutex::default(),
        }));
        self
    }

    pub fn mail_configured(&self) -> bool {
        self.mail.is_some()
    }

    pub(crate) fn mail_runtime(&self) -> Result<&MailRuntime> {
        self.mail.as_deref().ok_or_else(mail_not_configured)
    }

    /// Call after the transaction that queued a message committed.
    pub(crate) fn wake_mailer(&self, tenant: TenantId) {
        if let Some(m) = &self.mail {
            if let Ok(mut d) = m.dirty.lock() {
                d.insert(tenant);
            }
            m.wake.notify_one();
        }
    }

    /// The language for a user's emails: their own choice, else the tenant's, else English.
    pub(crate) async fn locale_for(&self, tx: &mut TenantTx, user: UserId) -> Result<Locale> {
        if let Some(l) = tx
            .user_locale(user)
            .await?
            .as_deref()
            .and_then(Locale::parse)
        {
            return Ok(l);
        }
        Ok(tx
            .tenant_locale()
            .await?
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or(Locale::En))
    }

    /// The organisation name shown in emails.
    pub(crate) async fn organisation_name(&self, tenant: TenantId) -> Result<String> {
        let mut p = self.store.platform_read().await?;
        Ok(p.tenant(tenant).await?.map(|t| t.name).unwrap_or_default())
    }

    /// Seals and queues a rendered message in `tx`. Returns the outbox id.
    pub(crate) async fn queue_mail(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        kind: &str,
        mail: &OutgoingMail,
    ) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let plain = serde_json::to_vec(mail).map_err(|_| Error::internal("mail encoding"))?;
        let sealed = keys.seal("mail_outbox", "message", id, &plain)?;
        tx.insert_outbox(id, kind, &sealed, self.now()).await?;
        self.count_sealed(tx, keys, 1).await?;
        Ok(id)
    }

    /// Who a user is, for an email (opens the sealed email and name).
    pub(crate) async fn recipient_of(
        &self,
        keys: &TenantKeys,
        user: &UserRow,
    ) -> Result<(String, String)> {
        let u = crate::users::user_from_row(keys, user.clone())?;
        Ok((u.email, u.display_name))
    }

    /// Queues the "your account is locked" email inside the caller's transaction (for the
    /// lockout code, which locks and notifies atomically). Does nothing without a mailer.
    /// Call [`Kluis::wake_mailer`] after commit.
    pub(crate) async fn queue_account_locked(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        user: &UserRow,
        until_ms: i64,
    ) -> Result<bool> {
        let Some(m) = &self.mail else {
            return Ok(false);
        };
        let (email, name) = self.recipient_of(keys, user).await?;
        let organisation = self.organisation_name(tx.tenant()).await?;
        let locale = self.locale_for(tx, user.id).await?;
        let until = utc_minutes(until_ms);
        let mail = templates::account_locked(
            locale,
            &Recipient {
                email: &email,
                name: &name,
                organisation: &organisation,
            },
            &until,
            &format!("{}/reset", m.mailer.config.public_url),
        );
        self.queue_mail(tx, keys, "account_locked", &mail).await?;
        Ok(true)
    }

    /// Queues a localized "your account is locked until ..." email for a user (its own
    /// transaction). For the lockout code; without a mailer it does nothing. Returns whether
    /// a message was queued.
    pub async fn notify_account_locked(
        &self,
        tenant: TenantId,
        user: UserId,
        until_ms: i64,
    ) -> Result<bool> {
        if self.mail.is_none() {
            return Ok(false);
        }
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        let queued = self
            .queue_account_locked(&mut tx, &keys, &row, until_ms)
            .await?;
        tx.commit().await?;
        self.wake_mailer(tenant);
        Ok(queued)
    }

    /// Delivers every tenant's due messages once. The sender loop calls it; tests call it to
    /// deliver without waiting. Returns the number of messages sent.
    pub async fn send_due_mail(&self) -> Result<usize> {
        let mut sent = 0;
        for t in self.tenants_with_mail().await? {
            sent += self.deliver_tenant(t).await?.0;
        }
        Ok(sent)
    }

    /// Every tenant (the platform log's nil tenant never queues mail).
    async fn tenants_with_mail(&self) -> Result<Vec<TenantId>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let mut p = self.store.platform_read().await?;
            let page = p.list_tenants(after, 500).await?;
            drop(p);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            out.extend(page.iter().filter(|t| t.status.is_active()).map(|t| t.id));
        }
        Ok(out)
    }

    /// Delivers one tenant's due messages. Returns (sent, when the next one falls due).
    async fn deliver_tenant(&self, tenant: TenantId) -> Result<(usize, Option<i64>)> {
        let m = self.mail_runtime()?;
        let mut sent = 0;
        loop {
            let now = self.now();
            let mut r = self.store.tenant(tenant).begin_read().await?;
            let due = r.due_outbox(now, BATCH).await?;
            let keys = if due.is_empty() {
                None
            } else {
                Some(self.keys(&mut r).await?)
            };
            drop(r);
            let Some(keys) = keys else { break };
            for row in &due {
                let mut w = self.store.tenant(tenant).begin().await?;
                let claimed = w.claim_outbox(row.id, now, now + ms(LEASE)).await?;
                w.commit().await?;
                if !claimed {
                    continue;
                }
                let attempts = row.attempts + 1;
                let opened = keys
                    .open("mail_outbox", "message", row.id, &row.message)
                    .ok()
                    .and_then(|p| serde_json::from_slice::<OutgoingMail>(&p).ok());
                let result = match &opened {
                    Some(mail) => m.mailer.send(mail).await,
                    None => Err(SendFailure {
                        permanent: true,
                        reason: "stored message unreadable".into(),
                    }),
                };
                let done_at = self.now();
                let mut w = self.store.tenant(tenant).begin().await?;
                let wkeys = self.keys(&mut w).await?;
                let ctx = RequestContext::default();
                match result {
                    Ok(()) => {
                        w.finish_outbox(row.id, "sent", None, done_at).await?;
                        let ev = Event::ok("mail.send", "mail", row.id)
                            .with(json!({"kind": row.kind, "attempts": attempts}));
                        self.audit(&mut w, &wkeys, "system:mailer", &ctx, ev)
                            .await?;
                        sent += 1;
                        tracing::info!(tenant = %tenant, id = %row.id, kind = %row.kind, attempts, "email sent");
                    }
                    Err(f)
                        if f.permanent || attempts >= i64::from(m.mailer.config.max_attempts) =>
                    {
                        w.finish_outbox(row.id, "failed", Some(&f.reason), done_at)
                            .await?;
                        let ev = Event {
                            action: "mail.send",
                            success: false,
                            object_type: Some("mail"),
                            object_id: Some(row.id.to_string()),
                            details: json!({"kind": row.kind, "attempts": attempts, "reason": f.reason}),
                        };
                        self.audit(&mut w, &wkeys, "system:mailer", &ctx, ev)
                            .await?;
                        tracing::error!(tenant = %tenant, id = %row.id, kind = %row.kind, attempts, reason = %f.reason, "email failed for good");
                    }
                    Err(f) => {
                        let backoff = backoff(m.mailer.config.retry_initial, attempts);
                        w.retry_outbox(row.id, &f.reason, done_at + ms(backoff))
                            .await?;
                        tracing::warn!(tenant = %tenant, id = %row.id, kind = %row.kind, attempts, reason = %f.reason, retry_in_secs = backoff.as_secs(), "email not sent; will retry");
                    }
                }
                w.commit().await?;
            }
            if (due.len() as i64) < BATCH {
                break;
            }
        }
        let mut r = self.store.tenant(tenant).begin_read().await?;
        let next = r.next_outbox_due().await?;
        Ok((sent, next))
    }

    /// The background sender: delivers after each wake-up, when a retry falls due, and
    /// sweeps every tenant every `sweep_interval`. Runs until the process ends.
    pub async fn run_mail_sender(&self) {
        let Some(m) = self.mail.clone() else { return };
        let sweep = m.mailer.config.sweep_interval;
        let mut next_sweep = tokio::time::Instant::now();
        let mut due: HashMap<TenantId, i64> = HashMap::new();
        loop {
            let mut work: HashSet<TenantId> = m
                .dirty
                .lock()
                .map(|mut d| std::mem::take(&mut *d))
                .unwrap_or_default();
            if tokio::time::Instant::now() >= next_sweep {
                match self.tenants_with_mail().await {
                    Ok(all) => work.extend(all),
                    Err(e) => tracing::error!(error = %e, "mail sweep failed"),
                }
                next_sweep = tokio::time::Instant::now() + sweep;
            }
            let now = self.now();
            work.extend(due.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t));
            for t in work {
                due.remove(&t);
                match self.deliver_tenant(t).await {
                    Ok((_, Some(next))) => {
                        due.insert(t, next);
                    }
                    Ok((_, None)) => {}
                    Err(e) => {
                        tracing::error!(tenant = %t, error = %e, "mail delivery pass failed");
                        due.insert(t, self.now() + ms(m.mailer.config.retry_initial));
                    }
                }
            }
            let now = self.now();
            let until_due = due
                .values()
                .min()
                .map(|at| Duration::from_millis(u64::try_from((at - now).max(0)).unwrap_or(0)));
            let until_sweep = next_sweep.saturating_duration_since(tokio::time::Instant::now());
            let wait = until_due
                .map_or(until_sweep, |d| d.min(until_sweep))
                .max(Duration::from_millis(50));
            let _ = tokio::time::timeout(wait, m.wake.notified()).await;
        }
    }
}

impl Kluis {
    /// Housekeeping for one tenant (daily in the server): deletes links that expired more than
    /// a day ago and outbox rows that reached their final state more than `keep` ago. Returns
    /// how many rows went.
    pub async fn purge_mail_leftovers(&self, tenant: TenantId, keep: Duration) -> Result<u64> {
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let links = tx.purge_user_tokens(now - 86_400_000).await?;
        let mails = tx.purge_outbox(now - ms(keep)).await?;
        tx.commit().await?;
        Ok(links + mails)
    }
}

/// `2026-09-21 14:28` (UTC), for people.
fn utc_minutes(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// initial * 2^(attempts-1), at most an hour.
fn backoff(initial: Duration, attempts: i64) -> Duration {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    initial
        .saturating_mul(1u32 << shift)
        .min(MAX_BACKOFF)
        .max(initial.min(MAX_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let b = |n| backoff(Duration::from_secs(30), n).as_secs();
        assert_eq!(
            (b(1), b(2), b(3), b(8), b(9), b(50)),
            (30, 60, 120, 3600, 3600, 3600)
        );
    }
}
