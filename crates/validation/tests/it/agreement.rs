//! The validator's verdict (errors or none) on cases built from the wording of the R4
//! specification, each naming the rule it comes from (`tests/agreement/*.json`: one file
//! per area, `expect` is `error` or `valid`). Validated against the core package alone, as
//! the HL7 validator validates an R4 resource by default. Prints the agreement figure;
//! a case that disagrees fails the test unless it carries `known` (why it still disagrees).

use serde_json::Value;
use tsunagu_validation::{PackageSet, Severity, Validator};

#[test]
fn verdicts_follow_the_specification() {
    let Some(core) = tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz") else { return };
    let mut set = PackageSet::new();
    set.load_tgz(&core).expect("core package loads");
    let v = Validator::new(set);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agreement");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let (mut total, mut agree, mut unexpected) = (0, 0, Vec::new());
    for file in files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let area = file.file_stem().unwrap().to_string_lossy().into_owned();
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for case in cases {
            let name = format!("{area}/{}", case["name"].as_str().unwrap());
            let profiles: Vec<&str> = case["profile"].as_str().into_iter().collect();
            let issues = v.validate(&case["resource"], &profiles);
            let errors: Vec<String> = issues
                .iter()
                .filter(|i| i.severity == Severity::Error)
                .map(|i| format!("{}: {}", i.location, i.message_en))
                .collect();
            let got = if errors.is_empty() { "valid" } else { "error" };
            total += 1;
            if got == case["expect"] {
                agree += 1;
                assert!(case.get("known").is_none(), "{name} agrees now: drop its `known`");
            } else if case.get("known").is_none() {
                unexpected
                    .push(format!("{name} ({}): expected {}, got {got} {errors:?}", case["rule"], case["expect"]));
            }
        }
    }
    println!(
        "agreement with the specification's verdicts: {agree}/{total} ({:.1}%)",
        100.0 * agree as f64 / total as f64
    );
    assert!(total >= 100, "the corpus is complete");
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
