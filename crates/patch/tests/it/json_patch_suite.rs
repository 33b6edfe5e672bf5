//! Runs the JSON Patch cases of the FHIR test suite (`conformance/patch/json-patch-tests.json`
//! in TSUNAGU_SHARED).

use serde_json::Value;
use tsunagu_patch::{apply, Patch};

#[test]
fn json_patch_cases() {
    let Some(path) = tsunagu_reference::find("conformance/patch/json-patch-tests.json") else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let (mut pass, mut fail) = (0, Vec::new());
    for case in &cases {
        let name = case["comment"].as_str().unwrap_or("?").to_string();
        if case.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let result = apply(case["doc"].clone(), &Patch::Json(case["patch"].clone()));
        let ok = match (&result, case.get("expected"), case.get("error")) {
            (Ok(doc), Some(expected), _) => doc == expected,
            (Err(_), _, Some(_)) => true,
            (Ok(doc), None, None) => doc == &case["doc"],
            _ => false,
        };
        if ok {
            pass += 1;
        } else {
            fail.push(format!("{name}: got {result:?}"));
        }
    }
    println!("JSON Patch: {pass} passed, {} failed", fail.len());
    for f in &fail {
        println!("  FAIL {f}");
    }
    assert!(fail.is_empty());
}
