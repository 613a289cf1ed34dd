use axum::Json;
use axum::extract::State;
use kluis_core::Page;
use kluis_core::audit::{AuditEvent, AuditQuery, CheckpointList};
use kluis_core::checkpoints::LatestCheckpoint;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiQuery, ApiResult, ErrorBody};
use crate::export::{CsvStyle, Format, csv_row, download};

/// Query the tenant's audit trail: time range, actor, IP, action, object; cursor pagination.
/// Reading it is itself recorded.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 403, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    Ok(Json(s.kluis.audit_events(&a, &c, &q).await?))
}

/// Signed checkpoints (C2SP signed notes) of the tenant's log and the key that verifies them,
/// for verification without trusting the server.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = CheckpointList), (status = 403, body = ErrorBody)))]
pub async fn checkpoints(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<CheckpointList>> {
    Ok(Json(s.kluis.audit_checkpoints(&a).await?))
}

/// The latest signed checkpoint of the tenant's log with every witness cosignature gathered
/// for it (C2SP signed note), so the tenant's auditors can keep their own copies and later run
/// `kluis audit verify --witness FILE` (or any tlog tooling) against them.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = LatestCheckpoint), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn checkpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<LatestCheckpoint>> {
    Ok(Json(s.kluis.latest_checkpoint(&a).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    pub format: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub ip: Option<String>,
}

/// Export the audit trail as JSON Lines or CSV, streamed page by page. The export itself is
/// recorded in the audit trail.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "JSON Lines or CSV"), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<axum::response::Response> {
    let format = Format::parse(q.format.as_deref())?;
    let query = AuditQuery {
        from: q.from,
        to: q.to,
        actor: q.actor,
        action: q.action,
        object_id: q.object_id,
        ip: q.ip,
        cursor: None,
        limit: None,
    };
    let export = s
        .kluis
        .audit_export(&a, &c, &query, format.as_str())
        .await?;
    let header = csv_row(&[
        "seq",
        "at",
        "actor",
        "action",
        "outcome",
        "object_type",
        "object_id",
        "ip",
        "user_agent",
        "details",
        "leaf_hash",
    ]);
    Ok(download(
        "audit",
        format,
        header,
        (s.kluis.clone(), export),
        |(kluis, mut export)| async move {
            let r = kluis.audit_export_next(&mut export).await;
            (r, (kluis, export))
        },
        (csv_event, CsvStyle::PLAIN),
    ))
}

fn csv_event(e: &AuditEvent, style: CsvStyle) -> Vec<u8> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let details = serde_json::to_string(&e.details).unwrap_or_default();
    style.row(&[
        &e.seq.to_string(),
        &e.at,
        &e.actor,
        &e.action,
        &e.outcome,
        e.object_type.as_deref().unwrap_or(""),
        e.object_id.as_deref().unwrap_or(""),
        &s(&e.details["ip"]),
        &s(&e.details["user_agent"]),
        &details,
        &e.leaf_hash,
    ])
}
