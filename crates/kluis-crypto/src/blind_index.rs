//! Blind indexes: keyed hashes of normalised values, for exact-match lookup of encrypted columns.
//!
//! A value such as an e-mail address is stored sealed (see [`crate::envelope`]) and, next to it,
//! `blind_index(key, "contacts.email", email.as_str())` for a parsed `kluis_types::Email`. Searching computes the same index
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
/// `normalised_value` first (`kluis_types::Email` and `Phone` hold the normal forms).
pub fn blind_index(key: &BlindIndexKey, domain: &str, normalised_value: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(8 + domain.len() + normalised_value.len());
    put_len_prefixed(&mut input, domain.as_bytes());
    put_len_prefixed(&mut input, normalised_value.as_bytes());
    hmac_sha256(&key.0, &[&input])
}

/// Keyed digest of a stored state: `HMAC-SHA256(key, "kluis.state/v1" || lp(domain) ||
/// lp(part) ...)` with every part length-prefixed (u32be). Audit events carry it so the state
/// a change produced can later be compared with what the database holds, without putting
/// plaintext or guessable hashes of personal data in the log. The fixed tag keeps these
/// digests apart from blind indexes made with the same key.
pub fn state_digest(key: &BlindIndexKey, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut input =
        Vec::with_capacity(32 + domain.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
    input.extend_from_slice(b"kluis.state/v1");
    put_len_prefixed(&mut input, domain.as_bytes());
    for p in parts {
        put_len_prefixed(&mut input, p);
    }
    hmac_sha256(&key.0, &[&input])
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
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key()), "BlindIndexKey(..)");
    }
}
