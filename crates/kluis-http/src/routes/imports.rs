//! CSV import: `POST /api/v1/imports` with the file as the body, progress and reports under
//! `GET /api/v1/imports`.
//!
//! The upload is spooled to an anonymous temporary file, encrypted under a key that exists
//! only in memory (`kluis_crypto::spool`), before the import starts: a slow client then never
//! holds a database transaction open, and the file on disk is unreadable to anyone else.

use std::collections::BTreeMap;
use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kluis_core::Page;
use kluis_core::crm::ObjectType;
use kluis_core::crm::import::{
    CsvEncoding, ImportMode, ImportOptions, ImportReport, ImportStatus, OnDuplicate,
};
use kluis_crypto::spool::{SpoolReader, SpoolWriter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiError, ApiQuery, ApiResult, ErrorBody, ErrorDetail, IdPath};

/// Options of an import, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `contact` or `company`.
    #[param(value_type = String)]
    pub object_type: ObjectType,
    /// `all_or_nothing` (default) or `continue_on_error`.
    #[param(value_type = Option<String>)]
    pub mode: Option<ImportMode>,
    /// `error` (default), `skip` or `update`: rows whose email (contacts) or domain
    /// (companies) already exists.
    #[param(value_type = Option<String>)]
    pub on_duplicate: Option<OnDuplicate>,
    /// Check everything, write nothing.
    pub dry_run: Option<bool>,
    /// `,`, `;`, `tab` or `auto` (default: detected from the header row).
    pub delimiter: Option<String>,
    /// `utf-8` (default; a byte-order mark is fine) or `windows-1252`.
    #[param(value_type = Option<String>)]
    pub encoding: Option<CsvEncoding>,
    /// JSON object: column header -> field (`email`, `custom.<key>`, `owner_email`,
    /// `company_domain`, `tags`) or `""` to ignore. Default: matched by name.
    pub mapping: Option<String>,
}

/// A refused import: the error and the full report (row errors).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportRejected {
    pub error: ErrorDetail,
    pub report: ImportReport,
}

/// Import contacts or companies from a CSV file (the request body, `text/csv`): UTF-8 with or
/// without BOM or Windows-1252, `,` or `;`, column mapping, dry run, duplicates skipped or
/// updated by email/domain, all-or-nothing or continue-on-error. Privileged (`crm:import`) and
/// audited, every record it writes too. An all-or-nothing import with row errors writes nothing
/// and answers 422 `import_rejected` with the row errors (row, column, code).
#[utoipa::path(post, path = "/api/v1/imports", tag = "import", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ImportRejected)))]
pub async fn create(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> ApiResult<Response> {
    let mapping = match q.mapping.as_deref() {
        None => None,
        Some(m) => Some(
            serde_json::from_str::<BTreeMap<String, String>>(m).map_err(|_| {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_mapping",
                    "mapping must be a JSON object of column header -> field",
                );
                e.field = Some("mapping".into());
                e
            })?,
        ),
    };
    let opts = ImportOptions {
        object_type: q.object_type,
        mode: q.mode.unwrap_or_default(),
        on_duplicate: q.on_duplicate.unwrap_or_default(),
        dry_run: q.dry_run.unwrap_or(false),
        delimiter: q.delimiter,
        encoding: q.encoding.unwrap_or_default(),
        mapping,
    };
    // Refuse callers without the permission before taking their upload.
    s.kluis.may_import(&a)?;
    let file = spool(body, s.import_max_bytes).await?;
    let report = s.kluis.import_records(&a, &c, opts, Box::new(file)).await?;
    Ok(match report.status {
        ImportStatus::Committed | ImportStatus::DryRun | ImportStatus::Running => {
            Json(report).into_response()
        }
        ImportStatus::RolledBack => rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_rejected",
            format!(
                "{} of {} rows have errors; nothing was imported",
                report.failed, report.rows
            ),
            report,
        ),
        ImportStatus::Failed => {
            let code = report.fatal.as_ref().map(|f| f.code.as_str()).unwrap_or("");
            let status = match code {
                "row_too_large" | "invalid_csv" | "invalid_encoding" => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = report
                .fatal
                .as_ref()
                .map(|f| format!("row {}: {}", f.row, f.message))
                .unwrap_or_default();
            rejected(status, "import_failed", message, report)
        }
    })
}

fn rejected(status: StatusCode, code: &str, message: String, report: ImportReport) -> Response {
    let body = ImportRejected {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            field: None,
        },
        report,
    };
    (status, Json(body)).into_response()
}

/// Writes the request body to an encrypted anonymous temporary file, at most `limit` bytes.
async fn spool(body: Body, limit: u64) -> ApiResult<SpoolReader<std::fs::File>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut w = SpoolWriter::new(tempfile::tempfile()?)?;
        while let Some(chunk) = rx.blocking_recv() {
            w.write_all(&chunk)?;
        }
        w.finish()
    });
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "upload_failed",
                "the upload was interrupted",
            )
        })?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the file is larger than {limit} bytes"),
            ));
        }
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let spooled = writer
        .await
        .map_err(|_| ApiError::from(kluis_core::Error::internal("spool writer")))?;
    spooled.map_err(|e| {
        tracing::error!(error = %e, "spooling an upload failed");
        ApiError::from(kluis_core::Error::internal("spool"))
    })
}

/// Imports of your organisation running on this server, or finished here in the last 24 hours,
/// with their progress (rows read, created, updated, skipped, failed).
#[utoipa::path(get, path = "/api/v1/imports", tag = "import",
    responses((status = 200, body = Page<ImportReport>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Page<ImportReport>>> {
    Ok(Json(Page::all(s.kluis.list_imports(&a)?)))
}

/// One import's progress or report.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "import",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ImportReport), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<Json<ImportReport>> {
    Ok(Json(s.kluis.get_import(&a, id)?))
}
