//! The plain API beyond the suite: which views are refused and why, typed cells, rows of
//! other resource types, Japanese messages.

use serde_json::{json, Value};
use tsunagu_view::{Cell, ColumnType, View, ViewDefinition, ViewError};

fn view(v: Value) -> Result<View, ViewError> {
    ViewDefinition::from_json(&v)
}

fn patient_view(columns: Value) -> Value {
    json!({"resourceType": "ViewDefinition", "resource": "Patient", "status": "active", "select": [{"column": columns}]})
}

#[test]
fn views_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<View>();
}

#[test]
fn malformed_views_are_refused_with_their_location() {
    let cases = [
        (json!([]), "/"),
        (json!({"resourceType": "Patient", "resource": "Patient", "select": []}), "/resourceType"),
        (json!({"resource": "Patient"}), "/select"),
        (json!({"resource": "NoSuchType", "select": [{"column": [{"name": "id", "path": "id"}]}]}), "/resource"),
        (
            json!({"resource": "Patient", "status": "final", "select": [{"column": [{"name": "id", "path": "id"}]}]}),
            "/status",
        ),
        (
            patient_view(json!([{"name": "id", "path": "id"}, {"name": "id", "path": "gender"}])),
            "/select/0/column/1/name",
        ),
        (patient_view(json!([{"name": "1st", "path": "id"}])), "/select/0/column/0/name"),
        (patient_view(json!([{"name": "id"}])), "/select/0/column/0"),
        (patient_view(json!([{"name": "id", "path": "id", "type": "varchar"}])), "/select/0/column/0/type"),
        (patient_view(json!([{"name": "id", "path": "id", "collection": "yes"}])), "/select/0/column/0/collection"),
        (
            json!({"resource": "Patient", "select": [{"forEach": "name", "forEachOrNull": "name", "column": [{"name": "f", "path": "family"}]}]}),
            "/select/0",
        ),
        (json!({"resource": "Patient", "select": [{"forEach": "name"}]}), "/select/0"),
        (
            json!({"resource": "Patient", "select": [{"repeat": [], "column": [{"name": "f", "path": "x"}]}]}),
            "/select/0/repeat",
        ),
        (
            json!({"resource": "Patient", "where": [{"description": "no path"}], "select": [{"column": [{"name": "id", "path": "id"}]}]}),
            "/where/0",
        ),
        (
            json!({"resource": "Patient", "constant": [{"name": "a", "valueString": "x"}, {"name": "a", "valueString": "y"}],
                   "select": [{"column": [{"name": "id", "path": "id"}]}]}),
            "/constant/1",
        ),
    ];
    for (v, at) in cases {
        match view(v.clone()) {
            Err(ViewError::Invalid { at: got, .. }) => assert_eq!(got, at, "{v}"),
            other => panic!("{v}: expected Invalid at {at}, got {other:?}"),
        }
    }
}

#[test]
fn paths_on_the_resource_are_checked_against_the_model() {
    let err = view(patient_view(json!([{"name": "x", "path": "nmae.family"}]))).unwrap_err();
    assert!(matches!(err, ViewError::Expression { .. }), "{err}");
    assert!(err.is_definition_error());
    assert!(err.to_string().contains("/select/0/column/0/path"), "{err}");
}

#[test]
fn columns_carry_declared_types_and_order() {
    let v = view(json!({"resource": "Patient", "select": [
        {"column": [{"name": "id", "path": "id", "type": "id"}, {"name": "born", "path": "birthDate", "type": "date"}]},
        {"forEach": "name", "column": [{"name": "given", "path": "given", "type": "string", "collection": true}]},
        {"column": [{"name": "anything", "path": "active"}]}
    ]}))
    .unwrap();
    let cols: Vec<(&str, ColumnType, bool)> =
        v.columns().iter().map(|c| (c.name.as_str(), c.kind, c.collection)).collect();
    assert_eq!(
        cols,
        [
            ("id", ColumnType::String, false),
            ("born", ColumnType::Date, false),
            ("given", ColumnType::String, true),
            ("anything", ColumnType::Any, false)
        ]
    );
    assert_eq!(v.resource_type(), "Patient");
    let rows = v
        .rows(&json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-02", "active": true,
                       "name": [{"family": "山田", "given": ["太郎", "タロウ"]}]}))
        .unwrap();
    assert_eq!(
        rows[0].cells,
        [
            Cell::String("p1".into()),
            Cell::String("1980-02".into()),
            Cell::List(vec![Cell::String("太郎".into()), Cell::String("タロウ".into())]),
            Cell::Boolean(true)
        ]
    );
}

#[test]
fn other_resource_types_give_no_rows() {
    let v = view(patient_view(json!([{"name": "id", "path": "id"}]))).unwrap();
    assert!(v.rows(&json!({"resourceType": "Observation", "id": "o1"})).unwrap().is_empty());
    assert!(v.rows(&json!({"id": "no type"})).unwrap().is_empty());
}

#[test]
fn values_that_do_not_fit_the_declared_type_are_errors() {
    let v = view(patient_view(json!([{"name": "n", "path": "name", "type": "string"}]))).unwrap();
    let err = v.rows(&json!({"resourceType": "Patient", "name": [{"family": "X"}]})).unwrap_err();
    assert!(matches!(err, ViewError::TypeMismatch { .. }), "{err}");
    let v = view(patient_view(json!([{"name": "n", "path": "'abc'", "type": "integer"}]))).unwrap();
    assert!(v.rows(&json!({"resourceType": "Patient"})).is_err());
}

#[test]
fn untyped_columns_keep_complex_values_as_json() {
    let v = view(patient_view(json!([{"name": "n", "path": "name.first()"}]))).unwrap();
    let rows = v.rows(&json!({"resourceType": "Patient", "name": [{"family": "X"}]})).unwrap();
    assert_eq!(rows[0].cells[0], Cell::Json(json!({"family": "X"})));
}

#[test]
fn rows_stream_to_a_callback() {
    let v = view(
        json!({"resource": "Patient", "select": [{"forEach": "name", "column": [{"name": "f", "path": "family"}]}]}),
    )
    .unwrap();
    let mut seen = Vec::new();
    v.for_each_row(&json!({"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}]}), |r| {
        seen.push(r.cells[0].clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [Cell::String("A".into()), Cell::String("B".into())]);
}

#[test]
fn repeat_walks_nested_items_depth_first_with_row_indexes() {
    let v = view(json!({"resource": "Questionnaire", "select": [{"repeat": ["item"], "column": [
        {"name": "link", "path": "linkId", "type": "string"}, {"name": "i", "path": "%rowIndex", "type": "integer"}]}]}))
    .unwrap();
    let q = json!({"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]},
        {"linkId": "2", "type": "string"}]});
    let got: Vec<Value> = v.rows(&q).unwrap().iter().map(|r| r.to_json(v.columns())).collect();
    assert_eq!(got, [json!({"link": "1", "i": 0}), json!({"link": "1.1", "i": 1}), json!({"link": "2", "i": 2})]);
}

#[test]
fn errors_have_japanese_messages() {
    let err = view(json!({"select": []})).unwrap_err();
    assert!(err.message_ja().contains("ViewDefinition が不正です"), "{}", err.message_ja());
    let v = view(patient_view(json!([{"name": "g", "path": "name.given"}]))).unwrap();
    let err = v.rows(&json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}]})).unwrap_err();
    assert!(err.message_ja().contains("コレクションではありません"), "{}", err.message_ja());
    assert!(!err.is_definition_error());
}

/// Nested forEach crossed over large arrays would ask for billions of rows from one
/// resource: refused before the product is built.
#[test]
fn crossed_foreach_is_bounded() {
    let view = ViewDefinition::from_json(&json!({
        "resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
        "select": [
            {"forEach": "name", "column": [{"name": "a", "path": "family", "type": "string"}]},
            {"forEach": "telecom", "column": [{"name": "b", "path": "value", "type": "string"}]},
            {"forEach": "address", "column": [{"name": "c", "path": "city", "type": "string"}]}
        ]
    }))
    .unwrap()
    .with_max_rows_per_resource(10_000);
    let many =
        |key: &str, n: usize| -> Vec<serde_json::Value> { (0..n).map(|i| json!({ key: format!("{i}") })).collect() };
    let patient = json!({"resourceType": "Patient", "name": many("family", 100), "telecom": many("value", 100),
        "address": many("city", 100)});
    let err = view.rows(&patient).unwrap_err();
    assert!(matches!(err, tsunagu_view::ViewError::TooManyRows { limit: 10_000 }), "{err}");
    let small = json!({"resourceType": "Patient", "name": many("family", 10), "telecom": many("value", 10),
        "address": many("city", 10)});
    assert_eq!(view.rows(&small).unwrap().len(), 1000);
}
