//! Kluis cryptography. No database or network IO: this crate glues RustCrypto primitives (and
//! `ring`'s AES-256-GCM) together and never implements a primitive itself.
//!
//! | module | what |
//! |---|---|
//! | [`password`] | password policy, common-password list, Argon2id hashing |
//! | [`token`] | random API/session secrets and their SHA-256 digests |
//! | [`envelope`] | AES-256-GCM envelope encryption bound to tenant/table/column/record; DEK wrapping; [`envelope::Kms`] providers |
//! | [`blind_index`] | HMAC-SHA256 blind indexes for exact-match search on encrypted columns |
//! | [`merkle`] | RFC 6962 Merkle trees with inclusion and consistency proofs |
//! | [`checkpoint`] | Ed25519-signed C2SP checkpoints (signed tree heads) |
//! | [`filestream`] | files: chunked AES-256-GCM (STREAM) bound to tenant, file, version and position |
//! | [`totp`] | RFC 6238 one-time codes, `otpauth://` URIs and their QR code (SVG), recovery codes |
//!
//! ```
//! use kluis_crypto::envelope::{DataKey, SealContext, open, seal};
//!
//! let key = DataKey::generate(1)?;
//! let ctx = SealContext { tenant: [1; 16], table: "contacts", column: "email", record: [2; 16] };
//! let sealed = seal(&key, &ctx, b"alice@example.com")?;
//! assert_eq!(open(&key, &ctx, &sealed)?, b"alice@example.com");
//! # Ok::<(), kluis_crypto::CryptoError>(())
//! ```

mod aead;
pub mod blind_index;
pub mod checkpoint;
mod encoding;
pub mod envelope;
mod error;
pub mod filestream;
#[doc(hidden)]
pub mod hazmat;
mod mac;
pub mod merkle;
pub mod password;
pub mod spool;
pub mod token;
pub mod totp;

pub use error::CryptoError;
pub use password::{PasswordPolicy, PolicyViolation};
