//! Kluis domain values: the types every layer shares.
//!
//! "Parse, don't validate": a value of one of these types is proof that its rules held when it
//! was made. The HTTP edge, the CSV import, SCIM and the sign-in form parse an email once into
//! [`Email`]; everything after (users, CRM records, blind indexes, lockout counters) takes the
//! `Email` and never trims, lower-cases or checks it again. Ids are typed so a `UserId` cannot be
//! passed where a `TenantId` is expected.
//!
//! This crate does no IO. It sits below both `kluis-store` (which binds and decodes these
//! types, through the `sqlx` feature) and `kluis-core` (which owns the rules that use them).

mod email;
pub mod ids;
mod phone;
mod roles;

pub use email::{Email, EmailError};
pub use ids::{
    ApiKeyId, CustomFieldId, PipelineId, PlatformKeyId, RecordId, SavedViewId, SessionId, StageId,
    TagId, TenantId, UserId,
};
pub use phone::{Phone, PhoneError};
pub use roles::{Role, Status, UnknownValue};
