//! The one error type of this crate. Messages are English; the one OperationOutcome
//! conversion (in `tsunagu-interaction`) adds Japanese and picks the HTTP status from
//! [`TerminologyError::kind`].

/// Which terminology resource was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    CodeSystem,
    ValueSet,
    ConceptMap,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::CodeSystem => "CodeSystem",
            ResourceKind::ValueSet => "ValueSet",
            ResourceKind::ConceptMap => "ConceptMap",
        }
    }
}

/// What went wrong, in the coarse terms a caller needs to choose a status:
/// `NotFound` → 404, `Invalid` → 400, `TooCostly` → 422 (issue type `too-costly`),
/// `Master` → 422 (the uploaded master file is unusable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Invalid,
    TooCostly,
    Master,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminologyError {
    /// A code system, value set or concept map named by canonical URL is not loaded.
    #[error("{} {url} is not known to this server", .kind.as_str())]
    NotFound { kind: ResourceKind, url: String },
    /// A code that the operation needs (e.g. `$lookup`, `$subsumes`) is not in its system.
    #[error("code '{code}' is not defined in code system {system}")]
    UnknownCode { system: String, code: String },
    /// Bad or contradictory parameters, or content this server cannot interpret.
    #[error("{0}")]
    Invalid(String),
    /// A configured limit was reached: an expansion larger than `max_expansion_size` asked
    /// for without `count`, or value sets importing each other deeper than
    /// `max_value_set_import_depth`.
    #[error("{0}")]
    Limit(tsunagu_limits::LimitExceeded),
    /// A standard master file could not be read; `line` is 1-based in the file.
    #[error("master file line {line}: {message}")]
    Master { line: usize, message: String },
}

impl TerminologyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TerminologyError::NotFound { .. } | TerminologyError::UnknownCode { .. } => ErrorKind::NotFound,
            TerminologyError::Invalid(_) => ErrorKind::Invalid,
            TerminologyError::Limit(_) => ErrorKind::TooCostly,
            TerminologyError::Master { .. } => ErrorKind::Master,
        }
    }

    /// The FHIR `IssueType` code that fits best.
    pub fn issue_type(&self) -> &'static str {
        match self {
            TerminologyError::NotFound { .. } | TerminologyError::UnknownCode { .. } => "not-found",
            TerminologyError::Invalid(_) => "invalid",
            TerminologyError::Limit(_) => "too-costly",
            TerminologyError::Master { .. } => "structure",
        }
    }

    pub(crate) fn not_found(kind: ResourceKind, url: &str) -> Self {
        TerminologyError::NotFound { kind, url: url.to_owned() }
    }

    pub(crate) fn master(line: usize, message: impl Into<String>) -> Self {
        TerminologyError::Master { line, message: message.into() }
    }
}

pub type Result<T, E = TerminologyError> = std::result::Result<T, E>;
