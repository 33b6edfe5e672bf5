//! Validation throughput: `cargo bench -p tsunagu-validation`.
//!
//! - JP-CLINS examples (a lab result, a prescription, the referral document Bundle) against
//!   the profiles they declare, with JP Core, JP-CLINS and eCheckupReport loaded;
//! - one Synthea patient (the first in `data/synthea-r4-dev.tar.zst`), each entry resource
//!   against the base StructureDefinition of its type, counted in resources per second.
//!
//! Reads TSUNAGU_SHARED (default `../shared` beside the workspace); prints SKIP when absent,
//! and fails under `CI=true`.
//! One thread: the figures are per core.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tsunagu_validation::{PackageSet, Severity, Validator};

const PACKAGES: &[&str] = &[
    "fhir/hl7.fhir.r4.core-4.0.1.tgz",
    "jp/jp-core.r4-1.1.2-url.tgz",
    "jp/jp-clins.r4-1.5.2-snap.tgz",
    "jp/jp-eCheckupReport.r4.tgz",
];

const EXAMPLES: &[&str] = &[
    "Observation-Example-JP-Obs-LabResult-eCS-eGFR.json",
    "MedicationRequest-Example-JP-MedReq-PO-SID-28days.json",
    "Bundle-Bundle-CLINS-Referral-Example-01.json",
];

fn main() {
    let Some(packages) = PACKAGES.iter().map(|p| tsunagu_reference::find(p)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let Some(examples) = EXAMPLES
        .iter()
        .map(|name| tsunagu_reference::find(&format!("jp/clins-examples/{name}")))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let start = Instant::now();
    let mut set = PackageSet::new();
    for path in &packages {
        set.load_tgz(path).expect("package loads");
    }
    println!("packages loaded in {:.2} s", start.elapsed().as_secs_f64());
    let validator = Validator::new(set);
    for (name, path) in EXAMPLES.iter().zip(&examples) {
        let text = std::fs::read_to_string(path).expect("example readable");
        let resource: Value = serde_json::from_str(&text).expect("example is JSON");
        let resources = count_resources(&resource);
        let (issues, first, per_second) = measure(|| validator.validate(&resource, &[]));
        println!(
            "{name} ({} bytes, {resources} resources, {issues} issues): first call {:.1} ms, then {:.0} validations/s = {:.0} resources/s",
            text.len(),
            first * 1e3,
            per_second,
            per_second * resources as f64,
        );
    }
    if let Some(archive) = tsunagu_reference::find("data/synthea-r4-dev.tar.zst") {
        synthea(&archive, &validator);
    }
}

/// Calls `f` once (compiling profiles), then repeatedly for two seconds: (issues of the
/// first call, seconds of the first call, calls per second after it).
fn measure(mut f: impl FnMut() -> Vec<tsunagu_validation::Issue>) -> (usize, f64, f64) {
    let first = Instant::now();
    let issues = f().len();
    let first = first.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut rounds = 0u32;
    while rounds == 0 || start.elapsed() < Duration::from_secs(2) {
        std::hint::black_box(f());
        rounds += 1;
    }
    (issues, first, rounds as f64 / start.elapsed().as_secs_f64())
}

/// The resource itself, its contained resources and Bundle entries, recursively.
fn count_resources(v: &Value) -> usize {
    let contained = v.get("contained").and_then(Value::as_array).map_or(0, Vec::len);
    let entries: usize = v
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .map(count_resources)
        .sum();
    1 + contained + entries
}

fn synthea(archive: &Path, validator: &Validator) {
    let bundle = first_synthea_bundle(archive)
        .unwrap_or_else(|| panic!("{}: not readable, or no JSON bundle in it", archive.display()));
    let resources: Vec<(String, &Value)> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .map(|r| (format!("http://hl7.org/fhir/StructureDefinition/{}", r["resourceType"].as_str().unwrap_or("")), r))
        .collect();
    let validate_all = || {
        let mut issues = Vec::new();
        for (base, r) in &resources {
            issues.extend(validator.validate(r, &[base.as_str()]));
        }
        issues
    };
    let errors = validate_all().iter().filter(|i| i.severity == Severity::Error).count();
    let (issues, first, per_second) = measure(validate_all);
    println!(
        "Synthea patient ({} resources, {issues} issues, {errors} errors): first pass {:.0} ms, then {:.0} resources/s",
        resources.len(),
        first * 1e3,
        per_second * resources.len() as f64,
    );
}

fn first_synthea_bundle(archive: &Path) -> Option<Value> {
    let file = std::fs::File::open(archive).ok()?;
    let mut tar = tar::Archive::new(zstd::Decoder::new(file).ok()?);
    for entry in tar.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.extension().is_some_and(|e| e == "json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return serde_json::from_str(&text).ok();
        }
    }
    None
}
