//! Low-level entry points, public only so that `tests/vectors.rs` can drive the exact code paths
//! the safe API uses with published known-answer vectors (Wycheproof), which fix nonces and keys.
//!
//! Integration tests are a separate crate, so `pub(crate)` would not reach them; hence
//! `#[doc(hidden)] pub`. Not part of the supported API: an explicit nonce is a foot-gun (reusing
//! one under a GCM key reveals the authentication key). Use [`crate::envelope`] instead.

use crate::CryptoError;
use crate::aead;
use crate::checkpoint;
use crate::mac;

/// AES-256-GCM encryption with a caller-chosen nonce; returns ciphertext || tag.
pub fn aes256gcm_seal_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    aead::seal_with_nonce(key, nonce, aad, plaintext)
}

/// AES-256-GCM decryption of ciphertext || tag.
pub fn aes256gcm_open_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    aead::open_with_nonce(key, nonce, aad, ciphertext_and_tag)
}

/// HMAC-SHA256 of `msg` under `key` (any length): the function behind
/// [`crate::blind_index::blind_index`].
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    mac::hmac_sha256(key, &[msg])
}

/// Ed25519 verification exactly as [`crate::checkpoint::verify`] performs it (strict: rejects
/// malleable and small-order inputs). `Ok(())` only for a valid signature.
pub fn ed25519_verify(public_key: &[u8; 32], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let key = checkpoint::ed25519_public_key(public_key)?;
    if checkpoint::ed25519_verify(&key, msg, sig) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}
