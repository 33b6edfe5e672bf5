//! Mutation testing of the validator: single defects planted in valid resources (the valid
//! JP-CLINS examples against their declared profiles, every 25th R4 example against its
//! base definition) must each be rejected with at least one error. The defects are chosen
//! from the snapshots by `support::mutate`.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::mutate::{mutations, Kind};
use tsunagu_validation::{ConformanceKind, Severity, Validator};

fn has_error(v: &Validator, r: &Value, profiles: &[&str]) -> bool {
    v.validate(r, profiles).iter().any(|i| i.severity == Severity::Error)
}

/// (generated, rejected) per kind; the mutations that passed, described.
struct Tally {
    counts: BTreeMap<Kind, (usize, usize)>,
    passed: Vec<String>,
}

impl Tally {
    fn run(&mut self, v: &Validator, name: &str, resource: &Value, profile: &str, explicit: &[&str]) {
        let canonical = profile.split('|').next().unwrap_or(profile);
        let Some(sd) = v.packages().resolve(ConformanceKind::StructureDefinition, canonical) else { return };
        // Only resources that are valid to begin with tell anything.
        if has_error(v, resource, explicit) {
            return;
        }
        for m in mutations(resource, sd, v.packages()) {
            let entry = self.counts.entry(m.kind).or_default();
            entry.0 += 1;
            if has_error(v, &m.resource, explicit) {
                entry.1 += 1;
            } else {
                self.passed.push(format!("{name}: {:?}: {}", m.kind, m.what));
            }
        }
    }
}

#[test]
fn every_mutation_is_rejected() {
    let Some(jp) = support::validator() else { return };
    let Some(clins) = support::clins_examples() else { return };
    let Some(core) = support::core_validator() else { return };
    let Some(r4) = support::tgz_json("fhir/hl7.fhir.r4.examples-4.0.1.tgz", "package/") else { return };
    let mut tally = Tally { counts: BTreeMap::new(), passed: Vec::new() };
    for (name, r) in clins.iter().filter(|(n, _)| !n.contains("ErrorExample")) {
        let Some(profile) = r.pointer("/meta/profile/0").and_then(Value::as_str) else { continue };
        tally.run(jp, name, r, profile, &[profile]);
    }
    let clins_counts = tally.counts.values().map(|c| c.0).sum::<usize>();
    for (name, r) in r4.iter().step_by(25) {
        let rt = r["resourceType"].as_str().unwrap_or("");
        let base = format!("http://hl7.org/fhir/StructureDefinition/{rt}");
        tally.run(core, name, r, &base, &[&base]);
    }
    let total: usize = tally.counts.values().map(|c| c.0).sum();
    println!("mutations: {total} ({clins_counts} from JP-CLINS examples)");
    for (kind, (made, rejected)) in &tally.counts {
        println!("  {kind:?}: {rejected}/{made} rejected");
    }
    for p in &tally.passed {
        println!("PASSED: {p}");
    }
    // Every kind must actually be exercised, or the test proves nothing about it.
    for kind in [
        Kind::RequiredRemoved,
        Kind::CardinalityBroken,
        Kind::WrongRequiredCode,
        Kind::BadPrimitive,
        Kind::RequiredSliceRemoved,
        Kind::SliceValueChanged,
    ] {
        assert!(tally.counts.get(&kind).is_some_and(|c| c.0 > 0), "no {kind:?} mutation generated");
    }
    assert!(tally.passed.is_empty(), "{} mutation(s) accepted", tally.passed.len());
}
