//! CRM records: contacts and companies (more object types follow the same path).
//!
//! Every write is one transaction holding the record, its blind-index lookups, the previous
//! version and the audit event (changed fields, old and new values, sealed like everything
//! else). Updates are optimistic: the caller names the revision it read (`If-Match`), and the
//! statement itself only updates that revision, so a concurrent writer can never be silently
//! overwritten. Deletes move records to the trash, restorable until the retention purges them.

pub mod custom;
mod deals;
mod fields;
mod guard;
pub mod import;
pub mod pipelines;
mod reencrypt;
pub mod search;
pub mod tags;
pub mod views;

use crate::db::TenantTx;
use crate::db::rows::{CrmRecordRow, DealCols, RecordFilter, RecordWrite, TaskCols};
use kluis_types::RecordId;

pub use guard::mode as sensitive_mode;
pub use kluis_types::{CustomFieldId, PipelineId, SavedViewId, StageId, TagId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{
    Actor, Error, ErrorKind, Kluis, Page, Permission, RequestContext, Result, TenantId, UserId,
    page_limit, validate,
};
use custom::Schema;

/// The object types with a record API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// What a version row holds (sealed): the state, with its revision inside so a sealed blob moved
/// to another revision row is noticed.
#[derive(Serialize, Deserialize)]
struct StoredVersion {
    revision: i64,
    fields: Map<String, Value>,
    owner_id: Option<UserId>,
    company_id: Option<RecordId>,
    #[serde(default)]
    deal: DealCols,
    #[serde(default)]
    task: TaskCols,
}

/// Rows per page of an export: memory stays constant whatever the number of records.
const EXPORT_PAGE: i64 = 500;

/// An authorised, recorded export in progress (see [`Kluis::export_records`]).
pub struct RecordExport {
    tenant: TenantId,
    object_type: ObjectType,
    query: RecordQuery,
    after: Option<RecordId>,
    done: bool,
}

/// The state a change writes.
struct NextState {
    fields: Map<String, Value>,
    owner: Option<UserId>,
    company: Option<RecordId>,
    deal: DealCols,
    task: TaskCols,
    /// Replaces a deal's contacts / a note's or task's related records when set.
    contacts: Option<Vec<RecordId>>,
    /// Flagged kinds of sensitive data.
    sensitive: Option<String>,
    /// Blind-index entries of `fields`.
    lookups: Vec<(String, [u8; 32])>,
    /// Replaces the record's tags when set.
    tags: Option<Vec<TagId>>,
}

/// A create, checked and sealed, ready to be written alone or with others.
pub(super) struct PreparedCreate {
    pub id: RecordId,
    owner: Option<UserId>,
    company: Option<RecordId>,
    sealed: Vec<u8>,
    deal: DealCols,
    task: TaskCols,
    sensitive: Option<String>,
    /// Blind-index entries (the duplicate check of a batch reads them).
    pub lookups: Vec<(String, [u8; 32])>,
    related: Option<Vec<RecordId>>,
    tags: Option<Vec<TagId>>,
    details: Value,
}

/// What a caller has verified already, so that many creates need not read it again.
#[derive(Default)]
pub(super) struct Checked {
    /// Active users of the tenant.
    pub owners: std::collections::HashSet<UserId>,
    /// Live companies.
    pub companies: std::collections::HashSet<RecordId>,
    /// Live tags.
    pub tags: std::collections::HashSet<TagId>,
    /// The sensitive-data mode (`block`?), once read.
    pub guard_block: Option<bool>,
    /// The caller checks duplicates itself (for a whole batch at once).
    pub duplicates: bool,
}

/// Idempotency-Key of a create: the key as sent and a hash of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: [u8; 32],
}

impl Idempotency {
    /// Keys are 1..=255 visible ASCII characters.
    pub fn new(key: &str, method: &str, path: &str, body: &[u8]) -> Result<Idempotency> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::BadRequest,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        let mut h = Sha256::new();
        for part in [method.as_bytes(), path.as_bytes(), body] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Ok(Idempotency {
            key: key.to_owned(),
            request_hash: h.finalize().into(),
        })
    }

    fn key_hash(&self, actor: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [actor.as_bytes(), self.key.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// Idempotency outcomes are kept this long.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

fn record_ctx_id(id: RecordId) -> Uuid {
    id.0
}

pub(crate) fn open_fields(keys: &TenantKeys, r: &CrmRecordRow) -> Result<Map<String, Value>> {
    let plain = keys.open("crm_records", "fields", record_ctx_id(r.id), &r.fields)?;
    serde_json::from_slice(&plain).map_err(|_| Error::internal("stored record fields unreadable"))
}

fn seal_fields(keys: &TenantKeys, id: RecordId, f: &Map<String, Value>) -> Result<Vec<u8>> {
    let plain = serde_json::to_vec(f).map_err(|_| Error::internal("record encoding"))?;
    keys.seal("crm_records", "fields", record_ctx_id(id), &plain)
}

fn to_record(keys: &TenantKeys, r: CrmRecordRow) -> Result<Record> {
    let fields = open_fields(keys, &r)?;
    Ok(Record {
        id: r.id,
        object_type: ObjectType::parse(&r.object_type)
            .ok_or_else(|| Error::internal("unknown object type stored"))?,
        revision: r.revision,
        owner_id: r.owner_id,
        company_id: r.company_id,
        fields,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        created_by: r.created_by,
        updated_by: r.updated_by,
        deleted_at: r.deleted_at.map(rfc3339),
        deleted_by: r.deleted_by,
        deal: matches!(r.object_type.as_str(), "deal" | "ticket").then_some(r.deal),
        outcome: None,
        contact_ids: None,
        related_ids: None,
        task: (r.object_type == "task").then(|| deals::TaskView::from(&r.task)),
        tag_ids: Vec::new(),
        sensitive: guard::parse_flags(r.sensitive.as_deref()),
    })
}

/// The blind-index entries of a record's lookup fields.
/// Blind-index entries of a record: built-in lookup fields and unique custom fields.
pub(crate) fn lookups(
    keys: &TenantKeys,
    schema: &Schema,
    f: &Map<String, Value>,
) -> Vec<(String, [u8; 32])> {
    let t = schema.t;
    let builtin = t.fields().iter().filter(|s| s.lookup).filter_map(|s| {
        let v = f.get(s.name)?.as_str()?;
        let key = fields::lookup_key(s, v)?;
        Some((
            s.name.to_owned(),
            keys.blind(&lookup_domain(t, s.name), &key),
        ))
    });
    let unique = schema.custom.iter().filter(|d| d.unique).filter_map(|d| {
        let name = format!("custom.{}", d.key);
        let key = custom::unique_key(d, f.get(&name)?)?;
        let bidx = keys.blind(&lookup_domain(t, &name), &key);
        Some((name, bidx))
    });
    builtin.chain(unique).collect()
}

/// The store filter of a list query.
fn record_filter(
    t: ObjectType,
    q: &RecordQuery,
    lookup: Option<(String, Vec<u8>)>,
) -> RecordFilter {
    RecordFilter {
        object_type: Some(t.as_str().to_owned()),
        deleted: false,
        owner_id: q.owner_id,
        company_id: q.company_id,
        created_from: q.created_from,
        created_to: q.created_to,
        updated_from: q.updated_from,
        updated_to: q.updated_to,
        lookup,
        descending: q.newest_first,
        pipeline_id: q.pipeline_id,
        stage_id: q.stage_id,
        outcome: q.outcome.clone(),
        priority: q.priority.clone(),
        close_from: q.close_from.clone(),
        close_to: q.close_to.clone(),
        associated_with: q.contact_id.or(q.related_id),
        done: q.done,
        due_from: q.due_from.clone(),
        due_to: q.due_to.clone(),
        tag_id: q.tag_id,
    }
}

fn lookup_domain(t: ObjectType, field: &str) -> String {
    format!("crm.{}.{field}", t.as_str())
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
        "export"
    )
}

impl Kluis {
    /// An active user of the tenant, for `owner_id`.
    async fn check_owner(&self, tx: &mut TenantTx, owner: Option<UserId>) -> Result<()> {
        if let Some(id) = owner {
            let ok = tx.user(id).await?.is_some_and(|u| u.status.is_active());
            if !ok {
                return Err(Error::validation(
                    "owner_id",
                    "unknown_user",
                    "no active user with this id in your organisation",
                ));
            }
        }
        Ok(())
    }

    async fn check_company(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        company: Option<RecordId>,
    ) -> Result<()> {
        let Some(id) = company else { return Ok(()) };
        if t != ObjectType::Contact {
            return Err(Error::validation(
                "company_id",
                "not_applicable",
                "only contacts belong to a company",
            ));
        }
        let live = tx
            .record(ObjectType::Company.as_str(), id)
            .await?
            .is_some_and(|c| c.deleted_at.is_none());
        if !live {
            return Err(Error::validation(
                "company_id",
                "unknown_company",
                "no company with this id in your organisation",
            ));
        }
        Ok(())
    }

    /// Refuses a second live record with the same dedupe value (email of contacts, domain of
    /// companies).
    async fn check_duplicate(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        id: RecordId,
        f: &Map<String, Value>,
    ) -> Result<()> {
        let t = schema.t;
        let unique = schema.unique_fields();
        for (field, bidx) in lookups(keys, schema, f) {
            if !unique.contains(&field) {
                continue;
            }
            let existing = tx.lookup_live(t.as_str(), &field, &bidx).await?;
            if let Some(other) = existing.into_iter().find(|o| *o != id) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "duplicate",
                    format!("a {} with this {field} already exists: {other}", t.as_str()),
                )
                .with_field(format!("fields.{field}")));
            }
        }
        Ok(())
    }

    pub async fn create_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        input: RecordInput,
        idem: Option<&Idempotency>,
    ) -> Result<Record> {
        actor.require(Permission::CrmWrite)?;
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let idem_hash = idem.map(|i| (i.key_hash(&format!("{label}\n{}", t.as_str())), i));
        if let Some((key_hash, i)) = &idem_hash
            && let Some(done) = self.replay(&mut tx, &keys, key_hash, i).await?
        {
            return Ok(done);
        }
        let id = RecordId::new();
        let schema = self.schema(&mut tx, t).await?;
        self.create_in(&mut tx, &keys, &schema, actor, ctx, id, &input, None)
            .await?;
        let now = self.now();
        let mut sealed_n = 0;
        let rec = self.load(&mut tx, &keys, t, id).await?;
        if let Some((key_hash, i)) = &idem_hash {
            let body = serde_json::to_vec(&rec).map_err(|_| Error::internal("encoding"))?;
            let sealed = keys.seal("idempotency_keys", "response", idem_ctx(key_hash), &body)?;
            tx.insert_idempotency(key_hash, &i.request_hash, 201, &sealed, now)
                .await?;
            sealed_n += 1;
        }
        if sealed_n > 0 {
            self.count_sealed(&mut tx, &keys, sealed_n).await?;
        }
        tx.commit().await?;
        Ok(rec)
    }

    /// Everything a create writes (record, lookups, links, tags, audit event), inside `tx`.
    /// `import` names the import the record came from, for its audit event.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_in(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
        input: &RecordInput,
        import: Option<Uuid>,
    ) -> Result<()> {
        let mut checked = Checked::default();
        let rec = self
            .prepare_create(tx, keys, schema, actor, id, input, import, &mut checked)
            .await?;
        self.write_creates(tx, keys, actor, ctx, schema.t, vec![rec])
            .await
    }

    /// Checks and seals a create without writing it. `checked` carries what the caller has
    /// verified already (an import checks owners, companies, tags and duplicates once for many
    /// rows); what it does not carry is checked here.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn prepare_create(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        id: RecordId,
        input: &RecordInput,
        import: Option<Uuid>,
        checked: &mut Checked,
    ) -> Result<PreparedCreate> {
        let t = schema.t;
        let f = fields::apply(schema, &Map::new(), &input.fields)?;
        t.check_required(&f)?;
        fields::check_custom_required(schema, &f)?;
        let owner = input.owner_id.unwrap_or(actor.user_id());
        if let Some(o) = owner
            && !checked.owners.contains(&o)
        {
            self.check_owner(tx, owner).await?;
            checked.owners.insert(o);
        }
        let company = input.company_id.flatten();
        if company.is_none_or(|c| !checked.companies.contains(&c)) {
            self.check_company(tx, t, company).await?;
        }
        if !checked.duplicates {
            self.check_duplicate(tx, keys, schema, id, &f).await?;
        }
        let deal = self.resolve_deal(tx, t, None, input).await?;
        let task = deals::resolve_task(t, None, input, self.now())?;
        let related = self.resolve_related(tx, t, input).await?;
        let tags = match &input.tag_ids {
            Some(ids) if ids.len() <= 100 && ids.iter().all(|i| checked.tags.contains(i)) => {
                let mut out: Vec<TagId> = Vec::new();
                for i in ids {
                    if !out.contains(i) {
                        out.push(*i);
                    }
                }
                Some(out)
            }
            Some(ids) => Some(self.check_tags(tx, ids).await?),
            None => None,
        };
        let block = match checked.guard_block {
            Some(b) => b,
            None => {
                let b = guard::mode(tx).await? == "block";
                checked.guard_block = Some(b);
                b
            }
        };
        let sensitive = guard::scan_fields(block, &f, f.keys())?;
        let sealed = seal_fields(keys, id, &f)?;
        let changed = fields::changes(&Map::new(), &f);
        let mut details = json!({"changed": changed, "owner_id": owner, "company_id": company});
        match t {
            ObjectType::Deal | ObjectType::Ticket => details["deal"] = json!(deal),
            ObjectType::Task => details["task"] = json!(task),
            _ => {}
        }
        if related.is_some() {
            details["related_ids"] = json!(related);
        }
        if let Some(tags) = &tags {
            details["tag_ids"] = json!(tags);
        }
        if let Some(import) = import {
            details["import"] = json!(import);
        }
        Ok(PreparedCreate {
            id,
            owner,
            company,
            sealed,
            deal,
            task,
            sensitive,
            lookups: lookups(keys, schema, &f),
            related,
            tags,
            details,
        })
    }

    /// Writes prepared creates of type `t`: records, lookups, links and tags, and one audit
    /// event each. Many records go in a few multi-row statements.
    pub(super) async fn write_creates(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        recs: Vec<PreparedCreate>,
    ) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let label = actor_label(actor);
        let now = self.now();
        let writes: Vec<RecordWrite<'_>> = recs
            .iter()
            .map(|r| RecordWrite {
                id: r.id,
                object_type: t.as_str(),
                owner_id: r.owner,
                company_id: r.company,
                revision: 1,
                fields: &r.sealed,
                at: now,
                by: &label,
                deal: &r.deal,
                task: &r.task,
                sensitive: r.sensitive.as_deref(),
            })
            .collect();
        match writes.as_slice() {
            [one] => tx.insert_record(one).await?,
            many => tx.insert_records(many).await?,
        }
        drop(writes);
        if let [one] = recs.as_slice() {
            tx.set_lookups(t.as_str(), one.id, &one.lookups).await?;
        } else {
            let entries: Vec<(RecordId, &str, &[u8])> = recs
                .iter()
                .flat_map(|r| {
                    r.lookups
                        .iter()
                        .map(move |(f, b)| (r.id, f.as_str(), b.as_slice()))
                })
                .collect();
            tx.insert_lookups(t.as_str(), &entries).await?;
        }
        for r in &recs {
            if let Some(others) = &r.related {
                tx.set_associations(r.id, others).await?;
            }
            if let Some(tags) = &r.tags {
                tx.set_record_tags(r.id, tags).await?;
            }
        }
        let n = recs.len() as i64;
        let events = recs
            .into_iter()
            .map(|r| event(t, "create", r.id, r.details))
            .collect();
        self.audit_many(tx, keys, &label, ctx, events).await?;
        self.count_sealed(tx, keys, n).await
    }

    /// A record as the API shows it, read inside `tx` (live or in the trash).
    async fn load(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        t: ObjectType,
        id: RecordId,
    ) -> Result<Record> {
        let row = tx
            .record(t.as_str(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        let mut recs = [to_record(keys, row)?];
        self.enrich(tx, &mut recs).await?;
        let [rec] = recs;
        Ok(rec)
    }

    /// The stored outcome of an earlier request with the same Idempotency-Key, if any.
    async fn replay(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        key_hash: &[u8; 32],
        i: &Idempotency,
    ) -> Result<Option<Record>> {
        let Some(row) = tx.idempotency(key_hash).await? else {
            return Ok(None);
        };
        if row.created_at < self.now() - IDEMPOTENCY_TTL_MS {
            // Expired but not purged yet: the key is free again.
            tx.delete_idempotency(key_hash).await?;
            return Ok(None);
        }
        if row.request_hash != i.request_hash {
            return Err(Error::new(
                ErrorKind::Validation,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ));
        }
        let body = keys.open(
            "idempotency_keys",
            "response",
            idem_ctx(key_hash),
            &row.response,
        )?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|_| Error::internal("stored response unreadable"))
    }

    pub async fn get_record(&self, actor: &Actor, t: ObjectType, id: RecordId) -> Result<Record> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        live(&mut tx, t, id).await?;
        self.load(&mut tx, &keys, t, id).await
    }

    pub async fn list_records(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        q: RecordQuery,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Record>> {
        actor.require(Permission::CrmRead)?;
        let after = validate::cursor::<RecordId>(cursor)?;
        let page = self
            .query_records(actor.tenant(), t, &q, after, page_limit(limit))
            .await?;
        self.audit_read(actor, ctx, t, "list", page.items.len())
            .await?;
        Ok(page)
    }

    /// One page of live records matching `q` (no authorisation, no audit: callers do both).
    async fn query_records(
        &self,
        tenant: TenantId,
        t: ObjectType,
        q: &RecordQuery,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Page<Record>> {
        if let Some(text) = q.q.as_deref().filter(|s| !s.trim().is_empty()) {
            if text.chars().count() > 200 {
                return Err(Error::validation("q", "too_long", "at most 200 characters"));
            }
            let filter = record_filter(t, q, None);
            deals::check_filter(t, &filter, q)?;
            return self.search_page(tenant, t, q, text, after, limit).await;
        }
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let lookup = self.query_lookup(&keys, t, q)?;
        let filter = record_filter(t, q, lookup);
        deals::check_filter(t, &filter, q)?;
        let rows = tx.list_records(&filter, after, limit + 1).await?;
        let mut page = crate::users::page(
            rows,
            limit,
            |r| to_record(&keys, r),
            |r: &Record| r.id.to_string(),
        )?;
        self.enrich(&mut tx, &mut page.items).await?;
        Ok(page)
    }

    /// Starts an export of records matching `q` (CSV or JSON Lines, streamed page by page by
    /// the caller). A privileged action; the export and its filters are recorded.
    pub async fn export_records(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        q: RecordQuery,
        format: &str,
    ) -> Result<RecordExport> {
        actor.require(Permission::CrmExport)?;
        // Validate the filters before recording anything.
        self.query_records(actor.tenant(), t, &q, None, 1).await?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let filters = json!({
            "format": format,
            "owner_id": q.owner_id, "company_id": q.company_id,
            "email": q.email.is_some(), "phone": q.phone.is_some(), "domain": q.domain.is_some(),
            "created_from": q.created_from, "created_to": q.created_to,
            "updated_from": q.updated_from, "updated_to": q.updated_to,
            "pipeline_id": q.pipeline_id, "stage_id": q.stage_id, "outcome": q.outcome,
            "close_from": q.close_from, "close_to": q.close_to, "contact_id": q.contact_id,
            "q": q.q.as_deref().is_some_and(|s| !s.trim().is_empty()),
        });
        let ev = Event {
            action: action_name(t, "export"),
            success: true,
            object_type: Some(t.as_str()),
            object_id: None,
            details: json!({"filters": filters}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(RecordExport {
            tenant: actor.tenant(),
            object_type: t,
            query: q,
            after: None,
            done: false,
        })
    }

    /// The next page of an export; None when done.
    pub async fn export_records_next(&self, e: &mut RecordExport) -> Result<Option<Vec<Record>>> {
        if e.done {
            return Ok(None);
        }
        let page = self
            .query_records(e.tenant, e.object_type, &e.query, e.after, EXPORT_PAGE)
            .await?;
        e.after = page.items.last().map(|r| r.id);
        e.done = page.next_cursor.is_none();
        Ok(Some(page.items))
    }

    /// Bulk reads of personal data are recorded as counts.
    async fn audit_read(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        verb: &str,
        count: usize,
    ) -> Result<()> {
        let mut w = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut w).await?;
        let ev = Event {
            action: action_name(t, verb),
            success: true,
            object_type: Some(t.as_str()),
            object_id: None,
            details: json!({"count": count}),
        };
        self.audit(&mut w, &keys, &actor_label(actor), ctx, ev)
            .await?;
        w.commit().await?;
        Ok(())
    }

    fn query_lookup(
        &self,
        keys: &TenantKeys,
        t: ObjectType,
        q: &RecordQuery,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let asked: Vec<(&str, &String)> = [
            ("email", &q.email),
            ("phone", &q.phone),
            ("domain", &q.domain),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let [(field, raw)] = asked.as_slice() else {
            if asked.len() > 1 {
                return Err(Error::validation(
                    "email",
                    "one_lookup",
                    "filter on one of email, phone or domain at a time",
                ));
            }
            return Ok(None);
        };
        let spec = t
            .fields()
            .iter()
            .find(|s| s.lookup && s.name == *field)
            .ok_or_else(|| {
                Error::validation(
                    field,
                    "not_applicable",
                    "this object type has no such field",
                )
            })?;
        let key = fields::lookup_key(spec, raw.trim())
            .ok_or_else(|| Error::validation(field, "invalid_phone", "not a phone number"))?;
        Ok(Some((
            (*field).to_owned(),
            keys.blind(&lookup_domain(t, field), &key).to_vec(),
        )))
    }

    pub async fn update_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        if_match: &IfMatch,
        input: RecordInput,
    ) -> Result<Record> {
        actor.require(Permission::CrmWrite)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = live(&mut tx, t, id).await?;
        if_match.check(row.revision, true)?;
        let schema = self.schema(&mut tx, t).await?;
        self.update_in(&mut tx, &keys, &schema, actor, ctx, &row, &input, None)
            .await?;
        let rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Everything an update of `row` writes (version, record, lookups, links, tags, audit
    /// event), inside `tx`. `import` names the import the change came from.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_in(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        ctx: &RequestContext,
        row: &CrmRecordRow,
        input: &RecordInput,
        import: Option<Uuid>,
    ) -> Result<()> {
        let t = schema.t;
        let id = row.id;
        let current = open_fields(keys, row)?;
        let f = fields::apply(schema, &current, &input.fields)?;
        t.check_required(&f)?;
        fields::check_custom_required(schema, &f)?;
        let owner = input.owner_id.unwrap_or(row.owner_id);
        let company = input.company_id.unwrap_or(row.company_id);
        if owner != row.owner_id {
            self.check_owner(tx, owner).await?;
        }
        if company != row.company_id {
            self.check_company(tx, t, company).await?;
        }
        self.check_duplicate(tx, keys, schema, id, &f).await?;
        let deal = self.resolve_deal(tx, t, Some(&row.deal), input).await?;
        let task = deals::resolve_task(t, Some(&row.task), input, self.now())?;
        let related = self.resolve_related(tx, t, input).await?;
        let tags = match &input.tag_ids {
            Some(ids) => Some(self.check_tags(tx, ids).await?),
            None => None,
        };
        let changed = fields::changes(&current, &f);
        let sensitive = self.guard(tx, &f, changed.keys()).await?;
        let mut details = json!({"changed": changed, "revision": row.revision + 1});
        if owner != row.owner_id {
            details["owner_id"] = json!({"old": row.owner_id, "new": owner});
        }
        if company != row.company_id {
            details["company_id"] = json!({"old": row.company_id, "new": company});
        }
        if deal != row.deal {
            details["deal"] = json!(deals::deal_changes(&row.deal, &deal));
        }
        if task != row.task {
            details["task"] = json!(deals::cols_changes(&row.task, &task));
        }
        if let Some(others) = &related {
            details["related_ids"] = json!(others);
        }
        if let Some(tags) = &tags {
            details["tag_ids"] = json!(tags);
        }
        if let Some(import) = import {
            details["import"] = json!(import);
        }
        let next = NextState {
            lookups: lookups(keys, schema, &f),
            fields: f,
            owner,
            company,
            deal,
            task,
            contacts: related,
            sensitive,
            tags,
        };
        self.write_revision(
            tx, keys, actor, ctx, t, row, current, next, "update", details,
        )
        .await
    }

    /// Keeps `row`'s state as a version and writes the next revision, with its event.
    #[allow(clippy::too_many_arguments)]
    async fn write_revision(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        row: &CrmRecordRow,
        previous: Map<String, Value>,
        next: NextState,
        verb: &str,
        details: Value,
    ) -> Result<()> {
        let label = actor_label(actor);
        let now = self.now();
        let stored = StoredVersion {
            revision: row.revision,
            fields: previous,
            owner_id: row.owner_id,
            company_id: row.company_id,
            deal: row.deal.clone(),
            task: row.task.clone(),
        };
        let plain = serde_json::to_vec(&stored).map_err(|_| Error::internal("version encoding"))?;
        let sealed_version = keys.seal("crm_versions", "fields", record_ctx_id(row.id), &plain)?;
        tx.insert_version(
            row.id,
            row.revision,
            &sealed_version,
            row.updated_at,
            &row.updated_by,
        )
        .await?;
        let sealed = seal_fields(keys, row.id, &next.fields)?;
        let updated = tx
            .update_record(
                row.revision,
                &RecordWrite {
                    id: row.id,
                    object_type: t.as_str(),
                    owner_id: next.owner,
                    company_id: next.company,
                    revision: row.revision + 1,
                    fields: &sealed,
                    at: now,
                    by: &label,
                    deal: &next.deal,
                    task: &next.task,
                    sensitive: next.sensitive.as_deref(),
                },
            )
            .await?;
        if !updated {
            return Err(stale());
        }
        tx.set_lookups(t.as_str(), row.id, &next.lookups).await?;
        if let Some(contacts) = &next.contacts {
            tx.set_associations(row.id, contacts).await?;
        }
        if let Some(tags) = &next.tags {
            tx.set_record_tags(row.id, tags).await?;
        }
        self.audit(tx, keys, &label, ctx, event(t, verb, row.id, details))
            .await?;
        self.count_sealed(tx, keys, 2).await
    }

    /// Moves a record to the trash (restorable until the trash retention purges it).
    pub async fn delete_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        if_match: &IfMatch,
    ) -> Result<()> {
        actor.require(Permission::CrmWrite)?;
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = live(&mut tx, t, id).await?;
        if_match.check(row.revision, false)?;
        if !tx
            .set_record_deleted(id, Some((self.now(), &label)))
            .await?
        {
            return Err(stale());
        }
        self.audit(
            &mut tx,
            &keys,
            &label,
            ctx,
            event(t, "delete", id, json!({"revision": row.revision})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every version of a record, newest (current) first.
    pub async fn record_versions(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
    ) -> Result<Vec<RecordVersion>> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let row = live(&mut tx, t, id).await?;
        let is_deal = matches!(t, ObjectType::Deal | ObjectType::Ticket);
        let mut out = vec![RecordVersion {
            revision: row.revision,
            fields: open_fields(&keys, &row)?,
            deal: is_deal.then(|| row.deal.clone()),
            changed_at: rfc3339(row.updated_at),
            changed_by: row.updated_by.clone(),
            current: true,
        }];
        for v in tx.versions(id).await? {
            let s = open_version(&keys, id, v.revision, &v.fields)?;
            out.push(RecordVersion {
                revision: v.revision,
                fields: s.fields,
                deal: is_deal.then_some(s.deal),
                changed_at: rfc3339(v.changed_at),
                changed_by: v.changed_by,
                current: false,
            });
        }
        drop(tx);
        self.audit_read(actor, ctx, t, "versions", out.len())
            .await?;
        Ok(out)
    }

    /// Makes an earlier version's values current again (as a new revision; the versions in
    /// between are kept): its fields and, for deals, pipeline, stage, amount and close date.
    /// Owner, company and a deal's contacts stay as they are now.
    pub async fn restore_record_version(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        revision: i64,
        if_match: &IfMatch,
    ) -> Result<Record> {
        actor.require(Permission::CrmWrite)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = live(&mut tx, t, id).await?;
        if_match.check(row.revision, true)?;
        let v = tx
            .versions(id)
            .await?
            .into_iter()
            .find(|v| v.revision == revision)
            .ok_or_else(Error::not_found)?;
        let old = open_version(&keys, id, revision, &v.fields)?;
        let current = open_fields(&keys, &row)?;
        let schema = self.schema(&mut tx, t).await?;
        self.check_duplicate(&mut tx, &keys, &schema, id, &old.fields)
            .await?;
        if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
            // The old stage must still exist (stages in use cannot be removed, but a stage that
            // was emptied may have been).
            let stages = self.stages_of(&mut tx, t).await?;
            if !stages.iter().any(|s| Some(s.id) == old.deal.stage_id) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "stage_gone",
                    "the stage of that version no longer exists",
                ));
            }
        }
        let changed = fields::changes(&current, &old.fields);
        let sensitive = self.guard(&mut tx, &old.fields, changed.keys()).await?;
        let mut details = json!({"changed": changed, "restored_revision": revision, "revision": row.revision + 1});
        if old.deal != row.deal {
            details["deal"] = json!(deals::deal_changes(&row.deal, &old.deal));
        }
        if old.task != row.task {
            details["task"] = json!(deals::cols_changes(&row.task, &old.task));
        }
        let next = NextState {
            lookups: lookups(&keys, &schema, &old.fields),
            fields: old.fields,
            owner: row.owner_id,
            company: row.company_id,
            deal: old.deal,
            task: old.task,
            contacts: None,
            sensitive,
            tags: None,
        };
        self.write_revision(
            &mut tx,
            &keys,
            actor,
            ctx,
            t,
            &row,
            current,
            next,
            "restore_version",
            details,
        )
        .await?;
        let rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The trash: deleted records of every type (or one), most recently deleted last.
    pub async fn list_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: Option<ObjectType>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Record>> {
        actor.require(Permission::CrmRead)?;
        let after = validate::cursor::<RecordId>(cursor)?;
        let limit = page_limit(limit);
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let filter = RecordFilter {
            object_type: t.map(|t| t.as_str().to_owned()),
            deleted: true,
            ..Default::default()
        };
        let rows = tx.list_records(&filter, after, limit + 1).await?;
        let mut page = crate::users::page(
            rows,
            limit,
            |r| to_record(&keys, r),
            |r: &Record| r.id.to_string(),
        )?;
        self.enrich(&mut tx, &mut page.items).await?;
        drop(tx);
        for t in ObjectType::ALL {
            let n = page.items.iter().filter(|r| r.object_type == t).count();
            if n > 0 {
                self.audit_read(actor, ctx, t, "list", n).await?;
            }
        }
        Ok(page)
    }

    /// Takes a record out of the trash.
    pub async fn restore_from_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
    ) -> Result<Record> {
        actor.require(Permission::CrmWrite)?;
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx
            .any_record(id)
            .await?
            .filter(|r| r.deleted_at.is_some())
            .ok_or_else(Error::not_found)?;
        let t = ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        let f = open_fields(&keys, &row)?;
        let schema = self.schema(&mut tx, t).await?;
        self.check_duplicate(&mut tx, &keys, &schema, id, &f)
            .await?;
        tx.set_record_deleted(id, None).await?;
        self.audit(
            &mut tx,
            &keys,
            &label,
            ctx,
            event(t, "restore", id, json!({})),
        )
        .await?;
        let rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Deletes a trashed record for good (a separate, privileged permission).
    pub async fn purge_from_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
    ) -> Result<()> {
        actor.require(Permission::CrmPurge)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx
            .any_record(id)
            .await?
            .filter(|r| r.deleted_at.is_some())
            .ok_or_else(Error::not_found)?;
        let t = ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        tx.purge_record(id).await?;
        self.audit(
            &mut tx,
            &keys,
            &actor_label(actor),
            ctx,
            event(t, "purge", id, json!({"reason": "requested"})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The retention job: purges trash entries older than the tenant's own trash retention
    /// (settings, [`Kluis::set_trash_retention_setting`]) or, when it set none, `retention_ms`
    /// (the server's default), and forgets expired Idempotency-Key outcomes, for one tenant.
    /// Returns the number of records purged.
    pub async fn purge_expired_trash(&self, tenant: TenantId, retention_ms: i64) -> Result<u64> {
        let retention_ms = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            match crate::settings::stored_trash_retention(&mut tx).await? {
                Some(days) => i64::from(days) * 86_400_000,
                None => retention_ms,
            }
        };
        let before = self.now() - retention_ms;
        let mut purged = 0;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let ids = tx.trash_older_than(before, 100).await?;
            if ids.is_empty() {
                tx.expire_idempotency(self.now() - IDEMPOTENCY_TTL_MS)
                    .await?;
                let keys = self.keys(&mut tx).await?;
                for key in tx.custom_values_trashed_before(before).await? {
                    tx.delete_custom_value(&key).await?;
                    let ev = Event::ok("custom_value.purge", "custom_value", &key)
                        .with(json!({"reason": "trash_retention"}));
                    self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                        .await?;
                    purged += 1;
                }
                tx.commit().await?;
                return Ok(purged);
            }
            let keys = self.keys(&mut tx).await?;
            for id in ids {
                let Some(row) = tx.any_record(id).await? else {
                    continue;
                };
                let t = ObjectType::parse(&row.object_type)
                    .ok_or_else(|| Error::internal("unknown object type stored"))?;
                tx.purge_record(id).await?;
                let ev = event(
                    t,
                    "purge",
                    id,
                    json!({"reason": "trash_retention", "deleted_at": row.deleted_at.map(rfc3339)}),
                );
                self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                    .await?;
                purged += 1;
            }
            tx.commit().await?;
        }
    }
}

pub(crate) fn idem_ctx(key_hash: &[u8; 32]) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&key_hash[..16]);
    Uuid::from_bytes(b)
}

fn open_version(
    keys: &TenantKeys,
    id: RecordId,
    revision: i64,
    sealed: &[u8],
) -> Result<StoredVersion> {
    let plain = keys.open("crm_versions", "fields", record_ctx_id(id), sealed)?;
    let v: StoredVersion =
        serde_json::from_slice(&plain).map_err(|_| Error::internal("stored version unreadable"))?;
    // A sealed version copied onto another revision row of the same record opens (same AAD),
    // but says which revision it is.
    if v.revision != revision {
        return Err(Error::internal(
            "stored version does not match its revision",
        ));
    }
    Ok(v)
}

async fn live(tx: &mut TenantTx, t: ObjectType, id: RecordId) -> Result<CrmRecordRow> {
    tx.record(t.as_str(), id)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(Error::not_found)
}
