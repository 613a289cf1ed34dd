//! Deals: pipeline and stage, amount and currency, close date, contacts. Validated here against
//! the tenant's pipelines; the record mechanics (revisions, versions, trash, audit) are shared.

use kluis_store::rows::{DealCols, RecordFilter, StageRow};
use kluis_store::{RecordId, TenantTx};

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

/// Deal-only inputs on another object type are refused, not ignored.
fn refuse_deal_input(t: ObjectType, i: &RecordInput) -> Result<()> {
    for (set, field) in [
        (i.pipeline_id.is_some(), "pipeline_id"),
        (i.stage_id.is_some(), "stage_id"),
        (i.amount_minor.is_some(), "amount_minor"),
        (i.currency.is_some(), "currency"),
        (i.close_date.is_some(), "close_date"),
        (i.contact_ids.is_some(), "contact_ids"),
    ] {
        if set {
            return Err(not_applicable(field, t));
        }
    }
    Ok(())
}

fn check_currency(c: &str) -> Result<String> {
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

fn check_date(d: &str) -> Result<String> {
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
        if t != ObjectType::Deal {
            refuse_deal_input(t, input)?;
            return Ok(DealCols::default());
        }
        let mut d = current.cloned().unwrap_or_default();
        let stages = self.deal_stages(tx).await?;
        let pipeline = input
            .pipeline_id
            .or(d.pipeline_id)
            .or_else(|| stages.first().map(|s| s.pipeline_id))
            .ok_or_else(|| Error::internal("no deal pipeline"))?;
        if !stages.iter().any(|s| s.pipeline_id == pipeline) {
            return Err(Error::validation(
                "pipeline_id",
                "unknown_pipeline",
                "no deal pipeline with this id in your organisation",
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
                "no stage with this id in the deal's pipeline",
            ));
        }
        d.pipeline_id = Some(pipeline);
        d.stage_id = Some(stage);
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
        if let Some(ids) = &input.contact_ids {
            self.check_contacts(tx, ids).await?;
        }
        Ok(d)
    }

    /// Every id must be a live contact of the tenant.
    async fn check_contacts(&self, tx: &mut TenantTx, ids: &[RecordId]) -> Result<()> {
        if ids.len() > MAX_CONTACTS {
            return Err(Error::validation(
                "contact_ids",
                "too_many",
                format!("at most {MAX_CONTACTS} contacts per deal"),
            ));
        }
        for id in ids {
            let live = tx
                .record(ObjectType::Contact.as_str(), *id)
                .await?
                .is_some_and(|r| r.deleted_at.is_none());
            if !live {
                return Err(Error::validation(
                    "contact_ids",
                    "unknown_contact",
                    "no contact with this id in your organisation",
                ));
            }
        }
        Ok(())
    }

    /// The tenant's deal stages, creating the default pipeline on first use.
    pub(super) async fn deal_stages(&self, tx: &mut TenantTx) -> Result<Vec<StageRow>> {
        let stages = tx.stages(ObjectType::Deal.as_str()).await?;
        if !stages.is_empty() {
            return Ok(stages);
        }
        self.create_default_pipeline(tx).await?;
        Ok(tx.stages(ObjectType::Deal.as_str()).await?)
    }

    /// Outcome (from the stage) and contacts of the deals among `recs`.
    pub(super) async fn enrich_deals(&self, tx: &mut TenantTx, recs: &mut [Record]) -> Result<()> {
        if !recs.iter().any(|r| r.object_type == ObjectType::Deal) {
            return Ok(());
        }
        let stages = tx.stages(ObjectType::Deal.as_str()).await?;
        for r in recs
            .iter_mut()
            .filter(|r| r.object_type == ObjectType::Deal)
        {
            let stage = r.deal.as_ref().and_then(|d| d.stage_id);
            r.outcome = stages
                .iter()
                .find(|s| Some(s.id) == stage)
                .map(|s| s.outcome.clone());
            r.contact_ids = Some(tx.associations(r.id).await?);
        }
        Ok(())
    }
}

/// Deal filters on another object type are refused, not ignored.
pub(super) fn check_filter(t: ObjectType, f: &RecordFilter) -> Result<()> {
    for (set, field) in [
        (f.pipeline_id.is_some(), "pipeline_id"),
        (f.stage_id.is_some(), "stage_id"),
        (f.outcome.is_some(), "outcome"),
        (f.close_from.is_some(), "close_from"),
        (f.close_to.is_some(), "close_to"),
        (f.associated_with.is_some(), "contact_id"),
    ] {
        if set && t != ObjectType::Deal {
            return Err(not_applicable(field, t));
        }
    }
    if let Some(o) = &f.outcome
        && !matches!(o.as_str(), "open" | "won" | "lost")
    {
        return Err(Error::validation(
            "outcome",
            "invalid_outcome",
            "must be open, won or lost",
        ));
    }
    for (field, d) in [("close_from", &f.close_from), ("close_to", &f.close_to)] {
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
    let (o, n) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let (Some(o), Some(n)) = (o.as_object(), n.as_object()) else {
        return serde_json::Map::new();
    };
    super::fields::changes(o, n)
}
