//! Every integration test of `tsunagu-server` in one binary: one link instead of 12, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod common;

mod access;
mod bulk_export;
mod bundles;
mod clins;
mod concurrency;
mod interactions;
mod r4_examples;
mod required_profiles;
mod search;
mod terminology;
mod tls;
mod views;
