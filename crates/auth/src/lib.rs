//! Access control for Tsunagu: the SMART on FHIR scopes a client or user holds, what they
//! grant for one interaction on one resource type, and the access tokens that carry them.
//!
//! This crate owns the meaning of scopes (SMART App Launch 2.x, with the 1.0 forms
//! `.read`/`.write`/`.*` read as their 2.x equivalents), the server's signing keys and
//! its access tokens (ES384 JWS). It never speaks HTTP and never touches stored FHIR data:
//! the server asks it "who is this, and may they do this", and applies the answer (a query
//! restriction, a patient compartment) itself.

mod assertion;
mod authority;
mod error;
mod external;
mod jwks_source;
mod keys;
mod login;
mod pkce;
mod registry;
mod roles;
mod scope;
mod token;
mod totp;
mod users;

pub use assertion::{verify_client_assertion, AssertionContext, JtiLog, MemoryJtiLog, MAX_ASSERTION_LIFETIME_SECS};
pub use authority::{AuthSettings, Authority, CLIENT_ASSERTION_TYPE};
pub use error::AuthError;
pub use external::ExternalIssuer;
pub use jwks_source::JwksFetcher;
pub use keys::{KeyRing, SigningKey};
pub use login::{
    html_escape, login_error_message, login_page, AuthorizeRequest, CodeStore, IssuedCode, CODE_LIFETIME_SECS,
    MAX_PENDING_CODES,
};
pub use pkce::{challenge_s256, verify_s256};
pub use registry::{is_institution_code, Client, Registry};
pub use roles::{Role, RoleScopes};
pub use scope::{Context, Permission, Permissions, ResourceScope, Scope, ScopeSet, MAX_SCOPES};
pub use token::{AccessClaims, Grant, TokenIssuer};
pub use totp::{
    base32_decode, base32_encode, code_at as totp_code_at, otpauth_uri, verify as totp_verify, TOTP_DIGITS,
    TOTP_STEP_SECS,
};
pub use users::{
    UserInfo, UserStore, LOCKOUT_SECS, MAX_FAILED_LOGINS, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, TOTP_ISSUER,
};
