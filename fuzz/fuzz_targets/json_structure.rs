//! Fuzzes JSON parsing and the base-structure check, as the server runs them on a body.
//!
//! Proves, for any bytes: parsing (serde_json with `preserve_order` and
//! `arbitrary_precision`, as the workspace builds it) then `check_structure_limited` never
//! panics, aborts, overflows the stack or runs away, and reports at most `MAX + 1` issues
//! (the cap and the one truncation notice). Any string also goes through the narrative
//! check (`check_narrative`), which must answer without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX: usize = 100;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let issues = tsunagu_format::check_structure_limited(&v, MAX);
        assert!(issues.len() <= MAX + 1, "{} issues with max_issues = {MAX}", issues.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tsunagu_format::check_narrative(text);
    }
});
