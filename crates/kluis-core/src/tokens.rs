//! Wire formats of bearer secrets. Each embeds the (non-secret) tenant id so the server can
//! open that tenant's transaction before looking the secret up: no lookup ever scans across
//! tenants. Only SHA-256 hashes of the secret part are stored.

use crate::TenantId;
use uuid::Uuid;

pub const API_KEY_PREFIX: &str = "kluis_";
pub const PLATFORM_KEY_PREFIX: &str = "kluisp_";

/// `<tenant uuid, 32 hex>.<secret>` — the session cookie value.
pub fn session_token(tenant: TenantId, secret: &str) -> String {
    format!("{}.{secret}", tenant.0.simple())
}

pub fn parse_session_token(v: &str) -> Option<(TenantId, &str)> {
    let (t, secret) = v.split_once('.')?;
    Some((parse_tenant(t)?, non_empty_secret(secret)?))
}

/// `<tenant uuid, 32 hex>.<secret>` — the token of a one-time account link (password reset,
/// invitation), carried in the link's URL fragment.
pub fn link_token(tenant: TenantId, secret: &str) -> String {
    session_token(tenant, secret)
}

pub fn parse_link_token(v: &str) -> Option<(TenantId, &str)> {
    parse_session_token(v)
}

/// `kluis_<tenant uuid, 32 hex>_<secret>` — an API key.
pub fn api_key(tenant: TenantId, secret: &str) -> String {
    format!("{API_KEY_PREFIX}{}_{secret}", tenant.0.simple())
}

pub fn parse_api_key(v: &str) -> Option<(TenantId, &str)> {
    let rest = v.strip_prefix(API_KEY_PREFIX)?;
    let t = rest.get(..32)?;
    let secret = rest.get(32..)?.strip_prefix('_')?;
    Some((parse_tenant(t)?, non_empty_secret(secret)?))
}

pub const SCIM_TOKEN_PREFIX: &str = "kluisscim_";

/// `kluisscim_<tenant uuid, 32 hex>_<secret>` — a tenant's SCIM bearer token. Its own prefix,
/// so it never parses as an API key and an API key never parses as it.
pub fn scim_token(tenant: TenantId, secret: &str) -> String {
    format!("{SCIM_TOKEN_PREFIX}{}_{secret}", tenant.0.simple())
}

pub fn parse_scim_token(v: &str) -> Option<(TenantId, &str)> {
    let rest = v.strip_prefix(SCIM_TOKEN_PREFIX)?;
    let t = rest.get(..32)?;
    let secret = rest.get(32..)?.strip_prefix('_')?;
    Some((parse_tenant(t)?, non_empty_secret(secret)?))
}

fn parse_tenant(hex: &str) -> Option<TenantId> {
    if hex.len() != 32 {
        return None;
    }
    Uuid::try_parse(hex).ok().map(TenantId)
}

fn non_empty_secret(s: &str) -> Option<&str> {
    // Generated secrets are 43 base64url characters; bound the length so junk is cheap to reject.
    (!s.is_empty() && s.len() <= 128).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = TenantId::new();
        let s = kluis_crypto::token::generate_secret();
        assert_eq!(parse_api_key(&api_key(t, &s)), Some((t, s.as_str())));
        assert_eq!(
            parse_session_token(&session_token(t, &s)),
            Some((t, s.as_str()))
        );
        assert_eq!(parse_api_key("kluis_nothex_x"), None);
        assert_eq!(parse_session_token("abc"), None);
    }
}
