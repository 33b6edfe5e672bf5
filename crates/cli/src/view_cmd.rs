//! `tsunagu view run VIEW.json [FILE…]` and `tsunagu view export VIEW.json… --to DIR`:
//! SQL on FHIR ViewDefinitions over resources in files (NDJSON, Bundles, single
//! resources) or over the data directory, written as JSON, NDJSON, CSV or Parquet.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use tsunagu_store::SearchQuery;
use tsunagu_view::{
    CsvSink, Format, JsonSink, NdjsonSink, ParquetOptions, ParquetSink, PartitionedParquet, RowSink, View,
    ViewDefinition,
};

/// Reads and checks a ViewDefinition file; a broken one is refused before any data is read.
fn load_view(path: &Path) -> Result<View, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    ViewDefinition::from_json(&json).map_err(|e| format!("{}: {e}\n{}", path.display(), e.message_ja()))
}

fn format_of(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| format!("unknown format '{name}' (json, ndjson, csv or parquet)"))
}

fn sink_for<'a>(format: Format, out: Box<dyn Write + Send + 'a>, view: &View) -> Result<Box<dyn RowSink + 'a>, String> {
    Ok(match format {
        Format::Json => Box::new(JsonSink::new(out, view.columns())),
        Format::Ndjson => Box::new(NdjsonSink::new(out, view.columns())),
        Format::Csv => Box::new(CsvSink::new(out, view.columns())),
        Format::Parquet => {
            Box::new(ParquetSink::new(out, view.columns(), ParquetOptions::default()).map_err(|e| e.to_string())?)
        }
    })
}

/// `view run`: one view over `files` (or the store), to `out` (standard output by default).
pub fn run(
    cfg: &crate::config::Config,
    view: &Path,
    files: &[PathBuf],
    format: &str,
    out: Option<&Path>,
) -> Result<(), String> {
    let format = format_of(format)?;
    let view = load_view(view)?;
    let writer: Box<dyn Write + Send> = match out {
        Some(p) => Box::new(BufWriter::new(File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let mut sink = sink_for(format, writer, &view)?;
    let rows = feed(cfg, &view, files, sink.as_mut())?;
    sink.finish().map_err(|e| e.to_string())?;
    eprintln!("{rows} rows");
    Ok(())
}

/// `view export`: each view over the store (or `files`) into `DIR/{view name}/`, Parquet
/// split into files of at most `max_rows` rows.
pub fn export(
    cfg: &crate::config::Config,
    views: &[PathBuf],
    files: &[PathBuf],
    to: &Path,
    format: &str,
    max_rows: u64,
) -> Result<(), String> {
    let format = format_of(format)?;
    // Every view is checked before anything is written.
    let loaded: Vec<(String, View)> = views
        .iter()
        .map(|p| {
            let v = load_view(p)?;
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("view");
            Ok((v.name().unwrap_or(stem).to_string(), v))
        })
        .collect::<Result<_, String>>()?;
    for (name, view) in &loaded {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("view name '{name}' cannot name a directory (letters, digits, _ and - only)"));
        }
        let dir = to.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let start = Instant::now();
        let mut sink: Box<dyn RowSink> = match format {
            Format::Parquet => {
                Box::new(PartitionedParquet::new(&dir, view.columns(), ParquetOptions::default(), max_rows, 0))
            }
            other => {
                let ext = match other {
                    Format::Json => "json",
                    Format::Ndjson => "ndjson",
                    _ => "csv",
                };
                let path = dir.join(format!("view.{ext}"));
                let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                sink_for(other, Box::new(BufWriter::new(file)), view)?
            }
        };
        let rows = feed(cfg, view, files, sink.as_mut())?;
        sink.finish().map_err(|e| e.to_string())?;
        let secs = start.elapsed().as_secs_f64();
        println!("{name}: {rows} rows in {secs:.2} s ({:.0} rows/s) → {}", rows as f64 / secs.max(1e-9), dir.display());
    }
    Ok(())
}

/// Runs `view` over every resource of its type in `files` (or, with none, in the store)
/// into `sink`; the number of rows.
fn feed(cfg: &crate::config::Config, view: &View, files: &[PathBuf], sink: &mut dyn RowSink) -> Result<u64, String> {
    let mut rows = 0u64;
    let mut each = |resource: &Value| -> Result<(), String> {
        view.for_each_row(resource, |row| {
            rows += 1;
            sink.push(&row)
        })
        .map_err(|e| {
            let id = resource.get("id").and_then(Value::as_str).unwrap_or("?");
            format!("{}/{id}: {e}", view.resource_type())
        })
    };
    if files.is_empty() {
        from_store(cfg, view.resource_type(), &mut each)?;
    } else {
        for f in files {
            from_file(f, view.resource_type(), &mut each)?;
        }
    }
    Ok(rows)
}

/// Pages through the current resources of `ty` in write order (bounded memory).
fn from_store(
    cfg: &crate::config::Config,
    ty: &str,
    each: &mut dyn FnMut(&Value) -> Result<(), String>,
) -> Result<(), String> {
    let store = crate::open_store(cfg)?;
    let q = SearchQuery { resource_type: Some(ty.to_string()), count: 1000, ..Default::default() };
    // The walk stops at the first failure; the failure is the answer.
    let mut failed = None;
    tsunagu_store::scan(store.as_ref(), q, |v| -> Result<bool, tsunagu_store::StoreError> {
        let fed = serde_json::from_slice::<Value>(&v.body)
            .map_err(|e| format!("{ty}/{}: {e}", v.id))
            .and_then(|resource| each(&resource));
        Ok(fed.map_err(|e| failed = Some(e)).is_ok())
    })
    .map_err(|e| e.to_string())?;
    failed.map_or(Ok(()), Err)
}

/// A file of resources: one JSON resource (a Bundle's entries are walked) or NDJSON.
fn from_file(path: &Path, ty: &str, each: &mut dyn FnMut(&Value) -> Result<(), String>) -> Result<(), String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut reader = BufReader::new(File::open(path).map_err(|e| named(&e))?);
    let mut first = String::new();
    reader.read_line(&mut first).map_err(|e| named(&e))?;
    // One resource per line when the first line holds a whole object; else one document.
    if let Ok(v) = serde_json::from_str::<Value>(first.trim()) {
        visit(&v, ty, each)?;
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| named(&e))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| named(&format!("line {}: {e}", n + 2)))?;
            visit(&v, ty, each)?;
        }
        return Ok(());
    }
    let mut rest = first;
    std::io::Read::read_to_string(&mut reader, &mut rest).map_err(|e| named(&e))?;
    let v: Value = serde_json::from_str(&rest).map_err(|e| named(&format!("not JSON or NDJSON: {e}")))?;
    visit(&v, ty, each)
}

fn visit(resource: &Value, ty: &str, each: &mut dyn FnMut(&Value) -> Result<(), String>) -> Result<(), String> {
    let rt = resource.get("resourceType").and_then(Value::as_str);
    if rt == Some(ty) {
        return each(resource);
    }
    if rt == Some("Bundle") {
        for entry in resource.get("entry").and_then(Value::as_array).into_iter().flatten() {
            if let Some(r) = entry.get("resource") {
                visit(r, ty, each)?;
            }
        }
    }
    Ok(())
}
