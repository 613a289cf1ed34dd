//! CRM settings: custom fields (per object type), pipelines and their stages, tags. The same
//! services as `/api/v1/custom-fields`, `/api/v1/pipelines` and `/api/v1/tags`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kluis_core::RequestContext;
use kluis_core::crm::custom::{CustomFieldInput, CustomFieldUpdate, CustomKind};
use kluis_core::crm::pipelines::{Pipeline, PipelineInput, StageInput};
use kluis_core::crm::tags::{TagInput, TagUpdate};
use kluis_core::crm::{CustomFieldId, ObjectType, PipelineId, TagId};
use serde::Deserialize;

use super::super::i18n::Text;
use super::super::{Nav, Notice, non_empty, render};
use super::{DoneQuery, SText, Who, done, poster, viewer};
use crate::AppState;
use crate::auth::Ctx;

const KINDS: [&str; 12] = [
    "text",
    "long_text",
    "number",
    "currency",
    "date",
    "datetime",
    "boolean",
    "single_select",
    "multi_select",
    "email",
    "phone",
    "url",
];

struct Choice {
    key: &'static str,
    name: &'static str,
}

fn object_choices(x: &SText, types: &[ObjectType]) -> Vec<Choice> {
    types
        .iter()
        .map(|t| Choice {
            key: t.as_str(),
            name: x.object_type(t.as_str()),
        })
        .collect()
}

fn kind_name(k: CustomKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn bad(field: &str, message: &str) -> kluis_core::Error {
    kluis_core::Error::validation(field, "invalid_value", message.to_owned())
}

fn uuid_of(v: &str) -> kluis_core::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(v.trim()).map_err(|_| kluis_core::Error::not_found())
}

/// Comma separated options: trimmed, empty ones dropped.
fn options_of(v: &str) -> Vec<String> {
    v.split(',').filter_map(non_empty).collect()
}

// ---------------------------------------------------------------------------------------
// Custom fields

struct FieldLine {
    id: String,
    type_name: &'static str,
    key: String,
    label: String,
    kind: String,
    required: bool,
    unique: bool,
    options: String,
    deleted: bool,
}

#[derive(Template)]
#[template(path = "settings_fields.html")]
struct FieldsPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    fields: Vec<FieldLine>,
    types: Vec<Choice>,
    kinds: [&'static str; 12],
}

async fn show_fields(
    s: &AppState,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let (status, notice, fields) = match s.kluis.list_custom_fields(&w.user.actor, None).await {
        Ok(list) => {
            let lines = list
                .into_iter()
                .map(|f| FieldLine {
                    id: f.id.0.to_string(),
                    type_name: w.x.object_type(f.object_type.as_str()),
                    kind: kind_name(f.kind),
                    required: f.required,
                    unique: f.unique,
                    options: f.options.join(", "),
                    deleted: f.deleted_at.is_some(),
                    key: f.key,
                    label: f.label,
                })
                .collect();
            (status, notice, lines)
        }
        Err(e) => {
            let (st, n) = w.error(e);
            (st, n, Vec::new())
        }
    };
    render(
        status,
        &FieldsPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/fields"),
            notice,
            csrf: w.csrf(),
            section: "fields",
            fields,
            types: object_choices(w.x, &ObjectType::ALL),
            kinds: KINDS,
        },
    )
}

pub async fn fields_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show_fields(&s, &w, StatusCode::OK, notice).await
}

async fn after_fields(s: &AppState, w: &Who, r: kluis_core::Result<()>, code: &str) -> Response {
    match r {
        Ok(()) => done("/settings/fields", code),
        Err(e) => {
            let (st, n) = w.error(e);
            show_fields(s, w, st, n).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FieldCreateForm {
    csrf: String,
    object_type: String,
    key: String,
    label: String,
    kind: String,
    required: Option<String>,
    unique: Option<String>,
    #[serde(default)]
    options: String,
    #[serde(default)]
    currency: String,
}

pub async fn field_create(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<FieldCreateForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let object_type = ObjectType::parse(&f.object_type)
            .ok_or_else(|| bad("object_type", "unknown object type"))?;
        let kind: CustomKind = serde_json::from_value(serde_json::Value::String(f.kind.clone()))
            .map_err(|_| bad("kind", "unknown kind"))?;
        let input = CustomFieldInput {
            object_type,
            key: f.key.trim().to_owned(),
            label: f.label.trim().to_owned(),
            kind,
            required: f.required.is_some(),
            unique: f.unique.is_some(),
            options: options_of(&f.options),
            currency: non_empty(&f.currency),
            position: None,
        };
        s.kluis
            .create_custom_field(&w.user.actor, &c, input)
            .await
            .map(drop)
    }
    .await;
    after_fields(&s, &w, r, "created").await
}

#[derive(Debug, Deserialize)]
pub struct FieldUpdateForm {
    csrf: String,
    field: String,
    label: String,
    required: Option<String>,
    unique: Option<String>,
    #[serde(default)]
    options: String,
}

pub async fn field_update(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<FieldUpdateForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let id = CustomFieldId(uuid_of(&f.field)?);
        let options = options_of(&f.options);
        let up = CustomFieldUpdate {
            label: Some(f.label.trim().to_owned()),
            required: Some(f.required.is_some()),
            unique: Some(f.unique.is_some()),
            options: (!options.is_empty()).then_some(options),
            position: None,
        };
        s.kluis
            .update_custom_field(&w.user.actor, &c, id, up)
            .await
            .map(drop)
    }
    .await;
    after_fields(&s, &w, r, "saved").await
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    csrf: String,
    id: String,
    /// `delete` (to the trash) or `restore`.
    action: String,
}

pub async fn field_delete(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<DeleteForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let deleted = f.action != "restore";
    let r = async {
        let id = CustomFieldId(uuid_of(&f.id)?);
        s.kluis
            .set_custom_field_deleted(&w.user.actor, &c, id, deleted)
            .await
            .map(drop)
    }
    .await;
    after_fields(&s, &w, r, if deleted { "deleted" } else { "restored" }).await
}

// ---------------------------------------------------------------------------------------
// Pipelines and stages

struct PipelineLine {
    id: String,
    name: String,
    type_name: &'static str,
    /// One `name = outcome` per line, as the form edits them.
    stages_text: String,
    stage_names: Vec<String>,
}

#[derive(Template)]
#[template(path = "settings_pipelines.html")]
struct PipelinesPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    pipelines: Vec<PipelineLine>,
    types: Vec<Choice>,
}

fn stages_text(p: &Pipeline) -> String {
    p.stages
        .iter()
        .map(|s| {
            if s.outcome == "open" {
                s.name.clone()
            } else {
                format!("{} = {}", s.name, s.outcome)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One stage per line, `name` or `name = outcome`; a stage named like an existing one keeps
/// its id (so deals stay in it).
fn parse_stages(text: &str, existing: Option<&Pipeline>) -> Vec<StageInput> {
    text.lines()
        .filter_map(non_empty)
        .map(|line| {
            let (name, outcome) = match line.rsplit_once('=') {
                Some((n, o)) if !o.trim().is_empty() => {
                    (n.trim().to_owned(), Some(o.trim().to_ascii_lowercase()))
                }
                _ => (line.clone(), None),
            };
            let id = existing
                .and_then(|p| p.stages.iter().find(|s| s.name == name))
                .map(|s| s.id);
            StageInput { id, name, outcome }
        })
        .collect()
}

async fn all_pipelines(s: &AppState, w: &Who) -> kluis_core::Result<Vec<Pipeline>> {
    let mut all = s
        .kluis
        .list_pipelines(&w.user.actor, ObjectType::Deal)
        .await?;
    all.extend(
        s.kluis
            .list_pipelines(&w.user.actor, ObjectType::Ticket)
            .await?,
    );
    Ok(all)
}

async fn show_pipelines(
    s: &AppState,
    w: &Who,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let (status, notice, pipelines) = match all_pipelines(s, w).await {
        Ok(list) => {
            let lines = list
                .iter()
                .map(|p| PipelineLine {
                    id: p.id.0.to_string(),
                    name: p.name.clone(),
                    type_name: w.x.object_type(p.object_type.as_str()),
                    stages_text: stages_text(p),
                    stage_names: p.stages.iter().map(|s| s.name.clone()).collect(),
                })
                .collect();
            (status, notice, lines)
        }
        Err(e) => {
            let (st, n) = w.error(e);
            (st, n, Vec::new())
        }
    };
    render(
        status,
        &PipelinesPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/pipelines"),
            notice,
            csrf: w.csrf(),
            section: "pipelines",
            pipelines,
            types: object_choices(w.x, &[ObjectType::Deal, ObjectType::Ticket]),
        },
    )
}

pub async fn pipelines_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show_pipelines(&s, &w, StatusCode::OK, notice).await
}

async fn after_pipelines(s: &AppState, w: &Who, r: kluis_core::Result<()>, code: &str) -> Response {
    match r {
        Ok(()) => done("/settings/pipelines", code),
        Err(e) => {
            let (st, n) = w.error(e);
            show_pipelines(s, w, st, n).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PipelineForm {
    csrf: String,
    /// Absent when creating.
    pipeline: Option<String>,
    object_type: Option<String>,
    name: String,
    #[serde(default)]
    stages: String,
}

pub async fn pipeline_create(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<PipelineForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let object_type = match f.object_type.as_deref() {
            Some(t) => Some(
                ObjectType::parse(t).ok_or_else(|| bad("object_type", "unknown object type"))?,
            ),
            None => None,
        };
        let input = PipelineInput {
            object_type,
            name: f.name.trim().to_owned(),
            position: None,
            stages: parse_stages(&f.stages, None),
        };
        create_pipeline(&s, &w, &c, input).await
    }
    .await;
    after_pipelines(&s, &w, r, "created").await
}

async fn create_pipeline(
    s: &AppState,
    w: &Who,
    c: &RequestContext,
    input: PipelineInput,
) -> kluis_core::Result<()> {
    s.kluis
        .create_pipeline(&w.user.actor, c, input)
        .await
        .map(drop)
}

pub async fn pipeline_update(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<PipelineForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let id = PipelineId(uuid_of(f.pipeline.as_deref().unwrap_or_default())?);
        let current = all_pipelines(&s, &w).await?;
        let existing = current
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(kluis_core::Error::not_found)?;
        let input = PipelineInput {
            object_type: None,
            name: f.name.trim().to_owned(),
            position: None,
            stages: parse_stages(&f.stages, Some(existing)),
        };
        s.kluis
            .update_pipeline(&w.user.actor, &c, id, input)
            .await
            .map(drop)
    }
    .await;
    after_pipelines(&s, &w, r, "saved").await
}

#[derive(Debug, Deserialize)]
pub struct IdForm {
    csrf: String,
    id: String,
}

pub async fn pipeline_delete(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<IdForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let id = PipelineId(uuid_of(&f.id)?);
        s.kluis.delete_pipeline(&w.user.actor, &c, id).await
    }
    .await;
    after_pipelines(&s, &w, r, "deleted").await
}

// ---------------------------------------------------------------------------------------
// Tags

struct TagLine {
    id: String,
    name: String,
    color: String,
    deleted: bool,
}

#[derive(Template)]
#[template(path = "settings_tags.html")]
struct TagsPage {
    t: &'static Text,
    x: &'static SText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    section: &'static str,
    tags: Vec<TagLine>,
}

async fn show_tags(s: &AppState, w: &Who, status: StatusCode, notice: Option<Notice>) -> Response {
    let (status, notice, tags) = match s.kluis.list_tags(&w.user.actor).await {
        Ok(list) => {
            let lines = list
                .into_iter()
                .map(|t| TagLine {
                    id: t.id.0.to_string(),
                    deleted: t.deleted_at.is_some(),
                    name: t.name,
                    color: t.color,
                })
                .collect();
            (status, notice, lines)
        }
        Err(e) => {
            let (st, n) = w.error(e);
            (st, n, Vec::new())
        }
    };
    render(
        status,
        &TagsPage {
            t: w.t,
            x: w.x,
            nav: w.nav("/settings/tags"),
            notice,
            csrf: w.csrf(),
            section: "tags",
            tags,
        },
    )
}

pub async fn tags_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match viewer(&s, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = w.done(q.done.as_deref());
    show_tags(&s, &w, StatusCode::OK, notice).await
}

async fn after_tags(s: &AppState, w: &Who, r: kluis_core::Result<()>, code: &str) -> Response {
    match r {
        Ok(()) => done("/settings/tags", code),
        Err(e) => {
            let (st, n) = w.error(e);
            show_tags(s, w, st, n).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TagForm {
    csrf: String,
    /// Absent when creating.
    tag: Option<String>,
    name: String,
    #[serde(default)]
    color: String,
}

pub async fn tag_create(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<TagForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let input = TagInput {
        name: f.name.trim().to_owned(),
        color: non_empty(&f.color),
    };
    let r = s.kluis.create_tag(&w.user.actor, &c, input).await.map(drop);
    after_tags(&s, &w, r, "created").await
}

pub async fn tag_update(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<TagForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let r = async {
        let id = TagId(uuid_of(f.tag.as_deref().unwrap_or_default())?);
        let up = TagUpdate {
            name: Some(f.name.trim().to_owned()),
            color: non_empty(&f.color),
        };
        s.kluis
            .update_tag(&w.user.actor, &c, id, up)
            .await
            .map(drop)
    }
    .await;
    after_tags(&s, &w, r, "saved").await
}

pub async fn tag_delete(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<DeleteForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let deleted = f.action != "restore";
    let r = async {
        let id = TagId(uuid_of(&f.id)?);
        s.kluis
            .set_tag_deleted(&w.user.actor, &c, id, deleted)
            .await
            .map(drop)
    }
    .await;
    after_tags(&s, &w, r, if deleted { "deleted" } else { "restored" }).await
}
