//! Every integration test of `tsunagu-format` in one binary: one link instead of 5, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod formats;
mod narrative;
mod r4_examples;
mod shaping;
mod structure;
