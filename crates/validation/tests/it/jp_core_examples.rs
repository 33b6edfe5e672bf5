//! The example instances shipped inside the JP Core package (URL edition, the one loaded
//! beside JP-CLINS) validate without errors against the profiles they declare.

use crate::support;

use serde_json::Value;
use tsunagu_validation::{ConformanceKind, Severity};

#[test]
fn jp_core_examples_against_declared_profiles() {
    let Some(v) = support::validator() else { return };
    let Some(files) = support::tgz_json("jp/jp-core.r4-1.1.2-url.tgz", "package/") else { return };
    // Examples are the package's files that are neither conformance resources nor the
    // guide describing the package.
    let examples: Vec<&(String, Value)> = files
        .iter()
        .filter(|(_, r)| {
            let rt = r["resourceType"].as_str().unwrap_or("");
            ConformanceKind::from_resource_type(rt).is_none() && rt != "ImplementationGuide"
        })
        .collect();
    let mut failing = Vec::new();
    let mut declaring = 0;
    let mut warnings = 0;
    for (name, r) in &examples {
        let declared = r.pointer("/meta/profile").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
        declaring += usize::from(declared);
        let issues = v.validate(r, &[]);
        warnings += issues.iter().filter(|i| i.severity != Severity::Error).count();
        let errors: Vec<_> = issues.iter().filter(|i| i.severity == Severity::Error).collect();
        for e in &errors {
            println!("ERROR {name}: {} {}", e.location, e.message_en);
        }
        if !errors.is_empty() {
            failing.push(name.clone());
        }
    }
    println!(
        "JP Core examples: {}/{} without errors ({declaring} declare a profile), {warnings} warnings",
        examples.len() - failing.len(),
        examples.len()
    );
    assert!(examples.len() >= 40, "only {} examples found", examples.len());
    assert!(failing.is_empty(), "{failing:?}");
}
