//! Value-set membership from loaded packages only: no terminology server. A value set is
//! expanded from its `expansion`, or from `compose` using enumerated concepts and whole
//! CodeSystems whose content is complete. What cannot be expanded (a code system that is
//! not loaded, filters, fragments) is remembered per system so that codes from it are
//! reported as *unverifiable* rather than wrong.

use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use tsunagu_package::{ConformanceKind, PackageSet};

/// Terminologies defined outside FHIR (the specification's list of external code
/// systems): a CodeSystem resource in a package that uses one of these URLs describes at
/// most a fragment (JP-CLINS ships two LOINC document codes as "complete"), so it never
/// decides membership on its own.
const EXTERNAL_SYSTEMS: &[&str] = &[
    "http://loinc.org",
    "http://snomed.info/sct",
    "http://unitsofmeasure.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-9-cm",
    "http://hl7.org/fhir/sid/ndc",
    "http://hl7.org/fhir/sid/cvx",
    "http://www.ama-assn.org/go/cpt",
    "urn:ietf:bcp:47",
    "urn:ietf:bcp:13",
    "urn:iso:std:iso:3166",
    "urn:iso:std:iso:4217",
];

/// A loaded CodeSystem that enumerates all its codes.
fn complete_code_system<'p>(packages: &'p PackageSet, system: &str) -> Option<&'p Arc<Value>> {
    if EXTERNAL_SYSTEMS.contains(&system) {
        return None;
    }
    let cs = packages.resolve(ConformanceKind::CodeSystem, system)?;
    (cs.get("content").and_then(Value::as_str) == Some("complete")).then_some(cs)
}

/// The result of asking whether a code is in a value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    In,
    NotIn,
    /// The value set or the code's system could not be expanded from loaded content.
    Unknown,
}

#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Codes by system.
    codes: FxHashMap<String, FxHashSet<String>>,
    /// Systems included but not enumerable here.
    unverifiable: FxHashSet<String>,
    /// An imported value set could not be found: nothing outside `codes` is decidable.
    open: bool,
}

impl Expansion {
    fn add(&mut self, system: &str, code: &str) {
        self.codes.entry(system.to_owned()).or_default().insert(code.to_owned());
    }

    pub(crate) fn member(&self, system: Option<&str>, code: &str) -> Membership {
        match system {
            Some(s) => {
                if self.codes.get(s).is_some_and(|c| c.contains(code)) {
                    Membership::In
                } else if self.open || self.unverifiable.contains(s) {
                    Membership::Unknown
                } else {
                    Membership::NotIn
                }
            }
            // A bare `code` element: the system is implied by the binding.
            None => {
                if self.codes.values().any(|c| c.contains(code)) {
                    Membership::In
                } else if self.open || !self.unverifiable.is_empty() {
                    Membership::Unknown
                } else {
                    Membership::NotIn
                }
            }
        }
    }
}

/// Expansions, computed on first use and cached (value sets are immutable once loaded).
pub(crate) struct Terminology {
    cache: Mutex<FxHashMap<String, Option<Arc<Expansion>>>>,
    /// Whole code systems, by URL.
    systems: Mutex<FxHashMap<String, Arc<Expansion>>>,
}

impl Terminology {
    pub(crate) fn new() -> Self {
        Terminology { cache: Mutex::new(FxHashMap::default()), systems: Mutex::new(FxHashMap::default()) }
    }

    /// `None` when the value set is neither loaded nor known to the R4 model.
    pub(crate) fn expand(&self, packages: &PackageSet, url: &str) -> Option<Arc<Expansion>> {
        if let Some(hit) = self.cache.lock().get(url) {
            return hit.clone();
        }
        let mut visiting = Vec::new();
        let result = expand_uncached(packages, url, &mut visiting).map(Arc::new);
        self.cache.lock().insert(url.to_owned(), result.clone());
        result
    }

    /// Whether a code is defined by a loaded, complete CodeSystem: `None` when the system
    /// is not loaded or not complete. When several loaded packages ship a CodeSystem under
    /// the same URL (JP-CLINS and eCheckupReport both publish `doc-typecodes`, each with
    /// codes the other lacks), a code any complete copy defines is defined.
    pub(crate) fn code_system_defines(&self, packages: &PackageSet, system: &str, code: &str) -> Option<bool> {
        let cs = complete_code_system(packages, system)?;
        let hit = self.systems.lock().get(system).cloned();
        let exp = match hit {
            Some(e) => e,
            None => {
                let mut e = Expansion::default();
                add_concepts(&mut e, system, cs.get("concept"));
                let copies = packages.all(ConformanceKind::CodeSystem).filter(|other| {
                    !Arc::ptr_eq(other, cs)
                        && other.get("url").and_then(Value::as_str) == Some(system)
                        && other.get("content").and_then(Value::as_str) == Some("complete")
                });
                for other in copies {
                    add_concepts(&mut e, system, other.get("concept"));
                }
                let e = Arc::new(e);
                self.systems.lock().insert(system.to_owned(), e.clone());
                e
            }
        };
        Some(exp.codes.get(system).is_some_and(|c| c.contains(code)))
    }
}

fn expand_uncached(packages: &PackageSet, url: &str, visiting: &mut Vec<String>) -> Option<Expansion> {
    if visiting.iter().any(|v| v == url) {
        return Some(Expansion { open: true, ..Default::default() });
    }
    let vs = packages
        .resolve(ConformanceKind::ValueSet, url)
        .or_else(|| packages.resolve(ConformanceKind::ValueSet, strip_version(url)));
    let Some(vs) = vs else {
        return from_model(url);
    };
    Some(expand_resource(packages, vs, url, visiting))
}

/// A value set that is not among the packages (one contained in a Questionnaire),
/// expanded against them.
pub(crate) fn expand_value_set(packages: &PackageSet, vs: &Value, label: &str) -> Expansion {
    expand_resource(packages, vs, label, &mut Vec::new())
}

fn expand_resource(packages: &PackageSet, vs: &Value, url: &str, visiting: &mut Vec<String>) -> Expansion {
    let mut exp = Expansion::default();
    if let Some(contains) = vs.pointer("/expansion/contains") {
        add_contains(&mut exp, contains);
        return exp;
    }
    visiting.push(url.to_owned());
    let includes = vs.pointer("/compose/include").and_then(Value::as_array);
    for inc in includes.into_iter().flatten() {
        let system = inc.get("system").and_then(Value::as_str);
        for imported in inc.get("valueSet").and_then(Value::as_array).into_iter().flatten() {
            // An include naming both a system and value sets is their intersection; we
            // take the union, which can only make fewer codes wrong.
            match imported.as_str().and_then(|u| expand_uncached(packages, u, visiting)) {
                Some(sub) => {
                    for (system, codes) in sub.codes {
                        exp.codes.entry(system).or_default().extend(codes);
                    }
                    exp.unverifiable.extend(sub.unverifiable);
                    exp.open |= sub.open;
                }
                None => exp.open = true,
            }
        }
        let Some(system) = system else { continue };
        if let Some(concepts) = inc.get("concept").and_then(Value::as_array) {
            for c in concepts {
                if let Some(code) = c.get("code").and_then(Value::as_str) {
                    exp.add(system, code);
                }
            }
            continue;
        }
        let has_filter = inc.get("filter").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        let cs = complete_code_system(packages, system);
        match cs {
            Some(cs) if !has_filter => add_concepts(&mut exp, system, cs.get("concept")),
            _ => {
                exp.unverifiable.insert(system.to_owned());
            }
        }
    }
    // Excludes are applied only when enumerated; an unapplied exclude leaves the set
    // larger, never wrongly smaller.
    let excludes = vs.pointer("/compose/exclude").and_then(Value::as_array);
    for exc in excludes.into_iter().flatten() {
        let (Some(system), Some(concepts)) =
            (exc.get("system").and_then(Value::as_str), exc.get("concept").and_then(Value::as_array))
        else {
            continue;
        };
        for c in concepts {
            if let (Some(code), Some(codes)) = (c.get("code").and_then(Value::as_str), exp.codes.get_mut(system)) {
                codes.remove(code);
            }
        }
    }
    visiting.pop();
    exp
}

/// Core value sets bound as required are expanded in the generated model even when the
/// core package itself is not loaded.
fn from_model(url: &str) -> Option<Expansion> {
    let codes = tsunagu_model::r4().value_set_codes(url)?;
    let mut exp = Expansion::default();
    for (system, list) in codes {
        for code in list {
            exp.add(system, code);
        }
    }
    Some(exp)
}

fn add_concepts(exp: &mut Expansion, system: &str, concepts: Option<&Value>) {
    for c in concepts.and_then(Value::as_array).into_iter().flatten() {
        if let Some(code) = c.get("code").and_then(Value::as_str) {
            exp.add(system, code);
        }
        add_concepts(exp, system, c.get("concept"));
    }
}

fn add_contains(exp: &mut Expansion, contains: &Value) {
    for c in contains.as_array().into_iter().flatten() {
        if let (Some(s), Some(code)) = (c.get("system").and_then(Value::as_str), c.get("code").and_then(Value::as_str))
        {
            exp.add(s, code);
        }
        if let Some(nested) = c.get("contains") {
            add_contains(exp, nested);
        }
    }
}

pub(crate) fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}
