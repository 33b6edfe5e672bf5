//! Runs the FHIRPath Patch cases of the FHIR test suite
//! (`conformance/patch/fhir-patch-tests.xml` in TSUNAGU_SHARED): each case's input and
//! diff are read with the format crate's XML reader, and the result must equal the output.

use quick_xml::events::Event;
use serde_json::Value;
use tsunagu_patch::{apply, Patch};

/// The raw XML text of each child element of `<case>`: (name, input, diff, output, error).
fn cases(xml: &str) -> Vec<(String, String, String, Option<String>, bool)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<(String, String, String, Option<String>, bool)> = None;
    loop {
        let pos = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).to_string();
                match tag.as_str() {
                    "case" => {
                        let name = e
                            .attributes()
                            .flatten()
                            .find(|a| a.key.as_ref() == b"name")
                            .map(|a| String::from_utf8_lossy(&a.value).to_string())
                            .unwrap_or_default();
                        current = Some((name, String::new(), String::new(), None, false));
                    }
                    "input" | "diff" | "output" => {
                        let start = reader.buffer_position() as usize;
                        let end_tag = format!("</{tag}>");
                        let rest = &xml[start..];
                        let end = rest.find(&end_tag).unwrap();
                        let inner = rest[..end].to_string();
                        if let Some(c) = current.as_mut() {
                            match tag.as_str() {
                                "input" => c.1 = inner,
                                "diff" => c.2 = inner,
                                _ => c.3 = Some(inner),
                            }
                        }
                        let _ = reader.read_to_end(e.name());
                    }
                    _ => {}
                }
                let _ = pos;
            }
            Ok(Event::Empty(e)) if e.name().as_ref() == b"error" => {
                if let Some(c) = current.as_mut() {
                    c.4 = true;
                }
            }
            Ok(Event::End(e)) if e.name().as_ref() == b"case" => {
                if let Some(c) = current.take() {
                    out.push(c);
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => panic!("bad test file: {e}"),
            _ => {}
        }
    }
    out
}

/// A narrative set from a string and one read from XHTML differ in insignificant
/// whitespace and escaping; compare them as XHTML text, not byte for byte.
fn normalize_div(v: &mut Value) {
    if let Some(div) = v.pointer_mut("/text/div") {
        if let Some(s) = div.as_str() {
            let s = s.replace("&quot;", "\"").replace("&#39;", "'");
            *div = Value::String(s.split_whitespace().collect::<Vec<_>>().join(" ").replace("> <", "><"));
        }
    }
}

#[test]
fn fhirpath_patch_cases() {
    let Some(path) = tsunagu_reference::find("conformance/patch/fhir-patch-tests.xml") else { return };
    let xml = std::fs::read_to_string(&path).unwrap();
    let all = cases(&xml);
    let (mut pass, mut fail) = (0, Vec::new());
    for (name, input, diff, output, expect_error) in &all {
        let input: Value = tsunagu_format::xml_to_json(input.trim()).unwrap_or_else(|e| panic!("{name} input: {e}"));
        let diff: Value = tsunagu_format::xml_to_json(diff.trim()).unwrap_or_else(|e| panic!("{name} diff: {e}"));
        let result = apply(input, &Patch::FhirPath(diff));
        let ok = match (&result, output, expect_error) {
            (Err(_), _, true) => true,
            (Ok(got), Some(out), false) => {
                let mut expected: Value = tsunagu_format::xml_to_json(out.trim()).unwrap();
                let mut got = got.clone();
                normalize_div(&mut expected);
                normalize_div(&mut got);
                got == expected
            }
            _ => false,
        };
        if ok {
            pass += 1;
        } else {
            fail.push(format!("{name}: {result:?}"));
        }
    }
    println!("FHIRPath Patch: {pass} passed, {} failed", fail.len());
    for f in &fail {
        println!("  FAIL {f}");
    }
    assert_eq!(all.len(), 33);
    assert!(fail.is_empty());
}
