//! SAML 2.0 service provider glue over samael + xmlsec: the only place Kluis reads SAML XML.
//!
//! [`verify_response`] takes the base64 `SAMLResponse` of the HTTP-POST binding and returns a
//! [`Verified`] assertion or a precise [`SamlError`]. In this order:
//!
//! 1. size limit, base64, UTF-8; a document type declaration is refused (no entities, no DTD).
//! 2. Shape of the raw document: the root is a protocol `Response`; it holds exactly one
//!    `Assertion` (anywhere), as its direct child, and no other `Response`. Every signature
//!    wrapping attack needs a second copy of the signed element, so this refuses them before
//!    any signature is looked at.
//! 3. Every `ds:Signature` uses an allowed algorithm (RSA/ECDSA with SHA-2; RSA-SHA1 only if
//!    the tenant allows it); HMAC never (the key would come from the document). No signature
//!    at all is [`SamlError::Unsigned`].
//! 4. xmlsec verifies every signature with the configured certificate(s) only (certificates in
//!    `KeyInfo` are ignored), and samael's `reduce_xml_to_signed` drops everything that is not
//!    covered by a verified signature. From here on only the reduced (signed) XML is read, so
//!    an unsigned element can never be mistaken for a signed one.
//! 5. The signed content is the Assertion or the whole Response (with its Assertion). If the
//!    Response is signed: `Destination` = our ACS URL, status Success, issuer. Assertion:
//!    issuer = IdP entity id, `Conditions` with `NotBefore`/`NotOnOrAfter` (small skew) and an
//!    `AudienceRestriction` naming our entity id, a bearer `SubjectConfirmationData` whose
//!    `Recipient` is our ACS URL and whose `NotOnOrAfter` has not passed, a `NameID`, an
//!    `AuthnStatement`.
//! 6. The caller records [`Verified::assertion_id`] in its replay cache, then
//!    [`Verified::finish`] checks `InResponseTo` against the request it sent and hands out the
//!    [`Identity`] (the identity is not reachable before that check).

use std::sync::Mutex;

use base64::Engine as _;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use samael::schema::{Assertion, AuthnRequest, Issuer, NameIdPolicy, Response};
use samael::traits::ToXml;
use time::OffsetDateTime;

const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// A SAMLResponse larger than this is refused before decoding.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on every time condition.
pub const CLOCK_SKEW_SECS: i64 = 120;
/// An assertion issued longer ago than this (plus skew) is refused even if its conditions
/// would still allow it.
pub const MAX_ASSERTION_AGE_SECS: i64 = 10 * 60;

const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// Why a response was refused. [`SamlError::reason`] is a stable snake_case code for audit
/// trails and API errors; nothing from the document is echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the SAML response is too large")]
    TooLarge,
    #[error("the SAML response is not base64-encoded UTF-8 XML")]
    Malformed,
    #[error("the SAML response contains a document type declaration")]
    DoctypeForbidden,
    #[error("the document is not a SAML protocol Response")]
    NotAResponse,
    #[error("the response must hold exactly one assertion, directly under the Response")]
    AmbiguousDocument,
    #[error("encrypted assertions are not supported")]
    EncryptedAssertion,
    #[error("the response carries no signature")]
    Unsigned,
    #[error("a signature uses an algorithm that is not allowed")]
    SignatureAlgorithmNotAllowed,
    #[error("a signature does not verify with the configured IdP certificate")]
    SignatureInvalid,
    #[error("neither the assertion nor the response is covered by a verified signature")]
    AssertionNotSigned,
    #[error("the response was not successful")]
    StatusNotSuccess,
    #[error("the response's Destination is not this service provider's ACS URL")]
    WrongDestination,
    #[error("the issuer is not the configured identity provider")]
    WrongIssuer,
    #[error("the assertion is not addressed to this service provider (audience)")]
    WrongAudience,
    #[error("the assertion's Recipient is not this service provider's ACS URL")]
    WrongRecipient,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion has no bearer subject confirmation")]
    SubjectConfirmationMissing,
    #[error("the assertion has no Conditions")]
    ConditionsMissing,
    #[error("the assertion has no NameID")]
    NameIdMissing,
    #[error("the assertion has no authentication statement")]
    AuthnStatementMissing,
    #[error("the response does not answer the request this browser started")]
    InResponseToMismatch,
    #[error("the identity provider certificate is not a PEM X.509 certificate")]
    BadCertificate,
    #[error("the SAML request could not be built")]
    RequestBuild,
}

impl SamlError {
    pub fn reason(&self) -> &'static str {
        match self {
            SamlError::TooLarge => "too_large",
            SamlError::Malformed => "malformed",
            SamlError::DoctypeForbidden => "doctype_forbidden",
            SamlError::NotAResponse => "not_a_response",
            SamlError::AmbiguousDocument => "ambiguous_document",
            SamlError::EncryptedAssertion => "encrypted_assertion",
            SamlError::Unsigned => "unsigned",
            SamlError::SignatureAlgorithmNotAllowed => "signature_algorithm_not_allowed",
            SamlError::SignatureInvalid => "signature_invalid",
            SamlError::AssertionNotSigned => "assertion_not_signed",
            SamlError::StatusNotSuccess => "status_not_success",
            SamlError::WrongDestination => "wrong_destination",
            SamlError::WrongIssuer => "wrong_issuer",
            SamlError::WrongAudience => "wrong_audience",
            SamlError::WrongRecipient => "wrong_recipient",
            SamlError::NotYetValid => "not_yet_valid",
            SamlError::Expired => "expired",
            SamlError::SubjectConfirmationMissing => "subject_confirmation_missing",
            SamlError::ConditionsMissing => "conditions_missing",
            SamlError::NameIdMissing => "name_id_missing",
            SamlError::AuthnStatementMissing => "authn_statement_missing",
            SamlError::InResponseToMismatch => "in_response_to_mismatch",
            SamlError::BadCertificate => "bad_certificate",
            SamlError::RequestBuild => "request_build_failed",
        }
    }
}

/// One IdP signing certificate (DER), parsed from PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate(Vec<u8>);

impl Certificate {
    /// The certificate's DER bytes (for fingerprints).
    pub fn der(&self) -> &[u8] {
        &self.0
    }

    /// Parses one or more PEM certificates (an IdP may publish a rollover certificate).
    pub fn parse_pem_bundle(pem: &str) -> Result<Vec<Certificate>, SamlError> {
        let certs = openssl::x509::X509::stack_from_pem(pem.as_bytes())
            .map_err(|_| SamlError::BadCertificate)?;
        if certs.is_empty() || certs.len() > 4 {
            return Err(SamlError::BadCertificate);
        }
        certs
            .iter()
            .map(|c| {
                c.to_der()
                    .map(Certificate)
                    .map_err(|_| SamlError::BadCertificate)
            })
            .collect()
    }
}

/// What the service provider expects of a response.
#[derive(Debug, Clone)]
pub struct SpSettings<'a> {
    /// Our entity id: the audience the assertion must name.
    pub sp_entity_id: &'a str,
    /// Our assertion consumer service URL: Destination and Recipient.
    pub acs_url: &'a str,
    /// The IdP's entity id: the Issuer.
    pub idp_entity_id: &'a str,
    /// The only keys a signature may verify with.
    pub idp_certs: &'a [Certificate],
    /// Accept RSA-SHA1 signatures and SHA-1 digests (old IdPs). Off by default.
    pub allow_sha1: bool,
}

/// The person the IdP vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    /// From the `mail`/`email`/emailaddress attribute, or the NameID when its format is
    /// emailAddress.
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A response whose signature and conditions hold; `InResponseTo` is still to be checked.
#[derive(Debug)]
pub struct Verified {
    assertion_id: String,
    expires_at: OffsetDateTime,
    in_response_to: Vec<String>,
    identity: Identity,
}

impl Verified {
    /// The assertion's ID, single use until [`Verified::replay_expires_at`].
    pub fn assertion_id(&self) -> &str {
        &self.assertion_id
    }
    /// When the assertion can no longer be used anyway (its conditions' or subject
    /// confirmation's NotOnOrAfter, plus skew): until then its ID must be remembered.
    pub fn replay_expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
    /// The identity, if the response answers `request_id` (every signed `InResponseTo` must
    /// equal it; unsolicited responses are refused).
    pub fn finish(self, request_id: &str) -> Result<Identity, SamlError> {
        if self.in_response_to.is_empty() || self.in_response_to.iter().any(|i| i != request_id) {
            return Err(SamlError::InResponseToMismatch);
        }
        Ok(self.identity)
    }
}

// libxml2 and xmlsec keep global state; one verification at a time (sign-ins are rare).
static XML_LOCK: Mutex<()> = Mutex::new(());

/// Verifies a base64 `SAMLResponse`; see the crate documentation for the checks.
pub fn verify_response(
    saml_response_b64: &str,
    sp: &SpSettings<'_>,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    if saml_response_b64.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::TooLarge);
    }
    let compact: String = saml_response_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| SamlError::Malformed)?;
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::Malformed)?;
    verify_xml(&xml, sp, now, true)
}

fn verify_xml(
    xml: &str,
    sp: &SpSettings<'_>,
    now: OffsetDateTime,
    check_shape: bool,
) -> Result<Verified, SamlError> {
    refuse_doctype(xml)?;
    let _guard = XML_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let doc = libxml::parser::Parser::default()
        .parse_string(xml)
        .map_err(|_| SamlError::Malformed)?;
    let root = doc.get_root_element().ok_or(SamlError::Malformed)?;
    if !is(&root, NS_PROTOCOL, "Response") {
        return Err(SamlError::NotAResponse);
    }
    if check_shape {
        check_raw_shape(&root)?;
    }
    let mut sigs = Vec::new();
    collect(&root, NS_DSIG, "Signature", &mut sigs);
    if sigs.is_empty() {
        return Err(SamlError::Unsigned);
    }
    for sig in &sigs {
        check_algorithms(sig, sp.allow_sha1)?;
    }
    drop(sigs);
    drop(root);
    drop(doc);

    let certs: Vec<CertificateDer> = sp
        .idp_certs
        .iter()
        .map(|c| CertificateDer::from(c.0.clone()))
        .collect();
    // With SHA-1 allowed the algorithm allow-list above is the only one (samael's has no
    // SHA-1); without, samael enforces the same SHA-2 list again.
    let allowed = [
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
        AllowedSignatureAlgorithm::EcdsaSha384,
        AllowedSignatureAlgorithm::EcdsaSha512,
    ];
    let reduced = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        (!sp.allow_sha1).then_some(&allowed[..]),
    )
    .map_err(|_| SamlError::SignatureInvalid)?;
    drop(_guard);
    check_signed(&reduced, sp, now)
}

fn refuse_doctype(xml: &str) -> Result<(), SamlError> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    loop {
        match r.read_event() {
            Ok(Event::DocType(_)) => return Err(SamlError::DoctypeForbidden),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(SamlError::Malformed),
        }
    }
}

fn is(n: &libxml::tree::Node, ns: &str, name: &str) -> bool {
    n.get_name() == name && n.get_namespace().is_some_and(|x| x.get_href() == ns)
}

fn collect(n: &libxml::tree::Node, ns: &str, name: &str, out: &mut Vec<libxml::tree::Node>) {
    for c in n.get_child_elements() {
        if is(&c, ns, name) {
            out.push(c.clone());
        }
        collect(&c, ns, name, out);
    }
}

/// Exactly one Assertion (or one EncryptedAssertion, which is refused), directly under the
/// root, and no nested Response.
fn check_raw_shape(root: &libxml::tree::Node) -> Result<(), SamlError> {
    let mut responses = Vec::new();
    collect(root, NS_PROTOCOL, "Response", &mut responses);
    let mut assertions = Vec::new();
    collect(root, NS_ASSERTION, "Assertion", &mut assertions);
    let mut encrypted = Vec::new();
    collect(root, NS_ASSERTION, "EncryptedAssertion", &mut encrypted);
    if !responses.is_empty() || assertions.len() > 1 || assertions.len() + encrypted.len() > 1 {
        return Err(SamlError::AmbiguousDocument);
    }
    if !encrypted.is_empty() {
        return Err(SamlError::EncryptedAssertion);
    }
    let Some(a) = assertions.first() else {
        return Err(SamlError::AmbiguousDocument);
    };
    let direct = a.get_parent().is_some_and(|p| {
        is(&p, NS_PROTOCOL, "Response") && p.get_parent().is_none_or(|pp| pp.get_parent().is_none())
    });
    if !direct {
        return Err(SamlError::AmbiguousDocument);
    }
    Ok(())
}

fn check_algorithms(sig: &libxml::tree::Node, allow_sha1: bool) -> Result<(), SamlError> {
    const SIGS: [&str; 6] = [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    ];
    const DIGESTS: [&str; 3] = [
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    ];
    let mut methods = Vec::new();
    collect(sig, NS_DSIG, "SignatureMethod", &mut methods);
    let mut digests = Vec::new();
    collect(sig, NS_DSIG, "DigestMethod", &mut digests);
    if methods.len() != 1 || digests.is_empty() {
        return Err(SamlError::SignatureAlgorithmNotAllowed);
    }
    let sig_ok = |a: &str| SIGS.contains(&a) || (allow_sha1 && a == RSA_SHA1);
    let dig_ok = |a: &str| DIGESTS.contains(&a) || (allow_sha1 && a == SHA1);
    let alg = |n: &libxml::tree::Node| n.get_attribute("Algorithm").unwrap_or_default();
    if !methods.iter().all(|m| sig_ok(&alg(m))) || !digests.iter().all(|d| dig_ok(&alg(d))) {
        return Err(SamlError::SignatureAlgorithmNotAllowed);
    }
    Ok(())
}

fn root_local_name(xml: &str) -> Result<(String, String), SamlError> {
    use quick_xml::events::Event;
    let mut r = quick_xml::NsReader::from_str(xml);
    loop {
        match r.read_resolved_event() {
            Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                let ns = match ns {
                    quick_xml::name::ResolveResult::Bound(n) => {
                        String::from_utf8_lossy(n.as_ref()).into_owned()
                    }
                    _ => String::new(),
                };
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                return Ok((ns, local));
            }
            Ok((_, Event::Eof)) | Err(_) => return Err(SamlError::AssertionNotSigned),
            Ok(_) => {}
        }
    }
}

fn issuer_is(i: Option<&Issuer>, expected: &str) -> bool {
    i.and_then(|i| i.value.as_deref()).map(str::trim) == Some(expected)
}

fn ms(dt: &chrono::DateTime<chrono::Utc>) -> i128 {
    i128::from(dt.timestamp_millis())
}

/// Everything read here comes from the reduced, signature-covered XML.
fn check_signed(
    reduced: &str,
    sp: &SpSettings<'_>,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    let now_ms = now.unix_timestamp_nanos() / 1_000_000;
    let skew = i128::from(CLOCK_SKEW_SECS) * 1000;
    let (ns, local) = root_local_name(reduced)?;
    let mut in_response_to = Vec::new();
    let assertion: Assertion = match (ns.as_str(), local.as_str()) {
        (NS_PROTOCOL, "Response") => {
            let r: Response = reduced.parse().map_err(|_| SamlError::AssertionNotSigned)?;
            if r.destination.as_deref() != Some(sp.acs_url) {
                return Err(SamlError::WrongDestination);
            }
            let ok = r
                .status
                .as_ref()
                .and_then(|s| s.status_code.value.as_deref())
                == Some(STATUS_SUCCESS);
            if !ok {
                return Err(SamlError::StatusNotSuccess);
            }
            if r.issuer.is_some() && !issuer_is(r.issuer.as_ref(), sp.idp_entity_id) {
                return Err(SamlError::WrongIssuer);
            }
            if r.encrypted_assertion.is_some() {
                return Err(SamlError::EncryptedAssertion);
            }
            in_response_to.extend(r.in_response_to.clone());
            r.assertion.ok_or(SamlError::AssertionNotSigned)?
        }
        (NS_ASSERTION, "Assertion") => {
            reduced.parse().map_err(|_| SamlError::AssertionNotSigned)?
        }
        _ => return Err(SamlError::AssertionNotSigned),
    };

    if !issuer_is(Some(&assertion.issuer), sp.idp_entity_id) {
        return Err(SamlError::WrongIssuer);
    }
    let issued = ms(&assertion.issue_instant);
    if issued > now_ms + skew {
        return Err(SamlError::NotYetValid);
    }
    if issued + i128::from(MAX_ASSERTION_AGE_SECS) * 1000 + skew < now_ms {
        return Err(SamlError::Expired);
    }
    let cond = assertion
        .conditions
        .as_ref()
        .ok_or(SamlError::ConditionsMissing)?;
    if cond
        .not_before
        .as_ref()
        .is_some_and(|nb| ms(nb) > now_ms + skew)
    {
        return Err(SamlError::NotYetValid);
    }
    let cond_end = cond
        .not_on_or_after
        .as_ref()
        .ok_or(SamlError::ConditionsMissing)?;
    if ms(cond_end) + skew <= now_ms {
        return Err(SamlError::Expired);
    }
    // Every AudienceRestriction must name us (SAML core 2.5.1.4); at least one is required.
    let restrictions = cond
        .audience_restrictions
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or(SamlError::WrongAudience)?;
    if !restrictions
        .iter()
        .all(|r| r.audience.iter().any(|a| a.trim() == sp.sp_entity_id))
    {
        return Err(SamlError::WrongAudience);
    }

    let subject = assertion.subject.as_ref().ok_or(SamlError::NameIdMissing)?;
    let name_id = subject
        .name_id
        .as_ref()
        .filter(|n| !n.value.trim().is_empty())
        .ok_or(SamlError::NameIdMissing)?;
    let bearer: Vec<_> = subject
        .subject_confirmations
        .iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .collect();
    if bearer.is_empty() {
        return Err(SamlError::SubjectConfirmationMissing);
    }
    let mut sc_end = None;
    for c in bearer {
        let d = c
            .subject_confirmation_data
            .as_ref()
            .ok_or(SamlError::SubjectConfirmationMissing)?;
        if d.recipient.as_deref() != Some(sp.acs_url) {
            return Err(SamlError::WrongRecipient);
        }
        if d.not_before
            .as_ref()
            .is_some_and(|nb| ms(nb) > now_ms + skew)
        {
            return Err(SamlError::NotYetValid);
        }
        let end = d
            .not_on_or_after
            .as_ref()
            .ok_or(SamlError::SubjectConfirmationMissing)?;
        if ms(end) + skew <= now_ms {
            return Err(SamlError::Expired);
        }
        sc_end = Some(sc_end.map_or(ms(end), |e: i128| e.max(ms(end))));
        match &d.in_response_to {
            Some(i) => in_response_to.push(i.clone()),
            // A bearer confirmation that answers no request is an unsolicited response.
            None => return Err(SamlError::InResponseToMismatch),
        }
    }
    if assertion
        .authn_statements
        .as_deref()
        .is_none_or(<[_]>::is_empty)
    {
        return Err(SamlError::AuthnStatementMissing);
    }

    let end = ms(cond_end).max(sc_end.unwrap_or(0)) + skew;
    let expires_at = OffsetDateTime::from_unix_timestamp_nanos(end * 1_000_000)
        .map_err(|_| SamlError::Expired)?;
    let attr = |names: &[&str]| -> Option<String> {
        assertion
            .attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| s.attributes.iter())
            .filter(|a| {
                names
                    .iter()
                    .any(|n| a.name.as_deref() == Some(n) || a.friendly_name.as_deref() == Some(n))
            })
            .flat_map(|a| a.values.iter())
            .find_map(|v| v.value.as_deref().map(str::trim).filter(|v| !v.is_empty()))
            .map(str::to_owned)
    };
    let email = attr(&[
        "mail",
        "email",
        "emailAddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ])
    .or_else(|| {
        (name_id.format.as_deref() == Some(NAMEID_EMAIL)).then(|| name_id.value.trim().to_owned())
    });
    let display_name = attr(&[
        "displayName",
        "cn",
        "urn:oid:2.16.840.1.113730.3.1.241",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    ]);
    Ok(Verified {
        assertion_id: assertion.id.clone(),
        expires_at,
        in_response_to,
        identity: Identity {
            issuer: sp.idp_entity_id.to_owned(),
            name_id: name_id.value.trim().to_owned(),
            name_id_format: name_id.format.clone(),
            email,
            display_name,
        },
    })
}

/// The IdP URL to redirect the browser to (HTTP-Redirect binding, unsigned AuthnRequest):
/// `request_id` must be a fresh xs:ID (start with a letter or `_`).
pub fn authn_request_url(
    idp_sso_url: &str,
    sp_entity_id: &str,
    acs_url: &str,
    request_id: &str,
    relay_state: &str,
    now: OffsetDateTime,
) -> Result<String, SamlError> {
    let issue_instant = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), 0)
        .ok_or(SamlError::RequestBuild)?;
    let req = AuthnRequest {
        id: request_id.to_owned(),
        version: "2.0".to_owned(),
        issue_instant,
        destination: Some(idp_sso_url.to_owned()),
        issuer: Some(Issuer {
            value: Some(sp_entity_id.to_owned()),
            ..Issuer::default()
        }),
        name_id_policy: Some(NameIdPolicy {
            format: None,
            sp_name_qualifier: None,
            allow_create: Some(true),
        }),
        assertion_consumer_service_url: Some(acs_url.to_owned()),
        protocol_binding: Some(BINDING_POST.to_owned()),
        ..AuthnRequest::default()
    };
    req.redirect(relay_state)
        .ok()
        .flatten()
        .map(|u| u.to_string())
        .ok_or(SamlError::RequestBuild)
}

/// SP metadata (EntityDescriptor with one HTTP-POST ACS) to give to the IdP.
pub fn sp_metadata(sp_entity_id: &str, acs_url: &str) -> Result<String, SamlError> {
    let sp = samael::service_provider::ServiceProviderBuilder::default()
        .entity_id(sp_entity_id.to_owned())
        .acs_url(acs_url.to_owned())
        // samael insists on a logout URL; Kluis has no single logout, so it is removed below.
        .slo_url(acs_url.to_owned())
        .metadata_url(None::<String>)
        .build()
        .map_err(|_| SamlError::RequestBuild)?;
    let mut md = sp.metadata().map_err(|_| SamlError::RequestBuild)?;
    for d in md.sp_sso_descriptors.iter_mut().flatten() {
        d.single_logout_services = None;
    }
    md.to_string().map_err(|_| SamlError::RequestBuild)
}

#[cfg(test)]
mod tests;
