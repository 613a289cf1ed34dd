//! Blind indexes: keyed hashes of normalised values, for exact-match lookup of encrypted columns.
//!
//! A value such as an e-mail address is stored sealed (see [`crate::envelope`]) and, next to it,
//! `blind_index(key, "contacts.email", normalise_email(value))`. Searching computes the same index
//! for the search term and compares.
//!
//! # What a blind index leaks
//!
//! Anyone who can read the index column (but not the key) learns, within one key and domain:
//! - **equality**: which rows hold the same normalised value;
//! - **frequency**: how often each (unknown) value occurs, which for skewed data (common first
//!   names, a company's shared phone number) can suggest what the value is.
//!
//! It does not reveal the value itself, nor link values across tenants (each tenant has its own
//! key) or across columns (the domain is part of the input). Someone holding the key can confirm
//! guesses, so the key must be protected like a data key. Only exact matches are supported: no
//! prefix, substring, or range search.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;
use crate::encoding::put_len_prefixed;
use crate::mac::hmac_sha256;
use crate::token::try_random_bytes;

/// A tenant's 256-bit blind-index key. Wiped on drop; `Debug` shows nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindIndexKey([u8; 32]);

impl BlindIndexKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(try_random_bytes()?))
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Like [`BlindIndexKey::from_bytes`], checking the length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| CryptoError::InvalidKeyLength)
    }

    /// The raw key, for wrapping or storage under encryption only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(..)")
    }
}

/// `HMAC-SHA256(key, u32be(len(domain)) || domain || u32be(len(value)) || value)`.
///
/// `domain` names the column (e.g. `"contacts.email"`) so equal values in different columns get
/// unrelated indexes; the length prefixes make the encoding unambiguous. Callers must normalise
/// `normalised_value` first (see [`normalise_email`], [`normalise_phone`]).
pub fn blind_index(key: &BlindIndexKey, domain: &str, normalised_value: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(8 + domain.len() + normalised_value.len());
    put_len_prefixed(&mut input, domain.as_bytes());
    put_len_prefixed(&mut input, normalised_value.as_bytes());
    hmac_sha256(&key.0, &[&input])
}

/// E-mail normalisation for indexing: surrounding whitespace removed, lower-cased.
pub fn normalise_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Phone normalisation to E.164 (`+<country code><number>`), assuming the Netherlands (+31) for
/// national numbers. See [`normalise_phone_with_country`].
pub fn normalise_phone(raw: &str) -> Option<String> {
    normalise_phone_with_country(raw, 31)
}

/// Phone normalisation to E.164, with `country_code` for national numbers.
///
/// Keeps only a leading `+` and digits (spaces, dashes, dots, brackets dropped), then:
/// - `+…` is already international; a `(0)` trunk marker (`+31 (0)6 …`) is dropped;
/// - `00…` is the international prefix: replaced by `+`;
/// - `0…` is a national number: the `0` is replaced by `+<country_code>`;
/// - anything else is taken to start with a country code.
///
/// Returns `None` unless the result has 7 to 15 digits (E.164 allows at most 15), or if the input
/// holds letters or a `+` other than at the start.
pub fn normalise_phone_with_country(raw: &str, country_code: u16) -> Option<String> {
    let raw = raw.trim().replace("(0)", "");
    let mut digits = String::with_capacity(raw.len());
    let mut international = false;
    for (i, c) in raw.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => international = true,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    let national = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("{country_code}{rest}")
    } else {
        digits
    };
    if !(7..=15).contains(&national.len()) || national.starts_with('0') {
        return None;
    }
    Some(format!("+{national}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key() -> BlindIndexKey {
        BlindIndexKey::from_bytes([7; 32])
    }

    #[test]
    fn deterministic_and_domain_separated() {
        let a = blind_index(&key(), "contacts.email", "a@example.com");
        assert_eq!(a, blind_index(&key(), "contacts.email", "a@example.com"));
        assert_ne!(a, blind_index(&key(), "users.email", "a@example.com"));
        assert_ne!(a, blind_index(&key(), "contacts.email", "b@example.com"));
        let other = BlindIndexKey::from_bytes([8; 32]);
        assert_ne!(a, blind_index(&other, "contacts.email", "a@example.com"));
        // Length prefixes: moving bytes between domain and value changes the index.
        assert_ne!(
            blind_index(&key(), "ab", "c"),
            blind_index(&key(), "a", "bc")
        );
    }

    #[test]
    fn matches_hmac_of_documented_encoding() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&14u32.to_be_bytes());
        msg.extend_from_slice(b"contacts.email");
        msg.extend_from_slice(&13u32.to_be_bytes());
        msg.extend_from_slice(b"a@example.com");
        assert_eq!(
            blind_index(&key(), "contacts.email", "a@example.com"),
            hmac_sha256(&[7; 32], &[&msg])
        );
    }

    #[test]
    fn email_normalisation() {
        assert_eq!(
            normalise_email("  Alice@Example.COM \n"),
            "alice@example.com"
        );
    }

    #[test]
    fn phone_normalisation() {
        let cases = [
            ("06 1234 5678", Some("+31612345678")),
            ("06-12345678", Some("+31612345678")),
            ("+31 6 12345678", Some("+31612345678")),
            ("+31 (0)6 1234 5678", Some("+31612345678")),
            ("0031 6 12345678", Some("+31612345678")),
            ("(020) 123 4567", Some("+31201234567")),
            ("+44 20 7946 0958", Some("+442079460958")),
            ("31612345678", Some("+31612345678")),
            ("", None),
            ("abc", None),
            ("06 1234 5678 ext 2", None),
            ("12+34567890", None),
            ("123", None),
            ("+1234567890123456", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise_phone(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(
            normalise_phone_with_country("030 123 4567", 32).as_deref(),
            Some("+32301234567")
        );
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key()), "BlindIndexKey(..)");
    }
}
