//! FHIR conformance packages: npm-style `.tgz` archives (`package/package.json` plus one
//! JSON resource per file) loaded into a [`PackageSet`] indexed by canonical URL, with a
//! dependency check and a report of profiles whose base definition is missing.
//!
//! This crate owns reading packages and resolving canonicals. It never interprets what a
//! profile or value set means (validation and terminology do), never fetches packages
//! from the network, and never stores anything.

mod error;
mod set;

pub use error::PackageError;
pub use set::{newer_or_equal, ConformanceKind, PackageInfo, PackageSet};
