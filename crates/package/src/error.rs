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
    /// Dependencies named in package manifests that no loaded package satisfies, each as
    /// `needed-by → name#version`.
    #[error("missing package dependencies: {}", .0.join(", "))]
    MissingDependencies(Vec<String>),
}
