//! Pipelines of deals (stages open, won or lost) and tickets (stages open or closed): ordered
//! stages, configuration of the organisation (admins), not personal data, so names are stored
//! plain. Stages in use cannot be removed.

use crate::db::TenantTx;
use crate::db::rows::{PipelineRow, StageRow};
use kluis_types::{PipelineId, StageId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ObjectType;
use crate::audit::{Event, actor_label};
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, validate};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pipeline {
    #[schema(value_type = uuid::Uuid)]
    pub id: PipelineId,
    /// `deal` or `ticket`.
    pub object_type: ObjectType,
    pub name: String,
    pub position: i64,
    pub stages: Vec<Stage>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stage {
    #[schema(value_type = uuid::Uuid)]
    pub id: StageId,
    pub name: String,
    /// `open`, `won` or `lost`.
    pub outcome: String,
}

/// A pipeline as an admin writes it: the stage list replaces the current one, in order.
/// Stages keep their id when it is given; stages left out are removed (refused while deals
/// are in them).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {
    /// `deal` (default) or `ticket`; fixed once created.
    pub object_type: Option<ObjectType>,
    pub name: String,
    /// Position among the pipelines (default: last).
    pub position: Option<i64>,
    pub stages: Vec<StageInput>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    #[schema(value_type = Option<uuid::Uuid>)]
    pub id: Option<StageId>,
    pub name: String,
    /// `open` (default); `won` or `lost` for deals, `closed` for tickets.
    pub outcome: Option<String>,
}

const TICKET_STAGES: [(&str, &str); 4] = [
    ("New", "open"),
    ("In progress", "open"),
    ("Waiting on customer", "open"),
    ("Closed", "closed"),
];

const DEAL_STAGES: [(&str, &str); 6] = [
    ("New", "open"),
    ("Qualified", "open"),
    ("Proposal", "open"),
    ("Negotiation", "open"),
    ("Won", "won"),
    ("Lost", "lost"),
];

fn to_pipeline(p: PipelineRow, stages: &[StageRow]) -> Pipeline {
    Pipeline {
        object_type: ObjectType::parse(&p.object_type).unwrap_or(ObjectType::Deal),
        stages: stages
            .iter()
            .filter(|s| s.pipeline_id == p.id)
            .map(|s| Stage {
                id: s.id,
                name: s.name.clone(),
                outcome: s.outcome.clone(),
            })
            .collect(),
        id: p.id,
        name: p.name,
        position: p.position,
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    }
}

fn in_use(what: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        "in_use",
        format!("records are in this {what} (also in the trash); move them first"),
    )
}

fn check_pipeline_type(t: ObjectType) -> Result<()> {
    if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
        Ok(())
    } else {
        Err(Error::validation(
            "object_type",
            "not_applicable",
            "only deals and tickets have pipelines",
        ))
    }
}

impl Kluis {
    pub(super) async fn create_default_pipeline(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
    ) -> Result<()> {
        let (name, stages): (&str, &[(&str, &str)]) = match t {
            ObjectType::Ticket => ("Support", &TICKET_STAGES),
            _ => ("Sales", &DEAL_STAGES),
        };
        let input = PipelineInput {
            object_type: Some(t),
            name: name.into(),
            position: Some(0),
            stages: stages
                .iter()
                .map(|(n, o)| StageInput {
                    id: None,
                    name: (*n).into(),
                    outcome: Some((*o).into()),
                })
                .collect(),
        };
        self.write_pipeline(tx, t, PipelineId::new(), None, &input)
            .await
    }

    /// Writes a pipeline and its stage list (validated); `existing` is its current state.
    async fn write_pipeline(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        id: PipelineId,
        existing: Option<&PipelineRow>,
        input: &PipelineInput,
    ) -> Result<()> {
        let name = validate::name("name", &input.name)?;
        if input.stages.is_empty() || input.stages.len() > 50 {
            return Err(Error::validation(
                "stages",
                "invalid_stages",
                "a pipeline has 1 to 50 stages",
            ));
        }
        let mut outcomes = Vec::new();
        for (i, s) in input.stages.iter().enumerate() {
            validate::name(&format!("stages[{i}].name"), &s.name)?;
            let o = s.outcome.as_deref().unwrap_or("open");
            let allowed: &[&str] = if t == ObjectType::Ticket {
                &["open", "closed"]
            } else {
                &["open", "won", "lost"]
            };
            if !allowed.contains(&o) {
                return Err(Error::validation(
                    &format!("stages[{i}].outcome"),
                    "invalid_outcome",
                    format!("must be one of {}", allowed.join(", ")),
                ));
            }
            outcomes.push(o);
        }
        if !outcomes.contains(&"open") {
            return Err(Error::validation(
                "stages",
                "invalid_stages",
                "a pipeline needs at least one open stage",
            ));
        }
        let current: Vec<StageRow> = tx
            .stages(t.as_str())
            .await?
            .into_iter()
            .filter(|s| s.pipeline_id == id)
            .collect();
        for s in &input.stages {
            if let Some(sid) = s.id
                && !current.iter().any(|c| c.id == sid)
            {
                return Err(Error::validation(
                    "stages",
                    "unknown_stage",
                    "a stage id does not belong to this pipeline",
                ));
            }
        }
        for c in &current {
            if !input.stages.iter().any(|s| s.id == Some(c.id)) {
                if tx.records_in(None, Some(c.id)).await? > 0 {
                    return Err(in_use("stage"));
                }
                tx.delete_stage(c.id).await?;
            }
        }
        let now = self.now();
        let position = match (input.position, existing) {
            (Some(p), _) => p,
            (None, Some(e)) => e.position,
            (None, None) => tx.pipelines(t.as_str()).await?.len() as i64,
        };
        tx.upsert_pipeline(&PipelineRow {
            id,
            object_type: t.as_str().into(),
            name,
            position,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
        .await?;
        for (i, (s, outcome)) in input.stages.iter().zip(outcomes).enumerate() {
            tx.upsert_stage(&StageRow {
                id: s.id.unwrap_or_default(),
                pipeline_id: id,
                name: s.name.trim().to_owned(),
                position: i as i64,
                outcome: outcome.into(),
            })
            .await?;
        }
        Ok(())
    }

    /// A pipeline of either type, with its type.
    async fn find_pipeline(
        &self,
        tx: &mut TenantTx,
        id: PipelineId,
    ) -> Result<(ObjectType, PipelineRow)> {
        for t in [ObjectType::Deal, ObjectType::Ticket] {
            if let Some(p) = tx
                .pipelines(t.as_str())
                .await?
                .into_iter()
                .find(|p| p.id == id)
            {
                return Ok((t, p));
            }
        }
        Err(Error::not_found())
    }

    async fn pipeline_state(&self, tx: &mut TenantTx, id: PipelineId) -> Result<Pipeline> {
        let (t, p) = self.find_pipeline(tx, id).await?;
        let stages = tx.stages(t.as_str()).await?;
        Ok(to_pipeline(p, &stages))
    }

    /// The pipelines of deals or tickets, in order (a default one is created on first use).
    pub async fn list_pipelines(&self, actor: &Actor, t: ObjectType) -> Result<Vec<Pipeline>> {
        actor.require(Permission::CrmRead)?;
        check_pipeline_type(t)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let stages = self.stages_of(&mut tx, t).await?;
        let pipelines = tx.pipelines(t.as_str()).await?;
        tx.commit().await?;
        Ok(pipelines
            .into_iter()
            .map(|p| to_pipeline(p, &stages))
            .collect())
    }

    pub async fn create_pipeline(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: PipelineInput,
    ) -> Result<Pipeline> {
        actor.require(Permission::SettingsManage)?;
        let t = input.object_type.unwrap_or(ObjectType::Deal);
        check_pipeline_type(t)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        self.stages_of(&mut tx, t).await?;
        let id = PipelineId::new();
        self.write_pipeline(&mut tx, t, id, None, &input).await?;
        let p = self.pipeline_state(&mut tx, id).await?;
        self.audit_pipeline(&mut tx, actor, ctx, "pipeline.create", &p)
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    pub async fn update_pipeline(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: PipelineId,
        input: PipelineInput,
    ) -> Result<Pipeline> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let (t, existing) = self.find_pipeline(&mut tx, id).await?;
        if input.object_type.is_some_and(|o| o != t) {
            return Err(Error::validation(
                "object_type",
                "immutable",
                "a pipeline's object type cannot change",
            ));
        }
        self.write_pipeline(&mut tx, t, id, Some(&existing), &input)
            .await?;
        let p = self.pipeline_state(&mut tx, id).await?;
        self.audit_pipeline(&mut tx, actor, ctx, "pipeline.update", &p)
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Removes an empty pipeline (no deals, also none in the trash); the last one stays.
    pub async fn delete_pipeline(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: PipelineId,
    ) -> Result<()> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let p = self.pipeline_state(&mut tx, id).await?;
        if tx.pipelines(p.object_type.as_str()).await?.len() == 1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "last_pipeline",
                "the last pipeline cannot be deleted",
            ));
        }
        if tx.records_in(Some(id), None).await? > 0 {
            return Err(in_use("pipeline"));
        }
        tx.delete_pipeline(id).await?;
        self.audit_pipeline(&mut tx, actor, ctx, "pipeline.delete", &p)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_pipeline(
        &self,
        tx: &mut TenantTx,
        actor: &Actor,
        ctx: &RequestContext,
        action: &'static str,
        p: &Pipeline,
    ) -> Result<()> {
        let keys = self.keys(tx).await?;
        let stages: Vec<_> = p
            .stages
            .iter()
            .map(|s| json!({"id": s.id, "name": s.name, "outcome": s.outcome}))
            .collect();
        let ev =
            Event::ok(action, "pipeline", p.id).with(json!({"name": p.name, "stages": stages}));
        self.audit(tx, &keys, &actor_label(actor), ctx, ev).await
    }
}
