//! Rows as stored. Times are unix milliseconds; the service layer turns rows into domain types.

use sqlx::FromRow;

use crate::ids::{ApiKeyId, PlatformKeyId, SessionId, TenantId, UserId};
use kluis_types::{Role, Status};

#[derive(Debug, Clone, FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: Status,
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
    pub role: Role,
    pub status: Status,
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
    /// `password`, `mfa`, `pending_mfa` or `pending_enrol` (see migration 0010).
    pub stage: String,
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
    pub tenant_status: Status,
}

/// A live session with what authentication needs about its user and tenant, in one statement.
#[derive(Debug, Clone, FromRow)]
pub struct SessionAuthRow {
    #[sqlx(flatten)]
    pub session: SessionRow,
    pub user_role: Role,
    pub user_status: Status,
    pub tenant_status: Status,
    /// The tenant's roles that must use a second factor (comma-separated), if any.
    pub mfa_required_roles: Option<String>,
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
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub now: i64,
}

/// One row's two sealed columns, re-encrypted: [`crate::TenantTx::reseal_users`] and
/// [`crate::TenantTx::reseal_sessions`] write `new` only where the row still holds `old`.
pub struct Reseal<'a, I> {
    pub id: I,
    /// The values read (users: email, display_name; sessions: ip, user_agent).
    pub old: [&'a [u8]; 2],
    /// Their replacements, same order.
    pub new: [&'a [u8]; 2],
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
    /// See [`SessionRow::stage`].
    pub stage: &'a str,
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
    pub role: Option<Role>,
    pub status: Option<Status>,
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

/// A CRM record as stored; `fields` is sealed.
#[derive(Debug, Clone, FromRow)]
pub struct CrmRecordRow {
    pub id: crate::ids::RecordId,
    pub object_type: String,
    pub owner_id: Option<UserId>,
    pub company_id: Option<crate::ids::RecordId>,
    pub revision: i64,
    /// Sealed JSON object.
    pub fields: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    #[sqlx(flatten)]
    pub deal: DealCols,
    #[sqlx(flatten)]
    pub task: TaskCols,
    /// Comma-separated kinds of flagged sensitive data (never values).
    pub sensitive: Option<String>,
}

/// The plain columns of a deal or ticket (none for other types): what boards and forecasts
/// filter and sum on. Amount, currency and close date are for deals, priority for tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, serde::Serialize, serde::Deserialize)]
pub struct DealCols {
    pub pipeline_id: Option<crate::ids::PipelineId>,
    pub stage_id: Option<crate::ids::StageId>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// `YYYY-MM-DD`.
    pub close_date: Option<String>,
    /// Tickets: `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
}

/// The plain columns of a task (none for other types).
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, serde::Serialize, serde::Deserialize)]
pub struct TaskCols {
    /// `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// When it was marked done (unix ms); None while open.
    pub done_at: Option<i64>,
}

/// A new record or a new state of one (`revision` is the state's number).
#[derive(Debug)]
pub struct RecordWrite<'a> {
    pub id: crate::ids::RecordId,
    pub object_type: &'a str,
    pub owner_id: Option<UserId>,
    pub company_id: Option<crate::ids::RecordId>,
    pub revision: i64,
    pub fields: &'a [u8],
    pub at: i64,
    pub by: &'a str,
    pub deal: &'a DealCols,
    pub task: &'a TaskCols,
    pub sensitive: Option<&'a str>,
}

#[derive(Debug, Clone, FromRow)]
pub struct PipelineRow {
    pub id: crate::ids::PipelineId,
    pub object_type: String,
    pub name: String,
    pub position: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct StageRow {
    pub id: crate::ids::StageId,
    pub pipeline_id: crate::ids::PipelineId,
    pub name: String,
    pub position: i64,
    /// `open`, `won` or `lost`.
    pub outcome: String,
}

/// An earlier version of a record; `fields` is sealed.
#[derive(Debug, Clone, FromRow)]
pub struct CrmVersionRow {
    pub revision: i64,
    pub fields: Vec<u8>,
    pub changed_at: i64,
    pub changed_by: String,
}

/// List filters; `None` means "any".
#[derive(Debug, Default, Clone)]
pub struct RecordFilter {
    pub object_type: Option<String>,
    /// Whose records the reader may see (record scope of their role).
    pub scope: OwnerScope,
    /// The trash instead of live records.
    pub deleted: bool,
    pub owner_id: Option<UserId>,
    pub company_id: Option<crate::ids::RecordId>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub updated_from: Option<i64>,
    pub updated_to: Option<i64>,
    /// Exact match on a blind-indexed field: (field, blind index).
    pub lookup: Option<(String, Vec<u8>)>,
    pub pipeline_id: Option<crate::ids::PipelineId>,
    pub stage_id: Option<crate::ids::StageId>,
    /// Deals and tickets whose stage has this outcome (`open`, `won`, `lost`, `closed`).
    pub outcome: Option<String>,
    /// Tickets of this priority.
    pub priority: Option<String>,
    /// Close date range, `YYYY-MM-DD`, inclusive.
    pub close_from: Option<String>,
    pub close_to: Option<String>,
    /// Records associated with this one (e.g. the deals of a contact).
    pub associated_with: Option<crate::ids::RecordId>,
    /// Tasks: done (true) or open (false).
    pub done: Option<bool>,
    /// Records carrying this tag.
    pub tag_id: Option<crate::ids::TagId>,
    /// Tasks: due date range `YYYY-MM-DD`, inclusive.
    pub due_from: Option<String>,
    pub due_to: Option<String>,
    /// Newest first instead of oldest first (ids are time-ordered).
    pub descending: bool,
}

/// A stored Idempotency-Key outcome; `response` is sealed.
#[derive(Debug, Clone, FromRow)]
pub struct IdempotencyRow {
    pub request_hash: Vec<u8>,
    pub status: i32,
    pub response: Vec<u8>,
    pub created_at: i64,
}

/// A custom field definition (configuration, plain).
#[derive(Debug, Clone, FromRow)]
pub struct CustomFieldRow {
    pub id: crate::ids::CustomFieldId,
    pub object_type: String,
    pub key: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub is_unique: bool,
    /// JSON.
    pub options: String,
    pub position: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

/// A custom value; `value` is sealed.
#[derive(Debug, Clone, FromRow)]
pub struct CustomValueRow {
    pub key: String,
    pub value: Vec<u8>,
    pub updated_at: i64,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
}

/// Record scope as the store applies it: every record, those one user owns, or those owned by
/// anyone who shares a team with that user (the user included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OwnerScope {
    #[default]
    All,
    Own(UserId),
    Team(UserId),
}

/// A tag; `name` is sealed, `name_bidx` its blind index.
#[derive(Debug, Clone, FromRow)]
pub struct TagRow {
    pub id: crate::ids::TagId,
    pub name: Vec<u8>,
    pub name_bidx: Vec<u8>,
    pub color: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

/// A saved view of a record table; `view` is sealed (name and query string).
#[derive(Debug, Clone, FromRow)]
pub struct SavedViewRow {
    pub id: crate::ids::SavedViewId,
    pub object_type: String,
    pub user_id: UserId,
    pub shared: bool,
    pub view: Vec<u8>,
    pub created_at: i64,
}

/// A user's TOTP enrolment.
#[derive(Debug, Clone, FromRow)]
pub struct UserMfaRow {
    pub user_id: UserId,
    /// Sealed.
    pub secret: Vec<u8>,
    pub created_at: i64,
    /// None until a first code confirmed the enrolment.
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
}

/// A sign-in counter after counting one more attempt (see [`crate::TenantTx::count_login_attempt`]).
#[derive(Debug, Clone, Copy, FromRow)]
pub struct ThrottleRow {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: Option<i64>,
}
