//! The text formats: a JSON array of row objects, NDJSON (one object per line), and CSV
//! (RFC 4180: CRLF line ends, a header row, fields quoted when they need it).

use super::RowSink;
use crate::error::{Result, ViewError};
use crate::row::{Column, Row};
use std::io::Write;

fn check_width(row: &Row, columns: &[Column]) -> Result<()> {
    if row.cells.len() != columns.len() {
        return Err(ViewError::RowShape {
            reason: format!("{} values for {} columns", row.cells.len(), columns.len()),
        });
    }
    Ok(())
}

fn finished() -> ViewError {
    ViewError::RowShape { reason: "the sink is already finished".into() }
}

/// A JSON array of row objects, written as rows arrive.
pub struct JsonSink<W: Write> {
    out: W,
    columns: Vec<Column>,
    rows: u64,
    done: bool,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, columns: &[Column]) -> Self {
        JsonSink { out, columns: columns.to_vec(), rows: 0, done: false }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> RowSink for JsonSink<W> {
    fn push(&mut self, row: &Row) -> Result<()> {
        if self.done {
            return Err(finished());
        }
        check_width(row, &self.columns)?;
        self.out.write_all(if self.rows == 0 { b"[" } else { b"," })?;
        serde_json::to_writer(&mut self.out, &row.to_json(&self.columns)).map_err(std::io::Error::from)?;
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if !self.done {
            self.out.write_all(if self.rows == 0 { b"[]\n" } else { b"]\n" })?;
            self.out.flush()?;
            self.done = true;
        }
        Ok(())
    }
}

/// One JSON object per line.
pub struct NdjsonSink<W: Write> {
    out: W,
    columns: Vec<Column>,
    done: bool,
}

impl<W: Write> NdjsonSink<W> {
    pub fn new(out: W, columns: &[Column]) -> Self {
        NdjsonSink { out, columns: columns.to_vec(), done: false }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> RowSink for NdjsonSink<W> {
    fn push(&mut self, row: &Row) -> Result<()> {
        if self.done {
            return Err(finished());
        }
        check_width(row, &self.columns)?;
        serde_json::to_writer(&mut self.out, &row.to_json(&self.columns)).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.done = true;
        self.out.flush()?;
        Ok(())
    }
}

/// CSV with a header row. Nulls are empty fields; collection and complex values are
/// written as their JSON text.
pub struct CsvSink<W: Write> {
    out: W,
    columns: Vec<Column>,
    header_written: bool,
    done: bool,
}

impl<W: Write> CsvSink<W> {
    pub fn new(out: W, columns: &[Column]) -> Self {
        CsvSink { out, columns: columns.to_vec(), header_written: false, done: false }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn header(&mut self) -> Result<()> {
        if !self.header_written {
            let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
            write_record(&mut self.out, names.into_iter())?;
            self.header_written = true;
        }
        Ok(())
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    fn push(&mut self, row: &Row) -> Result<()> {
        if self.done {
            return Err(finished());
        }
        check_width(row, &self.columns)?;
        self.header()?;
        let fields: Vec<String> = row.cells.iter().map(|c| c.to_text()).collect();
        write_record(&mut self.out, fields.iter().map(String::as_str))?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // A view with no rows still gives its header.
        self.header()?;
        self.done = true;
        self.out.flush()?;
        Ok(())
    }
}

fn write_record<'f>(out: &mut impl Write, fields: impl Iterator<Item = &'f str>) -> std::io::Result<()> {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.write_all(b"\"")?;
            out.write_all(f.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(f.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Cell, ColumnType};

    fn cols() -> Vec<Column> {
        let c = |n: &str, kind, collection| Column { name: n.into(), fhir_type: None, kind, collection };
        vec![
            c("id", ColumnType::String, false),
            c("n", ColumnType::Integer, false),
            c("tags", ColumnType::String, true),
        ]
    }

    fn row(id: &str, n: Option<i64>, tags: &[&str]) -> Row {
        Row {
            cells: vec![
                Cell::String(id.into()),
                n.map(Cell::Integer).unwrap_or(Cell::Null),
                Cell::List(tags.iter().map(|t| Cell::String(t.to_string())).collect()),
            ],
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut s = CsvSink::new(Vec::new(), &cols());
        s.push(&row("a,b", Some(1), &[])).unwrap();
        s.push(&row("say \"hi\"", None, &["x"])).unwrap();
        s.push(&row("line\nbreak", Some(-2), &["x", "y"])).unwrap();
        s.finish().unwrap();
        let text = String::from_utf8(s.into_inner()).unwrap();
        assert_eq!(
            text,
            "id,n,tags\r\n\"a,b\",1,[]\r\n\"say \"\"hi\"\"\",,\"[\"\"x\"\"]\"\r\n\"line\nbreak\",-2,\"[\"\"x\"\",\"\"y\"\"]\"\r\n"
        );
    }

    #[test]
    fn csv_without_rows_has_a_header() {
        let mut s = CsvSink::new(Vec::new(), &cols());
        s.finish().unwrap();
        assert_eq!(String::from_utf8(s.into_inner()).unwrap(), "id,n,tags\r\n");
    }

    #[test]
    fn json_and_ndjson_round_trip() {
        let rows = [row("a", Some(1), &["t"]), row("b", None, &[])];
        let mut j = JsonSink::new(Vec::new(), &cols());
        let mut nd = NdjsonSink::new(Vec::new(), &cols());
        for r in &rows {
            j.push(r).unwrap();
            nd.push(r).unwrap();
        }
        j.finish().unwrap();
        nd.finish().unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&j.into_inner()).unwrap();
        assert_eq!(parsed, serde_json::json!([{"id": "a", "n": 1, "tags": ["t"]}, {"id": "b", "n": null, "tags": []}]));
        let lines = String::from_utf8(nd.into_inner()).unwrap();
        let objs: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(serde_json::Value::Array(objs), parsed);
    }

    #[test]
    fn empty_json_is_an_empty_array_and_wrong_widths_are_refused() {
        let mut j = JsonSink::new(Vec::new(), &cols());
        assert!(j.push(&Row { cells: vec![Cell::Null] }).is_err());
        j.finish().unwrap();
        assert!(j.push(&row("a", None, &[])).is_err());
        assert_eq!(j.into_inner(), b"[]\n");
    }
}
