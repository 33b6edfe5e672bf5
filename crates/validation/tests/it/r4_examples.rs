//! The 5,306 official R4 examples against the base specification alone (the core package,
//! each resource against the StructureDefinition of its type, invariants included, with
//! no profile named: the validator applies the base definitions by itself). Only
//! the examples known to be genuinely invalid may have errors; warnings are counted by kind.

use crate::support;

use std::collections::BTreeMap;

use tsunagu_validation::Severity;

#[path = "../../../format/tests/it/lists/known_invalid.rs"]
mod known_invalid;
use known_invalid::KNOWN_INVALID;

/// Official examples that break a rule the structure check cannot see (a base invariant,
/// a reference target type), each checked by hand against the core definitions.
const INVALID_BY_PROFILE_RULES: &[(&str, &str)] = &[
    ("StructureDefinition-Definition.json", "sdf-4: a logical model that is not abstract has no baseDefinition"),
    ("StructureDefinition-Event.json", "sdf-4: a logical model that is not abstract has no baseDefinition"),
    ("StructureDefinition-FiveWs.json", "sdf-4: a logical model that is not abstract has no baseDefinition"),
    ("StructureDefinition-Request.json", "sdf-4: a logical model that is not abstract has no baseDefinition"),
    (
        "Bundle-hla-1.json",
        "hla-genotyping-results-glstring declares the parts url and text; the example has a part 'uri'",
    ),
    // bundle.html: "The fullUrl SHALL NOT disagree with the id in the resource".
    ("Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", "fullUrl …/Patient/pat12 holds the Patient with id pat2"),
    ("Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json", "fullUrl …/Patient/pat12 holds the Patient with id pat2"),
    ("Bundle-lri-example.json", "fullUrls …/Observation/lri-gramstain1 … hold Observations with ids gramstain1 …"),
    ("Bundle-dataelements.json", "bdl-7: fullUrls repeated (three times each) with no meta.versionId"),
    ("DeviceMetric-example.json", "parent is Reference(Device) but points to DeviceDefinition/dc102"),
    ("DeviceUseStatement-example.json", "reasonReference does not allow Procedure"),
    (
        "MedicationRequest-medrx0301.json",
        "dispenseRequest.performer is Reference(Organization) but points to a Practitioner",
    ),
    ("Observation-clinical-gender.json", "performer does not allow Encounter"),
    // A Quantity with system http://unitsofmeasure.org carries a UCUM code (datatypes.html#Quantity).
    ("Bundle-father.json", "UCUM system with 'tbl', which is not a UCUM unit"),
    ("Claim-760151.json", "UCUM system with 'TAB', which is not a UCUM unit"),
    ("Claim-760152.json", "UCUM system with 'TAB', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0309.json", "UCUM system with 'drop', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0313.json", "UCUM system with 'mEq', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0318.json", "UCUM system with 'mcg', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0324.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0327.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0328.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationDispense-meddisp0329.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0304.json", "UCUM system with 'drop', which is not a UCUM unit"),
    ("MedicationRequest-medrx0314.json", "UCUM system with 'mcg', which is not a UCUM unit"),
    ("MedicationRequest-medrx0319.json", "UCUM system with 'ml/hr', which is not a UCUM unit"),
    ("MedicationRequest-medrx0322.json", "UCUM system with 'mEq', which is not a UCUM unit"),
    ("MedicationRequest-medrx0325.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0326.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0328.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0329.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0334.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("MedicationRequest-medrx0335.json", "UCUM system with 'ea', which is not a UCUM unit"),
    ("VisionPrescription-33124.json", "UCUM system with 'month', which is not a UCUM unit"),
    // An Identifier in the system urn:ietf:rfc:3986 has a URI value (identifier-registry).
    ("StructureDefinition-Consent.json", "an element example: urn:ietf:rfc:3986 with 'Local eCMS identifier'"),
    ("Organization-2.16.840.1.113883.19.5.json", "urn:ietf:rfc:3986 with the bare OID 2.16.840.1.113883.19.5"),
];

/// Official examples that break a rule checked on conformance resources or narratives
/// (`src/conformance/`), each checked by hand against the example: (file, reason).
const INVALID_BY_CONFORMANCE_RULES: &[(&str, &str)] = &[
    // capabilitystatement.html, searchParam.type: "It SHALL be the same as the type in the
    // search parameter definition".
    ("CapabilityStatement-base.json", "rest.searchParam '_sort' is token; its definition Resource-source is uri"),
    ("Bundle-resources.json", "holds CapabilityStatement-base ('_sort' token, Resource-source uri)"),
    (
        "CapabilityStatement-knowledge-repository.json",
        "searchParam 'version' is string; Library-version and others are token",
    ),
    ("CapabilityStatement-measure-processor.json", "searchParam 'version' is string; Measure-version is token"),
    (
        "CapabilityStatement-terminology-server.json",
        "'reference' token vs ValueSet-reference uri; ConceptMap 'source'/'target' uri vs reference",
    ),
    // measurereport.html: group is "one for each population group in the measure".
    ("MeasureReport-hiv-indicators.json", "three groups with the same code QRPH_ADX_ART1_N"),
];

#[test]
fn r4_examples_against_the_base_specification() {
    let Some(v) = support::core_validator() else { return };
    let Some(examples) = support::tgz_json("fhir/hl7.fhir.r4.examples-4.0.1.tgz", "package/") else { return };
    let show_warnings = std::env::var_os("SHOW_WARNINGS").is_some();
    // Two halves on two threads: the validator is shared.
    let half = examples.len() / 2;
    let (a, b) = examples.split_at(half);
    let run = |part: &[(String, serde_json::Value)]| {
        part.iter().map(|(name, r)| (name.clone(), v.validate(r, &[]))).collect::<Vec<_>>()
    };
    let results = std::thread::scope(|s| {
        let h = s.spawn(|| run(a));
        let mut out = run(b);
        out.extend(h.join().unwrap());
        out
    });
    let mut without_errors = 0;
    let mut unexpected = Vec::new();
    let mut known_passing = Vec::new();
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    let mut warning_total = 0;
    for (name, issues) in &results {
        let errors: Vec<_> = issues.iter().filter(|i| i.severity == Severity::Error).collect();
        let known = KNOWN_INVALID
            .iter()
            .chain(INVALID_BY_PROFILE_RULES)
            .chain(INVALID_BY_CONFORMANCE_RULES)
            .any(|(n, _)| n == name);
        if errors.is_empty() {
            without_errors += 1;
            if known {
                known_passing.push(name.clone());
            }
        } else if known {
            println!("known invalid {name}: {}", errors[0].message_en);
        } else {
            unexpected.push(name.clone());
            for e in &errors {
                println!("ERROR {name}: {} [{}] {}", e.location, e.code.as_str(), e.message_en);
            }
        }
        for w in issues.iter().filter(|i| i.severity != Severity::Error) {
            warning_total += 1;
            *warnings.entry(support::message_kind(&w.message_en)).or_default() += 1;
            if show_warnings {
                println!("warn {name}: {} {}", w.location, w.message_en);
            }
        }
    }
    println!("R4 examples: {without_errors}/{} without errors, {warning_total} warnings", results.len());
    let mut by_count: Vec<_> = warnings.into_iter().collect();
    by_count.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (kind, n) in &by_count {
        println!("  {n:6}  {kind}");
    }
    assert_eq!(results.len(), 5306);
    assert!(unexpected.is_empty(), "{} example(s) with unexpected errors: {unexpected:?}", unexpected.len());
    assert!(known_passing.is_empty(), "known-invalid examples accepted: {known_passing:?}");
}
