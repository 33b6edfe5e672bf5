//! Fuzzes the XML reader and writer.
//!
//! Proves, for any text: `xml_to_json_limited` never panics, aborts, overflows the stack or
//! runs away; and when it accepts a document, writing the JSON back as XML
//! (`json_to_xml`) succeeds and reads back to the same JSON value (the conversion is
//! lossless both ways for everything the reader accepts).
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_DEPTH: usize = 100;

fuzz_target!(|text: &str| {
    let Ok(json) = tsunagu_format::xml_to_json_limited(text, MAX_DEPTH) else { return };
    let xml = match tsunagu_format::json_to_xml(&json, false) {
        Ok(x) => x,
        Err(e) => panic!("accepted XML cannot be written back: {e}\njson: {json}"),
    };
    match tsunagu_format::xml_to_json_limited(&xml, MAX_DEPTH) {
        Ok(again) => assert_eq!(again, json, "round trip changed the value\nxml: {xml}"),
        Err(e) => panic!("written XML cannot be read back: {e}\nxml: {xml}"),
    }
});
