//! Account lockout and per-address throttling of sign-in attempts, kept in the database so they
//! hold across restarts and across servers sharing one database.
//!
//! Every attempt is counted *before* its password (or second-factor code) is checked, by one
//! atomic upsert that returns the new count (`TenantTx::count_login_attempt`). An attempt whose
//! count is above the limit is refused without checking anything, so N simultaneous guesses
//! for one account produce at most `max_failures` real checks. A successful sign-in clears the
//! account's counter (after the second factor, when there is one) and gives the address back
//! its one attempt.
//!
//! - Per account: the counter is keyed by a blind index of the email typed (per tenant; under
//!   the platform scope for unknown organisations), so unknown accounts are counted, delayed
//!   and "locked" exactly like real ones: neither the answer nor its timing tells them apart.
//!   After `max_failures` failures within `lockout` the account is locked for `lockout`;
//!   before that each failure adds a growing delay (`delay_base` doubling, at most
//!   [`MAX_DELAY_MS`]). On top, a daily budget: once an account has `daily_max_failures`
//!   failures without a success within 24 hours it stays locked until that day is over, so a
//!   patient attacker who waits out each lockout (or rotates addresses) still gets at most
//!   that many guesses per day instead of `max_failures` every `lockout`. A lockout is audited (`auth.lockout`, with the reason) and
//!   the user gets an email (queued with the lock); an admin can unlock (`auth.unlock`).
//! - Per client address (blind index, platform scope, across organisations): more than
//!   `ip_max_failures` attempts not followed by a success within `ip_window` are refused until
//!   the window ends (password spraying).

use std::time::Duration;

use crate::db::ThrottleBucket;
use kluis_types::Email;
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::users::{rfc3339, user_from_row};
use crate::{Actor, Error, Kluis, Permission, RequestContext, Result, Role, TenantId, UserId, ms};

/// Longest delay added before checking a password.
pub const MAX_DELAY_MS: u64 = 2_000;

/// Limits on sign-in attempts (operator settings `login_*`).
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failed attempts after which an account is locked (default 5).
    pub max_failures: i64,
    /// How long a lock lasts, and the window failures are counted in (default 15 min).
    pub lockout: Duration,
    /// Delay before checking the 2nd attempt after a failure; doubles with each further
    /// failure, at most [`MAX_DELAY_MS`] (default 250 ms; zero turns delays off).
    pub delay_base: Duration,
    /// Attempts per client address and window without a success (default 100).
    pub ip_max_failures: i64,
    pub ip_window: Duration,
    /// Failed attempts per account within 24 hours without a success, after which the account
    /// stays locked until the 24 hours are over (default 50).
    pub daily_max_failures: i64,
}

/// The daily budget's window.
pub const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
            delay_base: Duration::from_millis(250),
            ip_max_failures: 100,
            ip_window: Duration::from_secs(15 * 60),
            daily_max_failures: 50,
        }
    }
}

/// The unit an address is throttled as: an IPv4 address, or the /64 network of an IPv6 address
/// (one subscriber usually gets a whole /64, so counting single IPv6 addresses would let one
/// attacker rotate through 2^64 of them). IPv4-mapped IPv6 counts as the IPv4 address.
pub(crate) fn address_bucket(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// Where an account's counter lives and under which key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountKey {
    pub scope: TenantId,
    pub subject: [u8; 32],
    /// The daily budget's counter: a second row of the same bucket under its own key.
    pub daily: [u8; 32],
}

impl AccountKey {
    /// The counters of `value` (a normalised email, or organisation and email) in `scope`.
    pub(crate) fn new(keys: &crate::keys::TenantKeys, scope: TenantId, value: &str) -> Self {
        AccountKey {
            scope,
            subject: keys.blind("login.account", value),
            daily: keys.blind("login.account.day", value),
        }
    }
}

/// One counted attempt.
pub(crate) struct Gate {
    /// The account's failures counted so far, this attempt included.
    pub account_failures: i64,
    /// Why the attempt is refused without a check, if it is.
    pub refused: Option<&'static str>,
    ip_subject: [u8; 32],
}

impl Kluis {
    /// The account counter's key for an email typed into the sign-in form of organisation
    /// `tenant` (or, for an unknown organisation, of the slug typed, under the platform scope).
    pub(crate) async fn account_key(
        &self,
        tenant: Option<TenantId>,
        slug: &str,
        email: &str,
    ) -> Result<AccountKey> {
        let scope = tenant.unwrap_or(TenantId::PLATFORM);
        let mut tx = self.store.tenant(scope).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let value = match tenant {
            Some(_) => Email::normal_form(email),
            None => format!(
                "{}\n{}",
                slug.trim().to_lowercase(),
                Email::normal_form(email)
            ),
        };
        Ok(AccountKey::new(&keys, scope, &value))
    }

    /// Counts a sign-in attempt, per address then per account, each in its own committed
    /// transaction (so concurrent attempts see it), and says whether it may be checked.
    pub(crate) async fn count_attempt(
        &self,
        account: &AccountKey,
        ctx: &RequestContext,
    ) -> Result<Gate> {
        let now = self.now();
        let l = &self.config.login;
        let mut tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ip_subject = keys.blind("login.ip", &address_bucket(&ctx.ip));
        let ip = tx
            .count_login_attempt(ThrottleBucket::Ip, &ip_subject, now, now - ms(l.ip_window))
            .await?;
        tx.commit().await?;
        let acc = self.count_account_attempt(account).await?;
        let refused = if acc.locked_until.is_some_and(|u| u > now) || acc.failures > l.max_failures
        {
            Some("locked")
        } else if ip.failures > l.ip_max_failures {
            Some("address_throttled")
        } else {
            None
        };
        Ok(Gate {
            account_failures: acc.failures,
            refused,
            ip_subject,
        })
    }

    /// Counts an attempt against an account's lockout window and its daily budget (one
    /// transaction); an exhausted budget shows as a lock until the day is over.
    pub(crate) async fn count_account_attempt(
        &self,
        account: &AccountKey,
    ) -> Result<crate::db::rows::ThrottleRow> {
        let now = self.now();
        let mut tx = self.store.tenant(account.scope).begin().await?;
        let mut row = tx
            .count_login_attempt(
                ThrottleBucket::Account,
                &account.subject,
                now,
                now - ms(self.config.login.lockout),
            )
            .await?;
        let day = tx
            .count_login_attempt(ThrottleBucket::Account, &account.daily, now, now - ms(DAY))
            .await?;
        tx.commit().await?;
        if day.failures > self.config.login.daily_max_failures {
            let until = day.window_start + ms(DAY);
            row.locked_until = Some(row.locked_until.map_or(until, |u| u.max(until)));
        }
        Ok(row)
    }

    /// The delay before checking an attempt that is the account's `failures`-th in a row.
    pub(crate) async fn attempt_delay(&self, failures: i64) {
        let base = u64::try_from(self.config.login.delay_base.as_millis()).unwrap_or(u64::MAX);
        if base == 0 || failures < 2 {
            return;
        }
        let doublings = u32::try_from((failures - 2).min(16)).unwrap_or(16);
        let d = base.saturating_mul(1u64 << doublings).min(MAX_DELAY_MS);
        tokio::time::sleep(Duration::from_millis(d)).await;
    }

    /// A successful sign-in: the address gets its attempt back; `clear_account` also forgets
    /// the account's failures (not yet when a second factor is still due).
    pub(crate) async fn attempt_succeeded(
        &self,
        account: &AccountKey,
        gate: &Gate,
        clear_account: bool,
    ) -> Result<()> {
        let mut tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
        tx.release_login_attempt(ThrottleBucket::Ip, &gate.ip_subject)
            .await?;
        tx.commit().await?;
        if clear_account {
            self.clear_account(account).await?;
        }
        Ok(())
    }

    pub(crate) async fn clear_account(&self, account: &AccountKey) -> Result<()> {
        let mut tx = self.store.tenant(account.scope).begin().await?;
        for subject in [&account.subject, &account.daily] {
            tx.clear_login_attempts(ThrottleBucket::Account, subject)
                .await?;
        }
        Ok(tx.commit().await?)
    }

    /// Inside the transaction that audits a failed attempt: locks the account once it has
    /// `max_failures` failures, and if this call locked it, audits the lockout and calls the
    /// notification hook (after commit, by the caller: returns the lock's end).
    #[expect(
        clippy::too_many_arguments,
        reason = "the failure's facts, all needed for its audit event"
    )]
    pub(crate) async fn lock_if_due(
        &self,
        tx: &mut crate::db::TenantTx,
        keys: &crate::keys::TenantKeys,
        account: &AccountKey,
        failures: i64,
        user: Option<UserId>,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<Option<i64>> {
        let l = &self.config.login;
        if failures < l.max_failures {
            return Ok(None);
        }
        let now = self.now();
        let until = now + ms(l.lockout);
        if !tx
            .lock_login(ThrottleBucket::Account, &account.subject, until, now)
            .await?
        {
            return Ok(None);
        }
        metrics::counter!("kluis_lockouts_total").increment(1);
        let ev = Event {
            action: "auth.lockout",
            success: true,
            object_type: Some("user"),
            object_id: user.map(|u| u.to_string()),
            details: json!({
                "reason": "too_many_failures",
                "failures": failures,
                "locked_until": rfc3339(until),
                "email": email.trim(),
            }),
        };
        self.audit(tx, keys, "system", ctx, ev).await?;
        // The user hears about it by email (when email is configured), queued in the same
        // transaction as the lock; unknown accounts get nothing (there is no one to tell).
        if let Some(u) = user
            && let Some(row) = tx.user(u).await?
        {
            self.queue_account_locked(tx, keys, &row, until).await?;
        }
        Ok(Some(until))
    }

    /// After a lockout committed: the mail sender picks up the queued notice now rather than at
    /// its next sweep. Logs the fact without personal data.
    pub(crate) fn after_lockout(&self, tenant: TenantId, user: Option<UserId>, locked_until: i64) {
        tracing::info!(%tenant, user = ?user, locked_until, "account locked after failed sign-ins");
        self.wake_mailer(tenant);
    }

    /// Lifts a lockout (and forgets the failures) of a user. Privileged and audited.
    pub async fn unlock_user(&self, actor: &Actor, ctx: &RequestContext, id: UserId) -> Result<()> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(id).await?.ok_or_else(Error::not_found)?;
        if row.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        let user = user_from_row(&keys, row)?;
        let account = AccountKey::new(&keys, actor.tenant(), &Email::normal_form(&user.email));
        let before = tx
            .clear_login_attempts(ThrottleBucket::Account, &account.subject)
            .await?;
        let day = tx
            .clear_login_attempts(ThrottleBucket::Account, &account.daily)
            .await?;
        let now = self.now();
        let l = &self.config.login;
        let was_locked = before.is_some_and(|r| {
            r.locked_until.is_some_and(|u| u > now) || r.failures > l.max_failures
        }) || day.is_some_and(|r| r.failures > l.daily_max_failures);
        let ev = Event::ok("auth.unlock", "user", id).with(json!({
            "was_locked": was_locked,
            "failures": before.map_or(0, |r| r.failures),
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::address_bucket;

    #[test]
    fn ipv6_addresses_are_throttled_per_64_network() {
        assert_eq!(
            address_bucket("2001:db8:1:2:aaaa::1"),
            address_bucket("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(
            address_bucket("2001:db8:1:2::1"),
            address_bucket("2001:db8:1:3::1")
        );
        assert_eq!(address_bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_bucket("192.0.2.7"), "192.0.2.7");
        assert_ne!(address_bucket("192.0.2.7"), address_bucket("192.0.2.8"));
    }
}
