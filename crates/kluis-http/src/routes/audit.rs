use axum::Json;
use axum::extract::State;
use kluis_core::Page;
use kluis_core::audit::{AuditEvent, AuditQuery, CheckpointList};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiQuery, ApiResult, ErrorBody};

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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
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
    use axum::http::header;
    use axum::response::IntoResponse;
    let format = q.format.clone().unwrap_or_else(|| "jsonl".into());
    let csv = match format.as_str() {
        "jsonl" => false,
        "csv" => true,
        _ => {
            return Err(crate::error::ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_format",
                "format must be `jsonl` or `csv`",
            ));
        }
    };
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
    let export = s.kluis.audit_export(&a, &c, &query, &format).await?;
    let kluis = s.kluis.clone();
    let header_row = csv.then(|| {
        csv_row(&[
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
        ])
    });
    let stream = futures_util::stream::unfold(
        (kluis, export, header_row),
        move |(kluis, mut export, header)| async move {
            if let Some(h) = header {
                return Some((Ok::<_, std::io::Error>(h), (kluis, export, None)));
            }
            match kluis.audit_export_next(&mut export).await {
                Ok(Some(items)) => {
                    let mut chunk = Vec::new();
                    for e in &items {
                        if csv {
                            chunk.extend(csv_event(e));
                        } else if let Ok(line) = serde_json::to_vec(e) {
                            chunk.extend(line);
                            chunk.push(b'\n');
                        }
                    }
                    Some((Ok(chunk), (kluis, export, None)))
                }
                Ok(None) => None,
                Err(e) => {
                    // Headers are already sent: end the stream with an error so the client sees a broken download.
                    tracing::error!(error = %e, "audit export failed mid-stream");
                    Some((
                        Err(std::io::Error::other("export failed")),
                        (kluis, export, None),
                    ))
                }
            }
        },
    );
    let (ctype, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit.{ext}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Spreadsheet programs execute cells starting with these; prefix them with `'` so an exported
/// value like `=HYPERLINK(...)` stays text.
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn csv_row(cells: &[&str]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(cells.iter().map(|c| neutralise(c).into_owned()));
    w.into_inner().unwrap_or_default()
}

fn csv_event(e: &AuditEvent) -> Vec<u8> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let details = serde_json::to_string(&e.details).unwrap_or_default();
    csv_row(&[
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
