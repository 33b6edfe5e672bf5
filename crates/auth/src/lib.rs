//! Access control for Tsunagu: the SMART on FHIR scopes a client or user holds, and what
//! they grant for one interaction on one resource type.
//!
//! This crate owns the meaning of scopes (SMART App Launch 2.x, with the 1.0 forms
//! `.read`/`.write`/`.*` read as their 2.x equivalents). It never speaks HTTP, never reads
//! tokens or keys, and never touches stored data: the server asks it "may this request
//! do this", and applies the answer (a query restriction, a patient compartment) itself.

mod error;
mod scope;

pub use error::AuthError;
pub use scope::{Context, Permission, Permissions, ResourceScope, Scope, ScopeSet};
