//! Validations per second on JP-CLINS examples: `cargo bench -p tsunagu-validation`.
//! Reads the packages and examples from TSUNAGU_SHARED (default `../shared` beside the
//! workspace); prints SKIP when they are absent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tsunagu_validation::{PackageSet, Validator};

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
    let dir = match std::env::var_os("TSUNAGU_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if !dir.is_dir() {
        println!("SKIP: shared data not found (set TSUNAGU_SHARED)");
        return;
    }
    let start = Instant::now();
    let mut set = PackageSet::new();
    for p in PACKAGES {
        set.load_tgz(&dir.join(p)).expect("package loads");
    }
    println!("packages loaded in {:.2} s", start.elapsed().as_secs_f64());
    let validator = Validator::new(set);
    for name in EXAMPLES {
        let text = std::fs::read_to_string(dir.join("jp/clins-examples").join(name)).expect("example readable");
        let resource: Value = serde_json::from_str(&text).expect("example is JSON");
        // The first call compiles the profiles; it is reported apart.
        let first = Instant::now();
        let issues = validator.validate(&resource, &[]);
        let first = first.elapsed();
        let start = Instant::now();
        let mut rounds = 0u32;
        while rounds == 0 || start.elapsed() < Duration::from_secs(2) {
            std::hint::black_box(validator.validate(std::hint::black_box(&resource), &[]));
            rounds += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name} ({} bytes, {} issues): first call {:.1} ms, then {:.0} validations/s ({:.3} ms each)",
            text.len(),
            issues.len(),
            first.as_secs_f64() * 1e3,
            rounds as f64 / secs,
            secs * 1e3 / rounds as f64
        );
    }
}
