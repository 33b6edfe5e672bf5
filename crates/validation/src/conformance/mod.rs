//! Conformance resources checked as such, and two content rules that hold on every
//! resource. The core StructureDefinitions already bring each resource's invariants
//! (spd-*, opd-*, cpb-*, sdf-*, mea-*, mrp-*) and the structure check applies the required
//! bindings (resource types, FHIR type names, search parameter types, interaction codes):
//! the modules here add only what those cannot express, each rule in the words of the R4
//! page it comes from and with the HL7 validator's severity.
//!
//! - `search_parameter.rs`: SearchParameter expressions, composites, `derivedFrom`;
//! - `operation_definition.rs`: OperationDefinition parameters and profiles;
//! - `capability_statement.rs`: what a CapabilityStatement points to in the loaded packages;
//! - `structure_definition.rs`: StructureDefinition types, paths, constraint expressions and
//!   the snapshot its differential generates;
//! - `measure.rs`: Measure and MeasureReport groups, populations and scoring;
//! - `narrative.rs`: internal links of every narrative;
//! - `markdown.rs`: embedded HTML in every `markdown` value.

mod capability_statement;
mod markdown;
mod measure;
mod narrative;
mod operation_definition;
mod search_parameter;
mod structure_definition;

use std::sync::Arc;

use serde_json::Value;
use tsunagu_format::{IssueType, Severity};
use tsunagu_package::ConformanceKind;

use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    /// The checks of a conformance resource's kind; `loc` is where the resource sits
    /// (`SearchParameter`, `Bundle.entry[2].resource`). Other resources have none.
    pub(crate) fn check_conformance(&mut self, res: &'a Value, rt: &str, loc: &str) {
        self.check_canonical_url(res, loc);
        match rt {
            "SearchParameter" => self.check_search_parameter(res, loc),
            "OperationDefinition" => self.check_operation_definition(res, loc),
            "CapabilityStatement" => self.check_capability_statement(res, loc),
            "StructureDefinition" => self.check_structure_definition(res, loc),
            "Measure" => self.check_measure(res, loc),
            "MeasureReport" => self.check_measure_report(res, loc),
            _ => {}
        }
    }

    fn error(&mut self, code: IssueType, loc: String, en: String, ja: String) {
        self.push(Severity::Error, code, loc, en, ja);
    }

    fn warning(&mut self, code: IssueType, loc: String, en: String, ja: String) {
        self.push(Severity::Warning, code, loc, en, ja);
    }

    /// The loaded resource a canonical names, looked up first as `kind`, then as any other
    /// kind (so a canonical of the wrong kind can be told from one that is not loaded).
    fn canonical(&self, kind: ConformanceKind, url: &str) -> Found<'_> {
        let packages = &self.v.packages;
        if let Some(r) = packages.resolve(kind, url) {
            return Found::Kind(r);
        }
        match ConformanceKind::ALL.into_iter().find(|k| *k != kind && packages.resolve(*k, url).is_some()) {
            Some(other) => Found::Other(other),
            None => Found::Missing,
        }
    }

    /// Reports a canonical that is loaded as another kind (an error) or not loaded at all
    /// (a warning: the packages may simply not carry it). Returns the resource when it is
    /// the right kind.
    fn expect_canonical(&mut self, kind: ConformanceKind, url: &str, loc: String) -> Option<Arc<Value>> {
        let what = kind.as_str();
        match self.canonical(kind, url) {
            Found::Kind(r) => Some(r.clone()),
            Found::Other(other) => {
                let other = other.as_str();
                self.error(
                    IssueType::Invalid,
                    loc,
                    format!("'{url}' is a {other} in the loaded packages, not a {what}"),
                    format!("'{url}' は読み込まれたパッケージでは {other} であり、{what} ではありません"),
                );
                None
            }
            Found::Missing => {
                self.warning(
                    IssueType::Invalid,
                    loc,
                    format!("{what} '{url}' is not in the loaded packages, so it was not checked"),
                    format!("{what} '{url}' が読み込まれたパッケージにないため、検証していません"),
                );
                None
            }
        }
    }
}

/// What a canonical resolves to in the loaded packages.
enum Found<'p> {
    Kind(&'p Arc<Value>),
    Other(ConformanceKind),
    Missing,
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The items of an array property with their index (nothing when absent).
fn items<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().enumerate()
}

/// A canonical without its `|version`.
fn unversioned(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// The R4 resources with a canonical `url` that identifies them wherever they are copied
/// (the "canonical resources" of resource.html §canonical).
pub(crate) fn is_canonical_resource(rt: &str) -> bool {
    matches!(
        rt,
        "ActivityDefinition"
            | "CapabilityStatement"
            | "ChargeItemDefinition"
            | "CodeSystem"
            | "CompartmentDefinition"
            | "ConceptMap"
            | "EffectEvidenceSynthesis"
            | "EventDefinition"
            | "Evidence"
            | "EvidenceVariable"
            | "ExampleScenario"
            | "GraphDefinition"
            | "ImplementationGuide"
            | "Library"
            | "Measure"
            | "MessageDefinition"
            | "NamingSystem"
            | "OperationDefinition"
            | "PlanDefinition"
            | "Questionnaire"
            | "ResearchDefinition"
            | "ResearchElementDefinition"
            | "RiskEvidenceSynthesis"
            | "SearchParameter"
            | "StructureDefinition"
            | "StructureMap"
            | "TerminologyCapabilities"
            | "TestScript"
            | "ValueSet"
    )
}
