//! AES-256-GCM with 96-bit nonces and 128-bit tags: the one AEAD this crate uses, shared by
//! envelope encryption and key wrapping.
//!
//! The primitive is `ring`'s (`ring::aead::AES_256_GCM`): BoringSSL's AES-NI/VAES + CLMUL
//! assembly, with a constant-time fallback on CPUs without them. The ciphertext format is plain
//! AES-GCM (ciphertext || 16-byte tag), so values sealed by the earlier RustCrypto `aes-gcm`
//! code open unchanged (known-answer tests in `envelope` and the Wycheproof vectors).
//!
//! Key material: the raw 32-byte keys live in types that wipe themselves on drop
//! (`DataKey`, `Kek`). The expanded key ring builds from them (AES round keys and the GHASH
//! key table inside `ring::aead::LessSafeKey`) is *not* wiped when freed: ring implements no
//! `Zeroize`/`Drop` for it and exposes no access to its bytes (and this workspace forbids
//! `unsafe`). To keep that residue small, a data key's expanded key is built once, boxed and
//! cached with it (`envelope::DataKey`), instead of once per call on the stack; key wrapping
//! (rare) builds a short-lived one per call.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::CryptoError;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// An expanded AES-256-GCM key (see the module note on zeroization).
#[derive(Clone)]
pub(crate) struct Aes256GcmKey(LessSafeKey);

impl Aes256GcmKey {
    /// Expands `key`. Fails only if ring refuses the key (it cannot for 32 bytes).
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Result<Self, CryptoError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// Encrypts `in_out` in place and returns the tag.
    ///
    /// The caller must never reuse a nonce under the same key: GCM nonce reuse reveals the
    /// authentication key. Production paths draw the nonce from the OS RNG.
    pub(crate) fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            // Only reachable for plaintexts over 64 GiB.
            .map_err(|_| CryptoError::Encrypt)?;
        tag.as_ref().try_into().map_err(|_| CryptoError::Encrypt)
    }

    /// Checks `tag` and decrypts `in_out` in place. On failure `in_out` is zeroed (ring wipes
    /// the unauthenticated plaintext) and the error is the opaque [`CryptoError::Decrypt`].
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                in_out,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Decrypt)
    }
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
    let cipher = Aes256GcmKey::new(key).map_err(|_| CryptoError::Encrypt)?;
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = cipher.seal_in_place(nonce, aad, &mut out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts ciphertext || tag; any failure (short input, wrong key, nonce, AAD, or tampering) is
/// the same opaque [`CryptoError::Decrypt`].
pub(crate) fn open_with_nonce(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (ciphertext, tag) = ciphertext_and_tag
        .split_last_chunk::<TAG_LEN>()
        .ok_or(CryptoError::Decrypt)?;
    let cipher = Aes256GcmKey::new(key).map_err(|_| CryptoError::Decrypt)?;
    let mut plaintext = ciphertext.to_vec();
    cipher.open_in_place(nonce, aad, &mut plaintext, tag)?;
    Ok(plaintext)
}
