//! A [`Kms`] whose key-encryption key lives in a PKCS#11 token (an HSM, a cloud HSM's PKCS#11
//! library, or SoftHSM2 for development and tests).
//!
//! The KEK is an AES-256 secret key object created inside the token with `CKA_SENSITIVE=true`
//! and `CKA_EXTRACTABLE=false` ([`Pkcs11Kms::generate_key`]); it never leaves the token. Data
//! keys are wrapped and unwrapped *inside* the token with `CKM_AES_GCM` (`C_Encrypt` /
//! `C_Decrypt`, 96-bit IV, 128-bit tag), so this process only ever sees DEKs, never the KEK.
//!
//! # Why AES-GCM and not `CKM_AES_KEY_WRAP_PAD`
//!
//! GCM authenticates associated data, so the DEK version and the caller's AAD (normally
//! [`tenant_wrap_aad`](super::tenant_wrap_aad)) are bound by the token's own tag check, exactly
//! as [`wrap_key`](super::wrap_key) binds them for the local provider. RFC 5649 key wrap has no
//! AAD and would need a second, separately keyed MAC to get the same binding. SoftHSM2 (2.6)
//! and mainstream HSMs implement `CKM_AES_GCM` for single-part `C_Encrypt`/`C_Decrypt`. The cost
//! is that the DEK passes through `C_Encrypt` as data, so the KEK needs `CKA_ENCRYPT`/
//! `CKA_DECRYPT` rather than `CKA_WRAP`/`CKA_UNWRAP`; the unwrapped DEK is returned to this
//! process either way (it must be, to seal values), and the KEK stays non-extractable.
//!
//! The IV comes from the operating system's RNG (as for every other nonce in this crate), not
//! from `C_GenerateRandom`: token RNG quality varies and it would cost another round trip.
//! Random 96-bit IVs are safe for 2^32 wraps per KEK, far more DEKs than a deployment has.
//!
//! # Wrapped format, version 1
//!
//! ```text
//! [0]      format = 0x81 (PKCS#11 AES-GCM; the local provider's format is 0x01)
//! [1..5]   DEK version, u32 big-endian
//! [5..17]  96-bit random IV
//! [17..65] AES-256-GCM ciphertext of the 32-byte DEK || 16-byte tag
//! ```
//!
//! Authenticated data: `len || "kluis.dek-wrap.pkcs11" || format || DEK version || len || aad`.
//! A blob from one provider is refused by the other by its format byte, and would fail the tag
//! check anyway (different label, different key).
//!
//! # Sessions, threads, and login
//!
//! PKCS#11 sessions must not be used by two threads at once, but login state belongs to the
//! application and lasts while any of its sessions on the token is open. [`Pkcs11Kms`] keeps
//! one session open for the lifetime of the value to hold the login, and runs each wrap or
//! unwrap on a session taken from a small pool (opened on demand, read-only, already logged in
//! by virtue of the held session), so calls from many threads proceed in parallel in the token.
//! A session that saw any error is closed rather than returned to the pool.
//!
//! Because login is per process, a second [`Pkcs11Kms::open`] of a token that this process is
//! already logged into gets `CKR_USER_ALREADY_LOGGED_IN` from the token, which proves nothing
//! about the PIN it was given. To still refuse a wrong PIN, a successful login records an
//! Argon2id hash of the PIN in a process-wide table (never the PIN itself), and such a second
//! open must match it. If something else in the process logged in to the token, open fails.
//!
//! Modules are loaded and `C_Initialize`d once per process and never finalised (finalising
//! would close the sessions of every other provider using the same module).
//!
//! If the token goes away (HSM restart, network HSM failover) the held login is lost and calls
//! fail with [`CryptoError::Hsm`]; the PIN is not kept in memory to log in again, so the
//! provider must be reopened.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{DataKey, Kms};
use crate::CryptoError;
use crate::aead::{KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::encoding::put_len_prefixed;
use crate::password::{hash_password, verify_password};
use crate::token::try_random_bytes;

/// Format byte of DEKs wrapped by [`Pkcs11Kms`].
pub const PKCS11_WRAP_FORMAT_V1: u8 = 0x81;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Length of a DEK wrapped by [`Pkcs11Kms`].
pub const PKCS11_WRAPPED_LEN: usize = HEADER_LEN + KEY_LEN + TAG_LEN;
const AAD_LABEL: &[u8] = b"kluis.dek-wrap.pkcs11";
const GCM_TAG_BITS: u64 = (TAG_LEN * 8) as u64;
/// Idle sessions kept for reuse; more concurrent calls open extra sessions and close them after.
const MAX_IDLE_SESSIONS: usize = 16;

/// The associated data the token authenticates: label, format, DEK version, caller's AAD.
fn pkcs11_wrap_aad(dek_version: u32, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + AAD_LABEL.len() + 1 + 4 + 4 + aad.len());
    put_len_prefixed(&mut out, AAD_LABEL);
    out.push(PKCS11_WRAP_FORMAT_V1);
    out.extend_from_slice(&dek_version.to_be_bytes());
    put_len_prefixed(&mut out, aad);
    out
}

/// Maps a cryptoki error to [`CryptoError::Hsm`]: operation, PKCS#11 function and return code.
/// Never includes arguments (PINs, data).
fn hsm_error(what: &str, e: &P11Error) -> CryptoError {
    CryptoError::Hsm(match e {
        P11Error::Pkcs11(rv, function) => format!("{what}: C_{function:?} returned {rv:?}"),
        P11Error::LibraryLoading(e) => format!("{what}: cannot load the PKCS#11 module: {e}"),
        P11Error::NullFunctionPointer => format!("{what}: the module lacks a required function"),
        P11Error::MissingSymbol(name) => format!("{what}: the module lacks {name}"),
        // Conversion errors and the like: their texts name no argument values, but say no more
        // than the kind to be safe.
        other => format!("{what}: {}", error_kind(other)),
    })
}

fn error_kind(e: &P11Error) -> &'static str {
    match e {
        P11Error::NotSupported => "not supported by cryptoki",
        P11Error::TryFromInt(_) | P11Error::TryFromSlice(_) | P11Error::ParseInt(_) => {
            "value out of range"
        }
        P11Error::Utf8(_) => "invalid UTF-8 from the module",
        P11Error::NulError(_) => "argument contains a NUL byte",
        P11Error::InvalidValue => "unexpected value from the module",
        P11Error::PinNotSet => "no PIN",
        _ => "PKCS#11 error",
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The protected values (a session list, a registry) stay consistent across a panic.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Process-wide state per loaded module: the initialised context and, per slot, an Argon2id
/// hash of the PIN that last logged in successfully.
struct Module {
    ctx: Pkcs11,
    pin_hashes: HashMap<u64, String>,
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The module's context, loading and initialising it on first use.
fn module_entry<'a>(
    registry: &'a mut HashMap<PathBuf, Module>,
    path: &Path,
) -> Result<&'a mut Module, CryptoError> {
    if !registry.contains_key(path) {
        let ctx = Pkcs11::new(path)
            .map_err(|e| hsm_error(&format!("loading module {}", path.display()), &e))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Someone else in this process (another library) initialised it: fine, we share it.
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(hsm_error(
                    &format!("initialising module {}", path.display()),
                    &e,
                ));
            }
        }
        registry.insert(
            path.to_path_buf(),
            Module {
                ctx,
                pin_hashes: HashMap::new(),
            },
        );
    }
    registry
        .get_mut(path)
        .ok_or_else(|| CryptoError::Hsm("module registry inconsistent".into()))
}

fn find_slot(ctx: &Pkcs11, token_label: &str) -> Result<Slot, CryptoError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| hsm_error("listing slots", &e))?;
    let mut found = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| hsm_error("reading token info", &e))?;
        if info.label() == token_label {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(CryptoError::Hsm(format!(
            "no token labelled {token_label:?}"
        ))),
        _ => Err(CryptoError::Hsm(format!(
            "{} tokens are labelled {token_label:?}; labels must be unique",
            found.len()
        ))),
    }
}

/// What `C_Login` said about a wrong PIN, so both ways of detecting one read the same.
fn pin_incorrect() -> CryptoError {
    CryptoError::Hsm("logging in: C_Login returned PinIncorrect".into())
}

/// Logs the user in on `session` (and so for the whole process), or, if the process already
/// is, checks `pin` against the hash recorded by the login that did it.
fn login(
    module: &mut Module,
    slot: Slot,
    session: &Session,
    pin: &SecretString,
) -> Result<(), CryptoError> {
    let auth: &AuthPin = pin;
    match session.login(UserType::User, Some(auth)) {
        Ok(()) => {
            let hash = hash_password(pin.expose_secret())?;
            module.pin_hashes.insert(slot.id(), hash);
            Ok(())
        }
        Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            let Some(hash) = module.pin_hashes.get(&slot.id()) else {
                return Err(CryptoError::Hsm(
                    "logging in: the token is already logged in by another PKCS#11 user in this \
                     process, so the PIN cannot be checked"
                        .into(),
                ));
            };
            if verify_password(pin.expose_secret(), hash)? {
                Ok(())
            } else {
                Err(pin_incorrect())
            }
        }
        Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(pin_incorrect()),
        Err(e) => Err(hsm_error("logging in", &e)),
    }
}

/// A token session logged in as user, plus what is needed to open more.
struct Connection {
    ctx: Pkcs11,
    slot: Slot,
    login: Session,
    token_label: String,
}

fn connect(
    module_path: &Path,
    token_label: &str,
    pin: &SecretString,
) -> Result<Connection, CryptoError> {
    let path = module_path.canonicalize().map_err(|e| {
        CryptoError::Hsm(format!(
            "PKCS#11 module {} not found: {e}",
            module_path.display()
        ))
    })?;
    // Held through login so concurrent opens agree on who logged in and with which PIN.
    let mut registry = lock(modules());
    let module = module_entry(&mut registry, &path)?;
    let ctx = module.ctx.clone();
    let slot = find_slot(&ctx, token_label)?;
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| hsm_error("opening a session", &e))?;
    login(module, slot, &session, pin)?;
    Ok(Connection {
        ctx,
        slot,
        login: session,
        token_label: token_label.to_owned(),
    })
}

fn key_template(key_label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(key_label.as_bytes().to_vec()),
    ]
}

/// How a key object is protected, as the token reports it ([`Pkcs11Kms::key_protection`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`: the value can never be read in plaintext.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: the key can be wrapped out of the token.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`: the key has been sensitive since it was created.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`: the key has never been extractable.
    pub never_extractable: bool,
    /// Whether `C_GetAttributeValue(CKA_VALUE)` returned the key (it must not).
    pub value_readable: bool,
}

/// A [`Kms`] backed by an AES-256 key in a PKCS#11 token. See the [module docs](self).
pub struct Pkcs11Kms {
    ctx: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    token_label: String,
    key_label: String,
    /// Holds the login for as long as this provider lives; also used for key inspection.
    login: Mutex<Session>,
    /// Idle logged-in sessions for wrap/unwrap.
    idle: Mutex<Vec<Session>>,
}

impl Pkcs11Kms {
    /// Loads the PKCS#11 module at `module_path` (e.g. `/usr/lib/softhsm/libsofthsm2.so`), finds
    /// the token labelled `token_label`, logs in as user with `pin`, and finds the AES secret key
    /// labelled `key_label`.
    ///
    /// Refuses a key that is not exactly one AES-256 object, that is extractable or not
    /// sensitive, or that may not encrypt and decrypt.
    pub fn open(
        module_path: impl AsRef<Path>,
        token_label: &str,
        pin: SecretString,
        key_label: &str,
    ) -> Result<Self, CryptoError> {
        let conn = connect(module_path.as_ref(), token_label, &pin)?;
        drop(pin);
        let key = find_key(&conn.login, key_label)?;
        check_key(&conn.login, key, key_label)?;
        Ok(Self::from_parts(conn, key, key_label))
    }

    /// Creates a non-extractable AES-256 key labelled `key_label` in the token (`CKA_TOKEN`,
    /// `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, not modifiable or copyable, usable
    /// only to encrypt and decrypt) and opens a provider on it.
    ///
    /// Refuses if any object with that label already exists in the token. Two processes racing
    /// to create the same label can both succeed; [`Pkcs11Kms::open`] then refuses the label as
    /// ambiguous rather than picking one.
    pub fn generate_key(
        module_path: impl AsRef<Path>,
        token_label: &str,
        pin: SecretString,
        key_label: &str,
    ) -> Result<Self, CryptoError> {
        let conn = connect(module_path.as_ref(), token_label, &pin)?;
        drop(pin);
        // Creating token objects needs a read-write session; the login already covers it.
        let rw = conn
            .ctx
            .open_rw_session(conn.slot)
            .map_err(|e| hsm_error("opening a read-write session", &e))?;
        let existing = rw
            .find_objects(&[Attribute::Label(key_label.as_bytes().to_vec())])
            .map_err(|e| hsm_error("searching for the key label", &e))?;
        if !existing.is_empty() {
            return Err(CryptoError::Hsm(format!(
                "an object labelled {key_label:?} already exists in token {:?}",
                conn.token_label
            )));
        }
        let mut template = key_template(key_label);
        template.extend([
            Attribute::ValueLen((KEY_LEN as u64).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
        ]);
        let key = rw
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| hsm_error("generating the key", &e))?;
        drop(rw);
        check_key(&conn.login, key, key_label)?;
        Ok(Self::from_parts(conn, key, key_label))
    }

    fn from_parts(conn: Connection, key: ObjectHandle, key_label: &str) -> Self {
        Self {
            ctx: conn.ctx,
            slot: conn.slot,
            key,
            token_label: conn.token_label,
            key_label: key_label.to_owned(),
            login: Mutex::new(conn.login),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Reads the key's protection attributes from the token and tries to read its value.
    pub fn key_protection(&self) -> Result<KeyProtection, CryptoError> {
        let session = lock(&self.login);
        protection(&session, self.key)
    }

    /// Runs `f` on an idle logged-in session (or a new one), returning the session to the pool
    /// only if `f` succeeded.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, P11Error>,
    ) -> Result<T, P11Error> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(session) => session,
            None => self.ctx.open_ro_session(self.slot)?,
        };
        let result = f(&session);
        if result.is_ok() {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(session);
            }
        }
        result
    }
}

fn find_key(session: &Session, key_label: &str) -> Result<ObjectHandle, CryptoError> {
    let found = session
        .find_objects(&key_template(key_label))
        .map_err(|e| hsm_error("searching for the key", &e))?;
    match found.as_slice() {
        [key] => Ok(*key),
        [] => Err(CryptoError::Hsm(format!(
            "no AES secret key labelled {key_label:?} in the token"
        ))),
        _ => Err(CryptoError::Hsm(format!(
            "{} AES secret keys are labelled {key_label:?}; labels must be unique",
            found.len()
        ))),
    }
}

fn protection(session: &Session, key: ObjectHandle) -> Result<KeyProtection, CryptoError> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
            ],
        )
        .map_err(|e| hsm_error("reading key attributes", &e))?;
    let mut p = KeyProtection {
        sensitive: false,
        extractable: true,
        always_sensitive: false,
        never_extractable: false,
        value_readable: true,
    };
    for attr in attrs {
        match attr {
            Attribute::Sensitive(v) => p.sensitive = v,
            Attribute::Extractable(v) => p.extractable = v,
            Attribute::AlwaysSensitive(v) => p.always_sensitive = v,
            Attribute::NeverExtractable(v) => p.never_extractable = v,
            _ => {}
        }
    }
    // Only the size is asked for, so even a misconfigured key's value is never copied here.
    let value = session
        .get_attribute_info(key, &[AttributeType::Value])
        .map_err(|e| hsm_error("probing the key value", &e))?;
    p.value_readable = matches!(value.first(), Some(AttributeInfo::Available(_)));
    Ok(p)
}

/// Refuses keys that could leave the token or cannot do the job.
fn check_key(session: &Session, key: ObjectHandle, key_label: &str) -> Result<(), CryptoError> {
    let p = protection(session, key)?;
    if !p.sensitive || p.extractable || p.value_readable {
        return Err(CryptoError::Hsm(format!(
            "key {key_label:?} is extractable or not sensitive; refusing to use it (generate a \
             new key with Pkcs11Kms::generate_key)"
        )));
    }
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::ValueLen,
            ],
        )
        .map_err(|e| hsm_error("reading key attributes", &e))?;
    let (mut encrypt, mut decrypt, mut len) = (false, false, 0u64);
    for attr in attrs {
        match attr {
            Attribute::Encrypt(v) => encrypt = v,
            Attribute::Decrypt(v) => decrypt = v,
            Attribute::ValueLen(v) => len = v.into(),
            _ => {}
        }
    }
    if !(encrypt && decrypt) {
        return Err(CryptoError::Hsm(format!(
            "key {key_label:?} lacks CKA_ENCRYPT or CKA_DECRYPT"
        )));
    }
    if len != KEY_LEN as u64 {
        return Err(CryptoError::Hsm(format!(
            "key {key_label:?} is not a 256-bit AES key"
        )));
    }
    Ok(())
}

impl Kms for Pkcs11Kms {
    fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut iv: [u8; NONCE_LEN] = try_random_bytes()?;
        let full_aad = pkcs11_wrap_aad(dek.version(), aad);
        let body = self
            .with_session(|session| {
                let params = GcmParams::new(&mut iv, &full_aad, GCM_TAG_BITS.into())?;
                session.encrypt(&Mechanism::AesGcm(params), self.key, dek.expose_secret())
            })
            .map_err(|e| hsm_error("wrapping a data key", &e))?;
        if body.len() != KEY_LEN + TAG_LEN {
            return Err(CryptoError::Hsm(
                "wrapping a data key: the token returned a ciphertext of unexpected length".into(),
            ));
        }
        let mut out = Vec::with_capacity(PKCS11_WRAPPED_LEN);
        out.push(PKCS11_WRAP_FORMAT_V1);
        out.extend_from_slice(&dek.version().to_be_bytes());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, CryptoError> {
        let (&format, rest) = wrapped
            .split_first()
            .ok_or(CryptoError::MalformedCiphertext)?;
        if format != PKCS11_WRAP_FORMAT_V1 {
            return Err(CryptoError::UnsupportedFormat(format));
        }
        if wrapped.len() != PKCS11_WRAPPED_LEN {
            return Err(CryptoError::MalformedCiphertext);
        }
        let (version, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(CryptoError::MalformedCiphertext)?;
        let (iv, body) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CryptoError::MalformedCiphertext)?;
        let version = u32::from_be_bytes(*version);
        let mut iv = *iv;
        let full_aad = pkcs11_wrap_aad(version, aad);
        let key = self
            .with_session(|session| {
                let params = GcmParams::new(&mut iv, &full_aad, GCM_TAG_BITS.into())?;
                session
                    .decrypt(&Mechanism::AesGcm(params), self.key, body)
                    .map(Zeroizing::new)
            })
            .map_err(|e| match e {
                // The token's tag check failed: wrong KEK, wrong AAD or version, or tampering.
                // SoftHSM2 (2.6) reports a GCM tag mismatch from C_Decrypt as
                // CKR_GENERAL_ERROR; C_DecryptInit has succeeded by then and the length is
                // right, so that code from C_Decrypt is read the same way.
                P11Error::Pkcs11(
                    RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                    _,
                )
                | P11Error::Pkcs11(RvError::GeneralError, Function::Decrypt) => {
                    CryptoError::Decrypt
                }
                e => hsm_error("unwrapping a data key", &e),
            })?;
        DataKey::from_slice(version, &key).map_err(|_| CryptoError::Decrypt)
    }

    fn key_id(&self) -> String {
        format!("pkcs11:{}/{}", self.token_label, self.key_label)
    }
}

impl fmt::Debug for Pkcs11Kms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kms")
            .field("key_id", &self.key_id())
            .field("slot", &self.slot.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn aad_binds_label_format_version_and_caller_aad() {
        let a = pkcs11_wrap_aad(1, b"t");
        assert_ne!(a, pkcs11_wrap_aad(2, b"t"));
        assert_ne!(a, pkcs11_wrap_aad(1, b"u"));
        assert!(a.windows(AAD_LABEL.len()).any(|w| w == AAD_LABEL));
        assert_eq!(PKCS11_WRAPPED_LEN, 65);
    }

    #[test]
    fn missing_module_is_a_clean_error() {
        let err = Pkcs11Kms::open(
            "/nonexistent/libpkcs11.so",
            "t",
            SecretString::from("secret-pin-4321"),
            "k",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not found"), "{msg}");
        assert!(!msg.contains("secret-pin-4321"));
    }
}
