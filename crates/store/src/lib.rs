//! Versioned storage of FHIR resources.
//!
//! The store owns resource versions (the JSON body with its server-assigned meta), the
//! order in which they were written, and the indexes that queries need. It exposes this
//! through the [`Store`] trait so that the embedded SQLite implementation ([`SqliteStore`])
//! can be joined by PostgreSQL without the layers above changing.
//!
//! It never interprets FHIR semantics beyond what its indexes need: it does not parse
//! request bodies, build Bundles, decide status codes or know HTTP. Bodies are opaque
//! bytes to it; callers hand in the index values they extracted.

mod audit;
mod clock;
mod error;
mod page_bytes;
mod query;
mod snapshot;
mod sqlite;
mod sqlite_audit;
mod sqlite_budget;
mod sqlite_checkpoint;
mod sqlite_choices;
mod sqlite_common_chains;
mod sqlite_has;
mod sqlite_index;
mod sqlite_negation;
mod sqlite_pinned;
mod sqlite_presence;
mod sqlite_query;
mod sqlite_rare_dates;
mod sqlite_record;
mod sqlite_rows;
mod sqlite_sort;
mod sqlite_sort_group;
pub mod trace;

pub use audit::{chain_hash, hex, AuditEntry, AuditQuery, AuditRecord, ChainBreak, ChainReport, ChainWalker, GENESIS};
pub use clock::{now_ms, Clock};
pub use error::{Ceiling, CostlyPart, StoreError};
pub use page_bytes::{body_bytes, fit as fit_page_bytes, ByteCap, SizedRow, INLINE_BODY_BYTES};
pub use query::sort_keys_with_values_only;
pub use query::{
    Clause, Condition, HistoryPage, HistoryQuery, HistoryScope, IndexEntry, IndexKind, IndexValue, RangeOp, SearchPage,
    SearchQuery, SortKey, SortParam, SortWithin, SystemMatch, Test, TOKEN_TEXT_SEPARATOR,
};
pub use snapshot::{IndexRowDiff, IndexTableComparison, Snapshot, UnreadableRow};
pub use sqlite::{Explain, ExplainedStatement, SqliteStore, SyncMode};

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceVersion {
    pub resource_type: String,
    pub id: String,
    /// 1, 2, 3 … per resource; also the ETag (`W/"n"`).
    pub version: u64,
    /// Milliseconds since the Unix epoch; equal to `meta.lastUpdated` in the body.
    pub last_updated_ms: i64,
    /// A delete leaves a version with no body.
    pub deleted: bool,
    /// The interaction that wrote this version (POST, PUT, PATCH, DELETE), for history.
    pub method: Method,
    /// Compact JSON with `meta.versionId` and `meta.lastUpdated` already set; empty when
    /// deleted.
    pub body: Vec<u8>,
    /// Position in the global write order; cursors for history and search paging.
    pub seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn parse(s: &str) -> Method {
        match s {
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Put,
        }
    }
}

/// A version about to be written. The caller assigns version and timestamp (it embeds
/// them in the body), having read the current version inside the same write transaction.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: u64,
    pub last_updated_ms: i64,
    pub method: Method,
    /// `None` for a delete.
    pub body: Option<&'a [u8]>,
    /// Search index entries of this version (ignored for a delete).
    pub index: &'a [IndexEntry],
}

/// Operations available inside one atomic write transaction. Everything done through it
/// commits together or not at all, and no other writer interleaves: a conditional create
/// that searches and then inserts cannot race another one.
pub trait WriteTxn {
    /// The newest version of a resource, deleted or not.
    fn current(&mut self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError>;
    /// Writes a new version, making it the current one.
    fn put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError>;
    /// Whether `put` of `v` would be admitted, without writing it: for an update that
    /// changes nothing and so writes nothing, yet must be one its caller may make. A store
    /// admits everything; a wrapper that checks callers (the interaction layer's) decides.
    fn check_put(&mut self, _v: &NewVersion<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    /// Writes first versions (`version == 1`) of resources that do not exist yet, in this
    /// order. Same effect as `put` for each; a backend may write them faster together.
    fn put_new(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        versions.iter().try_for_each(|v| self.put(v))
    }
    /// Resource ids of live resources matching a query, seen from inside the transaction;
    /// at most `q.count` of them unless it is 0.
    fn search_ids(&mut self, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces the index entries of the current version stored at `seq` (reindexing).
    fn replace_index(&mut self, seq: i64, resource_type: &str, index: &[IndexEntry]) -> Result<(), StoreError>;
    /// A small persistent setting (`reindex.cursor`), read inside the transaction.
    fn get_setting(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_setting(&mut self, key: &str, value: Option<&str>) -> Result<(), StoreError>;
    /// Appends audit records to the chain; they commit with everything else written here.
    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError>;
}

/// A consistent read-only view of the store at one moment (one read transaction). It may
/// be held for a long time and moved to another thread; it never sees later writes.
pub trait PinnedView: Send {
    /// The last write (by `seq`) the view contains.
    fn high_seq(&self) -> i64;
    /// The newest `lastUpdated` (ms) the view contains; 0 when empty.
    fn last_updated_ms(&self) -> i64;
    /// As [`Store::search`], within the view.
    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError>;
    /// As [`Store::read`], within the view.
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError>;
    /// Every stored version with `seq` above `after_seq` — older versions and deletions
    /// included — in write order, at most `limit`. Paged with the last `seq` returned, it
    /// reads the whole history as it was when the view was opened, on any backend
    /// (backups and checks read through it; see [`all_versions`]). A page stops early once
    /// its bodies would pass [`VERSIONS_PAGE_BYTES`] (its first version is always taken):
    /// only an empty page is the end.
    fn versions_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError>;
    /// Number of versions of any kind with `seq <= seq` in the view. History is
    /// append-only, so this equals what a view pinned at `seq` held, unless history was
    /// rewritten.
    fn count_versions_upto(&self, seq: i64) -> Result<u64, StoreError>;
}

/// Versions per page of [`all_versions`].
pub const VERSIONS_PAGE: usize = 1000;

/// Bytes of bodies per page of [`PinnedView::versions_after`] (past its first version):
/// a thousand 32 MiB Binaries are not read into memory at once.
pub const VERSIONS_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Walks every version a pinned view holds, in write order, one page of at most
/// [`VERSIONS_PAGE`] versions and [`VERSIONS_PAGE_BYTES`] at a time (memory stays one page
/// whatever the data).
pub fn all_versions<E: From<StoreError>>(
    view: &dyn PinnedView,
    mut f: impl FnMut(ResourceVersion) -> Result<(), E>,
) -> Result<(), E> {
    let mut after = 0i64;
    loop {
        let page = view.versions_after(after, VERSIONS_PAGE)?;
        if page.is_empty() {
            return Ok(());
        }
        for v in page {
            after = v.seq;
            f(v)?;
        }
    }
}

/// Versioned resource storage.
pub trait Store: Send + Sync + 'static {
    /// The newest version of a resource (which may be a deletion).
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError>;
    /// [`read`](Self::read) of several resources (type, id): the versions found, in the
    /// order of `keys`, while their bodies fit `cap`, and whether some did not. `_include`
    /// reads a page's targets with it (in one round trip on PostgreSQL).
    fn read_many(
        &self,
        keys: &[(String, String)],
        cap: Option<ByteCap>,
    ) -> Result<(Vec<ResourceVersion>, bool), StoreError>;
    fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError>;
    /// Versions newest first, within the scope and bounds of the query.
    fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, StoreError>;
    fn history_count(&self, q: &HistoryQuery) -> Result<u64, StoreError>;
    /// Live resources matching a query, in write order, one page.
    fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError>;
    /// Runs `f` in one atomic write transaction. An error from `f` rolls everything back.
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>) -> Result<(), StoreError>;
    /// A fresh, strictly increasing timestamp (ms) for a new version.
    fn next_timestamp_ms(&self) -> i64;
    /// `n` fresh timestamps at once (a bulk load's batch): the first of them; `first..first
    /// + n` are all greater than any timestamp given before, and the next one given is
    /// greater than all of them. One step of a clock shared by several nodes instead of `n`.
    fn next_timestamps_ms(&self, n: usize) -> i64;
    /// After a bulk load (an import, a restore): refreshes what the store plans searches
    /// from, so that the first searches after it are planned on the data as it is.
    /// PostgreSQL runs ANALYZE (its statistics otherwise wait for autovacuum, and a chained
    /// search planned without them took over a second on 300 resources); SQLite estimates
    /// from its indexes as it plans, so has nothing to do.
    fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Current, live versions written after `after_seq`, in write order, at most `limit`.
    fn current_after(&self, after_seq: i64, limit: usize) -> Result<Vec<ResourceVersion>, StoreError>;
    /// How many current, live versions there are after `after_seq`.
    fn count_current_after(&self, after_seq: i64) -> Result<u64, StoreError>;
    /// Counts again, from the data, the statistics the store keeps beside its indexes (a
    /// reindex ends with it, so that it repairs them too). None by default.
    fn recount_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Audit records in chain order after record `after_n`, at most `limit`.
    fn audit_chain(&self, after_n: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
    /// Audit records matching a query, newest first (one more than `q.count` when more follow).
    fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Appends audit records in a transaction of their own.
    fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.write(&mut |txn| txn.append_audit(entries))
    }
    /// A read view pinned at this moment: every call on it sees the data as it was when
    /// it was opened, whatever is written since (bulk export reads one snapshot through it).
    fn pinned(&self) -> Result<Box<dyn PinnedView>, StoreError>;
    /// Walks the whole audit chain.
    fn audit_verify(&self) -> Result<ChainReport, StoreError> {
        let mut walker = ChainWalker::default();
        let mut after = 0;
        loop {
            let page = self.audit_chain(after, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.n;
            page.iter().for_each(|r| walker.step(r));
        }
        Ok(walker.finish())
    }
}

/// Walks every live resource matching `q` (no sort) in write order, one page of `q.count`
/// at a time, so memory stays one page whatever the data; stops when `f` answers `false`.
/// Keyset paging by `seq` keeps the walk stable while others write.
pub fn scan<E: From<StoreError>>(
    store: &dyn Store,
    mut q: SearchQuery,
    mut f: impl FnMut(&ResourceVersion) -> Result<bool, E>,
) -> Result<(), E> {
    q.count = q.count.max(1);
    loop {
        let page = store.search(&q)?;
        for v in &page.resources {
            q.after_seq = Some(v.seq);
            if !f(v)? {
                return Ok(());
            }
        }
        if !page.more || page.resources.is_empty() {
            return Ok(());
        }
    }
}
