//! Random secrets for API tokens, session ids, reset links and the like.
//!
//! Secrets are 256 bits from the OS RNG, so they are stored as a plain SHA-256 digest: a slow
//! password hash (Argon2) only helps against guessable inputs, and a 2^256 search space cannot be
//! brute-forced. A fast hash also lets every request look its token up by digest.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::CryptoError;

/// A new 256-bit secret, base64url without padding (43 characters).
pub fn generate_secret() -> String {
    let bytes = Zeroizing::new(random_bytes::<32>());
    URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// SHA-256 digest of a secret, for storage and lookup.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two byte strings in time independent of their contents (lengths may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `N` bytes from the OS RNG.
///
/// # Panics
/// If the operating system's RNG fails. Carrying on would hand out predictable secrets, so this
/// is treated as fatal; use [`try_random_bytes`] to handle it instead.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    match try_random_bytes() {
        Ok(bytes) => bytes,
        Err(_) => panic!("operating system random number generator failed"),
    }
}

/// `N` bytes from the OS RNG, or [`CryptoError::Rng`].
pub fn try_random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| CryptoError::Rng)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_43_char_base64url() {
        let s = generate_secret();
        assert_eq!(s.len(), 43);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&s).unwrap().len(), 32);
        assert_ne!(s, generate_secret());
    }

    #[test]
    fn hash_secret_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex::encode(hash_secret("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn random_bytes_differ() {
        let a: [u8; 32] = random_bytes();
        let b: [u8; 32] = random_bytes();
        assert_ne!(a, b);
        assert_eq!(random_bytes::<0>(), [0u8; 0]);
    }
}
