//! Evaluations per second for typical search-parameter expressions, compiled once and
//! evaluated repeatedly over the suite's example resources. `cargo bench -p tsunagu-fhirpath`.

use serde_json::Value;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EXPRESSIONS: &[(&str, &str)] = &[
    ("patient", "Patient.name"),
    ("patient", "Patient.birthDate"),
    ("patient", "Patient.identifier"),
    ("patient", "Patient.telecom.where(system='phone')"),
    ("patient", "Patient.name.given.first()"),
    ("patient", "Patient.name.where(use='official').family"),
    ("patient", "Patient.address.city | Patient.address.state"),
    ("patient", "Patient.birthDate < @2000-01-01"),
    ("patient", "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value"),
    ("observation", "Observation.value.as(Quantity)"),
    ("observation", "Observation.value.as(Quantity) > 100 '[lb_av]'"),
    ("observation", "Observation.code.coding.where(system='http://loinc.org').code"),
];

fn main() {
    let shared = std::env::var("TSUNAGU_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("conformance/fhirpath/input-json");
    let load = |name: &str| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}-example.json"))).ok()?).ok()
    };
    let (Some(patient), Some(observation)) = (load("patient"), load("observation")) else {
        eprintln!("*** SKIP bench: inputs not found under {} (set TSUNAGU_SHARED) ***", dir.display());
        return;
    };
    let budget = Duration::from_millis(std::env::var("BENCH_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(700));
    println!("{:<100} {:>14} {:>10}", "expression", "evals/s", "ns/eval");
    let mut total_rate = 0.0;
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    for (input, src) in EXPRESSIONS.iter().filter(|(_, s)| s.contains(filter.as_str())) {
        let resource = if *input == "patient" { &patient } else { &observation };
        let rt = resource["resourceType"].as_str().unwrap();
        let expr = tsunagu_fhirpath::compile_for(rt, src).expect("compiles");
        // Warm-up (model caches, allocator).
        for _ in 0..1000 {
            black_box(expr.evaluate(resource).unwrap());
        }
        // Fixed work (for instruction counts under `perf stat`), when asked.
        if let Some(iters) = std::env::var("BENCH_ITERS").ok().and_then(|s| s.parse::<u64>().ok()) {
            for _ in 0..iters {
                black_box(expr.evaluate(black_box(resource)).unwrap());
            }
            println!("{src}: {iters} iterations");
            continue;
        }
        // Best of several rounds: the machine is shared, and interference only slows down.
        let mut rate: f64 = 0.0;
        for _ in 0..5 {
            let start = Instant::now();
            let mut n: u64 = 0;
            while start.elapsed() < budget / 5 {
                for _ in 0..1000 {
                    black_box(expr.evaluate(black_box(resource)).unwrap());
                }
                n += 1000;
            }
            rate = rate.max(n as f64 / start.elapsed().as_secs_f64());
        }
        total_rate += rate;
        println!("{:<100} {:>14.0} {:>10.0}", src, rate, 1e9 / rate);
    }
    println!("mean evals/s: {:.0}", total_rate / EXPRESSIONS.len() as f64);
}
