//! The seam between the use cases and storage: the only file of `kluis-core` that names
//! `kluis-store`. (`tests/layering.rs` fails the build's tests when another file does.)
//!
//! What crosses it:
//! - [`Store`], the handle the core is built with, and the two kinds of transaction:
//!   [`TenantTx`] (every query binds the transaction's own tenant; on PostgreSQL RLS holds it a
//!   second time) and [`PlatformTx`] (the tenant directory and platform keys, no tenant table);
//! - the row types those transactions read and write ([`rows`] and the per-area modules), which
//!   carry sealed bytes and unix milliseconds: use cases open and convert them into domain
//!   values, and nothing above the core sees a row;
//! - [`StoreError`], which `crate::Error` wraps (logged, never shown).
//!
//! Ids, [`kluis_types::Email`], [`kluis_types::Phone`], roles and statuses are not store types:
//! they live in `kluis-types`, below both crates.
//!
//! Why a seam and not yet a trait per area that the store implements: `TenantTx` has ~200
//! methods across ten areas, each a tenant-scoped statement written once for both engines
//! (`on_conn!`). A trait layer over them would be one more copy of every signature with one
//! implementation. Ports are declared where a second implementation exists or is planned:
//! those (files, backup targets, several clusters) are added here as traits the store and the
//! new adapters implement, and this file is the one place that changes when an area moves
//! behind one.

pub use kluis_store::{
    AuditVisitor, OutboxRow, PlatformTx, RateOverrides, SEAL_RESERVE, Store, StoreError,
    StoreOptions, TenantTx, ThrottleBucket,
};

/// Row types of the tenant and platform tables.
pub mod rows {
    pub use kluis_store::rows::*;
}

/// Custom roles and teams.
pub mod perms {
    pub use kluis_store::perms::*;
}

/// Passkey rows and ceremonies.
pub mod passkeys {
    pub use kluis_store::passkeys::*;
}

/// SCIM rows.
pub mod scim {
    pub use kluis_store::scim::*;
}

/// OpenID Connect and shared SSO configuration rows.
pub mod sso {
    pub use kluis_store::sso::*;
}

/// Files on records: rows of files and their versions.
pub mod files {
    pub use kluis_store::files::*;
}

/// Operators, their sessions and support-access grants.
pub mod support {
    pub use kluis_store::support::*;
}
/// The incident and breach register.
pub mod incidents {
    pub use kluis_store::incidents::*;
}

/// Retention policies.
pub mod retention {
    pub use kluis_store::retention::*;
}

/// Data-subject requests.
pub mod privacy {
    pub use kluis_store::privacy::*;
}

pub mod status {
    pub use kluis_store::status::*;
}

/// SAML configuration rows.
pub mod saml {
    pub use kluis_store::saml::*;
}
