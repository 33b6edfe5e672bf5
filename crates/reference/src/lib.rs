//! Where the third-party reference data lives (the FHIR packages, examples, test suites
//! and Synthea data that are never copied into this repository), and what a test does
//! when it is absent: print `SKIP` on a developer's machine, fail under `CI=true`, where
//! a missing prerequisite must never pass for a green run.
//!
//! This crate only finds files. It never reads or interprets them, and nothing in the
//! server depends on it: it is for tests, benchmarks and code generators.

use std::path::{Path, PathBuf};

/// `$TSUNAGU_SHARED`, or `../shared` beside the workspace.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TSUNAGU_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The reference file or directory at `relative` (e.g. `fhir/hl7.fhir.r4.core-4.0.1.tgz`)
/// when it exists; otherwise see [`missing`] and `None`. Under `CI=true` the panic names
/// the caller's line.
#[track_caller]
pub fn find(relative: &str) -> Option<PathBuf> {
    let path = shared_dir().join(relative);
    if path.exists() {
        Some(path)
    } else {
        missing(&path.display().to_string());
        None
    }
}

/// Reports that `what` is absent: a `SKIP` line normally, a panic (a failed test) when
/// `CI=true` (at the caller's line).
#[track_caller]
pub fn missing(what: &str) {
    if in_ci() {
        panic!("{what} is missing and CI=true: a test may not skip in CI (set TSUNAGU_SHARED)");
    }
    eprintln!("SKIP: {what} not found (set TSUNAGU_SHARED)");
}

/// Whether this run is CI (`CI=true`), where nothing may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
