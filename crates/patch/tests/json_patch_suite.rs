//! Runs the JSON Patch cases of the FHIR test suite (`conformance/patch/json-patch-tests.json`
//! in TSUNAGU_SHARED).

use serde_json::Value;
use tsunagu_patch::{apply, Patch};

fn shared() -> std::path::PathBuf {
    std::env::var_os("TSUNAGU_SHARED")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[test]
fn json_patch_cases() {
    let path = shared().join("conformance/patch/json-patch-tests.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIP: {} not found; set TSUNAGU_SHARED", path.display());
        return;
    };
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
