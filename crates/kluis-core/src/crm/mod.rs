//! CRM records: contacts, companies, deals, tickets, notes and tasks.
//!
//! Every write is one transaction holding the record, its blind-index lookups, the previous
//! version and the audit event (changed fields, old and new values, sealed like everything
//! else). Updates are optimistic: the caller names the revision it read (`If-Match`), and the
//! statement itself only updates that revision, so a concurrent writer can never be silently
//! overwritten. Deletes move records to the trash, restorable until the retention purges them.
//!
//! This file holds the shared types (object types, the record and its input, `If-Match`) and
//! the audit action names; the work is split by job:
//! - `records`: create (one write path for a single create and an import), read, update, delete;
//! - `query`: list pages, lookups through blind indexes, exports;
//! - `history`: versions and the trash;
//! - `sealing`: sealing fields and versions, blind-index entries;
//! - `idempotency`: Idempotency-Key replay, independent of HTTP;
//! - and per area: `custom` fields, `deals` (pipelines, stages, tasks), `import`, `tags`,
//!   saved `views`, `search` over sealed names, the sensitive-data `guard`.

pub mod custom;
mod deals;
mod fields;
mod guard;
mod history;
mod idempotency;
pub mod import;
pub mod pipelines;
pub mod privacy;
mod query;
mod records;
mod reencrypt;
pub mod retention;
mod sealing;
pub mod search;
pub mod tags;
pub mod views;

use crate::db::TenantTx;
use crate::db::rows::{CrmRecordRow, DealCols, RecordFilter, RecordWrite, TaskCols};
use kluis_types::RecordId;

pub use guard::mode as sensitive_mode;
pub(crate) use idempotency::idem_ctx;
use idempotency::request_hash;
pub use idempotency::{IDEMPOTENCY_TTL_MS, Idempotency};
pub use kluis_types::{CustomFieldId, PipelineId, SavedViewId, StageId, TagId};
pub use query::RecordExport;
use records::*;
use sealing::*;
pub(crate) use sealing::{lookups, open_fields};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{Event, actor_label};
use crate::authz::{FieldView, Right, Visibility};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{
    Actor, Error, ErrorKind, Kluis, Page, Permission, RequestContext, Result, TenantId, UserId,
    page_limit, validate,
};
use custom::Schema;

/// The object types with a record API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Contact,
    Company,
    Deal,
    Ticket,
    Note,
    Task,
}

impl ObjectType {
    pub const ALL: [ObjectType; 6] = [
        ObjectType::Contact,
        ObjectType::Company,
        ObjectType::Deal,
        ObjectType::Ticket,
        ObjectType::Note,
        ObjectType::Task,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Contact => "contact",
            ObjectType::Company => "company",
            ObjectType::Deal => "deal",
            ObjectType::Ticket => "ticket",
            ObjectType::Note => "note",
            ObjectType::Task => "task",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The field names of this type, in their documented order (export columns).
    pub fn field_names(self) -> Vec<&'static str> {
        self.fields().iter().map(|f| f.name).collect()
    }

    /// Built-in fields that hold contact details (email addresses, phone numbers): masked
    /// under support access.
    pub(crate) fn contact_detail_fields(self) -> Vec<&'static str> {
        self.fields()
            .iter()
            .filter(|f| matches!(f.kind, fields::Kind::Email | fields::Kind::Phone))
            .map(|f| f.name)
            .collect()
    }

    fn fields(self) -> &'static [fields::Field] {
        match self {
            ObjectType::Contact => fields::CONTACT,
            ObjectType::Company => fields::COMPANY,
            ObjectType::Deal => fields::DEAL,
            ObjectType::Ticket => fields::TICKET,
            ObjectType::Note => fields::NOTE,
            ObjectType::Task => fields::TASK,
        }
    }

    /// The lookup field duplicates are detected on, if any.
    fn dedupe_field(self) -> Option<&'static str> {
        match self {
            ObjectType::Contact => Some("email"),
            ObjectType::Company => Some("domain"),
            ObjectType::Deal | ObjectType::Ticket | ObjectType::Note | ObjectType::Task => None,
        }
    }

    /// A record must say at least this much about itself.
    fn check_required(self, f: &Map<String, Value>) -> Result<()> {
        let ok = match self {
            ObjectType::Contact => ["first_name", "last_name", "email"]
                .iter()
                .any(|k| f.contains_key(*k)),
            ObjectType::Company | ObjectType::Deal => f.contains_key("name"),
            ObjectType::Ticket => f.contains_key("subject"),
            ObjectType::Note => f.contains_key("body"),
            ObjectType::Task => f.contains_key("title"),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            ObjectType::Contact => Error::validation(
                "fields",
                "required",
                "a contact needs a first name, last name or email",
            ),
            ObjectType::Company | ObjectType::Deal => Error::validation(
                "fields.name",
                "required",
                format!("a {} needs a name", self.as_str()),
            ),
            ObjectType::Ticket => {
                Error::validation("fields.subject", "required", "a ticket needs a subject")
            }
            ObjectType::Note => Error::validation("fields.body", "required", "a note needs a body"),
            ObjectType::Task => {
                Error::validation("fields.title", "required", "a task needs a title")
            }
        })
    }
}

/// A record as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    #[schema(value_type = uuid::Uuid)]
    pub id: RecordId,
    pub object_type: ObjectType,
    /// Increases with every change; the ETag is `"<revision>"`.
    pub revision: i64,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub owner_id: Option<UserId>,
    /// The company a contact belongs to.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub company_id: Option<RecordId>,
    /// Field values (all strings), e.g. `first_name`, `email`.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
    /// Set while the record is in the trash.
    pub deleted_at: Option<String>,
    pub deleted_by: Option<String>,
    /// Deals: pipeline, stage, amount (minor units, e.g. cents), currency, close date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<deals::DealSchema>)]
    pub deal: Option<DealCols>,
    /// Deals: `open`, `won` or `lost`, from the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Deals: the contacts the deal is with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub contact_ids: Option<Vec<RecordId>>,
    /// Notes and tasks: the records they are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub related_ids: Option<Vec<RecordId>>,
    /// Tasks: due date and whether done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<deals::TaskView>,
    /// The record's tags (those not in the trash).
    #[serde(default)]
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub tag_ids: Vec<TagId>,
    /// Kinds of forbidden data the record holds (only when the organisation allows them with a
    /// flag), e.g. `iban`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<crate::sensitive::SensitiveKind>,
}

/// `Some(None)` clears, `None` leaves as is.
fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Create or change a record. On change, `fields` is a merge patch (null removes a field).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// A user of this organisation; default on create: the signed-in user.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub owner_id: Option<Option<UserId>>,
    /// Contacts only: a company of this organisation.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub company_id: Option<Option<RecordId>>,
    /// Deals: default the first pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub pipeline_id: Option<PipelineId>,
    /// Tickets: `low`, `normal` (default), `high` or `urgent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Deals and tickets: a stage of the pipeline; default its first stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub stage_id: Option<StageId>,
    /// Deals: amount in minor units (cents); null clears.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount_minor: Option<Option<i64>>,
    /// Deals: ISO 4217 code; default EUR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Deals: expected close date `YYYY-MM-DD`; null clears.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub close_date: Option<Option<String>>,
    /// Deals: the contacts the deal is with (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub contact_ids: Option<Vec<RecordId>>,
    /// Notes and tasks: the contacts, companies and deals they are about (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub related_ids: Option<Vec<RecordId>>,
    /// Tasks: due date `YYYY-MM-DD`; null clears.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub due_date: Option<Option<String>>,
    /// Tasks: mark done or open again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<bool>,
    /// The record's tags (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub tag_ids: Option<Vec<TagId>>,
}

/// List filters (exact-match lookups work on sealed fields through blind indexes).
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub owner_id: Option<UserId>,
    pub company_id: Option<RecordId>,
    /// Exact match, case-insensitive.
    pub email: Option<String>,
    /// Exact match in any notation (normalised to E.164).
    pub phone: Option<String>,
    pub domain: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub updated_from: Option<i64>,
    pub updated_to: Option<i64>,
    pub newest_first: bool,
    /// Deals and tickets: in this pipeline / stage / with this outcome (`open`, `won`, `lost`,
    /// `closed`).
    pub pipeline_id: Option<PipelineId>,
    pub stage_id: Option<StageId>,
    pub outcome: Option<String>,
    /// Tickets of this priority.
    pub priority: Option<String>,
    /// Deals: close date range `YYYY-MM-DD`, inclusive.
    pub close_from: Option<String>,
    pub close_to: Option<String>,
    /// Deals with this contact.
    pub contact_id: Option<RecordId>,
    /// Notes and tasks about this record.
    pub related_id: Option<RecordId>,
    /// Tasks: done or open.
    pub done: Option<bool>,
    /// Tasks: due date range `YYYY-MM-DD`, inclusive.
    pub due_from: Option<String>,
    pub due_to: Option<String>,
    /// Records with this tag.
    pub tag_id: Option<TagId>,
    /// Search: records whose one-line values (or, for contacts, whose company's) contain every
    /// word, case- and accent-insensitive (see [`search`]). Blank: no search.
    pub q: Option<String>,
}

/// The `If-Match` precondition of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: refused for updates (428), so no client overwrites blindly.
    Missing,
    /// `*`: any current revision.
    Any,
    /// One or more ETags; the change applies only if the current revision is among them.
    Revisions(Vec<i64>),
}

impl IfMatch {
    fn check(&self, current: i64, required: bool) -> Result<()> {
        match self {
            IfMatch::Missing if required => Err(Error::new(
                ErrorKind::PreconditionRequired,
                "precondition_required",
                "send If-Match with the ETag you read, so a concurrent change is never overwritten",
            )),
            IfMatch::Missing | IfMatch::Any => Ok(()),
            IfMatch::Revisions(r) if r.contains(&current) => Ok(()),
            IfMatch::Revisions(_) => Err(stale()),
        }
    }
}

fn stale() -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "precondition_failed",
        "the record changed since you read it; read it again and retry",
    )
}

/// `POST /api/v1/records/{id}/unmask`: which masked field to reveal.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskInput {
    /// A field the caller's role shows masked, e.g. `email` or `custom.iban`.
    pub field: String,
}

/// One revealed value.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unmasked {
    pub field: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// An earlier (or the current) state of a record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordVersion {
    pub revision: i64,
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<deals::DealSchema>)]
    pub deal: Option<DealCols>,
    pub changed_at: String,
    pub changed_by: String,
    pub current: bool,
}

fn event<'a>(t: ObjectType, verb: &str, id: RecordId, details: Value) -> Event<'a> {
    Event {
        action: action_name(t, verb),
        success: true,
        object_type: Some(t.as_str()),
        object_id: Some(id.to_string()),
        details,
    }
}

/// Audit action names are static strings (`contact.create`, ...).
fn action_name(t: ObjectType, verb: &str) -> &'static str {
    macro_rules! names {
        ($($verb:literal),*) => {
            match (t, verb) {
                $((ObjectType::Contact, $verb) => concat!("contact.", $verb),)*
                $((ObjectType::Company, $verb) => concat!("company.", $verb),)*
                $((ObjectType::Deal, $verb) => concat!("deal.", $verb),)*
                $((ObjectType::Ticket, $verb) => concat!("ticket.", $verb),)*
                $((ObjectType::Note, $verb) => concat!("note.", $verb),)*
                $((ObjectType::Task, $verb) => concat!("task.", $verb),)*
                _ => "record.unknown",
            }
        };
    }
    names!(
        "create",
        "update",
        "delete",
        "restore",
        "purge",
        "restore_version",
        "list",
        "versions",
        "export",
        "unmask",
        "anonymise"
    )
}
