//! Every limit that keeps one request from crashing or exhausting the server, in one
//! place: its name (the key in `[limits]` of `tsunagu.toml`), its default, what it bounds,
//! and the bilingual message a client gets when a request goes past it.
//!
//! This crate owns the numbers and their names only. It never enforces anything itself:
//! each crate that does the bounded work takes the number it needs from [`Limits`] and
//! reports a [`LimitExceeded`] inside its own error type, which the interaction layer
//! turns into a 4xx OperationOutcome naming the limit.

use serde::Deserialize;

/// The limits of one server. Every field has a documented default ([`Limits::default`]);
/// `tsunagu.toml` may override any of them under `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    // --- HTTP ---
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Values in one request body (JSON values, or XML tags: every `<`), counted before it is
    /// parsed: each costs about 100 bytes of memory once parsed, and several hundred more
    /// when it is indexed (a hostile probe's 990,000 `given` names peaked at 690 MB), so a
    /// body of tiny values (`[1,1,1,…]`) would otherwise cost far more than its size. Real
    /// resources average about 60 bytes per value, so a 32 MiB Bundle stays well under the
    /// default. `max_page_bytes` counts stored bytes, so this bounds tiny values on reads too.
    pub max_body_values: usize,
    /// Largest request line plus headers, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Header fields in one request head (431 beyond; HTTP/1.1).
    pub max_header_fields: usize,
    /// Seconds a client has to send the complete request head (the connection is closed
    /// after that).
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send the complete request body (408 after that).
    pub body_read_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open.
    pub idle_timeout_secs: u64,
    /// Requests processed at once; more are answered 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Of those, the most one identity (a client's token, a user's) holds at once, from
    /// when its token is checked (before its body is read); more are answered 429 with
    /// `Retry-After`. One token could otherwise hold every slot with bodies sent a few
    /// bytes at a time. Not counted with authorization off. 0: no share.
    pub max_concurrent_requests_per_client: usize,
    /// Open client connections; more wait in the listen queue until one closes.
    pub max_connections: usize,
    /// PostgreSQL only: connections one server node opens to each database server (the
    /// primary, and each replica), idle, in use, or held by a pinned view (an export);
    /// the primary has one more for the shared clock. A request that finds all in use
    /// waits up to `database_wait_ms` for one (a replica's: goes to the primary at once).
    pub max_database_connections: usize,
    /// PostgreSQL only: the longest wait, in ms, for a free database connection; then 503
    /// with `Retry-After`.
    pub database_wait_ms: u64,
    /// Memory the requests in progress may hold together, in bytes, as estimated before
    /// the costly work of each: a body before it is parsed (16 times its bytes, and 600 per
    /// JSON value or XML tag, as parsed and indexed), a response page or a resource read by
    /// id once read (8 times their stored bytes, as the response is built), a `$run` output
    /// as it grows (3 times its bytes); a page also reads
    /// no more than the room left (at least 1 MiB). Each request alone is bounded by the
    /// limits above; this bounds their sum (12 concurrent bodies of 990,000 values peaked
    /// at 5.6 GB without it; a page's stored bytes, read before its room is taken, come on
    /// top). A request that finds no room waits up to `memory_wait_ms`,
    /// then gets 503 with `Retry-After`; one whose estimate is above the whole budget runs
    /// when it is alone. 0: no budget.
    pub max_memory_bytes: usize,
    /// The longest wait, in ms, for room in `max_memory_bytes`.
    pub memory_wait_ms: u64,

    // --- Resources ---
    /// Characters in one string value of any resource written (R4: a string's maxLength is
    /// 1,048,576); base64Binary values and the narrative `div` are not strings and are
    /// bounded by the body alone. A longer value is refused: every search index and the
    /// conditional searches over it would carry it whole.
    pub max_string_chars: usize,
    /// Nesting of objects and arrays in any resource written (JSON, XML, the result of a
    /// PATCH, each Bundle entry), counted from the outermost resource of the request (the
    /// entries of a transaction from their Bundle). JSON bodies deeper than 127 levels are
    /// refused by the JSON reader whatever this says.
    pub max_json_depth: usize,
    /// Issues listed in one OperationOutcome; past it one issue says the list was cut.
    pub max_issues: usize,
    /// Entries in one batch or transaction Bundle. A transaction holds the store's write
    /// lock from its first entry to its commit, so this also bounds
    /// how long other writers wait; large loads go through `tsunagu import`.
    pub max_bundle_entries: usize,
    /// Conditions of all the searches one batch or transaction Bundle asks for
    /// (`ifNoneExist`, conditional URLs, conditional references, GET entries' searches;
    /// the same criteria twice count once), counted as `max_search_conditions` counts
    /// them, before any entry is checked or run. Each search alone is bounded, but a
    /// transaction runs all of its own under the write lock, so their sum is what other
    /// writers wait for.
    pub max_bundle_conditions: usize,
    /// Time the searches of one Bundle may take together, in ms (under the write lock for a
    /// transaction). Past it the entry whose search went over fails: a transaction whole;
    /// in a batch that entry and every later one that searches. 0: no ceiling.
    pub max_bundle_search_ms: usize,

    // --- Search ---
    /// Chained parameters in one search parameter (`subject:Patient.organization.name` is 2).
    pub max_chain_depth: usize,
    /// `_has` nested in one search parameter.
    pub max_has_depth: usize,
    /// Conditions one search may expand to: every value of every parameter, and every
    /// target type a chain without a type modifier fans out to, at every level.
    pub max_search_conditions: usize,
    /// Comma-separated values of one search parameter.
    pub max_values_per_parameter: usize,
    /// Rounds of `_include:iterate` / `_revinclude:iterate`.
    pub max_include_iterations: usize,
    /// Resources `_include` and `_revinclude` add to one page; past it the page says, in an
    /// outcome entry, that its included resources are incomplete.
    pub max_included: usize,
    /// Largest `_offset`.
    pub max_search_offset: usize,
    /// Bytes of resources (as stored) one response reads: a page of search or history and
    /// its `_include`d resources, the read entries of a batch or transaction together.
    /// A page stops before the resource that would pass it (never before its first) and
    /// links to the rest; included resources past it are left out with a warning; a
    /// Bundle's read entry past it fails naming it. A response is built in memory, so this
    /// bounds its memory: `_count=1000` of 32 MiB Binaries would be 32 GB. 0: no bound.
    pub max_page_bytes: usize,
    /// Words (or quoted phrases) in one `_text` / `_content` value.
    pub max_text_terms: usize,
    /// Work one search page may do in the store, in SQLite virtual-machine steps (a row
    /// read from an index costs about 3, a condition probed for it 10–20 more): past it, a
    /// page in write order stops where it got to and links to the rest; a sorted page,
    /// `_total` or a condition too costly to start answers 422 instead. 0: no ceiling.
    /// The SQLite store's ceiling; PostgreSQL's is `max_search_ms`.
    pub max_search_steps: usize,
    /// Time each statement of one search page may run on PostgreSQL, in ms (its
    /// `statement_timeout`; a page runs a few: a count, the page, the write-order walk):
    /// past it the page is answered as past `max_search_steps` on SQLite. 0: no ceiling.
    /// The PostgreSQL store's ceiling; SQLite's is `max_search_steps`.
    pub max_search_ms: usize,

    // --- Terminology ---
    /// Value sets importing value sets (`compose.include.valueSet`), counted in levels.
    pub max_value_set_import_depth: usize,
    /// Codes in an expansion returned or used (`$expand` without `count`, `:in`).
    pub max_expansion_size: usize,

    // --- FHIRPath ---
    /// Compiled size of one regular expression (`matches()`, `replaceMatches()`), in bytes.
    pub max_regex_bytes: usize,
    /// Memory of all compiled regular expressions kept for reuse, in bytes.
    pub regex_cache_bytes: usize,
    /// Work one evaluation of one expression on one resource may do, in steps (a step is
    /// an item produced; four comparisons of items, or 16 bytes of string built, scanned
    /// or compared, are one too). Client expressions (PATCH paths, `$run` columns, uploaded
    /// profiles) can be quadratic or worse in the resource; past it the evaluation fails
    /// naming this. It bounds memory too: two million items are a few hundred MB at most.
    /// 0: no limit.
    pub max_fhirpath_steps: usize,

    // --- Views ---
    /// Rows one `ViewDefinition/$run` answers (its `_limit` may ask for fewer; whole
    /// stores go through `tsunagu view export`).
    pub max_view_rows: usize,
    /// Time one `ViewDefinition/$run` may take, in ms (checked before every expression is
    /// evaluated; each evaluation is bounded by `max_fhirpath_steps`).
    pub max_view_ms: usize,
    /// Bytes of output one `ViewDefinition/$run` builds (before the Binary's base64).
    pub max_view_bytes: usize,
}

impl Limits {
    /// `max_fhirpath_steps`' default, also what evaluations use before a server sets it.
    pub const DEFAULT_FHIRPATH_STEPS: usize = 2_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_body_values: 1_000_000,
            max_header_bytes: 256 * 1024,
            max_header_fields: 100,
            max_string_chars: 1024 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 60,
            idle_timeout_secs: 60,
            max_concurrent_requests: 64,
            max_concurrent_requests_per_client: 16,
            max_connections: 512,
            max_database_connections: 32,
            database_wait_ms: 5_000,
            max_memory_bytes: 2 * 1024 * 1024 * 1024,
            memory_wait_ms: 10_000,
            max_json_depth: 100,
            max_issues: 100,
            max_bundle_entries: 5_000,
            max_bundle_conditions: 10_000,
            max_bundle_search_ms: 5_000,
            max_chain_depth: 4,
            max_has_depth: 4,
            max_search_conditions: 1_000,
            max_values_per_parameter: 1_000,
            max_include_iterations: 4,
            max_included: 1_000,
            max_search_offset: 100_000,
            max_page_bytes: 64 * 1024 * 1024,
            max_text_terms: 32,
            max_search_steps: 25_000_000,
            max_search_ms: 1_000,
            max_value_set_import_depth: 10,
            max_expansion_size: 10_000,
            max_regex_bytes: 1024 * 1024,
            regex_cache_bytes: 32 * 1024 * 1024,
            max_fhirpath_steps: Limits::DEFAULT_FHIRPATH_STEPS,
            max_view_rows: 100_000,
            max_view_ms: 30_000,
            max_view_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Which limit a request went past. Each has the name it has in `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    BodyBytes,
    BodyValues,
    HeaderBytes,
    JsonDepth,
    StringChars,
    Issues,
    BundleEntries,
    BundleConditions,
    BundleSearchMs,
    ChainDepth,
    HasDepth,
    SearchConditions,
    ValuesPerParameter,
    IncludeIterations,
    SearchOffset,
    PageBytes,
    MemoryBytes,
    TextTerms,
    SearchSteps,
    SearchMs,
    ValueSetImportDepth,
    ExpansionSize,
    RegexBytes,
    FhirPathSteps,
    ViewRows,
    ViewMs,
    ViewBytes,
}

impl Limit {
    /// The key in `[limits]` of `tsunagu.toml`.
    pub fn key(self) -> &'static str {
        match self {
            Limit::BodyBytes => "max_body_bytes",
            Limit::BodyValues => "max_body_values",
            Limit::HeaderBytes => "max_header_bytes",
            Limit::JsonDepth => "max_json_depth",
            Limit::StringChars => "max_string_chars",
            Limit::Issues => "max_issues",
            Limit::BundleEntries => "max_bundle_entries",
            Limit::BundleConditions => "max_bundle_conditions",
            Limit::BundleSearchMs => "max_bundle_search_ms",
            Limit::ChainDepth => "max_chain_depth",
            Limit::HasDepth => "max_has_depth",
            Limit::SearchConditions => "max_search_conditions",
            Limit::ValuesPerParameter => "max_values_per_parameter",
            Limit::IncludeIterations => "max_include_iterations",
            Limit::SearchOffset => "max_search_offset",
            Limit::PageBytes => "max_page_bytes",
            Limit::MemoryBytes => "max_memory_bytes",
            Limit::TextTerms => "max_text_terms",
            Limit::SearchSteps => "max_search_steps",
            Limit::SearchMs => "max_search_ms",
            Limit::ValueSetImportDepth => "max_value_set_import_depth",
            Limit::ExpansionSize => "max_expansion_size",
            Limit::RegexBytes => "max_regex_bytes",
            Limit::FhirPathSteps => "max_fhirpath_steps",
            Limit::ViewRows => "max_view_rows",
            Limit::ViewMs => "max_view_ms",
            Limit::ViewBytes => "max_view_bytes",
        }
    }

    /// What the limit bounds, in English and Japanese.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Limit::BodyBytes => ("bytes in a request body", "リクエスト本文のバイト数"),
            Limit::BodyValues => ("values in a request body", "リクエスト本文の値の数"),
            Limit::HeaderBytes => ("bytes in the request line and headers", "リクエスト行とヘッダのバイト数"),
            Limit::JsonDepth => ("nesting depth of a resource", "リソースの入れ子の深さ"),
            Limit::StringChars => ("characters in one string of a resource", "リソースの 1 つの文字列の文字数"),
            Limit::Issues => ("issues in one OperationOutcome", "1つの OperationOutcome の問題数"),
            Limit::BundleEntries => {
                ("entries in one batch or transaction Bundle", "1つの batch・transaction Bundle のエントリ数")
            }
            Limit::BundleConditions => (
                "conditions of the searches of one Bundle",
                "1つの Bundle の検索（条件付き操作・条件付き参照・GET）の条件の数",
            ),
            Limit::BundleSearchMs => (
                "time of the searches of one Bundle together, in ms",
                "1つの Bundle の検索（条件付き操作・条件付き参照・GET）の合計時間（ミリ秒）",
            ),
            Limit::ChainDepth => ("chained parameters in one search parameter", "1つの検索パラメータのチェーンの深さ"),
            Limit::HasDepth => ("_has nested in one search parameter", "1つの検索パラメータの _has の入れ子の深さ"),
            Limit::SearchConditions => ("conditions one search expands to", "1回の検索が展開される条件の数"),
            Limit::ValuesPerParameter => ("values of one search parameter", "1つの検索パラメータの値の数"),
            Limit::IncludeIterations => {
                ("rounds of _include/_revinclude :iterate", "_include/_revinclude :iterate の繰り返し回数")
            }
            Limit::SearchOffset => ("_offset of a search", "検索の _offset"),
            Limit::PageBytes => ("bytes of resources one response reads", "1つの応答で読み出すリソースのバイト数"),
            Limit::MemoryBytes => {
                ("memory the requests in progress hold together", "処理中のリクエストが合わせて使うメモリ")
            }
            Limit::TextTerms => ("words in one _text or _content value", "1つの _text・_content の値の語数"),
            Limit::SearchSteps => ("work of one search page in the store", "1ページの検索でストアが行う処理量"),
            Limit::SearchMs => (
                "time of each database statement of one search page, in ms",
                "1ページの検索でデータベースの各文にかけられる時間（ミリ秒）",
            ),
            Limit::ValueSetImportDepth => {
                ("levels of value sets importing value sets", "ValueSet の取り込み（compose.include.valueSet）の深さ")
            }
            Limit::ExpansionSize => ("codes in one value-set expansion", "1つの ValueSet 展開のコード数"),
            Limit::RegexBytes => ("compiled size of one regular expression", "1つの正規表現のコンパイル後のサイズ"),
            Limit::FhirPathSteps => {
                ("work of one FHIRPath evaluation, in steps", "1回の FHIRPath 式の評価の処理量（ステップ数）")
            }
            Limit::ViewRows => ("rows of one ViewDefinition/$run", "1回の ViewDefinition/$run の行数"),
            Limit::ViewMs => ("time of one ViewDefinition/$run, in ms", "1回の ViewDefinition/$run の時間（ミリ秒）"),
            Limit::ViewBytes => {
                ("bytes of output of one ViewDefinition/$run", "1回の ViewDefinition/$run の出力のバイト数")
            }
        }
    }

    /// The configured value of this limit.
    pub fn value(self, limits: &Limits) -> usize {
        match self {
            Limit::BodyBytes => limits.max_body_bytes,
            Limit::BodyValues => limits.max_body_values,
            Limit::HeaderBytes => limits.max_header_bytes,
            Limit::JsonDepth => limits.max_json_depth,
            Limit::StringChars => limits.max_string_chars,
            Limit::Issues => limits.max_issues,
            Limit::BundleEntries => limits.max_bundle_entries,
            Limit::BundleConditions => limits.max_bundle_conditions,
            Limit::BundleSearchMs => limits.max_bundle_search_ms,
            Limit::ChainDepth => limits.max_chain_depth,
            Limit::HasDepth => limits.max_has_depth,
            Limit::SearchConditions => limits.max_search_conditions,
            Limit::ValuesPerParameter => limits.max_values_per_parameter,
            Limit::IncludeIterations => limits.max_include_iterations,
            Limit::SearchOffset => limits.max_search_offset,
            Limit::PageBytes => limits.max_page_bytes,
            Limit::MemoryBytes => limits.max_memory_bytes,
            Limit::TextTerms => limits.max_text_terms,
            Limit::SearchSteps => limits.max_search_steps,
            Limit::SearchMs => limits.max_search_ms,
            Limit::ValueSetImportDepth => limits.max_value_set_import_depth,
            Limit::ExpansionSize => limits.max_expansion_size,
            Limit::RegexBytes => limits.max_regex_bytes,
            Limit::FhirPathSteps => limits.max_fhirpath_steps,
            Limit::ViewRows => limits.max_view_rows,
            Limit::ViewMs => limits.max_view_ms,
            Limit::ViewBytes => limits.max_view_bytes,
        }
    }
}

/// A request went past a limit: which one, its configured maximum, and (where known)
/// how far the request went. Crates carry this inside their own error types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    pub max: usize,
    /// What the request asked for, when it was counted to the end (`None` when counting
    /// stopped at the limit).
    pub found: Option<usize>,
    /// Where in the request (`Patient.name[0]`, a parameter name), when it helps.
    pub at: Option<String>,
    /// What the client can do instead, in English and Japanese, when there is advice.
    pub hint: Option<(String, String)>,
}

impl LimitExceeded {
    pub fn new(limit: Limit, max: usize) -> Self {
        LimitExceeded { limit, max, found: None, at: None, hint: None }
    }

    pub fn found(mut self, found: usize) -> Self {
        self.found = Some(found);
        self
    }

    pub fn at(mut self, at: impl Into<String>) -> Self {
        self.at = Some(at.into());
        self
    }

    pub fn hint(mut self, en: impl Into<String>, ja: impl Into<String>) -> Self {
        self.hint = Some((en.into(), ja.into()));
        self
    }

    pub fn message_en(&self) -> String {
        let (what, _) = self.limit.describe();
        let mut s = format!("The request goes past the limit {} = {} ({what})", self.limit.key(), self.max);
        if let Some(f) = self.found {
            s.push_str(&format!(": {f}"));
        }
        if let Some(at) = &self.at {
            s.push_str(&format!(" at {at}"));
        }
        if let Some((en, _)) = &self.hint {
            s.push_str(&format!(". {en}"));
        }
        s
    }

    pub fn message_ja(&self) -> String {
        let (_, what) = self.limit.describe();
        let mut s = format!("リクエストが上限 {} = {}（{what}）を超えています", self.limit.key(), self.max);
        if let Some(f) = self.found {
            s.push_str(&format!("（{f}）"));
        }
        if let Some(at) = &self.at {
            s.push_str(&format!("（場所: {at}）"));
        }
        if let Some((_, ja)) = &self.hint {
            s.push_str(&format!("。{ja}"));
        }
        s
    }
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_en())
    }
}

impl std::error::Error for LimitExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_named_and_overridable_in_toml() {
        let l: Limits = toml::from_str("max_chain_depth = 2\nmax_json_depth = 50").unwrap();
        assert_eq!(l.max_chain_depth, 2);
        assert_eq!(l.max_json_depth, 50);
        assert_eq!(l.max_has_depth, Limits::default().max_has_depth);
        assert!(toml::from_str::<Limits>("max_nonsense = 1").is_err());
    }

    #[test]
    fn messages_name_the_limit_in_both_languages() {
        let e = LimitExceeded::new(Limit::ChainDepth, 4).found(5).at("subject.subject");
        assert!(e.message_en().contains("max_chain_depth = 4"), "{}", e.message_en());
        assert!(e.message_ja().contains("max_chain_depth = 4"), "{}", e.message_ja());
        assert!(e.message_ja().contains("チェーン"));
        assert_eq!(Limit::ChainDepth.value(&Limits::default()), 4);
    }
}
