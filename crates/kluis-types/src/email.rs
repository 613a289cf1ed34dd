//! Email addresses: the one normaliser.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A plausible single email address, trimmed and lower-cased.
///
/// Lower-casing the local part is a choice, not RFC 5321 (which lets the local part be
/// case-sensitive): no mail system in use treats `Jan@` and `jan@` as different people, and
/// one account per address, one lookup per address, needs one spelling. Blind indexes are
/// computed over [`Email::as_str`], so every path that finds a person by email agrees.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why a string is not an [`Email`]. Carries no part of the input (it may be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct EmailError;

impl Email {
    /// Longest address SMTP can carry (RFC 5321 path limit minus the brackets).
    pub const MAX_LEN: usize = 254;

    /// Trims, lower-cases and checks the shape: one `@`, a local part of 1..=64 bytes, a
    /// domain with a dot that neither starts nor ends with one and has no empty label, no
    /// whitespace or control characters, at most 254 bytes.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let e = Self::normal_form(raw);
        if e.len() > Self::MAX_LEN || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError);
        }
        let (local, domain) = e.split_once('@').ok_or(EmailError)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(EmailError);
        }
        Ok(Email(e))
    }

    /// What [`Email::parse`] checks: the input trimmed and lower-cased. On its own only for
    /// what must be keyed whatever was typed (sign-in failure counters count garbage too);
    /// everything else takes an [`Email`].
    pub fn normal_form(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    /// The normalised address: what is sealed, shown and blind-indexed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@` (already lower-case), for domain allow-lists.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug shows the domain only: an address is personal data and Debug output ends up in logs.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email(***@{})", self.domain())
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalises_once() {
        let e = Email::parse("  Jan@Example.NL ").unwrap();
        assert_eq!(e.as_str(), "jan@example.nl");
        assert_eq!(e.domain(), "example.nl");
        // Parsing the normalised form again is the identity.
        assert_eq!(Email::parse(e.as_str()).unwrap(), e);
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.nl",
            "a b@c.nl",
            "@c.nl",
            "a@.nl",
            "a@c.nl.",
            "a@c..nl",
            "a\u{0}@c.nl",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long_local = format!("{}@c.nl", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long = format!("a@{}.nl", "b".repeat(252));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn debug_hides_the_local_part() {
        let e = Email::parse("jan.jansen@example.nl").unwrap();
        let d = format!("{e:?}");
        assert!(!d.contains("jan"), "{d}");
        assert!(d.contains("example.nl"), "{d}");
    }

    #[test]
    fn serde_parses() {
        let e: Email = serde_json::from_str("\" A@B.NL\"").unwrap();
        assert_eq!(e.as_str(), "a@b.nl");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"a@b.nl\"");
    }
}
