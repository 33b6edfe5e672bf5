//! Every integration test of `tsunagu-store-postgres` in one binary: one link instead of 5, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod differential;
mod import;
mod pinned_versions_postgres;
mod postgres;
mod suite_postgres;
