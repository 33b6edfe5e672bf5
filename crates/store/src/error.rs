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
    /// A search would cost more than its `max_steps` and cannot stop early (sorted, or
    /// counting its matches), or found nothing it could answer within them.
    #[error("the search costs more than {max_steps} steps ({part:?})")]
    TooCostly { part: CostlyPart, max_steps: u64 },
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
