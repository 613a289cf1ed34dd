//! Signed tree heads for the audit log, in the C2SP `tlog-checkpoint` format wrapped in a C2SP
//! `signed-note` with an Ed25519 signature.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//!
//! — <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>
//! ```
//!
//! The signature covers the note text: every line above the blank line, each ending in `\n`.
//! The key hash is the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`, so
//! verifiers can pick out their key's signature among others. Keys can be exchanged as
//! verifier-key strings (`<name>+<hex key hash>+<base64(0x01 || public key)>`), the format used
//! by Go's `golang.org/x/mod/sumdb/note` and other transparency-log tooling.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::merkle::Hash;
use crate::token::try_random_bytes;

/// Algorithm byte for Ed25519 in signed-note key ids and verifier keys.
const ALG_ED25519: u8 = 0x01;
/// Em dash and space that start every signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// Bound on signature lines parsed, so a hostile note cannot make us work forever.
const MAX_SIGNATURES: usize = 100;

/// A parsed, verified checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity, e.g. `kluis.example.org/audit/<tenant>`. Callers must check it is the log
    /// they expect.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 root hash of the tree.
    pub root: Hash,
    /// Extension lines after the root hash (empty for checkpoints this crate signs).
    pub extensions: Vec<String>,
}

/// Whether `name` is a valid signed-note key name: non-empty, no whitespace, no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Verifies an Ed25519 signature, strictly: rejects non-canonical encodings, small-order keys
/// and R values, and signatures of the wrong length (RFC 8032 §5.1.7 plus malleability checks).
pub(crate) fn ed25519_verify(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(&sig)).is_ok()
}

/// Parses an Ed25519 public key.
pub(crate) fn ed25519_public_key(bytes: &[u8; 32]) -> Result<VerifyingKey, CryptoError> {
    VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

/// Signs checkpoints with an Ed25519 key under a signed-note key name. The private key is wiped
/// on drop; `Debug` shows only the public verifier key.
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
}

impl CheckpointSigner {
    /// A signer with a fresh random key.
    pub fn generate(name: &str) -> Result<Self, CryptoError> {
        let seed = Zeroizing::new(try_random_bytes::<32>()?);
        Self::from_bytes(name, &seed)
    }

    /// A signer from a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_bytes(name: &str, seed: &[u8; 32]) -> Result<Self, CryptoError> {
        if !is_valid_name(name) {
            return Err(CryptoError::InvalidKeyName);
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// The 32-byte seed, for storage under encryption only.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CheckpointVerifier {
        let key = self.key.verifying_key();
        CheckpointVerifier {
            key_hash: key_hash(&self.name, key.as_bytes()),
            name: self.name.clone(),
            key,
        }
    }

    /// Produces a signed checkpoint note. Fails only if `origin` is empty or contains a newline
    /// or other control character, which would make the note ambiguous.
    pub fn sign(&self, origin: &str, size: u64, root: &Hash) -> Result<String, CryptoError> {
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(CryptoError::MalformedCheckpoint("invalid origin"));
        }
        let text = format!("{origin}\n{size}\n{}\n", STANDARD.encode(root));
        let signature = self.key.sign(text.as_bytes()).to_bytes();
        let verifier = self.verifier();
        let mut sig_bytes = Vec::with_capacity(4 + 64);
        sig_bytes.extend_from_slice(&verifier.key_hash);
        sig_bytes.extend_from_slice(&signature);
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(sig_bytes)
        ))
    }
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("verifier", &self.verifier().to_vkey())
            .finish()
    }
}

/// A public key that checkpoint signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    key_hash: [u8; 4],
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// A verifier for `name` and a raw Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Self, CryptoError> {
        if !is_valid_name(name) {
            return Err(CryptoError::InvalidKeyName);
        }
        let key = ed25519_public_key(public_key)?;
        Ok(Self {
            name: name.to_owned(),
            key_hash: key_hash(name, public_key),
            key,
        })
    }

    /// Parses a verifier key string `<name>+<hex key hash>+<base64(0x01 || public key)>`,
    /// checking that the key hash matches.
    pub fn from_vkey(vkey: &str) -> Result<Self, CryptoError> {
        // The base64 key may itself contain '+': split at the first two separators only (as
        // golang.org/x/mod/sumdb/note does).
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::InvalidPublicKey);
        };
        let key = STANDARD
            .decode(key_b64)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let Some((&ALG_ED25519, key)) = key.split_first() else {
            return Err(CryptoError::InvalidPublicKey);
        };
        let key: [u8; 32] = key.try_into().map_err(|_| CryptoError::InvalidPublicKey)?;
        let verifier = Self::new(name, &key)?;
        if hash_hex.len() != 8 || hash_hex != hex::encode(verifier.key_hash) {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(verifier)
    }

    /// The verifier key string (see [`CheckpointVerifier::from_vkey`]).
    pub fn to_vkey(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash),
            STANDARD.encode(key)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key hash that identifies this key in signature lines.
    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CheckpointVerifier")
            .field(&self.to_vkey())
            .finish()
    }
}

/// Verifies a signed checkpoint note against `verifier` and parses it.
///
/// Follows the signed-note rules: the note must be UTF-8 with no control characters other than
/// newlines, and end in a blank line followed by well-formed signature lines (at most 100).
/// Signatures by other keys are ignored, but one carrying `verifier`'s name and key hash must be
/// present and valid: a bad signature from our key is an error even if another line is good.
/// The checkpoint body must have a non-empty origin, a decimal size without leading zeros, a
/// base64 32-byte root hash, and optional non-empty extension lines.
///
/// The caller must still check [`Checkpoint::origin`] against the log it expects.
pub fn verify(note: &str, verifier: &CheckpointVerifier) -> Result<Checkpoint, CryptoError> {
    let malformed = CryptoError::MalformedCheckpoint;
    if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(malformed("control character in note"));
    }
    let split = note.rfind("\n\n").ok_or(malformed("no signature block"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(malformed("signature block must end with a newline"));
    };

    let mut verified = false;
    for (count, line) in sigs.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(malformed("signature line must start with an em dash"))?;
        let (name, b64) = line
            .split_once(' ')
            .ok_or(malformed("signature line needs a name and a signature"))?;
        let sig = STANDARD
            .decode(b64)
            .map_err(|_| malformed("signature is not base64"))?;
        if !is_valid_name(name) || sig.len() < 5 {
            return Err(malformed("invalid signature line"));
        }
        let (hash, sig) = sig.split_at(4);
        if name != verifier.name || hash != verifier.key_hash {
            continue; // Another key's signature (a witness, say): not ours to judge.
        }
        if !ed25519_verify(&verifier.key, text.as_bytes(), sig) {
            return Err(CryptoError::BadSignature);
        }
        verified = true;
    }
    if !verified {
        return Err(CryptoError::NoValidSignature);
    }
    parse_body(text)
}

/// Algorithm byte of C2SP `cosignature/v1` (Ed25519 timestamped cosignatures) in key ids.
const ALG_COSIGNATURE_V1: u8 = 0x04;

fn cosig_key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_COSIGNATURE_V1]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// What a `cosignature/v1` signature covers: a header with the time, then the checkpoint text.
fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// The note text of a signed note (every line up to and including the blank line's `\n`
/// predecessor), or an error if it has no signature block.
fn note_text(note: &str) -> Result<&str, CryptoError> {
    let split = note
        .rfind("\n\n")
        .ok_or(CryptoError::MalformedCheckpoint("no signature block"))?;
    Ok(&note[..=split])
}

/// A witness's key: signs C2SP `tlog-cosignature` (`cosignature/v1`) lines over checkpoints it
/// has checked. The private key is wiped on drop.
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner from a 32-byte Ed25519 seed.
    pub fn from_bytes(name: &str, seed: &[u8; 32]) -> Result<Self, CryptoError> {
        if !is_valid_name(name) {
            return Err(CryptoError::InvalidKeyName);
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// A cosigner with a fresh random key.
    pub fn generate(name: &str) -> Result<Self, CryptoError> {
        let seed = Zeroizing::new(try_random_bytes::<32>()?);
        Self::from_bytes(name, &seed)
    }

    /// The 32-byte seed, for storage in a private file only.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The verifier key string `<name>+<hex key id>+<base64(0x04 || public key)>`.
    pub fn vkey(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut key = Vec::with_capacity(33);
        key.push(ALG_COSIGNATURE_V1);
        key.extend_from_slice(&public);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(cosig_key_hash(&self.name, &public)),
            STANDARD.encode(key)
        )
    }

    /// The signature line (with its trailing newline) cosigning `note`'s checkpoint at `time`
    /// (seconds since the epoch). The caller must have verified the note and its consistency.
    pub fn cosign(&self, note: &str, time: u64) -> Result<String, CryptoError> {
        let text = note_text(note)?;
        let sig = self
            .key
            .sign(cosigned_message(time, text).as_bytes())
            .to_bytes();
        let public = self.key.verifying_key().to_bytes();
        let mut bytes = Vec::with_capacity(4 + 8 + 64);
        bytes.extend_from_slice(&cosig_key_hash(&self.name, &public));
        bytes.extend_from_slice(&time.to_be_bytes());
        bytes.extend_from_slice(&sig);
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(bytes)
        ))
    }
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cosigner").field(&self.vkey()).finish()
    }
}

/// A witness's public key, for checking its cosignatures.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_hash: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x04 || public key)>`, checking the key id.
    pub fn from_vkey(vkey: &str) -> Result<Self, CryptoError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::InvalidPublicKey);
        };
        let key = STANDARD
            .decode(key_b64)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let Some((&ALG_COSIGNATURE_V1, key)) = key.split_first() else {
            return Err(CryptoError::InvalidPublicKey);
        };
        let key: [u8; 32] = key.try_into().map_err(|_| CryptoError::InvalidPublicKey)?;
        if !is_valid_name(name) {
            return Err(CryptoError::InvalidKeyName);
        }
        let key_hash = cosig_key_hash(name, &key);
        if hash_hex.len() != 8 || hash_hex != hex::encode(key_hash) {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_hash,
            key: ed25519_public_key(&key)?,
        })
    }

    /// The witness's key name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CosignatureVerifier")
            .field(&self.name)
            .finish()
    }
}

/// Finds `witness`'s cosignature on `note` and checks it: returns the checkpoint and the
/// cosignature's time. The log's own signature is NOT checked here (use [`verify`] too).
pub fn verify_cosignature(
    note: &str,
    witness: &CosignatureVerifier,
) -> Result<(Checkpoint, u64), CryptoError> {
    let text = note_text(note)?;
    let sigs = &note[text.len() + 1..];
    let mut found = None;
    for line in sigs.lines().take(MAX_SIGNATURES) {
        let Some((name, b64)) = line
            .strip_prefix(SIG_PREFIX)
            .and_then(|l| l.split_once(' '))
        else {
            continue;
        };
        if name != witness.name {
            continue;
        }
        let Ok(sig) = STANDARD.decode(b64) else {
            continue;
        };
        if sig.len() != 4 + 8 + 64 || sig[..4] != witness.key_hash {
            continue;
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&sig[4..12]);
        let time = u64::from_be_bytes(time);
        if !ed25519_verify(
            &witness.key,
            cosigned_message(time, text).as_bytes(),
            &sig[12..],
        ) {
            return Err(CryptoError::BadSignature);
        }
        found = Some(time);
    }
    let time = found.ok_or(CryptoError::NoValidSignature)?;
    Ok((parse_body(text)?, time))
}

/// Parses a checkpoint's body without checking any signature (for a witness's 409 handling
/// and the like: callers verify the signature separately).
pub fn parse_unverified(note: &str) -> Result<Checkpoint, CryptoError> {
    parse_body(note_text(note)?)
}

fn parse_body(text: &str) -> Result<Checkpoint, CryptoError> {
    let malformed = CryptoError::MalformedCheckpoint;
    // `text` ends with '\n', so the last split element is empty.
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop();
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(malformed("checkpoint needs origin, size and root lines"));
    };
    if origin.is_empty() {
        return Err(malformed("empty origin"));
    }
    let size_ok = !size.is_empty()
        && size.bytes().all(|b| b.is_ascii_digit())
        && (*size == "0" || !size.starts_with('0'));
    let size: u64 = size.parse().ok().filter(|_| size_ok).ok_or(malformed(
        "tree size must be a decimal number without leading zeros",
    ))?;
    let root: Hash = STANDARD
        .decode(root)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or(malformed("root hash must be base64 of 32 bytes"))?;
    if extensions.iter().any(|l| l.is_empty()) {
        return Err(malformed("empty extension line"));
    }
    Ok(Checkpoint {
        origin: (*origin).to_owned(),
        size,
        root,
        extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ORIGIN: &str = "kluis.example/audit";

    fn signer() -> CheckpointSigner {
        CheckpointSigner::from_bytes("kluis.example/audit", &[3; 32]).unwrap()
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let s = signer();
        let root = [0xAB; 32];
        let note = s.sign(ORIGIN, 42, &root).unwrap();
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], ORIGIN);
        assert_eq!(lines[1], "42");
        assert_eq!(lines[2], STANDARD.encode(root));
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} kluis.example/audit "));
        let cp = verify(&note, &s.verifier()).unwrap();
        assert_eq!(
            cp,
            Checkpoint {
                origin: ORIGIN.into(),
                size: 42,
                root,
                extensions: vec![]
            }
        );
    }

    #[test]
    fn vkey_round_trips_when_the_key_contains_plus() {
        // Standard base64 uses '+': the parser must split only at the first two separators.
        for _ in 0..64 {
            let s = CheckpointSigner::generate("kluis-audit").unwrap();
            let vkey = s.verifier().to_vkey();
            let back = CheckpointVerifier::from_vkey(&vkey).unwrap();
            assert_eq!(back.public_key(), s.verifier().public_key(), "{vkey}");
        }
    }

    #[test]
    fn key_hash_and_vkey_match_go_note_format() {
        // Verifier key from golang.org/x/mod/sumdb/note's documentation example.
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let v = CheckpointVerifier::from_vkey(vkey).unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_hash(), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(v.to_vkey(), vkey);
        // Tampered hash or algorithm byte is refused.
        assert!(
            CheckpointVerifier::from_vkey(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(
            CheckpointVerifier::from_vkey(
                "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
    }

    #[test]
    fn verifies_go_note_documentation_example() {
        // Signed note from golang.org/x/mod/sumdb/note's package documentation.
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        // Signature checks out, but the text is not a checkpoint.
        assert!(matches!(
            verify(note, &CheckpointVerifier::from_vkey(vkey).unwrap()),
            Err(CryptoError::MalformedCheckpoint(_))
        ));
        let tampered = note.replacen("answer", "Answer", 1);
        assert!(matches!(
            verify(&tampered, &CheckpointVerifier::from_vkey(vkey).unwrap()),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn tampering_and_wrong_keys_rejected() {
        let s = signer();
        let note = s.sign(ORIGIN, 42, &[1; 32]).unwrap();
        let v = s.verifier();
        assert!(matches!(
            verify(&note.replacen("\n42\n", "\n43\n", 1), &v),
            Err(CryptoError::BadSignature)
        ));
        let other = CheckpointSigner::from_bytes("kluis.example/audit", &[4; 32]).unwrap();
        assert!(matches!(
            verify(&note, &other.verifier()),
            Err(CryptoError::NoValidSignature)
        ));
        let renamed = CheckpointVerifier::new("someone-else", &v.public_key()).unwrap();
        assert!(matches!(
            verify(&note, &renamed),
            Err(CryptoError::NoValidSignature)
        ));
    }

    #[test]
    fn other_signers_are_ignored_but_ours_must_be_good() {
        let s = signer();
        let witness = CheckpointSigner::from_bytes("witness.example", &[5; 32]).unwrap();
        let note = s.sign(ORIGIN, 7, &[2; 32]).unwrap();
        let witness_note = witness.sign(ORIGIN, 7, &[2; 32]).unwrap();
        let witness_line = witness_note.lines().last().unwrap();
        let cosigned = format!("{note}{witness_line}\n");
        assert_eq!(verify(&cosigned, &s.verifier()).unwrap().size, 7);
        assert_eq!(verify(&cosigned, &witness.verifier()).unwrap().size, 7);
        // A second, bad signature line from our key fails the whole note.
        let our_line = note.lines().last().unwrap();
        let bad_line = our_line.replacen("\u{2014} kluis.example/audit ", "", 1);
        let mut sig = STANDARD.decode(bad_line).unwrap();
        sig[10] ^= 1;
        let forged = format!(
            "{note}\u{2014} kluis.example/audit {}\n",
            STANDARD.encode(sig)
        );
        assert!(matches!(
            verify(&forged, &s.verifier()),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn malformed_notes_rejected() {
        let s = signer();
        let v = s.verifier();
        let good = s.sign(ORIGIN, 42, &[1; 32]).unwrap();
        let no_trailing_newline = good.trim_end_matches('\n').to_owned();
        let control = good.replacen("audit", "au\rdit", 1);
        let no_blank = good.replacen("\n\n", "\n", 1);
        let hyphen = good.replacen('\u{2014}', "-", 1);
        for bad in [
            no_trailing_newline,
            control,
            no_blank,
            hyphen,
            String::new(),
        ] {
            assert!(verify(&bad, &v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn body_rules() {
        // Signed with our own key so only the body rules are under test.
        let s = signer();
        let v = s.verifier();
        let sign_text = |text: &str| {
            let sig = s.key.sign(text.as_bytes()).to_bytes();
            let mut bytes = v.key_hash().to_vec();
            bytes.extend_from_slice(&sig);
            format!("{text}\n\u{2014} {} {}\n", v.name(), STANDARD.encode(bytes))
        };
        let root = STANDARD.encode([9u8; 32]);
        let ok = sign_text(&format!("o\n0\n{root}\n"));
        assert_eq!(verify(&ok, &v).unwrap().size, 0);
        let ext = verify(&sign_text(&format!("o\n5\n{root}\nextra line\n")), &v).unwrap();
        assert_eq!(ext.extensions, vec!["extra line".to_owned()]);
        for body in [
            format!("\n5\n{root}\n"),
            format!("o\n05\n{root}\n"),
            format!("o\n+5\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n5\n{}\n", STANDARD.encode([9u8; 31])),
            "o\n5\n".to_owned(),
        ] {
            assert!(
                matches!(
                    verify(&sign_text(&body), &v),
                    Err(CryptoError::MalformedCheckpoint(_))
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn names_and_origins_validated() {
        assert!(CheckpointSigner::from_bytes("a b", &[1; 32]).is_err());
        assert!(CheckpointSigner::from_bytes("a+b", &[1; 32]).is_err());
        assert!(CheckpointSigner::from_bytes("", &[1; 32]).is_err());
        assert!(signer().sign("two\nlines", 1, &[0; 32]).is_err());
        assert!(signer().sign("", 1, &[0; 32]).is_err());
    }

    #[test]
    fn seed_round_trip_and_debug() {
        let s = CheckpointSigner::generate("log").unwrap();
        let again = CheckpointSigner::from_bytes("log", &s.to_bytes()).unwrap();
        assert_eq!(s.verifier(), again.verifier());
        assert!(format!("{s:?}").contains(&s.verifier().to_vkey()));
    }

    #[test]
    fn cosignatures_round_trip_and_bind_the_checkpoint() {
        let s = signer();
        let w = Cosigner::from_bytes("witness.example", &[7; 32]).unwrap();
        let wv = CosignatureVerifier::from_vkey(&w.vkey()).unwrap();
        let note = s.sign(ORIGIN, 9, &[4; 32]).unwrap();
        let line = w.cosign(&note, 1_700_000_000).unwrap();
        let cosigned = format!("{note}{line}");
        let (cp, time) = verify_cosignature(&cosigned, &wv).unwrap();
        assert_eq!((cp.size, time), (9, 1_700_000_000));
        // The log's signature still verifies with the cosignature appended.
        assert_eq!(verify(&cosigned, &s.verifier()).unwrap().size, 9);
        // The cosignature does not carry over to another checkpoint.
        let other = s.sign(ORIGIN, 10, &[4; 32]).unwrap();
        assert!(verify_cosignature(&format!("{other}{line}"), &wv).is_err());
        // Nor is the log's own key a witness key (algorithm byte differs).
        assert!(CosignatureVerifier::from_vkey(&s.verifier().to_vkey()).is_err());
        assert!(matches!(
            verify_cosignature(&note, &wv),
            Err(CryptoError::NoValidSignature)
        ));
    }
}
