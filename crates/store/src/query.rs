//! What the store can index and answer. The search crate turns FHIR search parameters into
//! these; the store turns them into SQL. Nothing here knows FHIR's URL syntax.

/// One value of one search parameter of a resource version.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter code (`identifier`, `birthdate`).
    pub param: String,
    pub value: IndexValue,
}

/// Between the texts `:text` searches in one token row's `display` (a CodeableConcept's
/// `text` and its Coding's `display`, when they differ): a match starts any one of them.
pub const TOKEN_TEXT_SEPARATOR: char = '\u{1f}';

#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// A coded value; `display` feeds `:text` (texts apart by [`TOKEN_TEXT_SEPARATOR`]).
    Token {
        system: Option<String>,
        code: String,
        display: Option<String>,
    },
    /// A string, normalised for matching (`norm`) and as written (`exact`).
    String {
        norm: String,
        exact: String,
    },
    /// A time range `[lo, hi)` in ms; open ends are `i64::MIN` / `i64::MAX`.
    Date {
        lo: i64,
        hi: i64,
    },
    Number {
        value: f64,
    },
    Quantity {
        system: Option<String>,
        code: Option<String>,
        value: f64,
    },
    /// A reference: the target's type and id when it is a literal `Type/id` reference,
    /// and the reference as written.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    Uri {
        value: String,
    },
    /// A composite parameter's value: the first component (always a token in R4) and the
    /// second component's value, both taken from the same element.
    Composite {
        system: Option<String>,
        code: String,
        second: Box<IndexValue>,
    },
    /// Full-text tokens (space-separated, already folded and split by the search crate) of
    /// `_text` (narrative) or `_content` (all text).
    FullText {
        tokens: String,
    },
}

/// A search: conditions on one resource type, then paging.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// `None` searches every type (system-level search).
    pub resource_type: Option<String>,
    /// Every clause must hold.
    pub clauses: Vec<Clause>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    /// Without a sort: only resources written after this sequence number (keyset paging,
    /// stable while data changes).
    pub after_seq: Option<i64>,
    /// With a sort: rows to skip.
    pub offset: usize,
    /// Also count all matches.
    pub total: bool,
    /// Most work (SQLite virtual-machine steps) the page may cost on SQLite; `None`:
    /// unbounded. Past it a page in write order (no sort, no total) stops early and says
    /// where ([`SearchPage::resume_after`]); anything else is
    /// [`crate::StoreError::TooCostly`]. PostgreSQL ignores it.
    pub max_steps: Option<u64>,
    /// Longest time, in ms, each statement of the page may run on PostgreSQL (its
    /// `statement_timeout`); `None`: unbounded. Past it the page is answered as past
    /// `max_steps` on SQLite. SQLite ignores it.
    pub max_ms: Option<u64>,
    /// The most bytes of bodies the page may carry (`max_page_bytes`); `None`: unbounded.
    /// A page cut by it says so as one stopped by its ceiling ([`SearchPage::stopped_by`]
    /// [`crate::Ceiling::Bytes`], `resume_after` its last resource).
    pub max_bytes: Option<crate::ByteCap>,
    /// Where the first sort key's values are also held paired with a code the query
    /// requires (see [`SortWithin`]); `None`: nowhere. Only a hint to the planner.
    pub sort_within: Option<SortWithin>,
}

/// The caller's promise that, for every resource of the query's type with the token index
/// row `code` (in `system`, or any system when `None`) of some parameter a clause requires,
/// the rows of composite parameter `composite` with that first component hold exactly the
/// values of the first sort key (a quantity). A walk of those rows in value order then
/// meets the matches at their sort values without reading the other codes' values
/// (`Observation?code=8302-2&_sort=value-quantity` walks `code-value-quantity` of
/// 8302-2, not every quantity). The store never derives this: it knows no parameter's
/// meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct SortWithin {
    pub composite: String,
    pub code: String,
    pub system: Option<String>,
}

/// Any of the conditions holds (a comma-separated parameter value).
#[derive(Debug, Clone)]
pub struct Clause {
    pub any: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// `_id`.
    Id(String),
    /// `_lastUpdated` within a ms range `[lo, hi)`.
    LastUpdated { lo: i64, hi: i64 },
    /// An index test on a parameter, possibly negated (`:not`).
    Index { param: String, test: Test, negate: bool },
    /// A date parameter has a value overlapping `[lo, hi)`. Added by the search parser as a
    /// redundant, index-friendly pre-filter when a single-valued date parameter is bounded
    /// on both sides (`date=ge…&date=lt…`); the real conditions still decide.
    DateWindow { param: String, lo: i64, hi: i64 },
    /// `:missing`: the parameter has (`false`) or has no (`true`) value.
    Missing { param: String, kind: IndexKind, missing: bool },
    /// Chaining: the reference parameter points at a resource of `target_type` that
    /// matches `query`.
    Chain { param: String, target_type: String, query: Box<SearchQuery> },
    /// `_has`: some resource of `source_type` whose `param` refers to this resource
    /// matches `query`.
    Has { source_type: String, param: String, query: Box<SearchQuery> },
    /// Compartment membership: for a resource of type `.0`, its parameter `.1` refers to
    /// `target_type/target_id`, or to any `target_type` when `target_id` is `None`.
    Compartment { params: Vec<(String, String)>, target_type: String, target_id: Option<String> },
    /// The resource is of this type (one arm of a system-level OR, as in type-level
    /// `Patient/$everything`: the patients and everything in their compartments).
    ResourceType(String),
    /// `_text` (`narrative_only`) or `_content`: an FTS5 match expression over the tokens
    /// the search crate indexed, possibly negated (`:not`).
    FullText { narrative_only: bool, query: String, negate: bool },
}

#[derive(Debug, Clone)]
pub enum Test {
    Token {
        system: SystemMatch,
        code: Option<String>,
    },
    /// `:text` on a token: the display or text starts with this (normalised).
    TokenText(String),
    StringStarts(String),
    StringContains(String),
    StringExact(String),
    /// The indexed range relates to `[lo, hi)` as `op` says (FHIR date semantics).
    Date {
        op: RangeOp,
        lo: i64,
        hi: i64,
    },
    /// `value` as written; `[lo, hi)` the range its precision implies (widened for `ap`).
    Number {
        op: RangeOp,
        value: f64,
        lo: f64,
        hi: f64,
    },
    Quantity {
        op: RangeOp,
        value: f64,
        lo: f64,
        hi: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
    },
    UriExact(String),
    /// `:below`: the indexed URI starts with this.
    UriBelow(String),
    /// `:above`: this starts with the indexed URI.
    UriAbove(String),
    /// The token is one of these `(system, code)` pairs (`:in`, `:below`, `:above` after
    /// the terminology service expanded them); an empty system means "no system".
    TokenIn(Vec<(String, String)>),
    /// A composite: the first component is the token `system|code`, and the second
    /// component, from the same element, passes `second`.
    Composite {
        system: SystemMatch,
        code: String,
        second: Box<Test>,
    },
}

/// Search prefixes (search.html#prefix) as relations between the indexed range and the
/// search range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    /// Approximately: the caller has already widened the search range.
    Ap,
}

impl RangeOp {
    /// Whether the values it matches reach to one end of time (or leave out only a
    /// range): such a date test usually matches most rows, so stores probe candidates
    /// found otherwise rather than collect its matches.
    pub fn half_open(self) -> bool {
        matches!(self, RangeOp::Gt | RangeOp::Lt | RangeOp::Ge | RangeOp::Le | RangeOp::Sa | RangeOp::Eb | RangeOp::Ne)
    }
}

#[derive(Debug, Clone)]
pub enum SystemMatch {
    Any,
    /// `|code`: the value has no system.
    Absent,
    Is(String),
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub param: SortParam,
    pub descending: bool,
}

/// The sort keys that order matches as `keys` do without those no match has a value of
/// (`valued[i]` false): every match sorts alike on such a key. Ties follow the first key's
/// direction, so a first key without values stays unless the first key kept sorts the same
/// way. `None`: nothing can be left out. Both stores plan with the keys this leaves
/// (`Encounter?_sort=status,length` walks `status`).
pub fn sort_keys_with_values_only(keys: &[SortKey], valued: &[bool]) -> Option<Vec<SortKey>> {
    let first = keys.first()?;
    let mut kept: Vec<SortKey> = keys.iter().zip(valued).filter(|(_, v)| **v).map(|(k, _)| k.clone()).collect();
    if !valued.first().copied().unwrap_or(true) && kept.first().is_none_or(|k| k.descending != first.descending) {
        kept.insert(0, first.clone());
    }
    (kept.len() < keys.len()).then_some(kept)
}

#[derive(Debug, Clone)]
pub enum SortParam {
    Id,
    LastUpdated,
    /// An indexed parameter and the index that holds it.
    Index {
        param: String,
        kind: IndexKind,
    },
}

/// Which index holds a parameter's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Token,
    String,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
    Composite,
}

#[derive(Debug, Clone)]
pub struct SearchPage {
    pub resources: Vec<super::ResourceVersion>,
    /// Set when the query asked for it.
    pub total: Option<u64>,
    /// Whether more matches follow this page.
    pub more: bool,
    /// Set when the page stopped early at its ceiling: everything up to this `seq` has been
    /// looked at, so the next page continues after it (not after its last resource).
    pub resume_after: Option<i64>,
    /// Set with `resume_after`: the ceiling that stopped the page.
    pub stopped_by: Option<crate::Ceiling>,
}

impl SearchPage {
    /// A page of the resources [`crate::fit_page_bytes`] kept: when it left some out
    /// (`cut`), more follow from its last resource (from `after_seq`, or the start, when it
    /// kept none), and the page says its byte bound stopped it.
    pub fn fitted(
        resources: Vec<super::ResourceVersion>,
        cut: bool,
        more: bool,
        total: Option<u64>,
        q: &SearchQuery,
    ) -> SearchPage {
        match q.max_bytes.filter(|_| cut) {
            Some(cap) => SearchPage {
                resume_after: resources.last().map(|v| v.seq).or(q.after_seq).or(Some(0)),
                stopped_by: Some(crate::Ceiling::Bytes(cap.max)),
                more: true,
                total,
                resources,
            },
            None => SearchPage { resources, total, more, resume_after: None, stopped_by: None },
        }
    }
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
    /// `_at`: the versions current at some moment of this period (its first ms, and the ms
    /// after its last: `_at=2026` is the whole year, a full instant one ms).
    pub at: Option<(i64, i64)>,
    /// Page cursor: versions older than this sequence number.
    pub before_seq: Option<i64>,
    pub count: usize,
    /// The most bytes of bodies the page may carry; `None`: unbounded.
    pub max_bytes: Option<crate::ByteCap>,
}

/// One page of history, newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    pub versions: Vec<super::ResourceVersion>,
    /// Whether the page stopped at its byte bound (`HistoryQuery::max_bytes`) before
    /// `count` versions: more may follow its last.
    pub cut: bool,
}
