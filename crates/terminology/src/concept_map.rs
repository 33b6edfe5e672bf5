//! `ConceptMap/$translate`, over concept maps indexed both ways (source → target for a
//! normal translation, target → source for `reverse`), so that a master-sized map (tens
//! of thousands of disease codes) answers by hash lookup.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{json, Value};

use crate::error::{ResourceKind, Result, TerminologyError};
use crate::parameters::{single, Parameters};
use crate::service::Terminology;

/// The `$translate` parameters this server understands. `source` names the value set of
/// the supplied concept and `target` the value set wanted, so with `reverse` they are
/// compared with the map's target and source scopes respectively.
#[derive(Debug, Clone, Copy, Default)]
pub struct TranslateParams<'a> {
    /// The ConceptMap canonical; without it (and without `concept_map`) every loaded map
    /// whose scope fits `source` / `target` is used.
    pub url: Option<&'a str>,
    pub concept_map: Option<&'a Value>,
    pub source: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Only matches into this code system.
    pub target_system: Option<&'a str>,
    pub system: &'a str,
    pub code: &'a str,
    /// Translate from the map's targets back to its sources.
    pub reverse: bool,
}

#[derive(Debug, Clone)]
struct Mapping {
    system: Arc<str>,
    code: Box<str>,
    display: Option<Box<str>>,
    equivalence: Box<str>,
}

/// What a group says for codes it does not list (`group.unmapped`).
#[derive(Debug)]
struct Unmapped {
    source: String,
    target: Arc<str>,
    mode: String,
    code: Option<String>,
    display: Option<String>,
}

type Side = FxHashMap<Box<str>, FxHashMap<Box<str>, Vec<Mapping>>>;

#[derive(Debug, Default)]
pub(crate) struct ConceptMapIndex {
    url: String,
    source_scope: Option<String>,
    target_scope: Option<String>,
    /// source system → source code → targets.
    forward: Side,
    /// target system → target code → sources.
    backward: Side,
    unmapped: Vec<Unmapped>,
}

impl ConceptMapIndex {
    pub fn from_resource(map: &Value) -> Self {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut index = ConceptMapIndex {
            url: text(map, "url").unwrap_or_default(),
            source_scope: text(map, "sourceUri").or_else(|| text(map, "sourceCanonical")),
            target_scope: text(map, "targetUri").or_else(|| text(map, "targetCanonical")),
            ..Default::default()
        };
        for group in map.get("group").and_then(Value::as_array).into_iter().flatten() {
            let source: Arc<str> = text(group, "source").unwrap_or_default().into();
            let target: Arc<str> = text(group, "target").unwrap_or_default().into();
            for element in group.get("element").and_then(Value::as_array).into_iter().flatten() {
                let Some(code) = element.get("code").and_then(Value::as_str) else { continue };
                for t in element.get("target").and_then(Value::as_array).into_iter().flatten() {
                    let equivalence: Box<str> =
                        t.get("equivalence").and_then(Value::as_str).unwrap_or("equivalent").into();
                    let Some(tcode) = t.get("code").and_then(Value::as_str) else {
                        // An unmatched element: recorded forward with no concept.
                        let m = Mapping { system: target.clone(), code: "".into(), display: None, equivalence };
                        index.forward.entry((*source).into()).or_default().entry(code.into()).or_default().push(m);
                        continue;
                    };
                    let forward = Mapping {
                        system: target.clone(),
                        code: tcode.into(),
                        display: t.get("display").and_then(Value::as_str).map(Box::from),
                        equivalence: equivalence.clone(),
                    };
                    let backward = Mapping {
                        system: source.clone(),
                        code: code.into(),
                        display: element.get("display").and_then(Value::as_str).map(Box::from),
                        equivalence,
                    };
                    index.forward.entry((*source).into()).or_default().entry(code.into()).or_default().push(forward);
                    index.backward.entry((*target).into()).or_default().entry(tcode.into()).or_default().push(backward);
                }
            }
            if let Some(u) = group.get("unmapped") {
                index.unmapped.push(Unmapped {
                    source: source.to_string(),
                    target: target.clone(),
                    mode: text(u, "mode").unwrap_or_default(),
                    code: text(u, "code"),
                    display: text(u, "display"),
                });
            }
        }
        index
    }

    fn matches(&self, system: &str, code: &str, reverse: bool) -> Vec<Mapping> {
        let side = if reverse { &self.backward } else { &self.forward };
        let found: Vec<Mapping> = side.get(system).and_then(|codes| codes.get(code)).cloned().unwrap_or_default();
        if !found.is_empty() || reverse {
            return found;
        }
        self.unmapped
            .iter()
            .filter(|u| u.source == system)
            .filter_map(|u| match u.mode.as_str() {
                // The code itself stands in the target system.
                "provided" => Some(Mapping {
                    system: u.target.clone(),
                    code: code.into(),
                    display: None,
                    equivalence: "equal".into(),
                }),
                "fixed" => Some(Mapping {
                    system: u.target.clone(),
                    code: u.code.as_deref()?.into(),
                    display: u.display.as_deref().map(Box::from),
                    equivalence: "inexact".into(),
                }),
                _ => None,
            })
            .collect()
    }
}

impl Terminology {
    /// `ConceptMap/$translate`: `result` (true when some match is neither `unmatched` nor
    /// `disjoint`), a `message` when nothing matched, and one `match` per target with
    /// `equivalence`, `concept` (Coding) and `source` (the map's url).
    pub fn translate(&self, params: &TranslateParams<'_>) -> Result<Value> {
        if params.system.is_empty() || params.code.is_empty() {
            return Err(TerminologyError::Invalid("$translate needs a system and a code".into()));
        }
        let maps: Vec<Arc<ConceptMapIndex>> = if let Some(inline) = params.concept_map {
            vec![Arc::new(ConceptMapIndex::from_resource(inline))]
        } else if let Some(url) = params.url {
            let map = self
                .resource(ResourceKind::ConceptMap, url, None)
                .ok_or_else(|| TerminologyError::not_found(ResourceKind::ConceptMap, url))?;
            vec![self.concept_map_index(&map)]
        } else {
            self.all(ResourceKind::ConceptMap)
                .iter()
                .map(|m| self.concept_map_index(m))
                .filter(|m| {
                    let (from, to) = if params.reverse {
                        (&m.target_scope, &m.source_scope)
                    } else {
                        (&m.source_scope, &m.target_scope)
                    };
                    scope_fits(params.source, from) && scope_fits(params.target, to)
                })
                .collect()
        };
        let mut out = Parameters::default();
        let mut matches = Vec::new();
        let mut result = false;
        for map in &maps {
            for m in map.matches(params.system, params.code, params.reverse) {
                if params.target_system.is_some_and(|t| t != &*m.system) {
                    continue;
                }
                result |= !matches!(&*m.equivalence, "unmatched" | "disjoint");
                let mut parts = vec![single("equivalence", "valueCode", &*m.equivalence)];
                if !m.code.is_empty() {
                    let mut coding = json!({"system": &*m.system, "code": &*m.code});
                    if let Some(d) = &m.display {
                        coding["display"] = d.as_ref().into();
                    }
                    parts.push(single("concept", "valueCoding", coding));
                }
                if !map.url.is_empty() {
                    parts.push(single("source", "valueUri", map.url.as_str()));
                }
                matches.push(parts);
            }
        }
        out.value("result", "valueBoolean", result);
        if matches.is_empty() {
            let message =
                format!("No mapping found for {}#{} in {} concept map(s)", params.system, params.code, maps.len());
            out.value("message", "valueString", message);
        }
        for parts in matches {
            out.parts("match", parts);
        }
        Ok(out.build())
    }
}

/// A requested value-set scope fits a map scope when not asked for, or equal (ignoring a
/// `|version` on either side).
fn scope_fits(asked: Option<&str>, scope: &Option<String>) -> bool {
    let strip = |s: &str| s.split('|').next().unwrap_or("").to_owned();
    match (asked, scope) {
        (None, _) => true,
        (Some(a), Some(s)) => strip(a) == strip(s),
        (Some(_), None) => false,
    }
}
