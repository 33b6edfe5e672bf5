//! Fuzzes search URL parsing: the query string of `GET /[type]?…` through
//! `SearchParams::parse` (percent-decoding, pairs) and `parse_search` (modifiers,
//! prefixes, chains, `_has`, `_sort`, `_include`, composites, full text) with the default
//! limits.
//!
//! Proves, for any query: no panic, abort, stack overflow or runaway time; an error is a
//! fine answer. The first byte picks the resource type and whether handling is strict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const TYPES: [&str; 4] = ["Patient", "Observation", "ActivityDefinition", "Encounter"];

struct Env {
    registry: tsunagu_search::SearchRegistry,
    terminology: tsunagu_terminology::Terminology,
    limits: tsunagu_limits::Limits,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env {
        registry: tsunagu_search::SearchRegistry::new(),
        terminology: tsunagu_terminology::Terminology::default(),
        limits: tsunagu_limits::Limits::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let ty = TYPES[usize::from(first) % TYPES.len()];
    let strict = first & 0x80 != 0;
    let query = String::from_utf8_lossy(rest);
    let params = tsunagu_interaction::SearchParams::parse(&query);
    let e = env();
    let _ = tsunagu_search::parse_search(
        &e.registry,
        &e.terminology,
        Some(ty),
        &params.pairs,
        strict,
        "http://x",
        &e.limits,
    );
});
