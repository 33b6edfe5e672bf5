//! Runs the SQL on FHIR v2 test suite from `$TSUNAGU_SHARED/conformance/sql-on-fhir`:
//! every test of every file, rows compared as the suite specifies (as a multiset of row
//! objects, numbers by value, column order checked where `expectColumns` is given).
//! Prints the pass count and every failure; fails when any test fails.

use serde_json::Value;
use tsunagu_view::{View, ViewDefinition, ViewError};

/// A value in a form where equal rows compare equal: keys sorted, numbers by value
/// (the suite writes `5` where a decimal column gives `5.0`).
fn canonical(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{}", n.as_f64().expect("a finite number")),
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        Value::Object(m) => {
            let mut fields: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{}", canonical(v))).collect();
            fields.sort();
            format!("{{{}}}", fields.join(","))
        }
        other => other.to_string(),
    }
}

fn run_view(view: &Value, resources: &[Value]) -> Result<(View, Vec<Value>), ViewError> {
    let view = ViewDefinition::from_json(view)?;
    let mut rows = Vec::new();
    for r in resources {
        for row in view.rows(r)? {
            rows.push(row.to_json(view.columns()));
        }
    }
    Ok((view, rows))
}

/// `Ok(())` when the test passes, else why not.
fn check(test: &Value, resources: &[Value]) -> Result<(), String> {
    let outcome = run_view(&test["view"], resources);
    if test["expectError"].as_bool() == Some(true) {
        return match outcome {
            Err(e) => {
                eprintln!("expected error: {e}");
                Ok(())
            }
            Ok((_, rows)) => Err(format!("expected an error, got {} rows", rows.len())),
        };
    }
    let (view, rows) = outcome.map_err(|e| format!("unexpected error: {e}"))?;
    if let Some(cols) = test.get("expectColumns").and_then(Value::as_array) {
        let got: Vec<&str> = view.columns().iter().map(|c| c.name.as_str()).collect();
        let want: Vec<&str> = cols.iter().filter_map(Value::as_str).collect();
        if got != want {
            return Err(format!("columns {got:?}, expected {want:?}"));
        }
    }
    if let Some(n) = test.get("expectCount").and_then(Value::as_u64) {
        if rows.len() as u64 != n {
            return Err(format!("{} rows, expected {n}", rows.len()));
        }
    }
    if let Some(expect) = test.get("expect").and_then(Value::as_array) {
        let mut got: Vec<String> = rows.iter().map(canonical).collect();
        let mut want: Vec<String> = expect.iter().map(canonical).collect();
        got.sort();
        want.sort();
        if got != want {
            return Err(format!("rows differ\n      got:      {got:?}\n      expected: {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn sql_on_fhir_suite() {
    let Some(dir) = tsunagu_reference::find("conformance/sql-on-fhir") else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("suite directory reads")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("tests.schema.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", dir.display());
    let (mut passed, mut failures) = (0, Vec::new());
    for file in &files {
        let suite: Value =
            serde_json::from_slice(&std::fs::read(file).expect("suite file reads")).expect("suite is JSON");
        let resources = suite["resources"].as_array().cloned().unwrap_or_default();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for test in suite["tests"].as_array().expect("tests array") {
            match check(test, &resources) {
                Ok(()) => passed += 1,
                Err(why) => failures.push(format!("{stem} / {}: {why}", test["title"].as_str().unwrap_or("?"))),
            }
        }
    }
    let total = passed + failures.len();
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!("SQL on FHIR: {passed}/{total} passed");
    assert!(failures.is_empty(), "{} of {total} SQL on FHIR tests failed", failures.len());
}
