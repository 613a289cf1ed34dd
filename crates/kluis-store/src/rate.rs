//! Shared rate-limit windows (the quota the server processes take from between them) and the
//! other per-organisation network settings: rate-limit overrides and the IP allowlist.

use crate::{Result, TenantTx, on_conn};

/// A tenant's operator overrides of the installation's rate limits (None: the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateOverrides {
    pub burst: Option<i64>,
    pub daily: Option<i64>,
}

impl TenantTx {
    /// Takes up to `want` requests of `quota` in one window for this process and returns how
    /// many it got (0 when the window is spent) and how many the window has given out in all.
    /// One statement, so two processes leasing at once cannot both take the last share.
    pub async fn lease_rate(
        &mut self,
        subject: &str,
        policy: &str,
        window_start: i64,
        quota: i64,
        want: i64,
    ) -> Result<(i64, i64)> {
        let t = self.tenant;
        let first = want.min(quota).max(0);
        // In an UPDATE's SET list every expression sees the row as it was, so `granted` is
        // this lease's share and `used` the new total.
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO rate_windows (tenant_id, subject, policy, window_start, used, granted) \
             VALUES ($1, $2, $3, $4, $6, $6) \
             ON CONFLICT (tenant_id, subject, policy, window_start) DO UPDATE SET \
             granted = CASE WHEN rate_windows.used >= $5 THEN 0 \
                            WHEN $5 - rate_windows.used < $7 THEN $5 - rate_windows.used ELSE $7 END, \
             used = CASE WHEN rate_windows.used >= $5 THEN rate_windows.used \
                         WHEN $5 - rate_windows.used < $7 THEN $5 ELSE rate_windows.used + $7 END \
             RETURNING granted, used"
        )
        .bind(t)
        .bind(subject)
        .bind(policy)
        .bind(window_start)
        .bind(quota)
        .bind(first)
        .bind(want)
        .fetch_one(c)
        .await?
        }))
    }

    /// Forgets windows that ended before `before` (unix seconds).
    pub async fn purge_rate_windows(&mut self, policy: &str, before: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM rate_windows WHERE tenant_id = $1 AND policy = $2 AND window_start < $3"
        )
        .bind(t)
        .bind(policy)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }

    pub async fn rate_overrides(&mut self) -> Result<RateOverrides> {
        let t = self.tenant;
        let row = on_conn!(&mut self.tx, |c| sqlx::query_as::<
            _,
            (Option<i64>, Option<i64>),
        >(
            "SELECT rate_limit_burst, rate_limit_daily FROM tenant_settings WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?);
        Ok(row
            .map(|(burst, daily)| RateOverrides { burst, daily })
            .unwrap_or_default())
    }

    /// Sets the overrides; `policy_json` is the password policy to store if the tenant has no
    /// settings row yet.
    pub async fn put_rate_overrides(
        &mut self,
        o: RateOverrides,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, password_policy, rate_limit_burst, rate_limit_daily, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET \
             rate_limit_burst = excluded.rate_limit_burst, rate_limit_daily = excluded.rate_limit_daily, \
             updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(policy_json)
        .bind(o.burst)
        .bind(o.daily)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }
}

impl TenantTx {
    /// The organisation's IP allowlist (JSON array of CIDR blocks), if it set one.
    pub async fn ip_allowlist(&mut self) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(
            on_conn!(&mut self.tx, |c| sqlx::query_scalar::<_, Option<String>>(
                "SELECT ip_allowlist FROM tenant_settings WHERE tenant_id = $1"
            )
            .bind(t)
            .fetch_optional(c)
            .await?)
            .flatten(),
        )
    }

    /// Sets (or with None, clears) the allowlist; `policy_json` is the password policy to store
    /// if the tenant has no settings row yet.
    pub async fn put_ip_allowlist(
        &mut self,
        json: Option<&str>,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, password_policy, ip_allowlist, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
             ip_allowlist = excluded.ip_allowlist, updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(policy_json)
        .bind(json)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }
}
