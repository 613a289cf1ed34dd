//! Breach deadlines: the customer notice within 2 business days (seed 003), the Dutch DPA
//! (Autoriteit Persoonsgegevens) within 72 hours (GDPR art. 33(1)).
//!
//! Choices, stated:
//! - **Business days** are Monday to Friday except Dutch national public holidays:
//!   Nieuwjaarsdag (1 January), Eerste and Tweede Paasdag (Easter Sunday and Monday),
//!   Koningsdag (27 April, or 26 April when the 27th is a Sunday), Bevrijdingsdag (5 May,
//!   every year, not only in lustrum years), Hemelvaartsdag (Easter + 39 days), Eerste and
//!   Tweede Pinksterdag (Easter + 49 and + 50), Eerste and Tweede Kerstdag (25 and 26
//!   December). Goede Vrijdag is *not* a national day off, so it counts as a business day.
//! - **Counting** happens in Amsterdam local time: the day of detection does not count; the
//!   customer notice is due at the end (24:00 Amsterdam) of the second business day after it.
//!   Detected on a Monday at 10:00: due Wednesday 24:00. Detected on a Saturday: due Tuesday
//!   24:00.
//! - **The authority** deadline is exactly 72 hours after detection, holidays or not.
//! - **Amsterdam time** is UTC+1, and UTC+2 from the last Sunday of March 01:00 UTC to the
//!   last Sunday of October 01:00 UTC (the EU rule; no time-zone database needed).

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

pub const AUTHORITY_HOURS: i64 = 72;
pub const CUSTOMER_BUSINESS_DAYS: u32 = 2;

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, Meeus/Jones/Butcher).
pub fn easter(year: i32) -> Date {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    let month = if month == 3 {
        Month::March
    } else {
        Month::April
    };
    Date::from_calendar_date(year, month, day as u8).unwrap_or(Date::MIN)
}

/// The Dutch national public holiday on `d`, if any (see the module text for the list).
pub fn holiday(d: Date) -> Option<&'static str> {
    let (y, m, day) = (d.year(), d.month(), d.day());
    let e = easter(y);
    let koningsdag = {
        let k = Date::from_calendar_date(y, Month::April, 27).unwrap_or(Date::MIN);
        if k.weekday() == Weekday::Sunday {
            k.previous_day().unwrap_or(k)
        } else {
            k
        }
    };
    Some(match (m, day) {
        (Month::January, 1) => "Nieuwjaarsdag",
        (Month::May, 5) => "Bevrijdingsdag",
        (Month::December, 25) => "Eerste Kerstdag",
        (Month::December, 26) => "Tweede Kerstdag",
        _ if d == koningsdag => "Koningsdag",
        _ if d == e => "Eerste Paasdag",
        _ if d == e + Duration::days(1) => "Tweede Paasdag",
        _ if d == e + Duration::days(39) => "Hemelvaartsdag",
        _ if d == e + Duration::days(49) => "Eerste Pinksterdag",
        _ if d == e + Duration::days(50) => "Tweede Pinksterdag",
        _ => return None,
    })
}

pub fn is_business_day(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && holiday(d).is_none()
}

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: Month) -> Date {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).unwrap_or(Date::MIN);
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day().unwrap_or(d);
    }
    d
}

/// Amsterdam's offset from UTC at the instant `t`.
pub fn amsterdam_offset(t: OffsetDateTime) -> UtcOffset {
    let t = t.to_offset(UtcOffset::UTC);
    let y = t.year();
    let one = Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT);
    let start = last_sunday(y, Month::March).with_time(one).assume_utc();
    let end = last_sunday(y, Month::October).with_time(one).assume_utc();
    let hours = if t >= start && t < end { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// 00:00 Amsterdam time on `d`, as an instant.
fn amsterdam_midnight(d: Date) -> OffsetDateTime {
    // 23:00 UTC the day before is 00:00 or 01:00 local: the same offset as local midnight,
    // since the clocks change at 01:00 UTC (02:00 / 03:00 local), never around midnight.
    let probe = d.midnight().assume_utc() - Duration::hours(1);
    d.midnight().assume_offset(amsterdam_offset(probe))
}

/// When the customer notice is due for a breach detected at `detected` (see the module text).
pub fn customer_notice_due(detected: OffsetDateTime) -> OffsetDateTime {
    let local = detected.to_offset(amsterdam_offset(detected));
    let mut d = local.date();
    let mut counted = 0;
    while counted < CUSTOMER_BUSINESS_DAYS {
        d = d.next_day().unwrap_or(d);
        if is_business_day(d) {
            counted += 1;
        }
    }
    amsterdam_midnight(d.next_day().unwrap_or(d)).to_offset(UtcOffset::UTC)
}

/// When the notification to the data-protection authority is due.
pub fn authority_due(detected: OffsetDateTime) -> OffsetDateTime {
    detected + Duration::hours(AUTHORITY_HOURS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    fn date(s: &str) -> Date {
        t(&format!("{s}T12:00:00Z")).date()
    }

    #[test]
    fn easter_golden_dates() {
        for (y, want) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2028, "2028-04-16"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter(y), date(want), "{y}");
        }
    }

    #[test]
    fn dutch_holidays_and_the_days_that_are_not() {
        for (d, want) in [
            ("2026-01-01", Some("Nieuwjaarsdag")),
            ("2026-04-03", None), // Goede Vrijdag: a business day
            ("2026-04-05", Some("Eerste Paasdag")),
            ("2026-04-06", Some("Tweede Paasdag")),
            ("2026-04-27", Some("Koningsdag")),
            ("2025-04-26", Some("Koningsdag")), // 27 April 2025 is a Sunday
            ("2025-04-27", None),
            ("2026-05-05", Some("Bevrijdingsdag")),
            ("2027-05-05", Some("Bevrijdingsdag")), // not a lustrum year: still a day off here
            ("2026-05-14", Some("Hemelvaartsdag")),
            ("2026-05-24", Some("Eerste Pinksterdag")),
            ("2026-05-25", Some("Tweede Pinksterdag")),
            ("2026-12-25", Some("Eerste Kerstdag")),
            ("2026-12-26", Some("Tweede Kerstdag")),
            ("2026-12-31", None),
        ] {
            assert_eq!(holiday(date(d)), want, "{d}");
        }
        assert!(is_business_day(date("2026-04-03")));
        assert!(!is_business_day(date("2026-12-12")), "a Saturday");
    }

    #[test]
    fn amsterdam_offsets_switch_on_the_last_sundays() {
        for (at, hours) in [
            ("2026-03-29T00:59:59Z", 1),
            ("2026-03-29T01:00:00Z", 2),
            ("2026-10-25T00:59:59Z", 2),
            ("2026-10-25T01:00:00Z", 1),
            ("2026-07-01T12:00:00Z", 2),
            ("2026-12-07T12:00:00Z", 1),
        ] {
            assert_eq!(amsterdam_offset(t(at)).whole_hours(), hours, "{at}");
        }
    }

    /// Golden cases: detection time (UTC) and the customer notice deadline (UTC), which is
    /// 24:00 Amsterdam of the second business day after the day of detection.
    #[test]
    fn customer_notice_deadlines_around_weekends_and_holidays() {
        for (detected, due, why) in [
            (
                "2026-12-07T09:00:00Z",
                "2026-12-09T23:00:00Z",
                "Monday: Tue, Wed",
            ),
            (
                "2026-12-11T15:00:00Z",
                "2026-12-15T23:00:00Z",
                "Friday: Mon, Tue",
            ),
            (
                "2026-12-12T10:00:00Z",
                "2026-12-15T23:00:00Z",
                "Saturday: Mon, Tue",
            ),
            (
                "2026-12-13T23:30:00Z",
                "2026-12-16T23:00:00Z",
                "Sunday 23:30 UTC is Monday 00:30 in Amsterdam: Tue, Wed",
            ),
            (
                "2026-12-24T09:00:00Z",
                "2026-12-29T23:00:00Z",
                "Christmas (Fri) and the weekend: Mon 28, Tue 29",
            ),
            (
                "2026-12-30T09:00:00Z",
                "2027-01-04T23:00:00Z",
                "Thu 31, then Nieuwjaarsdag and the weekend: Mon 4",
            ),
            (
                "2026-04-02T08:00:00Z",
                "2026-04-07T22:00:00Z",
                "Goede Vrijdag counts, Tweede Paasdag does not",
            ),
            (
                "2026-04-24T07:00:00Z",
                "2026-04-29T22:00:00Z",
                "Koningsdag on Monday 27 April",
            ),
            (
                "2026-05-04T07:00:00Z",
                "2026-05-07T22:00:00Z",
                "Bevrijdingsdag on Tuesday",
            ),
            (
                "2026-05-13T07:00:00Z",
                "2026-05-18T22:00:00Z",
                "Hemelvaartsdag on Thursday",
            ),
            (
                "2026-05-22T07:00:00Z",
                "2026-05-27T22:00:00Z",
                "Tweede Pinksterdag on Monday",
            ),
            (
                "2026-03-27T10:00:00Z",
                "2026-03-31T22:00:00Z",
                "summer time starts in between",
            ),
            (
                "2026-10-23T10:00:00Z",
                "2026-10-27T23:00:00Z",
                "winter time starts in between",
            ),
        ] {
            assert_eq!(customer_notice_due(t(detected)), t(due), "{why}");
        }
    }

    #[test]
    fn the_authority_is_due_72_hours_later_whatever_the_calendar() {
        assert_eq!(
            authority_due(t("2026-12-24T09:00:00Z")),
            t("2026-12-27T09:00:00Z")
        );
        assert_eq!(
            authority_due(t("2026-03-28T10:15:00Z")),
            t("2026-03-31T10:15:00Z")
        );
    }
}
