//! The embedded SQLite store: one writer connection (SQLite has one writer anyway, and
//! `BEGIN IMMEDIATE` makes every write transaction take the lock before it reads, so
//! read-then-write sequences such as conditional create are serialised), and a small pool
//! of reader connections that run in parallel thanks to WAL mode.

use crate::query::{HistoryPage, HistoryQuery, HistoryScope, IndexEntry, SearchPage, SearchQuery};
use crate::sqlite_query::where_clause;
use crate::{Method, NewVersion, ResourceVersion, Store, StoreError, WriteTxn};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync the WAL on every commit: an acknowledged write survives power loss.
    Full,
    /// fsync at checkpoints only: survives a process crash, may lose the last commits on
    /// power loss. For bulk loads and tests.
    Normal,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resource (
    seq          INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    current      INTEGER NOT NULL,
    method       TEXT    NOT NULL,
    body         BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS resource_version ON resource(type, id, version);
CREATE INDEX IF NOT EXISTS resource_live ON resource(type, current, deleted, seq);
CREATE INDEX IF NOT EXISTS resource_last_updated ON resource(last_updated);
-- A type's resources in `_lastUpdated` order: a `_sort=-_lastUpdated` page walks it
-- (`sqlite_sort_group::key_rows`) and stops after the page, whatever the other types.
CREATE INDEX IF NOT EXISTS resource_type_updated ON resource(type, last_updated);
CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Search indexes of the current version of each live resource. Rows of a superseded or
-- deleted version are removed when the new version is written, so every row points at a
-- current version and the tables stay as small as the live data. WITHOUT ROWID tables
-- keyed by (type, param, value…, seq) hold each row in one B-tree that is also the lookup
-- index; absent optional parts are stored as '' because key columns cannot be NULL.
-- There is no index on `seq` (except idx_date's, which half-open date tests probe): the
-- version's record in idx_record lists its rows' keys, for deletes and sort values.
CREATE TABLE IF NOT EXISTS idx_record (seq INTEGER PRIMARY KEY, entries BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS idx_token (type TEXT NOT NULL, param TEXT NOT NULL, code TEXT NOT NULL,
    system TEXT NOT NULL, seq INTEGER NOT NULL, display TEXT,
    PRIMARY KEY (type, param, code, system, seq)) WITHOUT ROWID;
-- The distinct displays (with their code and system) idx_token has held, so that `:text`
-- finds the codes whose display matches in this small table and reads only those codes'
-- rows, not every row of the parameter. Rows are never removed: one whose last token row
-- is gone costs a lookup that finds nothing (`sqlite_query::token_text_sql`).
CREATE TABLE IF NOT EXISTS idx_token_text (type TEXT NOT NULL, param TEXT NOT NULL, display TEXT NOT NULL,
    code TEXT NOT NULL, system TEXT NOT NULL,
    PRIMARY KEY (type, param, display, code, system)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_string (type TEXT NOT NULL, param TEXT NOT NULL, norm TEXT NOT NULL,
    exact TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, norm, exact, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_date (type TEXT NOT NULL, param TEXT NOT NULL, lo INTEGER NOT NULL,
    hi INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, lo, hi, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_seq ON idx_date(seq);
-- Date values wider than a day (months, years, periods, open ends) again, so that a window
-- query can find the narrow ones by a short range of `lo` in idx_date and the wide ones here.
-- How many current versions have more than one idx_date row for a date parameter (a row
-- only while there are some): where there are none, a date condition on the parameter
-- bounds the one value each matching resource has, so a sorted page can start its walk of
-- idx_date at that bound (`sqlite_sort`).
CREATE TABLE IF NOT EXISTS idx_date_multi (type TEXT NOT NULL, param TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (type, param)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_date_wide (type TEXT NOT NULL, param TEXT NOT NULL, lo INTEGER NOT NULL,
    hi INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, lo, hi, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_number (type TEXT NOT NULL, param TEXT NOT NULL, value REAL NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, value, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_quantity (type TEXT NOT NULL, param TEXT NOT NULL, code TEXT NOT NULL,
    value REAL NOT NULL, system TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, code, value, system, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_reference (type TEXT NOT NULL, param TEXT NOT NULL, target_id TEXT NOT NULL,
    target_type TEXT NOT NULL, url TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, target_id, target_type, url, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_uri (type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (type, param, value, seq)) WITHOUT ROWID;
-- Composite parameters: the first component (a token: c_code, c_system) and the second
-- component in the columns its own kind's table uses (code/system, norm/exact, value,
-- lo/hi, target_id/target_type/url), so one row holds both values of one element. A rowid
-- table, because the unused columns are NULL.
CREATE TABLE IF NOT EXISTS idx_composite (type TEXT NOT NULL, param TEXT NOT NULL, c_code TEXT NOT NULL,
    c_system TEXT NOT NULL, seq INTEGER NOT NULL, code TEXT, system TEXT, display TEXT, norm TEXT, exact TEXT,
    value, lo INTEGER, hi INTEGER, target_id TEXT, target_type TEXT, url TEXT);
-- The first component, then the second's number or quantity value: a test of both is one
-- range, and `SortWithin` walks one code's values in order (an index of an earlier build
-- that ended at c_system is dropped on open).
CREATE INDEX IF NOT EXISTS idx_composite_value ON idx_composite(type, param, c_code, c_system, value, seq);
-- `_text` and `_content`: one row per resource version (rowid = seq) holding the token
-- streams the search crate produced (narrative; the rest of the text). Contentless (the
-- text is in `resource.body` already) with delete support (which needs the column sizes
-- FTS5 keeps for ranking); the `ascii` tokenizer only splits on ASCII punctuation and spaces,
-- so the search crate's own tokens (CJK bigrams, folded words) pass through unchanged.
CREATE VIRTUAL TABLE IF NOT EXISTS idx_fulltext USING fts5(narrative, content, content='', contentless_delete=1,
    tokenize='ascii');
";

pub struct SqliteStore {
    /// First, so it stops before the writer connection closes.
    checkpointer: crate::sqlite_checkpoint::Checkpointer,
    path: PathBuf,
    /// Before the writer: the last connection to close checkpoints the WAL and removes it,
    /// which a read-only connection cannot do.
    readers: Mutex<Vec<Connection>>,
    writer: Arc<Mutex<Connection>>,
    clock: crate::Clock,
    sort_walk: std::sync::Arc<crate::sqlite_sort::SortWalk>,
}

const MAX_IDLE_READERS: usize = 32;
/// How much of the database file a reader maps into memory (all of it, up to 1 TiB; the
/// build raises SQLite's own cap to match, `.cargo/config.toml`): a page the reader's cache
/// lacks is then read from the operating system's cache in place rather than copied in by
/// a system call each time. At a million resources (4 GiB), mapping the first 2 GiB made
/// the query mix's pages 1.3–1.9× faster (`bench search`, alternating runs). Readers only:
/// the writer's cache holds what it dirties, and mapping it measured no import gain. An I/O
/// error on a mapped page is a signal rather than an error code (SQLite's documented
/// trade-off); the file only grows, so no page vanishes under a reader.
const READER_MMAP_BYTES: u64 = 1 << 40;
/// How far `explain` counts the most selective condition's index rows.
const EXPLAIN_ESTIMATE_CAP: i64 = 1_000_000;

/// How one search page was answered ([`SqliteStore::explain`]).
#[derive(Debug)]
pub struct Explain {
    /// The plans taken, in order (a sort walk may give way to the general plan, a plan
    /// stopped by the ceiling to the write-order walk).
    pub plans: Vec<String>,
    pub statements: Vec<ExplainedStatement>,
    /// The fewest index rows of any single plain condition (the estimate plans are chosen
    /// by), counted up to 1,000,000; `None` when no condition can be counted that way.
    pub estimate: Option<u64>,
    /// SQLite virtual-machine steps the page took (to the nearest thousand).
    pub steps: u64,
    /// Rows the store's own walks (sort walk, write-order walk) looked at.
    pub examined: u64,
    /// The page, or why there is none (the ceiling, say).
    pub page: Result<SearchPage, StoreError>,
    pub elapsed: std::time::Duration,
}

/// One statement a search ran, its bound values and SQLite's plan for it.
#[derive(Debug)]
pub struct ExplainedStatement {
    pub sql: String,
    pub values: Vec<String>,
    /// `EXPLAIN QUERY PLAN` rows, indented by depth.
    pub query_plan: Vec<String>,
}

fn show_value(v: &rusqlite::types::Value) -> String {
    use rusqlite::types::Value as V;
    match v {
        V::Null => "NULL".into(),
        V::Integer(n) => n.to_string(),
        V::Real(f) => f.to_string(),
        V::Text(t) if t.len() > 200 => format!("'{}…'", t.chars().take(200).collect::<String>()),
        V::Text(t) => format!("'{t}'"),
        V::Blob(b) => format!("<{} bytes>", b.len()),
    }
}
pub(crate) const COLUMNS: &str = "type, id, version, last_updated, deleted, method, body, seq";

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir/tsunagu.sqlite`.
    pub fn open(dir: &Path, sync: SyncMode) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Open { path: dir.display().to_string(), source })?;
        let path = dir.join("tsunagu.sqlite");
        let writer = Connection::open(&path)?;
        // 8 KiB pages for a new database (an existing one keeps its own): fewer page splits
        // and shallower index B-trees; a bulk load measured about 15% faster.
        writer.execute_batch("PRAGMA page_size=8192; PRAGMA journal_mode=WAL;")?;
        writer.execute_batch(match sync {
            SyncMode::Full => "PRAGMA synchronous=FULL;",
            SyncMode::Normal => "PRAGMA synchronous=NORMAL;",
        })?;
        // Checkpoints run on their own thread (`sqlite_checkpoint`); the writer's own is a
        // backstop at 512 MiB of WAL. The writer's cache holds the index pages a large
        // batch dirties (spilling them mid-transaction rewrote them), up to 256 MiB.
        writer
            .execute_batch("PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=65536;")?;
        writer.busy_timeout(std::time::Duration::from_secs(30))?;
        let had_records: bool =
            writer.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_record'", [], |r| r.get(0))?;
        let had_token_text: bool =
            writer.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_token_text'", [], |r| r.get(0))?;
        let had_multi: bool =
            writer.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_date_multi'", [], |r| r.get(0))?;
        // The counts with `multi` (an earlier build's table without it is counted again).
        let had_presence: bool = writer.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_presence' AND sql LIKE '%multi%'",
            [],
            |r| r.get(0),
        )?;
        if !had_presence {
            writer.execute_batch("DROP TABLE IF EXISTS idx_presence")?;
        }
        writer.execute_batch("DROP INDEX IF EXISTS idx_composite_key")?;
        writer.execute_batch(SCHEMA)?;
        writer.execute_batch(crate::sqlite_presence::SCHEMA)?;
        writer.execute_batch(crate::sqlite_audit::SCHEMA)?;
        if !had_records {
            crate::sqlite_record::build_missing(&writer)?;
        }
        if !had_token_text {
            crate::sqlite_index::token_texts_missing(&writer)?;
        }
        if !had_multi {
            crate::sqlite_index::count_multi_dates_missing(&writer)?;
        }
        if !had_presence {
            crate::sqlite_presence::count_missing(&writer)?;
        }
        crate::sqlite_record::register_sort_value(&writer)?;
        let last: i64 = writer.query_row("SELECT COALESCE(MAX(last_updated), 0) FROM resource", [], |r| r.get(0))?;
        let writer = Arc::new(Mutex::new(writer));
        Ok(SqliteStore {
            checkpointer: crate::sqlite_checkpoint::Checkpointer::start(&path, sync, writer.clone())?,
            path,
            writer,
            readers: Mutex::new(Vec::new()),
            clock: crate::Clock::new(last),
            sort_walk: Default::default(),
        })
    }

    /// From how many estimated matches a page is found by a walk (a `_sort` page by walking
    /// the first sort key's index, `sqlite_sort`; a page in write order by walking the
    /// resources testing their index records, `dense_walk`; 2,000 unless set), or never
    /// (`None`, which also has rare half-open dates probed, never collected:
    /// `sqlite_rare_dates`): for tests and benchmarks that compare those plans with the
    /// general one on the same data.
    pub fn set_sort_walk(&self, min_matches: Option<u64>) {
        self.sort_walk.set(min_matches);
    }

    /// How many `_sort` pages the index walk has answered since the store was opened.
    pub fn sort_walk_pages(&self) -> u64 {
        self.sort_walk.pages()
    }

    /// A new read-only connection set up as the pooled readers are.
    fn open_reader(&self) -> Result<Connection, StoreError> {
        let c = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(30))?;
        c.execute_batch(&format!("PRAGMA cache_size=-16384; PRAGMA mmap_size={READER_MMAP_BYTES};"))?;
        crate::sqlite_record::register_sort_value(&c)?;
        Ok(c)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.readers.lock().pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = f(&conn);
        let mut idle = self.readers.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// Runs one search page as [`Store::search`] would, recording how: the plans taken, the
    /// statements run with SQLite's `EXPLAIN QUERY PLAN` of each, the estimate that chooses
    /// between plans, steps, rows the store's walks examined, and the time (`tsunagu explain`).
    pub fn explain(&self, q: &SearchQuery) -> Result<Explain, StoreError> {
        self.with_reader(|c| {
            let estimate = crate::sqlite_has::estimate(c, q, EXPLAIN_ESTIMATE_CAP)?;
            crate::trace::start::<rusqlite::types::Value>();
            let started = std::time::Instant::now();
            let page = search_on(c, q, &self.sort_walk);
            let elapsed = started.elapsed();
            let trace = crate::trace::take::<rusqlite::types::Value>();
            let mut statements = Vec::new();
            for (sql, values) in trace.statements {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(3)?))
                })?;
                let rows: Vec<(i64, i64, String)> = rows.collect::<Result<_, _>>()?;
                let mut depth: Vec<(i64, usize)> = Vec::new();
                let mut plan = Vec::new();
                for (id, parent, detail) in rows {
                    let d = depth.iter().find(|(i, _)| *i == parent).map_or(0, |(_, d)| d + 1);
                    depth.push((id, d));
                    plan.push(format!("{}{detail}", "  ".repeat(d)));
                }
                let values = values.iter().map(show_value).collect();
                statements.push(ExplainedStatement { sql, values, query_plan: plan });
            }
            Ok(Explain {
                plans: trace.plans,
                statements,
                estimate,
                steps: trace.steps,
                examined: trace.examined,
                page,
                elapsed,
            })
        })
    }

    /// Runs SQLite's own integrity check; `Ok(())` when the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let w = self.writer.lock();
        let mut stmt = w.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let msgs: Vec<String> = rows.collect::<Result<_, _>>()?;
        Ok(if msgs == ["ok"] { Vec::new() } else { msgs })
    }

    /// Number of live (not deleted) resources, by type.
    pub fn live_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare(
                "SELECT type, COUNT(*) FROM resource WHERE current = 1 AND deleted = 0 GROUP BY type ORDER BY type",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// The columns of a page's rows (table alias `r`), for [`sized_row`]: each body only when
/// it is at most [`crate::INLINE_BODY_BYTES`] (`length()` of a blob reads no overflow
/// page), and every body's length.
pub(crate) const PAGE_COLUMNS: &str = "r.type, r.id, r.version, r.last_updated, r.deleted, r.method, \
     CASE WHEN length(r.body) <= 65536 THEN r.body ELSE x'' END, r.seq, length(r.body)";

pub(crate) fn sized_row(r: &Row<'_>) -> rusqlite::Result<crate::SizedRow> {
    Ok((row_to_version(r)?, r.get::<_, i64>(8)? as u64))
}

/// The rows of `rows` that fit `cap`, the large bodies read now (`page_bytes::fit`).
pub(crate) fn fit(
    c: &Connection,
    rows: Vec<crate::SizedRow>,
    cap: Option<crate::ByteCap>,
) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
    crate::fit_page_bytes(rows, cap, |seq| {
        let mut stmt = c.prepare_cached("SELECT body FROM resource WHERE seq = ?1")?;
        Ok(stmt.query_row([seq], |r| r.get(0)).optional()?)
    })
}

/// The versions stored at `seqs`, in that order, while they fit `cap`, and whether some
/// did not.
fn versions_in_order(
    c: &Connection,
    seqs: &[i64],
    cap: Option<crate::ByteCap>,
) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
    let marks = vec!["?"; seqs.len()].join(", ");
    let mut stmt = c.prepare_cached(&format!("SELECT {PAGE_COLUMNS} FROM resource r WHERE r.seq IN ({marks})"))?;
    let mut found: Vec<crate::SizedRow> =
        stmt.query_map(rusqlite::params_from_iter(seqs), sized_row)?.collect::<Result<_, _>>()?;
    let position: rustc_hash::FxHashMap<i64, usize> = seqs.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    found.sort_by_key(|(v, _)| position.get(&v.seq).copied());
    fit(c, found, cap)
}

pub(crate) fn row_to_version(r: &Row<'_>) -> rusqlite::Result<ResourceVersion> {
    Ok(ResourceVersion {
        resource_type: r.get(0)?,
        id: r.get(1)?,
        version: r.get::<_, i64>(2)? as u64,
        last_updated_ms: r.get(3)?,
        deleted: r.get::<_, i64>(4)? != 0,
        method: Method::parse(&r.get::<_, String>(5)?),
        body: r.get(6)?,
        seq: r.get(7)?,
    })
}

pub(crate) fn current(c: &Connection, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM resource WHERE type = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1"
    ))?;
    Ok(stmt.query_row(params![ty, id], row_to_version).optional()?)
}

fn search_ids(c: &Connection, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
    let mut values = Vec::new();
    let mut sql = format!("SELECT r.type, r.id FROM resource r WHERE {}", where_clause(q, "r", &mut values));
    if q.count > 0 {
        sql.push_str(&format!(" LIMIT {}", q.count));
    }
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

struct SqliteTxn<'c> {
    conn: &'c Connection,
    /// Changes to the kept counts, written just before the commit.
    presence: crate::sqlite_presence::Deltas,
    /// Index entries of versions `put` wrote (seq, type, entries), not yet in the index
    /// tables: inserted together in key order (`sqlite_index::insert_sorted`), as a bulk
    /// load does, before anything reads the index tables and before the commit.
    pending: Vec<(i64, String, Vec<IndexEntry>)>,
}

impl SqliteTxn<'_> {
    /// Writes the pending index rows.
    fn flush_index(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let versions: Vec<(i64, &str, &[IndexEntry])> =
            pending.iter().map(|(seq, ty, entries)| (*seq, ty.as_str(), entries.as_slice())).collect();
        crate::sqlite_index::insert_sorted(self.conn, &versions, &mut self.presence)
    }
}

impl WriteTxn for SqliteTxn<'_> {
    fn current(&mut self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        current(self.conn, ty, id)
    }

    fn put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
        if v.version > 1 {
            // The current version's index rows are removed through its record: it may be
            // one this transaction wrote.
            self.flush_index()?;
            let old: Option<(i64, bool)> = self
                .conn
                .prepare_cached("SELECT seq, deleted FROM resource WHERE type = ?1 AND id = ?2 AND current = 1")?
                .query_row(params![v.resource_type, v.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((old, deleted)) = old {
                crate::sqlite_record::delete(self.conn, old, v.resource_type, &mut self.presence)?;
                self.conn.prepare_cached("UPDATE resource SET current = 0 WHERE seq = ?1")?.execute([old])?;
                if !deleted {
                    self.presence.resource(v.resource_type, -1);
                }
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO resource (type, id, version, last_updated, deleted, current, method, body)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
        )?;
        let body: &[u8] = v.body.unwrap_or(&[]);
        match stmt.execute(params![
            v.resource_type,
            v.id,
            v.version as i64,
            v.last_updated_ms,
            v.body.is_none() as i64,
            v.method.as_str(),
            body
        ]) {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::VersionConflict(format!("{}/{}/_history/{}", v.resource_type, v.id, v.version)))
            }
            Err(e) => Err(e.into()),
            Ok(_) => {
                if v.body.is_some() {
                    let seq = self.conn.last_insert_rowid();
                    self.pending.push((seq, v.resource_type.to_string(), v.index.to_vec()));
                    self.presence.resource(v.resource_type, 1);
                }
                Ok(())
            }
        }
    }

    fn put_new(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        self.flush_index()?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO resource (type, id, version, last_updated, deleted, current, method, body)
             VALUES (?1, ?2, 1, ?3, 0, 1, ?4, ?5)",
        )?;
        let mut rows = Vec::with_capacity(versions.len());
        for v in versions {
            let Some(body) = v.body.filter(|_| v.version == 1) else {
                return Err(StoreError::Corrupt(format!("{}/{}: put_new takes first versions", v.resource_type, v.id)));
            };
            match stmt.execute(params![v.resource_type, v.id, v.last_updated_ms, v.method.as_str(), body]) {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::VersionConflict(format!("{}/{}/_history/1", v.resource_type, v.id)))
                }
                Err(e) => return Err(e.into()),
                Ok(_) => rows.push((self.conn.last_insert_rowid(), v.resource_type, v.index)),
            }
            self.presence.resource(v.resource_type, 1);
        }
        crate::sqlite_index::insert_sorted(self.conn, &rows, &mut self.presence)
    }

    fn replace_index(&mut self, seq: i64, resource_type: &str, index: &[IndexEntry]) -> Result<(), StoreError> {
        self.flush_index()?;
        crate::sqlite_record::delete(self.conn, seq, resource_type, &mut self.presence)?;
        crate::sqlite_index::insert(self.conn, seq, resource_type, index, &mut self.presence)
    }

    fn append_audit(&mut self, entries: &[crate::AuditEntry]) -> Result<(), StoreError> {
        crate::sqlite_audit::append(self.conn, entries)
    }

    fn get_setting(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM setting WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn set_setting(&mut self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => self
                .conn
                .prepare_cached(
                    "INSERT INTO setting (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
                )?
                .execute(params![key, v])?,
            None => self.conn.prepare_cached("DELETE FROM setting WHERE key = ?1")?.execute([key])?,
        };
        Ok(())
    }

    /// Under the query's step ceiling when it has one: conditional criteria run while this
    /// transaction holds the write lock.
    fn search_ids(&mut self, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
        self.flush_index()?;
        let max = q.max_steps.filter(|m| *m > 0);
        let _budget = crate::sqlite_budget::Budget::install(self.conn, max);
        search_ids(self.conn, q).map_err(|e| match max {
            Some(m) if crate::sqlite_budget::interrupted(&e) => {
                StoreError::TooCostly { part: crate::CostlyPart::Conditions, ceiling: crate::Ceiling::Steps(m) }
            }
            _ => e,
        })
    }
}

/// One page of a search on connection `c` (a pooled reader or a pinned view), within the
/// query's cost ceiling (`sqlite_budget`).
pub(crate) fn search_on(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
) -> Result<SearchPage, StoreError> {
    let trimmed = crate::sqlite_presence::without_valueless_keys(c, q)?;
    let q = trimmed.as_ref().unwrap_or(q);
    crate::sqlite_has::with_plans(c, q, || {
        crate::sqlite_rare_dates::with_plans(c, q, walk, || {
            crate::sqlite_common_chains::with_plans(c, q, walk, || {
                crate::sqlite_negation::with_plans(c, q, walk, || {
                    let budget = crate::sqlite_budget::Budget::install(c, q.max_steps.filter(|m| *m > 0));
                    let out = ceilinged_page(c, q, walk, &budget);
                    crate::trace::steps(budget.steps());
                    out
                })
            })
        })
    })
}

/// The planned page, or where the ceiling stopped it, what can be answered.
fn ceilinged_page(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    budget: &crate::sqlite_budget::Budget<'_>,
) -> Result<SearchPage, StoreError> {
    if let Some(page) = dense_walk(c, q, walk, budget)? {
        return Ok(page);
    }
    let first = planned_page(c, q, walk, budget);
    match first {
        Err(e) if crate::sqlite_budget::interrupted(&e) => {}
        other => return other,
    }
    let ceiling = crate::Ceiling::Steps(q.max_steps.unwrap_or(0));
    let part = crate::sqlite_budget::costly_part(q);
    if part != crate::CostlyPart::Conditions || q.count == 0 {
        return Err(StoreError::TooCostly { part, ceiling });
    }
    // A page in write order: walk the resources from the cursor, stopping at the ceiling.
    crate::trace::plan(|| "ceiling reached: write-order walk from the cursor".into());
    budget.reset();
    let walked = crate::sqlite_budget::write_order_walk(c, q)?;
    budget.lift();
    let full = walked.seqs.len() > q.count;
    if !full && !walked.finished && walked.last.is_none() {
        return Err(StoreError::TooCostly { part, ceiling });
    }
    let (resources, cut) = versions_in_order(c, &walked.seqs[..walked.seqs.len().min(q.count)], q.max_bytes)?;
    if cut {
        return Ok(SearchPage::fitted(resources, cut, true, None, q));
    }
    let stopped = !full && !walked.finished;
    let resume_after = walked.last.filter(|_| stopped);
    Ok(SearchPage {
        resources,
        total: None,
        more: full || stopped,
        resume_after,
        stopped_by: resume_after.map(|_| ceiling),
    })
}

/// Steps a write-order walk may take before the general plan answers instead.
const DENSE_WALK_STEPS: u64 = 250_000;

/// A page in write order whose every countable condition matches many resources (and which
/// has one), found by walking the
/// type's resources from the cursor and testing each one's index record
/// (`sqlite_budget::write_order_walk`): matches are dense, so the page fills after a few
/// times its size, where the general plan first collects every match of each condition
/// (`status=final&category=laboratory`, `code:missing=false`: hundreds of thousands). The
/// walk gets [`DENSE_WALK_STEPS`]; when the conditions together turn out rare it gives way
/// to the general plan. Tried from the same estimate as the sort walk, and never when that
/// is switched off (`SqliteStore::set_sort_walk(None)`, which tests compare with).
fn dense_walk(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    budget: &crate::sqlite_budget::Budget<'_>,
) -> Result<Option<SearchPage>, StoreError> {
    let min = walk.min_matches();
    if !q.sort.is_empty() || q.total || q.count == 0 || q.resource_type.is_none() || min == i64::MAX {
        return Ok(None);
    }
    if crate::sqlite_query::driver(q).is_some() {
        return Ok(None);
    }
    // Only on evidence: a query none of whose conditions can be counted (a chain, `_has`)
    // may match nothing.
    // The estimate is capped (`min` rows per condition): outside the ceiling, so that a
    // small one cannot stop it.
    budget.lift();
    let estimate = crate::sqlite_has::estimate(c, q, min);
    budget.reset();
    match estimate? {
        Some(n) if n as i64 >= min => {}
        _ => return Ok(None),
    }
    budget.limit_to(DENSE_WALK_STEPS);
    let walked = crate::sqlite_budget::write_order_walk(c, q);
    budget.reset();
    let walked = walked?;
    let full = walked.seqs.len() > q.count;
    if !full && !walked.finished {
        crate::trace::plan(|| format!("dense write-order walk gave up after {DENSE_WALK_STEPS} steps"));
        return Ok(None);
    }
    crate::trace::plan(|| "dense write-order walk: each resource's index record tested".into());
    // The page is chosen: its bodies are read outside the ceiling, as after any plan.
    budget.lift();
    let (resources, cut) = versions_in_order(c, &walked.seqs[..walked.seqs.len().min(q.count)], q.max_bytes)?;
    Ok(Some(SearchPage::fitted(resources, cut, full, None, q)))
}

/// The page's `seq`s by a sort walk (`sqlite_sort`), `None` where it does not apply or
/// gives up: within its share of the page's ceiling (`sqlite_sort::walk_steps`), so that a
/// walk whose rows rarely pass the filter leaves the rest to the general plan instead of
/// using it all and answering 422.
///
/// A walk that gives up is tried once more, with a quarter of what the general plan would
/// take, where that is at least [`WALK_RETRY_FACTOR`] times its first share or the matches
/// the first walk met project a page within it (`date=2015&_sort=value-quantity` at 937k:
/// 30 of 51 in 250,000 steps, against 32,000 matches to sort): the general
/// plan decodes a sort value for every row of its source, and a walk over a quantity's
/// merged unit runs may need more than its first share to pass other codes' values
/// (`category=vital-signs&_sort=-value-quantity` at 937k: 14,000 rows of larger lab values
/// before the page, against 132,000 vital signs to sort). Only a walk stopped by its share
/// is tried again, and only while the ceiling leaves room for the general plan after it:
/// where both give up, the page costs at most about 1.3 times the general plan alone.
fn sort_walk(
    c: &Connection,
    q: &SearchQuery,
    filter: &str,
    values: &[rusqlite::types::Value],
    walk: &crate::sqlite_sort::SortWalk,
    budget: &crate::sqlite_budget::Budget<'_>,
    sources: &mut Sources,
) -> Result<Option<Vec<i64>>, StoreError> {
    let share = crate::sqlite_sort::walk_steps(q);
    // The page, or whether the walk ran out of steps (only then is a longer one worth it).
    let attempt =
        |share: u64| match budget.within(share, || crate::sqlite_sort::sorted_page(c, q, filter, values, walk)) {
            Err(e) if crate::sqlite_budget::interrupted(&e) => {
                crate::trace::plan(|| format!("sort walk gave up after {share} steps"));
                Ok(Err(true))
            }
            Ok(Some(page)) => Ok(Ok(page)),
            Ok(None) => Ok(Err(false)),
            Err(e) => Err(e),
        };
    let interrupted = match attempt(share)? {
        Ok(page) => return Ok(Some(page)),
        Err(interrupted) => interrupted,
    };
    if !interrupted {
        return Ok(None);
    }
    // The matches the first walk met say how long a whole page takes: where that fits the
    // second try's steps it is made even when those are few.
    let projected = crate::sqlite_sort::projected_steps(q, share);
    let (rows, counted) = match (sources.sorted(c, q)?, projected) {
        (Some(source), _) => (source.rows, true),
        // A general plan over the resource table (no index-only source) sorts at least the
        // matches of the fewest condition, counted as far as the projection needs; it is
        // tried again only on the projection (a condition that cannot be counted, `_text`,
        // may match nothing, and the general plan then answers at once).
        (None, Some(p)) => {
            let cap = p.saturating_mul(4) / SORTED_SOURCE_STEPS_PER_ROW + 1;
            (crate::sqlite_has::fewest_matches(c, q, i64::try_from(cap).unwrap_or(i64::MAX))?, false)
        }
        (None, None) => return Ok(None),
    };
    let general = u64::try_from(rows).unwrap_or(0).saturating_mul(SORTED_SOURCE_STEPS_PER_ROW);
    let retry = general / 4;
    let long_enough = counted && retry >= share.saturating_mul(WALK_RETRY_FACTOR);
    let promising = projected.is_some_and(|p| p <= retry);
    // Only with room for the general plan after it: a second walk that also gives up must
    // not turn a page the general plan answers into a 422.
    if !(long_enough || promising) || budget.left() < general.saturating_add(retry) {
        return Ok(None);
    }
    crate::trace::plan(|| {
        format!("sort walk tried again: the general plan would sort {rows} rows, the walk projects {projected:?} steps")
    });
    Ok(attempt(retry)?.ok())
}

/// SQLite steps the general sorted plan takes per row of its source (decoding the row's
/// index record for its sort value): 86 measured for one condition at 937k resources.
const SORTED_SOURCE_STEPS_PER_ROW: u64 = 80;

/// How many times its first share a walk's second try must be given to be worth making.
const WALK_RETRY_FACTOR: u64 = 4;

/// The page by the plan the query's shape chooses.
fn planned_page(
    c: &Connection,
    q: &SearchQuery,
    walk: &crate::sqlite_sort::SortWalk,
    budget: &crate::sqlite_budget::Budget<'_>,
) -> Result<SearchPage, StoreError> {
    use crate::trace::{plan, statement};
    let mut values = Vec::new();
    let filter = where_clause(q, "r", &mut values);
    let mut sources = Sources::default();
    let total = if !q.total {
        None
    } else if let Some(n) = crate::sqlite_negation::kept_total(c, q, walk)? {
        plan(|| format!("_total: {n} from the kept counts of the type's resources"));
        Some(n)
    } else if let Some(source) = sources.any(c, q)? {
        let mut counted = source.values;
        let rest = crate::sqlite_query::index_row_clause_except(q, "d", Some(source.clause), &mut counted);
        let sql = format!("SELECT COUNT(*) FROM ({}) d WHERE {rest}", source.sql);
        plan(|| format!("_total: count the index rows of clause {} that pass the others", source.clause + 1));
        statement(&sql, &counted);
        let n: i64 = c.query_row(&sql, rusqlite::params_from_iter(counted), |r| r.get(0))?;
        Some(n as u64)
    } else {
        let sql = format!("SELECT COUNT(*) FROM resource r WHERE {filter}");
        plan(|| "_total: count every match".into());
        statement(&sql, &values);
        let n: i64 = c.query_row(&sql, rusqlite::params_from_iter(values.clone()), |r| r.get(0))?;
        Some(n as u64)
    };
    if q.count == 0 {
        return Ok(SearchPage { resources: Vec::new(), total, more: false, resume_after: None, stopped_by: None });
    }
    let driven = if q.sort.is_empty() { crate::sqlite_query::driver(q) } else { None };
    if let Some(d) = driven {
        plan(|| format!("driven index: the rows of clause {} in write order, the others tested on each", d.clause + 1));
        let mut dvalues = d.values;
        let rest = crate::sqlite_query::where_clause_except(q, "r", Some(d.clause), &mut dvalues);
        // The page's `seq`s only, bodies after: grouped rows go through a sorter, which
        // would carry each candidate's whole body (a page of one 33 MB DocumentReference
        // among six peaked at 550 MB and took 380 ms).
        let mut sql = format!("SELECT d.seq FROM {} AND {rest}", d.from);
        if let Some(after) = q.after_seq {
            sql.push_str(" AND d.seq > ?");
            dvalues.push(rusqlite::types::Value::Integer(after));
        }
        // GROUP BY keeps one row per resource (two references to one target).
        sql.push_str(&format!(" GROUP BY d.seq ORDER BY d.seq LIMIT {}", q.count + 1));
        page_of_seqs(c, &sql, dvalues, q, total)
    } else if q.sort.is_empty() {
        plan(|| "general SQL in write order".into());
        if !crate::sqlite_common_chains::any_probed(q) {
            return write_order_page(c, q, filter, values, total);
        }
        // A probed chain fills the page after a few candidates when its matches are dense;
        // when they are not (3,640 emergency encounters, 870 of 430,000 Observations
        // referring to them) collecting the references once is cheaper.
        let probed = budget.within(PROBED_CHAIN_STEPS, || write_order_page(c, q, filter, values, total));
        match probed {
            Err(e) if crate::sqlite_budget::interrupted(&e) => {
                plan(|| format!("probed chain gave up after {PROBED_CHAIN_STEPS} steps: references collected"));
                let mut values = Vec::new();
                let filter = crate::sqlite_common_chains::collected(|| where_clause(q, "r", &mut values));
                write_order_page(c, q, filter, values, total)
            }
            other => other,
        }
    } else if let Some(seqs) = sort_walk(c, q, &filter, &values, walk, budget, &mut sources)? {
        budget.lift();
        let more = seqs.len() > q.count;
        let (resources, cut) = versions_in_order(c, &seqs[..seqs.len().min(q.count)], q.max_bytes)?;
        Ok(SearchPage::fitted(resources, cut, more, total, q))
    } else if let Some(source) = sources.sorted(c, q)? {
        plan(|| format!("general SQL: the index rows of clause {} that pass the others, sorted", source.clause + 1));
        let mut values = source.values;
        let rest = crate::sqlite_common_chains::collected(|| {
            crate::sqlite_query::index_row_clause_except(q, "d", Some(source.clause), &mut values)
        });
        let valued = crate::sqlite_presence::sort_keys_with_values(c, q)?;
        let order = crate::sqlite_query::order_by_kept(&q.sort, |i| valued[i], "d", &mut values);
        let sql = format!(
            "SELECT d.seq FROM ({}) d WHERE {rest} ORDER BY {order} LIMIT {} OFFSET {}",
            source.sql,
            q.count + 1,
            q.offset
        );
        page_of_seqs(c, &sql, values, q, total)
    } else {
        plan(|| "general SQL: every match sorted".into());
        let mut values = Vec::new();
        let filter = crate::sqlite_common_chains::collected(|| where_clause(q, "r", &mut values));
        let valued = crate::sqlite_presence::sort_keys_with_values(c, q)?;
        let order = crate::sqlite_query::order_by_kept(&q.sort, |i| valued[i], "r", &mut values);
        let sql = format!(
            "SELECT r.seq FROM resource r WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
            q.count + 1,
            q.offset
        );
        page_of_seqs(c, &sql, values, q, total)
    }
}

/// Steps a write-order page probing a chain on each candidate may take before the chain's
/// references are collected instead.
const PROBED_CHAIN_STEPS: u64 = 250_000;

/// A page in write order by the general SQL with `filter` (its values in `values`): the
/// page's rows only, bodies after, since the candidates of an `IN` list are sorted by
/// `seq` in a temporary b-tree, which would otherwise carry every candidate's body.
fn write_order_page(
    c: &Connection,
    q: &SearchQuery,
    mut filter: String,
    mut values: Vec<rusqlite::types::Value>,
    total: Option<u64>,
) -> Result<SearchPage, StoreError> {
    if let Some(after) = q.after_seq {
        filter.push_str(" AND r.seq > ?");
        values.push(rusqlite::types::Value::Integer(after));
    }
    let sql = format!("SELECT r.seq FROM resource r WHERE {filter} ORDER BY r.seq LIMIT {}", q.count + 1);
    page_of_seqs(c, &sql, values, q, total)
}

/// How far choosing an index-only general plan's source counts each candidate clause
/// (`index_source`): past it the clause's rows are too many to read for one page.
const INDEX_SOURCE_COUNT_CAP: i64 = 1_000_000;

/// The clause an index-only general plan reads ([`crate::sqlite_query::index_source`]),
/// chosen once per page: the `_total` count, a sort walk's second try and the sorted page
/// all ask for it, and choosing counts index rows.
#[derive(Default)]
struct Sources {
    chosen: Option<Option<crate::sqlite_query::IndexSource>>,
}

impl Sources {
    fn any(&mut self, c: &Connection, q: &SearchQuery) -> Result<Option<crate::sqlite_query::IndexSource>, StoreError> {
        if self.chosen.is_none() {
            self.chosen = Some(crate::sqlite_query::index_source(c, q, INDEX_SOURCE_COUNT_CAP)?);
        }
        Ok(self.chosen.clone().flatten())
    }

    /// For a sorted page; `None` when a sort key (`_id`, `_lastUpdated`) needs the
    /// resource row.
    fn sorted(
        &mut self,
        c: &Connection,
        q: &SearchQuery,
    ) -> Result<Option<crate::sqlite_query::IndexSource>, StoreError> {
        if !q.sort.iter().all(|k| matches!(k.param, crate::query::SortParam::Index { .. })) {
            return Ok(None);
        }
        self.any(c, q)
    }
}

/// The page whose `seq`s `sql` selects (at most `q.count + 1`, the last only telling that
/// more follow), read in that order.
fn page_of_seqs(
    c: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
    q: &SearchQuery,
    total: Option<u64>,
) -> Result<SearchPage, StoreError> {
    crate::trace::statement(sql, &values);
    let mut stmt = c.prepare_cached(sql)?;
    let mut seqs: Vec<i64> =
        stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?.collect::<Result<_, _>>()?;
    // A resource twice (an index source read without DISTINCT while a write added a row): once.
    let mut seen = rustc_hash::FxHashSet::default();
    seqs.retain(|s| seen.insert(*s));
    let more = seqs.len() > q.count;
    let (resources, cut) = versions_in_order(c, &seqs[..seqs.len().min(q.count)], q.max_bytes)?;
    Ok(SearchPage::fitted(resources, cut, more, total, q))
}

impl Store for SqliteStore {
    fn read(&self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        self.with_reader(|c| current(c, ty, id))
    }

    fn read_many(
        &self,
        keys: &[(String, String)],
        cap: Option<crate::ByteCap>,
    ) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PAGE_COLUMNS} FROM resource r WHERE r.type = ?1 AND r.id = ?2 ORDER BY r.version DESC LIMIT 1"
            ))?;
            let mut rows = Vec::with_capacity(keys.len());
            for (ty, id) in keys {
                rows.extend(stmt.query_row(params![ty, id], sized_row).optional()?);
            }
            fit(c, rows, cap)
        })
    }

    fn vread(&self, ty: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM resource WHERE type = ?1 AND id = ?2 AND version = ?3"
            ))?;
            Ok(stmt.query_row(params![ty, id, version as i64], row_to_version).optional()?)
        })
    }

    fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.with_reader(|c| {
            let mut values = Vec::new();
            let n = q.count;
            let sql = if let HistoryScope::Type(ty) = &q.scope {
                // One branch per (current, deleted) pair: each walks `resource_live` (type,
                // current, deleted, seq) newest first and stops after a page, and the
                // branches merge by `seq`. A single `type = ?` query would read and sort
                // every version of the type for one page.
                // SQLite takes any `_since` or `_at` for selective and reads every version
                // in its range by `last_updated`, then sorts them: when many are, walk the
                // type newest first instead. With `_at` only while few versions came at or
                // after its end: the walk passes each of those before its first match.
                let since_many = match q.since_ms {
                    Some(since) => Some(many_written(c, ty, ">=", since)?),
                    None => None,
                };
                let at_walkable = match q.at {
                    Some((_, until)) => Some(many_written(c, ty, "<", until)? && !many_written(c, ty, ">=", until)?),
                    None => None,
                };
                let index = match (since_many, at_walkable) {
                    (None, None) | (Some(false), _) | (_, Some(false)) => "",
                    _ => " INDEXED BY resource_live",
                };
                let branches: Vec<String> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(current, deleted)| {
                        let filter = history_sql(q, &mut values);
                        format!(
                            "SELECT * FROM (SELECT {PAGE_COLUMNS} FROM resource r{index}{filter} AND current = {current} \
                             AND deleted = {deleted} ORDER BY seq DESC LIMIT {n})"
                        )
                    })
                    .collect();
                format!("{} ORDER BY seq DESC LIMIT {n}", branches.join(" UNION ALL "))
            } else {
                format!(
                    "SELECT {PAGE_COLUMNS} FROM resource r{} ORDER BY seq DESC LIMIT {n}",
                    history_sql(q, &mut values)
                )
            };
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), sized_row)?;
            let (versions, cut) = fit(c, rows.collect::<Result<_, _>>()?, q.max_bytes)?;
            Ok(HistoryPage { versions, cut })
        })
    }

    fn history_count(&self, q: &HistoryQuery) -> Result<u64, StoreError> {
        self.with_reader(|c| {
            let mut values = Vec::new();
            let q = HistoryQuery { before_seq: None, ..q.clone() };
            let sql = format!("SELECT COUNT(*) FROM resource r{}", history_sql(&q, &mut values));
            let n: i64 = c.query_row(&sql, rusqlite::params_from_iter(values), |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.with_reader(|c| search_on(c, q, &self.sort_walk))
    }

    fn pinned(&self) -> Result<Box<dyn crate::PinnedView>, StoreError> {
        let conn = self.open_reader()?;
        crate::sqlite_pinned::SqlitePinned::begin(conn, self.sort_walk.clone())
            .map(|p| Box::new(p) as Box<dyn crate::PinnedView>)
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // Rolls back if `f` panics, so the writer connection is never left inside an open
        // transaction (every later write would fail).
        struct Rollback<'c>(&'c Connection, bool);
        impl Drop for Rollback<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = self.0.execute_batch("ROLLBACK");
                }
            }
        }
        let mut guard = Rollback(&conn, false);
        let mut txn = SqliteTxn { conn: &conn, presence: Default::default(), pending: Vec::new() };
        let result = f(&mut txn).and_then(|()| txn.flush_index()).and_then(|()| txn.presence.flush(&conn));
        guard.1 = true;
        match result {
            Ok(()) => match conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.checkpointer.wrote();
                    Ok(())
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e.into())
                }
            },
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                Err(e)
            }
        }
    }

    fn audit_chain(&self, after_n: i64, limit: usize) -> Result<Vec<crate::AuditRecord>, StoreError> {
        self.with_reader(|c| crate::sqlite_audit::chain(c, after_n, limit))
    }

    fn audit_search(&self, q: &crate::AuditQuery) -> Result<Vec<crate::AuditRecord>, StoreError> {
        self.with_reader(|c| crate::sqlite_audit::search(c, q))
    }

    fn current_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM resource WHERE current = 1 AND deleted = 0 AND seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after_seq, limit as i64], row_to_version)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn recount_statistics(&self) -> Result<(), StoreError> {
        crate::sqlite_presence::count_missing(&self.writer.lock())
    }

    fn count_current_after(&self, after_seq: i64) -> Result<u64, StoreError> {
        self.with_reader(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM resource WHERE current = 1 AND deleted = 0 AND seq > ?1",
                [after_seq],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
    }

    fn next_timestamp_ms(&self) -> i64 {
        self.next_timestamps_ms(1)
    }

    fn next_timestamps_ms(&self, n: usize) -> i64 {
        self.clock.take(crate::now_ms(), n.max(1) as i64)
    }
}

/// Versions of a type in the time range of `_since` (or before the end of `_at`) past which
/// type history walks the type's versions newest first rather than reading those versions
/// by time and sorting them: the walk finds a page among the newest when many match
/// (timestamps follow write order), and reading by time is bounded by this many when few do.
const HISTORY_WALK_FROM: i64 = 2_000;

/// Whether at least [`HISTORY_WALK_FROM`] versions of `ty` were written at a time
/// `op` (`>=` or `<`) `ms` (counted in the `(type, last_updated)` index, stopping there).
fn many_written(c: &Connection, ty: &str, op: &str, ms: i64) -> Result<bool, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT count(*) FROM (SELECT 1 FROM resource INDEXED BY resource_type_updated \
         WHERE type = ?1 AND last_updated {op} ?2 LIMIT ?3)"
    ))?;
    let n: i64 = stmt.query_row(params![ty, ms, HISTORY_WALK_FROM], |r| r.get(0))?;
    Ok(n >= HISTORY_WALK_FROM)
}

fn history_sql(q: &HistoryQuery, values: &mut Vec<rusqlite::types::Value>) -> String {
    use rusqlite::types::Value as V;
    let mut sql = String::from(" WHERE 1 = 1");
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND type = ?");
            values.push(V::Text(t.clone()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND type = ? AND id = ?");
            values.push(V::Text(t.clone()));
            values.push(V::Text(id.clone()));
        }
    }
    if let Some(since) = q.since_ms {
        sql.push_str(" AND last_updated >= ?");
        values.push(V::Integer(since));
    }
    if let Some((from, until)) = q.at {
        // Current at some moment of the period: written before its end, and not superseded
        // at or before its start. The later versions are found by the resource's own key:
        // left to itself SQLite read every version of the type up to the start for each
        // one (type history with `_at` took seconds per thousand versions).
        sql.push_str(
            " AND last_updated < ? AND NOT EXISTS (SELECT 1 FROM resource n INDEXED BY resource_version
              WHERE n.type = r.type AND n.id = r.id AND n.version > r.version AND n.last_updated <= ?)",
        );
        values.push(V::Integer(until));
        values.push(V::Integer(from));
    }
    if let Some(before) = q.before_seq {
        sql.push_str(" AND seq < ?");
        values.push(V::Integer(before));
    }
    sql
}

#[cfg(test)]
mod tests {
    /// Readers map the whole file: the build raised SQLite's cap (otherwise it answers
    /// 2 GiB whatever was asked), so a large database is read in place.
    #[test]
    fn readers_map_up_to_the_raised_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(dir.path(), super::SyncMode::Normal).unwrap();
        let mapped: i64 = store.with_reader(|c| Ok(c.query_row("PRAGMA mmap_size", [], |r| r.get(0))?)).unwrap();
        assert_eq!(mapped as u64, super::READER_MMAP_BYTES);
    }
}
