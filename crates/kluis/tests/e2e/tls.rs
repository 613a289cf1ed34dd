//! TLS: 1.1 is refused during the handshake; 1.2 and 1.3 work, with AEAD suites only, in the
//! server's order; the generated certificate is short-lived, named for the configured host and
//! renewed at start before it expires.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Server, on_both};

/// A minimal TLS 1.1 ClientHello (record version 3.1, client_version 3.2, no
/// supported_versions extension), offering an AEAD suite too so that only the protocol
/// version can be the reason for refusal.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend([0x42; 32]); // random
    body.push(0); // session id
    let suites: [u8; 8] = [0xc0, 0x2f, 0xc0, 0x13, 0x00, 0x2f, 0x00, 0x35];
    body.extend((suites.len() as u16).to_be_bytes());
    body.extend(suites);
    body.extend([1, 0]); // compression: null
    let mut hs = vec![0x01];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

on_both!(
    tls_1_1_refused_1_2_and_1_3_accepted,
    generated_certificate_is_short_lived_and_renewed
);

async fn tls_1_1_refused_1_2_and_1_3_accepted(b: Backend) {
    let s = Server::start(b).await;

    // TLS 1.1: the server answers with a fatal alert, never a ServerHello.
    let mut sock = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    sock.write_all(&tls11_client_hello()).await.unwrap();
    let mut buf = [0u8; 7];
    let n = sock.read(&mut buf).await.unwrap();
    assert!(n >= 7, "expected an alert record, got {n} bytes");
    assert_eq!(
        buf[0], 0x15,
        "expected a TLS alert record, got content type {:#x}",
        buf[0]
    );
    assert_eq!(buf[5], 2, "alert must be fatal");
    // rustls answers handshake_failure (40); protocol_version (70) would be equally correct.
    assert!(
        matches!(buf[6], 40 | 70),
        "unexpected alert description {}",
        buf[6]
    );

    let cert_pem = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&cert_pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.protocol_version(), Some(version.version));
        let suite = format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite());
        assert!(
            suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
            "non-AEAD suite {suite}"
        );
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        tls.read_to_string(&mut resp).await.unwrap_or_default();
        assert!(resp.starts_with("HTTP/1.1 200"), "{version:?}: {resp}");
        assert!(
            resp.to_ascii_lowercase()
                .contains("strict-transport-security"),
            "{resp}"
        );
    }
}

/// A TLS 1.3 client that trusts `cert_pem`, offering `suites` in that order; returns the
/// negotiated suite and the certificate the server presented.
async fn handshake(
    port: u16,
    cert_pem: &[u8],
    name: &str,
    suites: Vec<rustls::SupportedCipherSuite>,
) -> (String, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = suites;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake as {name}: {e}"));
    let (_, conn) = tls.get_ref();
    (
        format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite()),
        conn.peer_certificates().unwrap()[0].as_ref().to_vec(),
    )
}

fn validity_days(der: &[u8]) -> (i64, i64) {
    let (_, x) = x509_parser::parse_x509_certificate(der).unwrap();
    let now = x509_parser::time::ASN1Time::now().timestamp();
    let v = x.validity();
    (
        (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400,
        (v.not_after.timestamp() - now) / 86_400,
    )
}

async fn generated_certificate_is_short_lived_and_renewed(b: Backend) {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut s =
        Server::start_with(b, &[("KLUIS_PUBLIC_URL", "https://crm.example.test:8443")]).await;
    let cert_path = s.dir.path().join("tls/cert.pem");
    let pem = std::fs::read(&cert_path).unwrap();
    // Named for the configured host (a client checking that name accepts it), 90 days.
    let (suite, der) = handshake(
        s.port,
        &pem,
        "crm.example.test",
        vec![
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
        ],
    )
    .await;
    // The server's order wins over the client's.
    assert_eq!(suite, "TLS13_AES_256_GCM_SHA384");
    let (lifetime, left) = validity_days(&der);
    assert!((90..=91).contains(&lifetime), "lifetime {lifetime} days");
    assert!((89..=90).contains(&left), "{left} days left");
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = x
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(cn, "crm.example.test");

    // A restart keeps a current certificate.
    assert!(s.stop().success());
    s.spawn().await;
    assert_eq!(
        std::fs::read(&cert_path).unwrap(),
        pem,
        "current certificate kept"
    );

    // One that expires in 10 days (as if the server had been down for 80) is replaced at start.
    assert!(s.stop().success());
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        "crm.example.test".to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(80);
    params.not_after = now + time::Duration::days(10);
    let old = params.self_signed(&key).unwrap();
    std::fs::write(&cert_path, old.pem()).unwrap();
    std::fs::write(s.dir.path().join("tls/key.pem"), key.serialize_pem()).unwrap();
    s.spawn().await;
    assert!(
        s.logs().contains("renewed the self-signed certificate"),
        "{}",
        s.logs()
    );
    let pem2 = std::fs::read(&cert_path).unwrap();
    let (_, der2) = handshake(
        s.port,
        &pem2,
        "crm.example.test",
        vec![cs::TLS13_AES_128_GCM_SHA256],
    )
    .await;
    assert_ne!(
        der2,
        old.der().as_ref(),
        "the old certificate is still served"
    );
    let (_, left) = validity_days(&der2);
    assert!((89..=90).contains(&left), "renewed: {left} days left");
}
