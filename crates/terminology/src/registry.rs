//! The terminology resources the service knows, by kind and canonical: `url|version` for
//! each version and `url` for the latest, as in `tsunagu-package`.

use std::sync::Arc;
use tsunagu_package::newer_or_equal;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::error::ResourceKind;

#[derive(Default)]
pub(crate) struct Registry {
    code_systems: FxHashMap<String, Arc<Value>>,
    value_sets: FxHashMap<String, Arc<Value>>,
    concept_maps: FxHashMap<String, Arc<Value>>,
}

impl Registry {
    fn map(&self, kind: ResourceKind) -> &FxHashMap<String, Arc<Value>> {
        match kind {
            ResourceKind::CodeSystem => &self.code_systems,
            ResourceKind::ValueSet => &self.value_sets,
            ResourceKind::ConceptMap => &self.concept_maps,
        }
    }

    /// Adds a resource; one with the same `url|version` is replaced. Returns the key of
    /// this version (`url|version`, or `url|` without a version).
    pub fn insert(&mut self, kind: ResourceKind, value: Arc<Value>) -> Option<String> {
        let url = value.get("url").and_then(Value::as_str)?.to_owned();
        let version = value.get("version").and_then(Value::as_str).map(str::to_owned);
        let map = match kind {
            ResourceKind::CodeSystem => &mut self.code_systems,
            ResourceKind::ValueSet => &mut self.value_sets,
            ResourceKind::ConceptMap => &mut self.concept_maps,
        };
        let key = version_key(&url, version.as_deref());
        map.insert(key.clone(), value.clone());
        let current = map.get(&url).and_then(|c| c.get("version")).and_then(Value::as_str);
        let replaces_same = current == version.as_deref();
        if replaces_same || newer_or_equal(version.as_deref(), current) {
            map.insert(url, value);
        }
        Some(key)
    }

    /// The resource for a canonical: `url` (latest), `url|version`, or `url` with a
    /// separate `version`. A version that is not loaded does not fall back, except to a
    /// resource that declares no version at all.
    pub fn resolve(&self, kind: ResourceKind, canonical: &str, version: Option<&str>) -> Option<Arc<Value>> {
        let (url, embedded) = split_canonical(canonical);
        let map = self.map(kind);
        match version.or(embedded) {
            None => map.get(url).cloned(),
            Some(v) => map
                .get(&version_key(url, Some(v)))
                .cloned()
                .or_else(|| map.get(url).filter(|r| r.get("version").is_none()).cloned()),
        }
    }

    /// Every distinct resource of a kind (each version once).
    pub fn all(&self, kind: ResourceKind) -> impl Iterator<Item = &Arc<Value>> {
        self.map(kind).iter().filter(|(k, _)| k.contains('|')).map(|(_, v)| v)
    }
}

pub(crate) fn version_key(url: &str, version: Option<&str>) -> String {
    format!("{url}|{}", version.unwrap_or(""))
}

/// `url|version` → (`url`, `Some(version)`).
pub(crate) fn split_canonical(canonical: &str) -> (&str, Option<&str>) {
    match canonical.split_once('|') {
        Some((u, v)) if !v.is_empty() => (u, Some(v)),
        Some((u, _)) => (u, None),
        None => (canonical, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn latest_and_versions() {
        let mut r = Registry::default();
        let v = |ver: &str, tag: &str| Arc::new(json!({"url": "u", "version": ver, "name": tag}));
        r.insert(ResourceKind::ValueSet, v("1.10.0", "new"));
        r.insert(ResourceKind::ValueSet, v("1.9.0", "old"));
        let name = |x: Option<Arc<Value>>| x.unwrap()["name"].as_str().unwrap().to_owned();
        assert_eq!(name(r.resolve(ResourceKind::ValueSet, "u", None)), "new");
        assert_eq!(name(r.resolve(ResourceKind::ValueSet, "u|1.9.0", None)), "old");
        assert!(r.resolve(ResourceKind::ValueSet, "u|2", None).is_none());
        r.insert(ResourceKind::ValueSet, v("1.10.0", "replaced"));
        assert_eq!(name(r.resolve(ResourceKind::ValueSet, "u", None)), "replaced");
        assert_eq!(r.all(ResourceKind::ValueSet).count(), 2);
    }
}
