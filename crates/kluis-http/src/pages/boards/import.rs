//! The import wizard over the core import service: upload a CSV (encoding detected here,
//! delimiter and column mapping by a dry run of the core import), map the columns (the core's
//! English and Dutch names pre-selected), check with a dry run that lists row errors, then
//! import in the background with a progress page that refreshes itself (no script).
//!
//! Between the steps the uploaded file is kept in this process's memory only (never on disk),
//! bound to the organisation and user that uploaded it, for at most an hour; a wizard is
//! therefore tied to the server process it started on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use kluis_core::crm::ObjectType;
use kluis_core::crm::import::{
    CsvEncoding, ImportMode, ImportOptions, ImportReport, ImportStatus, OnDuplicate, RowError,
};
use kluis_core::{Permission, TenantId, UserId};
use serde::Deserialize;

use super::super::errors::{forbidden_page, not_found_page};
use super::super::i18n::{Lang, Text};
use super::super::{Nav, Notice, PageUser, form_page_user, page_user, render, see_other};
use super::text::{self, BText};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

/// The largest file the wizard takes (the API takes larger ones).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;
const KEEP: Duration = Duration::from_secs(3600);
const MAX_STASHED: usize = 32;

struct Upload {
    tenant: TenantId,
    user: Option<UserId>,
    at: Instant,
    bytes: Arc<Vec<u8>>,
    file_name: String,
    object_type: ObjectType,
    encoding: CsvEncoding,
    delimiter: String,
    rows: u64,
    columns: Vec<String>,
    /// The target of each column (None: ignored).
    targets: Vec<Option<String>>,
    mode: ImportMode,
    on_duplicate: OnDuplicate,
    preview: Option<ImportReport>,
}

fn stash() -> &'static Mutex<HashMap<String, Upload>> {
    static STASH: OnceLock<Mutex<HashMap<String, Upload>>> = OnceLock::new();
    STASH.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Upload>> {
    stash().lock().unwrap_or_else(|e| e.into_inner())
}

fn put(u: Upload) -> String {
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(kluis_crypto::token::random_bytes::<24>());
    let mut all = lock();
    all.retain(|_, v| v.at.elapsed() < KEEP);
    while all.len() >= MAX_STASHED {
        let Some(oldest) = all.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| k.clone()) else {
            break;
        };
        all.remove(&oldest);
    }
    all.insert(token.clone(), u);
    token
}

/// Runs `f` on the caller's own upload, if it is still there.
fn with_upload<R>(user: &PageUser, token: &str, f: impl FnOnce(&mut Upload) -> R) -> Option<R> {
    let mut all = lock();
    let u = all.get_mut(token)?;
    if u.tenant != user.actor.tenant() || u.user != user.actor.user_id() || u.at.elapsed() >= KEEP {
        return None;
    }
    Some(f(u))
}

fn ordinary_targets(t: ObjectType) -> Vec<String> {
    let mut out: Vec<String> = t.field_names().into_iter().map(str::to_owned).collect();
    out.push("owner_email".into());
    out.push("tags".into());
    if t == ObjectType::Contact {
        out.push("company_domain".into());
    }
    out
}

/// Dutch headers the core does not know, mapped by the wizard (pre-selected only).
fn wizard_alias(t: ObjectType, header: &str) -> Option<&'static str> {
    let h = header.trim().to_lowercase();
    match (t, h.as_str()) {
        (ObjectType::Company, "bedrijf" | "firma" | "onderneming") => Some("name"),
        (ObjectType::Contact, "bedrijfsdomein" | "domein bedrijf") => Some("company_domain"),
        (_, "e-mail adres" | "e mail") => Some("email"),
        (_, "mobiel nummer" | "06") => Some("mobile"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Pages

pub struct Opt {
    pub value: String,
    pub selected: bool,
}

pub struct MapRow {
    pub index: usize,
    pub column: String,
    pub options: Vec<Opt>,
}

#[derive(Template)]
#[template(path = "boards_import.html")]
struct ImportPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    /// `upload`, `map` or `check`.
    step: &'static str,
    token: String,
    file_name: String,
    object_type: &'static str,
    encoding: &'static str,
    delimiter: String,
    rows: u64,
    map: Vec<MapRow>,
    all_or_nothing: bool,
    on_duplicate: &'static str,
    preview: Option<ImportReport>,
    max_mb: usize,
}

fn encoding_name(e: CsvEncoding) -> &'static str {
    match e {
        CsvEncoding::Utf8 => "UTF-8",
        CsvEncoding::Windows1252 => "Windows-1252",
    }
}

fn delimiter_label(d: &str) -> String {
    match d {
        "tab" => "tab".into(),
        other => format!("\u{201c}{other}\u{201d}"),
    }
}

fn dup_name(d: OnDuplicate) -> &'static str {
    match d {
        OnDuplicate::Error => "error",
        OnDuplicate::Skip => "skip",
        OnDuplicate::Update => "update",
    }
}

fn upload_page(
    headers: &HeaderMap,
    user: &PageUser,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let lang = Lang::of(headers);
    render(
        status,
        &ImportPage {
            t: lang.text(),
            b: text::of(lang),
            nav: user.nav("/import"),
            notice,
            csrf: user.csrf.clone(),
            step: "upload",
            token: String::new(),
            file_name: String::new(),
            object_type: "contact",
            encoding: "",
            delimiter: String::new(),
            rows: 0,
            map: Vec::new(),
            all_or_nothing: true,
            on_duplicate: "error",
            preview: None,
            max_mb: MAX_UPLOAD / (1024 * 1024),
        },
    )
}

async fn step_page(
    s: &AppState,
    headers: &HeaderMap,
    user: &PageUser,
    token: &str,
    step: &'static str,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let lang = Lang::of(headers);
    let Some(snapshot) = with_upload(user, token, |u| {
        (
            u.file_name.clone(),
            u.object_type,
            u.encoding,
            u.delimiter.clone(),
            u.rows,
            u.columns.clone(),
            u.targets.clone(),
            u.mode,
            u.on_duplicate,
            u.preview.clone(),
        )
    }) else {
        return upload_page(
            headers,
            user,
            StatusCode::NOT_FOUND,
            Some(Notice {
                kind: "error",
                text: text::of(lang).expired.to_owned(),
            }),
        );
    };
    let (file_name, t, encoding, delimiter, rows, columns, targets, mode, dup, preview) = snapshot;
    let mut choices = ordinary_targets(t);
    if let Ok(custom) = s.kluis.list_custom_fields(&user.actor, Some(t)).await {
        choices.extend(
            custom
                .into_iter()
                .filter(|c| c.deleted_at.is_none())
                .map(|c| format!("custom.{}", c.key)),
        );
    }
    let map = columns
        .iter()
        .zip(&targets)
        .enumerate()
        .map(|(index, (column, target))| {
            let mut options: Vec<Opt> = choices
                .iter()
                .map(|c| Opt {
                    value: c.clone(),
                    selected: target.as_deref() == Some(c.as_str()),
                })
                .collect();
            if let Some(tg) = target
                && !choices.contains(tg)
            {
                options.push(Opt {
                    value: tg.clone(),
                    selected: true,
                });
            }
            MapRow {
                index,
                column: column.clone(),
                options,
            }
        })
        .collect();
    render(
        status,
        &ImportPage {
            t: lang.text(),
            b: text::of(lang),
            nav: user.nav("/import"),
            notice,
            csrf: user.csrf.clone(),
            step: if step == "check" && preview.is_none() {
                "map"
            } else {
                step
            },
            token: token.to_owned(),
            file_name,
            object_type: t.as_str(),
            encoding: encoding_name(encoding),
            delimiter: delimiter_label(&delimiter),
            rows,
            map,
            all_or_nothing: mode == ImportMode::AllOrNothing,
            on_duplicate: dup_name(dup),
            preview,
            max_mb: MAX_UPLOAD / (1024 * 1024),
        },
    )
}

/// The import permission (owners, admins, managers): others get the 403 page.
fn refused(s: &AppState, headers: &HeaderMap, user: &PageUser) -> Option<Response> {
    s.kluis
        .may_import(&user.actor)
        .is_err()
        .then(|| forbidden_page(headers, Some(user)))
}

pub async fn start(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    upload_page(&headers, &user, StatusCode::OK, None)
}

#[derive(Debug, Deserialize, Default)]
pub struct StepQuery {
    step: Option<String>,
}

pub async fn mapping(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<StepQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    let step = if q.step.as_deref() == Some("check") {
        "check"
    } else {
        "map"
    };
    step_page(&s, &headers, &user, &token, step, StatusCode::OK, None).await
}

// ---------------------------------------------------------------------------------------
// Upload

struct Part {
    name: String,
    file_name: Option<String>,
    data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|b| *b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

fn disposition_param(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let lower = line.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&key) {
        let start = from + at;
        // A whole parameter name (`filename=` must not match `name=`).
        let ok = start == 0 || matches!(line.as_bytes()[start - 1], b' ' | b';');
        let rest = &line[start + key.len()..];
        if ok {
            return rest.find('"').map(|end| rest[..end].to_owned());
        }
        from = start + key.len();
    }
    None
}

/// A `multipart/form-data` body (RFC 7578): its parts, or None when malformed.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delim = format!("--{boundary}").into_bytes();
    let next_delim = format!("\r\n--{boundary}").into_bytes();
    let mut at = find(body, &delim, 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return None;
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = std::str::from_utf8(&body[at..head_end]).ok()?;
        let mut name = None;
        let mut file_name = None;
        for line in head.split("\r\n") {
            if line
                .to_ascii_lowercase()
                .starts_with("content-disposition:")
            {
                name = disposition_param(line, "name");
                file_name = disposition_param(line, "filename");
            }
        }
        let data_start = head_end + 4;
        let data_end = find(body, &next_delim, data_start)?;
        parts.push(Part {
            name: name?,
            file_name,
            data: body[data_start..data_end].to_vec(),
        });
        at = data_end + next_delim.len();
        if parts.len() > 16 {
            return None;
        }
    }
}

fn detect_encoding(bytes: &[u8]) -> CsvEncoding {
    if std::str::from_utf8(bytes).is_ok() {
        CsvEncoding::Utf8
    } else {
        CsvEncoding::Windows1252
    }
}

/// The header row as the core would read it (its own fallback when the dry run refuses the
/// file's automatic mapping): delimiter from the first line, cells decoded and trimmed.
fn header_row(bytes: &[u8], encoding: CsvEncoding) -> (String, Vec<String>) {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|b| **b == c).count();
    let (delim, name) = [(b';', ";"), (b'\t', "tab"), (b',', ",")]
        .into_iter()
        .max_by_key(|(c, _)| (count(*c), *c == b','))
        .unwrap_or((b',', ","));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(body);
    let mut rec = csv::ByteRecord::new();
    let mut cols = Vec::new();
    if rdr.read_byte_record(&mut rec).unwrap_or(false) {
        for (i, cell) in rec.iter().enumerate() {
            let text = match encoding {
                CsvEncoding::Utf8 => String::from_utf8_lossy(cell).into_owned(),
                CsvEncoding::Windows1252 => encoding_rs_free_decode(cell),
            };
            let text = text.trim().to_owned();
            cols.push(if text.is_empty() {
                format!("column {}", i + 1)
            } else {
                text
            });
        }
    }
    (name.to_owned(), cols)
}

/// Windows-1252 without the `encoding_rs` crate: Latin-1 plus the 0x80..0x9F punctuation.
fn encoding_rs_free_decode(cell: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '“', '”', '•', '–', '—', '˜', '™', 'š', '›',
        'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    cell.iter()
        .map(|b| match b {
            0x80..=0x9f => HIGH[usize::from(b - 0x80)],
            b => char::from(*b),
        })
        .collect()
}

fn notice_for(headers: &HeaderMap, e: &ApiError) -> Option<Notice> {
    Notice::error(Lang::of(headers).text(), e)
}

pub async fn upload(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        // Larger than the wizard takes: the upload page again (a page view: no state change).
        return match page_user(&s, &headers).await {
            Ok(user) => upload_page(
                &headers,
                &user,
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(Notice {
                    kind: "error",
                    text: text::of(Lang::of(&headers)).file_too_large.to_owned(),
                }),
            ),
            Err(r) => r,
        };
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart(content_type, &body) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_form",
            "the upload form is malformed",
        )
        .into_response();
    };
    let value = |n: &str| {
        parts
            .iter()
            .find(|p| p.name == n)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .unwrap_or_default()
    };
    let user = match form_page_user(&s, &headers, &value("csrf")).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    let b = text::of(Lang::of(&headers));
    let object_type = match value("object_type").as_str() {
        "company" => ObjectType::Company,
        _ => ObjectType::Contact,
    };
    let Some(file) = parts
        .into_iter()
        .find(|p| p.name == "file" && !p.data.is_empty())
    else {
        return upload_page(
            &headers,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Notice {
                kind: "error",
                text: b.file_missing.to_owned(),
            }),
        );
    };
    let bytes = Arc::new(file.data);
    let encoding = detect_encoding(&bytes);
    let opts = ImportOptions {
        object_type,
        mode: ImportMode::AllOrNothing,
        on_duplicate: OnDuplicate::Error,
        dry_run: true,
        delimiter: None,
        encoding,
        mapping: None,
    };
    let (delimiter, columns, mut targets, rows) = match s
        .kluis
        .import_records(&user.actor, &c, opts, reader(&bytes))
        .await
    {
        Ok(r) => (
            r.delimiter.clone(),
            r.columns.iter().map(|m| m.column.clone()).collect(),
            r.columns.iter().map(|m| m.target.clone()).collect(),
            r.rows,
        ),
        // The automatic mapping was refused (e.g. two columns for one field): the user maps.
        Err(e) if e.field.as_deref() == Some("mapping") => {
            let (d, cols) = header_row(&bytes, encoding);
            let n = cols.len();
            (d, cols, vec![None; n], 0)
        }
        Err(e) => {
            let e: ApiError = e.into();
            return upload_page(&headers, &user, e.status, notice_for(&headers, &e));
        }
    };
    for (col, target) in columns.iter().zip(targets.iter_mut()) {
        if target.is_none() {
            *target = wizard_alias(object_type, col).map(str::to_owned);
        }
    }
    let token = put(Upload {
        tenant: user.actor.tenant(),
        user: user.actor.user_id(),
        at: Instant::now(),
        bytes,
        file_name: file.file_name.unwrap_or_default(),
        object_type,
        encoding,
        delimiter,
        rows,
        columns,
        targets,
        mode: ImportMode::AllOrNothing,
        on_duplicate: OnDuplicate::Error,
        preview: None,
    });
    see_other(&format!("/import/{token}"), HeaderMap::new())
}

fn reader(bytes: &Arc<Vec<u8>>) -> Box<dyn std::io::Read + Send> {
    struct Shared(Arc<Vec<u8>>, usize);
    impl std::io::Read for Shared {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let rest = self.0.get(self.1..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.1 += n;
            Ok(n)
        }
    }
    Box::new(Shared(bytes.clone(), 0))
}

// ---------------------------------------------------------------------------------------
// Check (dry run) and run

fn options_of(u: &Upload, dry_run: bool) -> (ImportOptions, Arc<Vec<u8>>) {
    let mapping: BTreeMap<String, String> = u
        .columns
        .iter()
        .zip(&u.targets)
        .map(|(c, t)| (c.clone(), t.clone().unwrap_or_default()))
        .collect();
    (
        ImportOptions {
            object_type: u.object_type,
            mode: u.mode,
            on_duplicate: u.on_duplicate,
            dry_run,
            delimiter: Some(if u.delimiter == "tab" {
                "tab".into()
            } else {
                u.delimiter.clone()
            }),
            encoding: u.encoding,
            mapping: Some(mapping),
        },
        u.bytes.clone(),
    )
}

pub async fn check(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let user = match form_page_user(&s, &headers, get("csrf")).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    let mode = if get("mode") == "continue_on_error" {
        ImportMode::ContinueOnError
    } else {
        ImportMode::AllOrNothing
    };
    let dup = match get("on_duplicate") {
        "skip" => OnDuplicate::Skip,
        "update" => OnDuplicate::Update,
        _ => OnDuplicate::Error,
    };
    let prepared = with_upload(&user, &token, |u| {
        for (i, target) in u.targets.iter_mut().enumerate() {
            let v = get(&format!("map_{i}")).trim();
            *target = (!v.is_empty()).then(|| v.to_owned());
        }
        u.mode = mode;
        u.on_duplicate = dup;
        u.preview = None;
        options_of(u, true)
    });
    let Some((opts, bytes)) = prepared else {
        return step_page(
            &s,
            &headers,
            &user,
            &token,
            "map",
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
    };
    match s
        .kluis
        .import_records(&user.actor, &c, opts, reader(&bytes))
        .await
    {
        Ok(report) => {
            with_upload(&user, &token, |u| {
                u.rows = report.rows;
                u.preview = Some(report);
            });
            see_other(&format!("/import/{token}?step=check"), HeaderMap::new())
        }
        Err(e) => {
            let e: ApiError = e.into();
            let n = notice_for(&headers, &e);
            step_page(&s, &headers, &user, &token, "map", e.status, n).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn run(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match form_page_user(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    let Some((opts, bytes, rows)) = with_upload(&user, &token, |u| {
        let (o, b) = options_of(u, false);
        (o, b, u.rows)
    }) else {
        return step_page(
            &s,
            &headers,
            &user,
            &token,
            "map",
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
    };
    let before: Vec<uuid::Uuid> = s
        .kluis
        .list_imports(&user.actor)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let (kluis, actor, ctx) = (s.kluis.clone(), user.actor.clone(), c.clone());
    let mut job = tokio::spawn(async move {
        kluis
            .import_records(&actor, &ctx, opts, reader(&bytes))
            .await
    });
    // A small file is done at once; a large one goes on in the background, watched on the
    // progress page.
    let id = match tokio::time::timeout(Duration::from_secs(2), &mut job).await {
        Ok(Ok(Ok(report))) => Some(report.id),
        Ok(Ok(Err(e))) => {
            let e: ApiError = e.into();
            let n = notice_for(&headers, &e);
            return step_page(&s, &headers, &user, &token, "map", e.status, n).await;
        }
        Ok(Err(_)) => None,
        Err(_) => {
            let mut found = None;
            for _ in 0..100 {
                found = s
                    .kluis
                    .list_imports(&user.actor)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|r| !before.contains(&r.id) && !r.dry_run)
                    .map(|r| r.id);
                if found.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            found
        }
    };
    lock().remove(&token);
    match id {
        Some(id) => see_other(&format!("/import/status/{id}?of={rows}"), HeaderMap::new()),
        None => ApiError::from(kluis_core::Error::internal("import did not start")).into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Progress and result

#[derive(Template)]
#[template(path = "boards_import_status.html")]
struct StatusPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    running: bool,
    r: ImportReport,
    of: u64,
    outcome: &'static str,
    errors: Vec<RowError>,
}

#[derive(Debug, Deserialize, Default)]
pub struct OfQuery {
    of: Option<u64>,
}

pub async fn status(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<OfQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(r) = refused(&s, &headers, &user) {
        return r;
    }
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return not_found_page(&headers, Some(&user));
    };
    let r = match s.kluis.get_import(&user.actor, id) {
        Ok(r) => r,
        Err(_) => return not_found_page(&headers, Some(&user)),
    };
    let lang = Lang::of(&headers);
    let b = text::of(lang);
    let running = r.status == ImportStatus::Running;
    let outcome = match r.status {
        ImportStatus::Running => b.import_running,
        ImportStatus::Committed | ImportStatus::DryRun => b.import_done,
        ImportStatus::RolledBack => b.import_rolled_back,
        ImportStatus::Failed => b.import_failed,
    };
    let mut errors = r.errors.clone();
    if let Some(f) = &r.fatal {
        errors.insert(0, f.clone());
    }
    render(
        StatusCode::OK,
        &StatusPage {
            t: lang.text(),
            b,
            nav: user.nav("/import"),
            notice: None,
            running,
            of: q.of.unwrap_or(r.rows).max(r.rows).max(1),
            outcome,
            errors,
            r,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Export

pub struct ExportLink {
    pub label: &'static str,
    pub href: String,
}

#[derive(Template)]
#[template(path = "boards_export.html")]
struct ExportPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    links: Vec<ExportLink>,
}

/// Links to the API's CSV export (`export_records`: privileged, audited) per object type.
pub async fn export_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !user.actor.can(Permission::CrmExport) {
        return forbidden_page(&headers, Some(&user));
    }
    let lang = Lang::of(&headers);
    let b = text::of(lang);
    // In Dutch the files are written the way Dutch Excel opens them (`;`, BOM, Dutch headers).
    let style = match lang {
        Lang::Nl => "&delimiter=%3B&bom=true&headers=nl",
        Lang::En => "",
    };
    let links = [
        (b.contacts, "contacts"),
        (b.companies, "companies"),
        (b.deals, "deals"),
        (b.tickets, "tickets"),
        (b.notes, "notes"),
        (b.tasks, "tasks"),
    ]
    .into_iter()
    .map(|(label, path)| ExportLink {
        label,
        href: format!("/api/v1/{path}/export?format=csv{style}"),
    })
    .collect();
    render(
        StatusCode::OK,
        &ExportPage {
            t: lang.text(),
            b,
            nav: user.nav("/export"),
            notice: None,
            links,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_with_a_file_and_a_field() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nvoornaam;achternaam\r\nJan;Jansen\r\n\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].file_name.as_deref(), Some("a.csv"));
        assert_eq!(parts[1].data, b"voornaam;achternaam\r\nJan;Jansen\r\n");
        assert!(multipart("text/plain", body).is_none());
        assert!(multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_none());
    }

    #[test]
    fn encoding_and_header_detection() {
        let latin = b"Voornaam;Achternaam;Plaats\r\nJos\xe9;M\xfcller;\x80\r\n";
        assert_eq!(detect_encoding(latin), CsvEncoding::Windows1252);
        assert_eq!(detect_encoding("é".as_bytes()), CsvEncoding::Utf8);
        let (d, cols) = header_row(latin, CsvEncoding::Windows1252);
        assert_eq!(d, ";");
        assert_eq!(cols, vec!["Voornaam", "Achternaam", "Plaats"]);
        assert_eq!(encoding_rs_free_decode(b"\x80 \xe9"), "€ é");
    }
}
