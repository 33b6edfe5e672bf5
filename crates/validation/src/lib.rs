//! Profile validation for Tsunagu: conformance packages (npm-style `.tgz` FHIR packages:
//! StructureDefinitions, ValueSets, CodeSystems, SearchParameters, NamingSystems,
//! ConceptMaps) loaded into a [`PackageSet`] indexed by canonical URL, and a [`Validator`]
//! that checks a resource against the base R4 structure and against StructureDefinition
//! snapshots: cardinality (per slice too), fixed and pattern values, bindings against
//! value sets expanded from loaded content, type narrowing, invariants (FHIRPath), and
//! extension definitions.
//!
//! This crate owns the meaning of profiles and of locally expandable terminology. It never
//! does I/O beyond reading package files it is pointed at, never calls a terminology
//! server, never resolves references outside the resource being validated, and never
//! builds an OperationOutcome: problems come back as [`Issue`]s (the format crate's type,
//! so the server converts structure and profile problems the same way).

mod error;
mod package;
mod profile;
mod resolve;
mod rules;
mod slicing;
mod terminology;
mod validator;
mod walk;

pub use error::ValidationError;
pub use package::{ConformanceKind, PackageInfo, PackageSet};
pub use tsunagu_format::{Issue, IssueType, Severity};
pub use validator::Validator;
