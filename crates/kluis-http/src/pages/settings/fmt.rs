//! Dates for people: Dutch `07-12-2026 05:39`, English `2026-12-07 05:39`, in Dutch time
//! (Europe/Amsterdam, summer time included). Stand-in with the behaviour of helper "tables"'
//! `pages/format.rs` (`date(lang, rfc3339)`, `datetime(lang, rfc3339)`) until that is merged.
//! Called from templates by path, so a template shows `{{ ...fmt::datetime(t.lang, x) }}`.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// The last Sunday of a month with 31 days (March, October) at 01:00 UTC.
fn last_sunday_0100(year: i32, month: Month) -> Option<OffsetDateTime> {
    let last = Date::from_calendar_date(year, month, 31).ok()?;
    let back = i64::from(last.weekday().number_days_from_sunday());
    let day = last - time::Duration::days(back);
    Some(day.with_hms(1, 0, 0).ok()?.assume_utc())
}

/// Central European (Summer) Time of an instant.
fn amsterdam(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let y = t.year();
    let summer = match (
        last_sunday_0100(y, Month::March),
        last_sunday_0100(y, Month::October),
    ) {
        (Some(start), Some(end)) => t >= start && t < end,
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    match UtcOffset::from_hms(hours, 0, 0) {
        Ok(o) => t.to_offset(o),
        Err(_) => t,
    }
}

/// `YYYY-MM-DD`.
fn plain_date(s: &str) -> Option<Date> {
    let mut it = s.splitn(3, '-');
    let y = it.next()?.parse::<i32>().ok()?;
    let m = Month::try_from(it.next()?.parse::<u8>().ok()?).ok()?;
    let d = it.next()?.parse::<u8>().ok()?;
    Date::from_calendar_date(y, m, d).ok()
}

fn parse(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339.trim(), &Rfc3339)
        .ok()
        .map(amsterdam)
}

/// A day: `25-11-2026` (nl), `2026-11-25` (en). A bare `YYYY-MM-DD` is taken as is; anything
/// unparsable is shown unchanged.
pub fn date(lang: &str, rfc3339: &str) -> String {
    let d = match parse(rfc3339) {
        Some(t) => t.date(),
        None => match plain_date(rfc3339.trim()) {
            Some(d) => d,
            None => return rfc3339.to_owned(),
        },
    };
    let (y, m, day) = (d.year(), u8::from(d.month()), d.day());
    if lang == "nl" {
        format!("{day:02}-{m:02}-{y:04}")
    } else {
        format!("{y:04}-{m:02}-{day:02}")
    }
}

/// A moment: `07-12-2026 05:39` (nl), `2026-12-07 05:39` (en).
pub fn datetime(lang: &str, rfc3339: &str) -> String {
    let Some(t) = parse(rfc3339) else {
        return rfc3339.to_owned();
    };
    format!(
        "{} {:02}:{:02}",
        date(lang, &t.date().to_string()),
        t.hour(),
        t.minute()
    )
}

/// [`datetime`] of an optional moment (empty when absent).
pub fn datetime_opt(lang: &str, rfc3339: Option<&String>) -> String {
    rfc3339.map(|v| datetime(lang, v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_and_english_dates_in_dutch_time() {
        assert_eq!(
            datetime("nl", "2026-12-07T04:39:41.122Z"),
            "07-12-2026 05:39"
        );
        assert_eq!(
            datetime("en", "2026-12-07T04:39:41.122Z"),
            "2026-12-07 05:39"
        );
        // Summer time: UTC+2.
        assert_eq!(datetime("nl", "2026-07-01T10:00:00Z"), "01-07-2026 12:00");
        // Summer time starts on the last Sunday of March at 01:00 UTC (29 March 2026).
        assert_eq!(datetime("en", "2026-03-29T00:59:00Z"), "2026-03-29 01:59");
        assert_eq!(datetime("en", "2026-03-29T01:00:00Z"), "2026-03-29 03:00");
        assert_eq!(date("nl", "2026-11-25T10:00:00Z"), "25-11-2026");
        assert_eq!(date("en", "2026-11-25"), "2026-11-25");
        assert_eq!(date("nl", "2026-11-25"), "25-11-2026");
        assert_eq!(datetime("nl", "not a date"), "not a date");
    }
}
