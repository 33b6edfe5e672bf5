//! The one error type of this crate: failures to load conformance packages.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read package {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("package {origin}: {file} is not valid JSON: {message}")]
    Json { origin: String, file: String, message: String },
    #[error("package {origin} has no package/package.json with a name and version")]
    NoManifest { origin: String },
    /// The manifest's `name` or `version` breaks the npm grammar (see
    /// [`check_name`](crate::check_name) and [`check_version`](crate::check_version)).
    /// Both become part of a file name when the package is installed, so such a package
    /// is refused. `value` is shortened to its first 100 characters.
    #[error("package {origin}: package.json {field} {value:?} is not allowed: {reason}")]
    InvalidManifest { origin: String, field: &'static str, value: String, reason: String },
    /// The package unpacks to more than [`MAX_PACKAGE_BYTES`](crate::MAX_PACKAGE_BYTES),
    /// or one of its files to more than [`MAX_ENTRY_BYTES`](crate::MAX_ENTRY_BYTES).
    #[error("package {origin} is too large: {what} exceeds {limit} bytes uncompressed")]
    TooLarge { origin: String, what: String, limit: u64 },
    /// Dependencies named in package manifests that no loaded package satisfies, each as
    /// `needed-by → name#version`.
    #[error("missing package dependencies: {}", .0.join(", "))]
    MissingDependencies(Vec<String>),
}
