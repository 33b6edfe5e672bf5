//! A consistent, read-only view of a SQLite data directory for backups and checks.
//!
//! A [`Snapshot`] is one read transaction on its own read-only connection. In WAL mode
//! that transaction sees the database exactly as it was at its first read, while the
//! server's writer goes on committing: a backup is consistent without pausing service.
//! It never writes, so it may be opened next to a running server (another process).

use crate::sqlite::row_to_version;
use crate::{ResourceVersion, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write;
use std::path::Path;

/// Tables that hold primary data; every other table is a derived index that a restore
/// rebuilds rather than copies.
/// Tables that are not derived from the resources: the versions themselves and the audit
/// chain (which no rebuild could give back).
const PRIMARY_TABLES: &[&str] = &["resource", "audit"];
/// Statistics derived from the other tables, checked against them (`consistency_check`),
/// not row by row against a fresh extraction of the indexes: the counts are recounted, and
/// the displays `:text` looks up must cover `idx_token`'s (they may hold displays no row
/// has any longer).
const STATISTICS_TABLES: &[&str] = &["idx_presence", "idx_token_text"];

pub struct Snapshot {
    conn: Connection,
    high_seq: i64,
}

impl Snapshot {
    /// Opens `dir/tsunagu.sqlite` read-only and pins the snapshot.
    pub fn open(dir: &Path) -> Result<Snapshot, StoreError> {
        let path = dir.join("tsunagu.sqlite");
        if !path.exists() {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch("BEGIN")?;
        // The first read starts the read transaction; everything after sees this state.
        let high_seq = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM resource", [], |r| r.get(0))?;
        Ok(Snapshot { conn, high_seq })
    }

    /// The last write (by `seq`) this snapshot contains.
    pub fn high_seq(&self) -> i64 {
        self.high_seq
    }

    /// Number of versions written up to and including `seq`. History is append-only, so
    /// this equals the count a snapshot taken at `seq` saw, unless history was rewritten.
    pub fn count_versions_upto(&self, seq: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM resource WHERE seq <= ?1", [seq], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Every version in write order.
    pub fn versions<E: From<StoreError>>(&self, mut f: impl FnMut(ResourceVersion) -> Result<(), E>) -> Result<(), E> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM resource ORDER BY seq", crate::sqlite::COLUMNS))
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            f(row_to_version(row).map_err(StoreError::from)?)?;
        }
        Ok(())
    }

    /// SQLite's `integrity_check`: empty when the file is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let msgs: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        Ok(if msgs == ["ok"] { Vec::new() } else { msgs })
    }

    /// The invariants the store keeps between `resource` and its indexes; empty when they
    /// hold. Index completeness (every value that should be indexed is) needs the FHIR
    /// layer and is checked by rebuilding the indexes and comparing [`Self::index_rows`].
    pub fn consistency_check(&self) -> Result<Vec<String>, StoreError> {
        let checks: &[(&str, &str)] = &[
            (
                "resources without exactly one current version",
                "SELECT COUNT(*) FROM (SELECT 1 FROM resource GROUP BY type, id HAVING SUM(current) != 1)",
            ),
            (
                "versions not numbered 1, 2, 3 … in write order",
                "SELECT COUNT(*) FROM (SELECT version, LAG(version) OVER (PARTITION BY type, id ORDER BY seq) AS prev
                   FROM resource) WHERE (prev IS NULL AND version != 1) OR (prev IS NOT NULL AND version != prev + 1)",
            ),
            (
                "current flag not on the newest version",
                "SELECT COUNT(*) FROM resource r WHERE current = 1 AND version !=
                   (SELECT MAX(version) FROM resource n WHERE n.type = r.type AND n.id = r.id)",
            ),
            (
                "live versions with an empty body or deletions with a body",
                "SELECT COUNT(*) FROM resource WHERE (deleted = 0) = (length(body) = 0)",
            ),
        ];
        let mut problems = Vec::new();
        for (what, sql) in checks {
            let n: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
            if n != 0 {
                problems.push(format!("{n} {what}"));
            }
        }
        for table in self.index_tables()? {
            let has_seq = self.columns(&table)?.iter().any(|c| c == "seq");
            if !has_seq {
                continue;
            }
            let n: i64 = self.conn.query_row(
                &format!(
                    "SELECT COUNT(*) FROM \"{table}\" WHERE seq NOT IN
                       (SELECT seq FROM resource WHERE current = 1 AND deleted = 0)"
                ),
                [],
                |r| r.get(0),
            )?;
            if n != 0 {
                problems.push(format!("{n} rows of {table} point at a version that is not current and live"));
            }
        }
        let presence: bool =
            self.conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_presence'", [], |r| r.get(0))?;
        if presence {
            problems.extend(crate::sqlite_presence::recount_differences(&self.conn)?);
        }
        let token_texts: bool =
            self.conn
                .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_token_text'", [], |r| r.get(0))?;
        if token_texts {
            let n: i64 = self.conn.query_row(
                "SELECT COUNT(*) FROM idx_token t WHERE display IS NOT NULL AND NOT EXISTS (SELECT 1 FROM idx_token_text x \
                 WHERE x.type = t.type AND x.param = t.param AND x.display = t.display AND x.code = t.code \
                 AND x.system = t.system)",
                [],
                |r| r.get(0),
            )?;
            if n != 0 {
                problems.push(format!("{n} rows of idx_token whose display idx_token_text does not hold"));
            }
        }
        Ok(problems)
    }

    /// Names of the derived (index) tables, sorted. A full-text (FTS5) table is listed by
    /// its own name, not by its shadow tables: their layout depends on the order of
    /// inserts and merges, so two stores with the same index would differ there.
    pub fn index_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let tables: Vec<(String, Option<String>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let fts: Vec<&str> = tables
            .iter()
            .filter(|(_, sql)| sql.as_deref().is_some_and(|q| q.to_ascii_uppercase().contains("USING FTS5")))
            .map(|(n, _)| n.as_str())
            .collect();
        let shadow = |n: &str| fts.iter().any(|f| n.strip_prefix(f).is_some_and(|rest| rest.starts_with('_')));
        Ok(tables
            .iter()
            .map(|(n, _)| n)
            .filter(|n| ![PRIMARY_TABLES, STATISTICS_TABLES].concat().contains(&n.as_str()) && !shadow(n))
            .cloned()
            .collect())
    }

    /// The FTS5 tables among [`Self::index_tables`].
    fn is_full_text(&self, table: &str) -> Result<bool, StoreError> {
        let sql: Option<String> =
            self.conn.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [table], |r| r.get(0))?;
        Ok(sql.is_some_and(|q| q.to_ascii_uppercase().contains("USING FTS5")))
    }

    /// Every row of every index table, as text, in a canonical order: two stores hold the
    /// same indexes exactly when these sequences are equal.
    pub fn index_rows<E: From<StoreError>>(&self, mut f: impl FnMut(&str, &str) -> Result<(), E>) -> Result<(), E> {
        for table in self.index_tables()? {
            if self.is_full_text(&table)? {
                // Contentless: what it holds is its term instances, read in a canonical
                // order through an fts5vocab view (a temporary table, on this connection).
                let vocab = format!("temp.\"{table}_vocab\"");
                self.conn
                    .execute_batch(&format!(
                        "CREATE VIRTUAL TABLE IF NOT EXISTS {vocab} USING fts5vocab(main, \"{table}\", 'instance')"
                    ))
                    .map_err(StoreError::from)?;
                let mut stmt = self
                    .conn
                    .prepare(&format!("SELECT term, doc, col, offset FROM {vocab} ORDER BY term, doc, col, offset"))
                    .map_err(StoreError::from)?;
                let mut rows = stmt.query([]).map_err(StoreError::from)?;
                while let Some(row) = rows.next().map_err(StoreError::from)? {
                    let (term, doc, col, offset): (String, i64, String, i64) = (
                        row.get(0).map_err(StoreError::from)?,
                        row.get(1).map_err(StoreError::from)?,
                        row.get(2).map_err(StoreError::from)?,
                        row.get(3).map_err(StoreError::from)?,
                    );
                    f(&table, &format!("{term}\t{doc}\t{col}\t{offset}\t"))?;
                }
                continue;
            }
            let cols = self.columns(&table)?;
            // A canonical order that needs no sort (sorting a million rows by every
            // column takes seconds): the primary key when there is one (WITHOUT ROWID
            // tables are stored in it), else write order, else every column.
            let pk = self.primary_key(&table)?;
            let order = if !pk.is_empty() {
                pk.join(", ")
            } else if cols.iter().any(|c| c == "seq") {
                "seq, rowid".to_string()
            } else {
                (1..=cols.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
            };
            let mut stmt =
                self.conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY {order}")).map_err(StoreError::from)?;
            let mut rows = stmt.query([]).map_err(StoreError::from)?;
            let mut line = String::new();
            while let Some(row) = rows.next().map_err(StoreError::from)? {
                line.clear();
                for i in 0..cols.len() {
                    let v: rusqlite::types::Value = row.get(i).map_err(StoreError::from)?;
                    let _ = write!(line, "{v:?}\t");
                }
                f(&table, &line)?;
            }
        }
        Ok(())
    }

    fn primary_key(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk"))?;
        let cols: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(cols)
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let cols: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(cols)
    }
}

/// A row of `resource` that cannot be read as a version (a body stored as TEXT, a NULL
/// column). Every reader fails on it, so [`Snapshot::versions_with_current`] hands it on
/// for a check to report instead of ending the walk.
#[derive(Debug, Clone)]
pub struct UnreadableRow {
    pub seq: i64,
    /// `Type/id/_history/n`, as far as the row's columns can be read.
    pub reference: String,
    pub error: String,
}

/// An index row that one of two compared snapshots holds and the other does not
/// ([`Snapshot::compare_index`]). A row whose key is in both but whose other columns
/// differ is reported twice, once from each side.
#[derive(Debug, Clone)]
pub struct IndexRowDiff<'t> {
    pub table: &'t str,
    /// In `self` only (`true`) or in the other snapshot only (`false`).
    pub in_self: bool,
    /// The version the row belongs to: its `seq` column (the rowid of a full-text row).
    pub seq: Option<i64>,
    /// The row as `column=value` pairs, long values cut short.
    pub row: String,
}

/// How the rows of one index table compared ([`Snapshot::compare_index`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexTableComparison {
    pub table: String,
    pub rows_self: u64,
    pub rows_other: u64,
    pub only_self: u64,
    pub only_other: u64,
}

/// What [`Snapshot::compare_index`] selects from one index table: key columns first.
struct TableShape {
    columns: Vec<String>,
    /// The first `key` columns order the rows; the rest are compared for equality only.
    key: usize,
    full_text: bool,
    /// Position of the version's `seq` among `columns`.
    seq: Option<usize>,
    /// Position of an `idx_record` blob, compared by the rows it lists rather than bytes.
    record: Option<usize>,
}

impl Snapshot {
    /// Every version in write order with its `current` flag, for checks: a row that cannot
    /// be read as a version is passed on as an [`UnreadableRow`] and the walk goes on.
    /// Memory stays at one version whatever the size of the store.
    pub fn versions_with_current<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Result<(ResourceVersion, bool), UnreadableRow>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {}, current FROM resource ORDER BY seq", crate::sqlite::COLUMNS))
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let current = matches!(row.get_ref(8), Ok(rusqlite::types::ValueRef::Integer(n)) if n != 0);
            match row_to_version(row) {
                Ok(v) => f(Ok((v, current)))?,
                Err(e) => {
                    let text = |i: usize| match row.get_ref(i) {
                        Ok(v) => render_value(v),
                        Err(_) => "?".to_string(),
                    };
                    let reference = format!("{}/{}/_history/{}", text(0), text(1), text(2)).replace('"', "");
                    let seq = row.get(7).unwrap_or(0);
                    f(Err(UnreadableRow { seq, reference, error: e.to_string() }))?
                }
            }
        }
        Ok(())
    }

    /// `Type/id/_history/n` of the version stored at `seq`.
    pub fn version_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT type, id, version FROM resource WHERE seq = ?1", [seq], |r| {
                Ok(format!("{}/{}/_history/{}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()?)
    }

    /// Compares the index rows of this snapshot with `other`'s (the tables of
    /// [`Self::index_tables`] but `setting`), table by table, as one
    /// ordered merge of the two (both read in the same key order): memory stays at a row
    /// per side however large the tables. Calls `f` for every row found on one side only
    /// and returns the counts per table. Index records (`idx_record`) are compared by the
    /// rows they list, not by their bytes, so records rebuilt by a migration (same rows,
    /// another order) compare equal.
    pub fn compare_index<E: From<StoreError>>(
        &self,
        other: &Snapshot,
        mut f: impl FnMut(&IndexRowDiff<'_>) -> Result<(), E>,
    ) -> Result<Vec<IndexTableComparison>, E> {
        let mut tables = self.index_tables()?;
        tables.extend(other.index_tables()?);
        tables.sort();
        tables.dedup();
        // Small persistent state (a reindex position), not an index.
        tables.retain(|t| t != "setting");
        let mut out = Vec::with_capacity(tables.len());
        for table in &tables {
            // The other snapshot's layout wins when both have the table: it is the one
            // the current version of the store writes.
            let shape = match other.table_shape(table)? {
                Some(s) => s,
                None => self.table_shape(table)?.ok_or_else(|| StoreError::Corrupt(format!("table {table}")))?,
            };
            let mut stmt_a = self.ordered_rows(table, &shape)?;
            let mut stmt_b = other.ordered_rows(table, &shape)?;
            let mut rows_a = match stmt_a.as_mut() {
                Some(s) => Some(s.query([]).map_err(StoreError::from)?),
                None => None,
            };
            let mut rows_b = match stmt_b.as_mut() {
                Some(s) => Some(s.query([]).map_err(StoreError::from)?),
                None => None,
            };
            let mut counts = IndexTableComparison { table: table.clone(), ..Default::default() };
            let mut a = advance(&mut rows_a)?;
            let mut b = advance(&mut rows_b)?;
            counts.rows_self += a.is_some() as u64;
            counts.rows_other += b.is_some() as u64;
            loop {
                let order = match (a, b) {
                    (None, None) => break,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(ra), Some(rb)) => compare_rows(ra, rb, 0..shape.key)?,
                };
                let (take_a, take_b) = match order {
                    std::cmp::Ordering::Less => (true, false),
                    std::cmp::Ordering::Greater => (false, true),
                    std::cmp::Ordering::Equal => {
                        let (ra, rb) = (a.expect("a row"), b.expect("a row"));
                        let same = compare_rows(ra, rb, shape.key..shape.columns.len())?.is_eq()
                            && match shape.record {
                                Some(i) => {
                                    record_text(ra.get_ref(i).map_err(StoreError::from)?)
                                        == record_text(rb.get_ref(i).map_err(StoreError::from)?)
                                }
                                None => true,
                            };
                        if !same {
                            for (row, in_self) in [(ra, true), (rb, false)] {
                                f(&diff_row(table, &shape, row, in_self)?)?;
                            }
                            counts.only_self += 1;
                            counts.only_other += 1;
                        }
                        (true, true)
                    }
                };
                if take_a && !take_b {
                    f(&diff_row(table, &shape, a.expect("a row"), true)?)?;
                    counts.only_self += 1;
                }
                if take_b && !take_a {
                    f(&diff_row(table, &shape, b.expect("a row"), false)?)?;
                    counts.only_other += 1;
                }
                if take_a {
                    a = advance(&mut rows_a)?;
                    counts.rows_self += a.is_some() as u64;
                }
                if take_b {
                    b = advance(&mut rows_b)?;
                    counts.rows_other += b.is_some() as u64;
                }
            }
            out.push(counts);
        }
        Ok(out)
    }

    /// The columns [`Self::compare_index`] reads from `table` here, `None` when this
    /// snapshot has no such table.
    fn table_shape(&self, table: &str) -> Result<Option<TableShape>, StoreError> {
        if !self.index_tables()?.iter().any(|t| t == table) {
            return Ok(None);
        }
        if self.is_full_text(table)? {
            let columns: Vec<String> = ["term", "doc", "col", "offset"].map(String::from).to_vec();
            return Ok(Some(TableShape { columns, key: 4, full_text: true, seq: Some(1), record: None }));
        }
        let all = self.columns(table)?;
        let pk = self.primary_key(table)?;
        let (columns, key) = if pk.is_empty() {
            // No key: every column orders (duplicates pair off one by one).
            let n = all.len();
            (all, n)
        } else {
            let n = pk.len();
            let mut columns = pk.clone();
            columns.extend(all.into_iter().filter(|c| !pk.contains(c)));
            (columns, n)
        };
        let seq = columns.iter().position(|c| c == "seq");
        let record = (table == "idx_record").then(|| columns.iter().position(|c| c == "entries")).flatten();
        Ok(Some(TableShape { columns, key, full_text: false, seq, record }))
    }

    /// The rows of `table` in `shape`'s key order (a column this snapshot lacks reads as
    /// NULL); `None` when it has no such table.
    fn ordered_rows(&self, table: &str, shape: &TableShape) -> Result<Option<rusqlite::Statement<'_>>, StoreError> {
        if !self.index_tables()?.iter().any(|t| t == table) {
            return Ok(None);
        }
        let order = (1..=shape.key).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let sql = if shape.full_text {
            let vocab = format!("temp.\"{table}_vocab\"");
            self.conn.execute_batch(&format!(
                "CREATE VIRTUAL TABLE IF NOT EXISTS {vocab} USING fts5vocab(main, \"{table}\", 'instance')"
            ))?;
            format!("SELECT term, doc, col, offset FROM {vocab} ORDER BY {order}")
        } else {
            let have = self.columns(table)?;
            let select: Vec<String> = shape
                .columns
                .iter()
                .map(|c| if have.contains(c) { format!("\"{c}\"") } else { "NULL".to_string() })
                .collect();
            format!("SELECT {} FROM \"{table}\" ORDER BY {order}", select.join(", "))
        };
        Ok(Some(self.conn.prepare(&sql)?))
    }
}

fn advance<'r, 's>(rows: &'r mut Option<rusqlite::Rows<'s>>) -> Result<Option<&'r rusqlite::Row<'s>>, StoreError> {
    match rows {
        Some(r) => Ok(r.next()?),
        None => Ok(None),
    }
}

/// Two rows by the columns in `range`, in SQLite's order (NULL, numbers, text by bytes,
/// blobs by bytes), which is the order `ORDER BY` read them in.
fn compare_rows(
    a: &rusqlite::Row<'_>,
    b: &rusqlite::Row<'_>,
    range: std::ops::Range<usize>,
) -> Result<std::cmp::Ordering, StoreError> {
    for i in range {
        let o = compare_values(a.get_ref(i)?, b.get_ref(i)?);
        if o.is_ne() {
            return Ok(o);
        }
    }
    Ok(std::cmp::Ordering::Equal)
}

fn compare_values(a: rusqlite::types::ValueRef<'_>, b: rusqlite::types::ValueRef<'_>) -> std::cmp::Ordering {
    use rusqlite::types::ValueRef as V;
    use std::cmp::Ordering;
    let class = |v: &V<'_>| match v {
        V::Null => 0,
        V::Integer(_) | V::Real(_) => 1,
        V::Text(_) => 2,
        V::Blob(_) => 3,
    };
    match (a, b) {
        (V::Integer(x), V::Integer(y)) => x.cmp(&y),
        (V::Integer(x), V::Real(y)) => (x as f64).partial_cmp(&y).unwrap_or(Ordering::Equal),
        (V::Real(x), V::Integer(y)) => x.partial_cmp(&(y as f64)).unwrap_or(Ordering::Equal),
        (V::Real(x), V::Real(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (V::Text(x), V::Text(y)) | (V::Blob(x), V::Blob(y)) => x.cmp(y),
        _ => class(&a).cmp(&class(&b)),
    }
}

fn diff_row<'t>(
    table: &'t str,
    shape: &TableShape,
    row: &rusqlite::Row<'_>,
    in_self: bool,
) -> Result<IndexRowDiff<'t>, StoreError> {
    let mut text = String::new();
    for (i, c) in shape.columns.iter().enumerate() {
        let v = row.get_ref(i)?;
        let shown = if shape.record == Some(i) { record_text(v) } else { render_value(v) };
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "{c}={}", cut(&shown, 200));
    }
    let seq = match shape.seq.map(|i| row.get_ref(i)) {
        Some(Ok(rusqlite::types::ValueRef::Integer(n))) => Some(n),
        _ => None,
    };
    Ok(IndexRowDiff { table, in_self, seq, row: text })
}

fn render_value(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => "NULL".to_string(),
        V::Integer(n) => n.to_string(),
        V::Real(x) => format!("{x:?}"),
        V::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        V::Blob(b) => format!("<blob of {} bytes>", b.len()),
    }
}

/// The rows an index record lists, sorted and each once: its canonical form.
fn record_text(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ToSqlOutput;
    let rusqlite::types::ValueRef::Blob(bytes) = v else {
        return format!("<not a record: {}>", render_value(v));
    };
    let Ok(rows) = crate::sqlite_record::rows(bytes) else {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return format!("<undecodable record {hex}>");
    };
    let mut listed: Vec<String> = rows
        .iter()
        .map(|(tag, values)| {
            let name = crate::sqlite_record::TABLES.get(*tag as usize).map_or("?", |t| t.0);
            let values: Vec<String> = values
                .iter()
                .map(|o| match o {
                    ToSqlOutput::Borrowed(v) => render_value(*v),
                    ToSqlOutput::Owned(v) => render_value(v.into()),
                    _ => "?".to_string(),
                })
                .collect();
            format!("{name}({})", values.join(", "))
        })
        .collect();
    listed.sort();
    listed.dedup();
    listed.join("; ")
}

fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]).into(),
        None => s.into(),
    }
}
