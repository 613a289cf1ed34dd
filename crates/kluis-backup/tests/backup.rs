//! The crate's one integration-test binary: one `#[path]` module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "backup/contract.rs"]
mod contract;
#[path = "backup/local.rs"]
mod local;
#[path = "backup/pg.rs"]
mod pg;
#[path = "backup/retention.rs"]
mod retention;
#[path = "backup/s3.rs"]
mod s3;
#[path = "backup/sqlite.rs"]
mod sqlite;
