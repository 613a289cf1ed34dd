//! Argon2id password hashing (OWASP's recommended m=19 MiB, t=2, p=1).

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{Error as PhcError, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::CryptoError;
use crate::token::try_random_bytes;

/// Argon2id memory cost in KiB.
pub const ARGON2_M_KIB: u32 = 19456;
/// Argon2id iterations.
pub const ARGON2_T: u32 = 2;
/// Argon2id parallelism.
pub const ARGON2_P: u32 = 1;

/// Longest password (in UTF-8 bytes) the hash functions accept: the policy's 1024-character cap
/// at four bytes per character. Bounds work done on attacker-supplied input.
pub const MAX_PASSWORD_BYTES: usize = 4096;

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// Stored hashes above these costs are refused rather than verified: a planted hash with
/// m=4 GiB would otherwise turn one login into a denial of service.
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 16;
const MAX_P: u32 = 16;
const ARGON2_VERSION_19: u32 = 0x13;

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(OUTPUT_LEN))
        .map_err(|_| CryptoError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with Argon2id and a fresh random 16-byte salt, returning the PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CryptoError::PasswordTooLong);
    }
    let salt: [u8; SALT_LEN] = try_random_bytes()?;
    let hash = hasher()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| CryptoError::Hashing)?;
    Ok(hash.to_string())
}

/// Verifies `password` against a stored PHC string.
///
/// Returns `Ok(false)` on mismatch (and for passwords over [`MAX_PASSWORD_BYTES`], which can never
/// have been hashed). Returns `Err` when the stored hash is malformed, is not Argon2id v19, or has
/// parameters below the platform floor or above a sanity cap: such a hash is a configuration or
/// integrity problem, never a "wrong password".
pub fn verify_password(password: &str, phc: &str) -> Result<bool, CryptoError> {
    let hash = parse_and_vet(phc)?;
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    // The crate's verifier takes parameters from the parsed hash, which we have just vetted.
    match hasher()?.verify_password(password.as_bytes(), &hash) {
        Ok(()) => Ok(true),
        Err(PhcError::PasswordInvalid) => Ok(false),
        Err(_) => Err(CryptoError::Hashing),
    }
}

fn parse_and_vet(phc: &str) -> Result<PasswordHash, CryptoError> {
    let hash = PasswordHash::new(phc).map_err(|_| CryptoError::MalformedHash)?;
    if hash.algorithm.as_str() != Algorithm::Argon2id.as_str() {
        return Err(CryptoError::UnsupportedHashAlgorithm);
    }
    // v=16 (0x10) has a known weakness; a missing version means 0x10 too.
    if hash.version != Some(ARGON2_VERSION_19) {
        return Err(CryptoError::UnsupportedHashAlgorithm);
    }
    let params = Params::try_from(&hash).map_err(|_| CryptoError::MalformedHash)?;
    let (salt_len, out_len) = match (&hash.salt, &hash.hash) {
        (Some(salt), Some(out)) => (salt.len(), out.len()),
        _ => return Err(CryptoError::MalformedHash),
    };
    if params.m_cost() < ARGON2_M_KIB
        || params.t_cost() < ARGON2_T
        || params.p_cost() < ARGON2_P
        || salt_len < SALT_LEN
        || out_len < OUTPUT_LEN
    {
        return Err(CryptoError::WeakHashParameters);
    }
    if params.m_cost() > MAX_M_KIB || params.t_cost() > MAX_T || params.p_cost() > MAX_P {
        return Err(CryptoError::ExcessiveHashParameters);
    }
    Ok(hash)
}

/// Hash of a random throwaway password, made on first use of [`burn_verify`].
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let throwaway: [u8; 16] = try_random_bytes().ok()?;
    hash_password(&hex::encode(throwaway)).ok()
});

/// Spends the same time as [`verify_password`] against a real hash, and discards the result.
///
/// Call it when a login names an unknown account, so that response time does not reveal whether
/// the account exists. The dummy hash is built on the first call (which therefore costs two
/// hashes); call once at startup to avoid that outlier.
pub fn burn_verify(password: &str) {
    if let Some(dummy) = DUMMY_HASH.as_deref() {
        // black_box keeps the optimiser from discarding the unused computation.
        std::hint::black_box(verify_password(password, dummy).ok());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_phc_with_platform_params() {
        let phc = hash_password("Tr0mbone-Lantern").unwrap();
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "unexpected PHC prefix"
        );
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 16);
        assert_eq!(parsed.hash.unwrap().len(), 32);
        // Fresh salt each time.
        assert_ne!(phc, hash_password("Tr0mbone-Lantern").unwrap());
    }

    #[test]
    fn verify_true_and_false() {
        let phc = hash_password("Tr0mbone-Lantern").unwrap();
        assert!(verify_password("Tr0mbone-Lantern", &phc).unwrap());
        assert!(!verify_password("tr0mbone-Lantern", &phc).unwrap());
        assert!(!verify_password("", &phc).unwrap());
        assert!(!verify_password(&"x".repeat(MAX_PASSWORD_BYTES + 1), &phc).unwrap());
    }

    /// Builds a syntactically valid PHC string with the given parameters (cheap for weak ones).
    fn phc_with(alg: Algorithm, version: Version, m: u32, t: u32, p: u32) -> String {
        let params = Params::new(m, t, p, Some(32)).unwrap();
        Argon2::new(alg, version, params)
            .hash_password_with_salt(b"pw", &[7u8; 16])
            .unwrap()
            .to_string()
    }

    #[test]
    fn weak_parameters_rejected() {
        for (m, t, p) in [(4096, 2, 1), (19455, 2, 1), (19456, 1, 1), (8, 1, 1)] {
            let phc = phc_with(Algorithm::Argon2id, Version::V0x13, m, t, p);
            assert!(
                matches!(
                    verify_password("pw", &phc),
                    Err(CryptoError::WeakHashParameters)
                ),
                "m={m} t={t} p={p}"
            );
        }
    }

    #[test]
    fn other_algorithms_and_versions_rejected() {
        for (alg, ver) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let phc = phc_with(alg, ver, 19456, 2, 1);
            assert!(matches!(
                verify_password("pw", &phc),
                Err(CryptoError::UnsupportedHashAlgorithm)
            ));
        }
        let bcrypt = "$2b$12$GhvMmNVjRW29ulnudl.LbuAnUtN/LRfe1JsBm1Xu6LE3059z5Tr8m";
        assert!(verify_password("pw", bcrypt).is_err());
    }

    #[test]
    fn short_salt_or_output_rejected() {
        let params = Params::new(19456, 2, 1, Some(16)).unwrap();
        let short_out = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw", &[7u8; 16])
            .unwrap()
            .to_string();
        assert!(matches!(
            verify_password("pw", &short_out),
            Err(CryptoError::WeakHashParameters)
        ));
        let params = Params::new(19456, 2, 1, Some(32)).unwrap();
        let short_salt = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw", &[7u8; 8])
            .unwrap()
            .to_string();
        assert!(matches!(
            verify_password("pw", &short_salt),
            Err(CryptoError::WeakHashParameters)
        ));
    }

    #[test]
    fn excessive_parameters_rejected_without_hashing() {
        // Hand-edited from a real hash: verifying would need 4 GiB.
        let phc = hash_password("pw").unwrap().replace("m=19456", "m=4194304");
        assert!(matches!(
            verify_password("pw", &phc),
            Err(CryptoError::ExcessiveHashParameters)
        ));
    }

    #[test]
    fn malformed_rejected() {
        for bad in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$argon2id$v=19$m=x$YWJj$YWJj",
        ] {
            assert!(verify_password("pw", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlong_password_not_hashed() {
        assert!(matches!(
            hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(CryptoError::PasswordTooLong)
        ));
    }

    #[test]
    fn burn_verify_runs() {
        assert!(DUMMY_HASH.is_some());
        burn_verify("anything");
    }
}
