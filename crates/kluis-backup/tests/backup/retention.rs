//! Golden tests of the calendar rules over a synthetic multi-year calendar (injected clock).

use kluis_backup::retention::{GenFacts, RetentionPolicy, plan};
use time::{Duration, OffsetDateTime};

fn dt(y: i32, m: u8, d: u8, h: u8, min: u8) -> OffsetDateTime {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
        .unwrap()
        .with_hms(h, min, 0)
        .unwrap()
        .assume_utc()
}

fn id(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A backup every day at 02:00 from 2020-01-01 to 2023-06-30, an extra one (a restart) at
/// 14:00 on every 15th, and one incomplete backup (crashed during its snapshot) on
/// 2023-03-10. Each backup's shipped changes reach until the next one starts; each is locked
/// as `lock_for_new` decided when it started.
fn calendar(policy: &RetentionPolicy) -> Vec<GenFacts> {
    let mut starts = Vec::new();
    let mut day = dt(2020, 1, 1, 2, 0);
    while day <= dt(2023, 6, 30, 2, 0) {
        starts.push(day);
        if day.day() == 15 {
            starts.push(day + Duration::hours(12));
        }
        day += Duration::days(1);
    }
    let mut gens: Vec<GenFacts> = Vec::new();
    let mut complete_starts = Vec::new();
    for (i, s) in starts.iter().enumerate() {
        let (lock, _) = policy.lock_for_new(&complete_starts, *s);
        let last = starts.get(i + 1).copied().unwrap_or(dt(2023, 6, 30, 12, 0));
        gens.push(GenFacts {
            id: id(*s),
            started: *s,
            last,
            complete: true,
            retain_until: Some(lock),
        });
        complete_starts.push(*s);
        if *s == dt(2023, 3, 10, 2, 0) {
            let crashed = dt(2023, 3, 10, 5, 0);
            gens.push(GenFacts {
                id: id(crashed),
                started: crashed,
                last: crashed,
                complete: false,
                retain_until: Some(policy.lock_for_new(&complete_starts, crashed).0),
            });
        }
    }
    gens
}

fn kept(policy: &RetentionPolicy, now: OffsetDateTime) -> (String, usize, usize) {
    let gens = calendar(policy);
    let decisions = plan(policy, &gens, now);
    let mut s = String::new();
    let (mut due, mut held) = (0, 0);
    for d in &decisions {
        if !d.kept_for.is_empty() {
            s.push_str(&format!("{} {}\n", d.id, d.kept_for.join("+")));
        } else if d.due {
            due += 1;
        } else {
            held += 1;
        }
    }
    assert_eq!(decisions.len(), gens.len());
    (s, due, held)
}

#[test]
fn default_policy_mid_2023() {
    let policy = RetentionPolicy::default();
    let (s, due, held) = kept(&policy, dt(2023, 6, 30, 12, 0));
    let mut golden = String::from(
        "20200101T020000Z yearly
20210101T020000Z yearly
20220101T020000Z yearly
20220701T020000Z monthly
20220801T020000Z monthly
20220901T020000Z monthly
20221001T020000Z monthly
20221101T020000Z monthly
20221201T020000Z monthly
20230101T020000Z yearly+monthly
20230201T020000Z monthly
20230301T020000Z monthly
20230401T020000Z monthly
20230501T020000Z monthly
20230531T020000Z pitr
20230601T020000Z monthly+pitr
",
    );
    for d in 2..=23 {
        golden.push_str(&format!("202306{d:02}T020000Z pitr\n"));
        if d == 15 {
            golden.push_str("20230615T140000Z pitr\n");
        }
    }
    for d in 24..=29 {
        golden.push_str(&format!("202306{d:02}T020000Z daily+pitr\n"));
    }
    golden.push_str("20230630T020000Z daily+pitr+newest\n");
    assert_eq!(s, golden);
    // 1277 daily + 42 extra + 1 incomplete backups; all the rest are due (locks expired).
    let kept_count = golden.lines().count();
    assert_eq!(kept_count + due + held, 1277 + 42 + 1);
    assert_eq!(held, 0);
}

#[test]
fn a_backup_no_rule_keeps_is_not_due_while_locked() {
    // On 2023-06-05 the first backup of June 2022 is outside the 12 months, but it was
    // locked for 12 x 31 days when it started (until 2023-06-08): not due yet.
    let policy = RetentionPolicy::default();
    let gens = calendar(&policy);
    let now = dt(2023, 6, 5, 0, 0);
    let d = plan(&policy, &gens, now);
    let june = d.iter().find(|d| d.id == "20220601T020000Z").unwrap();
    assert!(june.kept_for.is_empty());
    assert!(!june.due);
    let later = plan(&policy, &gens, dt(2023, 6, 9, 0, 0));
    let june = later.iter().find(|d| d.id == "20220601T020000Z").unwrap();
    assert!(june.due);
    // The incomplete backup is never kept by a rule.
    let crashed = later.iter().find(|d| d.id == "20230310T050000Z").unwrap();
    assert!(crashed.kept_for.is_empty() && crashed.due);
}

#[test]
fn years_later_only_the_yearly_backups_and_the_newest_remain() {
    let policy = RetentionPolicy::default();
    let (s, _, held) = kept(&policy, dt(2031, 3, 1, 0, 0));
    assert_eq!(
        s,
        "20220101T020000Z yearly\n20230101T020000Z yearly\n20230630T020000Z newest\n"
    );
    assert_eq!(held, 0);
}

#[test]
fn configurable_policy() {
    let policy = RetentionPolicy {
        daily: 2,
        pitr_days: 1,
        monthly: 1,
        yearly: 0,
    };
    let (s, _, _) = kept(&policy, dt(2023, 6, 30, 12, 0));
    assert_eq!(
        s,
        "20230601T020000Z monthly\n20230629T020000Z daily+pitr\n20230630T020000Z daily+pitr+newest\n"
    );
}

#[test]
fn lock_for_new_follows_first_of_period() {
    let p = RetentionPolicy::default();
    let t = dt(2024, 3, 5, 10, 0);
    let (until, why) = p.lock_for_new(&[], t);
    assert_eq!(why, vec!["pitr", "yearly", "monthly", "daily"]);
    assert_eq!(until, t + Duration::days(3660));
    let (until, why) = p.lock_for_new(&[dt(2024, 1, 1, 2, 0)], t);
    assert_eq!(why, vec!["pitr", "monthly", "daily"]);
    assert_eq!(until, t + Duration::days(372));
    let (until, why) = p.lock_for_new(&[dt(2024, 3, 5, 2, 0)], t);
    assert_eq!(why, vec!["pitr"]);
    assert_eq!(until, t + Duration::days(30));
}
