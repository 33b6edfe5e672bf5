//! Validation of one resource: the base R4 structure, then each profile it declares or
//! the caller asks for, walked over the profile's snapshot tree.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Expression, Node};
use tsunagu_format::Issue;

use crate::profile::{compile_profile, ExpressionCache, Profile};
use crate::resolve::LocalResolver;
use crate::snapshot::SnapshotGenerator;
use crate::terminology::Terminology;
use crate::walk::Walk;
use tsunagu_package::{ConformanceKind, PackageSet};

/// Validates resources against the profiles of a [`PackageSet`]. Profiles are compiled on
/// first use and kept; a `Validator` is `Send + Sync` and meant to be shared.
pub struct Validator {
    pub(crate) packages: PackageSet,
    profiles: RwLock<FxHashMap<String, Option<Arc<Profile>>>>,
    /// Snapshots generated for differential-only profiles (their bases included).
    snapshots: Mutex<SnapshotGenerator>,
    /// Why a loaded differential-only profile has no usable snapshot, by canonical.
    unusable: RwLock<FxHashMap<String, String>>,
    expressions: Mutex<ExpressionCache>,
    pub(crate) terminology: Terminology,
    /// The server's terminology service, asked when the packages alone cannot decide a
    /// code (a code system loaded from a standard master or stored on the server).
    pub(crate) service: Option<Arc<tsunagu_terminology::Terminology>>,
    pub(crate) children: Expression,
    /// Issues reported for one resource before the list is cut (`max_issues`).
    pub(crate) max_issues: usize,
    /// Domains whose extensions may be used without a loaded definition.
    pub(crate) extension_domains: Vec<String>,
}

impl Validator {
    pub fn new(packages: PackageSet) -> Self {
        Validator {
            packages,
            profiles: RwLock::new(FxHashMap::default()),
            snapshots: Mutex::new(SnapshotGenerator::default()),
            unusable: RwLock::new(FxHashMap::default()),
            expressions: Mutex::new(FxHashMap::default()),
            terminology: Terminology::new(),
            service: None,
            children: tsunagu_fhirpath::compile("children()").expect("static expression"),
            max_issues: tsunagu_limits::Limits::default().max_issues,
            extension_domains: crate::DEFAULT_EXTENSION_DOMAINS.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    /// Reports at most `max_issues` issues per resource, then one that says the list was
    /// cut.
    pub fn with_max_issues(mut self, max_issues: usize) -> Self {
        self.max_issues = max_issues;
        self
    }

    /// Replaces the domains whose extensions may be used without a loaded definition
    /// (default [`crate::DEFAULT_EXTENSION_DOMAINS`]); an unknown extension elsewhere is an
    /// error.
    pub fn with_extension_domains(mut self, domains: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.extension_domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Also decides codes with this terminology service where the packages cannot (its
    /// code systems beyond the packages: standard masters, stored CodeSystems).
    pub fn with_terminology(mut self, service: Arc<tsunagu_terminology::Terminology>) -> Self {
        self.service = Some(service);
        self
    }

    /// The packages' verdict, or the service's when the packages cannot decide.
    pub(crate) fn service_membership(
        &self,
        vs: &str,
        system: Option<&str>,
        code: &str,
        local: crate::terminology::Membership,
    ) -> crate::terminology::Membership {
        use crate::terminology::Membership as M;
        use tsunagu_terminology::Membership as S;
        // Only for code systems the packages do not carry at all: where they do, the
        // packages' own rules (which external systems count as complete) stand.
        let beyond_packages = system.is_some_and(|s| self.packages.resolve(ConformanceKind::CodeSystem, s).is_none());
        match (local, &self.service) {
            (M::Unknown, Some(service)) if beyond_packages => match service.membership(vs, system, code) {
                S::In => M::In,
                S::NotIn => M::NotIn,
                S::Unknown => M::Unknown,
            },
            (local, _) => local,
        }
    }

    /// Whether the service's copy of a code system defines a code; `None` when the service
    /// does not hold that code system.
    pub(crate) fn service_defines(&self, system: &str, code: &str) -> Option<bool> {
        let service = self.service.as_ref()?;
        if self.packages.resolve(ConformanceKind::CodeSystem, system).is_some() {
            return None;
        }
        match service.lookup(system, code, None, &[]) {
            Ok(_) => Some(true),
            Err(tsunagu_terminology::TerminologyError::UnknownCode { .. }) => Some(false),
            Err(_) => None,
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
        let mut structure = tsunagu_format::check_structure_limited(resource, self.max_issues);
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return structure;
        };
        if structure.len() > self.max_issues {
            // The base structure alone filled the list: profiles would only add to a list
            // that is already cut.
            return structure;
        }
        let resolver = LocalResolver::new(resource);
        let ctx = EvalContext::new().with_hooks(&resolver);
        let mut walk = Walk {
            v: self,
            root: resource,
            resolver: &resolver,
            ctx: &ctx,
            issues: Vec::new(),
            seen_extensions: FxHashSet::default(),
            base_checked: FxHashSet::default(),
            conformance: FxHashMap::default(),
            depth: 0,
        };
        let root = Node::resource(resource);
        walk.check_element_ids(resource, rt);
        if rt == "Bundle" {
            walk.check_bundle(resource);
        }
        for url in profiles {
            walk.check_profile(url, true, root, resource, rt);
        }
        let declared = declared_profiles(resource);
        for url in &declared {
            if !profiles.contains(url) {
                walk.check_profile(url, false, root, resource, rt);
            }
        }
        let applied: Vec<&str> = profiles.iter().copied().chain(declared).collect();
        walk.check_base_resource(root, resource, rt, &applied);
        walk.check_questionnaire_response(root, resource, rt);
        walk.scan(root, resource, resource);
        walk.check_conformance(resource, rt, rt);
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
        if structure.len() > self.max_issues {
            structure.truncate(self.max_issues);
            structure.push(tsunagu_format::truncation_issue(self.max_issues));
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
        let compiled = self.packages.resolve(ConformanceKind::StructureDefinition, canonical).and_then(|sd| {
            let shipped = sd.pointer("/snapshot/element").and_then(Value::as_array).filter(|l| !l.is_empty());
            let generated;
            let snapshot = match shipped {
                Some(list) => list.as_slice(),
                None => match self.snapshots.lock().snapshot_of(sd, &self.packages) {
                    Ok(list) => {
                        generated = list;
                        generated.as_slice()
                    }
                    Err(e) => {
                        self.unusable.write().insert(canonical.to_owned(), e.to_string());
                        return None;
                    }
                },
            };
            compile_profile(sd, snapshot, &mut self.expressions.lock()).map(Arc::new)
        });
        self.profiles.write().insert(canonical.to_owned(), compiled.clone());
        compiled
    }
}

impl Validator {
    /// Why the loaded profile `canonical` cannot be used (its snapshot could not be
    /// generated); `None` when it is usable or not loaded.
    pub fn unusable_profile(&self, canonical: &str) -> Option<String> {
        self.profile(canonical);
        self.unusable.read().get(canonical).cloned()
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
