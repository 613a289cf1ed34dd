//! Rows as stored. Times are unix milliseconds; the service layer turns rows into domain types.

use sqlx::FromRow;

use crate::ids::{ApiKeyId, PlatformKeyId, SessionId, TenantId, UserId};

#[derive(Debug, Clone, FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub tenant_id: TenantId,
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub tenant_id: TenantId,
    pub id: SessionId,
    pub user_id: UserId,
    pub csrf_hash: Vec<u8>,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub tenant_id: TenantId,
    pub id: ApiKeyId,
    pub name: String,
    /// JSON array of scope strings.
    pub scopes: String,
    pub previous_valid_until: Option<i64>,
    pub created_by: Option<UserId>,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An API key found by one of its secret hashes; `via_previous` says the caller used the
/// pre-rotation secret (valid only until `previous_valid_until`).
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyMatch {
    #[sqlx(flatten)]
    pub key: ApiKeyRow,
    pub via_previous: bool,
    /// The owning tenant's status, fetched in the same statement.
    pub tenant_status: String,
}

/// A live session with what authentication needs about its user and tenant, in one statement.
#[derive(Debug, Clone, FromRow)]
pub struct SessionAuthRow {
    #[sqlx(flatten)]
    pub session: SessionRow,
    pub user_role: String,
    pub user_status: String,
    pub tenant_status: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct PlatformKeyRow {
    pub id: PlatformKeyId,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
    pub now: i64,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: &'a [u8],
    pub csrf_hash: &'a [u8],
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub name: &'a str,
    pub scopes: &'a str,
    pub secret_hash: &'a [u8],
    pub created_by: Option<UserId>,
    pub now: i64,
}

/// Patch for a user; `None` leaves the column unchanged.
#[derive(Default)]
pub struct UserPatch<'a> {
    pub display_name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}
