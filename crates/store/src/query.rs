//! Query descriptions the store understands. They grow with the search engine; for now
//! they cover ids, type and `_lastUpdated`, the parameters every FHIR server must index.

/// A bound on `_lastUpdated` (milliseconds since the epoch): `value` compared with `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastUpdatedBound {
    /// Inclusive lower bound when `lower`, exclusive upper bound otherwise.
    pub lower: bool,
    pub ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// `None` searches every type (system-level search).
    pub resource_type: Option<String>,
    /// `_id`: any of these ids (empty: no restriction).
    pub ids: Vec<String>,
    /// All bounds must hold; each bound is one side of a `_lastUpdated` range.
    pub last_updated: Vec<LastUpdatedBound>,
    /// Token conditions (AND across clauses, OR within one).
    pub tokens: Vec<TokenClause>,
    /// Ranges that must hold (OR across the inner list, AND across the outer list).
    pub last_updated_any: Vec<Vec<(i64, i64)>>,
    pub count: usize,
    /// Only resources written after this sequence number (paging cursor).
    pub after_seq: Option<i64>,
    /// Also count all matches.
    pub total: bool,
}

#[derive(Debug, Clone)]
pub struct SearchPage {
    pub resources: Vec<super::ResourceVersion>,
    /// Set when the query asked for it.
    pub total: Option<u64>,
    /// Whether more matches follow this page.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// `_since`: versions written at or after this instant (ms).
    pub since_ms: Option<i64>,
    /// `_at`: the versions current at this instant.
    pub at_ms: Option<i64>,
    /// Page cursor: versions older than this sequence number.
    pub before_seq: Option<i64>,
    pub count: usize,
}

/// One token parameter: any of its alternatives must match an indexed value.
#[derive(Debug, Clone)]
pub struct TokenClause {
    pub param: String,
    pub any: Vec<TokenMatch>,
}

/// `code`, `system|code`, `|code` or `system|`.
#[derive(Debug, Clone)]
pub struct TokenMatch {
    pub system: SystemMatch,
    pub code: Option<String>,
}

#[derive(Debug, Clone)]
pub enum SystemMatch {
    Any,
    /// `|code`: the value has no system.
    Absent,
    Is(String),
}
