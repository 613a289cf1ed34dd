//! API rate limits per API key, per signed-in user and per tenant, shared by every server
//! process on one database.
//!
//! Each limit is a quota per fixed window (`burst`: 190 requests per 10 s per key or user, as
//! HubSpot's paid plans; `tenant`: five times that for the whole tenant; `daily`: a million a
//! day per tenant). The quota lives in the database (`rate_windows`); a process leases a share
//! of it (a tenth, at most 1,000) in one statement and spends that share from memory, so most
//! requests cost no database round trip. Leased requests count as used whether or not they are
//! spent, so all processes together never let more than the quota through in a window. The
//! price is the other way round: a caller may be refused up to (processes - 1) x (lease - 1)
//! requests early while other processes still hold unspent shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::authz::{Actor, Principal};
use crate::db::RateOverrides;
use crate::{Error, Kluis, Result, TenantId};

/// A tenant's overrides of the installation's limits (null: the installation's default).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsDoc {
    /// Requests per window per API key or signed-in user (the tenant's limit is five times it).
    pub burst: Option<i64>,
    /// Requests per UTC day for the whole tenant.
    pub daily: Option<i64>,
}

/// The installation's limits (0 turns a limit off). Per-tenant overrides of `burst` and
/// `daily` are set by the operator (`PUT /api/v1/platform/tenants/{id}/rate-limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per window per API key or signed-in user.
    pub burst: i64,
    /// Requests per window for the whole tenant, all callers together.
    pub tenant_burst: i64,
    /// Length of the burst windows, in seconds.
    pub window_secs: i64,
    /// Requests per UTC day for the whole tenant.
    pub daily: i64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            burst: 190,
            tenant_burst: 950,
            window_secs: 10,
            daily: 1_000_000,
        }
    }
}

const DAY_SECS: i64 = 86_400;

/// One limit as applied to one request: what the `RateLimit` headers report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateState {
    /// `burst`, `tenant` or `daily`.
    pub policy: &'static str,
    pub quota: i64,
    pub window_secs: i64,
    /// Requests left in this window (this process's view; see the module comment).
    pub remaining: i64,
    /// Seconds until the window ends.
    pub reset_secs: i64,
}

/// The outcome for one request: every limit that applied, and whether one refused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateDecision {
    pub states: Vec<RateState>,
    /// The limit that refused the request, if one did.
    pub refused: Option<RateState>,
}

impl RateDecision {
    /// The limit closest to refusing: the one the `RateLimit` header names.
    pub fn tightest(&self) -> Option<&RateState> {
        self.refused
            .as_ref()
            .or_else(|| self.states.iter().min_by_key(|s| s.remaining))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Policy {
    Burst,
    Tenant,
    Daily,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Burst => "burst",
            Policy::Tenant => "tenant",
            Policy::Daily => "daily",
        }
    }
}

/// This process's share of one window.
#[derive(Debug, Default)]
struct Lease {
    window_start: i64,
    quota: i64,
    /// Leased here and not spent yet.
    left: i64,
    /// What the window had given out in all at the last lease.
    used: i64,
    /// The window is spent: refuse without asking the database again.
    spent: bool,
}

type LeaseKey = (TenantId, String, Policy);

/// The leases of this process. One async lock per lease, so concurrent requests of one caller
/// wait for a single database lease instead of each taking one.
#[derive(Default)]
pub struct RateLimiter {
    leases: Mutex<HashMap<LeaseKey, Arc<tokio::sync::Mutex<Lease>>>>,
}

impl RateLimiter {
    fn lease(&self, key: LeaseKey, now: i64) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut map = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 50_000 {
            // Forget leases of windows that ended (a day is the longest window).
            map.retain(|_, l| {
                l.try_lock()
                    .map(|l| l.window_start + DAY_SECS > now)
                    .unwrap_or(true)
            });
        }
        map.entry(key).or_default().clone()
    }
}

impl Kluis {
    /// Counts one request of `actor` against its limits and says what the `RateLimit` headers
    /// report; `refused` is set when a limit is spent (the caller answers 429). The console and
    /// SCIM clients are not limited here.
    pub async fn rate_limit(&self, actor: &Actor) -> Result<RateDecision> {
        let limits = self.config.rate_limits;
        let caller = match actor.principal() {
            Principal::ApiKey { id, .. } => format!("key:{id}"),
            Principal::User { id, .. } => format!("user:{id}"),
            // Per operator, so several grants do not multiply an operator's quota.
            Principal::Support { operator, .. } => format!("operator:{operator}"),
            Principal::Console | Principal::Scim { .. } => return Ok(RateDecision::default()),
        };
        let tenant = actor.tenant();
        let now = self.clock.now_ms().div_euclid(1000);
        let mut decision = RateDecision::default();
        for (policy, subject) in [
            (Policy::Burst, caller.as_str()),
            (Policy::Tenant, "tenant"),
            (Policy::Daily, "tenant"),
        ] {
            let (default_quota, window) = match policy {
                Policy::Burst => (limits.burst, limits.window_secs),
                Policy::Tenant => (limits.tenant_burst, limits.window_secs),
                Policy::Daily => (limits.daily, DAY_SECS),
            };
            if default_quota <= 0 || window <= 0 {
                continue;
            }
            let state = self
                .take_one(tenant, subject, policy, default_quota, window, now)
                .await?;
            match state {
                Ok(s) => decision.states.push(s),
                Err(s) => {
                    metrics::counter!("kluis_rate_limited_total", "policy" => s.policy)
                        .increment(1);
                    decision.refused = Some(s);
                    return Ok(decision);
                }
            }
        }
        Ok(decision)
    }

    /// Spends one request of `policy`'s window, leasing from the database when this process's
    /// share is gone. `Ok(Err(state))`: the window is spent.
    async fn take_one(
        &self,
        tenant: TenantId,
        subject: &str,
        policy: Policy,
        default_quota: i64,
        window: i64,
        now: i64,
    ) -> Result<std::result::Result<RateState, RateState>> {
        let window_start = now - now.rem_euclid(window);
        let lease = self
            .rate_limiter
            .lease((tenant, subject.to_owned(), policy), now);
        let mut l = lease.lock().await;
        if l.window_start != window_start {
            *l = Lease {
                window_start,
                ..Lease::default()
            };
        }
        if l.left == 0 && !l.spent {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let o = tx.rate_overrides().await?;
            let quota = match policy {
                Policy::Burst => o.burst.unwrap_or(default_quota),
                Policy::Daily => o.daily.unwrap_or(default_quota),
                // Five times the caller's limit when the operator raised or lowered it.
                Policy::Tenant => o.burst.map_or(default_quota, |b| b.saturating_mul(5)),
            };
            let want = (quota / 10).clamp(1, 1000);
            let (granted, used) = tx
                .lease_rate(subject, policy.name(), window_start, quota, want)
                .await?;
            if granted > 0 && granted == used {
                // The first lease of a new window, whichever process took it: clear out the
                // tenant's windows of this policy that ended.
                tx.purge_rate_windows(policy.name(), window_start - window)
                    .await?;
            }
            tx.commit().await?;
            l.quota = quota;
            l.left = granted;
            l.used = used;
            l.spent = granted == 0;
        }
        let reset_secs = window_start + window - now;
        if l.spent || l.left == 0 {
            return Ok(Err(RateState {
                policy: policy.name(),
                quota: l.quota,
                window_secs: window,
                remaining: 0,
                reset_secs,
            }));
        }
        l.left -= 1;
        Ok(Ok(RateState {
            policy: policy.name(),
            quota: l.quota,
            window_secs: window,
            remaining: (l.quota - l.used + l.left).max(0),
            reset_secs,
        }))
    }

    /// Sets one tenant's overrides of the installation's limits (platform operators only;
    /// audited in the platform log). Takes effect at each process's next lease.
    pub async fn set_rate_overrides(
        &self,
        by: &crate::tenants::PlatformActor,
        ctx: &crate::RequestContext,
        tenant: TenantId,
        doc: RateLimitsDoc,
    ) -> Result<RateLimitsDoc> {
        let overrides = RateOverrides {
            burst: doc.burst,
            daily: doc.daily,
        };
        for (field, v) in [("burst", doc.burst), ("daily", doc.daily)] {
            if v.is_some_and(|v| v <= 0) {
                return Err(Error::validation(
                    field,
                    "invalid_rate_limit",
                    "a limit must be a positive number of requests, or null for the default",
                ));
            }
        }
        let mut p = self.store.platform_read().await?;
        p.tenant(tenant).await?.ok_or_else(Error::not_found)?;
        drop(p);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let before = tx.rate_overrides().await?;
        let policy = crate::settings::effective_policy(&mut tx).await?;
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_rate_overrides(overrides, &json, self.now()).await?;
        tx.commit().await?;
        let p = self.store.platform().await?;
        let log = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = crate::audit::Event::ok("tenant.rate_limits.update", "tenant", tenant).with(
            serde_json::json!({
                "old": {"burst": before.burst, "daily": before.daily},
                "new": {"burst": overrides.burst, "daily": overrides.daily},
            }),
        );
        self.audit_platform(log, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        Ok(doc)
    }

    /// One tenant's overrides (platform API).
    pub async fn rate_overrides(
        &self,
        _by: &crate::tenants::PlatformActor,
        tenant: TenantId,
    ) -> Result<RateLimitsDoc> {
        let mut p = self.store.platform_read().await?;
        p.tenant(tenant).await?.ok_or_else(Error::not_found)?;
        drop(p);
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let o = tx.rate_overrides().await?;
        tx.commit().await?;
        Ok(RateLimitsDoc {
            burst: o.burst,
            daily: o.daily,
        })
    }
}
