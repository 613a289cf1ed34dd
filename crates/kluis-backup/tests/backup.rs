//! The crate's one integration-test binary: each module is one area of the backup suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "backup/pg.rs"]
mod pg;
