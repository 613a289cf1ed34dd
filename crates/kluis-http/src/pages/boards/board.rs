//! `/deals/board` and `/tickets/board`: one column per stage of the chosen pipeline. A card
//! moves with a small form (stage list + button, or previous/next buttons) that works without
//! JavaScript; `/assets/board.js` adds drag and drop by submitting that same form.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kluis_core::crm::pipelines::Pipeline;
use kluis_core::crm::{IfMatch, ObjectType, PipelineId, RecordInput, RecordQuery, StageId};
use kluis_core::{Permission, RecordId, RequestContext};
use serde::Deserialize;

use super::super::errors::{forbidden_page, service_error_page};
use super::super::i18n::{Lang, Text};
use super::super::{Nav, Notice, PageUser, form_page_user, page_user, render, see_other};
use super::text::{self, BText};
use super::{all_records, date, money};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

pub struct PipelineOpt {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

pub struct StageRef {
    pub id: String,
    pub name: String,
}

pub struct Card {
    pub id: String,
    pub title: String,
    pub href: String,
    pub amount: Option<String>,
    pub close: Option<String>,
    pub priority: Option<&'static str>,
    pub priority_key: String,
    pub rev: i64,
    pub stage_id: String,
    pub prev: Option<StageRef>,
    pub next: Option<StageRef>,
}

pub struct Column {
    pub id: String,
    pub name: String,
    pub outcome: String,
    pub outcome_label: &'static str,
    pub count: usize,
    pub total: String,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "boards_board.html")]
struct BoardPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    title: &'static str,
    base: &'static str,
    deals: bool,
    pipelines: Vec<PipelineOpt>,
    pipeline_id: String,
    stages: Vec<StageRef>,
    columns: Vec<Column>,
    can_write: bool,
    truncated: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct BoardQuery {
    pipeline: Option<String>,
    done: Option<String>,
}

pub async fn deals(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<BoardQuery>,
) -> Response {
    view(&s, &c, &headers, ObjectType::Deal, q).await
}

pub async fn tickets(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<BoardQuery>,
) -> Response {
    view(&s, &c, &headers, ObjectType::Ticket, q).await
}

async fn view(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    t: ObjectType,
    q: BoardQuery,
) -> Response {
    let user = match page_user(s, headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let b = text::of(Lang::of(headers));
    let notice = (q.done.as_deref() == Some("moved"))
        .then(|| Notice::ok(b.moved))
        .flatten();
    board(
        s,
        c,
        headers,
        &user,
        t,
        q.pipeline.as_deref(),
        StatusCode::OK,
        notice,
    )
    .await
}

fn base_path(t: ObjectType) -> &'static str {
    if t == ObjectType::Deal {
        "/deals/board"
    } else {
        "/tickets/board"
    }
}

fn field(r: &kluis_core::crm::Record, name: &str) -> Option<String> {
    r.fields
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[allow(clippy::too_many_arguments)]
async fn board(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    pipeline: Option<&str>,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let lang = Lang::of(headers);
    let (tx, b) = (lang.text(), text::of(lang));
    if !user.actor.can(Permission::CrmRead) {
        return forbidden_page(headers, Some(user));
    }
    let pipelines = match s.kluis.list_pipelines(&user.actor, t).await {
        Ok(p) => p,
        Err(e) => return service_error_page(headers, user, e.into()),
    };
    let chosen: Option<&Pipeline> = pipeline
        .and_then(|p| pipelines.iter().find(|x| x.id.to_string() == p))
        .or(pipelines.first());
    let mut columns = Vec::new();
    let mut stages = Vec::new();
    let mut truncated = false;
    if let Some(p) = chosen {
        let q = RecordQuery {
            pipeline_id: Some(p.id),
            ..RecordQuery::default()
        };
        let (records, more) = match all_records(s, &user.actor, c, t, q).await {
            Ok(r) => r,
            Err(e) => return service_error_page(headers, user, e.into()),
        };
        truncated = more;
        stages = p
            .stages
            .iter()
            .map(|st| StageRef {
                id: st.id.to_string(),
                name: st.name.clone(),
            })
            .collect();
        for (i, st) in p.stages.iter().enumerate() {
            let neighbour = |j: Option<usize>| {
                j.and_then(|j| p.stages.get(j)).map(|n| StageRef {
                    id: n.id.to_string(),
                    name: n.name.clone(),
                })
            };
            let mut totals: BTreeMap<String, i64> = BTreeMap::new();
            let mut cards = Vec::new();
            for r in records
                .iter()
                .filter(|r| r.deal.as_ref().and_then(|d| d.stage_id) == Some(st.id))
            {
                let d = r.deal.clone().unwrap_or_default();
                let currency = d.currency.clone().unwrap_or_else(|| "EUR".to_owned());
                if let Some(a) = d.amount_minor {
                    *totals.entry(currency.clone()).or_default() += a;
                }
                let (title, href) = if t == ObjectType::Deal {
                    (field(r, "name"), format!("/deals/{}", r.id))
                } else {
                    (field(r, "subject"), format!("/tickets/{}", r.id))
                };
                cards.push(Card {
                    id: r.id.to_string(),
                    title: title.unwrap_or_else(|| b.untitled.to_owned()),
                    href,
                    amount: d.amount_minor.map(|a| money(lang, a, &currency)),
                    close: d.close_date.as_deref().map(|v| date(lang, v)),
                    priority: (t == ObjectType::Ticket)
                        .then(|| b.priority_name(d.priority.as_deref().unwrap_or("normal"))),
                    priority_key: d.priority.clone().unwrap_or_else(|| "normal".to_owned()),
                    rev: r.revision,
                    stage_id: st.id.to_string(),
                    prev: neighbour(i.checked_sub(1)),
                    next: neighbour(Some(i + 1)),
                });
            }
            let total = if t == ObjectType::Deal {
                if totals.is_empty() {
                    money(lang, 0, "EUR")
                } else {
                    totals
                        .iter()
                        .map(|(cur, v)| money(lang, *v, cur))
                        .collect::<Vec<_>>()
                        .join(" + ")
                }
            } else {
                String::new()
            };
            columns.push(Column {
                id: st.id.to_string(),
                name: st.name.clone(),
                outcome: st.outcome.clone(),
                outcome_label: b.outcome(&st.outcome),
                count: cards.len(),
                total,
                cards,
            });
        }
    }
    let base = base_path(t);
    render(
        status,
        &BoardPage {
            t: tx,
            b,
            nav: user.nav(base),
            notice,
            csrf: user.csrf.clone(),
            title: if t == ObjectType::Deal {
                b.deals_board
            } else {
                b.tickets_board
            },
            base,
            deals: t == ObjectType::Deal,
            pipeline_id: chosen.map(|p| p.id.to_string()).unwrap_or_default(),
            pipelines: pipelines
                .iter()
                .map(|p| PipelineOpt {
                    id: p.id.to_string(),
                    name: p.name.clone(),
                    selected: chosen.is_some_and(|c| c.id == p.id),
                })
                .collect(),
            stages,
            columns,
            can_write: user.actor.can(Permission::CrmWrite),
            truncated,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    csrf: String,
    id: String,
    rev: i64,
    #[serde(default)]
    pipeline: String,
    /// The stage list's choice.
    #[serde(default)]
    stage: String,
    /// A previous/next button's stage (wins over the list).
    #[serde(default)]
    to: String,
}

pub async fn move_deal(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<MoveForm>,
) -> Response {
    move_card(&s, &c, &headers, ObjectType::Deal, f).await
}

pub async fn move_ticket(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<MoveForm>,
) -> Response {
    move_card(&s, &c, &headers, ObjectType::Ticket, f).await
}

fn bad_form() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_form",
        "the form is incomplete",
    )
}

async fn move_card(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    t: ObjectType,
    f: MoveForm,
) -> Response {
    let user = match form_page_user(s, headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let stage = if f.to.is_empty() { &f.stage } else { &f.to };
    let (Ok(id), Ok(stage)) = (
        uuid::Uuid::parse_str(&f.id),
        uuid::Uuid::parse_str(stage.trim()),
    ) else {
        return bad_form().into_response();
    };
    let pipeline = uuid::Uuid::parse_str(&f.pipeline).ok().map(PipelineId);
    // The stage alone: a board moves a card within its pipeline.
    let input = RecordInput {
        stage_id: Some(StageId(stage)),
        ..RecordInput::default()
    };
    let result = s
        .kluis
        .update_record(
            &user.actor,
            c,
            t,
            RecordId(id),
            &IfMatch::Revisions(vec![f.rev]),
            input,
        )
        .await;
    let base = base_path(t);
    let pipeline_q = pipeline.map(|p| p.0.to_string()).unwrap_or_default();
    match result {
        Ok(_) => see_other(
            &format!("{base}?pipeline={pipeline_q}&done=moved#card-{id}"),
            HeaderMap::new(),
        ),
        Err(e) => {
            let e: ApiError = e.into();
            if e.status == StatusCode::FORBIDDEN {
                return forbidden_page(headers, Some(&user));
            }
            let b = text::of(Lang::of(headers));
            let notice = if e.status == StatusCode::PRECONDITION_FAILED {
                Some(Notice {
                    kind: "error",
                    text: b.stale.to_owned(),
                })
            } else {
                Notice::error(Lang::of(headers).text(), &e)
            };
            board(
                s,
                c,
                headers,
                &user,
                t,
                Some(pipeline_q.as_str()),
                e.status,
                notice,
            )
            .await
        }
    }
}
