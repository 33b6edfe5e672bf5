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
const PRIMARY_TABLES: &[&str] = &["resource"];

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
            .filter(|n| !PRIMARY_TABLES.contains(&n.as_str()) && !shadow(n))
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
