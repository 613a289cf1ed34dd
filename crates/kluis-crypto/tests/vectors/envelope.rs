//! Envelope encryption misuse: moved, tampered, and unknown-key ciphertexts; key-file modes.

use std::os::unix::fs::PermissionsExt;

use kluis_crypto::CryptoError;
use kluis_crypto::envelope::{
    DataKey, KeyRing, Kms, LocalKms, SealContext, open, seal, tenant_wrap_aad,
};

const CTX: SealContext<'static> = SealContext {
    tenant: [0x11; 16],
    table: "contacts",
    column: "email",
    record: [0x22; 16],
};

#[test]
fn moved_ciphertext_fails() {
    let key = DataKey::generate(1).unwrap();
    let sealed = seal(&key, &CTX, b"alice@example.com").unwrap();
    let moved = [
        SealContext {
            record: [0x23; 16],
            ..CTX
        },
        SealContext {
            column: "phone",
            ..CTX
        },
        SealContext {
            table: "companies",
            ..CTX
        },
        SealContext {
            tenant: [0x12; 16],
            ..CTX
        },
    ];
    for ctx in moved {
        assert!(
            matches!(open(&key, &ctx, &sealed), Err(CryptoError::Decrypt)),
            "{ctx:?}"
        );
    }
    assert_eq!(open(&key, &CTX, &sealed).unwrap(), b"alice@example.com");
}

#[test]
fn every_flipped_bit_fails() {
    let key = DataKey::generate(1).unwrap();
    let sealed = seal(&key, &CTX, b"secret").unwrap();
    for i in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(open(&key, &CTX, &bad).is_err(), "bit {i}");
    }
}

#[test]
fn unknown_key_version_fails() {
    let ring = KeyRing::new(DataKey::generate(1).unwrap());
    let other = DataKey::generate(2).unwrap();
    let sealed = seal(&other, &CTX, b"x").unwrap();
    assert!(matches!(
        open(&ring, &CTX, &sealed),
        Err(CryptoError::UnknownKeyVersion(2))
    ));
    // Same version number, different key: authentication fails.
    let impostor = DataKey::generate(1).unwrap();
    let sealed = seal(&impostor, &CTX, b"x").unwrap();
    assert!(matches!(
        open(&ring, &CTX, &sealed),
        Err(CryptoError::Decrypt)
    ));
}

#[test]
fn local_kms_creates_0600_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    let kms = LocalKms::create_or_load(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = LocalKms::create_or_load(&path).unwrap();
    assert_eq!(kms.key_id(), again.key_id());

    let dek = DataKey::generate(3).unwrap();
    let aad = tenant_wrap_aad(&[7; 16]);
    let wrapped = kms.wrap(&dek, &aad).unwrap();
    let back = again.unwrap(&wrapped, &aad).unwrap();
    assert_eq!(back.version(), 3);
    assert_eq!(back.expose_secret(), dek.expose_secret());
}

#[test]
fn key_file_with_loose_mode_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    LocalKms::create_or_load(&path).unwrap();
    let key_text = std::fs::read_to_string(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o700] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = LocalKms::create_or_load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CryptoError::KeyFile(_)));
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        assert!(!msg.contains(key_text.trim()), "error leaks the key");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(LocalKms::create_or_load(&path).is_ok());
}

#[test]
fn key_file_with_garbage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    std::fs::write(&path, "not a key\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        LocalKms::create_or_load(&path),
        Err(CryptoError::KeyFile(_))
    ));
}
