//! The one error type of this crate.

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A scope that is not in the SMART grammar (nor one of the identity and launch scopes).
    #[error("invalid scope `{scope}`: {reason}")]
    InvalidScope { scope: String, reason: &'static str },
}
