//! The crate's one error type: why a document could not be read or written at all.
//! Content problems in a well-formed document are `Issue`s, not errors.

/// Failure to convert a document between wire formats.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// The XML is not well-formed (bad nesting, bad escape, unexpected end, …).
    #[error("malformed XML at byte {position}: {message}")]
    MalformedXml { position: u64, message: String },
    /// DOCTYPE declarations are refused outright: they are how entity expansion and
    /// external-entity (XXE) attacks get in, and FHIR never needs them.
    #[error("DTDs and entity declarations are not allowed in FHIR XML")]
    Dtd,
    /// The XML root or a resource wrapper holds something other than a known resource.
    #[error("unknown resource type `{0}`")]
    UnknownResourceType(String),
    /// An element or property that the R4 definition of its parent does not have.
    #[error("unknown element `{name}` in {parent}")]
    UnknownElement { parent: String, name: String },
    /// The document goes past a configured limit (nesting depth).
    #[error("{0}")]
    Limit(tsunagu_limits::LimitExceeded),
    /// Well-formed input whose shape cannot be represented in the other format.
    #[error("invalid content in {path}: {message}")]
    Invalid { path: String, message: String },
}

impl FormatError {
    pub(crate) fn invalid(path: &str, message: impl Into<String>) -> Self {
        FormatError::Invalid { path: path.to_string(), message: message.into() }
    }

    pub(crate) fn unknown(parent: &str, name: &str) -> Self {
        FormatError::UnknownElement { parent: parent.to_string(), name: name.to_string() }
    }
}
