//! Every integration test of `tsunagu-view` in one binary: one link instead of 3, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod parquet_roundtrip;
mod sql_on_fhir;
mod views;
