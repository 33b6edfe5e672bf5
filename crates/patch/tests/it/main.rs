//! Every integration test of `tsunagu-patch` in one binary: one link instead of 2, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod fhirpath_patch_suite;
mod json_patch_suite;
