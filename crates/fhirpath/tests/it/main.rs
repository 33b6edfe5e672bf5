//! Every integration test of `tsunagu-fhirpath` in one binary: one link instead of 5, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod fhirpath3;
mod props;
mod r4_suite;
mod search_params;
mod semantics;
