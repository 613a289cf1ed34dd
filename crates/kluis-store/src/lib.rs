//! Kluis storage: one API over SQLite (embedded default) and PostgreSQL (production).
//!
//! Tenant data is reachable only through a [`TenantTx`], a transaction opened for exactly one
//! tenant by [`Store::tenant`]. Every query method on it binds that tenant id itself, so no caller
//! can forget the filter or pass another tenant's id. On PostgreSQL the transaction also sets
//! `app.tenant_id` transaction-locally and row-level security enforces the tenant a second time.
//!
//! Platform data (the tenant directory, setup tokens, platform keys) goes through [`PlatformTx`].
//! This crate holds SQL and nothing else: no policy, no crypto, no HTTP.

pub(crate) mod crm;
mod direct;
mod engine;
pub mod files;
pub mod incidents;
mod mail;
mod mfa;
mod ops;
pub mod passkeys;
pub mod perms;
#[cfg(feature = "testing")]
mod plans;
mod platform;
pub mod privacy;
mod rate;
pub mod retention;
pub mod rows;
pub mod saml;
pub mod scim;
pub mod sso;
pub mod status;
pub mod support;
mod tenant;

pub use engine::{Engine, PLATFORM_TABLES, Store, StoreOptions, TENANT_TABLES, TenantScope};
pub(crate) use kluis_types::ids;
pub use kluis_types::ids::{
    ApiKeyId, CustomFieldId, OperatorId, PipelineId, PlatformKeyId, RecordId, RoleId, SavedViewId,
    SessionId, StageId, SupportGrantId, TagId, TeamId, TenantId, UserId,
};
pub use mail::OutboxRow;
pub use mfa::ThrottleBucket;
pub use ops::{OpsCounts, PoolStats};
pub use platform::PlatformTx;
pub use rate::RateOverrides;
pub use tenant::{AuditVisitor, SEAL_RESERVE, TenantTx};

/// Storage errors. Messages never contain bound values (which may be secrets or personal data).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated; carries the constraint or column hint.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database role configuration is unsafe (e.g. the app role can bypass RLS).
    #[error("unsafe database configuration: {0}")]
    UnsafeConfig(String),
    /// SQLite reads on the direct (rusqlite) path; messages carry no bound values either.
    #[error("database error: {0}")]
    Direct(#[source] rusqlite::Error),
    /// SQLite: the audit log head moved since `audit_next_seq` (another process appended);
    /// the event was not stored. Ask for the next sequence number again.
    #[error("the audit log head moved; retry the append")]
    AuditHeadMoved,
    #[error("invalid stored value in {0}")]
    Corrupt(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            // Constraint names / messages name columns, never values.
            let hint = db.constraint().map(str::to_owned).unwrap_or_else(|| {
                // SQLite: "UNIQUE constraint failed: users.tenant_id, users.email"
                db.message()
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            });
            return StoreError::Conflict(hint);
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Runs the same statement on whichever engine backs a transaction. The body is expanded
/// once per engine so each copy is type-checked against its own driver; the SQL must use
/// `$1..$n` placeholders, which both SQLite and PostgreSQL accept.
///
/// Each engine's statement runs in a boxed future: sqlx's futures are large, and unboxed
/// they would be part of every caller's future for all three engines at once, including the
/// SQLite hot reads that never get here (request futures are moved around whole).
macro_rules! on_conn {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::engine::Tx::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                Box::pin(async { Ok::<_, $crate::StoreError>($body) }).await?
            }
            $crate::engine::Tx::SqliteRead(r) => {
                let $c: &mut sqlx::SqliteConnection = r.sqlx().await?;
                Box::pin(async { Ok::<_, $crate::StoreError>($body) }).await?
            }
            $crate::engine::Tx::Pg(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                Box::pin(async { Ok::<_, $crate::StoreError>($body) }).await?
            }
        }
    };
}
pub(crate) use on_conn;
