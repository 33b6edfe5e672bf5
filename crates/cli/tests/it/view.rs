//! `tsunagu view run` and `tsunagu view export` as an analyst runs them: a view over files
//! and over the data directory gives the same rows; Parquet output read back with the
//! parquet crate's own reader equals the JSON rows; a broken view exits 1 and says where.

use std::process::Command;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};

fn tsunagu(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tsunagu"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("TSUNAGU_CONFIG")
        .output()
        .expect("run tsunagu");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn patients() -> Value {
    let entries: Vec<Value> = (0..25)
        .map(|i| {
            json!({"resource": {"resourceType": "Patient", "id": format!("p{i}"), "gender": if i % 2 == 0 { "female" } else { "male" },
                "birthDate": format!("19{:02}-01-02", 40 + i),
                "name": [{"family": format!("山田{i}"), "given": ["花子", "ハナコ"]}]}})
        })
        .chain([json!({"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}})])
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

const VIEW: &str = r#"{"resourceType": "ViewDefinition", "name": "patient_demographics", "resource": "Patient", "status": "active",
  "select": [{"column": [
    {"name": "id", "path": "getResourceKey()", "type": "id"},
    {"name": "gender", "path": "gender", "type": "code"},
    {"name": "birth_year", "path": "birthDate.toString().substring(0, 4).toInteger()", "type": "integer"},
    {"name": "given", "path": "name.given", "type": "string", "collection": true}]}],
  "where": [{"path": "gender = 'female'"}]}"#;

fn sorted(rows: Value) -> Vec<Value> {
    let mut rows = rows.as_array().expect("an array of rows").clone();
    rows.sort_by_key(|r| r["id"].as_str().unwrap_or("").to_string());
    rows
}

#[test]
fn views_over_files_and_store_agree_and_parquet_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("patients.json");
    std::fs::write(&input, patients().to_string()).unwrap();
    let view = dir.path().join("view.json");
    std::fs::write(&view, VIEW).unwrap();
    let (code, out, err) = tsunagu(&data, &["import", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, from_files, err) = tsunagu(&data, &["view", "run", view.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let from_files = sorted(serde_json::from_str(&from_files).unwrap());
    assert_eq!(from_files.len(), 13, "the female patients");
    assert_eq!(from_files[0], json!({"id": "p0", "gender": "female", "birth_year": 1940, "given": ["花子", "ハナコ"]}));
    let (code, from_store, err) = tsunagu(&data, &["view", "run", view.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sorted(serde_json::from_str(&from_store).unwrap()), from_files);

    let (code, csv, _) =
        tsunagu(&data, &["view", "run", view.to_str().unwrap(), input.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(code, 0);
    assert_eq!(csv.lines().next(), Some("id,gender,birth_year,given"));
    assert_eq!(csv.lines().count(), 14);

    // Parquet in files of at most 5 rows, read back column by column.
    let to = dir.path().join("out");
    let (code, out, err) =
        tsunagu(&data, &["view", "export", view.to_str().unwrap(), "--to", to.to_str().unwrap(), "--max-rows", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("13 rows"), "{out}");
    let mut files: Vec<_> =
        std::fs::read_dir(to.join("patient_demographics")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut read_back = Vec::new();
    for f in files {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
            let years = batch.column(2).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
            for i in 0..batch.num_rows() {
                read_back.push((ids.value(i).to_string(), years.value(i)));
            }
        }
    }
    read_back.sort();
    let expected: Vec<(String, i64)> =
        from_files.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r["birth_year"].as_i64().unwrap())).collect();
    assert_eq!(read_back, expected);
}

#[test]
fn a_broken_view_is_refused_before_any_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let view = dir.path().join("broken.json");
    std::fs::write(
        &view,
        r#"{"resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
            "select": [{"column": [{"name": "id", "path": "id.where(", "type": "id"}]}]}"#,
    )
    .unwrap();
    let (code, _, err) = tsunagu(&dir.path().join("data"), &["view", "run", view.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("select"), "names where: {err}");
    let (code, _, err) =
        tsunagu(&dir.path().join("data"), &["view", "run", view.to_str().unwrap(), "--format", "xlsx"]);
    assert_eq!(code, 1, "{err}");
}
