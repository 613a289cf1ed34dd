//! OpenID Connect relying party for Kluis's per-tenant single sign-on.
//!
//! Protocol only: no database, no tenants, no sessions. [`RelyingParty`] discovers a provider
//! (`/.well-known/openid-configuration`), caches its metadata and JWKS, builds the
//! authorization-code request (PKCE S256, `state`, `nonce`) and completes it: code exchange,
//! ID token verification (signature against the JWKS, issuer, audience, expiry, nonce, an
//! allow-list of asymmetric algorithms: `none` and HMAC are refused), then the userinfo
//! request, whose `sub` must equal the ID token's.
//!
//! Every failure is an [`OidcError`] with a stable reason code for the audit trail. Nothing
//! here logs or returns tokens, codes, secrets or URLs with query strings.
//!
//! Outbound requests: HTTPS only, no redirects, 10 s timeout, bodies capped at 512 KiB, and
//! (unless [`RpConfig::allow_private_networks`]) never to loopback, private, link-local or
//! other non-public addresses, whether named by a DNS name or an IP literal: the issuer URL is
//! tenant input, and the endpoints come from the provider's metadata.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};

/// How long discovered metadata and keys are used before they are fetched again (an unknown
/// `kid` refetches the keys at once).
const METADATA_TTL: Duration = Duration::from_secs(3600);
const MAX_BODY: usize = 512 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// ID token signature algorithms accepted. Asymmetric only: `none` is refused, and HMAC would
/// make the client secret a signing key.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why a discovery, exchange or verification failed. [`OidcError::reason`] is the stable code
/// written to the audit trail; the `Display` text adds no token material either.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OidcError {
    #[error("issuer URL is not an https URL")]
    InsecureUrl,
    #[error("the address of an OIDC endpoint is not public")]
    AddressNotAllowed,
    #[error("provider discovery failed: {0}")]
    Discovery(String),
    #[error("the provider does not offer a required endpoint: {0}")]
    MissingEndpoint(&'static str),
    #[error("the token endpoint refused the code or failed: {0}")]
    TokenExchange(String),
    #[error("the token response had no ID token")]
    NoIdToken,
    #[error("ID token issuer is wrong")]
    WrongIssuer,
    #[error("ID token audience is wrong")]
    WrongAudience,
    #[error("ID token expired")]
    Expired,
    #[error("ID token nonce is wrong")]
    WrongNonce,
    #[error("ID token is not signed (alg none)")]
    Unsigned,
    #[error("ID token signature algorithm is not allowed")]
    AlgNotAllowed,
    #[error("ID token signed with a key the provider does not publish")]
    UnknownKey,
    #[error("ID token signature is invalid")]
    BadSignature,
    #[error("ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("userinfo request failed: {0}")]
    UserInfo(String),
    #[error("userinfo sub differs from the ID token sub")]
    UserInfoSubMismatch,
}

impl OidcError {
    /// Stable, machine-readable reason (audit trail, tests).
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::InsecureUrl => "insecure_url",
            OidcError::AddressNotAllowed => "address_not_allowed",
            OidcError::Discovery(_) => "discovery_failed",
            OidcError::MissingEndpoint(_) => "missing_endpoint",
            OidcError::TokenExchange(_) => "token_exchange_failed",
            OidcError::NoIdToken => "no_id_token",
            OidcError::WrongIssuer => "wrong_issuer",
            OidcError::WrongAudience => "wrong_audience",
            OidcError::Expired => "id_token_expired",
            OidcError::WrongNonce => "wrong_nonce",
            OidcError::Unsigned => "unsigned_id_token",
            OidcError::AlgNotAllowed => "alg_not_allowed",
            OidcError::UnknownKey => "unknown_signing_key",
            OidcError::BadSignature => "bad_signature",
            OidcError::InvalidIdToken(_) => "invalid_id_token",
            OidcError::UserInfo(_) => "userinfo_failed",
            OidcError::UserInfoSubMismatch => "userinfo_sub_mismatch",
        }
    }
}

type Result<T, E = OidcError> = std::result::Result<T, E>;

/// Operator settings for outbound OIDC requests.
#[derive(Debug, Clone, Default)]
pub struct RpConfig {
    /// Extra trusted CA certificates (PEM), e.g. a company CA in front of an on-premises IdP.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Allow providers on loopback, private and link-local addresses (tests, on-premises IdPs).
    pub allow_private_networks: bool,
}

/// One tenant's client registration at one provider.
#[derive(Clone)]
pub struct ClientSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// The per-flow secrets the caller keeps (hashed) between start and callback.
pub struct FlowSecrets<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    /// PKCE code verifier: 43-128 characters of `[A-Za-z0-9-._~]`.
    pub pkce_verifier: &'a str,
}

/// Who signed in, after every check passed.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// True only if the provider asserted it (`email_verified: true`, or Entra ID's
    /// `xms_edov: true`).
    pub email_verified: bool,
    pub name: Option<String>,
    /// Google Workspace hosted domain (`hd` claim of the verified ID token).
    pub hosted_domain: Option<String>,
}

struct Provider {
    metadata: CoreProviderMetadata,
    fetched: Instant,
}

/// Discovery cache and HTTP client, shared by every tenant (cheap to clone).
#[derive(Clone)]
pub struct RelyingParty {
    http: reqwest::Client,
    allow_private: bool,
    providers: Arc<Mutex<HashMap<String, Arc<Provider>>>>,
}

impl RelyingParty {
    pub fn new(cfg: &RpConfig) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .https_only(true)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: cfg.allow_private_networks,
            }));
        if let Some(pem) = &cfg.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "the OIDC CA file holds no readable PEM certificate".to_owned())?;
            if certs.is_empty() {
                return Err("the OIDC CA file holds no certificate".to_owned());
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(RelyingParty {
            http: b
                .build()
                .map_err(|_| "building the OIDC HTTP client failed".to_owned())?,
            allow_private: cfg.allow_private_networks,
            providers: Arc::default(),
        })
    }

    /// Checks an issuer URL a tenant wants to use: https, no query or fragment, and a public
    /// address unless private networks are allowed. Does not contact it.
    pub fn check_issuer(&self, issuer: &str) -> Result<()> {
        let url = url::Url::parse(issuer).map_err(|_| OidcError::InsecureUrl)?;
        if url.scheme() != "https"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(OidcError::InsecureUrl);
        }
        self.check_url(&url)
    }

    fn check_url(&self, url: &url::Url) -> Result<()> {
        if url.scheme() != "https" {
            return Err(OidcError::InsecureUrl);
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OidcError::InsecureUrl),
        };
        // Names are checked when they resolve (GuardedResolver).
        if let Some(ip) = ip
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(OidcError::AddressNotAllowed);
        }
        Ok(())
    }

    /// The provider's metadata and keys: cached, refetched after [`METADATA_TTL`].
    async fn provider(&self, issuer: &str, refresh_keys: bool) -> Result<Arc<Provider>> {
        let cached = self
            .providers
            .lock()
            .ok()
            .and_then(|m| m.get(issuer).cloned());
        if let Some(p) = cached
            && p.fetched.elapsed() < METADATA_TTL
        {
            if !refresh_keys {
                return Ok(p);
            }
            // Key rotation: same metadata, fresh JWKS.
            let jwks = self.fetch_jwks(&p.metadata).await?;
            let fresh = Arc::new(Provider {
                metadata: p.metadata.clone().set_jwks(jwks),
                fetched: p.fetched,
            });
            self.remember(issuer, &fresh);
            return Ok(fresh);
        }
        self.check_issuer(issuer)?;
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|_| OidcError::InsecureUrl)?;
        let client = self.guarded();
        // openidconnect checks that the document's `issuer` is exactly this URL.
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &client)
            .await
            .map_err(|e| OidcError::Discovery(discovery_reason(&e)))?;
        for u in [
            Some(metadata.authorization_endpoint().url()),
            metadata.token_endpoint().map(|u| u.url()),
            metadata.userinfo_endpoint().map(|u| u.url()),
            Some(metadata.jwks_uri().url()),
        ]
        .into_iter()
        .flatten()
        {
            self.check_url(u)?;
        }
        let p = Arc::new(Provider {
            metadata,
            fetched: Instant::now(),
        });
        self.remember(issuer, &p);
        Ok(p)
    }

    fn remember(&self, issuer: &str, p: &Arc<Provider>) {
        if let Ok(mut m) = self.providers.lock() {
            m.insert(issuer.to_owned(), p.clone());
        }
    }

    async fn fetch_jwks(&self, metadata: &CoreProviderMetadata) -> Result<CoreJsonWebKeySet> {
        let client = self.guarded();
        CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &client)
            .await
            .map_err(|_| OidcError::Discovery("jwks fetch failed".to_owned()))
    }

    /// Fetches and checks the provider's discovery document (used when a tenant saves its
    /// configuration, so mistakes show at once).
    pub async fn discover(&self, issuer: &str) -> Result<()> {
        self.provider(issuer, false).await.map(|_| ())
    }

    /// The URL to send the browser to. `extra` adds authorization parameters (e.g. Google's
    /// `hd`).
    pub async fn authorization_url(
        &self,
        c: &ClientSettings,
        flow: &FlowSecrets<'_>,
        extra: &[(&str, &str)],
    ) -> Result<String> {
        let p = self.provider(&c.issuer, false).await?;
        let client = core_client(&p.metadata, c)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            flow.pkce_verifier.to_owned(),
        ));
        let state = flow.state.to_owned();
        let nonce = flow.nonce.to_owned();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge);
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let (url, _, _) = req.url();
        Ok(url.to_string())
    }

    /// Exchanges the code and verifies everything. `nonce_ok` compares the ID token's nonce
    /// with the one stored for this flow (the caller keeps only its hash).
    pub async fn complete(
        &self,
        c: &ClientSettings,
        code: &str,
        pkce_verifier: &str,
        nonce_ok: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Identity> {
        let p = self.provider(&c.issuer, false).await?;
        let client = core_client(&p.metadata, c)?;
        let guarded = self.guarded();
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| OidcError::MissingEndpoint("token"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&guarded)
            .await
            .map_err(|e| OidcError::TokenExchange(token_error_reason(&e)))?;
        let id_token = token.id_token().ok_or(OidcError::NoIdToken)?;

        let claims = match verify(&p, c, id_token, nonce_ok) {
            // The provider may have rotated its keys since we fetched them: once, refetch.
            Err(OidcError::UnknownKey) => {
                let p = self.provider(&c.issuer, true).await?;
                verify(&p, c, id_token, nonce_ok)?
            }
            other => other?,
        };

        let userinfo_url = p
            .metadata
            .userinfo_endpoint()
            .ok_or(OidcError::MissingEndpoint("userinfo"))?
            .url()
            .clone();
        let info = self
            .userinfo(&userinfo_url, token.access_token().secret())
            .await?;
        let sub = info.get("sub").and_then(serde_json::Value::as_str);
        if sub != Some(claims.subject.as_str()) {
            return Err(OidcError::UserInfoSubMismatch);
        }
        let str_claim = |k: &str| {
            info.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let bool_claim = |k: &str| info.get(k).and_then(bool_value).unwrap_or(false);
        // The address comes from the ID token if it has one, else from userinfo; the verified
        // flag always from the same source as the address it describes.
        let (email, email_verified) = match claims.email.clone() {
            Some(e) => (Some(e), claims.email_verified),
            None => (
                str_claim("email"),
                bool_claim("email_verified") || bool_claim("xms_edov"),
            ),
        };
        Ok(Identity {
            issuer: c.issuer.clone(),
            subject: claims.subject,
            email,
            email_verified,
            name: str_claim("name").or(claims.name),
            hosted_domain: claims.hosted_domain,
        })
    }

    async fn userinfo(&self, url: &url::Url, access_token: &str) -> Result<serde_json::Value> {
        self.check_url(url)?;
        let res = self
            .http
            .get(url.as_str())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::UserInfo(transport_reason(&e)))?;
        if !res.status().is_success() {
            return Err(OidcError::UserInfo(format!(
                "status {}",
                res.status().as_u16()
            )));
        }
        let is_json = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(OidcError::UserInfo("not a JSON response".to_owned()));
        }
        let body = read_capped(res)
            .await
            .map_err(|e| OidcError::UserInfo(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|_| OidcError::UserInfo("invalid JSON".to_owned()))
    }

    /// An `AsyncHttpClient` for openidconnect that applies the address and size rules.
    fn guarded(&self) -> GuardedHttp {
        GuardedHttp { rp: self.clone() }
    }
}

struct VerifiedClaims {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    hosted_domain: Option<String>,
}

fn core_client(
    metadata: &CoreProviderMetadata,
    c: &ClientSettings,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
> {
    let redirect = RedirectUrl::new(c.redirect_uri.clone())
        .map_err(|_| OidcError::Discovery("invalid redirect URI".to_owned()))?;
    Ok(CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(c.client_id.clone()),
        Some(ClientSecret::new(c.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

fn verify(
    p: &Provider,
    c: &ClientSettings,
    id_token: &CoreIdToken,
    nonce_ok: &(dyn Fn(&str) -> bool + Sync),
) -> Result<VerifiedClaims> {
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(c.client_id.clone()),
        p.metadata.issuer().clone(),
        p.metadata.jwks().clone(),
    )
    .set_allowed_algs(ALLOWED_ALGS);
    let claims = id_token
        .claims(&verifier, |n: Option<&Nonce>| match n {
            Some(n) if nonce_ok(n.secret()) => Ok(()),
            _ => Err("nonce mismatch".to_owned()),
        })
        .map_err(map_claims_error)?;
    // `hd` (Google) and `xms_edov` (Entra ID) are not in openidconnect's standard claim set;
    // read them from the payload whose signature was just verified.
    let payload = payload_json(&id_token.to_string()).unwrap_or_default();
    let hosted_domain = payload
        .get("hd")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let edov = payload
        .get("xms_edov")
        .and_then(bool_value)
        .unwrap_or(false);
    Ok(VerifiedClaims {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false) || edov,
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        hosted_domain,
    })
}

fn payload_json(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A boolean claim; some providers send `"true"` as a string.
fn bool_value(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => Some(s == "true"),
        _ => None,
    }
}

fn map_claims_error(e: ClaimsVerificationError) -> OidcError {
    match e {
        ClaimsVerificationError::Expired(_) => OidcError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => OidcError::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => OidcError::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => OidcError::WrongNonce,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoSignature => OidcError::Unsigned,
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_) => OidcError::AlgNotAllowed,
            SignatureVerificationError::NoMatchingKey => OidcError::UnknownKey,
            SignatureVerificationError::CryptoError(_) => OidcError::BadSignature,
            other => OidcError::InvalidIdToken(format!("signature: {other}")),
        },
        ClaimsVerificationError::InvalidSubject(_) => {
            OidcError::InvalidIdToken("subject".to_owned())
        }
        ClaimsVerificationError::Unsupported(_) => {
            OidcError::InvalidIdToken("unsupported".to_owned())
        }
        _ => OidcError::InvalidIdToken("claims".to_owned()),
    }
}

/// Discovery errors name what failed, never response bodies.
fn discovery_reason<E: std::error::Error>(e: &openidconnect::DiscoveryError<E>) -> String {
    match e {
        openidconnect::DiscoveryError::Request(inner) => format!("request: {inner}"),
        openidconnect::DiscoveryError::Response(status, _, _) => {
            format!("status {}", status.as_u16())
        }
        openidconnect::DiscoveryError::Parse(_) => "unparsable document".to_owned(),
        openidconnect::DiscoveryError::Validation(_) => {
            "document does not match the issuer".to_owned()
        }
        _ => "failed".to_owned(),
    }
}

fn token_error_reason<RE: std::error::Error, T: openidconnect::ErrorResponse>(
    e: &openidconnect::RequestTokenError<RE, T>,
) -> String {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => {
            // The error code only (e.g. `invalid_grant`): descriptions may echo input.
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "error response".to_owned())
        }
        openidconnect::RequestTokenError::Request(inner) => format!("request: {inner}"),
        openidconnect::RequestTokenError::Parse(_, _) => "unparsable token response".to_owned(),
        openidconnect::RequestTokenError::Other(_) => "failed".to_owned(),
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connect failed".to_owned()
    } else {
        "transport error".to_owned()
    }
}

/// Transport errors of [`GuardedHttp`]; carry no URL or body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("address not allowed")]
    NotAllowed,
    #[error("{0}")]
    Transport(String),
    #[error("response too large")]
    TooLarge,
}

struct GuardedHttp {
    rp: RelyingParty,
}

impl<'c> openidconnect::AsyncHttpClient<'c> for GuardedHttp {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let url = url::Url::parse(&request.uri().to_string())
                .map_err(|_| HttpError::Transport("invalid URL".to_owned()))?;
            self.rp.check_url(&url).map_err(|_| HttpError::NotAllowed)?;
            let (parts, body) = request.into_parts();
            let mut rb = self.rp.http.request(parts.method, url.as_str());
            for (k, v) in &parts.headers {
                rb = rb.header(k, v);
            }
            let res = rb
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError::Transport(transport_reason(&e)))?;
            let mut out = openidconnect::http::Response::builder().status(res.status());
            for (k, v) in res.headers() {
                out = out.header(k, v);
            }
            let body = read_capped(res).await?;
            out.body(body)
                .map_err(|_| HttpError::Transport("invalid response".to_owned()))
        })
    }
}

async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| HttpError::Transport(transport_reason(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Resolves names and drops non-public addresses (unless allowed), so a provider name that
/// points at an internal address cannot be used to reach it.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    Box::new(HttpError::NotAllowed) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Globally routable unicast addresses only.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared address space
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "20.190.128.1", "2a00:1450:4001::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn issuer_must_be_https_and_public() {
        let rp = RelyingParty::new(&RpConfig::default()).unwrap();
        assert_eq!(
            rp.check_issuer("http://idp.example.com"),
            Err(OidcError::InsecureUrl)
        );
        assert_eq!(
            rp.check_issuer("https://127.0.0.1:8443"),
            Err(OidcError::AddressNotAllowed)
        );
        assert_eq!(
            rp.check_issuer("https://[::1]/"),
            Err(OidcError::AddressNotAllowed)
        );
        assert_eq!(
            rp.check_issuer("https://idp.example.com/?x=1"),
            Err(OidcError::InsecureUrl)
        );
        assert!(
            rp.check_issuer("https://login.microsoftonline.com/x/v2.0")
                .is_ok()
        );
        let open = RelyingParty::new(&RpConfig {
            allow_private_networks: true,
            ..RpConfig::default()
        })
        .unwrap();
        assert!(open.check_issuer("https://127.0.0.1:8443").is_ok());
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let c = ClientSettings {
            issuer: "https://idp".into(),
            client_id: "id".into(),
            client_secret: "s3cr3t-value".into(),
            redirect_uri: "https://kluis/cb".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
