pub mod account_links;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod files;
pub mod health;
pub mod imports;
pub mod incidents;
pub mod keys;
pub mod passkeys;
pub mod platform;
pub mod privacy;
pub mod records;
pub mod roles;
pub mod saml;
pub mod scim;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod status;
pub mod support;
pub mod users;

use serde::Deserialize;

/// `?cursor=...&limit=...` on list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub limit: Option<u32>,
}
