//! Every integration test of `tsunagu-synth` in one binary: one link instead of 2, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod determinism;
mod validates;
