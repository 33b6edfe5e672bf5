//! Every integration test of `tsunagu` (the CLI) in one binary: one link instead of 10, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod common;

mod audit;
mod backup;
mod check;
mod clins_crash;
mod crash;
mod crash_postgres;
mod hostile;
mod import_postgres;
mod packages;
mod view;
