//! Snapshot generation for StructureDefinitions published with a differential only
//! (FHIR R4 profiling, "snapshot generation"): the base definition's snapshot, re-rooted
//! at the profiled type, with each differential element merged onto the element it
//! constrains, slices inserted after the element they slice, and complex types expanded
//! where the differential reaches below an element the base leaves unexpanded.

mod merge;
mod place;

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_package::{ConformanceKind, PackageSet};

/// Why a snapshot could not be generated; the profile is then unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Neither a snapshot nor a differential.
    NoDifferential(String),
    /// The base definition (or a type to expand) is not loaded.
    Missing { profile: String, needed: String },
    /// The definition derives, directly or not, from itself.
    Cycle(String),
    /// A differential element names no element of the base (a typo, or a child of an
    /// element whose type cannot be told).
    Unplaced { profile: String, element: String, why: String },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NoDifferential(url) => write!(f, "{url} has neither a snapshot nor a differential"),
            SnapshotError::Missing { profile, needed } => write!(f, "{profile} needs {needed}, which is not loaded"),
            SnapshotError::Cycle(url) => write!(f, "{url} derives from itself"),
            SnapshotError::Unplaced { profile, element, why } => {
                write!(f, "{profile}: differential element {element} matches nothing in the base ({why})")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// The snapshot element list of `sd`: its own when it has one, otherwise generated from
/// its differential.
pub fn generate_snapshot(sd: &Value, packages: &PackageSet) -> Result<Value, SnapshotError> {
    let mut generator = SnapshotGenerator::default();
    generator.snapshot_of(sd, packages).map(|list| Value::Array(list.as_ref().clone()))
}

/// Generates snapshots and keeps the generated ones (by canonical URL), so that profiles
/// sharing a differential-only base generate it once.
#[derive(Default)]
pub struct SnapshotGenerator {
    generated: FxHashMap<String, Arc<Vec<Value>>>,
    /// URLs being generated, outermost first: a base met again is a cycle.
    in_progress: Vec<String>,
}

impl SnapshotGenerator {
    /// The snapshot elements of `sd` (shipped or generated).
    pub fn snapshot_of(&mut self, sd: &Value, packages: &PackageSet) -> Result<Arc<Vec<Value>>, SnapshotError> {
        if let Some(list) = sd.pointer("/snapshot/element").and_then(Value::as_array) {
            if !list.is_empty() {
                return Ok(Arc::new(list.clone()));
            }
        }
        let url = sd.get("url").and_then(Value::as_str).unwrap_or("(no url)").to_owned();
        if let Some(hit) = self.generated.get(&url) {
            return Ok(hit.clone());
        }
        if self.in_progress.contains(&url) {
            return Err(SnapshotError::Cycle(url));
        }
        self.in_progress.push(url.clone());
        let result = self.generate(sd, &url, packages);
        self.in_progress.pop();
        let list = Arc::new(result?);
        self.generated.insert(url, list.clone());
        Ok(list)
    }

    /// The snapshot of the definition with this canonical, resolved in `packages`.
    pub(crate) fn snapshot_of_url(
        &mut self,
        canonical: &str,
        packages: &PackageSet,
        profile: &str,
    ) -> Result<Arc<Vec<Value>>, SnapshotError> {
        let missing = || SnapshotError::Missing { profile: profile.to_owned(), needed: canonical.to_owned() };
        let sd = packages.resolve(ConformanceKind::StructureDefinition, canonical).ok_or_else(missing)?.clone();
        self.snapshot_of(&sd, packages)
    }

    fn generate(&mut self, sd: &Value, url: &str, packages: &PackageSet) -> Result<Vec<Value>, SnapshotError> {
        let differential = sd
            .pointer("/differential/element")
            .and_then(Value::as_array)
            .ok_or_else(|| SnapshotError::NoDifferential(url.to_owned()))?;
        let base_url = sd
            .get("baseDefinition")
            .and_then(Value::as_str)
            .ok_or_else(|| SnapshotError::Missing { profile: url.to_owned(), needed: "a baseDefinition".into() })?;
        let base = self.snapshot_of_url(base_url, packages, url)?;
        let type_name = sd.get("type").and_then(Value::as_str).unwrap_or("");
        let mut elements = rerooted(&base, type_name);
        let original = elements.clone();
        let mut work =
            place::Placement { elements: &mut elements, generator: self, packages, profile: url, base: &original };
        for diff in differential {
            let index = work.locate(diff)?;
            merge::merge_element(&mut work.elements[index], diff);
        }
        Ok(elements)
    }
}

/// The base elements with their root renamed to the profiled type (a constraint on a
/// type keeps its name; a specialisation of an abstract base takes the new one).
fn rerooted(base: &[Value], type_name: &str) -> Vec<Value> {
    let old_root = base.first().and_then(|e| e.get("path")).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out: Vec<Value> = base.to_vec();
    for e in &mut out {
        if e.get("id").is_none() {
            let path = e.get("path").cloned().unwrap_or(Value::Null);
            e["id"] = path;
        }
        if !type_name.is_empty() && old_root != type_name && !type_name.contains('/') {
            for key in ["id", "path"] {
                if let Some(s) = e.get(key).and_then(Value::as_str) {
                    let renamed = place::reprefix(s, &old_root, type_name);
                    e[key] = Value::String(renamed);
                }
            }
        }
    }
    out
}
