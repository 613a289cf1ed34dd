//! The crate's one integration-test binary: each area of the backup suite is a module here.

#[path = "backup/contract.rs"]
mod contract;
#[path = "backup/s3.rs"]
mod s3;
