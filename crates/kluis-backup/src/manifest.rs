//! Signed manifests: every backup (generation) is described by a chain of manifest parts, each
//! listing the objects written since the previous part with their size and the SHA-256 of
//! their stored (sealed) bytes.
//!
//! A part is authenticated twice: it is sealed under the generation's backup key (AES-GCM, so
//! only a holder of the KEK can produce one), and its body is signed with the installation's
//! Ed25519 audit key as a C2SP checkpoint note (`kluis_crypto::checkpoint`), so even a holder
//! of the KEK cannot forge a manifest without the signing key. Each part names the SHA-256 of
//! the previous part's stored bytes, so parts cannot be dropped from the middle or reordered;
//! object names carry sequence numbers bound into each object's AEAD, so objects cannot be
//! reordered either.

use kluis_crypto::checkpoint::{CheckpointSigner, CheckpointVerifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::seal::{BackupKey, SealError};

/// One object as recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// Stored (sealed) bytes.
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
}

impl Entry {
    pub fn of(name: &str, stored: &[u8]) -> Entry {
        Entry {
            name: name.to_owned(),
            size: stored.len() as u64,
            sha256: sha256_hex(stored),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The signed content of one manifest part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestBody {
    pub format: u32,
    pub repo_id: uuid::Uuid,
    pub generation: String,
    pub seq: u64,
    /// SHA-256 (hex) of the previous part's stored bytes; None for part 0.
    pub prev_sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub written: OffsetDateTime,
    pub entries: Vec<Entry>,
    /// Engine-specific facts (for SQLite: the snapshot's position and the last shipped time).
    pub info: serde_json::Value,
    /// True for the last part of a closed generation.
    pub last: bool,
    /// The signer's verifier key (`name+hash+key`), authenticated by the AEAD.
    pub signer: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// `ManifestBody` as JSON: the exact bytes that are signed.
    body: String,
    /// C2SP signed note over (origin, entry count, SHA-256 of `body`).
    note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("manifest {name}: {why}")]
    Invalid { name: String, why: String },
}

fn origin(repo_id: uuid::Uuid, generation: &str, seq: u64) -> String {
    format!("kluis-backup/{repo_id}/{generation}/{seq}")
}

/// The name of part `seq` under a generation's prefix.
pub fn part_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}/manifest/{seq:08}")
}

/// Seals and signs `body`; returns the bytes to store under `part_name(prefix, body.seq)`.
pub fn seal_part(
    key: &BackupKey,
    signer: &CheckpointSigner,
    name: &str,
    body: &ManifestBody,
) -> Result<Vec<u8>, ManifestError> {
    let invalid = |why: String| ManifestError::Invalid {
        name: name.to_owned(),
        why,
    };
    let body_json = serde_json::to_string(body).map_err(|e| invalid(e.to_string()))?;
    let root: [u8; 32] = Sha256::digest(body_json.as_bytes()).into();
    let note = signer
        .sign(
            &origin(body.repo_id, &body.generation, body.seq),
            body.entries.len() as u64,
            &root,
        )
        .map_err(|e| invalid(e.to_string()))?;
    let stored = serde_json::to_vec(&Stored {
        body: body_json,
        note,
    })
    .map_err(|e| invalid(e.to_string()))?;
    Ok(key.seal(name, &stored)?)
}

/// Opens a stored part and checks its signature. `trusted`: the installation's verifier; when
/// given, the part must be signed by it. Without it, the signer named in the (AEAD-authenticated)
/// body is used. `expect`: (repository id, generation, seq) it must claim.
pub fn open_part(
    key: &BackupKey,
    name: &str,
    stored: &[u8],
    trusted: Option<&CheckpointVerifier>,
    expect: (uuid::Uuid, &str, u64),
) -> Result<ManifestBody, ManifestError> {
    let invalid = |why: &str| ManifestError::Invalid {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let plain = key.open(name, stored)?;
    let stored: Stored = serde_json::from_slice(&plain).map_err(|_| invalid("malformed"))?;
    let body: ManifestBody =
        serde_json::from_str(&stored.body).map_err(|_| invalid("malformed body"))?;
    let embedded;
    let verifier = match trusted {
        Some(v) => {
            if v.to_vkey() != body.signer {
                return Err(invalid(
                    "signed by another key than this installation's audit signing key",
                ));
            }
            v
        }
        None => {
            embedded = CheckpointVerifier::from_vkey(&body.signer)
                .map_err(|_| invalid("bad signer key"))?;
            &embedded
        }
    };
    let cp = kluis_crypto::checkpoint::verify(&stored.note, verifier)
        .map_err(|_| invalid("bad signature"))?;
    let root: [u8; 32] = Sha256::digest(stored.body.as_bytes()).into();
    if cp.origin != origin(body.repo_id, &body.generation, body.seq)
        || cp.size != body.entries.len() as u64
        || cp.root != root
    {
        return Err(invalid("signature does not cover this body"));
    }
    if body.format != 1 || body.repo_id != expect.0 || body.generation != expect.1 {
        return Err(invalid("belongs to another repository or generation"));
    }
    if body.seq != expect.2 {
        return Err(invalid("out of order"));
    }
    Ok(body)
}
