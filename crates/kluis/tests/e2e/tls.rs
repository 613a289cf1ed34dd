//! TLS: 1.1 is refused during the handshake; 1.2 and 1.3 work, with AEAD suites only.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Server};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_refused_1_2_and_1_3_accepted() {
    let s = Server::start(Backend::Sqlite).await;

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
