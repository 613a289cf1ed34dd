//! End-to-end tests: start the real `kluis` binary (HTTPS, real database) and talk to it
//! over TLS, on SQLite and on a PostgreSQL cluster started by kluis-testkit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/a11y_pages.rs"]
mod a11y_pages;
#[path = "e2e/allowlist.rs"]
mod allowlist;
#[path = "e2e/api.rs"]
mod api;
#[path = "e2e/audit.rs"]
mod audit;
#[path = "e2e/backup.rs"]
mod backup;
#[path = "e2e/boards_pages.rs"]
mod boards_pages;
#[path = "e2e/crm.rs"]
mod crm;
#[path = "e2e/early.rs"]
mod early;
#[path = "e2e/encryption.rs"]
mod encryption;
#[path = "e2e/files.rs"]
mod files;
#[path = "e2e/hardening.rs"]
mod hardening;
#[path = "e2e/import.rs"]
mod import;
#[path = "e2e/isolation.rs"]
mod isolation;
#[path = "e2e/isolation_pages.rs"]
mod isolation_pages;
#[path = "e2e/mail.rs"]
mod mail;
#[path = "e2e/metrics.rs"]
mod metrics;
#[path = "e2e/mfa.rs"]
mod mfa;
#[path = "e2e/pages.rs"]
mod pages;
#[path = "e2e/passkeys.rs"]
mod passkeys;
#[path = "e2e/peppered.rs"]
mod peppered;
#[path = "e2e/permissions.rs"]
mod permissions;
#[path = "e2e/privacy.rs"]
mod privacy;
#[path = "e2e/ratelimit.rs"]
mod ratelimit;
#[path = "e2e/record_pages.rs"]
mod record_pages;
#[path = "e2e/retention_pages.rs"]
mod retention_pages;
#[path = "e2e/saml.rs"]
mod saml;
#[path = "e2e/scim.rs"]
mod scim;
#[path = "e2e/secrets.rs"]
mod secrets;
#[path = "e2e/server.rs"]
mod server;
#[path = "e2e/settings_pages.rs"]
mod settings_pages;
#[path = "e2e/sso.rs"]
mod sso;
#[path = "e2e/status.rs"]
mod status;
#[path = "e2e/support_access.rs"]
mod support_access;
#[path = "e2e/tables_pages.rs"]
mod tables_pages;
#[path = "e2e/tls.rs"]
mod tls;
#[path = "e2e/witness.rs"]
mod witness;
