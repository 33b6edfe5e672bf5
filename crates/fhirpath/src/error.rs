//! The crate's single error type. Four kinds, because callers react differently: a syntax
//! or semantic error is a bug in the expression (reject it once, at compile time), an
//! execution error depends on the data, a limit is the cost of both together.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FhirPathError {
    /// The text is not FHIRPath. `pos` is a byte offset into the expression.
    #[error("syntax error at offset {pos}: {msg}")]
    Syntax { pos: usize, msg: String },
    /// The expression parses but cannot be valid for the given types (unknown element,
    /// function misuse, wrong operand types). `pos` is a byte offset into the expression.
    #[error("semantic error at offset {pos}: {msg}")]
    Semantic { pos: usize, msg: String },
    /// Evaluation failed on this input (e.g. a singleton was expected but several items
    /// were found). `pos` is the offset of the failing sub-expression.
    #[error("execution error at offset {pos}: {msg}")]
    Execution { pos: usize, msg: String },
    /// Evaluation went past a limit of this process (`max_fhirpath_steps`): neither the
    /// expression nor the data is wrong, but together they cost too much. `pos` is the
    /// sub-expression where the count passed the limit.
    #[error("evaluation stopped at offset {pos}: {limit}")]
    Limit { pos: usize, limit: Box<tsunagu_limits::LimitExceeded> },
}

impl FhirPathError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FhirPathError::Syntax { .. } => ErrorKind::Syntax,
            FhirPathError::Semantic { .. } => ErrorKind::Semantic,
            FhirPathError::Execution { .. } => ErrorKind::Execution,
            FhirPathError::Limit { .. } => ErrorKind::Limit,
        }
    }

    /// The limit an evaluation went past, when that is what stopped it.
    pub fn limit_exceeded(&self) -> Option<&tsunagu_limits::LimitExceeded> {
        match self {
            FhirPathError::Limit { limit, .. } => Some(limit),
            _ => None,
        }
    }

    pub(crate) fn syntax(pos: usize, msg: impl Into<String>) -> Self {
        FhirPathError::Syntax { pos, msg: msg.into() }
    }
    pub(crate) fn semantic(pos: usize, msg: impl Into<String>) -> Self {
        FhirPathError::Semantic { pos, msg: msg.into() }
    }
    pub(crate) fn exec(pos: usize, msg: impl Into<String>) -> Self {
        FhirPathError::Execution { pos, msg: msg.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Semantic,
    Execution,
    Limit,
}

pub type Result<T> = std::result::Result<T, FhirPathError>;
