//! Finding damage in a data directory (`tsunagu check`): versions that no reader can parse
//! any more (left by an older version or a bug), bodies whose identity disagrees with their
//! row, content that no longer passes the content check, search index rows that differ
//! from what extraction gives now, and what SQLite's and the store's own checks find.
//!
//! Everything streams: versions are read one at a time from a [`Snapshot`] (read-only, so
//! a check may run beside a live server), checked in chunks on a few threads, and the
//! index entries of the current versions are written chunk by chunk into a temporary
//! store. That store's index rows are then compared with the stored ones as one ordered
//! merge of two streams ([`Snapshot::compare_index`]). Memory stays at a chunk of versions
//! and a few reported rows per table, whatever the size of the directory.
//!
//! The index entries are written into the temporary store at the *original* `seq` of
//! each version (`WriteTxn::replace_index`, what `tsunagu reindex` writes), by the same
//! code a normal write uses, so both sides are comparable row for row without writing
//! any history or bodies again.

use crate::error::InteractionError;
use crate::resource::ResourceCheck;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use tsunagu_search::SearchRegistry;
use tsunagu_store::{IndexEntry, ResourceVersion, Snapshot, SqliteStore, Store, StoreError, SyncMode};

/// What kind of damage a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// The stored body is not JSON that readers accept (serde_json's default limits), or
    /// cannot be written as XML.
    UnreadableBody,
    /// The body is not an object, or its `resourceType`, `id` or `meta.versionId`
    /// differs from its row.
    IdentityMismatch,
    /// The body fails the content check it was checked with (errors only).
    ContentIssue,
    /// An index row is stored that extraction does not give, or the reverse.
    IndexMismatch,
    /// SQLite's `integrity_check` (or reading the file) failed.
    Integrity,
    /// The store's own invariants between versions and indexes do not hold.
    Consistency,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 6] = [
        ProblemKind::Integrity,
        ProblemKind::Consistency,
        ProblemKind::UnreadableBody,
        ProblemKind::IdentityMismatch,
        ProblemKind::ContentIssue,
        ProblemKind::IndexMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::UnreadableBody => "unreadable-body",
            ProblemKind::IdentityMismatch => "identity-mismatch",
            ProblemKind::ContentIssue => "content-issue",
            ProblemKind::IndexMismatch => "index-mismatch",
            ProblemKind::Integrity => "integrity",
            ProblemKind::Consistency => "consistency",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    pub kind: ProblemKind,
    /// The version concerned (`Patient/123/_history/2`), when there is one.
    pub reference: Option<String>,
    pub message: String,
}

impl fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(r) => write!(f, "{}: {r}: {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

/// Where a check stands, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum CheckStage {
    /// SQLite's integrity check and the store's consistency check.
    Integrity,
    /// Versions read so far.
    Versions(u64),
    /// Comparing the index rows (after every version was read).
    Index,
}

/// How to check.
pub struct CheckOptions<'a> {
    /// SearchParameter resources added to the built-in parameters (from packages), as the
    /// server adds them at start: index rows are compared with what *these* extract.
    pub search_parameters: Vec<&'a Value>,
    /// Content check run on every stored version (the base-structure check); `None`
    /// skips it.
    pub content: Option<&'a dyn ResourceCheck>,
    /// Problems kept in the report; every problem is still counted in
    /// [`CheckReport::found`], and index tables are summarised in
    /// [`CheckReport::index_tables`].
    pub max_problems: usize,
    /// Differing rows listed per index table (all are counted).
    pub max_index_rows: usize,
    /// Versions checked (and index entries written) per step.
    pub chunk: usize,
    /// Directory under which the temporary store is built (default: the system's
    /// temporary directory). It needs room for a copy of the indexes.
    pub scratch: Option<PathBuf>,
    pub progress: Option<&'a dyn Fn(CheckStage)>,
}

impl Default for CheckOptions<'_> {
    fn default() -> Self {
        CheckOptions {
            search_parameters: Vec::new(),
            content: None,
            max_problems: 1000,
            max_index_rows: 10,
            chunk: 2000,
            scratch: None,
            progress: None,
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The problems, in the order found, up to [`CheckOptions::max_problems`] (and at most
    /// [`CheckOptions::max_index_rows`] rows per index table).
    pub problems: Vec<CheckProblem>,
    /// Every problem found, listed or not, by kind (each differing index row counts once).
    pub found: BTreeMap<ProblemKind, u64>,
    /// Versions read (history and deletions included).
    pub versions_read: u64,
    /// Current, live resources (the ones indexed).
    pub current_resources: u64,
    /// Index rows stored, and rows a fresh extraction gives.
    pub index_rows_stored: u64,
    pub index_rows_expected: u64,
    /// False when the index comparison could not run to the end (see the problems).
    pub index_compared: bool,
    /// How each index table compared, differing or not.
    pub index_tables: Vec<IndexTableReport>,
}

/// How the rows of one index table compared with a fresh extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexTableReport {
    pub table: String,
    pub rows_stored: u64,
    pub rows_extracted: u64,
    /// Stored rows that extraction does not give (stale or foreign rows).
    pub only_stored: u64,
    /// Rows extraction gives that are not stored (missing rows).
    pub only_extracted: u64,
}

impl IndexTableReport {
    pub fn differs(&self) -> bool {
        self.only_stored + self.only_extracted > 0
    }
}

impl CheckReport {
    /// Nothing wrong was found.
    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }

    /// Number of problems found (listed or not).
    pub fn total(&self) -> u64 {
        self.found.values().sum()
    }

    fn add(&mut self, problem: CheckProblem, max: usize) {
        *self.found.entry(problem.kind).or_insert(0) += 1;
        if self.problems.len() < max {
            self.problems.push(problem);
        }
    }
}

/// Checks the data directory `dir` (see the module documentation). `Err` only when the
/// check itself cannot run (no data directory, no room for the temporary store); damage
/// is reported in the [`CheckReport`].
pub fn check_data(dir: &Path, options: &CheckOptions<'_>) -> Result<CheckReport, InteractionError> {
    let snapshot = Snapshot::open(dir)?;
    check_snapshot(&snapshot, options)
}

/// The built-in search parameters and the options' own, as the server has them.
fn registry(options: &CheckOptions<'_>) -> Result<SearchRegistry, InteractionError> {
    let search = SearchRegistry::new();
    for sp in &options.search_parameters {
        search.add_search_parameter(sp).map_err(|e| {
            InteractionError::bad_request(
                format!("search parameter: {e}"),
                format!("検索パラメータを追加できません: {e}"),
            )
        })?;
    }
    Ok(search)
}

/// [`check_data`] over an open snapshot.
pub fn check_snapshot(snapshot: &Snapshot, options: &CheckOptions<'_>) -> Result<CheckReport, InteractionError> {
    let search = registry(options)?;
    let progress = |s: CheckStage| {
        if let Some(p) = options.progress {
            p(s)
        }
    };
    let max = options.max_problems;
    let mut report = CheckReport::default();

    progress(CheckStage::Integrity);
    let integrity = snapshot.integrity_check().unwrap_or_else(|e| vec![format!("cannot run integrity_check: {e}")]);
    for m in integrity {
        report.add(CheckProblem { kind: ProblemKind::Integrity, reference: None, message: m }, max);
    }
    let consistency =
        snapshot.consistency_check().unwrap_or_else(|e| vec![format!("cannot run the consistency check: {e}")]);
    for m in consistency {
        report.add(CheckProblem { kind: ProblemKind::Consistency, reference: None, message: m }, max);
    }

    let scratch = ScratchDir::new(options.scratch.clone().unwrap_or_else(std::env::temp_dir).as_path())?;
    let store = SqliteStore::open(&scratch.0, SyncMode::Normal)?;
    let chunk_size = options.chunk.max(1);
    let mut chunk: Vec<(ResourceVersion, bool)> = Vec::with_capacity(chunk_size);
    let walked = snapshot.versions_with_current(|item| -> Result<(), Walk> {
        report.versions_read += 1;
        match item {
            Ok(v) => chunk.push(v),
            Err(bad) => report.add(
                CheckProblem {
                    kind: ProblemKind::UnreadableBody,
                    reference: Some(bad.reference),
                    message: format!("the row cannot be read as a version (seq {}): {}", bad.seq, bad.error),
                },
                max,
            ),
        }
        if chunk.len() >= chunk_size {
            check_chunk(&chunk, &search, options.content, &store, &mut report, max).map_err(Walk::Scratch)?;
            chunk.clear();
            progress(CheckStage::Versions(report.versions_read));
        }
        Ok(())
    });
    let walked = walked
        .and_then(|()| check_chunk(&chunk, &search, options.content, &store, &mut report, max).map_err(Walk::Scratch));
    drop(chunk);
    progress(CheckStage::Versions(report.versions_read));
    match walked {
        Ok(()) => {}
        Err(Walk::Scratch(e)) => return Err(e),
        Err(Walk::Stored(e)) => {
            report.add(
                CheckProblem {
                    kind: ProblemKind::Integrity,
                    reference: None,
                    message: format!(
                        "reading the stored versions stopped after {} of them: {e}; the indexes were not compared",
                        report.versions_read
                    ),
                },
                max,
            );
            return Ok(report);
        }
    }
    drop(store);

    progress(CheckStage::Index);
    let rebuilt = Snapshot::open(&scratch.0)?;
    let mut listed: HashMap<String, Vec<CheckProblem>> = HashMap::new();
    let compared = snapshot.compare_index(&rebuilt, |d| -> Result<(), StoreError> {
        let rows = listed.entry(d.table.to_string()).or_default();
        if rows.len() >= options.max_index_rows {
            return Ok(());
        }
        let reference = match d.seq {
            Some(seq) => snapshot.version_at(seq)?,
            None => None,
        };
        let what = if d.in_self {
            "stored row that a fresh extraction does not give"
        } else {
            "row a fresh extraction gives that is not stored"
        };
        let whose = match (d.seq, &reference) {
            (Some(seq), None) => format!(" (seq {seq}: no such version)"),
            _ => String::new(),
        };
        rows.push(CheckProblem {
            kind: ProblemKind::IndexMismatch,
            reference,
            message: format!("{}: {what}{whose}: {}", d.table, d.row),
        });
        Ok(())
    });
    match compared {
        Ok(tables) => {
            report.index_compared = true;
            for t in tables {
                report.index_rows_stored += t.rows_self;
                report.index_rows_expected += t.rows_other;
                let differing = t.only_self + t.only_other;
                *report.found.entry(ProblemKind::IndexMismatch).or_insert(0) += differing;
                for p in listed.remove(&t.table).unwrap_or_default() {
                    if report.problems.len() < max {
                        report.problems.push(p);
                    }
                }
                report.index_tables.push(IndexTableReport {
                    table: t.table,
                    rows_stored: t.rows_self,
                    rows_extracted: t.rows_other,
                    only_stored: t.only_self,
                    only_extracted: t.only_other,
                });
            }
        }
        Err(e) => report.add(
            CheckProblem {
                kind: ProblemKind::Integrity,
                reference: None,
                message: format!("comparing the index rows stopped: {e}"),
            },
            max,
        ),
    }
    drop(rebuilt);
    drop(scratch);
    Ok(report)
}

/// Why the walk over the versions stopped: the stored data could not be read (damage to
/// report), or the temporary store failed (the check cannot go on).
enum Walk {
    Stored(StoreError),
    Scratch(InteractionError),
}

impl From<StoreError> for Walk {
    fn from(e: StoreError) -> Self {
        Walk::Stored(e)
    }
}

/// Checks a chunk of versions on a few threads, then writes the index entries of its
/// current versions into the temporary store at their original `seq`.
fn check_chunk(
    chunk: &[(ResourceVersion, bool)],
    search: &SearchRegistry,
    content: Option<&dyn ResourceCheck>,
    store: &SqliteStore,
    report: &mut CheckReport,
    max: usize,
) -> Result<(), InteractionError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let results = check_versions(chunk, search, content);
    let mut index: Vec<(i64, &str, Vec<IndexEntry>)> = Vec::new();
    for ((v, _), checked) in chunk.iter().zip(results) {
        for p in checked.problems {
            report.add(p, max);
        }
        if let Some(entries) = checked.index {
            report.current_resources += 1;
            index.push((v.seq, v.resource_type.as_str(), entries));
        }
    }
    store.write(&mut |txn| {
        for (seq, ty, entries) in &index {
            txn.replace_index(*seq, ty, entries)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// [`check_version`] over a chunk, on a few threads; results in the chunk's order.
fn check_versions(
    chunk: &[(ResourceVersion, bool)],
    search: &SearchRegistry,
    content: Option<&dyn ResourceCheck>,
) -> Vec<Checked> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let per = chunk.len().div_ceil(threads).max(1);
    if threads == 1 || chunk.len() < 64 {
        chunk.iter().map(|(v, current)| check_version(v, *current, search, content)).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        part.iter().map(|(v, current)| check_version(v, *current, search, content)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("a check thread panicked")).collect()
        })
    }
}

struct Checked {
    problems: Vec<CheckProblem>,
    /// For a current, live version: the index entries extraction gives now (none when
    /// the body cannot be read, as `reindex` would leave it).
    index: Option<Vec<IndexEntry>>,
}

fn check_version(
    v: &ResourceVersion,
    current: bool,
    search: &SearchRegistry,
    content: Option<&dyn ResourceCheck>,
) -> Checked {
    let live = current && !v.deleted;
    let mut out = Checked { problems: Vec::new(), index: None };
    if v.deleted {
        // A deletion has no body (the consistency check says so when it has one).
        return out;
    }
    let reference = format!("{}/{}/_history/{}", v.resource_type, v.id, v.version);
    let problem = |kind, message| CheckProblem { kind, reference: Some(reference.clone()), message };
    let resource: Value = match serde_json::from_slice(&v.body) {
        Ok(r) => r,
        Err(e) => {
            out.problems.push(problem(
                ProblemKind::UnreadableBody,
                format!("the body ({} bytes) cannot be parsed as JSON: {e}", v.body.len()),
            ));
            if live {
                out.index = Some(Vec::new());
            }
            return out;
        }
    };
    let Value::Object(map) = &resource else {
        out.problems.push(problem(
            ProblemKind::IdentityMismatch,
            format!("the body is {}, not a JSON object", json_kind(&resource)),
        ));
        if live {
            out.index = Some(Vec::new());
        }
        return out;
    };
    let mut wrong = Vec::new();
    let text = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(v) => cut(&v.to_string(), 80),
    };
    let ty = map.get("resourceType");
    if ty.and_then(Value::as_str) != Some(v.resource_type.as_str()) {
        wrong.push(format!("resourceType is {} but the row is a {}", text(ty), v.resource_type));
    }
    let id = map.get("id");
    if id.and_then(Value::as_str) != Some(v.id.as_str()) {
        wrong.push(format!("id is {} but the row's id is {:?}", text(id), v.id));
    }
    let version_id = map.get("meta").and_then(|m| m.get("versionId"));
    if version_id.and_then(Value::as_str) != Some(v.version.to_string().as_str()) {
        wrong.push(format!("meta.versionId is {} but the row is version {}", text(version_id), v.version));
    }
    if !wrong.is_empty() {
        out.problems.push(problem(ProblemKind::IdentityMismatch, wrong.join("; ")));
    }
    // Readable means readable in either format a client may ask for.
    if let Err(e) = tsunagu_format::json_to_xml(&resource, false) {
        out.problems.push(problem(ProblemKind::UnreadableBody, format!("the body cannot be written as XML: {e}")));
    }
    if let Some(check) = content {
        let errors: Vec<_> = check.check(&resource).into_iter().filter(|i| i.severity == "error").collect();
        if !errors.is_empty() {
            let shown: Vec<String> = errors
                .iter()
                .take(3)
                .map(|i| match &i.expression {
                    Some(at) => format!("{at}: {}", i.en),
                    None => i.en.clone(),
                })
                .collect();
            let more = if errors.len() > 3 { format!(" (and {} more)", errors.len() - 3) } else { String::new() };
            out.problems.push(problem(
                ProblemKind::ContentIssue,
                format!("{} error(s): {}{more}", errors.len(), shown.join("; ")),
            ));
        }
    }
    if live {
        out.index = Some(search.index_entries(&v.resource_type, &resource));
    }
    out
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// A directory of our own for the temporary store, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(parent: &Path) -> Result<ScratchDir, InteractionError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut last = None;
        for attempt in 0..16u32 {
            let dir = parent.join(format!("tsunagu-check-{}-{stamp}-{attempt}", std::process::id()));
            match std::fs::create_dir_all(parent).and_then(|()| std::fs::create_dir(&dir)) {
                Ok(()) => return Ok(ScratchDir(dir)),
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("an attempt");
        Err(StoreError::Open { path: parent.display().to_string(), source: e }.into())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the totals the store gives without conditions (`Type?_summary=count`, which it
/// may keep rather than count) differ from the live resources among the versions read, one
/// line each: per type read, and over every type.
fn count_differences(
    view: &dyn tsunagu_store::PinnedView,
    last: &HashMap<(String, String), (u64, bool)>,
) -> Result<Vec<String>, StoreError> {
    let mut live: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    for ((ty, _), (_, deleted)) in last {
        let n = live.entry(Some(ty.as_str())).or_default();
        *n += u64::from(!deleted);
        *live.entry(None).or_default() += u64::from(!deleted);
    }
    live.entry(None).or_default();
    let mut out = Vec::new();
    for (ty, read) in live {
        let q = tsunagu_store::SearchQuery { resource_type: ty.map(str::to_string), total: true, ..Default::default() };
        let given = view.search(&q)?.total.unwrap_or(0);
        if given != read {
            let what = ty.map_or("every type".to_string(), |t| format!("type {t}"));
            out.push(format!("{what}: the store's total is {given} live resources, the versions read hold {read}"));
        }
    }
    Ok(out)
}

/// Checks a store of any backend (PostgreSQL), read through one pinned view
/// ([`tsunagu_store::all_versions`]): every version is read back in write order and its
/// body checked as by [`check_snapshot`] (readable as JSON and XML, identity matching its
/// row, the content check when given), and the history's own invariants are checked
/// without SQL (versions numbered 1, 2, 3 … per resource in write order; a body exactly
/// on live versions), and so are the store's totals without conditions, which it may keep
/// rather than count, per type read and over every type. What stays SQLite-only: `integrity_check`, the checks between
/// versions and index tables, and the comparison of stored index rows with a fresh
/// extraction; [`CheckReport::index_compared`] is false and the index figures are 0.
///
/// Memory holds a chunk of versions and, per resource, its last version number (for the
/// numbering check).
pub fn check_store(store: &dyn Store, options: &CheckOptions<'_>) -> Result<CheckReport, InteractionError> {
    let search = registry(options)?;
    let progress = |s: CheckStage| {
        if let Some(p) = options.progress {
            p(s)
        }
    };
    let max = options.max_problems;
    let mut report = CheckReport::default();
    let view = store.pinned()?;
    let chunk_size = options.chunk.max(1);
    let mut chunk: Vec<(ResourceVersion, bool)> = Vec::with_capacity(chunk_size);
    // Per resource: its last version number and whether that version is a deletion.
    let mut last: HashMap<(String, String), (u64, bool)> = HashMap::new();
    let mut misnumbered = 0u64;
    let mut bad_bodies = 0u64;
    let flush = |chunk: &mut Vec<(ResourceVersion, bool)>, report: &mut CheckReport| {
        for checked in check_versions(chunk, &search, options.content) {
            for p in checked.problems {
                report.add(p, max);
            }
        }
        chunk.clear();
        progress(CheckStage::Versions(report.versions_read));
    };
    let walked = tsunagu_store::all_versions(view.as_ref(), |v| -> Result<(), StoreError> {
        report.versions_read += 1;
        let slot = last.entry((v.resource_type.clone(), v.id.clone())).or_insert((0, true));
        if v.version != slot.0 + 1 {
            misnumbered += 1;
        }
        *slot = (v.version, v.deleted);
        if v.deleted != v.body.is_empty() {
            bad_bodies += 1;
        }
        chunk.push((v, false));
        if chunk.len() >= chunk_size {
            flush(&mut chunk, &mut report);
        }
        Ok(())
    });
    flush(&mut chunk, &mut report);
    if walked.is_ok() {
        for m in count_differences(view.as_ref(), &last)? {
            report.add(CheckProblem { kind: ProblemKind::Consistency, reference: None, message: m }, max);
        }
    }
    drop(view);
    if let Err(e) = walked {
        report.add(
            CheckProblem {
                kind: ProblemKind::Integrity,
                reference: None,
                message: format!("reading the stored versions stopped after {} of them: {e}", report.versions_read),
            },
            max,
        );
    }
    for (n, what) in [
        (misnumbered, "versions not numbered 1, 2, 3 … in write order"),
        (bad_bodies, "live versions with an empty body or deletions with a body"),
    ] {
        if n != 0 {
            report.add(
                CheckProblem { kind: ProblemKind::Consistency, reference: None, message: format!("{n} {what}") },
                max,
            );
        }
    }
    report.current_resources = last.values().filter(|(_, deleted)| !deleted).count() as u64;
    Ok(report)
}
