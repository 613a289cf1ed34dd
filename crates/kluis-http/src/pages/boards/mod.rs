//! Boards (deals and tickets as kanban columns per pipeline), the dashboard (server-rendered
//! SVG charts), the import wizard and the export page. Every action is the `kluis-core`
//! service the JSON API calls: moving a card is `update_record` with the card's revision as
//! `If-Match`, the wizard runs `import_records`, the export links are the API's export.

mod board;
mod dashboard;
mod import;
pub mod text;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kluis_core::Actor;
use kluis_core::crm::{ObjectType, Record, RecordQuery};

use super::i18n::Lang;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deals/board", get(board::deals))
        .route("/deals/board/move", post(board::move_deal))
        .route("/tickets/board", get(board::tickets))
        .route("/tickets/board/move", post(board::move_ticket))
        .route("/dashboard", get(dashboard::page))
        .route("/import", get(import::start))
        .route(
            "/import/upload",
            post(import::upload).layer(DefaultBodyLimit::max(import::MAX_UPLOAD + 64 * 1024)),
        )
        .route("/import/{token}", get(import::mapping))
        .route("/import/{token}/check", post(import::check))
        .route("/import/{token}/run", post(import::run))
        .route("/import/status/{id}", get(import::status))
        .route("/export", get(import::export_page))
        .route("/assets/board.js", get(board_script))
        .route("/favicon.ico", get(favicon))
}

async fn board_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../../assets/board.js"),
    )
}

/// A small SVG icon (the Kluis "vault"), cacheable for a day.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../../assets/favicon.svg"),
    )
}

/// The most records a board or chart reads (pages of 200 through the list service).
const MAX_RECORDS: usize = 2000;

/// Every live record matching `q`, through the list service (permission checked, audited),
/// at most [`MAX_RECORDS`]; the flag says whether more were left out.
async fn all_records(
    s: &AppState,
    actor: &Actor,
    ctx: &kluis_core::RequestContext,
    t: ObjectType,
    q: RecordQuery,
) -> kluis_core::Result<(Vec<Record>, bool)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s
            .kluis
            .list_records(actor, ctx, t, q.clone(), cursor.as_deref(), Some(200))
            .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) if out.len() < MAX_RECORDS => cursor = Some(c),
            Some(_) => return Ok((out, true)),
            None => return Ok((out, false)),
        }
    }
}

/// Money in minor units: nl `€ 1.234,50`, en `€1,234.50`. (Local until the shared
/// `pages/format.rs` lands; same behaviour.)
pub(crate) fn money(lang: Lang, minor: i64, currency: &str) -> String {
    let neg = minor < 0;
    let abs = minor.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    let digits = units.to_string();
    let (group, decimal) = match lang {
        Lang::Nl => ('.', ','),
        Lang::En => (',', '.'),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(c);
    }
    let symbol = match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        other => other,
    };
    let sep = if lang == Lang::Nl || symbol.len() > 2 && symbol.is_ascii() {
        " "
    } else {
        ""
    };
    let sign = if neg { "-" } else { "" };
    format!("{sign}{symbol}{sep}{grouped}{decimal}{cents:02}")
}

/// A date (`YYYY-MM-DD` or RFC 3339): nl `25-11-2026`, en `2026-11-25`.
pub(crate) fn date(lang: Lang, value: &str) -> String {
    let d = value.get(..10).unwrap_or(value);
    match (lang, d.split('-').collect::<Vec<_>>().as_slice()) {
        (Lang::Nl, [y, m, day]) => format!("{day}-{m}-{y}"),
        _ => d.to_owned(),
    }
}

/// Today's date `YYYY-MM-DD` (UTC).
fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_dates_in_both_languages() {
        assert_eq!(money(Lang::Nl, 123_450, "EUR"), "€ 1.234,50");
        assert_eq!(money(Lang::En, 123_450, "EUR"), "€1,234.50");
        assert_eq!(money(Lang::Nl, 5, "EUR"), "€ 0,05");
        assert_eq!(money(Lang::En, 100_000_000, "USD"), "$1,000,000.00");
        assert_eq!(money(Lang::En, -250, "EUR"), "-€2.50");
        assert_eq!(money(Lang::En, 250, "CHF"), "CHF 2.50");
        assert_eq!(date(Lang::Nl, "2026-11-25"), "25-11-2026");
        assert_eq!(date(Lang::En, "2026-11-25T10:00:00Z"), "2026-11-25");
        assert_eq!(date(Lang::Nl, "2026-11-25T10:00:00Z"), "25-11-2026");
    }
}
