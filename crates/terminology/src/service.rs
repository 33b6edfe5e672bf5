//! [`Terminology`]: the resources, the code-system indexes built from them, and the caches
//! of expansions and concept-map indexes. Operations live in their own modules as further
//! `impl Terminology` blocks.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_package::{ConformanceKind, PackageSet};

use crate::code_system::CodeSystemIndex;
use crate::concept_map::ConceptMapIndex;
use crate::error::{ResourceKind, Result, TerminologyError};
use crate::registry::{split_canonical, version_key, Registry};
use crate::value_set::{self, Expansion};

/// Past this many cached expansions the cache starts afresh; expansions of big systems are
/// cheap to rebuild from their code-system index, which is never evicted.
const EXPANSION_CACHE_ENTRIES: usize = 512;

/// The terminology service. Built once from the loaded packages, then fed resources at
/// runtime with [`Terminology::add`]; shared behind an `Arc` by every request thread.
pub struct Terminology {
    registry: RwLock<Registry>,
    /// Code-system indexes by `url|version`: built on first use for package resources,
    /// at once for added ones (whose concept JSON is then dropped).
    indexes: RwLock<FxHashMap<String, Arc<CodeSystemIndex>>>,
    /// Full expansions by value-set `url|version`.
    expansions: Mutex<FxHashMap<String, Arc<Expansion>>>,
    /// Concept-map indexes by `url|version`.
    concept_maps: Mutex<FxHashMap<String, Arc<ConceptMapIndex>>>,
    expansion_limit: usize,
    /// Levels of value sets importing value sets before evaluation stops.
    import_depth_limit: usize,
    /// Compiled size of a value-set `regex` filter.
    regex_limit: usize,
}

impl Default for Terminology {
    fn default() -> Self {
        Terminology {
            registry: RwLock::default(),
            indexes: RwLock::default(),
            expansions: Mutex::default(),
            concept_maps: Mutex::default(),
            expansion_limit: tsunagu_limits::Limits::default().max_expansion_size,
            import_depth_limit: tsunagu_limits::Limits::default().max_value_set_import_depth,
            regex_limit: tsunagu_limits::Limits::default().max_regex_bytes,
        }
    }
}

impl Terminology {
    /// A service over every CodeSystem, ValueSet and ConceptMap of `packages`. Nothing is
    /// indexed yet: a code system is indexed the first time an operation needs it.
    pub fn new(packages: &PackageSet) -> Self {
        let service = Terminology::default();
        {
            let mut registry = service.registry.write();
            for (kind, rk) in [
                (ConformanceKind::CodeSystem, ResourceKind::CodeSystem),
                (ConformanceKind::ValueSet, ResourceKind::ValueSet),
                (ConformanceKind::ConceptMap, ResourceKind::ConceptMap),
            ] {
                for r in packages.all(kind) {
                    registry.insert(rk, r.clone());
                }
            }
        }
        service
    }

    /// Sets the largest expansion returned without `count` (`max_expansion_size`).
    pub fn with_expansion_limit(mut self, limit: usize) -> Self {
        self.expansion_limit = limit;
        self
    }

    /// Sets the terminology limits (expansion size, import depth, regex size) from the
    /// server's limits.
    pub fn with_limits(mut self, limits: &tsunagu_limits::Limits) -> Self {
        self.expansion_limit = limits.max_expansion_size;
        self.import_depth_limit = limits.max_value_set_import_depth;
        self.regex_limit = limits.max_regex_bytes;
        self
    }

    pub(crate) fn max_regex_bytes(&self) -> usize {
        self.regex_limit
    }

    pub fn expansion_limit(&self) -> usize {
        self.expansion_limit
    }

    /// The error for an expansion of `total` codes past the expansion limit.
    pub(crate) fn too_large(&self, url: &str, total: usize) -> TerminologyError {
        let e = tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::ExpansionSize, self.expansion_limit);
        TerminologyError::Limit(e.found(total).at(url))
    }

    /// Adds a CodeSystem, ValueSet or ConceptMap (stored on the server, or loaded from a
    /// master). One with the same `url|version` is replaced. A CodeSystem is indexed at
    /// once and its `concept` tree is not kept as JSON, so a 200k-concept master costs the
    /// index only.
    pub fn add(&self, mut resource: Value) -> Result<()> {
        let kind = match resource.get("resourceType").and_then(Value::as_str) {
            Some("CodeSystem") => ResourceKind::CodeSystem,
            Some("ValueSet") => ResourceKind::ValueSet,
            Some("ConceptMap") => ResourceKind::ConceptMap,
            other => {
                return Err(TerminologyError::Invalid(format!(
                    "only CodeSystem, ValueSet and ConceptMap can be added, not {}",
                    other.unwrap_or("a resource without resourceType")
                )))
            }
        };
        let Some(url) = resource.get("url").and_then(Value::as_str).map(str::to_owned) else {
            return Err(TerminologyError::Invalid(format!("{} without url cannot be added", kind.as_str())));
        };
        let key = version_key(&url, resource.get("version").and_then(Value::as_str));
        match kind {
            ResourceKind::CodeSystem => {
                let index = Arc::new(CodeSystemIndex::from_resource(&resource));
                if let Some(obj) = resource.as_object_mut() {
                    obj.shift_remove("concept");
                }
                self.indexes.write().insert(key.clone(), index);
            }
            ResourceKind::ConceptMap => {
                self.concept_maps.lock().remove(&key);
            }
            ResourceKind::ValueSet => {}
        }
        self.registry.write().insert(kind, Arc::new(resource));
        // Any cached expansion may draw on what changed (through imports or systems).
        self.expansions.lock().clear();
        Ok(())
    }

    pub(crate) fn resource(&self, kind: ResourceKind, canonical: &str, version: Option<&str>) -> Option<Arc<Value>> {
        self.registry.read().resolve(kind, canonical, version)
    }

    /// The code systems this service knows, by canonical URL, each with its versions
    /// (sorted, without repeats): what a TerminologyCapabilities lists.
    pub fn code_systems(&self) -> Vec<(String, Vec<String>)> {
        let mut by_url: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for cs in self.all(ResourceKind::CodeSystem) {
            let Some(url) = cs.get("url").and_then(Value::as_str) else { continue };
            let versions = by_url.entry(url.to_string()).or_default();
            if let Some(v) = cs.get("version").and_then(Value::as_str) {
                versions.insert(v.to_string());
            }
        }
        by_url.into_iter().map(|(url, versions)| (url, versions.into_iter().collect())).collect()
    }

    pub(crate) fn all(&self, kind: ResourceKind) -> Vec<Arc<Value>> {
        self.registry.read().all(kind).cloned().collect()
    }

    /// The index of a code system (`url`, `url|version`, or `url` plus `version`).
    pub(crate) fn code_system_index(&self, canonical: &str, version: Option<&str>) -> Option<Arc<CodeSystemIndex>> {
        let resource = self.resource(ResourceKind::CodeSystem, canonical, version)?;
        let key = key_of(&resource);
        if let Some(hit) = self.indexes.read().get(&key) {
            return Some(hit.clone());
        }
        // Built outside the lock; two threads racing build it twice and one copy wins.
        let built = Arc::new(CodeSystemIndex::from_resource(&resource));
        Some(self.indexes.write().entry(key).or_insert(built).clone())
    }

    /// The code system or a NotFound error.
    pub(crate) fn require_code_system(&self, system: &str, version: Option<&str>) -> Result<Arc<CodeSystemIndex>> {
        self.code_system_index(system, version).ok_or_else(|| {
            let (url, embedded) = split_canonical(system);
            let shown = match version.or(embedded) {
                Some(v) => format!("{url}|{v}"),
                None => url.to_owned(),
            };
            TerminologyError::not_found(ResourceKind::CodeSystem, &shown)
        })
    }

    /// The cached full expansion of a loaded value set; `None` when it is not loaded.
    pub(crate) fn expansion_in(&self, canonical: &str, stack: &mut Vec<String>) -> Result<Option<Arc<Expansion>>> {
        let Some(vs) = self.resource(ResourceKind::ValueSet, canonical, None) else {
            return Ok(None);
        };
        let key = key_of(&vs);
        if let Some(hit) = self.expansions.lock().get(&key) {
            return Ok(Some(hit.clone()));
        }
        if stack.contains(&key) {
            return Err(TerminologyError::Invalid(format!("ValueSet {canonical} imports itself")));
        }
        // Each level is a recursion; a chain of thousands of imports would end the process.
        if stack.len() >= self.import_depth_limit {
            let e =
                tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::ValueSetImportDepth, self.import_depth_limit);
            let root = stack.first().map(String::as_str).unwrap_or(canonical);
            return Err(TerminologyError::Limit(e.at(root)));
        }
        stack.push(key.clone());
        let result = value_set::evaluate(self, &vs, stack);
        stack.pop();
        let expansion = Arc::new(result?);
        let mut cache = self.expansions.lock();
        if cache.len() >= EXPANSION_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, expansion.clone());
        Ok(Some(expansion))
    }

    pub(crate) fn concept_map_index(&self, map: &Value) -> Arc<ConceptMapIndex> {
        let key = key_of(map);
        if let Some(hit) = self.concept_maps.lock().get(&key) {
            return hit.clone();
        }
        let built = Arc::new(ConceptMapIndex::from_resource(map));
        self.concept_maps.lock().entry(key).or_insert(built).clone()
    }
}

fn key_of(resource: &Value) -> String {
    version_key(
        resource.get("url").and_then(Value::as_str).unwrap_or(""),
        resource.get("version").and_then(Value::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `vs0` imports `vs1` … imports `vs{n-1}`, which lists one code.
    fn chain(n: usize) -> Terminology {
        let t = Terminology::default();
        for i in 0..n {
            let include = if i + 1 < n {
                json!({"valueSet": [format!("http://x/vs{}", i + 1)]})
            } else {
                json!({"system": "http://x/cs", "concept": [{"code": "a"}]})
            };
            t.add(json!({"resourceType": "ValueSet", "url": format!("http://x/vs{i}"), "compose": {"include": [include]}}))
                .unwrap();
        }
        t
    }

    #[test]
    fn imports_stop_at_the_depth_limit() {
        assert_eq!(chain(10).expand_codes("http://x/vs0").unwrap(), vec![("http://x/cs".into(), "a".into())]);
        match chain(11).expand_codes("http://x/vs0") {
            Err(TerminologyError::Limit(l)) => assert_eq!(l.limit, tsunagu_limits::Limit::ValueSetImportDepth),
            other => panic!("{other:?}"),
        }
        // Thousands of levels end the same way, not with a stack overflow.
        assert!(matches!(chain(3000).expand_codes("http://x/vs0"), Err(TerminologyError::Limit(_))));
        let deeper =
            chain(11).with_limits(&tsunagu_limits::Limits { max_value_set_import_depth: 11, ..Default::default() });
        assert!(deeper.expand_codes("http://x/vs0").is_ok());
    }
}
