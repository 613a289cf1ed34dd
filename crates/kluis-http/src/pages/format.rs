//! Locale formats of the pages: money, dates, date-times and numbers in English and Dutch.
//!
//! Dutch: `€ 1.234,50`, `25-11-2026`, `25-11-2026 14:05`, `1.234.567`.
//! English: `€1,234.50`, `2026-11-25`, `2026-11-25 14:05`, `1,234,567`.
//! Times are shown in UTC (the server does not know the reader's time zone) with a `UTC`
//! suffix on date-times. Input that does not parse is shown as given, never dropped.

use super::i18n::Lang;

fn group(digits: &str, sep: char) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn separators(lang: Lang) -> (char, char) {
    match lang {
        Lang::En => (',', '.'),
        Lang::Nl => ('.', ','),
    }
}

/// A whole number with thousands separators: nl `1.234.567`, en `1,234,567`.
pub fn number(lang: Lang, n: i64) -> String {
    let (thousands, _) = separators(lang);
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", group(&digits, thousands))
}

/// Minor units per major unit of an ISO 4217 currency (most have 2).
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "XAF" | "XOF" | "HUF" | "TWD" | "UGX" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        "JPY" => "¥",
        _ => return None,
    })
}

/// An amount in minor units (cents) of `currency`: nl `€ 1.234,50`, en `€1,234.50`;
/// currencies without a symbol show their code (`CHF 12.00`).
pub fn money(lang: Lang, minor: i64, currency: &str) -> String {
    let code = currency.trim().to_ascii_uppercase();
    let exp = exponent(&code);
    let (thousands, decimal) = separators(lang);
    let abs = minor.unsigned_abs();
    let unit = 10u64.pow(exp);
    let whole = group(&(abs / unit).to_string(), thousands);
    let amount = if exp == 0 {
        whole
    } else {
        format!(
            "{whole}{decimal}{:0width$}",
            abs % unit,
            width = exp as usize
        )
    };
    let sign = if minor < 0 { "-" } else { "" };
    match (lang, symbol(&code)) {
        (Lang::En, Some(s)) => format!("{sign}{s}{amount}"),
        (Lang::Nl, Some(s)) => format!("{s} {sign}{amount}"),
        (_, None) => format!("{code} {sign}{amount}"),
    }
}

/// `(year, month, day, rest)` of `YYYY-MM-DD...`.
fn ymd(s: &str) -> Option<(&str, &str, &str, &str)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (s.get(0..4)?, s.get(5..7)?, s.get(8..10)?);
    if ![y, m, d]
        .iter()
        .all(|p| p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    Some((y, m, d, s.get(10..)?))
}

/// A date (`YYYY-MM-DD` or an RFC 3339 time, whose date part is shown): nl `25-11-2026`,
/// en `2026-11-25`.
pub fn date(lang: Lang, rfc3339: &str) -> String {
    match ymd(rfc3339) {
        Some((y, m, d, _)) => match lang {
            Lang::En => format!("{y}-{m}-{d}"),
            Lang::Nl => format!("{d}-{m}-{y}"),
        },
        None => rfc3339.to_owned(),
    }
}

/// An RFC 3339 time to the minute, in UTC: nl `25-11-2026 14:05 UTC`, en
/// `2026-11-25 14:05 UTC`.
pub fn datetime(lang: Lang, rfc3339: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return date(lang, rfc3339);
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let day = format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
    format!("{} {:02}:{:02} UTC", date(lang, &day), t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_both_languages() {
        assert_eq!(money(Lang::Nl, 123_450, "EUR"), "€ 1.234,50");
        assert_eq!(money(Lang::En, 123_450, "EUR"), "€1,234.50");
        assert_eq!(money(Lang::En, 5, "eur"), "€0.05");
        assert_eq!(money(Lang::Nl, -100_000_000, "EUR"), "€ -1.000.000,00");
        assert_eq!(money(Lang::En, 1_999, "USD"), "$19.99");
        assert_eq!(money(Lang::En, 1_500, "CHF"), "CHF 15.00");
        assert_eq!(money(Lang::Nl, 1_500, "JPY"), "¥ 1.500");
        assert_eq!(money(Lang::En, 1_234_567, "KWD"), "KWD 1,234.567");
        assert_eq!(
            money(Lang::En, i64::MIN, "EUR"),
            "-€92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date(Lang::Nl, "2026-11-25"), "25-11-2026");
        assert_eq!(date(Lang::En, "2026-11-25"), "2026-11-25");
        assert_eq!(date(Lang::Nl, "2026-11-25T23:30:00Z"), "25-11-2026");
        assert_eq!(date(Lang::Nl, "soon"), "soon");
        assert_eq!(
            datetime(Lang::Nl, "2026-12-07T04:39:41.122Z"),
            "07-12-2026 04:39 UTC"
        );
        assert_eq!(
            datetime(Lang::En, "2026-12-07T05:39:41+01:00"),
            "2026-12-07 04:39 UTC"
        );
        assert_eq!(datetime(Lang::En, "2026-12-07"), "2026-12-07");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(Lang::Nl, 1_234_567), "1.234.567");
        assert_eq!(number(Lang::En, 1_234_567), "1,234,567");
        assert_eq!(number(Lang::En, 999), "999");
        assert_eq!(number(Lang::Nl, -1000), "-1.000");
        assert_eq!(number(Lang::En, 0), "0");
    }
}
