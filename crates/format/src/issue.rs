//! Problems found in a resource's content, ready for the server to turn into an
//! OperationOutcome (this crate never builds one).

/// OperationOutcome.issue.severity values this crate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// OperationOutcome.issue.code values (http://hl7.org/fhir/issue-type) this crate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Wrong JSON shape or unknown element.
    Structure,
    /// A required element is missing.
    Required,
    /// A primitive value does not match its type.
    Value,
    /// A code is not in its required value set.
    CodeInvalid,
    /// Anything else invalid (cardinality, empty content, …).
    Invalid,
    /// Checking stopped at a limit (the list of issues was cut).
    TooCostly,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Invalid => "invalid",
            IssueType::TooCostly => "too-costly",
        }
    }
}

/// One problem, with its FHIRPath location (`Patient.name[0].given[1]`) and the message in
/// English and Japanese (the server picks by Accept-Language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub location: String,
    pub message_en: String,
    pub message_ja: String,
}
