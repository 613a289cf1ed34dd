//! Telephone numbers: the one normaliser (E.164).

use std::fmt;

use serde::{Serialize, Serializer};

/// A telephone number in E.164 form (`+31612345678`): what lookups and blind indexes use.
///
/// This normalises for matching; it does not check numbering plans. The rules:
/// - only digits, a leading `+`, and the formatting characters `space - . ( ) /` and
///   no-break space are allowed; a `(0)` trunk marker (`+31 (0)6 ...`) is dropped;
/// - `+...` is international; `00...` is the international prefix (replaced by `+`);
/// - `0...` is a national number: the `0` becomes `+<country code>` (the Netherlands, 31,
///   unless the caller names another country);
/// - bare digits without `+`, `00` or `0` are refused: nobody can tell whether they start with
///   a country code, and guessing would file one person's number under another's;
/// - the result has 7 to 15 digits (E.164 allows at most 15; the shortest assigned numbers,
///   e.g. Niue's `+683 xxxx`, have 7) and no country code starts with 0.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

/// Why a string is not a [`Phone`]. Carries no part of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid telephone number")]
pub struct PhoneError;

impl Phone {
    /// The country code assumed for national numbers (`06-...`).
    pub const DEFAULT_COUNTRY: u16 = 31;

    /// Parses assuming the Netherlands for national numbers.
    pub fn parse(raw: &str) -> Result<Phone, PhoneError> {
        Self::parse_with_country(raw, Self::DEFAULT_COUNTRY)
    }

    /// Parses with `country_code` for national numbers.
    pub fn parse_with_country(raw: &str, country_code: u16) -> Result<Phone, PhoneError> {
        let raw = raw.trim().replacen("(0)", "", 1);
        let mut digits = String::with_capacity(raw.len());
        let mut plus = false;
        for (i, c) in raw.chars().enumerate() {
            match c {
                '+' if i == 0 => plus = true,
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                _ => return Err(PhoneError),
            }
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = digits.strip_prefix('0') {
            format!("{country_code}{rest}")
        } else {
            return Err(PhoneError);
        };
        if !(7..=15).contains(&international.len()) || international.starts_with('0') {
            return Err(PhoneError);
        }
        Ok(Phone(format!("+{international}")))
    }

    /// `+<digits>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug shows the country prefix only (personal data ends up in logs through Debug).
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(3).collect();
        write!(f, "Phone({shown}***)")
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        Phone::parse(s).ok().map(|p| p.as_str().to_owned())
    }

    #[test]
    fn international_and_national_forms_agree() {
        for raw in [
            "+31612345678",
            "+31 6 1234 5678",
            "0031 6 12345678",
            "06-12345678",
            "(06) 12 34 56 78",
            "+31 (0)6 12345678",
            "06\u{a0}12345678",
            "06/12345678",
        ] {
            assert_eq!(p(raw).as_deref(), Some("+31612345678"), "{raw}");
        }
        assert_eq!(
            Phone::parse_with_country("030 123 4567", 32)
                .unwrap()
                .as_str(),
            "+32301234567"
        );
    }

    /// The cases of the two normalisers this one replaced (the CRM's and the blind-index
    /// module's). They disagreed on bare digits ("31612345678": the CRM refused, the other
    /// took a country code) and on 7 digits; the CRM's answer on bare digits stands, because
    /// CRM blind indexes were computed with it; E.164's 7-digit minimum stands.
    #[test]
    fn cases_of_the_former_normalisers() {
        for (raw, want) in [
            ("+31 6 1234 5678", Some("+31612345678")),
            ("06 1234 5678", Some("+31612345678")),
            ("0031 (0)6 12345678", Some("+31612345678")),
            ("+44 (0)20 7946 0000", Some("+442079460000")),
            ("020 123 4567", Some("+31201234567")),
            ("(020) 123 4567", Some("+31201234567")),
            ("+44 20 7946 0958", Some("+442079460958")),
            ("+1 (415) 555-0100", Some("+14155550100")),
            ("31612345678", None),
            ("12345", None),
            ("123", None),
            ("+31 6 1234 5678 ext 9", None),
            ("06 1234 5678 ext 2", None),
            ("++31612345678", None),
        ] {
            assert_eq!(p(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_matched() {
        for bad in [
            "",
            "+",
            "abc",
            "06-1234567x",
            "31612345678",
            "+0612345678",
            "12+34",
            "+123456",
            "+1234567890123456",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        // Seven digits is the shortest E.164 number.
        assert_eq!(p("+6831234").as_deref(), Some("+6831234"));
    }

    #[test]
    fn debug_hides_the_number() {
        let d = format!("{:?}", Phone::parse("06-12345678").unwrap());
        assert!(!d.contains("12345678"), "{d}");
    }
}
