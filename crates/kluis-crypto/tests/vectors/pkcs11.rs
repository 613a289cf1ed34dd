//! The PKCS#11 key provider against a real SoftHSM2 token.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module is loaded, and changing the environment of a
//! running multi-threaded test process is unsound (`std::env::set_var` is `unsafe` in edition
//! 2024, and unsafe code is forbidden here). So [`softhsm2`], the one test here that runs by
//! default, makes a private token directory and config, initialises two tokens with
//! `softhsm2-util`, and re-runs this test binary with `SOFTHSM2_CONF` set, selecting the
//! ignored tests in [`hsm`], which do the work in that child process (all sharing its one
//! token directory). Started any other way, those tests return at once.
//!
//! Without SoftHSM2 the test prints a skip notice, unless `KLUIS_REQUIRE_SOFTHSM=1` (CI), where
//! it fails.

use std::path::Path;
use std::process::Command;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Token shared by most tests; each test uses its own key labels.
const TOKEN: &str = "kluis-test";
/// Token only the wrong-PIN test logs into, so its first login attempt reaches the token.
const PIN_TOKEN: &str = "kluis-test-pin";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";
/// Set by [`softhsm2`] for the child process.
const CHILD_ENV: &str = "KLUIS_PKCS11_CHILD";
/// Number of ignored tests in [`hsm`]; the parent checks the child ran them all.
const HSM_TESTS: usize = 8;

fn softhsm_util_works() -> bool {
    Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn softhsm2() {
    if !Path::new(MODULE).exists() || !softhsm_util_works() {
        if std::env::var("KLUIS_REQUIRE_SOFTHSM").as_deref() == Ok("1") {
            panic!(
                "KLUIS_REQUIRE_SOFTHSM=1 but SoftHSM2 was not found ({MODULE}, softhsm2-util); \
                 install the softhsm2 package"
            );
        }
        eprintln!(
            "skipped: PKCS#11 tests — SoftHSM2 not found ({MODULE}); install the softhsm2 package"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    for label in [TOKEN, PIN_TOKEN] {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["pkcs11::hsm::", "--ignored"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "PKCS#11 tests failed in the child");
    assert!(
        stdout.contains(&format!("test result: ok. {HSM_TESTS} passed")),
        "the child did not run all {HSM_TESTS} PKCS#11 tests"
    );
}

/// The tests proper; they run only in the child started by [`softhsm2`].
mod hsm {
    use std::sync::Arc;

    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error as P11Error, RvError};
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
    use cryptoki::session::UserType;
    use kluis_crypto::CryptoError;
    use kluis_crypto::envelope::pkcs11::{PKCS11_WRAP_FORMAT_V1, PKCS11_WRAPPED_LEN};
    use kluis_crypto::envelope::{DataKey, Kek, Kms, LocalKms, Pkcs11Kms, tenant_wrap_aad};
    use secrecy::SecretString;

    use super::{CHILD_ENV, MODULE, PIN, PIN_TOKEN, TOKEN};

    const TENANT: [u8; 16] = [0x42; 16];
    const WRONG_PIN: &str = "wrong-pin-8675309";

    /// True in the child process that [`super::softhsm2`] starts.
    fn in_child() -> bool {
        let ok = std::env::var(CHILD_ENV).as_deref() == Ok("1")
            && std::env::var_os("SOFTHSM2_CONF").is_some();
        if !ok {
            eprintln!("not run: these tests are run by pkcs11::softhsm2 with SOFTHSM2_CONF set");
        }
        ok
    }

    fn pin() -> SecretString {
        SecretString::from(PIN)
    }

    fn new_key(label: &str) -> Pkcs11Kms {
        Pkcs11Kms::generate_key(MODULE, TOKEN, pin(), label).unwrap()
    }

    /// A failed tag check, reported as the opaque [`CryptoError::Decrypt`].
    #[track_caller]
    fn assert_decrypt_error(result: Result<DataKey, CryptoError>) {
        match result {
            Err(CryptoError::Decrypt) => {}
            other => panic!("expected CryptoError::Decrypt, got {other:?}"),
        }
    }

    fn aad() -> Vec<u8> {
        tenant_wrap_aad(&TENANT)
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn generate_open_and_refuse_duplicate_label() {
        if !in_child() {
            return;
        }
        let kms = new_key("gen");
        assert_eq!(kms.key_id(), "pkcs11:kluis-test/gen");
        let dbg = format!("{kms:?}");
        assert!(dbg.contains("pkcs11:kluis-test/gen"), "{dbg}");

        let err = Pkcs11Kms::generate_key(MODULE, TOKEN, pin(), "gen").unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");

        let again = Pkcs11Kms::open(MODULE, TOKEN, pin(), "gen").unwrap();
        assert_eq!(again.key_id(), kms.key_id());

        let err = Pkcs11Kms::open(MODULE, TOKEN, pin(), "no-such-key").unwrap_err();
        assert!(err.to_string().contains("no AES secret key"), "{err}");
        let err = Pkcs11Kms::open(MODULE, "no-such-token", pin(), "gen").unwrap_err();
        assert!(err.to_string().contains("no token labelled"), "{err}");
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn round_trip_keeps_version() {
        if !in_child() {
            return;
        }
        let kms = new_key("round-trip");
        for version in [0, 1, 2, 7, 1000, u32::MAX] {
            let dek = DataKey::generate(version).unwrap();
            let wrapped = kms.wrap(&dek, &aad()).unwrap();
            assert_eq!(wrapped.len(), PKCS11_WRAPPED_LEN);
            assert_eq!(wrapped[0], PKCS11_WRAP_FORMAT_V1);
            assert_eq!(&wrapped[1..5], &version.to_be_bytes());
            // The DEK is not in the blob in the clear.
            assert!(
                !wrapped
                    .windows(32)
                    .any(|w| w == dek.expose_secret().as_slice())
            );
            let back = kms.unwrap(&wrapped, &aad()).unwrap();
            assert_eq!(back.version(), version);
            assert_eq!(back.expose_secret(), dek.expose_secret());
            // Fresh IV every time.
            assert_ne!(wrapped, kms.wrap(&dek, &aad()).unwrap());
        }
        // Empty AAD works too and is not the same as the tenant AAD.
        let dek = DataKey::generate(3).unwrap();
        let wrapped = kms.wrap(&dek, b"").unwrap();
        assert_eq!(
            kms.unwrap(&wrapped, b"").unwrap().expose_secret(),
            dek.expose_secret()
        );
        assert!(kms.unwrap(&wrapped, &aad()).is_err());
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn wrong_aad_and_tampering_fail() {
        if !in_child() {
            return;
        }
        let kms = new_key("tamper");
        let dek = DataKey::generate(5).unwrap();
        let wrapped = kms.wrap(&dek, &aad()).unwrap();

        assert_decrypt_error(kms.unwrap(&wrapped, &tenant_wrap_aad(&[0x43; 16])));
        assert_decrypt_error(kms.unwrap(&wrapped, b""));

        // Every bit of the version, IV, ciphertext and tag is authenticated.
        for i in 1..wrapped.len() {
            for bit in [0x01, 0x80] {
                let mut t = wrapped.clone();
                t[i] ^= bit;
                assert_decrypt_error(kms.unwrap(&t, &aad()));
            }
        }
        // Relabelling the version (5 -> 4) is caught by the token's tag check.
        let mut relabelled = wrapped.clone();
        relabelled[4] = 4;
        assert_decrypt_error(kms.unwrap(&relabelled, &aad()));
        // Structural damage.
        let mut format = wrapped.clone();
        format[0] = 0x82;
        assert!(matches!(
            kms.unwrap(&format, &aad()),
            Err(CryptoError::UnsupportedFormat(0x82))
        ));
        for len in 0..wrapped.len() {
            assert!(kms.unwrap(&wrapped[..len], &aad()).is_err(), "len {len}");
        }
        let mut longer = wrapped.clone();
        longer.push(0);
        assert!(matches!(
            kms.unwrap(&longer, &aad()),
            Err(CryptoError::MalformedCiphertext)
        ));
        // A key of the same token with another label cannot unwrap it either.
        let other = new_key("tamper-other");
        assert_decrypt_error(other.unwrap(&wrapped, &aad()));
        // And the original still works after all those failures (sessions recovered).
        assert_eq!(
            kms.unwrap(&wrapped, &aad()).unwrap().expose_secret(),
            dek.expose_secret()
        );
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn local_and_pkcs11_blobs_do_not_cross() {
        if !in_child() {
            return;
        }
        let hsm = new_key("cross");
        let local = LocalKms::new(Kek::generate().unwrap());
        let dek = DataKey::generate(9).unwrap();

        let by_local = local.wrap(&dek, &aad()).unwrap();
        let by_hsm = hsm.wrap(&dek, &aad()).unwrap();
        assert_eq!(by_local.len(), by_hsm.len());
        assert!(matches!(
            hsm.unwrap(&by_local, &aad()),
            Err(CryptoError::UnsupportedFormat(1))
        ));
        assert!(matches!(
            local.unwrap(&by_hsm, &aad()),
            Err(CryptoError::UnsupportedFormat(PKCS11_WRAP_FORMAT_V1))
        ));
        // Even with the format byte swapped, the other provider's key and AAD label refuse it.
        let mut local_as_hsm = by_local.clone();
        local_as_hsm[0] = PKCS11_WRAP_FORMAT_V1;
        assert_decrypt_error(hsm.unwrap(&local_as_hsm, &aad()));
        let mut hsm_as_local = by_hsm.clone();
        hsm_as_local[0] = 1;
        assert_decrypt_error(local.unwrap(&hsm_as_local, &aad()));
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn key_is_not_extractable() {
        if !in_child() {
            return;
        }
        let kms = new_key("sealed-in");
        let p = kms.key_protection().unwrap();
        assert!(p.sensitive && p.always_sensitive, "{p:?}");
        assert!(!p.extractable && p.never_extractable, "{p:?}");
        assert!(!p.value_readable, "{p:?}");

        // Independently of the provider: raw PKCS#11 calls on the same token.
        let ctx = Pkcs11::new(MODULE).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
            .unwrap();
        let session = ctx.open_ro_session(slot).unwrap();
        // `kms` holds this process's login, so the token says we are already logged in.
        match session.login(UserType::User, Some(&pin())) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Label(b"sealed-in".to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1);
        let key = found[0];
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::Extractable,
                    AttributeType::Sensitive,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Value,
                ],
            )
            .unwrap();
        assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Private(true)), "{attrs:?}");
        // C_GetAttributeValue(CKA_VALUE) is refused: cryptoki drops the unavailable value...
        assert!(
            !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
            "the key value was returned"
        );
        // ...because the token answers CKR_ATTRIBUTE_SENSITIVE.
        let info = session
            .get_attribute_info(key, &[AttributeType::Value])
            .unwrap();
        assert!(matches!(info[0], AttributeInfo::Sensitive), "{info:?}");
        // And it cannot be made extractable or readable after the fact.
        assert!(
            session
                .update_attributes(key, &[Attribute::Extractable(true)])
                .is_err()
        );
        assert!(
            session
                .update_attributes(key, &[Attribute::Sensitive(false)])
                .is_err()
        );
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn second_open_finds_the_same_key() {
        if !in_child() {
            return;
        }
        let first = new_key("persist");
        let deks: Vec<DataKey> = (1..=3).map(|v| DataKey::generate(v).unwrap()).collect();
        let blobs: Vec<Vec<u8>> = deks
            .iter()
            .map(|d| first.wrap(d, &aad()).unwrap())
            .collect();

        let second = Pkcs11Kms::open(MODULE, TOKEN, pin(), "persist").unwrap();
        assert_eq!(second.key_id(), first.key_id());
        drop(first);
        for (dek, blob) in deks.iter().zip(&blobs) {
            let back = second.unwrap(blob, &aad()).unwrap();
            assert_eq!(back.version(), dek.version());
            assert_eq!(back.expose_secret(), dek.expose_secret());
        }
        // Blobs from the second open unwrap with a third.
        let later = second.wrap(&deks[0], &aad()).unwrap();
        drop(second);
        let third = Pkcs11Kms::open(MODULE, TOKEN, pin(), "persist").unwrap();
        assert_eq!(
            third.unwrap(&later, &aad()).unwrap().expose_secret(),
            deks[0].expose_secret()
        );
        assert_eq!(
            third.unwrap(&blobs[2], &aad()).unwrap().version(),
            deks[2].version()
        );
    }

    fn assert_pin_refused(result: Result<Pkcs11Kms, CryptoError>) {
        let err = result.unwrap_err();
        let msg = err.to_string();
        let dbg = format!("{err:?}");
        assert!(msg.contains("PinIncorrect"), "{msg}");
        for text in [&msg, &dbg] {
            assert!(!text.contains(WRONG_PIN), "PIN leaked: {text}");
            assert!(!text.contains("8675309"), "PIN leaked: {text}");
        }
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn wrong_pin_is_refused_without_echoing_it() {
        if !in_child() {
            return;
        }
        // Nobody is logged in to this token: the token itself rejects the PIN.
        assert_pin_refused(Pkcs11Kms::generate_key(
            MODULE,
            PIN_TOKEN,
            SecretString::from(WRONG_PIN),
            "pin-key",
        ));
        assert_pin_refused(Pkcs11Kms::open(
            MODULE,
            PIN_TOKEN,
            SecretString::from(WRONG_PIN),
            "pin-key",
        ));
        // Logged in (by `good`): the token would answer "already logged in", and the provider
        // still refuses the wrong PIN.
        let good = Pkcs11Kms::generate_key(MODULE, PIN_TOKEN, pin(), "pin-key").unwrap();
        assert_pin_refused(Pkcs11Kms::open(
            MODULE,
            PIN_TOKEN,
            SecretString::from(WRONG_PIN),
            "pin-key",
        ));
        // The right PIN is still accepted alongside.
        let again = Pkcs11Kms::open(MODULE, PIN_TOKEN, pin(), "pin-key").unwrap();
        let dek = DataKey::generate(1).unwrap();
        let wrapped = good.wrap(&dek, &aad()).unwrap();
        assert_eq!(
            again.unwrap(&wrapped, &aad()).unwrap().expose_secret(),
            dek.expose_secret()
        );
        // Also on the shared token, whatever its login state.
        assert_pin_refused(Pkcs11Kms::open(
            MODULE,
            TOKEN,
            SecretString::from(WRONG_PIN),
            "gen",
        ));
    }

    #[test]
    #[ignore = "run by pkcs11::softhsm2 in a child process with SOFTHSM2_CONF set"]
    fn concurrent_wrap_from_8_threads() {
        if !in_child() {
            return;
        }
        let kms = Arc::new(new_key("concurrent"));
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let kms = Arc::clone(&kms);
                std::thread::spawn(move || {
                    let mut blobs = Vec::new();
                    for i in 0..50u32 {
                        let dek = DataKey::generate(t * 1000 + i).unwrap();
                        let wrapped = kms.wrap(&dek, &aad()).unwrap();
                        let back = kms.unwrap(&wrapped, &aad()).unwrap();
                        assert_eq!(back.version(), dek.version());
                        assert_eq!(back.expose_secret(), dek.expose_secret());
                        blobs.push(wrapped);
                    }
                    blobs
                })
            })
            .collect();
        let mut all: Vec<Vec<u8>> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(all.len(), 400);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 400, "two wraps produced the same blob");
    }
}
