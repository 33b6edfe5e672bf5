//! Rows written to Parquet read back, with the parquet crate's own Arrow reader, as the
//! same values in the declared types; partitioned output splits where it says it does.

use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;
use std::fs::File;
use std::path::Path;
use tsunagu_view::{Cell, ParquetOptions, ParquetSink, PartitionedParquet, Row, RowSink, View, ViewDefinition};

fn view() -> View {
    ViewDefinition::from_json(&json!({
        "resourceType": "ViewDefinition", "resource": "Observation", "status": "active",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()", "type": "id"},
            {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "string"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            {"name": "count", "path": "component.count()", "type": "integer"},
            {"name": "has_note", "path": "note.exists()", "type": "boolean"},
            {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            {"name": "codes", "path": "code.coding.code", "type": "code", "collection": true}
        ]}]
    }))
    .unwrap()
}

fn observation(i: usize) -> serde_json::Value {
    let mut o = json!({
        "resourceType": "Observation", "id": format!("o{i}"), "status": "final",
        "code": {"coding": (0..i % 3).map(|k| json!({"system": "http://loinc.org", "code": format!("{k}-{i}")})).collect::<Vec<_>>()},
        "subject": {"reference": format!("Patient/p{}", i % 7)},
        "component": (0..i % 4).map(|_| json!({"code": {"text": "c"}})).collect::<Vec<_>>(),
    });
    if i % 5 < 4 {
        o["valueQuantity"] = json!({"value": i as f64 / 4.0, "unit": "mg"});
        o["effectiveDateTime"] = json!(format!("2024-0{}-1{}T09:00:00+09:00", 1 + i % 9, i % 10));
    }
    if i % 2 == 1 {
        o["note"] = json!([{"text": "n"}]);
    }
    o
}

fn rows(view: &View, n: usize) -> Vec<Row> {
    (0..n).flat_map(|i| view.rows(&observation(i)).unwrap()).collect()
}

/// Reads every batch of a Parquet file back into `Cell`s, by the Arrow type of each column.
fn read_back(path: &Path) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        for r in 0..batch.num_rows() {
            let cells = batch.columns().iter().map(|col| cell(col.as_ref(), r)).collect();
            out.push(Row { cells });
        }
    }
    out
}

fn cell(col: &dyn Array, r: usize) -> Cell {
    if col.is_null(r) {
        return Cell::Null;
    }
    let any = col.as_any();
    match col.data_type() {
        DataType::Utf8 => Cell::String(any.downcast_ref::<StringArray>().unwrap().value(r).to_string()),
        DataType::Int64 => Cell::Integer(any.downcast_ref::<Int64Array>().unwrap().value(r)),
        DataType::Float64 => Cell::String(format!("f64:{}", any.downcast_ref::<Float64Array>().unwrap().value(r))),
        DataType::Boolean => Cell::Boolean(any.downcast_ref::<BooleanArray>().unwrap().value(r)),
        DataType::List(_) => {
            let items = any.downcast_ref::<ListArray>().unwrap().value(r);
            Cell::List((0..items.len()).map(|k| cell(items.as_ref(), k)).collect())
        }
        other => panic!("unexpected Arrow type {other}"),
    }
}

/// What a written row reads back as: decimals become Float64.
fn as_read(row: &Row) -> Row {
    let cells = row
        .cells
        .iter()
        .map(|c| match c {
            Cell::Decimal(d) => Cell::String(format!("f64:{}", d.to_f64())),
            other => other.clone(),
        })
        .collect();
    Row { cells }
}

#[test]
fn parquet_reads_back_equal_in_declared_types() {
    let view = view();
    let written = rows(&view, 500);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obs.parquet");
    // Small batches and row groups, so that several of each are written.
    let options = ParquetOptions { batch_rows: 64, row_group_rows: 100, ..Default::default() };
    let mut sink = ParquetSink::create(&path, view.columns(), options).unwrap();
    for r in &written {
        sink.push(r).unwrap();
    }
    sink.finish().unwrap();
    assert!(sink.push(&written[0]).is_err(), "a finished sink refuses rows");

    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 5);
    let types: Vec<String> = builder.schema().fields().iter().map(|f| f.data_type().to_string()).collect();
    assert_eq!(&types[..6], ["Utf8", "Utf8", "Float64", "Int64", "Boolean", "Utf8"]);
    assert!(types[6].starts_with("List("), "{}", types[6]);

    let read = read_back(&path);
    let expected: Vec<Row> = written.iter().map(as_read).collect();
    assert_eq!(read.len(), 500);
    assert_eq!(read, expected);
    // Spot-check that nulls and the lowered key functions survived.
    assert_eq!(read[0].cells[1], Cell::String("p0".into()));
    assert_eq!(read[4].cells[2], Cell::Null);
    assert_eq!(read[1].cells[6], Cell::List(vec![Cell::String("0-1".into())]));
}

#[test]
fn partitioned_output_starts_a_file_every_n_rows() {
    let view = view();
    let written = rows(&view, 250);
    let dir = tempfile::tempdir().unwrap();
    let mut sink = PartitionedParquet::new(dir.path(), view.columns(), ParquetOptions::default(), 100, 0);
    for r in &written {
        sink.push(r).unwrap();
    }
    sink.finish().unwrap();
    let names: Vec<String> =
        sink.files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["view-0000.parquet", "view-0001.parquet", "view-0002.parquet"]);
    let counts: Vec<usize> = sink.files().iter().map(|p| read_back(p).len()).collect();
    assert_eq!(counts, [100, 100, 50]);
    let all: Vec<Row> = sink.files().iter().flat_map(|p| read_back(p)).collect();
    assert_eq!(all, written.iter().map(as_read).collect::<Vec<_>>());
}

#[test]
fn partitioned_output_starts_a_file_past_a_byte_limit() {
    let view = view();
    let written = rows(&view, 400);
    let dir = tempfile::tempdir().unwrap();
    // Batches of 10 rows reach the writer often enough for the size check to bite.
    let options = ParquetOptions { batch_rows: 10, ..Default::default() };
    let mut sink = PartitionedParquet::new(dir.path(), view.columns(), options, 0, 4 << 10);
    for r in &written {
        sink.push(r).unwrap();
    }
    sink.finish().unwrap();
    assert!(sink.files().len() > 1, "only {} file(s)", sink.files().len());
    let total: usize = sink.files().iter().map(|p| read_back(p).len()).sum();
    assert_eq!(total, 400);
}

#[test]
fn parquet_to_memory_and_empty_output() {
    let view = view();
    let sink = ParquetSink::new(Vec::new(), view.columns(), ParquetOptions::default()).unwrap();
    let bytes = sink.into_inner().unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    assert_eq!(reader.schema().fields().len(), 7);
}
