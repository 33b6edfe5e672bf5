//! Every integration test of `tsunagu-terminology` in one binary: one link instead of 3, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod large_code_system;
mod masters;
mod packages;
