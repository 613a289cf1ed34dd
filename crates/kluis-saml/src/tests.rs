//! The hostile responses of testdata/saml (from pysaml2's test suite): each one is
//! refused for its attack, with every other setting matching the file (its IdP certificate,
//! entity ids, ACS URL, and a clock inside its validity window).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// `testdata/saml` at the workspace root (part of the repository, so never skipped).
fn dir() -> Option<std::path::PathBuf> {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/saml");
    assert!(
        d.join("idp-cert.pem").exists(),
        "{} is missing",
        d.display()
    );
    Some(d)
}

fn at(rfc3339: &str) -> OffsetDateTime {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
}

fn run(file: &str, shape: bool) -> Option<Result<Verified, SamlError>> {
    let d = dir()?;
    let certs =
        Certificate::parse_pem_bundle(&std::fs::read_to_string(d.join("idp-cert.pem")).unwrap())
            .unwrap();
    run_with(file, shape, &certs)
}

/// The ACS URL each file is addressed to.
fn acs_of(file: &str) -> &'static str {
    if file == EMBEDDED {
        "https://51.15.251.81.xip.io/acs/post"
    } else {
        "https://example.org/acs/post"
    }
}

const EMBEDDED: &str = "signed-assertion-random-embedded-cert.xml";

fn run_with(file: &str, shape: bool, certs: &[Certificate]) -> Option<Result<Verified, SamlError>> {
    let d = dir()?;
    let xml = std::fs::read_to_string(d.join(file)).unwrap();
    let sp = SpSettings {
        sp_entity_id: "urn:mace:example.com:saml:roland:sp",
        acs_url: acs_of(file),
        idp_entity_id: "urn:mace:example.com:saml:roland:idp",
        idp_certs: certs,
        // The files are signed with RSA-SHA1: allow it, so the attack is the only fault.
        allow_sha1: true,
    };
    let now = if file.contains("in-response-first-sig") || file.contains("in-assertion-first-sig") {
        at("2020-09-14T22:38:00Z")
    } else {
        at("2020-12-04T07:50:00Z")
    };
    if shape {
        // Through the public entry point, as the server calls it.
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
        Some(verify_response(&b64, &sp, now))
    } else {
        Some(verify_xml(&xml, &sp, now, false))
    }
}

const HOSTILE: [(&str, SamlError); 8] = [
    ("saml_unsigned.xml", SamlError::Unsigned),
    (
        "signed-assertion-with-hmac.xml",
        SamlError::SignatureAlgorithmNotAllowed,
    ),
    (
        "signed-response-with-hmac.xml",
        SamlError::SignatureAlgorithmNotAllowed,
    ),
    (
        "signed-xsw-assertion-assertion.xml",
        SamlError::AmbiguousDocument,
    ),
    (
        "signed-xsw-assertion-extensions.xml",
        SamlError::AmbiguousDocument,
    ),
    (
        "signed-xsw-assertion-in-assertion-first-sig.xml",
        SamlError::AmbiguousDocument,
    ),
    (
        "signed-xsw-assertion-wrapper.xml",
        SamlError::AmbiguousDocument,
    ),
    (
        "signed-xsw-response-in-response-first-sig.xml",
        SamlError::AmbiguousDocument,
    ),
];

#[test]
fn every_hostile_file_is_refused_for_its_attack() {
    for (file, want) in HOSTILE {
        let Some(got) = run(file, true) else { return };
        assert_eq!(got.err(), Some(want), "{file}");
    }
}

/// The file is genuinely signed by the IdP's key but carries some other certificate in
/// KeyInfo: the embedded certificate must play no part. Verified with the configured
/// certificate it passes (and answers only its own request); configured with the embedded
/// (foreign) certificate instead, the IdP's signature does not verify.
#[test]
fn keyinfo_certificates_are_ignored() {
    let Some(got) = run(EMBEDDED, true) else {
        return;
    };
    let v = got.unwrap();
    assert_eq!(v.assertion_id(), "the-assertion-id");
    let v2 = run(EMBEDDED, true).unwrap().unwrap();
    assert_eq!(
        v2.finish("id-other").err(),
        Some(SamlError::InResponseToMismatch)
    );
    assert_eq!(v.finish("id-abc").unwrap().name_id, "attack-name-id");

    let xml = std::fs::read_to_string(dir().unwrap().join(EMBEDDED)).unwrap();
    let doc = libxml::parser::Parser::default()
        .parse_string(&xml)
        .unwrap();
    let mut found = Vec::new();
    collect(
        &doc.get_root_element().unwrap(),
        NS_DSIG,
        "X509Certificate",
        &mut found,
    );
    let b64: String = found[0].get_content().split_whitespace().collect();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let foreign = Certificate::parse_pem_bundle(&pem).unwrap();
    let idp = Certificate::parse_pem_bundle(
        &std::fs::read_to_string(dir().unwrap().join("idp-cert.pem")).unwrap(),
    )
    .unwrap();
    assert_ne!(foreign, idp, "the embedded certificate is not the IdP's");
    drop(doc);
    assert_eq!(
        run_with(EMBEDDED, true, &foreign).unwrap().err(),
        Some(SamlError::SignatureInvalid)
    );
}

/// Second layer: with the shape check switched off, signature reduction alone still never
/// yields the attacker's identity (it fails, or yields only the genuinely signed content).
#[test]
fn reduction_alone_never_yields_the_attackers_identity() {
    for (file, _) in HOSTILE {
        let Some(got) = run(file, false) else { return };
        println!("{file}: {:?}", got.as_ref().map(|v| &v.identity.name_id));
        match got {
            Ok(v) => {
                assert_ne!(v.identity.name_id, "attack-name-id", "{file}");
                let id = v.finish("id-abc").unwrap();
                assert_ne!(id.name_id, "attack-name-id", "{file}");
            }
            Err(e) => assert!(
                matches!(
                    e,
                    SamlError::Unsigned
                        | SamlError::SignatureInvalid
                        | SamlError::SignatureAlgorithmNotAllowed
                        | SamlError::AssertionNotSigned
                ),
                "{file}: {e:?}"
            ),
        }
    }
}

#[test]
fn sha1_is_refused_unless_allowed() {
    let Some(d) = dir() else { return };
    let certs =
        Certificate::parse_pem_bundle(&std::fs::read_to_string(d.join("idp-cert.pem")).unwrap())
            .unwrap();
    let xml = std::fs::read_to_string(d.join("signed-xsw-assertion-wrapper.xml")).unwrap();
    let sp = SpSettings {
        sp_entity_id: "urn:mace:example.com:saml:roland:sp",
        acs_url: "https://example.org/acs/post",
        idp_entity_id: "urn:mace:example.com:saml:roland:idp",
        idp_certs: &certs,
        allow_sha1: false,
    };
    assert_eq!(
        verify_xml(&xml, &sp, at("2020-12-04T07:50:00Z"), false).err(),
        Some(SamlError::SignatureAlgorithmNotAllowed)
    );
}

#[test]
fn doctype_and_garbage_are_refused() {
    let sp_certs: Vec<Certificate> = Vec::new();
    let sp = SpSettings {
        sp_entity_id: "sp",
        acs_url: "https://sp/acs",
        idp_entity_id: "idp",
        idp_certs: &sp_certs,
        allow_sha1: false,
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let now = OffsetDateTime::now_utc();
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>"#;
    assert_eq!(
        verify_response(&b64(xxe), &sp, now).err(),
        Some(SamlError::DoctypeForbidden)
    );
    assert_eq!(
        verify_response("%%%", &sp, now).err(),
        Some(SamlError::Malformed)
    );
    assert_eq!(
        verify_response(&b64("<a/>"), &sp, now).err(),
        Some(SamlError::NotAResponse)
    );
    let big = "A".repeat(MAX_RESPONSE_BYTES + 4);
    assert_eq!(
        verify_response(&big, &sp, now).err(),
        Some(SamlError::TooLarge)
    );
    assert_eq!(
        Certificate::parse_pem_bundle("nope").err(),
        Some(SamlError::BadCertificate)
    );
}

#[test]
fn metadata_and_request_are_built() {
    let md = sp_metadata(
        "https://kluis.example/sso/saml/acme/metadata",
        "https://kluis.example/sso/saml/acme/acs",
    )
    .unwrap();
    assert!(md.contains("https://kluis.example/sso/saml/acme/acs"));
    let url = authn_request_url(
        "https://idp.example/sso",
        "https://kluis.example/sso/saml/acme/metadata",
        "https://kluis.example/sso/saml/acme/acs",
        "_abc",
        "relay",
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert!(url.starts_with("https://idp.example/sso?SAMLRequest="));
    assert!(url.ends_with("&RelayState=relay"));
}
