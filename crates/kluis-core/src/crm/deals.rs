//! What some object types have beyond fields: deals (pipeline and stage, amount and currency,
//! close date, contacts), tasks (due date, done) and the records notes and tasks are about.
//! Validated here; the record mechanics (revisions, versions, trash, audit) are shared.

use crate::db::TenantTx;
use crate::db::rows::{DealCols, RecordFilter, StageRow, TaskCols};
use kluis_types::RecordId;

use super::{ObjectType, Record, RecordInput};
use crate::{Error, Kluis, Result};

/// OpenAPI shape of a deal's plain columns.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DealSchema {
    pipeline_id: Option<uuid::Uuid>,
    stage_id: Option<uuid::Uuid>,
    /// Minor units of `currency` (cents for EUR).
    amount_minor: Option<i64>,
    /// ISO 4217, e.g. EUR.
    currency: Option<String>,
    /// `YYYY-MM-DD`.
    close_date: Option<String>,
}

/// A deal may be worth at most this many minor units (10^15 cents = 10 trillion euro).
const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// Contacts per deal.
const MAX_CONTACTS: usize = 100;

fn not_applicable(field: &str, t: ObjectType) -> Error {
    Error::validation(
        field,
        "not_applicable",
        format!("a {} has no {field}", t.as_str()),
    )
}

/// Inputs that belong to other object types are refused, not ignored.
fn check_inputs(t: ObjectType, i: &RecordInput) -> Result<()> {
    use ObjectType::{Deal, Note, Task, Ticket};
    let staged = matches!(t, Deal | Ticket);
    for (set, field, ok) in [
        (i.pipeline_id.is_some(), "pipeline_id", staged),
        (i.stage_id.is_some(), "stage_id", staged),
        (i.priority.is_some(), "priority", t == Ticket),
        (i.amount_minor.is_some(), "amount_minor", t == Deal),
        (i.currency.is_some(), "currency", t == Deal),
        (i.close_date.is_some(), "close_date", t == Deal),
        (i.contact_ids.is_some(), "contact_ids", staged),
        (
            i.related_ids.is_some(),
            "related_ids",
            matches!(t, Note | Task),
        ),
        (i.due_date.is_some(), "due_date", t == Task),
        (i.done.is_some(), "done", t == Task),
    ] {
        if set && !ok {
            return Err(not_applicable(field, t));
        }
    }
    Ok(())
}

/// How a task shows its plain columns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    pub due_date: Option<String>,
    pub done: bool,
    pub done_at: Option<String>,
}

impl From<&TaskCols> for TaskView {
    fn from(t: &TaskCols) -> Self {
        TaskView {
            due_date: t.due_date.clone(),
            done: t.done_at.is_some(),
            done_at: t.done_at.map(crate::users::rfc3339),
        }
    }
}

/// A task's columns after applying `input` (other types: none).
pub(super) fn resolve_task(
    t: ObjectType,
    current: Option<&TaskCols>,
    input: &RecordInput,
    now: i64,
) -> Result<TaskCols> {
    if t != ObjectType::Task {
        return Ok(TaskCols::default());
    }
    let mut c = current.cloned().unwrap_or_default();
    if let Some(d) = &input.due_date {
        c.due_date = d
            .as_deref()
            .map(|d| check_date(d).map_err(|e| e.with_field("due_date")))
            .transpose()?;
    }
    match input.done {
        Some(true) if c.done_at.is_none() => c.done_at = Some(now),
        Some(false) => c.done_at = None,
        _ => {}
    }
    Ok(c)
}

pub(super) fn check_currency(c: &str) -> Result<String> {
    let c = c.trim().to_ascii_uppercase();
    if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::validation(
            "currency",
            "invalid_currency",
            "must be an ISO 4217 code such as EUR",
        ));
    }
    Ok(c)
}

pub(super) fn check_date(d: &str) -> Result<String> {
    let fmt = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
        .map_err(|_| Error::internal("date format"))?;
    time::Date::parse(d.trim(), &fmt)
        .map_err(|_| Error::validation("close_date", "invalid_date", "must be a date YYYY-MM-DD"))?
        .format(&fmt)
        .map_err(|_| Error::internal("date format"))
}

impl Kluis {
    /// The deal columns after applying `input` to `current` (None on create). Other types get
    /// empty columns, and an error if they were sent deal inputs.
    pub(super) async fn resolve_deal(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        current: Option<&DealCols>,
        input: &RecordInput,
    ) -> Result<DealCols> {
        check_inputs(t, input)?;
        if !matches!(t, ObjectType::Deal | ObjectType::Ticket) {
            return Ok(DealCols::default());
        }
        let mut d = current.cloned().unwrap_or_default();
        let stages = self.stages_of(tx, t).await?;
        let pipeline = input
            .pipeline_id
            .or(d.pipeline_id)
            .or_else(|| stages.first().map(|s| s.pipeline_id))
            .ok_or_else(|| Error::internal("no deal pipeline"))?;
        if !stages.iter().any(|s| s.pipeline_id == pipeline) {
            return Err(Error::validation(
                "pipeline_id",
                "unknown_pipeline",
                format!(
                    "no {} pipeline with this id in your organisation",
                    t.as_str()
                ),
            ));
        }
        let stage = match input.stage_id {
            Some(s) => s,
            // Same pipeline: stay in the current stage; new pipeline: its first stage.
            None => match d.stage_id {
                Some(s) if d.pipeline_id == Some(pipeline) => s,
                _ => stages
                    .iter()
                    .find(|s| s.pipeline_id == pipeline)
                    .map(|s| s.id)
                    .ok_or_else(|| Error::internal("pipeline without stages"))?,
            },
        };
        if !stages
            .iter()
            .any(|s| s.id == stage && s.pipeline_id == pipeline)
        {
            return Err(Error::validation(
                "stage_id",
                "unknown_stage",
                format!("no stage with this id in the {}'s pipeline", t.as_str()),
            ));
        }
        d.pipeline_id = Some(pipeline);
        d.stage_id = Some(stage);
        if t == ObjectType::Ticket {
            if let Some(p) = &input.priority {
                if !matches!(p.as_str(), "low" | "normal" | "high" | "urgent") {
                    return Err(Error::validation(
                        "priority",
                        "invalid_priority",
                        "must be low, normal, high or urgent",
                    ));
                }
                d.priority = Some(p.clone());
            }
            if d.priority.is_none() {
                d.priority = Some("normal".into());
            }
            return Ok(d);
        }
        if let Some(a) = input.amount_minor {
            if a.is_some_and(|a| !(0..=MAX_AMOUNT).contains(&a)) {
                return Err(Error::validation(
                    "amount_minor",
                    "invalid_amount",
                    "must be between 0 and 10^15 minor units",
                ));
            }
            d.amount_minor = a;
        }
        if let Some(c) = &input.currency {
            d.currency = Some(check_currency(c)?);
        }
        if d.amount_minor.is_some() && d.currency.is_none() {
            d.currency = Some("EUR".into());
        }
        if let Some(c) = &input.close_date {
            d.close_date = c.as_deref().map(check_date).transpose()?;
        }
        Ok(d)
    }

    /// The records a deal (its contacts) or a note or task (contacts, companies, deals) is
    /// about, checked to be live records of the tenant; None when not sent.
    pub(super) async fn resolve_related(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        input: &RecordInput,
    ) -> Result<Option<Vec<RecordId>>> {
        let (ids, field, kinds): (_, _, &[ObjectType]) = match t {
            ObjectType::Deal | ObjectType::Ticket => {
                (&input.contact_ids, "contact_ids", &[ObjectType::Contact])
            }
            ObjectType::Note | ObjectType::Task => (
                &input.related_ids,
                "related_ids",
                &[ObjectType::Contact, ObjectType::Company, ObjectType::Deal],
            ),
            _ => return Ok(None),
        };
        let Some(ids) = ids else { return Ok(None) };
        if ids.len() > MAX_CONTACTS {
            return Err(Error::validation(
                field,
                "too_many",
                format!("at most {MAX_CONTACTS} related records"),
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let live = tx.any_record(*id).await?.is_some_and(|r| {
                r.deleted_at.is_none()
                    && ObjectType::parse(&r.object_type).is_some_and(|k| kinds.contains(&k))
            });
            if !live {
                return Err(Error::validation(
                    field,
                    if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
                        "unknown_contact"
                    } else {
                        "unknown_record"
                    },
                    "no such record in your organisation",
                ));
            }
            if !out.contains(id) {
                out.push(*id);
            }
        }
        Ok(Some(out))
    }

    /// The stages of a type's pipelines, creating the default pipeline on first use.
    pub(super) async fn stages_of(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
    ) -> Result<Vec<StageRow>> {
        let stages = tx.stages(t.as_str()).await?;
        if !stages.is_empty() {
            return Ok(stages);
        }
        self.create_default_pipeline(tx, t).await?;
        Ok(tx.stages(t.as_str()).await?)
    }

    /// What a record shows beyond its row: tags (live ones), a deal's outcome (from its stage)
    /// and contacts, the related records of notes and tasks.
    pub(super) async fn enrich(&self, tx: &mut TenantTx, recs: &mut [Record]) -> Result<()> {
        let mut stages = Vec::new();
        for t in [ObjectType::Deal, ObjectType::Ticket] {
            if recs.iter().any(|r| r.object_type == t) {
                stages.extend(tx.stages(t.as_str()).await?);
            }
        }
        let live_tags: Vec<kluis_types::TagId> =
            tx.tags(false).await?.into_iter().map(|t| t.id).collect();
        let ids: Vec<_> = recs.iter().map(|r| r.id).collect();
        let pairs = if live_tags.is_empty() {
            Vec::new()
        } else {
            tx.record_tags(&ids).await?
        };
        for r in recs.iter_mut() {
            r.tag_ids = pairs
                .iter()
                .filter(|(rec, tag)| *rec == r.id && live_tags.contains(tag))
                .map(|(_, tag)| *tag)
                .collect();
            match r.object_type {
                ObjectType::Deal | ObjectType::Ticket => {
                    let stage = r.deal.as_ref().and_then(|d| d.stage_id);
                    r.outcome = stages
                        .iter()
                        .find(|s| Some(s.id) == stage)
                        .map(|s| s.outcome.clone());
                    r.contact_ids = Some(tx.associations(r.id).await?);
                }
                ObjectType::Note | ObjectType::Task => {
                    r.related_ids = Some(tx.associations(r.id).await?);
                }
                ObjectType::Contact | ObjectType::Company => {}
            }
        }
        Ok(())
    }
}

/// Filters of other object types are refused, not ignored.
pub(super) fn check_filter(t: ObjectType, f: &RecordFilter, q: &super::RecordQuery) -> Result<()> {
    use ObjectType::{Deal, Note, Task, Ticket};
    let staged = matches!(t, Deal | Ticket);
    for (set, field, ok) in [
        (f.pipeline_id.is_some(), "pipeline_id", staged),
        (f.stage_id.is_some(), "stage_id", staged),
        (f.outcome.is_some(), "outcome", staged),
        (f.priority.is_some(), "priority", t == Ticket),
        (f.close_from.is_some(), "close_from", t == Deal),
        (f.close_to.is_some(), "close_to", t == Deal),
        (q.contact_id.is_some(), "contact_id", staged),
        (
            q.related_id.is_some(),
            "related_id",
            matches!(t, Note | Task),
        ),
        (f.done.is_some(), "done", t == Task),
        (f.due_from.is_some(), "due_from", t == Task),
        (f.due_to.is_some(), "due_to", t == Task),
    ] {
        if set && !ok {
            return Err(not_applicable(field, t));
        }
    }
    if let Some(o) = &f.outcome
        && !matches!(o.as_str(), "open" | "won" | "lost" | "closed")
    {
        return Err(Error::validation(
            "outcome",
            "invalid_outcome",
            "must be open, won, lost or closed",
        ));
    }
    for (field, d) in [
        ("close_from", &f.close_from),
        ("close_to", &f.close_to),
        ("due_from", &f.due_from),
        ("due_to", &f.due_to),
    ] {
        if let Some(d) = d {
            check_date(d).map_err(|e| e.with_field(field))?;
        }
    }
    Ok(())
}

/// Changed deal columns as `{column: {old, new}}` for the audit event.
pub(super) fn deal_changes(
    old: &DealCols,
    new: &DealCols,
) -> serde_json::Map<String, serde_json::Value> {
    cols_changes(old, new)
}

/// Changed plain columns as `{column: {old, new}}` for the audit event.
pub(super) fn cols_changes<T: serde::Serialize>(
    old: &T,
    new: &T,
) -> serde_json::Map<String, serde_json::Value> {
    let (o, n) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let (Some(o), Some(n)) = (o.as_object(), n.as_object()) else {
        return serde_json::Map::new();
    };
    super::fields::changes(o, n)
}
