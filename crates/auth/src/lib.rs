//! Access control for Tsunagu: the SMART on FHIR scopes a client or user holds, what they
//! grant for one interaction on one resource type, and the access tokens that carry them.
//!
//! This crate owns the meaning of scopes (SMART App Launch 2.x, with the 1.0 forms
//! `.read`/`.write`/`.*` read as their 2.x equivalents), the server's signing keys and
//! its access tokens (ES384 JWS). It never speaks HTTP and never touches stored FHIR data:
//! the server asks it "who is this, and may they do this", and applies the answer (a query
//! restriction, a patient compartment) itself.

mod assertion;
mod error;
mod keys;
mod scope;
mod token;

pub use assertion::{verify_client_assertion, AssertionContext, JtiLog, MemoryJtiLog, MAX_ASSERTION_LIFETIME_SECS};
pub use error::AuthError;
pub use keys::{KeyRing, SigningKey};
pub use scope::{Context, Permission, Permissions, ResourceScope, Scope, ScopeSet, MAX_SCOPES};
pub use token::{AccessClaims, Grant, TokenIssuer};
