//! Fuzzes transaction and batch Bundles end to end: JSON body → `Interactions::bundle` →
//! planning (urn:uuid reference rewriting, conditional create/update/delete/patch, entry
//! order, GET entries) → one SQLite write transaction, on a real `SqliteStore`.
//!
//! Proves, for any bytes: no panic, abort, stack overflow or runaway time; every `Result`
//! is a fine answer. The store lives for the whole process (in a temporary directory, or
//! in `$TSUNAGU_FUZZ_STORE` when set), so later inputs meet what earlier ones wrote.
//!
//! With `TSUNAGU_FUZZ_CHECK_STORE=<dir>` the target does no fuzzing: on its first input it
//! runs the consistency check (`check_data`: versions, current flags, index rows against a
//! fresh extraction) over the store a fuzzing run left in `<dir>`, prints the figures, and
//! panics if anything is wrong. `.ci/fuzz` does this after the transaction run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tsunagu_interaction::{check_data, CheckOptions, Interactions, NoCheck, RequestContext};

struct Env {
    fhir: Interactions,
    ctx: RequestContext,
    _dir: Option<tempfile::TempDir>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let (path, dir) = match std::env::var_os("TSUNAGU_FUZZ_STORE") {
            Some(p) => (PathBuf::from(p), None),
            None => {
                let d = tempfile::tempdir().expect("temporary directory");
                (d.path().to_path_buf(), Some(d))
            }
        };
        let store = tsunagu_store::SqliteStore::open(&path, tsunagu_store::SyncMode::Normal).expect("open store");
        let fhir = Interactions::new(Arc::new(store), Arc::new(NoCheck), Default::default());
        Env { fhir, ctx: RequestContext::new("http://x"), _dir: dir }
    })
}

fn check_store(dir: &str) {
    let options = CheckOptions { max_problems: 20, ..Default::default() };
    let report = check_data(std::path::Path::new(dir), &options).expect("check could not run");
    println!(
        "store check: {} versions, {} current resources, {} index rows, {} problems",
        report.versions_read,
        report.current_resources,
        report.index_rows_stored,
        report.total()
    );
    assert!(report.is_clean(), "store left inconsistent: {:#?}", report.problems);
}

fuzz_target!(|data: &[u8]| {
    static CHECK_DIR: OnceLock<Option<String>> = OnceLock::new();
    if let Some(dir) =
        CHECK_DIR.get_or_init(|| std::env::var("TSUNAGU_FUZZ_CHECK_STORE").ok().filter(|d| !d.is_empty()))
    {
        static CHECKED: OnceLock<()> = OnceLock::new();
        CHECKED.get_or_init(|| check_store(dir));
        return;
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let e = env();
    let _ = e.fhir.bundle(body, &e.ctx);
});
