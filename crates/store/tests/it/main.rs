//! Every integration test of `tsunagu-store` in one binary: one link instead of 3, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod pinned_versions_sqlite;
mod records;
mod suite_sqlite;
