//! CSV import of contacts and companies.
//!
//! The file is parsed by the `csv` crate on a blocking thread and handed to the writer in
//! batches, so memory stays flat whatever the file size: a few batches and one row of at most
//! [`MAX_ROW_BYTES`] are in flight. Every row goes through the same code as a create or update
//! from the API (validation, sensitive-data guard, sealing, blind indexes, duplicate check,
//! version history, an audit event naming the import).
//!
//! All-or-nothing imports (the default) and dry runs use ONE transaction, rolled back when any
//! row fails (a dry run always), so a file with an error in its last row leaves nothing behind.
//! Continue-on-error imports commit every [`BATCH`] rows and leave the failing rows out. Row
//! errors name the row (the header is row 1, as in a spreadsheet), the column and a stable code,
//! never the value.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::authz::Right;
use crate::db::TenantTx;
use kluis_types::RecordId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::custom::{CustomDef, CustomKind, Schema};
use super::{ObjectType, RecordInput, TagId, fields, lookups};
use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, TenantId, UserId};

/// A row (all its cells) may be at most this long; a longer one stops the import.
pub const MAX_ROW_BYTES: u64 = 16 << 20;
/// Rows per batch, and per transaction in continue-on-error mode.
pub const BATCH: usize = 500;
/// The report lists at most this many row errors (and counts the rest).
pub const MAX_REPORTED_ERRORS: usize = 1000;
/// Finished imports stay visible in the progress list this long.
const KEEP_FINISHED_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Any row error rolls the whole import back.
    #[default]
    AllOrNothing,
    /// Rows with errors are left out; the others are imported.
    ContinueOnError,
}

/// What to do with a row whose email (contacts) or domain (companies) already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// A row error (`duplicate`).
    #[default]
    Error,
    /// Leave the existing record alone and count the row as skipped.
    Skip,
    /// Update the existing record with the row's non-empty cells (a new version).
    Update,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CsvEncoding {
    /// UTF-8, with or without a byte-order mark ("CSV UTF-8" in Excel).
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// What Excel's plain "CSV" writes on Dutch and other Western European Windows.
    #[serde(rename = "windows-1252")]
    Windows1252,
}

/// How to read the file and what to do with it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// `contact` or `company`.
    pub object_type: ObjectType,
    #[serde(default)]
    pub mode: ImportMode,
    #[serde(default)]
    pub on_duplicate: OnDuplicate,
    /// Check everything, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `,`, `;` or `tab`; default: detected from the header row.
    pub delimiter: Option<String>,
    #[serde(default)]
    pub encoding: CsvEncoding,
    /// Column header -> field (`email`, `custom.<key>`, `owner_email`, `company_domain`,
    /// `tags`), or `""` to ignore the column. Default: columns are matched to fields by name
    /// (also Dutch names such as `Voornaam`, `E-mailadres`, `Postcode`).
    pub mapping: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Running,
    /// Written (for continue-on-error: the rows without errors).
    Committed,
    /// All-or-nothing with row errors: nothing was written.
    RolledBack,
    /// A dry run: nothing was written.
    DryRun,
    /// Stopped early (see `fatal`); in continue-on-error mode `committed` rows stay.
    Failed,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// Row in the file; the header is row 1.
    pub row: u64,
    /// The column's header, when the error is about one cell.
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ColumnMapping {
    pub column: String,
    /// The field the column goes to; null when ignored.
    pub target: Option<String>,
}

/// The outcome of an import (also its progress while it runs).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub id: Uuid,
    pub object_type: ObjectType,
    pub status: ImportStatus,
    pub dry_run: bool,
    pub mode: ImportMode,
    pub on_duplicate: OnDuplicate,
    pub encoding: CsvEncoding,
    /// The delimiter used (`,`, `;` or `tab`).
    pub delimiter: String,
    pub columns: Vec<ColumnMapping>,
    /// Data rows read so far (the header not counted).
    pub rows: u64,
    /// Rows that created / updated a record or were skipped as duplicates; for a dry run or a
    /// rolled-back import, what would have happened.
    pub created: u64,
    pub updated: u64,
    /// Rows that matched a record holding exactly these values already: nothing written.
    pub unchanged: u64,
    pub skipped: u64,
    /// Rows with an error.
    pub failed: u64,
    /// Rows actually written and kept.
    pub committed: u64,
    pub errors: Vec<RowError>,
    /// Row errors beyond the first [`MAX_REPORTED_ERRORS`].
    pub errors_not_shown: u64,
    /// Why the import stopped early.
    pub fatal: Option<RowError>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// An upload larger than allowed: the reader given to [`Kluis::import_records`] returns an
/// `io::Error` wrapping this, and the import fails with `file_too_large`.
#[derive(Debug)]
pub struct InputTooLarge(pub u64);

impl std::fmt::Display for InputTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the file is larger than {} bytes", self.0)
    }
}
impl std::error::Error for InputTooLarge {}

#[derive(Debug)]
struct RowTooLarge;
impl std::fmt::Display for RowTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row longer than {MAX_ROW_BYTES} bytes")
    }
}
impl std::error::Error for RowTooLarge {}

/// Imports running in (or recently finished by) this process, for progress reports.
#[derive(Default)]
pub(crate) struct Imports {
    running: Mutex<HashMap<Uuid, Tracked>>,
}

struct Tracked {
    tenant: TenantId,
    report: Arc<Mutex<ImportReport>>,
    finished_at: Option<i64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a column's cells go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Field(String),
    /// The record's owner, by the user's email.
    OwnerEmail,
    /// Contacts: the company with this domain.
    CompanyDomain,
    /// Tag names separated by `;` or `,`.
    Tags,
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Field(f) => f.clone(),
            Target::OwnerEmail => "owner_email".into(),
            Target::CompanyDomain => "company_domain".into(),
            Target::Tags => "tags".into(),
        }
    }
}

/// What the parser thread sends.
enum Msg {
    Header { names: Vec<String>, delimiter: u8 },
    Rows(Vec<std::result::Result<Parsed, RowError>>),
    Fatal(RowError),
}

struct Parsed {
    row: u64,
    cells: Vec<String>,
}

fn row_error(row: u64, column: Option<&str>, code: &str, message: impl Into<String>) -> RowError {
    RowError {
        row,
        column: column.map(str::to_owned),
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Counts bytes so that one enormous row cannot make the parser buffer the whole upload.
struct RowGuard<R> {
    inner: R,
    read: u64,
    row_start: u64,
}

impl<R: Read> Read for RowGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read - self.row_start > MAX_ROW_BYTES {
            return Err(io::Error::other(RowTooLarge));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn io_fatal(row: u64, e: &io::Error) -> RowError {
    let inner = e.get_ref();
    if let Some(too) = inner.and_then(|i| i.downcast_ref::<InputTooLarge>()) {
        return row_error(row, None, "file_too_large", too.to_string());
    }
    if inner.is_some_and(|i| i.is::<RowTooLarge>()) {
        return row_error(
            row,
            None,
            "row_too_large",
            format!("the row is longer than {} MiB", MAX_ROW_BYTES >> 20),
        );
    }
    row_error(row, None, "read_failed", "the file could not be read")
}

/// Reads the header line (up to 1 MiB): returns its bytes and the bytes read after it.
fn read_head<R: Read>(r: &mut R) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut in_quotes = false;
    let mut scanned = 0;
    loop {
        // Scan what we have for the first line end outside quotes.
        while scanned < buf.len() {
            match buf[scanned] {
                b'"' => in_quotes = !in_quotes,
                b'\n' if !in_quotes => {
                    let rest = buf.split_off(scanned + 1);
                    return Ok((buf, rest));
                }
                _ => {}
            }
            scanned += 1;
        }
        if buf.len() > 1 << 20 {
            return Err(io::Error::other(RowTooLarge));
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Ok((buf, Vec::new()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The delimiter the header row uses most, outside quotes (`,` when none appears).
fn detect_delimiter(head: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut in_quotes = false;
    for &b in head {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => counts[0] += 1,
            b';' if !in_quotes => counts[1] += 1,
            b'\t' if !in_quotes => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b';', b'\t'][best]
    }
}

fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        d => (d as char).to_string(),
    }
}

fn parse_delimiter(s: Option<&str>) -> Result<Option<u8>> {
    match s {
        None | Some("auto") => Ok(None),
        Some(",") => Ok(Some(b',')),
        Some(";") => Ok(Some(b';')),
        Some("tab" | "\t") => Ok(Some(b'\t')),
        Some(_) => Err(Error::validation(
            "delimiter",
            "invalid_delimiter",
            "delimiter must be `,`, `;`, `tab` or `auto`",
        )),
    }
}

fn decode(encoding: CsvEncoding, bytes: &[u8]) -> Option<String> {
    match encoding {
        CsvEncoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        CsvEncoding::Windows1252 => Some(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
    }
}

const BAD_UTF8: &str =
    "not valid UTF-8: save the file as \"CSV UTF-8\", or import it with encoding windows-1252";

/// The parser thread: header first, then batches of rows, or one fatal error.
fn parse(
    input: Box<dyn Read + Send>,
    delimiter: Option<u8>,
    encoding: CsvEncoding,
    out: tokio::sync::mpsc::Sender<Msg>,
) {
    let mut input = input;
    let (mut head, rest) = match read_head(&mut input) {
        Ok(h) => h,
        Err(e) => {
            let _ = out.blocking_send(Msg::Fatal(io_fatal(1, &e)));
            return;
        }
    };
    if head.starts_with(b"\xEF\xBB\xBF") {
        head.drain(..3);
    }
    let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&head));
    let source = io::Cursor::new(head)
        .chain(io::Cursor::new(rest))
        .chain(input);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(RowGuard {
            inner: source,
            read: 0,
            row_start: 0,
        });
    let mut rec = csv::ByteRecord::new();
    let mut row: u64 = 1;
    let fatal = |row: u64, e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => io_fatal(row, &e),
        _ => row_error(row, None, "invalid_csv", "the file is not valid CSV"),
    };
    let names = match rdr.read_byte_record(&mut rec) {
        Ok(true) => {
            let mut names = Vec::with_capacity(rec.len());
            for (i, cell) in rec.iter().enumerate() {
                let Some(name) = decode(encoding, cell) else {
                    let e = row_error(1, None, "invalid_encoding", BAD_UTF8);
                    let _ = out.blocking_send(Msg::Fatal(e));
                    return;
                };
                let name = name.trim().to_owned();
                names.push(if name.is_empty() {
                    format!("column {}", i + 1)
                } else {
                    name
                });
            }
            names
        }
        Ok(false) => {
            let e = row_error(1, None, "empty_file", "the file has no header row");
            let _ = out.blocking_send(Msg::Fatal(e));
            return;
        }
        Err(e) => {
            let _ = out.blocking_send(Msg::Fatal(fatal(1, e)));
            return;
        }
    };
    let width = names.len();
    if out
        .blocking_send(Msg::Header {
            names: names.clone(),
            delimiter,
        })
        .is_err()
    {
        return;
    }
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let g = rdr.get_mut();
        g.row_start = g.read;
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = out.blocking_send(Msg::Rows(std::mem::take(&mut batch)));
                let _ = out.blocking_send(Msg::Fatal(fatal(row + 1, e)));
                return;
            }
        }
        row += 1;
        // Blank lines and rows of empty cells (spreadsheets write them) are not data.
        if rec.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        batch.push(parse_row(row, &rec, &names, width, encoding));
        if batch.len() == BATCH
            && out
                .blocking_send(Msg::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = out.blocking_send(Msg::Rows(batch));
    }
}

fn parse_row(
    row: u64,
    rec: &csv::ByteRecord,
    names: &[String],
    width: usize,
    encoding: CsvEncoding,
) -> std::result::Result<Parsed, RowError> {
    if rec.len() != width {
        return Err(row_error(
            row,
            None,
            "wrong_column_count",
            format!("expected {width} columns, found {}", rec.len()),
        ));
    }
    let mut cells = Vec::with_capacity(width);
    for (i, cell) in rec.iter().enumerate() {
        match decode(encoding, cell) {
            Some(s) => cells.push(s),
            None => {
                return Err(row_error(
                    row,
                    Some(&names[i]),
                    "invalid_encoding",
                    BAD_UTF8,
                ));
            }
        }
    }
    Ok(Parsed { row, cells })
}

/// `E-mailadres` -> `e_mailadres`.
/// Undoes what exports do to cells a spreadsheet would execute (`'=...`, `'+31...`): a file
/// exported, edited and imported again must not gain an apostrophe in every phone number. Only
/// an apostrophe before one of those characters is taken off; any other stays.
fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

fn normalise_header(h: &str) -> String {
    h.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_owned()
}

/// Common English and Dutch column names for the built-in fields.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "e_mail",
            "e_mailadres",
            "emailadres",
            "email_address",
            "e_mail_address",
            "mail",
        ],
    ),
    ("first_name", &["voornaam", "firstname", "given_name"]),
    (
        "last_name",
        &["achternaam", "lastname", "surname", "family_name"],
    ),
    (
        "phone",
        &["telefoon", "telefoonnummer", "phone_number", "tel"],
    ),
    (
        "mobile",
        &["mobiel", "mobiele_telefoon", "mobile_phone", "gsm"],
    ),
    ("job_title", &["functie", "title", "functietitel"]),
    ("street", &["straat", "adres", "address", "street_address"]),
    ("postal_code", &["postcode", "zip", "zip_code", "postcode_"]),
    ("city", &["plaats", "woonplaats", "stad", "town"]),
    ("country", &["land", "landcode", "country_code"]),
    ("website", &["web", "url", "site", "webadres"]),
    (
        "description",
        &["omschrijving", "beschrijving", "notes", "opmerkingen"],
    ),
    (
        "name",
        &["naam", "bedrijfsnaam", "company_name", "organisatie"],
    ),
    ("domain", &["domein", "domeinnaam"]),
    ("industry", &["branche", "sector"]),
    ("kvk_number", &["kvk", "kvk_nummer", "kvk_nr", "coc_number"]),
    ("vat_number", &["btw", "btw_nummer", "btw_nr", "vat"]),
];

fn parse_target(schema: &Schema, raw: &str) -> Result<Option<Target>> {
    let t = schema.t;
    let bad = || {
        Error::validation(
            "mapping",
            "unknown_field",
            format!("`{raw}` is not a field of a {}", t.as_str()),
        )
    };
    Ok(Some(match raw.trim() {
        "" => return Ok(None),
        "owner_email" => Target::OwnerEmail,
        "company_domain" if t == ObjectType::Contact => Target::CompanyDomain,
        "tags" => Target::Tags,
        f if f
            .strip_prefix("custom.")
            .is_some_and(|k| schema.custom.iter().any(|d| d.key == k)) =>
        {
            Target::Field(f.to_owned())
        }
        f if t.fields().iter().any(|s| s.name == f) => Target::Field(f.to_owned()),
        _ => return Err(bad()),
    }))
}

fn auto_target(schema: &Schema, header: &str) -> Option<Target> {
    let h = normalise_header(header);
    let t = schema.t;
    if let Ok(Some(target)) = parse_target(schema, &h) {
        return Some(target);
    }
    if let Some(k) = h.strip_prefix("custom_")
        && schema.custom.iter().any(|d| d.key == k)
    {
        return Some(Target::Field(format!("custom.{k}")));
    }
    if let Some(d) = schema.custom.iter().find(|d| d.key == h) {
        return Some(Target::Field(format!("custom.{}", d.key)));
    }
    match h.as_str() {
        "owner" | "eigenaar" | "owner_e_mail" => return Some(Target::OwnerEmail),
        "labels" | "tag" => return Some(Target::Tags),
        "company_website" | "bedrijfsdomein" if t == ObjectType::Contact => {
            return Some(Target::CompanyDomain);
        }
        _ => {}
    }
    ALIASES
        .iter()
        .find(|(_, names)| names.contains(&h.as_str()))
        .map(|(f, _)| *f)
        .filter(|f| t.fields().iter().any(|s| s.name == *f))
        .map(|f| Target::Field(f.to_owned()))
}

/// Maps every column to a target (or none), refusing ambiguous files before any row is read.
fn map_columns(
    schema: &Schema,
    names: &[String],
    mapping: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Option<Target>>> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for n in names {
        if seen.insert(n.as_str(), ()).is_some() {
            return Err(Error::validation(
                "file",
                "duplicate_column",
                format!("the header names the column `{n}` twice"),
            ));
        }
    }
    let targets: Vec<Option<Target>> = match mapping {
        Some(m) => {
            if let Some(missing) = m.keys().find(|k| !names.iter().any(|n| n == *k)) {
                return Err(Error::validation(
                    "mapping",
                    "unknown_column",
                    format!("the file has no column `{missing}`"),
                ));
            }
            names
                .iter()
                .map(|n| match m.get(n) {
                    Some(t) => parse_target(schema, t),
                    None => Ok(None),
                })
                .collect::<Result<_>>()?
        }
        None => names.iter().map(|n| auto_target(schema, n)).collect(),
    };
    let mut used: Vec<&Target> = Vec::new();
    for t in targets.iter().flatten() {
        if used.contains(&t) {
            return Err(Error::validation(
                "mapping",
                "duplicate_target",
                format!("two columns go to `{}`", t.name()),
            ));
        }
        used.push(t);
    }
    if used.is_empty() {
        return Err(Error::validation(
            "mapping",
            "no_columns",
            "no column matches a field; give a mapping",
        ));
    }
    Ok(targets)
}

/// A cell as the JSON value a custom field of `d`'s kind takes. Spreadsheet notations are
/// accepted: decimal commas, `ja`/`nee`, day-first dates, `;`-separated selections.
fn custom_value(d: &CustomDef, s: &str) -> std::result::Result<Value, &'static str> {
    let s = s.trim();
    Ok(match d.kind {
        CustomKind::Number => {
            let n = parse_decimal(s).ok_or("invalid_number")?;
            json!(n)
        }
        CustomKind::Currency => json!(parse_minor(s).ok_or("invalid_amount")?),
        CustomKind::Boolean => match s.to_lowercase().as_str() {
            "true" | "yes" | "ja" | "waar" | "1" | "y" | "j" | "x" => json!(true),
            "false" | "no" | "nee" | "onwaar" | "0" | "n" => json!(false),
            _ => return Err("invalid_boolean"),
        },
        CustomKind::Date => json!(parse_date(s).ok_or("invalid_date")?),
        CustomKind::MultiSelect => json!(
            s.split([';', '|'])
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
        ),
        _ => json!(s),
    })
}

/// `1234.5`, `1234,5`, `1.234,56`, `1,234.56`, `-3`.
fn parse_decimal(s: &str) -> Option<f64> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .collect();
    let normalised = if let Some(last_sep) = s.rfind([',', '.'])
        && s.contains(',')
        && s.contains('.')
    {
        let (int, frac) = s.split_at(last_sep);
        format!("{}.{}", int.replace([',', '.'], ""), &frac[1..])
    } else if s.matches(',').count() == 1 {
        s.replace(',', ".")
    } else {
        s.clone()
    };
    normalised.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// An amount with at most two decimals as minor units: `12,50` -> 1250.
fn parse_minor(s: &str) -> Option<i64> {
    let s = s.trim_start_matches(['€', '$', '£']).trim();
    let plain = if s.contains([',', '.']) {
        let n = parse_decimal(s)?;
        let cents = (n * 100.0).round();
        if (cents / 100.0 - n).abs() > 1e-9 * n.abs().max(1.0) {
            return None;
        }
        return (cents.abs() < 1e18).then_some(cents as i64);
    } else {
        s
    };
    plain.parse::<i64>().ok()?.checked_mul(100)
}

/// `2026-11-25`, or day-first `25-11-2026` / `25/11/2026` / `25.11.2026`.
fn parse_date(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let (y, m, d): (i32, u8, u8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let month = time::Month::try_from(m).ok()?;
    let date = time::Date::from_calendar_date(y, month, d).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Per-transaction lookups that many rows share.
#[derive(Default)]
struct Caches {
    owners: HashMap<String, Option<UserId>>,
    companies: HashMap<String, Option<RecordId>>,
    tags: Option<HashMap<Vec<u8>, TagId>>,
    /// Owners, companies and tags verified in this transaction.
    checked: super::Checked,
}

enum Outcome {
    Created,
    Updated,
    /// An update that would change nothing (the row repeats what the record holds).
    Unchanged,
    Skipped,
}

/// The column an error is about, from the field path core errors carry.
fn error_column(
    names: &[String],
    targets: &[Option<Target>],
    field: Option<&str>,
) -> Option<String> {
    let field = field?;
    let wanted = match field {
        "owner_id" => Target::OwnerEmail,
        "company_id" => Target::CompanyDomain,
        "tag_ids" => Target::Tags,
        f => Target::Field(f.strip_prefix("fields.").unwrap_or(f).to_owned()),
    };
    targets
        .iter()
        .position(|t| t.as_ref() == Some(&wanted))
        .map(|i| names[i].clone())
}

/// Errors about one row's data; anything else (storage, keys) stops the import.
fn is_row_error(e: &Error) -> bool {
    matches!(
        e.kind,
        ErrorKind::Validation | ErrorKind::Conflict | ErrorKind::BadRequest
    )
}

impl Kluis {
    /// Imports a CSV file of contacts or companies. Needs the import permission (owners,
    /// admins, managers; API keys with `crm:import`). The import and its outcome are audited,
    /// and so is every record it creates or changes.
    ///
    /// Returns the report; `Err` only for requests refused before reading rows (permission,
    /// options, header/mapping problems).
    pub async fn import_records(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        opts: ImportOptions,
        input: Box<dyn Read + Send>,
    ) -> Result<ImportReport> {
        self.may_import(actor)?;
        let t = opts.object_type;
        // An import creates and may update any record of the type (matching rows by email or
        // domain), so it needs those rights and record scope "all".
        let access = self.access(actor).await?;
        for r in [Right::Import, Right::Create, Right::Update] {
            access.require(t, r)?;
        }
        access.require_every_record()?;
        if !access.fields(t).is_empty() {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "field_read_only",
                "your role may not write some fields of this type, so it cannot import",
            ));
        }
        if !matches!(t, ObjectType::Contact | ObjectType::Company) {
            return Err(Error::validation(
                "object_type",
                "import_not_supported",
                "import supports contacts and companies",
            ));
        }
        let delimiter = parse_delimiter(opts.delimiter.as_deref())?;
        let schema = {
            let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
            self.keys(&mut tx).await?;
            self.schema(&mut tx, t).await?
        };
        let (sender, mut rx) = tokio::sync::mpsc::channel(4);
        let encoding = opts.encoding;
        let parser = tokio::task::spawn_blocking(move || parse(input, delimiter, encoding, sender));
        let id = Uuid::new_v4();
        let header = rx.recv().await;
        let (names, delimiter) = match header {
            Some(Msg::Header { names, delimiter }) => (names, delimiter),
            Some(Msg::Fatal(e)) => {
                return Err(Error::new(
                    ErrorKind::Validation,
                    match e.code.as_str() {
                        "empty_file" => "empty_file",
                        "invalid_encoding" => "invalid_encoding",
                        "file_too_large" => "file_too_large",
                        "row_too_large" => "row_too_large",
                        _ => "invalid_csv",
                    },
                    e.message,
                )
                .with_field("file"));
            }
            _ => return Err(Error::internal("import parser stopped")),
        };
        let targets = map_columns(&schema, &names, opts.mapping.as_ref())?;
        let report = Arc::new(Mutex::new(ImportReport {
            id,
            object_type: t,
            status: ImportStatus::Running,
            dry_run: opts.dry_run,
            mode: opts.mode,
            on_duplicate: opts.on_duplicate,
            encoding,
            delimiter: delimiter_name(delimiter),
            columns: names
                .iter()
                .zip(&targets)
                .map(|(n, t)| ColumnMapping {
                    column: n.clone(),
                    target: t.as_ref().map(Target::name),
                })
                .collect(),
            rows: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            skipped: 0,
            failed: 0,
            committed: 0,
            errors: Vec::new(),
            errors_not_shown: 0,
            fatal: None,
            started_at: rfc3339(self.now()),
            finished_at: None,
        }));
        self.track_import(actor.tenant(), id, report.clone());
        let run = Run {
            actor,
            ctx,
            schema: &schema,
            names: &names,
            targets: &targets,
            opts: &opts,
            id,
            report: &report,
        };
        let outcome = self.run_import(&run, &mut rx).await;
        drop(rx);
        let _ = parser.await;
        let mut r = lock(&report).clone();
        let open = match outcome {
            Ok(open) => open,
            Err(e) => {
                // Storage or key failure: nothing of the open transaction was kept.
                tracing::error!(import = %id, error = %e, "import stopped");
                r.fatal.get_or_insert(row_error(
                    r.rows + 1,
                    None,
                    e.code,
                    "the import stopped because of a server error",
                ));
                None
            }
        };
        // All-or-nothing: the import's own event commits in the transaction of its rows, so
        // the rows are never kept without it, and the answer is what that COMMIT did.
        if let Some((mut tx, keys, written)) = open {
            let mut done = r.clone();
            done.committed += written;
            done.status = ImportStatus::Committed;
            done.finished_at = Some(rfc3339(self.now()));
            let ev = import_event(&done);
            let committed = async {
                self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                    .await?;
                tx.commit().await?;
                Ok::<(), Error>(())
            }
            .await;
            match committed {
                Ok(()) => {
                    *lock(&report) = done.clone();
                    self.finish_tracking(id);
                    self.checkpoint_soon(actor.tenant());
                    return Ok(done);
                }
                Err(e) => {
                    tracing::error!(import = %id, error = %e, "import commit failed");
                    r.fatal.get_or_insert(row_error(
                        r.rows + 1,
                        None,
                        e.code,
                        "the import stopped because of a server error; nothing was imported",
                    ));
                }
            }
        }
        r.status = if r.fatal.is_some() {
            ImportStatus::Failed
        } else if opts.dry_run {
            ImportStatus::DryRun
        } else if r.failed > 0 && opts.mode == ImportMode::AllOrNothing {
            ImportStatus::RolledBack
        } else {
            ImportStatus::Committed
        };
        r.finished_at = Some(rfc3339(self.now()));
        *lock(&report) = r.clone();
        self.finish_tracking(id);
        self.audit_import(actor, ctx, &r).await?;
        Ok(r)
    }

    /// Reads and writes the rows. An all-or-nothing import without row errors returns its
    /// transaction still open (with its keys and the number of records written): the caller
    /// adds the import's event and commits.
    async fn run_import(
        &self,
        run: &Run<'_>,
        rx: &mut tokio::sync::mpsc::Receiver<Msg>,
    ) -> Result<Option<(TenantTx, Arc<TenantKeys>, u64)>> {
        let single = run.opts.dry_run || run.opts.mode == ImportMode::AllOrNothing;
        let mut open: Option<(TenantTx, Arc<TenantKeys>, Caches, u64)> = None;
        while let Some(msg) = rx.recv().await {
            let rows = match msg {
                Msg::Rows(rows) => rows,
                Msg::Fatal(e) => {
                    lock(run.report).fatal = Some(e);
                    return Ok(None);
                }
                Msg::Header { .. } => return Err(Error::internal("second header")),
            };
            if open.is_none() {
                let mut tx = self.store.tenant(run.actor.tenant()).begin_bulk().await?;
                let keys = self.keys(&mut tx).await?;
                open = Some((tx, keys, Caches::default(), 0));
            }
            let Some((tx, keys, caches, written)) = open.as_mut() else {
                return Err(Error::internal("import transaction"));
            };
            let outcomes = self.import_batch(run, tx, keys, caches, rows).await?;
            for result in outcomes {
                let mut r = lock(run.report);
                r.rows += 1;
                match result {
                    Ok(Outcome::Created) => {
                        r.created += 1;
                        *written += 1;
                    }
                    Ok(Outcome::Updated) => {
                        r.updated += 1;
                        *written += 1;
                    }
                    Ok(Outcome::Skipped) => r.skipped += 1,
                    Ok(Outcome::Unchanged) => r.unchanged += 1,
                    Err(e) => {
                        r.failed += 1;
                        if r.errors.len() < MAX_REPORTED_ERRORS {
                            r.errors.push(e);
                        } else {
                            r.errors_not_shown += 1;
                        }
                    }
                }
            }
            if !single && let Some((tx, _, _, written)) = open.take() {
                tx.commit().await?;
                lock(run.report).committed += written;
            }
        }
        let failed = lock(run.report).failed;
        if let Some((tx, keys, _, written)) = open.take()
            && !run.opts.dry_run
            && failed == 0
        {
            return Ok(Some((tx, keys, written)));
        }
        Ok(None)
    }

    /// One batch of rows, in order: inputs and checks row by row, the duplicate check for the
    /// whole batch in one query per unique field, new records written together.
    async fn import_batch(
        &self,
        run: &Run<'_>,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        caches: &mut Caches,
        rows: Vec<std::result::Result<Parsed, RowError>>,
    ) -> Result<Vec<std::result::Result<Outcome, RowError>>> {
        let schema = run.schema;
        let t = schema.t;
        let as_row_error = |row: u64, e: Error| -> Result<RowError> {
            if !is_row_error(&e) {
                return Err(e);
            }
            Ok(row_error(
                row,
                error_column(run.names, run.targets, e.field.as_deref()).as_deref(),
                e.code,
                e.message,
            ))
        };
        // Pass 1: inputs and their unique blind indexes.
        let unique = schema.unique_fields();
        let mut staged = Vec::with_capacity(rows.len());
        for parsed in rows {
            let p = match parsed {
                Ok(p) => p,
                Err(e) => {
                    staged.push(Err(e));
                    continue;
                }
            };
            let input = match self.row_input(run, tx, keys, caches, &p).await {
                Ok(i) => i,
                Err(e) => {
                    staged.push(Err(as_row_error(p.row, e)?));
                    continue;
                }
            };
            let keys_of_row: Vec<(String, [u8; 32])> =
                match fields::apply(schema, &Map::new(), &input.fields) {
                    Ok(f) => lookups(keys, schema, &f)
                        .into_iter()
                        .filter(|(name, _)| unique.contains(name))
                        .collect(),
                    Err(e) => {
                        staged.push(Err(as_row_error(p.row, e)?));
                        continue;
                    }
                };
            staged.push(Ok((p.row, input, keys_of_row)));
        }
        // The batch's duplicates among live records: one query per unique field.
        let mut existing: HashMap<(String, [u8; 32]), RecordId> = HashMap::new();
        for field in &unique {
            let bidxs: Vec<Vec<u8>> = staged
                .iter()
                .flatten()
                .flat_map(|(_, _, ks)| ks.iter())
                .filter(|(f, _)| f == field)
                .map(|(_, b)| b.to_vec())
                .collect();
            if bidxs.is_empty() {
                continue;
            }
            for (bidx, id) in tx.lookup_live_many(t.as_str(), field, &bidxs).await? {
                if let Ok(b) = <[u8; 32]>::try_from(bidx.as_slice()) {
                    existing.entry((field.clone(), b)).or_insert(id);
                }
            }
        }
        // Pass 2: decide row by row, in file order.
        let dedupe = t.dedupe_field();
        let mut pending: Vec<super::PreparedCreate> = Vec::new();
        let mut out = Vec::with_capacity(staged.len());
        for s in staged {
            let (row, input, ks) = match s {
                Ok(s) => s,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let clash = ks
                .iter()
                .find_map(|k| existing.get(k).map(|id| (k.0.as_str(), *id)));
            if let Some((field, id)) = clash {
                let on_dedupe_field = Some(field) == dedupe;
                match run.opts.on_duplicate {
                    OnDuplicate::Skip if on_dedupe_field => {
                        out.push(Ok(Outcome::Skipped));
                        continue;
                    }
                    OnDuplicate::Update if on_dedupe_field => {
                        // Earlier rows of this batch first: the record may be one of them.
                        let batch = std::mem::take(&mut pending);
                        self.write_creates(tx, keys, run.actor, run.ctx, t, batch, self.now())
                            .await?;
                        let current = tx
                            .record(t.as_str(), id)
                            .await?
                            .ok_or_else(|| Error::internal("duplicate vanished"))?;
                        let done = self
                            .update_in(
                                tx,
                                keys,
                                schema,
                                run.actor,
                                run.ctx,
                                &current,
                                &input,
                                Some(run.id),
                            )
                            .await;
                        out.push(match done {
                            Ok(true) => Ok(Outcome::Updated),
                            Ok(false) => Ok(Outcome::Unchanged),
                            Err(e) => Err(as_row_error(row, e)?),
                        });
                        continue;
                    }
                    _ => {
                        let e = Error::new(
                            ErrorKind::Conflict,
                            "duplicate",
                            format!("a {} with this {field} already exists: {id}", t.as_str()),
                        )
                        .with_field(format!("fields.{field}"));
                        out.push(Err(as_row_error(row, e)?));
                        continue;
                    }
                }
            }
            let id = RecordId::new();
            caches.checked.duplicates = true;
            let prepared = self
                .prepare_create(
                    tx,
                    keys,
                    schema,
                    run.actor,
                    id,
                    &input,
                    Some(run.id),
                    &mut caches.checked,
                )
                .await;
            match prepared {
                Ok(rec) => {
                    for k in ks {
                        existing.insert(k, id);
                    }
                    pending.push(rec);
                    out.push(Ok(Outcome::Created));
                }
                Err(e) => out.push(Err(as_row_error(row, e)?)),
            }
        }
        self.write_creates(tx, keys, run.actor, run.ctx, t, pending, self.now())
            .await?;
        Ok(out)
    }

    /// A row's cells as the input of a create or update: custom values in their types, owner,
    /// company and tags looked up.
    async fn row_input(
        &self,
        run: &Run<'_>,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        caches: &mut Caches,
        p: &Parsed,
    ) -> Result<RecordInput> {
        let schema = run.schema;
        let mut input = RecordInput::default();
        for (i, cell) in p.cells.iter().enumerate() {
            let Some(target) = &run.targets[i] else {
                continue;
            };
            let cell = unneutralise(cell.trim());
            if cell.is_empty() {
                continue;
            }
            match target {
                Target::Field(f) => {
                    let v = match f.strip_prefix("custom.") {
                        Some(k) => {
                            let d = schema
                                .custom
                                .iter()
                                .find(|d| d.key == k)
                                .ok_or_else(|| Error::internal("custom field vanished"))?;
                            custom_value(d, cell).map_err(|code| {
                                Error::validation(
                                    &format!("fields.{f}"),
                                    code,
                                    "not a value this field takes",
                                )
                            })?
                        }
                        None => Value::String(cell.to_owned()),
                    };
                    input.fields.insert(f.clone(), v);
                }
                Target::OwnerEmail => {
                    let owner = self.owner_by_email(tx, keys, caches, cell).await?;
                    input.owner_id = Some(Some(owner));
                }
                Target::CompanyDomain => {
                    let company = self.company_by_domain(tx, keys, caches, cell).await?;
                    input.company_id = Some(Some(company));
                }
                Target::Tags => {
                    input.tag_ids = Some(self.tags_by_name(tx, keys, caches, cell).await?);
                }
            }
        }
        Ok(input)
    }

    async fn owner_by_email(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        caches: &mut Caches,
        email: &str,
    ) -> Result<UserId> {
        // Not an address: no user can have it.
        let email = kluis_types::Email::parse(email).map_err(|_| unknown_owner())?;
        let key = email.as_str().to_owned();
        if let Some(hit) = caches.owners.get(&key) {
            return hit.ok_or_else(unknown_owner);
        }
        let found = tx
            .user_by_email_index(&keys.email_index(&email))
            .await?
            .filter(|u| u.status.is_active())
            .map(|u| u.id);
        caches.owners.insert(key, found);
        if let Some(id) = found {
            caches.checked.owners.insert(id);
        }
        found.ok_or_else(unknown_owner)
    }

    async fn company_by_domain(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        caches: &mut Caches,
        domain: &str,
    ) -> Result<RecordId> {
        let unknown = || {
            Error::validation(
                "company_id",
                "unknown_company",
                "no company with this domain in your organisation",
            )
        };
        let key = domain.trim().to_lowercase();
        if let Some(hit) = caches.companies.get(&key) {
            return hit.ok_or_else(unknown);
        }
        let schema = Schema {
            t: ObjectType::Company,
            custom: Vec::new(),
        };
        let mut f = Map::new();
        f.insert("domain".into(), Value::String(key.clone()));
        let f = fields::apply(&schema, &Map::new(), &f).map_err(|_| unknown())?;
        let found = match lookups(keys, &schema, &f)
            .into_iter()
            .find(|(n, _)| n == "domain")
        {
            Some((_, bidx)) => tx
                .lookup_live(ObjectType::Company.as_str(), "domain", &bidx)
                .await?
                .into_iter()
                .next(),
            None => None,
        };
        caches.companies.insert(key, found);
        if let Some(id) = found {
            caches.checked.companies.insert(id);
        }
        found.ok_or_else(unknown)
    }

    async fn tags_by_name(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        caches: &mut Caches,
        cell: &str,
    ) -> Result<Vec<TagId>> {
        if caches.tags.is_none() {
            let all = tx.tags(false).await?;
            caches.checked.tags.extend(all.iter().map(|t| t.id));
            caches.tags = Some(all.into_iter().map(|t| (t.name_bidx, t.id)).collect());
        }
        let known = caches
            .tags
            .as_ref()
            .ok_or_else(|| Error::internal("tags"))?;
        let mut ids = Vec::new();
        for name in cell
            .split([';', ','])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let bidx = super::tags::name_bidx(keys, name);
            match known.get(&bidx) {
                Some(id) if !ids.contains(id) => ids.push(*id),
                Some(_) => {}
                None => {
                    return Err(Error::validation(
                        "tag_ids",
                        "unknown_tag",
                        "no tag with this name; create it first",
                    ));
                }
            }
        }
        Ok(ids)
    }

    /// The import as one audit event: options, columns and counts (no cell values).
    async fn audit_import(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        r: &ImportReport,
    ) -> Result<()> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = import_event(r);
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        // A bulk operation: its events get a checkpoint now, not a timer tick later.
        self.checkpoint_soon(actor.tenant());
        Ok(())
    }

    /// Whether `actor` may import (writes records in bulk): checked before an upload is taken.
    pub fn may_import(&self, actor: &Actor) -> Result<()> {
        actor.require(Permission::CrmWrite)?;
        actor.require(Permission::CrmImport)
    }

    fn track_import(&self, tenant: TenantId, id: Uuid, report: Arc<Mutex<ImportReport>>) {
        let now = self.now();
        let mut all = lock(&self.imports.running);
        all.retain(|_, t| t.finished_at.is_none_or(|at| now - at < KEEP_FINISHED_MS));
        all.insert(
            id,
            Tracked {
                tenant,
                report,
                finished_at: None,
            },
        );
    }

    fn finish_tracking(&self, id: Uuid) {
        let now = self.now();
        if let Some(t) = lock(&self.imports.running).get_mut(&id) {
            t.finished_at = Some(now);
        }
    }

    /// Imports of the caller's organisation that run in this server process or finished here
    /// in the last 24 hours, newest first, with their progress.
    pub fn list_imports(&self, actor: &Actor) -> Result<Vec<ImportReport>> {
        actor.require(Permission::CrmImport)?;
        let all = lock(&self.imports.running);
        let mut out: Vec<ImportReport> = all
            .values()
            .filter(|t| t.tenant == actor.tenant())
            .map(|t| lock(&t.report).clone())
            .collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        Ok(out)
    }

    /// One import's report or progress (404 for other organisations' imports).
    pub fn get_import(&self, actor: &Actor, id: Uuid) -> Result<ImportReport> {
        actor.require(Permission::CrmImport)?;
        let all = lock(&self.imports.running);
        all.get(&id)
            .filter(|t| t.tenant == actor.tenant())
            .map(|t| lock(&t.report).clone())
            .ok_or_else(Error::not_found)
    }
}

/// The import as one audit event: options, columns and counts (no cell values).
fn import_event(r: &ImportReport) -> Event<'static> {
    Event {
        action: "crm.import",
        success: matches!(r.status, ImportStatus::Committed | ImportStatus::DryRun),
        object_type: Some(r.object_type.as_str()),
        object_id: Some(r.id.to_string()),
        details: json!({
            "status": r.status, "dry_run": r.dry_run, "mode": r.mode,
            "on_duplicate": r.on_duplicate, "encoding": r.encoding, "delimiter": r.delimiter,
            "columns": r.columns, "rows": r.rows, "created": r.created, "updated": r.updated,
            "skipped": r.skipped, "failed": r.failed, "committed": r.committed,
            "fatal": r.fatal.as_ref().map(|f| &f.code),
        }),
    }
}

fn unknown_owner() -> Error {
    Error::validation(
        "owner_id",
        "unknown_user",
        "no active user with this email in your organisation",
    )
}

/// What every row of one import shares.
struct Run<'a> {
    actor: &'a Actor,
    ctx: &'a RequestContext,
    schema: &'a Schema,
    names: &'a [String],
    targets: &'a [Option<Target>],
    opts: &'a ImportOptions,
    id: Uuid,
    report: &'a Arc<Mutex<ImportReport>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_formula_guards_come_off_on_import() {
        assert_eq!(unneutralise("'+31612345678"), "+31612345678");
        assert_eq!(unneutralise("'=1+1"), "=1+1");
        assert_eq!(unneutralise("'-"), "-");
        assert_eq!(
            unneutralise("'t Hooft"),
            "'t Hooft",
            "a Dutch name keeps its apostrophe"
        );
        assert_eq!(unneutralise("O'Brien"), "O'Brien");
    }

    #[test]
    fn delimiter_follows_the_header() {
        assert_eq!(detect_delimiter(b"Voornaam;Achternaam;E-mail\r\n"), b';');
        assert_eq!(detect_delimiter(b"first,last,email\n"), b',');
        assert_eq!(detect_delimiter(b"\"a;b\",c,d\n"), b',');
        assert_eq!(detect_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(detect_delimiter(b"email\n"), b',');
    }

    #[test]
    fn head_stops_at_the_first_line_end_outside_quotes() {
        let mut r = io::Cursor::new(b"\"a\nb\";c\nrow2\n".to_vec());
        let (head, rest) = read_head(&mut r).unwrap();
        assert_eq!(head, b"\"a\nb\";c\n");
        assert_eq!(rest, b"row2\n");
    }

    #[test]
    fn spreadsheet_numbers_dates_and_booleans() {
        assert_eq!(parse_decimal("1.234,56"), Some(1234.56));
        assert_eq!(parse_decimal("1,234.56"), Some(1234.56));
        assert_eq!(parse_decimal("12,5"), Some(12.5));
        assert_eq!(parse_decimal("-3"), Some(-3.0));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_minor("12,50"), Some(1250));
        assert_eq!(parse_minor("€ 1.000,00"), Some(100_000));
        assert_eq!(parse_minor("7"), Some(700));
        assert_eq!(parse_minor("1,234"), None);
        assert_eq!(parse_date("25-11-2026").as_deref(), Some("2026-11-25"));
        assert_eq!(parse_date("2026-11-25").as_deref(), Some("2026-11-25"));
        assert_eq!(parse_date("5/1/2026").as_deref(), Some("2026-01-05"));
        assert_eq!(parse_date("31-02-2026"), None);
    }

    #[test]
    fn dutch_headers_map_to_fields() {
        let schema = Schema {
            t: ObjectType::Contact,
            custom: Vec::new(),
        };
        let names: Vec<String> = ["Voornaam", "Achternaam", "E-mailadres", "Postcode", "Fax"]
            .map(String::from)
            .to_vec();
        let t = map_columns(&schema, &names, None).unwrap();
        assert_eq!(t[0], Some(Target::Field("first_name".into())));
        assert_eq!(t[2], Some(Target::Field("email".into())));
        assert_eq!(t[3], Some(Target::Field("postal_code".into())));
        assert_eq!(t[4], None);
        let dup: Vec<String> = ["email", "E-mail"].map(String::from).to_vec();
        assert_eq!(
            map_columns(&schema, &dup, None).unwrap_err().code,
            "duplicate_target"
        );
    }
}
