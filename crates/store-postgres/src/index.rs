//! Writing and removing the index rows of current versions: rows are gathered per table
//! (deduplicated per version, as SQLite's primary keys do) and inserted with one
//! `INSERT … SELECT * FROM unnest(…)` per table, all in one statement, whatever the number
//! of versions (or by binary `COPY` for large batches).

use std::collections::HashSet;

use postgres::types::ToSql;
use postgres::Transaction;
use tsunagu_store::{IndexEntry, IndexValue, StoreError};

use crate::db::Cached;
use crate::query::DAY_MS;
use crate::Pg;

#[derive(Debug, Clone, PartialEq, Hash, Eq)]
enum Cell {
    T(String),
    OptT(Option<String>),
    I(i64),
    OptI(Option<i64>),
    /// Bits of an f64 (so cells can be hashed for deduplication).
    R(u64),
    OptR(Option<u64>),
}

#[derive(Clone, Copy)]
enum Ty {
    Text,
    Int,
    Real,
}

struct Table {
    name: &'static str,
    columns: &'static str,
    types: &'static [Ty],
    /// Whether identical rows of one version are stored once (not for composites, as in
    /// SQLite), and how many leading cells make the identity (a token's display does not).
    dedup: Option<usize>,
    rows: Vec<Vec<Cell>>,
    seen: HashSet<Vec<Cell>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static str, types: &'static [Ty], dedup: Option<usize>) -> Table {
        Table { name, columns, types, dedup, rows: Vec::new(), seen: HashSet::new() }
    }

    /// The rows as one array per column, and `unnest(…)` of them numbered from `first`.
    fn arrays(&self, first: usize) -> (Vec<Box<dyn ToSql + Sync>>, String) {
        let mut arrays: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(self.types.len());
        let mut casts = Vec::with_capacity(self.types.len());
        for (j, ty) in self.types.iter().enumerate() {
            let (array, cast): (Box<dyn ToSql + Sync>, &str) = match ty {
                Ty::Text => (
                    Box::new(
                        self.rows
                            .iter()
                            .map(|r| match &r[j] {
                                Cell::T(s) => Some(s.clone()),
                                Cell::OptT(s) => s.clone(),
                                _ => None,
                            })
                            .collect::<Vec<Option<String>>>(),
                    ),
                    "text[]",
                ),
                Ty::Int => (
                    Box::new(
                        self.rows
                            .iter()
                            .map(|r| match &r[j] {
                                Cell::I(n) => Some(*n),
                                Cell::OptI(n) => *n,
                                _ => None,
                            })
                            .collect::<Vec<Option<i64>>>(),
                    ),
                    "int8[]",
                ),
                Ty::Real => (
                    Box::new(
                        self.rows
                            .iter()
                            .map(|r| match &r[j] {
                                Cell::R(b) => Some(f64::from_bits(*b)),
                                Cell::OptR(b) => b.map(f64::from_bits),
                                _ => None,
                            })
                            .collect::<Vec<Option<f64>>>(),
                    ),
                    "float8[]",
                ),
            };
            arrays.push(array);
            casts.push(format!("${}::{cast}", first + j));
        }
        (arrays, format!("INSERT INTO {} ({}) SELECT * FROM unnest({})", self.name, self.columns, casts.join(", ")))
    }

    fn push(&mut self, row: Vec<Cell>) {
        if let Some(n) = self.dedup {
            if !self.seen.insert(row[..n].to_vec()) {
                return;
            }
        }
        self.rows.push(row);
    }

    /// Binary `COPY` of the rows (for large batches: no statement per batch to plan, no
    /// arrays to build and unpack).
    fn copy(&mut self, tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        use postgres::binary_copy::BinaryCopyInWriter;
        use postgres::types::Type;
        if self.rows.is_empty() {
            return Ok(());
        }
        let types: Vec<Type> = self
            .types
            .iter()
            .map(|t| match t {
                Ty::Text => Type::TEXT,
                Ty::Int => Type::INT8,
                Ty::Real => Type::FLOAT8,
            })
            .collect();
        let sink = tx.copy_in(&format!("COPY {} ({}) FROM STDIN BINARY", self.name, self.columns)).pg()?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in &self.rows {
            let values: Vec<Box<dyn ToSql + Sync>> = row
                .iter()
                .map(|c| -> Box<dyn ToSql + Sync> {
                    match c {
                        Cell::T(s) => Box::new(s.clone()),
                        Cell::OptT(s) => Box::new(s.clone()),
                        Cell::I(n) => Box::new(*n),
                        Cell::OptI(n) => Box::new(*n),
                        Cell::R(b) => Box::new(f64::from_bits(*b)),
                        Cell::OptR(b) => Box::new(b.map(f64::from_bits)),
                    }
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            writer.write(&refs).pg()?;
        }
        writer.finish().pg()?;
        self.rows.clear();
        self.seen.clear();
        Ok(())
    }
}

/// Index rows of one or more versions, gathered before they are written.
pub(crate) struct Rows {
    tables: Vec<Table>,
    fulltext: Vec<FullTextRow>,
    /// The token entries' displays for `idx_token_text` (type, param, display, code,
    /// system), each once and in key order.
    displays: std::collections::BTreeSet<[String; 5]>,
}

const TOKEN: usize = 0;
const STRING: usize = 1;
const DATE: usize = 2;
const DATE_WIDE: usize = 3;
const NUMBER: usize = 4;
const QUANTITY: usize = 5;
const REFERENCE: usize = 6;
const URI: usize = 7;
const COMPOSITE: usize = 8;

const COMMON: &str = "shard, seq, type, param";

impl Rows {
    pub(crate) fn new() -> Rows {
        use Ty::{Int as I, Real as R, Text as T};
        let t = Table::new;
        Rows {
            tables: vec![
                t("idx_token", "shard, seq, type, param, code, system, display", &[T, I, T, T, T, T, T], Some(6)),
                t("idx_string", "shard, seq, type, param, norm, exact", &[T, I, T, T, T, T], Some(6)),
                t("idx_date", "shard, seq, type, param, lo, hi", &[T, I, T, T, I, I], Some(6)),
                t("idx_date_wide", "shard, seq, type, param, lo, hi", &[T, I, T, T, I, I], Some(6)),
                t("idx_number", "shard, seq, type, param, value", &[T, I, T, T, R], Some(5)),
                t("idx_quantity", "shard, seq, type, param, code, value, system", &[T, I, T, T, T, R, T], Some(7)),
                t(
                    "idx_reference",
                    "shard, seq, type, param, target_id, target_type, url",
                    &[T, I, T, T, T, T, T],
                    Some(7),
                ),
                t("idx_uri", "shard, seq, type, param, value", &[T, I, T, T, T], Some(5)),
                t(
                    "idx_composite",
                    "shard, seq, type, param, c_code, c_system, code, system, display, norm, exact, value, uri, \
                     lo, hi, target_id, target_type, url",
                    &[T, I, T, T, T, T, T, T, T, T, T, R, T, I, I, T, T, T],
                    None,
                ),
            ],
            fulltext: Vec::new(),
            displays: Default::default(),
        }
    }

    /// The rows of one version's entries.
    pub(crate) fn add(&mut self, shard: &str, seq: i64, ty: &str, entries: &[IndexEntry]) {
        let _ = COMMON;
        for t in &mut self.tables {
            t.seen.clear();
        }
        let text = |s: &str| Cell::T(s.to_string());
        let opt = |s: &Option<String>| Cell::T(s.clone().unwrap_or_default());
        for e in entries {
            let head = || vec![text(shard), Cell::I(seq), text(ty), text(&e.param)];
            let mut row = head();
            let table = match &e.value {
                IndexValue::Token { system, code, display } => {
                    if let Some(d) = display {
                        let key = [ty, &e.param, d, code, system.as_deref().unwrap_or("")].map(str::to_string);
                        self.displays.insert(key);
                    }
                    row.extend([text(code), opt(system), Cell::OptT(display.clone())]);
                    TOKEN
                }
                IndexValue::String { norm, exact } => {
                    row.extend([text(norm), text(exact)]);
                    STRING
                }
                IndexValue::Date { lo, hi } => {
                    row.extend([Cell::I(*lo), Cell::I(*hi)]);
                    if hi.saturating_sub(*lo) > DAY_MS {
                        self.tables[DATE_WIDE].push(row.clone());
                    }
                    DATE
                }
                IndexValue::Number { value } => {
                    row.push(Cell::R(value.to_bits()));
                    NUMBER
                }
                IndexValue::Quantity { system, code, value } => {
                    row.extend([opt(code), Cell::R(value.to_bits()), opt(system)]);
                    QUANTITY
                }
                IndexValue::Reference { target_type, target_id, url } => {
                    row.extend([opt(target_id), opt(target_type), text(url)]);
                    REFERENCE
                }
                IndexValue::Uri { value } => {
                    row.push(text(value));
                    URI
                }
                IndexValue::Composite { system, code, second } => {
                    let Some(cols) = composite_columns(second) else { continue };
                    row.extend([text(code), opt(system)]);
                    row.extend(cols);
                    COMPOSITE
                }
                IndexValue::FullText { .. } => continue,
            };
            self.tables[table].push(row);
        }
        let column = |param: &str| {
            entries.iter().find_map(|e| match &e.value {
                IndexValue::FullText { tokens } if e.param == param => Some(tokens.as_str()),
                _ => None,
            })
        };
        if let Some((tsv, overflow)) = crate::fulltext::tsvector(column("_text"), column("_content")) {
            let text = |param| crate::fulltext::token_text(column(param));
            self.fulltext.push(FullTextRow {
                shard: shard.to_string(),
                seq,
                tsv,
                narrative: text("_text"),
                content: text("_content"),
                overflow,
            });
        }
    }

    /// Writes the rows gathered: by binary `COPY` with `copy` (large batches), else in one
    /// statement (the same for every write, so prepared once per connection) of one
    /// `INSERT … unnest` per table.
    pub(crate) fn write(mut self, tx: &mut Cached<'_, Transaction<'_>>, copy: bool) -> Result<(), StoreError> {
        write_displays(tx, std::mem::take(&mut self.displays))?;
        let rows = std::mem::take(&mut self.fulltext);
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let mut shards = Vec::with_capacity(rows.len());
        let (mut tsvs, mut narratives, mut contents, mut overflows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            shards.push(r.shard);
            tsvs.push(r.tsv);
            narratives.push(r.narrative);
            contents.push(r.content);
            overflows.push(r.overflow);
        }
        if copy {
            for t in &mut self.tables {
                t.copy(tx.c)?;
            }
            if !seqs.is_empty() {
                tx.execute(&fulltext_sql(1), &[&shards, &seqs, &tsvs, &narratives, &contents, &overflows]).pg()?;
            }
            return Ok(());
        }
        if self.tables.iter().all(|t| t.rows.is_empty()) && seqs.is_empty() {
            return Ok(());
        }
        let mut arrays: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut ctes = Vec::new();
        for (i, t) in self.tables.iter().enumerate() {
            let (mut a, sql) = t.arrays(arrays.len() + 1);
            arrays.append(&mut a);
            ctes.push(format!("i{i} AS ({sql})"));
        }
        let sql = format!("WITH {} {}", ctes.join(", "), fulltext_sql(arrays.len() + 1));
        let mut refs: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|a| a.as_ref()).collect();
        refs.extend([&shards as &(dyn ToSql + Sync), &seqs, &tsvs, &narratives, &contents, &overflows]);
        tx.execute(&sql, &refs).pg()?;
        Ok(())
    }
}

/// Adds the displays not yet in `idx_token_text`, in key order (so that two writers
/// adding the same ones wait for each other rather than deadlock).
fn write_displays(
    tx: &mut Cached<'_, Transaction<'_>>,
    displays: std::collections::BTreeSet<[String; 5]>,
) -> Result<(), StoreError> {
    if displays.is_empty() {
        return Ok(());
    }
    let mut columns: [Vec<String>; 5] = Default::default();
    for row in displays {
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let [types, params, texts, codes, systems] = &columns;
    tx.execute(
        "INSERT INTO idx_token_text (type, param, display, code, system, digest) \
         SELECT t, p, d, c, s, sha256(convert_to(length(d) || ':' || d || length(c) || ':' || c || s, 'UTF8')) \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(t, p, d, c, s) \
         ON CONFLICT DO NOTHING",
        &[types as &(dyn ToSql + Sync), params, texts, codes, systems],
    )
    .pg()?;
    Ok(())
}

/// One version's `idx_fulltext` row: the vector and the token texts phrases are checked in.
struct FullTextRow {
    shard: String,
    seq: i64,
    tsv: String,
    narrative: Option<String>,
    content: Option<String>,
    /// The vector had to leave tokens out (texts of hundreds of thousands of words).
    overflow: bool,
}

fn fulltext_sql(first: usize) -> String {
    format!(
        "INSERT INTO idx_fulltext (shard, seq, tsv, narrative, content, overflow) \
         SELECT s, q, t::tsvector, n, c, o \
         FROM unnest(${}::text[], ${}::int8[], ${}::text[], ${}::text[], ${}::text[], ${}::bool[]) AS u(s, q, t, n, c, o)",
        first,
        first + 1,
        first + 2,
        first + 3,
        first + 4,
        first + 5
    )
}

/// code, system, display, norm, exact, value, uri, lo, hi, target_id, target_type, url of
/// a composite's second component: in the columns of its own kind.
fn composite_columns(second: &IndexValue) -> Option<Vec<Cell>> {
    let t = |s: &str| Cell::OptT(Some(s.to_string()));
    let opt = |s: &Option<String>| Cell::OptT(Some(s.clone().unwrap_or_default()));
    let mut c = vec![
        Cell::OptT(None),
        Cell::OptT(None),
        Cell::OptT(None),
        Cell::OptT(None),
        Cell::OptT(None),
        Cell::OptR(None),
        Cell::OptT(None),
        Cell::OptI(None),
        Cell::OptI(None),
        Cell::OptT(None),
        Cell::OptT(None),
        Cell::OptT(None),
    ];
    match second {
        IndexValue::Token { system, code, display } => {
            c[0] = t(code);
            c[1] = opt(system);
            c[2] = Cell::OptT(display.clone());
        }
        IndexValue::String { norm, exact } => (c[3], c[4]) = (t(norm), t(exact)),
        IndexValue::Date { lo, hi } => (c[7], c[8]) = (Cell::OptI(Some(*lo)), Cell::OptI(Some(*hi))),
        IndexValue::Number { value } => c[5] = Cell::OptR(Some(value.to_bits())),
        IndexValue::Quantity { system, code, value } => {
            (c[0], c[1], c[5]) = (opt(code), opt(system), Cell::OptR(Some(value.to_bits())));
        }
        IndexValue::Reference { target_type, target_id, url } => {
            (c[9], c[10], c[11]) = (opt(target_id), opt(target_type), t(url));
        }
        IndexValue::Uri { value } => c[6] = t(value),
        IndexValue::Composite { .. } | IndexValue::FullText { .. } => return None,
    }
    Some(c)
}

/// Removes every index row of the version stored at `seq`, in one statement; with
/// `superseded_in` (its shard), also marks that version no longer current.
pub(crate) fn delete(
    tx: &mut Cached<'_, Transaction<'_>>,
    seq: i64,
    superseded_in: Option<&str>,
) -> Result<(), StoreError> {
    let ctes: Vec<String> = crate::schema::INDEX_TABLES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("d{i} AS (DELETE FROM {t} WHERE seq = $1)"))
        .collect();
    match superseded_in {
        Some(shard) => tx.execute(
            &format!(
                "WITH {} UPDATE resource SET current = false WHERE seq = $1 AND shard = $2 AND current",
                ctes.join(", ")
            ),
            &[&seq, &shard],
        ),
        None => tx.execute(&format!("WITH {} SELECT 1", ctes.join(", ")), &[&seq]),
    }
    .pg()?;
    Ok(())
}
