//! Conformance over the official R4 examples (read from the shared data folder at test
//! time, never copied into the repository): JSON → XML → JSON is lossless, the base
//! structure check accepts every valid example, and XML instances read to their JSON twins.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use tsunagu_format::{check_structure, json_to_xml, xml_to_json, Severity};

#[path = "lists/known_invalid.rs"]
mod known_invalid;
use known_invalid::KNOWN_INVALID;

/// Where a JSON twin of the FHIRPath test inputs is itself wrong, checked by hand:
/// (file stem, JSON location, reason). Narrative is compared as XHTML (see `same_xhtml`).
const TWIN_ERRORS: &[(&str, &str, &str)] = &[
    (
        "codesystem-example",
        ".description",
        "the XML attribute holds a literal line break, which XML attribute-value normalisation \
         turns into a space; the twin kept the raw line break",
    ),
    (
        "parameters-example-types",
        ".parameter[2].valueUuid",
        "the twin has an object {\"value\": …} where JSON FHIR has the uuid string",
    ),
];

/// The examples package read out; `None` (after a SKIP line, or a panic under `CI=true`)
/// when it is absent.
fn examples() -> Option<Vec<(String, Value)>> {
    let path = tsunagu_reference::find("fhir/hl7.fhir.r4.examples-4.0.1.tgz")?;
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let Some(file) = name.strip_prefix("package/") else {
            continue;
        };
        if !file.ends_with(".json") || file == "package.json" || file.starts_with('.') {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        out.push((file.to_string(), serde_json::from_str(&text).unwrap()));
    }
    Some(out)
}

/// The first differing location between two values, for failure reports.
fn diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = diff(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k} missing after round trip")),
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| format!("{path}.{k} added by round trip"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| diff(v, w, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {} != {}", short(a), short(b))),
    }
}

/// Narrative equality as XHTML content: the twins were produced by a converter that
/// re-serialised the XHTML (dropping whitespace-only text, decoding `&#39;`), so compare
/// the parsed events rather than the text.
fn same_xhtml(a: &str, b: &str) -> bool {
    fn events(s: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut r = quick_xml::Reader::from_str(s);
        let mut out = Vec::new();
        loop {
            match r.read_event().unwrap() {
                Event::Start(e) | Event::Empty(e) => {
                    let mut attrs: Vec<String> = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            format!("{}={}", String::from_utf8_lossy(a.key.as_ref()), a.unescape_value().unwrap())
                        })
                        .collect();
                    attrs.sort();
                    out.push(format!("<{} {}>", String::from_utf8_lossy(e.name().as_ref()), attrs.join(" ")));
                }
                Event::End(_) => out.push("</>".into()),
                Event::Text(t) => {
                    let t = t.unescape().unwrap();
                    if !t.trim().is_empty() {
                        out.push(t.split_whitespace().collect::<Vec<_>>().join(" "));
                    }
                }
                Event::Eof => return out,
                _ => {}
            }
        }
    }
    // Empty elements and start/end pairs are the same content.
    let norm = |s: &str| events(s).join("").replace("></>", ">");
    norm(a) == norm(b)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(120).collect()
}

#[test]
fn json_xml_json_round_trip() {
    let Some(examples) = examples() else { return };
    let mut failures = Vec::new();
    for (name, json) in &examples {
        let result = json_to_xml(json, true).map_err(|e| format!("to XML: {e}")).and_then(|xml| {
            let back = xml_to_json(&xml).map_err(|e| format!("to JSON: {e}"))?;
            match diff(json, &back, "") {
                Some(d) => Err(d),
                None if json == &back => Ok(()),
                None => Err("values differ".into()),
            }
        });
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    println!("round trip: {} of {} examples identical", examples.len() - failures.len(), examples.len());
    for f in failures.iter().take(200) {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty(), "{} round-trip failures", failures.len());
}

#[test]
fn structure_check_accepts_examples() {
    let Some(examples) = examples() else { return };
    let mut failures = Vec::new();
    let mut by_message: BTreeMap<String, usize> = BTreeMap::new();
    let mut known = 0;
    for (name, json) in &examples {
        let errors: Vec<_> = check_structure(json).into_iter().filter(|i| i.severity == Severity::Error).collect();
        let expected_invalid = KNOWN_INVALID.iter().any(|(n, _)| n == name);
        match (errors.is_empty(), expected_invalid) {
            (true, false) => {}
            (false, true) => known += 1,
            (true, true) => failures.push(format!("{name}: listed as invalid but passes")),
            (false, false) => {
                for e in &errors {
                    *by_message.entry(e.message_en.clone()).or_default() += 1;
                }
                let first = &errors[0];
                failures.push(format!(
                    "{name}: {} error(s), first at {}: {}",
                    errors.len(),
                    first.location,
                    first.message_en
                ));
            }
        }
    }
    println!(
        "structure: {} of {} examples without errors, {} known invalid, {} unexpected",
        examples.len() - failures.len() - known,
        examples.len(),
        known,
        failures.len()
    );
    for f in failures.iter().take(200) {
        println!("  FAIL {f}");
    }
    for (m, n) in by_message.iter().take(60) {
        println!("  {n:5} {m}");
    }
    assert!(failures.is_empty(), "{} examples with unexpected structure errors", failures.len());
}

#[test]
fn xml_instances_read_to_their_json_twins() {
    let Some(dir) = tsunagu_reference::find("conformance/fhirpath") else { return };
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("input")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "xml")) {
        let stem = path.file_stem().unwrap().to_string_lossy();
        let twin = dir.join("input-json").join(format!("{stem}.json"));
        let xml = std::fs::read_to_string(path).unwrap();
        let json = match xml_to_json(&xml) {
            Ok(j) => j,
            Err(e) => {
                failures.push(format!("{stem}: {e}"));
                continue;
            }
        };
        if !twin.is_file() {
            continue;
        }
        compared += 1;
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&twin).unwrap()).unwrap();
        let div = |v: &Value| v.pointer("/text/div").and_then(Value::as_str).map(str::to_string);
        let (expected_div, actual_div) = (div(&expected), div(&json));
        let mut expected: Value = expected;
        let mut json = json;
        for v in [&mut expected, &mut json] {
            if let Some(Value::String(div)) = v.pointer_mut("/text/div") {
                *div = String::new();
            }
        }
        let (a, b) = (expected_div.as_deref().unwrap_or_default(), actual_div.as_deref().unwrap_or_default());
        if !same_xhtml(a, b) {
            failures.push(format!("{stem}: narrative differs"));
        }
        for (_, path, _) in TWIN_ERRORS.iter().filter(|(s, _, _)| *s == stem) {
            let pointer = path.replace(['.', '['], "/").replace(']', "");
            for v in [&mut expected, &mut json] {
                if let Some(x) = v.pointer_mut(&pointer) {
                    *x = Value::Null;
                }
            }
        }
        if let Some(d) = diff(&expected, &json, "") {
            failures.push(format!("{stem}: {d}"));
        }
    }
    println!("xml twins: {} compared, {} failures, {} known twin errors", compared, failures.len(), TWIN_ERRORS.len());
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty());
}
