//! Calendar retention: which backups (generations) are kept, for which rule, and until when
//! their objects are locked.
//!
//! Rules (defaults from the seeds): the first complete backup of each of the last 7 days
//! (`daily`), of each of the last 12 months (`monthly`), of each of the last 10 years
//! (`yearly`), and every backup needed to restore any moment of the last 30 days (`pitr`: its
//! shipped changes reach into the window). The newest complete backup is always kept.
//!
//! "First of the period" (not "last"): the rule that will keep a backup is then known when it
//! starts, so its objects are locked for exactly that long from the start (S3 Object Lock
//! cannot be extended by the local backend, and must not have to be). Everything is in UTC.
//!
//! [`plan`] is a pure function of the backups and the clock (`now` is passed in, so tests
//! drive it over a synthetic calendar); pruning deletes only what `plan` marks due AND whose
//! lock has expired — the repository refuses the rest anyway.

use time::{Duration, OffsetDateTime};

/// How long backups are kept. Configurable; defaults from the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionPolicy {
    pub daily: u32,
    pub pitr_days: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            daily: 7,
            pitr_days: 30,
            monthly: 12,
            yearly: 10,
        }
    }
}

/// What retention needs to know about one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenFacts {
    pub id: String,
    /// When its snapshot was taken.
    pub started: OffsetDateTime,
    /// The latest moment it can restore (its last shipped change); `started` for a snapshot.
    pub last: OffsetDateTime,
    /// Has a valid first manifest (a usable backup). Incomplete ones (a crash while taking the
    /// snapshot) are never kept, and go once their lock expires.
    pub complete: bool,
    /// The latest retain-until among its objects.
    pub retain_until: Option<OffsetDateTime>,
}

/// The verdict on one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    /// Rules keeping it (`yearly`, `monthly`, `daily`, `pitr`, `newest`); empty once due.
    pub kept_for: Vec<String>,
    /// Not kept by any rule and its lock has expired: prune deletes it.
    pub due: bool,
}

fn month_index(t: OffsetDateTime) -> i64 {
    i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1
}

fn day_index(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp()).div_euclid(86_400)
}

impl RetentionPolicy {
    /// The rules that will keep a backup starting at `now`, given when the existing complete
    /// backups started, and the lock (retain-until) that covers them all.
    pub fn lock_for_new(
        &self,
        existing: &[OffsetDateTime],
        now: OffsetDateTime,
    ) -> (OffsetDateTime, Vec<&'static str>) {
        let mut reasons = vec!["pitr"];
        let mut until = now + Duration::days(i64::from(self.pitr_days));
        let first_of = |same: &dyn Fn(OffsetDateTime) -> bool| !existing.iter().any(|t| same(*t));
        if self.yearly > 0 && first_of(&|t| t.year() == now.year()) {
            reasons.push("yearly");
            until = until.max(now + Duration::days(366 * i64::from(self.yearly)));
        }
        if self.monthly > 0 && first_of(&|t| month_index(t) == month_index(now)) {
            reasons.push("monthly");
            until = until.max(now + Duration::days(31 * i64::from(self.monthly)));
        }
        if self.daily > 0 && first_of(&|t| day_index(t) == day_index(now)) {
            reasons.push("daily");
            until = until.max(now + Duration::days(i64::from(self.daily)));
        }
        (until, reasons)
    }

    /// A later object of a backup (a shipped segment written at `now`) is locked at least
    /// as long as its backup and at least the PITR window from now.
    pub fn lock_for_segment(
        &self,
        generation_lock: OffsetDateTime,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        generation_lock.max(now + Duration::days(i64::from(self.pitr_days)))
    }
}

/// Decides, at `now`, which backups each rule keeps and which are due.
pub fn plan(policy: &RetentionPolicy, gens: &[GenFacts], now: OffsetDateTime) -> Vec<Decision> {
    let mut complete: Vec<&GenFacts> = gens.iter().filter(|g| g.complete).collect();
    complete.sort_by(|a, b| (a.started, &a.id).cmp(&(b.started, &b.id)));
    let mut keep: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    // The first complete backup of each period within the last `n` periods.
    let mut by_period = |name: &str, n: u32, period: &dyn Fn(OffsetDateTime) -> i64| {
        if n == 0 {
            return;
        }
        let current = period(now);
        let mut seen = std::collections::BTreeSet::new();
        for g in &complete {
            let p = period(g.started);
            if p > current - i64::from(n) && p <= current && seen.insert(p) {
                keep.entry(g.id.as_str()).or_default().push(name.to_owned());
            }
        }
    };
    by_period("yearly", policy.yearly, &|t| i64::from(t.year()));
    by_period("monthly", policy.monthly, &month_index);
    by_period("daily", policy.daily, &day_index);
    let window_start = now - Duration::days(i64::from(policy.pitr_days));
    for g in &complete {
        if g.last >= window_start {
            keep.entry(g.id.as_str()).or_default().push("pitr".into());
        }
    }
    if let Some(newest) = complete.last() {
        keep.entry(newest.id.as_str())
            .or_default()
            .push("newest".into());
    }
    gens.iter()
        .map(|g| {
            let kept_for = keep.get(g.id.as_str()).cloned().unwrap_or_default();
            let locked = g.retain_until.is_some_and(|u| u > now);
            Decision {
                id: g.id.clone(),
                due: kept_for.is_empty() && !locked,
                kept_for,
            }
        })
        .collect()
}
