//! Fuzzes JSON parsing and the base-structure check, as the server runs them on a body.
//!
//! Proves, for any bytes: parsing (serde_json with `preserve_order` and
//! `arbitrary_precision`, as the workspace builds it) then `check_structure_limited` never
//! panics, aborts, overflows the stack or runs away, and reports at most `MAX + 1` issues
//! (the cap and the one truncation notice); and whatever it accepts without error can be
//! written as XML and read back to the same JSON. Any string also goes through the narrative
//! check (`check_narrative`), which must answer without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX: usize = 100;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let issues = tsunagu_format::check_structure_limited(&v, MAX);
        assert!(issues.len() <= MAX + 1, "{} issues with max_issues = {MAX}", issues.len());
        // What the check accepts, the XML writer can write, and reads back the same (the
        // server skips its own XML check on writes when this check ran).
        if !issues.iter().any(|i| i.severity == tsunagu_format::Severity::Error) {
            let xml = tsunagu_format::json_to_xml(&v, false)
                .unwrap_or_else(|e| panic!("accepted by the structure check, not writable as XML: {e}\n{v}"));
            let back = tsunagu_format::xml_to_json(&xml)
                .unwrap_or_else(|e| panic!("written XML does not read back: {e}\n{xml}"));
            assert_eq!(back, v, "XML round trip changed an accepted resource\n{xml}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tsunagu_format::check_narrative(text);
    }
});
