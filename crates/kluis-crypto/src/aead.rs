//! AES-256-GCM with 96-bit nonces and 128-bit tags: the one AEAD this crate uses, shared by
//! envelope encryption and key wrapping.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};

use crate::CryptoError;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// Borrows the key as the cipher's key type without copying it to an un-wiped temporary.
fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    let key: &Key<Aes256Gcm> = key.into();
    Aes256Gcm::new(key)
}

/// Encrypts with an explicit nonce, returning ciphertext || tag.
///
/// The caller must never reuse a nonce under the same key: GCM nonce reuse reveals the
/// authentication key. Production paths draw the nonce from the OS RNG.
pub(crate) fn seal_with_nonce(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = cipher(key);
    cipher
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Only reachable for plaintexts over 64 GiB.
        .map_err(|_| CryptoError::Encrypt)
}

/// Decrypts ciphertext || tag; any failure (short input, wrong key, nonce, AAD, or tampering) is
/// the same opaque [`CryptoError::Decrypt`].
pub(crate) fn open_with_nonce(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(CryptoError::Decrypt);
    }
    let cipher = cipher(key);
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}
