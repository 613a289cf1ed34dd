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
}
