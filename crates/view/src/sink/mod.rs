//! Where rows go: JSON, NDJSON, CSV and Parquet writers over any `io::Write`. The only I/O
//! this crate does is through these writers (and the files [`PartitionedParquet`] opens in
//! the directory it is given).

mod parquet_sink;
mod text;

pub use parquet_sink::{arrow_schema, ParquetOptions, ParquetSink, PartitionedParquet};
pub use text::{CsvSink, JsonSink, NdjsonSink};

use crate::error::Result;
use crate::row::Row;

/// A destination for rows. `finish` completes the output (closing brackets, Parquet
/// footers); rows pushed after it are refused.
pub trait RowSink {
    fn push(&mut self, row: &Row) -> Result<()>;
    fn finish(&mut self) -> Result<()>;
}

/// The output formats, by the names a caller would use on a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
    Parquet,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "json" => Format::Json,
            "ndjson" => Format::Ndjson,
            "csv" => Format::Csv,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }
}
