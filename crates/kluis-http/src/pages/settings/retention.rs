//! Trash retention on the settings page: how many days deleted records stay restorable in
//! this organisation's trash (1 to 365), or the server's default. Calls the same
//! `kluis-core` service as `PUT /api/v1/settings/trash-retention` (settings permission,
//! validation, audit event `settings.trash_retention.update`).

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use kluis_core::settings::TrashRetentionDoc;
use serde::Deserialize;

use super::{done, poster, show_index};
use crate::AppState;
use crate::auth::Ctx;
use crate::pages::i18n::Lang;

/// This form's strings (kept out of the shared tables so slices do not collide).
pub struct RetentionText {
    pub label: &'static str,
    pub hint: &'static str,
    pub days: &'static str,
}

const EN: RetentionText = RetentionText {
    label: "Days deleted records stay in the trash",
    hint: "1 to 365. Leave empty for the server's default (30 days unless the operator set trash_retention_days). Records older than this are removed for good by the daily retention job.",
    days: "days",
};

const NL: RetentionText = RetentionText {
    label: "Dagen dat verwijderde records in de prullenbak blijven",
    hint: "1 tot en met 365. Laat leeg voor de standaard van de server (30 dagen, tenzij de beheerder trash_retention_days anders heeft ingesteld). Oudere records worden door de dagelijkse opruimtaak definitief verwijderd.",
    days: "dagen",
};

impl RetentionText {
    pub fn of(lang: Lang) -> &'static RetentionText {
        match lang {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RetentionForm {
    csrf: String,
    #[serde(default)]
    days: String,
}

pub async fn update(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Form(f): Form<RetentionForm>,
) -> Response {
    let w = match poster(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let days = f.days.trim();
    let days = if days.is_empty() {
        None
    } else {
        // Anything that is no small whole number is out of range for the service to refuse.
        Some(days.parse::<u16>().unwrap_or(0))
    };
    match s
        .kluis
        .set_trash_retention_setting(&w.user.actor, &c, TrashRetentionDoc { days })
        .await
    {
        Ok(_) => done("/settings", "saved"),
        Err(e) => {
            let (st, n) = w.error(e);
            show_index(&s, &w, st, n).await
        }
    }
}
