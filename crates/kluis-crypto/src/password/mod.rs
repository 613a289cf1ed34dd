//! Passwords: the composition policy, the common-password list, and Argon2id hashing.

mod common;
mod hashing;
mod policy;

pub use common::{common_password_count, is_common_password};
pub use hashing::{
    ARGON2_M_KIB, ARGON2_P, ARGON2_T, MAX_PASSWORD_BYTES, burn_verify, hash_password,
    verify_password,
};
pub use policy::{MAX_PASSWORD_CHARS, PasswordPolicy, PolicyViolation};
