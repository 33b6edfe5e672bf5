//! Measures view evaluation and Parquet writing over generated Patients and Observations.
//!
//! `cargo run --release -p tsunagu-view --example bench_view [observations]`
//! (default 200,000 Observations and a tenth as many Patients).

use serde_json::{json, Value};
use std::time::Instant;
use tsunagu_view::{CsvSink, ParquetOptions, ParquetSink, RowSink, View, ViewDefinition};

fn patient(i: usize) -> Value {
    let families = ["山田", "佐藤", "鈴木", "高橋", "田中", "Smith"];
    json!({
        "resourceType": "Patient", "id": format!("p{i}"), "active": i % 9 < 8,
        "gender": if i % 2 == 1 { "male" } else { "female" },
        "birthDate": format!("19{:02}-{:02}-{:02}", 30 + i % 70, 1 + i % 12, 1 + i % 28),
        "name": [{"use": "official", "family": families[i % families.len()], "given": [format!("名{i}"), "Jr"]},
                 {"use": "usual", "text": format!("ニックネーム{i}")}],
        "telecom": [{"system": "phone", "value": format!("03-0000-{:04}", i % 10000)},
                    {"system": "email", "value": format!("p{i}@example.jp")}],
        "address": [{"city": "千代田区", "postalCode": "100-0001"}]
    })
}

fn observation(i: usize, patients: usize) -> Value {
    json!({
        "resourceType": "Observation", "id": format!("o{i}"), "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "urn:oid:1.2.392.200119.4.504", "code": format!("3D0{:02}0000002327101", i % 50), "display": "HbA1c"}]},
        "subject": {"reference": format!("Patient/p{}", i % patients)},
        "effectiveDateTime": format!("2024-{:02}-{:02}T09:{:02}:00+09:00", 1 + i % 12, 1 + i % 28, i % 60),
        "valueQuantity": {"value": 5.0 + (i % 40) as f64 / 10.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        "referenceRange": [{"low": {"value": 4.6}, "high": {"value": 6.2}}]
    })
}

fn views() -> (View, View) {
    let obs = ViewDefinition::from_json(&json!({
        "resourceType": "ViewDefinition", "resource": "Observation", "status": "active",
        "where": [{"path": "status = 'final'"}],
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()", "type": "id"},
            {"name": "patient_id", "path": "subject.getReferenceKey(Patient)", "type": "id"},
            {"name": "code", "path": "code.coding.where(system = 'urn:oid:1.2.392.200119.4.504').code.first()", "type": "code"},
            {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            {"name": "unit", "path": "value.ofType(Quantity).code", "type": "code"},
            {"name": "categories", "path": "category.coding.code", "type": "code", "collection": true}
        ]}]
    }))
    .expect("observation view");
    let pat = ViewDefinition::from_json(&json!({
        "resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
        "select": [
            {"column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "family", "path": "name.where(use = 'official').family.first()", "type": "string"},
                {"name": "given", "path": "name.where(use = 'official').given.join(' ')", "type": "string"},
                {"name": "gender", "path": "gender", "type": "code"},
                {"name": "birth_date", "path": "birthDate", "type": "date"},
                {"name": "active", "path": "active", "type": "boolean"}
            ]},
            {"forEachOrNull": "telecom", "column": [
                {"name": "telecom_system", "path": "system", "type": "code"},
                {"name": "telecom_value", "path": "value", "type": "string"},
                {"name": "telecom_index", "path": "%rowIndex", "type": "integer"}
            ]}
        ]
    }))
    .expect("patient view");
    (obs, pat)
}

fn measure(label: &str, view: &View, resources: &[Value], sink: Option<&mut dyn RowSink>) -> usize {
    let start = Instant::now();
    let mut rows = 0usize;
    match sink {
        None => {
            for r in resources {
                rows += view.rows(r).expect("rows").len();
            }
        }
        Some(sink) => {
            for r in resources {
                view.for_each_row(r, |row| {
                    rows += 1;
                    sink.push(&row)
                })
                .expect("rows");
            }
            sink.finish().expect("finish");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<32} {:>8} resources {:>8} rows  {:>7.3} s  {:>10.0} rows/s  {:>10.0} resources/s",
        resources.len(),
        rows,
        secs,
        rows as f64 / secs,
        resources.len() as f64 / secs
    );
    rows
}

fn main() {
    let n_obs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let n_pat = (n_obs / 10).max(1);
    let t = Instant::now();
    let patients: Vec<Value> = (0..n_pat).map(patient).collect();
    let observations: Vec<Value> = (0..n_obs).map(|i| observation(i, n_pat)).collect();
    println!("generated {n_pat} Patients and {n_obs} Observations in {:.2} s", t.elapsed().as_secs_f64());

    let (obs_view, pat_view) = views();
    let dir = tempfile::tempdir().expect("temporary directory");
    measure("Observation: evaluate", &obs_view, &observations, None);
    measure("Patient: evaluate", &pat_view, &patients, None);

    let obs_path = dir.path().join("observation.parquet");
    let mut sink = ParquetSink::create(&obs_path, obs_view.columns(), ParquetOptions::default()).expect("sink");
    measure("Observation: evaluate + Parquet", &obs_view, &observations, Some(&mut sink));
    let pat_path = dir.path().join("patient.parquet");
    let mut sink = ParquetSink::create(&pat_path, pat_view.columns(), ParquetOptions::default()).expect("sink");
    measure("Patient: evaluate + Parquet", &pat_view, &patients, Some(&mut sink));
    let csv_path = dir.path().join("observation.csv");
    let mut csv =
        CsvSink::new(std::io::BufWriter::new(std::fs::File::create(&csv_path).expect("csv")), obs_view.columns());
    measure("Observation: evaluate + CSV", &obs_view, &observations, Some(&mut csv));

    for p in [&obs_path, &pat_path, &csv_path] {
        let size = std::fs::metadata(p).expect("output written").len();
        println!("{:<32} {:>10.1} KiB", p.file_name().unwrap().to_string_lossy(), size as f64 / 1024.0);
    }
}
