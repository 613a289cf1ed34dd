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

/// One CSV line (RFC 4180 quoting by the `csv` crate), cells neutralised.
pub fn csv_row<S: AsRef<str>>(cells: &[S]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(cells.iter().map(|c| neutralise(c.as_ref()).into_owned()));
    w.into_inner().unwrap_or_default()
}

/// Streams the pages `next` yields as a download named `name.<ext>`. `render` turns one item into
/// a CSV line (for CSV; `csv_header` is sent first) and JSON Lines use the item's JSON.
pub fn download<St, T, F, Fut>(
    name: &str,
    format: Format,
    csv_header: Vec<u8>,
    state: St,
    next: F,
    render_csv: fn(&T) -> Vec<u8>,
) -> Response
where
    St: Send + 'static,
    T: serde::Serialize + Send + 'static,
    F: Fn(St) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = (kluis_core::Result<Option<Vec<T>>>, St)> + Send + 'static,
{
    let header_row = (format == Format::Csv).then_some(csv_header);
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
                            Format::Csv => chunk.extend(render_csv(item)),
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
