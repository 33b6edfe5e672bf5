//! Parquet output through Arrow, streamed: rows are buffered into record batches of
//! `batch_rows`, the Arrow writer cuts row groups at `row_group_rows` rows, and a row
//! group is also flushed early once its encoded size passes `row_group_bytes`, so memory
//! stays bounded whatever the view's row width.
//!
//! Column types follow the declared FHIR types: strings → Utf8, integers → Int64,
//! booleans → Boolean, decimal → Float64 (FHIR decimals carry their own precision per value,
//! which Arrow's fixed-scale Decimal128 cannot hold without choosing a scale for the whole
//! column), collections → List of the item type. date, dateTime, instant and time stay Utf8
//! in their FHIR text: FHIR dates may be partial (`1970-06`) and date-times keep their own
//! offset, which Date32/Timestamp would silently widen or normalise away.

use super::RowSink;
use crate::error::{Result, ViewError};
use crate::row::{Cell, Column, ColumnType, Row};
use arrow_array::builder::{ArrayBuilder, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sizes and compression of Parquet output.
#[derive(Clone, Debug)]
pub struct ParquetOptions {
    /// Rows per Arrow record batch handed to the writer.
    pub batch_rows: usize,
    /// Most rows in one row group.
    pub row_group_rows: usize,
    /// A row group is flushed once its buffered, encoded size passes this.
    pub row_group_bytes: usize,
    /// zstd level (1–22).
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions { batch_rows: 8192, row_group_rows: 1 << 20, row_group_bytes: 128 << 20, zstd_level: 3 }
    }
}

fn item_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Integer => DataType::Int64,
        ColumnType::Decimal => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

/// The Arrow schema of a view's columns (every field nullable).
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let t = item_type(c.kind);
            if c.collection {
                Field::new_list(&c.name, Field::new("item", t, true), true)
            } else {
                Field::new(&c.name, t, true)
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A Parquet file written row by row.
pub struct ParquetSink<W: Write + Send> {
    writer: Option<ArrowWriter<W>>,
    columns: Vec<Column>,
    schema: SchemaRef,
    options: ParquetOptions,
    pending: Vec<Row>,
    rows: u64,
}

impl ParquetSink<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path, columns: &[Column], options: ParquetOptions) -> Result<Self> {
        ParquetSink::new(BufWriter::new(File::create(path)?), columns, options)
    }
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W, columns: &[Column], options: ParquetOptions) -> Result<Self> {
        let schema = arrow_schema(columns);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(options.zstd_level)?))
            .set_max_row_group_size(options.row_group_rows.max(1))
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
        Ok(ParquetSink {
            writer: Some(writer),
            columns: columns.to_vec(),
            schema,
            options,
            pending: Vec::new(),
            rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written to the output so far plus those buffered for the open row group
    /// (rows still waiting for a full batch are not counted).
    pub fn bytes(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.bytes_written() + w.in_progress_size())
    }

    /// Completes the file and returns the output.
    pub fn into_inner(mut self) -> Result<W> {
        self.write_pending()?;
        let writer = self.writer.take().ok_or_else(finished)?;
        Ok(writer.into_inner()?)
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = record_batch(&self.schema, &self.columns, &self.pending)?;
        self.pending.clear();
        let writer = self.writer.as_mut().ok_or_else(finished)?;
        writer.write(&batch)?;
        if writer.in_progress_size() >= self.options.row_group_bytes {
            writer.flush()?;
        }
        Ok(())
    }
}

fn finished() -> ViewError {
    ViewError::RowShape { reason: "the Parquet sink is already finished".into() }
}

impl<W: Write + Send> RowSink for ParquetSink<W> {
    fn push(&mut self, row: &Row) -> Result<()> {
        if self.writer.is_none() {
            return Err(finished());
        }
        if row.cells.len() != self.columns.len() {
            return Err(ViewError::RowShape {
                reason: format!("{} values for {} columns", row.cells.len(), self.columns.len()),
            });
        }
        self.pending.push(row.clone());
        self.rows += 1;
        if self.pending.len() >= self.options.batch_rows.max(1) {
            self.write_pending()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.write_pending()?;
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
            w.inner_mut().flush()?;
        }
        Ok(())
    }
}

fn record_batch(schema: &SchemaRef, columns: &[Column], rows: &[Row]) -> Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| column_array(c, rows.iter().map(|r| &r.cells[i])))
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

fn column_array<'c>(col: &Column, cells: impl Iterator<Item = &'c Cell>) -> Result<ArrayRef> {
    match (col.kind, col.collection) {
        (ColumnType::Integer, false) => fill(col, Int64Builder::new(), cells, append_i64),
        (ColumnType::Decimal, false) => fill(col, Float64Builder::new(), cells, append_f64),
        (ColumnType::Boolean, false) => fill(col, BooleanBuilder::new(), cells, append_bool),
        (_, false) => fill(col, StringBuilder::new(), cells, append_str),
        (ColumnType::Integer, true) => fill_list(col, Int64Builder::new(), cells, append_i64),
        (ColumnType::Decimal, true) => fill_list(col, Float64Builder::new(), cells, append_f64),
        (ColumnType::Boolean, true) => fill_list(col, BooleanBuilder::new(), cells, append_bool),
        (_, true) => fill_list(col, StringBuilder::new(), cells, append_str),
    }
}

type Append<B> = fn(&mut B, &Cell) -> Result<(), &'static str>;

fn fill<'c, B: ArrayBuilder>(
    col: &Column,
    mut b: B,
    cells: impl Iterator<Item = &'c Cell>,
    append: Append<B>,
) -> Result<ArrayRef> {
    for c in cells {
        append(&mut b, c).map_err(|what| mismatch(col, what))?;
    }
    Ok(b.finish())
}

fn fill_list<'c, B: ArrayBuilder>(
    col: &Column,
    values: B,
    cells: impl Iterator<Item = &'c Cell>,
    append: Append<B>,
) -> Result<ArrayRef> {
    let mut b = ListBuilder::new(values);
    for c in cells {
        match c {
            Cell::Null => b.append(false),
            Cell::List(items) => {
                for item in items {
                    append(b.values(), item).map_err(|what| mismatch(col, what))?;
                }
                b.append(true);
            }
            _ => return Err(mismatch(col, "a single value in a collection column")),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn mismatch(col: &Column, what: &str) -> ViewError {
    ViewError::RowShape { reason: format!("column '{}' cannot hold {what}", col.name) }
}

fn append_i64(b: &mut Int64Builder, c: &Cell) -> Result<(), &'static str> {
    match c {
        Cell::Null => b.append_null(),
        Cell::Integer(i) => b.append_value(*i),
        _ => return Err("a non-integer value"),
    }
    Ok(())
}

fn append_f64(b: &mut Float64Builder, c: &Cell) -> Result<(), &'static str> {
    match c {
        Cell::Null => b.append_null(),
        Cell::Decimal(d) => b.append_value(d.to_f64()),
        Cell::Integer(i) => b.append_value(*i as f64),
        _ => return Err("a non-numeric value"),
    }
    Ok(())
}

fn append_bool(b: &mut BooleanBuilder, c: &Cell) -> Result<(), &'static str> {
    match c {
        Cell::Null => b.append_null(),
        Cell::Boolean(v) => b.append_value(*v),
        _ => return Err("a non-boolean value"),
    }
    Ok(())
}

fn append_str(b: &mut StringBuilder, c: &Cell) -> Result<(), &'static str> {
    match c {
        Cell::Null => b.append_null(),
        Cell::String(s) => b.append_value(s),
        Cell::List(_) => return Err("a list"),
        // Untyped columns may mix kinds: their text keeps them all in one Utf8 column.
        other => b.append_value(other.to_text()),
    }
    Ok(())
}

/// Parquet files in a directory, a new one (`view-0000.parquet`, `view-0001.parquet`, …)
/// every `max_rows` rows or once a file passes `max_bytes`. Sizes are known only for rows
/// already handed to the Arrow writer, so a file may pass `max_bytes` by up to one batch
/// (`batch_rows`) of rows.
pub struct PartitionedParquet {
    dir: PathBuf,
    columns: Vec<Column>,
    options: ParquetOptions,
    max_rows: u64,
    max_bytes: usize,
    current: Option<ParquetSink<BufWriter<File>>>,
    files: Vec<PathBuf>,
}

impl PartitionedParquet {
    /// `dir` must exist. `max_rows` and `max_bytes` of 0 mean no limit of that kind.
    pub fn new(dir: &Path, columns: &[Column], options: ParquetOptions, max_rows: u64, max_bytes: usize) -> Self {
        PartitionedParquet {
            dir: dir.to_path_buf(),
            columns: columns.to_vec(),
            options,
            max_rows,
            max_bytes,
            current: None,
            files: Vec::new(),
        }
    }

    /// The files started so far, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn full(&self, sink: &ParquetSink<BufWriter<File>>) -> bool {
        (self.max_rows > 0 && sink.rows() >= self.max_rows) || (self.max_bytes > 0 && sink.bytes() >= self.max_bytes)
    }
}

impl RowSink for PartitionedParquet {
    fn push(&mut self, row: &Row) -> Result<()> {
        if let Some(sink) = &self.current {
            if self.full(sink) {
                let mut done = self.current.take().expect("checked above");
                done.finish()?;
            }
        }
        if self.current.is_none() {
            let path = self.dir.join(format!("view-{:04}.parquet", self.files.len()));
            self.current = Some(ParquetSink::create(&path, &self.columns, self.options.clone())?);
            self.files.push(path);
        }
        self.current.as_mut().expect("opened above").push(row)
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut sink) = self.current.take() {
            sink.finish()?;
        }
        Ok(())
    }
}
