//! Streamed downloads (CSV or JSON Lines) of paged results: constant memory whatever the size,
//! and CSV cells that spreadsheet programs would execute are neutralised.

use std::future::Future;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// `jsonl` (default) or `csv`.
    pub fn parse(raw: Option<&str>) -> ApiResult<Format> {
        match raw.unwrap_or("jsonl") {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            _ => Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_format",
                "format must be `jsonl` or `csv`",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Spreadsheet programs execute cells starting with these; prefix them with `'` so an exported
/// value like `=HYPERLINK(...)` stays text.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// How a CSV file is written. Excel decides by locale: Dutch Excel splits on `;` (the comma is
/// its decimal separator) and reads a file without a byte-order mark as Windows-1252, so a
/// plain UTF-8 comma file opens as one garbled column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvStyle {
    pub delimiter: u8,
    /// Starts the file with a UTF-8 byte-order mark.
    pub bom: bool,
    /// Dutch column names (the ones the import recognises) and amounts with a decimal comma.
    pub dutch: bool,
}

impl CsvStyle {
    /// RFC 4180 as programs read it: `,`, no BOM, English column names.
    pub const PLAIN: CsvStyle = CsvStyle {
        delimiter: b',',
        bom: false,
        dutch: false,
    };
    /// What Dutch Excel opens as columns: `;`, a BOM, Dutch names, decimal commas.
    pub const DUTCH_EXCEL: CsvStyle = CsvStyle {
        delimiter: b';',
        bom: true,
        dutch: true,
    };

    /// `delimiter=,|;`, `bom=true|false`, `headers=en|nl` of an export; each bad value is
    /// refused naming its parameter.
    pub fn from_query(
        delimiter: Option<&str>,
        bom: Option<bool>,
        headers: Option<&str>,
    ) -> ApiResult<CsvStyle> {
        let delimiter = match delimiter {
            None | Some(",") => b',',
            Some(";") => b';',
            Some(_) => {
                return Err(kluis_core::Error::validation(
                    "delimiter",
                    "invalid_delimiter",
                    "delimiter must be `,` or `;`",
                )
                .into());
            }
        };
        let dutch = match headers {
            None | Some("en") => false,
            Some("nl") => true,
            Some(_) => {
                return Err(kluis_core::Error::validation(
                    "headers",
                    "invalid_headers",
                    "headers must be `en` or `nl`",
                )
                .into());
            }
        };
        Ok(CsvStyle {
            delimiter,
            bom: bom.unwrap_or(false),
            dutch,
        })
    }

    /// One CSV line (RFC 4180 quoting by the `csv` crate), cells neutralised.
    pub fn row<S: AsRef<str>>(self, cells: &[S]) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(Vec::new());
        let _ = w.write_record(cells.iter().map(|c| neutralise(c.as_ref()).into_owned()));
        w.into_inner().unwrap_or_default()
    }
}

/// One plain CSV line ([`CsvStyle::PLAIN`]).
pub fn csv_row<S: AsRef<str>>(cells: &[S]) -> Vec<u8> {
    CsvStyle::PLAIN.row(cells)
}

/// Turns one item into a CSV line in a style.
pub type CsvRenderer<T> = fn(&T, CsvStyle) -> Vec<u8>;

/// Streams the pages `next` yields as a download named `name.<ext>`. `render_csv` turns one item
/// into a CSV line in `style` (for CSV; `csv_header` is sent first, after a byte-order mark if
/// the style asks for one) and JSON Lines use the item's JSON.
pub fn download<St, T, F, Fut>(
    name: &str,
    format: Format,
    csv_header: Vec<u8>,
    state: St,
    next: F,
    (render_csv, style): (CsvRenderer<T>, CsvStyle),
) -> Response
where
    St: Send + 'static,
    T: serde::Serialize + Send + 'static,
    F: Fn(St) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = (kluis_core::Result<Option<Vec<T>>>, St)> + Send + 'static,
{
    let header_row = (format == Format::Csv).then(|| {
        let mut first = Vec::with_capacity(csv_header.len() + 3);
        if style.bom {
            first.extend_from_slice("\u{feff}".as_bytes());
        }
        first.extend(csv_header);
        first
    });
    let stream = futures_util::stream::unfold(
        (Some(state), header_row),
        move |(state, header)| async move {
            if let Some(h) = header {
                return Some((Ok::<_, std::io::Error>(h), (state, None)));
            }
            let (result, state) = next(state?).await;
            match result {
                Ok(Some(items)) => {
                    let mut chunk = Vec::new();
                    for item in &items {
                        match format {
                            Format::Csv => chunk.extend(render_csv(item, style)),
                            Format::Jsonl => {
                                if let Ok(line) = serde_json::to_vec(item) {
                                    chunk.extend(line);
                                    chunk.push(b'\n');
                                }
                            }
                        }
                    }
                    Some((Ok(chunk), (Some(state), None)))
                }
                Ok(None) => None,
                Err(e) => {
                    // Headers are already sent: end with an error so the client sees a broken
                    // download rather than a silently short one.
                    tracing::error!(error = %e, "export failed mid-stream");
                    Some((Err(std::io::Error::other("export failed")), (None, None)))
                }
            }
        },
    );
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    (
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_excel_rows_split_on_semicolons_and_keep_guards() {
        let row = CsvStyle::DUTCH_EXCEL.row(&["Zoë", "1234,50", "+31612345678", "a;b"]);
        assert_eq!(
            String::from_utf8(row).unwrap(),
            "Zoë;1234,50;'+31612345678;\"a;b\"\n"
        );
        assert_eq!(csv_row(&["a", "b,c"]), b"a,\"b,c\"\n");
    }

    #[test]
    fn a_bad_style_parameter_is_named() {
        for (d, h, field) in [
            (Some("|"), None, "delimiter"),
            (None, Some("fr"), "headers"),
        ] {
            let e = CsvStyle::from_query(d, None, h).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(
            CsvStyle::from_query(Some(";"), Some(true), Some("nl")).unwrap(),
            CsvStyle::DUTCH_EXCEL
        );
    }
}
