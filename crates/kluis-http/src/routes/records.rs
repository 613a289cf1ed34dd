//! CRM record routes: the same handlers for every object type, stamped out per type by
//! `record_routes!` so that each gets its own paths and OpenAPI operations.

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use kluis_core::RecordId;
use kluis_core::crm::{IfMatch, ObjectType, Record, RecordQuery};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::export::CsvStyle;

/// `If-Match` as the core wants it. Strong comparison: a weak ETag never matches.
pub struct IfMatchHeader(pub IfMatch);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let values: Vec<&HeaderValue> = parts.headers.get_all(header::IF_MATCH).iter().collect();
        if values.is_empty() {
            return Ok(IfMatchHeader(IfMatch::Missing));
        }
        let bad = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_if_match",
                "If-Match must be * or a list of ETags as returned in the ETag header",
            )
        };
        let mut revisions = Vec::new();
        for v in values {
            for tag in v.to_str().map_err(|_| bad())?.split(',') {
                let tag = tag.trim();
                if tag == "*" {
                    return Ok(IfMatchHeader(IfMatch::Any));
                }
                if tag.starts_with("W/") {
                    // Weak tags never match for If-Match (RFC 9110 13.1.1).
                    continue;
                }
                let rev = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or_else(bad)?;
                revisions.push(rev);
            }
        }
        Ok(IfMatchHeader(IfMatch::Revisions(revisions)))
    }
}

/// The `Idempotency-Key` header, if sent.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.headers.get("idempotency-key") {
            None => Ok(IdempotencyKey(None)),
            Some(v) => v
                .to_str()
                .map(|s| IdempotencyKey(Some(s.to_owned())))
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_idempotency_key",
                        "Idempotency-Key must be visible ASCII",
                    )
                }),
        }
    }
}

pub fn etag_headers(r: &Record) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", r.revision)) {
        h.insert(header::ETAG, v);
    }
    h
}

/// List filters: exact-match lookups on sealed fields, owner, company, time ranges.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordListQuery {
    /// Lists only.
    pub cursor: Option<String>,
    /// Lists only: 1..=200 (default 50).
    pub limit: Option<u32>,
    /// Exports only: `jsonl` (default) or `csv`.
    pub format: Option<String>,
    /// CSV exports only: `,` (default) or `;` (what Dutch Excel splits on).
    pub delimiter: Option<String>,
    /// CSV exports only: start with a UTF-8 byte-order mark (Excel then reads UTF-8).
    pub bom: Option<bool>,
    /// CSV exports only: `en` (default; field names) or `nl` (Dutch column names that the
    /// import recognises, amounts with a decimal comma).
    pub headers: Option<String>,
    pub owner_id: Option<uuid::Uuid>,
    /// Contacts of this company.
    pub company_id: Option<uuid::Uuid>,
    /// Exact match, case-insensitive.
    pub email: Option<String>,
    /// Exact match in any notation (+31 6 ..., 06-...).
    pub phone: Option<String>,
    /// Companies: exact domain.
    pub domain: Option<String>,
    /// RFC 3339; inclusive.
    pub created_from: Option<String>,
    /// RFC 3339; exclusive.
    pub created_to: Option<String>,
    pub updated_from: Option<String>,
    pub updated_to: Option<String>,
    /// `created` (oldest first, default) or `-created` (newest first).
    pub sort: Option<String>,
    /// Deals in this pipeline.
    pub pipeline_id: Option<uuid::Uuid>,
    /// Deals in this stage.
    pub stage_id: Option<uuid::Uuid>,
    /// Deals and tickets by outcome: `open`, `won`, `lost` (deals), `closed` (tickets).
    pub outcome: Option<String>,
    /// Tickets of this priority.
    pub priority: Option<String>,
    /// Deals closing on or after this date (YYYY-MM-DD).
    pub close_from: Option<String>,
    /// Deals closing on or before this date (YYYY-MM-DD).
    pub close_to: Option<String>,
    /// Deals with this contact.
    pub contact_id: Option<uuid::Uuid>,
    /// Notes and tasks about this record.
    pub related_id: Option<uuid::Uuid>,
    /// Tasks: done (`true`) or open (`false`).
    pub done: Option<bool>,
    /// Tasks due on or after this date (YYYY-MM-DD).
    pub due_from: Option<String>,
    /// Tasks due on or before this date (YYYY-MM-DD).
    pub due_to: Option<String>,
    /// Records with this tag.
    pub tag_id: Option<uuid::Uuid>,
    /// Search: records whose names, email, phone or other one-line values contain every word
    /// (case- and accent-insensitive; contacts also by their company's name). Not with
    /// `email`, `phone` or `domain`.
    pub q: Option<String>,
}

fn time_ms(field: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    ApiError::from(kluis_core::Error::validation(
                        field,
                        "invalid_time",
                        "must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
                    ))
                })
        })
        .transpose()
}

fn unknown_param(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("`{name}` is not a parameter of this endpoint"),
    )
}

impl RecordListQuery {
    /// Filters of a list (no `format` or CSV style).
    pub fn list_query(&self) -> ApiResult<RecordQuery> {
        for (set, name) in [
            (self.format.is_some(), "format"),
            (self.delimiter.is_some(), "delimiter"),
            (self.bom.is_some(), "bom"),
            (self.headers.is_some(), "headers"),
        ] {
            if set {
                return Err(unknown_param(name));
            }
        }
        self.to_query()
    }

    /// How a CSV export is written (`delimiter`, `bom`, `headers`).
    pub fn csv_style(&self) -> ApiResult<crate::export::CsvStyle> {
        crate::export::CsvStyle::from_query(
            self.delimiter.as_deref(),
            self.bom,
            self.headers.as_deref(),
        )
    }

    /// Filters of an export (no paging: an export is the whole result).
    pub fn export_query(&self) -> ApiResult<RecordQuery> {
        for (set, name) in [
            (self.cursor.is_some(), "cursor"),
            (self.limit.is_some(), "limit"),
        ] {
            if set {
                return Err(unknown_param(name));
            }
        }
        self.to_query()
    }

    fn to_query(&self) -> ApiResult<RecordQuery> {
        let newest_first = match self.sort.as_deref() {
            None | Some("created") => false,
            Some("-created") => true,
            Some(_) => {
                return Err(kluis_core::Error::validation(
                    "sort",
                    "invalid_sort",
                    "sort must be `created` or `-created`",
                )
                .into());
            }
        };
        Ok(RecordQuery {
            owner_id: self.owner_id.map(kluis_core::UserId),
            company_id: self.company_id.map(RecordId),
            email: self.email.clone(),
            phone: self.phone.clone(),
            domain: self.domain.clone(),
            created_from: time_ms("created_from", &self.created_from)?,
            created_to: time_ms("created_to", &self.created_to)?,
            updated_from: time_ms("updated_from", &self.updated_from)?,
            updated_to: time_ms("updated_to", &self.updated_to)?,
            newest_first,
            pipeline_id: self.pipeline_id.map(kluis_core::crm::PipelineId),
            stage_id: self.stage_id.map(kluis_core::crm::StageId),
            outcome: self.outcome.clone(),
            priority: self.priority.clone(),
            close_from: self.close_from.clone(),
            close_to: self.close_to.clone(),
            contact_id: self.contact_id.map(RecordId),
            related_id: self.related_id.map(RecordId),
            done: self.done,
            due_from: self.due_from.clone(),
            due_to: self.due_to.clone(),
            tag_id: self.tag_id.map(kluis_core::crm::TagId),
            q: self.q.clone(),
        })
    }
}

/// `?object_type=` of the trash.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrashQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// `contact` or `company`; default all.
    pub object_type: Option<ObjectType>,
}

/// Export columns: metadata, every field of the type, then (deals) the deal columns. Dutch names
/// of fields are the ones the import maps back to the field (a round trip changes nothing);
/// metadata columns get names the import ignores.
pub fn record_csv_header(t: ObjectType, style: CsvStyle) -> Vec<u8> {
    let mut cols: Vec<&str> = vec![
        "id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "owner_id",
        "company_id",
    ];
    cols.extend(t.field_names());
    if t == ObjectType::Deal {
        cols.extend([
            "pipeline_id",
            "stage_id",
            "outcome",
            if style.dutch {
                "amount"
            } else {
                "amount_minor"
            },
            "currency",
            "close_date",
            "contact_ids",
        ]);
    }
    if t == ObjectType::Ticket {
        cols.extend([
            "pipeline_id",
            "stage_id",
            "outcome",
            "priority",
            "contact_ids",
        ]);
    }
    if matches!(t, ObjectType::Note | ObjectType::Task) {
        cols.push("related_ids");
    }
    if t == ObjectType::Task {
        cols.extend(["due_date", "done_at"]);
    }
    if !style.dutch {
        return style.row(&cols);
    }
    let names: Vec<String> = cols.iter().map(|c| dutch_column(c)).collect();
    style.row(&names)
}

/// The Dutch column name of an export column.
fn dutch_column(col: &str) -> String {
    let meta = match col {
        "id" => "Id",
        "created_at" => "Aangemaakt op",
        "updated_at" => "Gewijzigd op",
        "created_by" => "Aangemaakt door",
        "updated_by" => "Gewijzigd door",
        // Not "Eigenaar": the import reads that column as the owner's email address.
        "owner_id" => "Eigenaar-id",
        "company_id" => "Bedrijf-id",
        "pipeline_id" => "Pijplijn-id",
        "stage_id" => "Fase-id",
        "outcome" => "Uitkomst",
        "amount" => "Bedrag",
        "currency" => "Valuta",
        "close_date" => "Verwachte sluitdatum",
        "contact_ids" => "Contactpersoon-ids",
        "priority" => "Prioriteit",
        "related_ids" => "Gekoppeld aan",
        "due_date" => "Vervaldatum",
        "done_at" => "Afgerond op",
        field => return crate::pages::field_label(crate::pages::i18n::Lang::Nl, field),
    };
    meta.to_owned()
}

/// An amount in minor units as Dutch Excel reads a number: `1234,50` (no thousands separator,
/// which Excel would take for part of the number only in some cells).
fn decimal_comma(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{},{:02}", m / 100, m % 100)
}

pub fn record_csv(r: &Record, style: CsvStyle) -> Vec<u8> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut cells = vec![
        r.id.to_string(),
        r.created_at.clone(),
        r.updated_at.clone(),
        r.created_by.clone(),
        r.updated_by.clone(),
        opt(r.owner_id.map(|v| v.to_string())),
        opt(r.company_id.map(|v| v.to_string())),
    ];
    for f in r.object_type.field_names() {
        cells.push(opt(r
            .fields
            .get(f)
            .and_then(|v| v.as_str())
            .map(str::to_owned)));
    }
    if let Some(d) = &r.deal {
        cells.extend([
            opt(d.pipeline_id.map(|v| v.to_string())),
            opt(d.stage_id.map(|v| v.to_string())),
            opt(r.outcome.clone()),
        ]);
        if r.object_type == ObjectType::Ticket {
            cells.push(opt(d.priority.clone()));
        } else {
            let amount = if style.dutch {
                d.amount_minor.map(decimal_comma)
            } else {
                d.amount_minor.map(|v| v.to_string())
            };
            cells.extend([
                opt(amount),
                opt(d.currency.clone()),
                opt(d.close_date.clone()),
            ]);
        }
        cells.push(
            r.contact_ids
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if let Some(related) = &r.related_ids {
        cells.push(
            related
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if let Some(t) = &r.task {
        cells.extend([opt(t.due_date.clone()), opt(t.done_at.clone())]);
    }
    style.row(&cells)
}

macro_rules! record_routes {
    (
        $module:ident, $t:expr, $tag:literal, $what:literal,
        $collection:literal, $item:literal, $versions:literal, $restore:literal,
        $export:literal, $file:literal
    ) => {
        pub mod $module {
            use axum::Json;
            use axum::extract::State;
            use axum::http::{HeaderMap, StatusCode, header};
            use kluis_core::crm::{Idempotency, Record, RecordInput, RecordVersion};
            use kluis_core::{Page, RecordId};

            use super::{IdempotencyKey, IfMatchHeader, RecordListQuery, etag_headers};
            use crate::AppState;
            use crate::auth::{Authed, Ctx};
            use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

            #[doc = concat!("List ", $what, "s: filters, exact-match lookup by email/phone on sealed fields, cursor pagination.")]
            #[utoipa::path(get, path = $collection, tag = $tag, params(RecordListQuery),
                responses((status = 200, body = Page<Record>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
            pub async fn list(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                ApiQuery(q): ApiQuery<RecordListQuery>,
            ) -> ApiResult<Json<Page<Record>>> {
                let query = q.list_query()?;
                Ok(Json(
                    s.kluis
                        .list_records(&a, &c, $t, query, q.cursor.as_deref(), q.limit)
                        .await?,
                ))
            }

            #[doc = concat!("Export ", $what, "s matching the list filters as CSV or JSON Lines, streamed (privileged, audited). CSV cells that spreadsheets would execute are prefixed with '.")]
            #[utoipa::path(get, path = $export, tag = $tag, params(RecordListQuery),
                responses((status = 200, description = "CSV or JSON Lines"), (status = 403, body = ErrorBody)))]
            pub async fn export(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                ApiQuery(q): ApiQuery<RecordListQuery>,
            ) -> ApiResult<axum::response::Response> {
                let format = crate::export::Format::parse(q.format.as_deref())?;
                let style = q.csv_style()?;
                let query = q.export_query()?;
                let export = s
                    .kluis
                    .export_records(&a, &c, $t, query, format.as_str())
                    .await?;
                Ok(crate::export::download(
                    $file,
                    format,
                    super::record_csv_header($t, style),
                    (s.kluis.clone(), export),
                    |(kluis, mut export)| async move {
                        let r = kluis.export_records_next(&mut export).await;
                        (r, (kluis, export))
                    },
                    (super::record_csv, style),
                ))
            }

            #[doc = concat!("Create a ", $what, ". Send `Idempotency-Key` to make retries safe; a duplicate (same email/domain) is refused with 409.")]
            #[utoipa::path(post, path = $collection, tag = $tag, request_body = RecordInput,
                params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first result")),
                responses((status = 201, body = Record), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
            pub async fn create(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdempotencyKey(key): IdempotencyKey,
                ApiJson(input): ApiJson<RecordInput>,
            ) -> ApiResult<(StatusCode, HeaderMap, Json<Record>)> {
                let idem = key.map(|k| Idempotency::new(&k)).transpose()?;
                let r = s.kluis.create_record(&a, &c, $t, input, idem.as_ref()).await?;
                let mut h = etag_headers(&r);
                if let Ok(loc) = format!("{}/{}", $collection, r.id).parse() {
                    h.insert(header::LOCATION, loc);
                }
                Ok((StatusCode::CREATED, h, Json(r)))
            }

            #[doc = concat!("One ", $what, "; the ETag header is its revision.")]
            #[utoipa::path(get, path = $item, tag = $tag, params(("id" = uuid::Uuid, Path)),
                responses((status = 200, body = Record), (status = 404, body = ErrorBody)))]
            pub async fn get(
                State(s): State<AppState>,
                Authed(a): Authed,
                IdPath(id): IdPath<RecordId>,
            ) -> ApiResult<(HeaderMap, Json<Record>)> {
                let r = s.kluis.get_record(&a, $t, id).await?;
                Ok((etag_headers(&r), Json(r)))
            }

            #[doc = concat!("Change a ", $what, " (JSON merge patch of `fields`). Needs `If-Match` with the ETag you read: 412 if it changed since, 428 without.")]
            #[utoipa::path(patch, path = $item, tag = $tag, params(("id" = uuid::Uuid, Path), ("If-Match" = String, Header)), request_body = RecordInput,
                responses((status = 200, body = Record), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody), (status = 428, body = ErrorBody)))]
            pub async fn update(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdPath(id): IdPath<RecordId>,
                IfMatchHeader(m): IfMatchHeader,
                ApiJson(input): ApiJson<RecordInput>,
            ) -> ApiResult<(HeaderMap, Json<Record>)> {
                let r = s.kluis.update_record(&a, &c, $t, id, &m, input).await?;
                Ok((etag_headers(&r), Json(r)))
            }

            #[doc = concat!("Move a ", $what, " to the trash (restorable). `If-Match` is honoured when sent.")]
            #[utoipa::path(delete, path = $item, tag = $tag, params(("id" = uuid::Uuid, Path)),
                responses((status = 204), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
            pub async fn delete(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdPath(id): IdPath<RecordId>,
                IfMatchHeader(m): IfMatchHeader,
            ) -> ApiResult<StatusCode> {
                s.kluis.delete_record(&a, &c, $t, id, &m).await?;
                Ok(StatusCode::NO_CONTENT)
            }

            #[doc = concat!("Every version of a ", $what, ", current first.")]
            #[utoipa::path(get, path = $versions, tag = $tag, params(("id" = uuid::Uuid, Path)),
                responses((status = 200, body = Page<RecordVersion>), (status = 404, body = ErrorBody)))]
            pub async fn versions(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdPath(id): IdPath<RecordId>,
            ) -> ApiResult<Json<Page<RecordVersion>>> {
                Ok(Json(Page::all(s.kluis.record_versions(&a, &c, $t, id).await?)))
            }

            #[doc = concat!("Make an earlier version's field values current again (a new revision). Needs `If-Match`.")]
            #[utoipa::path(post, path = $restore, tag = $tag,
                params(("id" = uuid::Uuid, Path), ("revision" = i64, Path), ("If-Match" = String, Header)),
                responses((status = 200, body = Record), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
            pub async fn restore_version(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdPath((id, revision)): IdPath<(RecordId, i64)>,
                IfMatchHeader(m): IfMatchHeader,
            ) -> ApiResult<(HeaderMap, Json<Record>)> {
                let r = s
                    .kluis
                    .restore_record_version(&a, &c, $t, id, revision, &m)
                    .await?;
                Ok((etag_headers(&r), Json(r)))
            }
        }
    };
}

record_routes!(
    contacts,
    kluis_core::crm::ObjectType::Contact,
    "contacts",
    "contact",
    "/api/v1/contacts",
    "/api/v1/contacts/{id}",
    "/api/v1/contacts/{id}/versions",
    "/api/v1/contacts/{id}/versions/{revision}/restore",
    "/api/v1/contacts/export",
    "contacts"
);

record_routes!(
    companies,
    kluis_core::crm::ObjectType::Company,
    "companies",
    "company",
    "/api/v1/companies",
    "/api/v1/companies/{id}",
    "/api/v1/companies/{id}/versions",
    "/api/v1/companies/{id}/versions/{revision}/restore",
    "/api/v1/companies/export",
    "companies"
);

record_routes!(
    deals,
    kluis_core::crm::ObjectType::Deal,
    "deals",
    "deal",
    "/api/v1/deals",
    "/api/v1/deals/{id}",
    "/api/v1/deals/{id}/versions",
    "/api/v1/deals/{id}/versions/{revision}/restore",
    "/api/v1/deals/export",
    "deals"
);

record_routes!(
    tickets,
    kluis_core::crm::ObjectType::Ticket,
    "tickets",
    "ticket",
    "/api/v1/tickets",
    "/api/v1/tickets/{id}",
    "/api/v1/tickets/{id}/versions",
    "/api/v1/tickets/{id}/versions/{revision}/restore",
    "/api/v1/tickets/export",
    "tickets"
);

record_routes!(
    notes,
    kluis_core::crm::ObjectType::Note,
    "notes",
    "note",
    "/api/v1/notes",
    "/api/v1/notes/{id}",
    "/api/v1/notes/{id}/versions",
    "/api/v1/notes/{id}/versions/{revision}/restore",
    "/api/v1/notes/export",
    "notes"
);

record_routes!(
    tasks,
    kluis_core::crm::ObjectType::Task,
    "tasks",
    "task",
    "/api/v1/tasks",
    "/api/v1/tasks/{id}",
    "/api/v1/tasks/{id}/versions",
    "/api/v1/tasks/{id}/versions/{revision}/restore",
    "/api/v1/tasks/export",
    "tasks"
);

pub mod pipelines {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use kluis_core::Page;
    use kluis_core::crm::pipelines::{Pipeline, PipelineInput};
    use kluis_core::crm::{ObjectType, PipelineId};

    use crate::AppState;
    use crate::auth::{Authed, Ctx};
    use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

    #[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    #[serde(deny_unknown_fields)]
    pub struct PipelineQuery {
        /// `deal` (default) or `ticket`.
        pub object_type: Option<ObjectType>,
    }

    /// The pipelines of deals or tickets with their ordered stages (a default pipeline exists
    /// from the start).
    #[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines", params(PipelineQuery),
        responses((status = 200, body = Page<Pipeline>), (status = 403, body = ErrorBody)))]
    pub async fn list(
        State(s): State<AppState>,
        Authed(a): Authed,
        ApiQuery(q): ApiQuery<PipelineQuery>,
    ) -> ApiResult<Json<Page<Pipeline>>> {
        let t = q.object_type.unwrap_or(ObjectType::Deal);
        Ok(Json(Page::all(s.kluis.list_pipelines(&a, t).await?)))
    }

    /// Add a deal pipeline (owners and admins).
    #[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines", request_body = PipelineInput,
        responses((status = 201, body = Pipeline), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
    pub async fn create(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        ApiJson(input): ApiJson<PipelineInput>,
    ) -> ApiResult<(StatusCode, Json<Pipeline>)> {
        Ok((
            StatusCode::CREATED,
            Json(s.kluis.create_pipeline(&a, &c, input).await?),
        ))
    }

    /// Rename a pipeline and replace its stage list (stages keep their id when given; a stage
    /// with deals cannot be removed).
    #[utoipa::path(put, path = "/api/v1/pipelines/{id}", tag = "pipelines", params(("id" = uuid::Uuid, Path)), request_body = PipelineInput,
        responses((status = 200, body = Pipeline), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
    pub async fn update(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<PipelineId>,
        ApiJson(input): ApiJson<PipelineInput>,
    ) -> ApiResult<Json<Pipeline>> {
        Ok(Json(s.kluis.update_pipeline(&a, &c, id, input).await?))
    }

    /// Delete an empty pipeline (not the last one).
    #[utoipa::path(delete, path = "/api/v1/pipelines/{id}", tag = "pipelines", params(("id" = uuid::Uuid, Path)),
        responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
    pub async fn delete(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<PipelineId>,
    ) -> ApiResult<StatusCode> {
        s.kluis.delete_pipeline(&a, &c, id).await?;
        Ok(StatusCode::NO_CONTENT)
    }
}

pub mod trash {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use kluis_core::crm::Record;
    use kluis_core::{Page, RecordId};

    use super::TrashQuery;
    use crate::AppState;
    use crate::auth::{Authed, Ctx};
    use crate::error::{ApiQuery, ApiResult, ErrorBody, IdPath};

    /// Deleted records, restorable until the trash retention (default 30 days) purges them.
    #[utoipa::path(get, path = "/api/v1/trash", tag = "trash", params(TrashQuery),
        responses((status = 200, body = Page<Record>), (status = 403, body = ErrorBody)))]
    pub async fn list(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        ApiQuery(q): ApiQuery<TrashQuery>,
    ) -> ApiResult<Json<Page<Record>>> {
        Ok(Json(
            s.kluis
                .list_trash(&a, &c, q.object_type, q.cursor.as_deref(), q.limit)
                .await?,
        ))
    }

    /// Take a record out of the trash.
    #[utoipa::path(post, path = "/api/v1/trash/{id}/restore", tag = "trash", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, body = Record), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
    pub async fn restore(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<RecordId>,
    ) -> ApiResult<Json<Record>> {
        Ok(Json(s.kluis.restore_from_trash(&a, &c, id).await?))
    }

    /// Delete a trashed record for good (owners and admins).
    #[utoipa::path(delete, path = "/api/v1/trash/{id}", tag = "trash", params(("id" = uuid::Uuid, Path)),
        responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
    pub async fn purge(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<RecordId>,
    ) -> ApiResult<StatusCode> {
        s.kluis.purge_from_trash(&a, &c, id).await?;
        Ok(StatusCode::NO_CONTENT)
    }
}

pub mod custom {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use kluis_core::Page;
    use kluis_core::crm::CustomFieldId;
    use kluis_core::crm::ObjectType;
    use kluis_core::crm::custom::{
        CustomField, CustomFieldInput, CustomFieldUpdate, CustomValue, CustomValueInput,
        NewCustomValue,
    };
    use serde::Deserialize;

    use crate::AppState;
    use crate::auth::{Authed, Ctx};
    use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

    #[derive(Debug, Deserialize, utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    #[serde(deny_unknown_fields)]
    pub struct CustomFieldQuery {
        pub object_type: Option<ObjectType>,
    }

    /// Custom field definitions (also those in the trash, marked `deleted_at`).
    #[utoipa::path(get, path = "/api/v1/custom-fields", tag = "custom-fields", params(CustomFieldQuery),
        responses((status = 200, body = Page<CustomField>), (status = 403, body = ErrorBody)))]
    pub async fn list(
        State(s): State<AppState>,
        Authed(a): Authed,
        ApiQuery(q): ApiQuery<CustomFieldQuery>,
    ) -> ApiResult<Json<Page<CustomField>>> {
        Ok(Json(Page::all(
            s.kluis.list_custom_fields(&a, q.object_type).await?,
        )))
    }

    /// Define a custom field (owners and admins). Its values go in `fields` as `custom.<key>`.
    #[utoipa::path(post, path = "/api/v1/custom-fields", tag = "custom-fields", request_body = CustomFieldInput,
        responses((status = 201, body = CustomField), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
    pub async fn create(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        ApiJson(input): ApiJson<CustomFieldInput>,
    ) -> ApiResult<(StatusCode, Json<CustomField>)> {
        Ok((
            StatusCode::CREATED,
            Json(s.kluis.create_custom_field(&a, &c, input).await?),
        ))
    }

    /// Change label, required/unique flags, options or position (key and kind are fixed).
    #[utoipa::path(patch, path = "/api/v1/custom-fields/{id}", tag = "custom-fields", params(("id" = uuid::Uuid, Path)), request_body = CustomFieldUpdate,
        responses((status = 200, body = CustomField), (status = 404, body = ErrorBody)))]
    pub async fn update(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<CustomFieldId>,
        ApiJson(input): ApiJson<CustomFieldUpdate>,
    ) -> ApiResult<Json<CustomField>> {
        Ok(Json(s.kluis.update_custom_field(&a, &c, id, input).await?))
    }

    /// Move a custom field to the trash; its values are kept and come back with it.
    #[utoipa::path(delete, path = "/api/v1/custom-fields/{id}", tag = "custom-fields", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, body = CustomField), (status = 404, body = ErrorBody)))]
    pub async fn delete(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<CustomFieldId>,
    ) -> ApiResult<Json<CustomField>> {
        Ok(Json(
            s.kluis.set_custom_field_deleted(&a, &c, id, true).await?,
        ))
    }

    /// Take a custom field out of the trash.
    #[utoipa::path(post, path = "/api/v1/custom-fields/{id}/restore", tag = "custom-fields", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, body = CustomField), (status = 404, body = ErrorBody)))]
    pub async fn restore(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<CustomFieldId>,
    ) -> ApiResult<Json<CustomField>> {
        Ok(Json(
            s.kluis.set_custom_field_deleted(&a, &c, id, false).await?,
        ))
    }

    /// Tenant-wide named values for templates.
    #[utoipa::path(get, path = "/api/v1/custom-values", tag = "custom-fields",
        responses((status = 200, body = Page<CustomValue>), (status = 403, body = ErrorBody)))]
    pub async fn values(
        State(s): State<AppState>,
        Authed(a): Authed,
    ) -> ApiResult<Json<Page<CustomValue>>> {
        Ok(Json(Page::all(s.kluis.list_custom_values(&a).await?)))
    }

    /// Add a custom value (owners and admins).
    #[utoipa::path(post, path = "/api/v1/custom-values", tag = "custom-fields", request_body = NewCustomValue,
        responses((status = 201, body = CustomValue), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
    pub async fn create_value(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        ApiJson(input): ApiJson<NewCustomValue>,
    ) -> ApiResult<(StatusCode, Json<CustomValue>)> {
        let v = CustomValueInput { value: input.value };
        Ok((
            StatusCode::CREATED,
            Json(
                s.kluis
                    .put_custom_value(&a, &c, &input.key, v, true)
                    .await?,
            ),
        ))
    }

    /// Change a custom value.
    #[utoipa::path(put, path = "/api/v1/custom-values/{key}", tag = "custom-fields", params(("key" = String, Path)), request_body = CustomValueInput,
        responses((status = 200, body = CustomValue), (status = 404, body = ErrorBody)))]
    pub async fn update_value(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(key): IdPath<String>,
        ApiJson(input): ApiJson<CustomValueInput>,
    ) -> ApiResult<Json<CustomValue>> {
        Ok(Json(
            s.kluis.put_custom_value(&a, &c, &key, input, false).await?,
        ))
    }

    /// Move a custom value to the trash (purged after the trash retention).
    #[utoipa::path(delete, path = "/api/v1/custom-values/{key}", tag = "custom-fields", params(("key" = String, Path)),
        responses((status = 204), (status = 404, body = ErrorBody)))]
    pub async fn delete_value(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(key): IdPath<String>,
    ) -> ApiResult<StatusCode> {
        s.kluis.set_custom_value_deleted(&a, &c, &key, true).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// Take a custom value out of the trash.
    #[utoipa::path(post, path = "/api/v1/custom-values/{key}/restore", tag = "custom-fields", params(("key" = String, Path)),
        responses((status = 204), (status = 404, body = ErrorBody)))]
    pub async fn restore_value(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(key): IdPath<String>,
    ) -> ApiResult<StatusCode> {
        s.kluis
            .set_custom_value_deleted(&a, &c, &key, false)
            .await?;
        Ok(StatusCode::NO_CONTENT)
    }
}

pub mod tags {
    use axum::Json;
    use axum::extract::State;
    use kluis_core::Page;
    use kluis_core::crm::TagId;
    use kluis_core::crm::tags::{Tag, TagInput, TagUpdate};

    use crate::AppState;
    use crate::auth::{Authed, Ctx};
    use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};
    use axum::http::StatusCode;

    /// The organisation's tags (also those in the trash, marked `deleted_at`).
    #[utoipa::path(get, path = "/api/v1/tags", tag = "tags",
        responses((status = 200, body = Page<Tag>), (status = 403, body = ErrorBody)))]
    pub async fn list(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Json<Page<Tag>>> {
        Ok(Json(Page::all(s.kluis.list_tags(&a).await?)))
    }

    /// Add a tag; put it on records with `tag_ids`.
    #[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = TagInput,
        responses((status = 201, body = Tag), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
    pub async fn create(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        ApiJson(input): ApiJson<TagInput>,
    ) -> ApiResult<(StatusCode, Json<Tag>)> {
        Ok((
            StatusCode::CREATED,
            Json(s.kluis.create_tag(&a, &c, input).await?),
        ))
    }

    /// Rename or recolour a tag.
    #[utoipa::path(patch, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = uuid::Uuid, Path)), request_body = TagUpdate,
        responses((status = 200, body = Tag), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
    pub async fn update(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<TagId>,
        ApiJson(input): ApiJson<TagUpdate>,
    ) -> ApiResult<Json<Tag>> {
        Ok(Json(s.kluis.update_tag(&a, &c, id, input).await?))
    }

    /// Move a tag to the trash (records keep it, hidden, until it is restored).
    #[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, body = Tag), (status = 404, body = ErrorBody)))]
    pub async fn delete(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<TagId>,
    ) -> ApiResult<Json<Tag>> {
        Ok(Json(s.kluis.set_tag_deleted(&a, &c, id, true).await?))
    }

    /// Take a tag out of the trash.
    #[utoipa::path(post, path = "/api/v1/tags/{id}/restore", tag = "tags", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, body = Tag), (status = 404, body = ErrorBody)))]
    pub async fn restore(
        State(s): State<AppState>,
        Authed(a): Authed,
        Ctx(c): Ctx,
        IdPath(id): IdPath<TagId>,
    ) -> ApiResult<Json<Tag>> {
        Ok(Json(s.kluis.set_tag_deleted(&a, &c, id, false).await?))
    }
}
