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
    /// Sealed.
    pub email: Vec<u8>,
    /// Sealed.
    pub display_name: Vec<u8>,
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
    /// Sealed.
    pub ip: Vec<u8>,
    /// Sealed.
    pub user_agent: Vec<u8>,
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
    pub email_bidx: &'a [u8],
    pub email: &'a [u8],
    pub display_name: &'a [u8],
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
    pub now: i64,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: &'a [u8],
    pub csrf_hash: &'a [u8],
    pub ip: &'a [u8],
    pub user_agent: &'a [u8],
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
    pub display_name: Option<&'a [u8]>,
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

/// A wrapped per-tenant key.
#[derive(Debug, Clone, FromRow)]
pub struct TenantKeyRow {
    /// `data` (sealing) or `index` (blind indexes).
    pub purpose: String,
    pub version: i64,
    pub wrapped: Vec<u8>,
    pub kek_id: String,
    pub state: String,
    pub sealed_count: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditEventRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Sealed JSON.
    pub details: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// A stored event borrowed from the database row (streaming verification: no allocation).
#[derive(Debug, Clone, Copy)]
pub struct AuditEventRef<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub details: &'a [u8],
    pub leaf_hash: &'a [u8],
}

impl AuditEventRow {
    pub fn as_ref(&self) -> AuditEventRef<'_> {
        AuditEventRef {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            outcome: &self.outcome,
            object_type: self.object_type.as_deref(),
            object_id: self.object_id.as_deref(),
            details: &self.details,
            leaf_hash: &self.leaf_hash,
        }
    }
}

pub struct NewAuditEvent<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub ip_bidx: Option<&'a [u8]>,
    pub details: &'a [u8],
    pub leaf_hash: &'a [u8],
}

/// Filters for the audit query; `None` means "any".
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub ip_bidx: Option<Vec<u8>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditCheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub at: i64,
}
