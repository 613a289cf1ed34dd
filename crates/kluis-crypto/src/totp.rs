//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, the
//! parameters every authenticator app understands), their `otpauth://` enrolment URI and its QR
//! code, and recovery codes.
//!
//! [`verify`] accepts the step before and after the current one (clock skew) and returns the
//! step that matched: the caller stores the last step used per user and refuses a step at or
//! below it, so a code works once (RFC 6238 section 5.2; `totp-rs` leaves this to the caller).

use qrcodegen::{QrCode, QrCodeEcc};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::token::try_random_bytes;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps accepted on either side of the current one.
pub const SKEW_STEPS: u16 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation for HMAC-SHA1).
pub const SECRET_LEN: usize = 20;

/// A new random TOTP secret.
pub fn generate_secret() -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    Ok(Zeroizing::new(try_random_bytes::<SECRET_LEN>()?.to_vec()))
}

fn totp(secret: &[u8], issuer: Option<&str>, account: &str) -> Result<Totp, CryptoError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(issuer.map(clean_label))
        .with_account_name(clean_label(account))
        .build()
        .map_err(|_| CryptoError::Otp)
}

/// `otpauth://` labels may not contain ':'.
fn clean_label(s: &str) -> String {
    s.replace(':', " ")
}

/// The step a code is valid for at unix time `now_secs`, if any (current step, or one step
/// before or after). Comparison is constant-time per candidate.
pub fn verify(secret: &[u8], code: &str, now_secs: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, None, "").ok()?.check(&code, now_secs)
}

/// The code for unix time `secs` (tests and test clients generate codes with it).
pub fn code_at(secret: &[u8], secs: u64) -> Result<String, CryptoError> {
    Ok(totp(secret, None, "")?.generate(secs).to_string())
}

/// The secret in base32 (what users type when they cannot scan the QR code).
pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// Parses a base32 secret (test clients).
pub fn secret_from_base32(b32: &str) -> Result<Vec<u8>, CryptoError> {
    Secret::try_from_base32(b32.trim())
        .map(|s| s.as_ref().to_vec())
        .map_err(|_| CryptoError::Otp)
}

/// The enrolment URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, CryptoError> {
    totp(secret, Some(issuer), account)?
        .to_url()
        .map_err(|_| CryptoError::Otp)
}

/// A QR code of `text` as a standalone SVG document (black modules on white, 4-module quiet
/// zone).
pub fn qr_svg(text: &str) -> Result<String, CryptoError> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|_| CryptoError::Otp)?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                if !path.is_empty() {
                    path.push(' ');
                }
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {size} {size}\" stroke=\"none\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/><path d=\"{path}\" fill=\"#000000\"/></svg>"
    ))
}

/// Alphabet of recovery codes: RFC 4648 base32 without the easily confused 0/1/8 digits it
/// already lacks; lower-cased for display.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new recovery code: 16 base32 characters (80 bits) as `xxxx-xxxx-xxxx-xxxx`.
pub fn generate_recovery_code() -> Result<String, CryptoError> {
    let bytes = Zeroizing::new(try_random_bytes::<16>()?);
    let mut out = String::with_capacity(19);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
    }
    Ok(out)
}

/// The canonical form of a typed recovery code (case, dashes and spaces ignored), or None if it
/// cannot be one.
pub fn normalise_recovery_code(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == 16 && s.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed, truncated to 6 digits.
    #[test]
    fn rfc6238_vectors() {
        let seed = b"12345678901234567890";
        for (t, want) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(seed, t).unwrap(), want, "t={t}");
            assert_eq!(verify(seed, want, t), Some(t / 30));
        }
    }

    #[test]
    fn skew_is_one_step_each_way() {
        let s = generate_secret().unwrap();
        let now = 1_700_000_000u64;
        let step = now / 30;
        for (offset, ok) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let t = now.checked_add_signed(offset).unwrap();
            let code = code_at(&s, t).unwrap();
            let got = verify(&s, &code, now);
            assert_eq!(got.is_some(), ok, "offset {offset}");
            if ok {
                assert_eq!(got, Some(t / 30));
                assert!(got.unwrap().abs_diff(step) <= 1);
            }
        }
        assert_eq!(verify(&s, "12345", now), None);
        assert_eq!(verify(&s, "abcdef", now), None);
    }

    #[test]
    fn uri_and_qr() {
        let s = generate_secret().unwrap();
        let uri = otpauth_uri(&s, "Kluis acme", "jan:x@acme.nl").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", secret_base32(&s))),
            "{uri}"
        );
        assert_eq!(secret_from_base32(&secret_base32(&s)).unwrap(), s.to_vec());
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }

    #[test]
    fn recovery_codes() {
        let a = generate_recovery_code().unwrap();
        assert_eq!(a.len(), 19);
        assert_ne!(a, generate_recovery_code().unwrap());
        let n = normalise_recovery_code(&a.to_uppercase().replace('-', " ")).unwrap();
        assert_eq!(n, a.replace('-', ""));
        assert_eq!(normalise_recovery_code("short"), None);
        assert_eq!(normalise_recovery_code("0000-0000-0000-0000"), None);
    }
}
