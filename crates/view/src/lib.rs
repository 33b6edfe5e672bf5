//! SQL on FHIR v2 ViewDefinitions for Tsunagu: a view flattens FHIR resources into rows
//! of typed columns (<https://sql-on-fhir.org/ig/>).
//!
//! This crate owns reading and checking a ViewDefinition ([`ViewDefinition::from_json`]:
//! `resource`, `select` with `column`/`select`/`forEach`/`forEachOrNull`/`unionAll`/
//! `repeat`, `where`, `constant`, column `type` and `collection`, `status`), evaluating it
//! over FHIR JSON resources with the FHIRPath engine ([`View::rows`]; `%constants`,
//! `%rowIndex`, `getResourceKey()`, `getReferenceKey([type])`), and writing rows as JSON,
//! NDJSON, CSV or Parquet ([`sink`]).
//!
//! It never does I/O beyond the writers its sinks are given (and the files of a
//! [`PartitionedParquet`] directory), never speaks HTTP and never reads a store: the caller
//! feeds it resources and chooses where rows go.
//!
//! ```
//! use serde_json::json;
//! let view = tsunagu_view::ViewDefinition::from_json(&json!({
//!     "resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
//!     "select": [{"column": [{"name": "id", "path": "getResourceKey()", "type": "id"},
//!                            {"name": "family", "path": "name.family.first()", "type": "string"}]}]
//! })).unwrap();
//! let rows = view.rows(&json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Yamada"}]})).unwrap();
//! assert_eq!(rows[0].to_json(view.columns()), json!({"id": "p1", "family": "Yamada"}));
//! ```

mod constant;
mod definition;
mod error;
mod evaluate;
mod expression;
mod row;
pub mod sink;

pub use definition::{Status, View, ViewDefinition, DEFAULT_MAX_ROWS_PER_RESOURCE};
pub use error::{Result, ViewError};
pub use expression::with_deadline;
pub use row::{Cell, Column, ColumnType, Row};
pub use sink::{CsvSink, Format, JsonSink, NdjsonSink, ParquetOptions, ParquetSink, PartitionedParquet, RowSink};
