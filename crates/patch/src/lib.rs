//! FHIR PATCH documents applied to a resource's JSON: RFC 6902 JSON Patch (through the
//! `json-patch` crate) and FHIRPath Patch (a `Parameters` resource whose operations
//! address nodes by FHIRPath).
//!
//! It owns only the transformation of one resource by one patch document. It never
//! stores, versions or validates the result: the interaction layer checks that the
//! patched resource is still valid and writes it.

mod fhirpath_patch;

use serde_json::Value;

/// A patch document.
#[derive(Debug, Clone)]
pub enum Patch {
    /// RFC 6902 JSON Patch: an array of operations.
    Json(Value),
    /// FHIRPath Patch: a `Parameters` resource.
    FhirPath(Value),
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the JSON Patch document is malformed: {0}")]
    MalformedJsonPatch(String),
    #[error("{0}")]
    JsonPatchFailed(String),
    #[error("FHIRPath Patch: {0}")]
    FhirPath(String),
    /// A path cost more than a limit allows (`max_fhirpath_steps`); `path` is the path.
    #[error("FHIRPath Patch: path '{path}': {limit}")]
    Limit { path: String, limit: Box<tsunagu_limits::LimitExceeded> },
}

/// Applies `patch` to `doc`. On error, nothing is returned: the caller keeps the original.
pub fn apply(mut doc: Value, patch: &Patch) -> Result<Value, PatchError> {
    match patch {
        Patch::Json(ops) => {
            let ops: json_patch::Patch =
                serde_json::from_value(ops.clone()).map_err(|e| PatchError::MalformedJsonPatch(e.to_string()))?;
            // json_patch::patch is all-or-nothing on the document it is given.
            json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
            Ok(doc)
        }
        Patch::FhirPath(params) => fhirpath_patch::apply(doc, params),
    }
}
