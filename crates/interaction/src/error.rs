//! The interaction layer's one error type. Every failure a client can cause or meet ends
//! up here, carries its HTTP status and FHIR issue code, and speaks Japanese and English.

use tsunagu_store::StoreError;

/// Language of messages for the client, chosen from `Accept-Language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    /// Picks the first of `ja` / `en` named in an `Accept-Language` header (by quality).
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(h) = header else { return Lang::En };
        let mut best: Option<(f32, Lang)> = None;
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag.starts_with("ja") {
                Lang::Ja
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            // q=0 is "not acceptable" (RFC 9110 §12.4.2), not a weak preference.
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }
}

/// A problem found in submitted content, located by a FHIRPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentIssue {
    /// `error` or `warning` (FHIR issue severity).
    pub severity: &'static str,
    /// FHIR issue type code (`structure`, `required`, `value`, `code-invalid`, …).
    pub code: &'static str,
    pub expression: Option<String>,
    pub en: String,
    pub ja: String,
}

/// A base-structure or validation issue of the format crate, located where it was found.
impl From<tsunagu_format::Issue> for ContentIssue {
    fn from(i: tsunagu_format::Issue) -> Self {
        ContentIssue {
            severity: i.severity.as_str(),
            code: i.code.as_str(),
            expression: Some(i.location),
            en: i.message_en,
            ja: i.message_ja,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("unknown resource type '{0}'")]
    UnknownType(String),
    #[error("{0}/{1} is not known")]
    NotFound(String, String),
    #[error("{0}/{1}/_history/{2} is not known")]
    VersionNotFound(String, String, String),
    #[error("{0}/{1} was deleted")]
    Gone(String, String),
    #[error("invalid request: {en}")]
    BadRequest { en: String, ja: String },
    #[error("the content is not valid")]
    Invalid { status: u16, issues: Vec<ContentIssue> },
    #[error("version conflict: {en}")]
    Conflict { en: String, ja: String },
    #[error("precondition failed: {en}")]
    PreconditionFailed { en: String, ja: String },
    #[error("not supported: {en}")]
    NotSupported { en: String, ja: String },
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    #[error("not acceptable: {en}")]
    NotAcceptable { en: String, ja: String },
    #[error("unsupported media type: {en}")]
    UnsupportedMediaType { en: String, ja: String },
    /// The request body did not arrive within this many seconds.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// The request names a host this server does not serve.
    #[error("this server does not serve the host '{0}'")]
    MisdirectedRequest(String),
    /// No valid access token (the server adds `WWW-Authenticate`); the reason is safe to tell.
    #[error("unauthorized: {en}")]
    Unauthorized { en: String, ja: String },
    /// The caller's scopes or role do not allow this.
    #[error("forbidden: {en}")]
    Forbidden { en: String, ja: String },
    /// A bulk export job failed (the status URL answers it, as the Bulk Data IG says).
    #[error("export failed: {en}")]
    ExportFailed { en: String, ja: String },
    /// Too many requests of a kind at once (bulk export jobs past `max_running_jobs`).
    #[error("too many requests: {en}")]
    TooManyRequests { en: String, ja: String },
    /// The requests in progress hold `max_memory_bytes` between them and this one found no
    /// room within `memory_wait_ms` (`memory.rs`).
    #[error("the server's memory budget max_memory_bytes = {limit} had no room for this request within memory_wait_ms = {wait_ms}; retry shortly")]
    MemoryBusy { limit: u64, wait_ms: u64 },
    /// The request goes past a configured limit (named in the message).
    #[error("{0}")]
    Limit(#[from] tsunagu_limits::LimitExceeded),
    /// One entry of a transaction failed; the whole transaction was rolled back.
    #[error("transaction entry {index} failed: {source}")]
    Entry { index: usize, source: Box<InteractionError> },
    #[error("storage failure: {0}")]
    Store(StoreError),
    /// A terminology operation failed (unknown code system, bad parameters, too costly).
    #[error("terminology: {0}")]
    Terminology(#[from] tsunagu_terminology::TerminologyError),
}

impl InteractionError {
    pub fn bad_request(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::BadRequest { en: en.into(), ja: ja.into() }
    }

    pub fn not_supported(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::NotSupported { en: en.into(), ja: ja.into() }
    }

    pub fn not_acceptable(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::NotAcceptable { en: en.into(), ja: ja.into() }
    }

    pub fn unsupported_media_type(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::UnsupportedMediaType { en: en.into(), ja: ja.into() }
    }

    pub fn forbidden(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::Forbidden { en: en.into(), ja: ja.into() }
    }

    pub fn unauthorized(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::Unauthorized { en: en.into(), ja: ja.into() }
    }

    pub fn precondition(en: impl Into<String>, ja: impl Into<String>) -> Self {
        InteractionError::PreconditionFailed { en: en.into(), ja: ja.into() }
    }

    /// One invalid-content issue at a location, rejected with 400.
    pub fn invalid(code: &'static str, expression: Option<String>, en: String, ja: String) -> Self {
        InteractionError::Invalid {
            status: 400,
            issues: vec![ContentIssue { severity: "error", code, expression, en, ja }],
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            InteractionError::UnknownType(_) => 404,
            InteractionError::NotFound(..) | InteractionError::VersionNotFound(..) => 404,
            InteractionError::Gone(..) => 410,
            InteractionError::BadRequest { .. } => 400,
            InteractionError::Invalid { status, .. } => *status,
            InteractionError::Conflict { .. } => 409,
            InteractionError::PreconditionFailed { .. } => 412,
            // A request for something this server does not do is refused like any other it
            // cannot serve (400, issue code not-supported): 501 is for unknown HTTP methods.
            InteractionError::NotSupported { .. } => 400,
            InteractionError::MethodNotAllowed(_) => 405,
            InteractionError::NotAcceptable { .. } => 406,
            InteractionError::UnsupportedMediaType { .. } => 415,
            InteractionError::RequestTimeout(_) => 408,
            InteractionError::MisdirectedRequest(_) => 421,
            InteractionError::Unauthorized { .. } => 401,
            InteractionError::Forbidden { .. } => 403,
            InteractionError::ExportFailed { .. } => 500,
            InteractionError::TooManyRequests { .. } => 429,
            InteractionError::MemoryBusy { .. } => 503,
            InteractionError::Limit(l) => match l.limit {
                tsunagu_limits::Limit::BodyBytes
                | tsunagu_limits::Limit::BodyValues
                | tsunagu_limits::Limit::BundleEntries => 413,
                tsunagu_limits::Limit::HeaderBytes => 431,
                tsunagu_limits::Limit::ExpansionSize
                | tsunagu_limits::Limit::ViewRows
                | tsunagu_limits::Limit::ViewMs
                | tsunagu_limits::Limit::ViewBytes
                | tsunagu_limits::Limit::PageBytes
                | tsunagu_limits::Limit::FhirPathSteps
                | tsunagu_limits::Limit::SearchSteps
                | tsunagu_limits::Limit::SearchMs
                | tsunagu_limits::Limit::BundleConditions
                | tsunagu_limits::Limit::BundleSearchMs => 422,
                _ => 400,
            },
            InteractionError::Entry { source, .. } => source.status(),
            InteractionError::Store(StoreError::VersionConflict(_)) => 409,
            InteractionError::Store(StoreError::Unavailable(_)) => 503,
            InteractionError::Store(_) => 500,
            InteractionError::Terminology(e) => match e.kind() {
                tsunagu_terminology::ErrorKind::NotFound => 404,
                tsunagu_terminology::ErrorKind::Invalid => 400,
                tsunagu_terminology::ErrorKind::TooCostly | tsunagu_terminology::ErrorKind::Master => 422,
            },
        }
    }

    /// FHIR `IssueType` code.
    pub fn issue_code(&self) -> &'static str {
        match self {
            InteractionError::UnknownType(_) => "not-supported",
            InteractionError::NotFound(..) | InteractionError::VersionNotFound(..) => "not-found",
            InteractionError::Gone(..) => "deleted",
            InteractionError::BadRequest { .. } => "invalid",
            InteractionError::Invalid { .. } => "invalid",
            InteractionError::Conflict { .. } => "conflict",
            InteractionError::PreconditionFailed { .. } => "conflict",
            InteractionError::NotSupported { .. } => "not-supported",
            InteractionError::MethodNotAllowed(_) => "not-supported",
            InteractionError::NotAcceptable { .. } | InteractionError::UnsupportedMediaType { .. } => "not-supported",
            InteractionError::RequestTimeout(_) => "timeout",
            InteractionError::MisdirectedRequest(_) => "security",
            InteractionError::Unauthorized { .. } => "login",
            InteractionError::Forbidden { .. } => "forbidden",
            InteractionError::ExportFailed { .. } => "exception",
            InteractionError::TooManyRequests { .. } => "throttled",
            InteractionError::MemoryBusy { .. } => "transient",
            InteractionError::Limit(l) => match l.limit {
                tsunagu_limits::Limit::BodyBytes
                | tsunagu_limits::Limit::BodyValues
                | tsunagu_limits::Limit::BundleEntries
                | tsunagu_limits::Limit::StringChars
                | tsunagu_limits::Limit::HeaderBytes => "too-long",
                _ => "too-costly",
            },
            InteractionError::Entry { source, .. } => source.issue_code(),
            InteractionError::Store(StoreError::VersionConflict(_)) => "conflict",
            InteractionError::Store(StoreError::Unavailable(_)) => "transient",
            InteractionError::Store(_) => "exception",
            InteractionError::Terminology(e) => e.issue_type(),
        }
    }

    /// The message in the client's language.
    pub fn message(&self, lang: Lang) -> String {
        use InteractionError as E;
        let ja = lang == Lang::Ja;
        match self {
            E::UnknownType(t) if ja => format!("リソースタイプ '{t}' はサポートされていません"),
            E::NotFound(t, id) if ja => format!("{t}/{id} は存在しません"),
            E::VersionNotFound(t, id, v) if ja => {
                format!("{t}/{id} のバージョン {v} は存在しません")
            }
            E::Gone(t, id) if ja => format!("{t}/{id} は削除されています"),
            E::BadRequest { ja: m, .. } if ja => format!("不正なリクエストです: {m}"),
            E::BadRequest { en, .. } => format!("Bad request: {en}"),
            E::Invalid { issues, .. } if ja => {
                format!("内容が不正です（{}件の問題）", issues.len())
            }
            E::Invalid { issues, .. } => {
                format!("The content is invalid ({} issue(s))", issues.len())
            }
            E::Conflict { ja: m, .. }
            | E::PreconditionFailed { ja: m, .. }
            | E::NotSupported { ja: m, .. }
            | E::NotAcceptable { ja: m, .. }
            | E::UnsupportedMediaType { ja: m, .. }
            | E::Unauthorized { ja: m, .. }
            | E::Forbidden { ja: m, .. }
            | E::ExportFailed { ja: m, .. }
            | E::TooManyRequests { ja: m, .. }
                if ja =>
            {
                m.clone()
            }
            E::Conflict { en, .. }
            | E::PreconditionFailed { en, .. }
            | E::NotSupported { en, .. }
            | E::NotAcceptable { en, .. }
            | E::UnsupportedMediaType { en, .. }
            | E::Unauthorized { en, .. }
            | E::Forbidden { en, .. }
            | E::ExportFailed { en, .. }
            | E::TooManyRequests { en, .. } => en.clone(),
            E::MemoryBusy { limit, wait_ms } if ja => format!(
                "処理中のリクエストがサーバのメモリ上限 max_memory_bytes = {limit} を使っており、memory_wait_ms = {wait_ms} 以内に空きができませんでした。しばらくしてから再試行してください"
            ),
            E::MethodNotAllowed(m) if ja => format!("この操作は許可されていません: {m}"),
            E::RequestTimeout(s) if ja => {
                format!("リクエスト本文が {s} 秒以内に届きませんでした（上限 body_read_timeout_secs）")
            }
            E::RequestTimeout(s) => {
                format!("The request body did not arrive within {s} s (limit body_read_timeout_secs)")
            }
            E::MisdirectedRequest(h) if ja => format!("このサーバはホスト '{h}' を提供していません（allowed_hosts）"),
            E::MisdirectedRequest(h) => format!("This server does not serve the host '{h}' (allowed_hosts)"),
            E::Limit(l) if ja => l.message_ja(),
            E::Limit(l) => l.message_en(),
            E::Entry { index, source } if ja => {
                format!(
                    "トランザクションのエントリ {index} が失敗したため、全体を取り消しました: {}",
                    source.message(lang)
                )
            }
            E::Entry { index, source } => {
                format!("Transaction entry {index} failed, nothing was written: {}", source.message(lang))
            }
            E::Store(StoreError::VersionConflict(what)) if ja => {
                format!("同時更新が競合しました（{what}）。再試行してください")
            }
            E::Store(StoreError::Unavailable(_)) if ja => {
                "データベースに接続できず、要求を完了できませんでした。しばらくしてから再試行してください".to_string()
            }
            E::Store(StoreError::Unavailable(_)) => {
                "The database could not be reached and the request was not completed; retry shortly".to_string()
            }
            E::Store(_) if ja => "サーバ内部でストレージのエラーが発生しました".to_string(),
            E::Store(_) => "An internal storage error occurred".to_string(),
            E::Terminology(e) if ja => terminology_ja(e),
            E::Terminology(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

fn terminology_ja(e: &tsunagu_terminology::TerminologyError) -> String {
    use tsunagu_terminology::TerminologyError as T;
    match e {
        T::NotFound { kind, url } => format!("{} {url} はこのサーバにありません", kind.as_str()),
        T::UnknownCode { system, code } => format!("コード '{code}' はコードシステム {system} に定義されていません"),
        T::Invalid(m) => format!("パラメータが不正です: {m}"),
        T::Limit(l) => l.message_ja(),
        T::Master { line, message } => format!("マスターファイル {line} 行目: {message}"),
    }
}

impl From<StoreError> for InteractionError {
    /// A search past its cost ceiling is the limit its backend counts it by
    /// (`max_search_steps` on SQLite, `max_search_ms` on PostgreSQL), naming what could not
    /// be answered within it and what to do instead.
    fn from(e: StoreError) -> Self {
        use tsunagu_store::CostlyPart;
        let StoreError::TooCostly { part, ceiling } = e else { return InteractionError::Store(e) };
        let (limit, max) = ceiling_limit(ceiling);
        let limit = tsunagu_limits::LimitExceeded::new(limit, max);
        InteractionError::Limit(match part {
            CostlyPart::Total => limit.at("_total").hint(
                "Counting every match costs too much: leave out _total or add a more selective search parameter",
                "全件の計数は負荷が大きすぎます。_total を外すか、より絞り込める検索パラメータを加えてください",
            ),
            CostlyPart::Sort => limit.at("_sort").hint(
                "Sorting these matches costs too much: add a more selective search parameter (a code, subject or \
                 date range), or leave out _sort (pages in write order continue by their next link)",
                "この条件での並べ替えは負荷が大きすぎます。より絞り込める検索パラメータ（コード、対象者、日付の範囲など）\
                 を加えるか、_sort を外してください（書き込み順のページは next リンクで続きを取得できます）",
            ),
            CostlyPart::Conditions => limit.at("search parameters").hint(
                "A condition of this search costs too much to start: add a more selective search parameter",
                "この検索の条件は開始するだけで負荷が大きすぎます。より絞り込める検索パラメータを加えてください",
            ),
        })
    }
}

/// The limit a store's search ceiling is configured by, and its value.
pub(crate) fn ceiling_limit(c: tsunagu_store::Ceiling) -> (tsunagu_limits::Limit, usize) {
    use tsunagu_limits::Limit;
    match c {
        tsunagu_store::Ceiling::Steps(n) => (Limit::SearchSteps, usize::try_from(n).unwrap_or(usize::MAX)),
        tsunagu_store::Ceiling::Millis(n) => (Limit::SearchMs, usize::try_from(n).unwrap_or(usize::MAX)),
        tsunagu_store::Ceiling::Bytes(n) => (Limit::PageBytes, usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ja,en;q=0.8")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("en-US,ja;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("fr, ja-JP;q=0.9")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("fr")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ja;q=0")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("en;q=0, ja;q=0.1")), Lang::Ja);
    }
}
