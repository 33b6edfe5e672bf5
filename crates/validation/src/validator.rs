//! Validation of one resource: the base R4 structure, then each profile it declares or
//! the caller asks for, walked over the profile's snapshot tree.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Expression, Node};
use tsunagu_format::Issue;

use tsunagu_package::{ConformanceKind, PackageSet};
use crate::profile::{compile_profile, ExpressionCache, Profile};
use crate::resolve::LocalResolver;
use crate::terminology::Terminology;
use crate::walk::Walk;

/// Validates resources against the profiles of a [`PackageSet`]. Profiles are compiled on
/// first use and kept; a `Validator` is `Send + Sync` and meant to be shared.
pub struct Validator {
    pub(crate) packages: PackageSet,
    profiles: RwLock<FxHashMap<String, Option<Arc<Profile>>>>,
    expressions: Mutex<ExpressionCache>,
    pub(crate) terminology: Terminology,
    pub(crate) children: Expression,
}

impl Validator {
    pub fn new(packages: PackageSet) -> Self {
        Validator {
            packages,
            profiles: RwLock::new(FxHashMap::default()),
            expressions: Mutex::new(FxHashMap::default()),
            terminology: Terminology::new(),
            children: tsunagu_fhirpath::compile("children()").expect("static expression"),
        }
    }

    pub fn packages(&self) -> &PackageSet {
        &self.packages
    }

    /// Checks `resource` against the base R4 structure, every profile in its
    /// `meta.profile`, and every profile in `profiles`. Contained and Bundle-entry resources
    /// are checked against the profiles they declare; extensions anywhere against their
    /// definitions when loaded. An unknown requested profile is an error, an unknown
    /// declared one a warning.
    pub fn validate(&self, resource: &Value, profiles: &[&str]) -> Vec<Issue> {
        let mut structure = tsunagu_format::check_structure(resource);
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return structure;
        };
        let resolver = LocalResolver { root: resource };
        let ctx = EvalContext::new().with_hooks(&resolver);
        let mut walk = Walk {
            v: self,
            root: resource,
            ctx: &ctx,
            issues: Vec::new(),
            seen_extensions: FxHashSet::default(),
            conformance: FxHashMap::default(),
        };
        let root = Node::resource(resource);
        walk.check_contained_referenced(resource, rt);
        for url in profiles {
            walk.check_profile(url, true, root, resource, rt);
        }
        for url in declared_profiles(resource) {
            if !profiles.contains(&url) {
                walk.check_profile(url, false, root, resource, rt);
            }
        }
        walk.scan(root, resource);
        // The structure check already reports base-level problems; a profile repeating the
        // base rule at the same place adds nothing.
        let mut seen: FxHashSet<(String, &'static str, String)> = FxHashSet::default();
        for i in &structure {
            seen.insert((i.location.clone(), i.code.as_str(), String::new()));
        }
        for i in walk.issues {
            let same_place = (i.location.clone(), i.code.as_str(), String::new());
            let same_text = (i.location.clone(), i.code.as_str(), i.message_en.clone());
            if seen.contains(&same_place) || !seen.insert(same_text) {
                continue;
            }
            structure.push(i);
        }
        structure
    }

    /// Constraints of a profile that could not be compiled (and so are never checked), as
    /// `key: error`; `None` when the profile is not loaded.
    pub fn uncompiled_constraints(&self, profile: &str) -> Option<Vec<String>> {
        self.profile(profile).map(|p| p.uncompiled.clone())
    }

    pub(crate) fn profile(&self, canonical: &str) -> Option<Arc<Profile>> {
        if let Some(hit) = self.profiles.read().get(canonical) {
            return hit.clone();
        }
        let compiled = self
            .packages
            .resolve(ConformanceKind::StructureDefinition, canonical)
            .and_then(|sd| compile_profile(sd, &mut self.expressions.lock()))
            .map(Arc::new);
        self.profiles.write().insert(canonical.to_owned(), compiled.clone());
        compiled
    }
}

pub(crate) fn declared_profiles(resource: &Value) -> Vec<&str> {
    resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}
