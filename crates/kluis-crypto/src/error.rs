//! The crate-wide error type.
//!
//! Messages never carry secret material (keys, plaintexts, passwords, hashes): they may end up in
//! logs.

/// Errors from this crate's cryptographic operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A stored password hash could not be parsed as an Argon2 PHC string.
    #[error("malformed password hash")]
    MalformedHash,
    /// A one-time-password secret, label or QR payload was refused (length, characters).
    #[error("invalid one-time-password parameters")]
    Otp,
    /// A stored password hash uses an algorithm other than Argon2id.
    #[error("unsupported password hash algorithm (only argon2id v19 is accepted)")]
    UnsupportedHashAlgorithm,
    /// A stored password hash has cost parameters (or salt/output sizes) below the platform floor.
    #[error("password hash parameters are below the required minimum")]
    WeakHashParameters,
    /// A stored password hash has cost parameters so high that verifying it would be a
    /// denial-of-service vector.
    #[error("password hash parameters exceed the supported maximum")]
    ExcessiveHashParameters,
    /// The password is longer than the hashing functions accept.
    #[error("password too long to hash")]
    PasswordTooLong,
    /// The password hashing function itself failed.
    #[error("password hashing failed")]
    Hashing,
    /// The operating system's random number generator failed.
    #[error("operating system random number generator failed")]
    Rng,
    /// Encryption failed (only possible for absurdly large inputs).
    #[error("encryption failed")]
    Encrypt,
    /// Authenticated decryption failed: wrong key, wrong context, or tampered data. Deliberately
    /// says no more.
    #[error("decryption failed: wrong key, wrong context, or tampered data")]
    Decrypt,
    /// A sealed or wrapped value is too short or otherwise structurally invalid.
    #[error("malformed ciphertext")]
    MalformedCiphertext,
    /// A sealed or wrapped value has a format version this build does not know.
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedFormat(u8),
    /// No key with the version named in a sealed value's header.
    #[error("unknown data key version {0}")]
    UnknownKeyVersion(u32),
    /// Key material of the wrong length.
    #[error("key has the wrong length")]
    InvalidKeyLength,
    /// Key material that is not valid base64.
    #[error("key is not valid base64")]
    InvalidKeyEncoding,
    /// A key file could not be created, read, or trusted. The message names the path and the
    /// problem (never the key).
    #[error("{0}")]
    KeyFile(String),
    /// A Merkle inclusion or consistency proof failed to verify; the reason is not secret.
    #[error("invalid Merkle proof: {0}")]
    InvalidProof(&'static str),
    /// A leaf index or tree size outside the tree.
    #[error("index outside the tree")]
    IndexOutOfRange,
    /// A signed-note key name is empty or contains whitespace or `+`.
    #[error("invalid key name")]
    InvalidKeyName,
    /// A public key or verifier key string could not be parsed.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A checkpoint or signed note is structurally invalid.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A signature from the expected key did not verify.
    #[error("checkpoint signature does not verify")]
    BadSignature,
    /// The note carries no signature from the expected key.
    #[error("checkpoint has no signature from the expected key")]
    NoValidSignature,
    /// A PKCS#11 module, token, login or key operation failed. The message names the operation,
    /// the PKCS#11 function and its return code (or the token/key label that was not found);
    /// never a PIN or key material.
    #[error("PKCS#11 key provider: {0}")]
    Hsm(String),
}
