//! Known-answer and misuse tests through kluis-crypto's own wrappers.
//!
//! Test data lives in `testdata/` at the workspace root, copied with its licences from the
//! upstream projects (see `testdata/README.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The crate root is tests/vectors.rs, so submodule paths are spelled out.
#[path = "vectors/aes_gcm.rs"]
mod aes_gcm;
#[path = "vectors/ed25519.rs"]
mod ed25519;
#[path = "vectors/envelope.rs"]
mod envelope;
#[path = "vectors/hmac.rs"]
mod hmac;
#[path = "vectors/merkle.rs"]
mod merkle;
#[path = "vectors/pkcs11.rs"]
mod pkcs11;

use std::path::PathBuf;

/// Path of a file under the workspace's `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// Parses a JSON test-data file.
pub fn load_json(rel: &str) -> serde_json::Value {
    let path = testdata(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Hex field of a Wycheproof test case.
pub fn hex_field(case: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(case[name].as_str().unwrap()).unwrap()
}
