//! Kluis cryptography: password policy and hashing, API/session token secrets, envelope
//! encryption with key providers, blind indexes, and RFC 6962 Merkle audit-log primitives.
//!
//! This crate does no database or network IO. It glues RustCrypto primitives together; it never
//! implements a primitive itself.

mod aead;
pub mod blind_index;
pub mod envelope;
mod error;
#[doc(hidden)]
pub mod hazmat;
mod mac;
pub mod password;
pub mod token;

pub use error::CryptoError;
pub use password::{PasswordPolicy, PolicyViolation};
