//! TLS: rustls with TLS 1.3 and 1.2 only, AEAD cipher suites only in the server's order, and
//! a short-lived self-signed certificate for the configured host when none is configured,
//! renewed at start before it expires.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Config(#[from] rustls::Error),
}

/// The cipher suites we allow: all AEAD (AES-GCM, ChaCha20-Poly1305) with forward secrecy.
/// rustls implements no CBC or RC4 suites at all; listing them here documents the choice.
pub fn provider() -> CryptoProvider {
    let mut p = ring::default_provider();
    p.cipher_suites = vec![
        ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
        ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    p
}

/// Server configuration from PEM files: TLS 1.3 + 1.2, ALPN h2 and http/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| TlsError::Pem {
            path: cert.into(),
            what: "certificate",
        })?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: cert.into(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.into(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| TlsError::Pem {
        path: key.into(),
        what: "private key",
    })?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order (AES-256-GCM first), not the client's: a client listing a weaker suite first
    // does not get to pick it.
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

/// Lifetime of a generated certificate: short, like a public CA's, so a leaked key is useful
/// for weeks, not centuries.
pub const GENERATED_LIFETIME: time::Duration = time::Duration::days(90);
/// A generated certificate is replaced at start once it has less than this left.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// What [`ensure_self_signed`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generated {
    /// The existing certificate is current and names the host.
    Kept,
    /// None existed.
    Created,
    /// Replaced: near or past expiry, unreadable, or named for another host.
    Renewed(&'static str),
}

/// The names a generated certificate carries: the configured host (first, also its common
/// name) and the loopback names.
pub fn generated_names(host: Option<&str>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        names.push(h.to_ascii_lowercase());
    }
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    names
}

/// Creates `cert.pem` and `key.pem` (mode 0600) in `dir` for `host` (the configured public
/// host; loopback names always), valid [`GENERATED_LIFETIME`] from `now`, unless a current one
/// for the same names exists. Replaces one that expires within [`RENEW_BEFORE`]. Returns the
/// paths and what happened.
pub fn ensure_self_signed(
    dir: &Path,
    host: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<(PathBuf, PathBuf, Generated), TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let names = generated_names(host);
    let outcome = if cert_path.exists() && key_path.exists() {
        match inspect(&cert_path) {
            Ok((not_after, have)) => {
                let mut want = names.clone();
                want.sort();
                if not_after - now < RENEW_BEFORE {
                    Generated::Renewed("expires within 30 days")
                } else if have != want {
                    Generated::Renewed("named for another host")
                } else {
                    return Ok((cert_path, key_path, Generated::Kept));
                }
            }
            Err(_) => Generated::Renewed("unreadable"),
        }
    } else {
        Generated::Created
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Write {
            path: dir.into(),
            source,
        })?;
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(generate)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names[0].clone());
    dn.push(rcgen::DnType::OrganizationName, "Kluis (self-signed)");
    params.distinguished_name = dn;
    // An hour back for clocks that run a little behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + GENERATED_LIFETIME;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = params.self_signed(&key).map_err(generate)?;
    // Written beside and renamed over the old pair, key first: a crash in between leaves a
    // pair that does not match, which the next start replaces (it reads as "unreadable" only
    // if the certificate is damaged; a mismatch fails the TLS setup loudly instead).
    replace_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    replace_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok((cert_path, key_path, outcome))
}

/// The expiry and the sorted DNS/IP names of a PEM certificate.
pub fn inspect(cert: &Path) -> Result<(time::OffsetDateTime, Vec<String>), TlsError> {
    let bad = || TlsError::Pem {
        path: cert.into(),
        what: "certificate",
    };
    let der = CertificateDer::from_pem_file(cert).map_err(|_| bad())?;
    let (_, x) = x509_parser::parse_x509_certificate(&der).map_err(|_| bad())?;
    let not_after = x.validity().not_after.to_datetime();
    let mut names = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    names.push(d.to_ascii_lowercase())
                }
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    let addr = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                        _ => None,
                    };
                    if let Some(a) = addr {
                        names.push(a.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names.sort();
    Ok((not_after, names))
}

fn replace_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    if private {
        write_private(&tmp, bytes)?;
    } else {
        std::fs::write(&tmp, bytes).map_err(|source| TlsError::Write {
            path: tmp.clone(),
            source,
        })?;
    }
    std::fs::rename(&tmp, path).map_err(|source| TlsError::Write {
        path: path.into(),
        source,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write {
            path: path.into(),
            source,
        })?;
    f.write_all(bytes).map_err(|source| TlsError::Write {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    #[test]
    fn generated_certificate_is_short_lived_and_named_for_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = now();
        let (cert, key, g) = ensure_self_signed(dir.path(), Some("CRM.Example.test"), t0).unwrap();
        assert_eq!(g, Generated::Created);
        let (not_after, names) = inspect(&cert).unwrap();
        let left = not_after - t0;
        assert!(
            left <= GENERATED_LIFETIME && left > GENERATED_LIFETIME - time::Duration::minutes(1),
            "{left}"
        );
        assert_eq!(names, ["127.0.0.1", "::1", "crm.example.test", "localhost"]);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The pair loads.
        server_config(&cert, &key).unwrap();
        let pem = std::fs::read(&cert).unwrap();

        // A later start well before expiry keeps it.
        let (_, _, g) = ensure_self_signed(
            dir.path(),
            Some("crm.example.test"),
            t0 + time::Duration::days(59),
        )
        .unwrap();
        assert_eq!(g, Generated::Kept);
        assert_eq!(std::fs::read(&cert).unwrap(), pem);

        // Within 30 days of expiry: replaced by a new 90-day certificate with a new key.
        let key_pem = std::fs::read(&key).unwrap();
        let t1 = t0 + time::Duration::days(61);
        let (_, _, g) = ensure_self_signed(dir.path(), Some("crm.example.test"), t1).unwrap();
        assert_eq!(g, Generated::Renewed("expires within 30 days"));
        let (not_after, _) = inspect(&cert).unwrap();
        assert!(not_after - t1 > GENERATED_LIFETIME - time::Duration::minutes(1));
        assert_ne!(std::fs::read(&key).unwrap(), key_pem);
        server_config(&cert, &key).unwrap();

        // Another configured host: replaced.
        let (_, _, g) = ensure_self_signed(dir.path(), Some("other.example.test"), t1).unwrap();
        assert_eq!(g, Generated::Renewed("named for another host"));
        assert!(
            inspect(&cert)
                .unwrap()
                .1
                .contains(&"other.example.test".to_owned())
        );

        // A damaged certificate: replaced, not a refusal to start.
        std::fs::write(&cert, b"garbage").unwrap();
        let (_, _, g) = ensure_self_signed(dir.path(), Some("other.example.test"), t1).unwrap();
        assert_eq!(g, Generated::Renewed("unreadable"));
        server_config(&cert, &key).unwrap();
    }

    #[test]
    fn no_host_means_loopback_names_only() {
        assert_eq!(generated_names(None), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            generated_names(Some("localhost")),
            ["localhost", "127.0.0.1", "::1"]
        );
    }
}
