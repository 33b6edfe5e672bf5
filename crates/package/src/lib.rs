//! FHIR conformance packages: npm-style `.tgz` archives (`package/package.json` plus one
//! JSON resource per file) loaded into a [`PackageSet`] indexed by canonical URL, with a
//! dependency check and a report of profiles whose base definition is missing.
//!
//! This crate owns reading packages and resolving canonicals. It never interprets what a
//! profile or value set means (validation and terminology do), never fetches packages
//! from the network, and never stores anything.
//!
//! Packages are untrusted input: their files are read into memory only (never unpacked to
//! disk, so entry paths and links cannot reach outside anything), only regular files
//! directly under `package/` are read, the unpacked size is bounded, and a package's
//! `name` and `version` must follow the npm grammar ([`check_name`], [`check_version`])
//! since installing a package uses them in a file name.

mod error;
mod name;
mod set;

pub use error::PackageError;
pub use name::{check_name, check_version, MAX_NAME_LEN, MAX_VERSION_LEN};
pub use set::{newer_or_equal, ConformanceKind, PackageInfo, PackageSet, MAX_ENTRY_BYTES, MAX_PACKAGE_BYTES};
