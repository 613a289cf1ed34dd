//! Files on records: `/api/v1/<type>/{id}/files` (list, upload) for contacts, companies, deals,
//! tickets and notes, and `/api/v1/files/{id}` (describe, download, rename, replace, versions,
//! delete to the file trash, restore, purge). Uploads and downloads stream: the request body
//! goes to the sealer chunk by chunk and the download is opened chunk by chunk.
//!
//! Downloads are always attachments (`Content-Disposition: attachment` with an RFC 6266
//! `filename*`), under the content type sniffed at upload (active content such as HTML or SVG
//! as `application/octet-stream`), with `nosniff` and a sandboxing CSP, so a stored file can
//! never run as a page of this origin.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kluis_core::Page;
use kluis_core::files::{FileDownload, FileInfo, FileVersionInfo};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

/// The CSP of file responses: nothing loads, and a browser that renders it anyway sandboxes it.
pub const FILE_CSP: &str = "default-src 'none'; sandbox";

/// Marks a response as a stored file: `headers::add` gives it [`FILE_CSP`].
#[derive(Clone, Copy)]
pub struct FileResponse;

/// RFC 5987 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<encoded>` (RFC 6266).
pub fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let v = format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Streams a download as the response body; an error mid-way aborts the response (the
/// client sees a body shorter than `Content-Length`).
pub fn download_response(d: FileDownload) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&d.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(d.size));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(&d.name));
    let stream = futures_util::stream::unfold(Some(d), |state| async move {
        let mut d = state?;
        match d.next_chunk().await {
            Ok(Some(c)) => Some((Ok::<_, std::io::Error>(Bytes::from(c)), Some(d))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.code)), None)),
        }
    });
    let mut res = (headers, Body::from_stream(stream)).into_response();
    res.extensions_mut().insert(FileResponse);
    res
}

/// Refuses a declared body over the per-file limit before reading it.
pub fn check_length(s: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(n), Some(max)) = (declared, s.kluis.max_file_bytes())
        && n > max
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            format!("a file may have at most {max} bytes"),
        ));
    }
    Ok(())
}

/// An upload refused before its body was read to the end: the connection cannot carry another
/// request (the rest of the body would be read as one), so HTTP/1.1 clients are told to close it.
pub fn refused(e: kluis_core::Error, version: axum::http::Version) -> Response {
    let mut res = ApiError::from(e).into_response();
    if version == axum::http::Version::HTTP_11 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// 201 for a stored file, 202 when it waits for the malware scan.
pub fn created(info: FileInfo) -> Response {
    let status = if info.status == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    (status, Json(info)).into_response()
}

/// The upload's name.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file name (required: 1 to 255 characters, no path separators); its extension must
    /// match the content.
    pub name: Option<String>,
}

/// Which files of a record to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `true`: the record's files in the file trash.
    pub trashed: Option<bool>,
}

/// Which version to download.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// A version number (default: the current version).
    pub version: Option<i64>,
}

/// A new name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameInput {
    pub name: String,
}

macro_rules! record_file_routes {
    ($module:ident, $t:expr, $tag:literal, $what:literal, $path:literal) => {
        pub mod $module {
            use axum::body::Body;
            use axum::extract::State;
            use axum::http::HeaderMap;
            use axum::response::Response;
            use axum::Json;
            use futures_util::StreamExt;
            use kluis_core::files::FileInfo;
            use kluis_core::{Page, RecordId};

            use super::{ListQuery, UploadQuery, check_length, created};
            use crate::AppState;
            use crate::auth::{Authed, Ctx};
            use crate::error::{ApiQuery, ApiResult, ErrorBody, IdPath};

            #[doc = concat!("The files on a ", $what, " (or, with `trashed=true`, those in the file trash).")]
            #[utoipa::path(get, path = $path, tag = $tag, params(("id" = uuid::Uuid, Path), ListQuery),
                responses((status = 200, body = Page<FileInfo>), (status = 404, body = ErrorBody)))]
            pub async fn list(
                State(s): State<AppState>,
                Authed(a): Authed,
                IdPath(id): IdPath<RecordId>,
                ApiQuery(q): ApiQuery<ListQuery>,
            ) -> ApiResult<Json<Page<FileInfo>>> {
                Ok(Json(Page::all(
                    s.kluis
                        .list_files(&a, $t, id, q.trashed.unwrap_or(false))
                        .await?,
                )))
            }

            #[doc = concat!("Upload a file onto a ", $what, " (the request body, streamed). Scanned for malware while it streams in: 201 when clean, 202 when the scanner is unavailable (the file waits as `pending` and is not downloadable until scanned), 422 `file_infected` when a threat is found (quarantined). 413 `file_too_large` / `quota_exceeded`, 422 `file_type_mismatch` when the content does not match the name.")]
            #[utoipa::path(post, path = $path, tag = $tag, params(("id" = uuid::Uuid, Path), UploadQuery),
                request_body(content = Vec<u8>, content_type = "application/octet-stream"),
                responses((status = 201, body = FileInfo), (status = 202, body = FileInfo),
                    (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
            #[expect(clippy::too_many_arguments, reason = "axum extractors")]
            pub async fn upload(
                State(s): State<AppState>,
                Authed(a): Authed,
                Ctx(c): Ctx,
                IdPath(id): IdPath<RecordId>,
                ApiQuery(q): ApiQuery<UploadQuery>,
                version: axum::http::Version,
                headers: HeaderMap,
                body: Body,
            ) -> ApiResult<Response> {
                check_length(&s, &headers)?;
                let stream = body.into_data_stream().boxed();
                let name = q.name.unwrap_or_default();
                Ok(match s.kluis.upload_file(&a, &c, $t, id, &name, stream).await {
                    Ok(info) => created(info),
                    Err(e) => super::refused(e, version),
                })
            }
        }
    };
}

record_file_routes!(
    contacts,
    kluis_core::crm::ObjectType::Contact,
    "files",
    "contact",
    "/api/v1/contacts/{id}/files"
);
record_file_routes!(
    companies,
    kluis_core::crm::ObjectType::Company,
    "files",
    "company",
    "/api/v1/companies/{id}/files"
);
record_file_routes!(
    deals,
    kluis_core::crm::ObjectType::Deal,
    "files",
    "deal",
    "/api/v1/deals/{id}/files"
);
record_file_routes!(
    tickets,
    kluis_core::crm::ObjectType::Ticket,
    "files",
    "ticket",
    "/api/v1/tickets/{id}/files"
);
record_file_routes!(
    notes,
    kluis_core::crm::ObjectType::Note,
    "files",
    "note",
    "/api/v1/notes/{id}/files"
);

/// A file's description (its current version).
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 200, body = FileInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<Json<FileInfo>> {
    Ok(Json(s.kluis.file_info(&a, id).await?))
}

/// Download a file (its current version, or `version`), as an attachment. Audited. 409
/// `file_pending` while it waits for the malware scan, 409 `file_quarantined` when infected.
#[utoipa::path(get, path = "/api/v1/files/{id}/content", tag = "files",
    params(("id" = Uuid, Path), DownloadQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn download(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> ApiResult<Response> {
    let d = s.kluis.download_file(&a, &c, id, q.version).await?;
    Ok(download_response(d))
}

/// Replace a file's content: a new version (earlier versions are kept). Scanned like an
/// upload; infected content is quarantined and refused (422 `file_infected`).
#[utoipa::path(put, path = "/api/v1/files/{id}/content", tag = "files", params(("id" = Uuid, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = FileInfo), (status = 202, body = FileInfo),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    use futures_util::StreamExt;
    check_length(&s, &headers)?;
    Ok(
        match s
            .kluis
            .replace_file(&a, &c, id, body.into_data_stream().boxed())
            .await
        {
            Ok(info) => created(info),
            Err(e) => refused(e, version),
        },
    )
}

/// Rename a file (the new extension must still match the content).
#[utoipa::path(patch, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    request_body = RenameInput,
    responses((status = 200, body = FileInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
    ApiJson(input): ApiJson<RenameInput>,
) -> ApiResult<Json<FileInfo>> {
    Ok(Json(s.kluis.rename_file(&a, &c, id, &input.name).await?))
}

/// Every version of a file, newest first.
#[utoipa::path(get, path = "/api/v1/files/{id}/versions", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<FileVersionInfo>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<Json<Page<FileVersionInfo>>> {
    Ok(Json(Page::all(s.kluis.file_versions(&a, id).await?)))
}

/// Move a file to the file trash (restorable until the trash retention, default 90 days).
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_file(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a file out of the file trash.
#[utoipa::path(post, path = "/api/v1/files/{id}/restore", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn restore(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.kluis.restore_file(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Purge a file in the file trash for good, every version (privileged: `crm:purge`).
#[utoipa::path(post, path = "/api/v1/files/{id}/purge", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn purge(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.kluis.purge_file(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_is_an_attachment_with_an_encoded_name() {
        let v = content_disposition("offerte \"Jansen\" €.pdf");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"offerte _Jansen_ _.pdf\"; filename*=UTF-8''offerte%20%22Jansen%22%20%E2%82%AC.pdf"
        );
        let v = content_disposition("a\r\nSet-Cookie: x");
        assert!(!v.to_str().unwrap().contains('\n'));
    }
}
