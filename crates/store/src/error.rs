/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot open data directory {path}: {source}")]
    Open { path: String, source: std::io::Error },
    /// A concurrent writer created the same version first.
    #[error("version conflict on {0}")]
    VersionConflict(String),
    /// A stored body could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A search would cost more than its ceiling and cannot stop early (sorted, or
    /// counting its matches), or found nothing it could answer within it.
    #[error("the search costs more than {ceiling} ({part:?})")]
    TooCostly { part: CostlyPart, ceiling: Ceiling },
    /// The database canceled a statement outside a search ceiling (PostgreSQL: an
    /// operator's `pg_cancel_backend`, or a `statement_timeout` set on the role or
    /// database). A search past its own ceiling is [`StoreError::TooCostly`] instead.
    #[error("statement canceled: {0}")]
    Canceled(String),
    /// Raised by a write closure to roll the transaction back; the caller keeps the reason.
    #[error("transaction aborted")]
    Aborted,
    /// An error of another backend (PostgreSQL: a connection, SQL or commit failure), as
    /// text so that this crate does not depend on that backend's client.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached now (a PostgreSQL server down, restarting, refusing
    /// connections); the same request may succeed later. A commit cut off this way may
    /// or may not have been applied.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// The ceiling a search page runs under, in the unit its backend counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// SQLite virtual-machine steps per page ([`crate::SearchQuery::max_steps`], the
    /// `max_search_steps` limit).
    Steps(u64),
    /// Milliseconds per statement on PostgreSQL ([`crate::SearchQuery::max_ms`], the
    /// `max_search_ms` limit).
    Millis(u64),
    /// Bytes of bodies per page ([`crate::SearchQuery::max_bytes`], the `max_page_bytes`
    /// limit), on either store.
    Bytes(u64),
}

impl std::fmt::Display for Ceiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ceiling::Steps(n) => write!(f, "{n} steps"),
            Ceiling::Millis(n) => write!(f, "{n} ms per statement"),
            Ceiling::Bytes(n) => write!(f, "{n} bytes per page"),
        }
    }
}

/// What made a search too costly to answer within its step ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostlyPart {
    /// `_total`: counting every match.
    Total,
    /// `_sort`: ordering the matches.
    Sort,
    /// The conditions themselves: nothing could be examined within the ceiling.
    Conditions,
}
