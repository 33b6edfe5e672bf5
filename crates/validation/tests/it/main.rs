//! Every integration test of `tsunagu-validation` in one binary: one link instead of 17, which
//! keeps the build's disk use and link time down. Each module is one former test file.

mod support;

mod agreement;
mod base_invariants;
mod bundles;
mod clins_examples;
mod conformance_resources;
mod extension_context;
mod extensions;
mod jp_core_examples;
mod jp_packages;
mod mutations;
mod questionnaire;
mod r4_examples;
mod slicing_discriminators;
mod snapshot;
mod synthetic;
mod synthetic_rules;
mod terminology_service;
