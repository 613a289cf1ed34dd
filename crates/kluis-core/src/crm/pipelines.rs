//! Deal pipelines: ordered stages, each open, won or lost. Configuration of the organisation
//! (admins), not personal data, so names are stored plain. Stages in use cannot be removed.

use kluis_store::rows::{PipelineRow, StageRow};
use kluis_store::{PipelineId, StageId, TenantTx};
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
    /// `open` (default), `won` or `lost`.
    pub outcome: Option<String>,
}

const DEFAULT_STAGES: [(&str, &str); 6] = [
    ("New", "open"),
    ("Qualified", "open"),
    ("Proposal", "open"),
    ("Negotiation", "open"),
    ("Won", "won"),
    ("Lost", "lost"),
];

fn to_pipeline(p: PipelineRow, stages: &[StageRow]) -> Pipeline {
    Pipeline {
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
        format!("deals are in this {what} (also in the trash); move them first"),
    )
}

impl Kluis {
    pub(super) async fn create_default_pipeline(&self, tx: &mut TenantTx) -> Result<()> {
        let input = PipelineInput {
            name: "Sales".into(),
            position: Some(0),
            stages: DEFAULT_STAGES
                .iter()
                .map(|(n, o)| StageInput {
                    id: None,
                    name: (*n).into(),
                    outcome: Some((*o).into()),
                })
                .collect(),
        };
        self.write_pipeline(tx, PipelineId::new(), None, &input)
            .await
    }

    /// Writes a pipeline and its stage list (validated); `existing` is its current state.
    async fn write_pipeline(
        &self,
        tx: &mut TenantTx,
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
            if !matches!(o, "open" | "won" | "lost") {
                return Err(Error::validation(
                    &format!("stages[{i}].outcome"),
                    "invalid_outcome",
                    "must be open, won or lost",
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
            .stages(ObjectType::Deal.as_str())
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
            (None, None) => tx.pipelines(ObjectType::Deal.as_str()).await?.len() as i64,
        };
        tx.upsert_pipeline(&PipelineRow {
            id,
            object_type: ObjectType::Deal.as_str().into(),
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

    async fn pipeline_state(&self, tx: &mut TenantTx, id: PipelineId) -> Result<Pipeline> {
        let stages = tx.stages(ObjectType::Deal.as_str()).await?;
        let p = tx
            .pipelines(ObjectType::Deal.as_str())
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(Error::not_found)?;
        Ok(to_pipeline(p, &stages))
    }

    /// The deal pipelines, in order (the default one is created on first use).
    pub async fn list_pipelines(&self, actor: &Actor) -> Result<Vec<Pipeline>> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let stages = self.deal_stages(&mut tx).await?;
        let pipelines = tx.pipelines(ObjectType::Deal.as_str()).await?;
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
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        self.deal_stages(&mut tx).await?;
        let id = PipelineId::new();
        self.write_pipeline(&mut tx, id, None, &input).await?;
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
        let existing = tx
            .pipelines(ObjectType::Deal.as_str())
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(Error::not_found)?;
        self.write_pipeline(&mut tx, id, Some(&existing), &input)
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
        if tx.pipelines(ObjectType::Deal.as_str()).await?.len() == 1 {
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
