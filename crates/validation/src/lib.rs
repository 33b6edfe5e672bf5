//! Profile validation for Tsunagu: a [`Validator`], over the conformance resources of a
//! [`PackageSet`] (re-exported from the package crate), that checks a resource against the
//! base R4 structure, the core definitions of every resource and datatype in it, and
//! StructureDefinition snapshots: cardinality (per slice too), fixed and pattern values, bindings against
//! value sets expanded from loaded content, type narrowing, invariants (FHIRPath),
//! extension definitions, and QuestionnaireResponses against their Questionnaire.
//!
//! This crate owns the meaning of profiles and of locally expandable terminology. It never
//! does I/O, never calls a terminology
//! server, never resolves references outside the resource being validated, and never
//! builds an OperationOutcome: problems come back as [`Issue`]s (the format crate's type,
//! so the server converts structure and profile problems the same way).

mod attachment;
mod base;
mod bounds;
mod bundle;
mod conformance;
mod context;
mod extension;
mod native;
mod profile;
mod questionnaire;
mod reference;
mod resolve;
mod rules;
mod slicing;
pub mod snapshot;
mod systems;
mod terminology;
mod units;
mod validator;
mod walk;

pub use extension::DEFAULT_EXTENSION_DOMAINS;
pub use snapshot::{generate_snapshot, SnapshotError, SnapshotGenerator};
pub use tsunagu_format::{Issue, IssueType, Severity};
pub use tsunagu_package::{ConformanceKind, PackageError, PackageInfo, PackageSet};
pub use validator::Validator;
