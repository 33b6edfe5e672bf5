//! `tsunagu bench export`: Bulk Data export throughput and memory. A throwaway data
//! directory is filled with synthetic patients (a Patient with name, identifier, address
//! and telephone, and 9 Observations referring to it) by transaction Bundles of 1,000
//! resources, up to each size asked for; at each size the whole store is exported once
//! plain and once with `_deidentify=default`, through the same job machinery the server
//! uses (`Exports`), and resources/s and the peak RSS during the export are printed. The
//! peak is `VmHWM`, reset before each export by writing 5 to `/proc/self/clear_refs`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tsunagu_interaction::{ExportConfig, ExportLevel, ExportStatus, Exports, RequestContext, SearchParams};

const BASE: &str = "http://localhost/fhir";

pub fn run(sizes: &[usize]) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tsunagu-bench-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg =
        crate::config::Config { sync: tsunagu_store::SyncMode::Normal, ..crate::config::Config::defaults(dir.clone()) };
    let result = (|| {
        let fhir = crate::open(&cfg, false)?;
        let exports = Exports::open(fhir.clone(), ExportConfig { max_running_jobs: 1, ..cfg.export.clone() })
            .map_err(|e| e.to_string())?;
        let ctx = RequestContext::new(BASE);
        let mut loaded = 0usize;
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable();
        for size in sizes {
            let t = Instant::now();
            let before = loaded;
            while loaded < size {
                let n = (size - loaded).min(1000);
                fhir.bundle(batch(loaded, n), &ctx).map_err(|e| e.to_string())?;
                loaded += n;
            }
            if loaded > before {
                let s = t.elapsed().as_secs_f64();
                println!("loaded {} resources in {s:.1} s ({:.0}/s)", loaded - before, (loaded - before) as f64 / s);
            }
            for deid in [false, true] {
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                let params =
                    SearchParams { pairs: if deid { vec![("_deidentify".into(), "default".into())] } else { vec![] } };
                let t = Instant::now();
                let job = exports
                    .kickoff(ExportLevel::System, &params, &format!("{BASE}/$export"), &ctx)
                    .map_err(|e| e.to_string())?;
                let manifest = loop {
                    match exports.status(&job, &ctx).map_err(|e| e.to_string())? {
                        ExportStatus::InProgress { .. } => std::thread::sleep(std::time::Duration::from_millis(20)),
                        ExportStatus::Complete(m) => break m,
                    }
                };
                let secs = t.elapsed().as_secs_f64();
                let count: u64 =
                    manifest["output"].as_array().into_iter().flatten().filter_map(|o| o["count"].as_u64()).sum();
                let files = manifest["output"].as_array().map_or(0, Vec::len);
                let bytes: u64 = std::fs::read_dir(cfg.export.dir.join(&job))
                    .map_err(|e| e.to_string())?
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                println!(
                    "export {:>5} of {size:>8}: {count} resources in {secs:.2} s = {:.0} resources/s, {files} files, {} MiB, peak RSS {} MiB",
                    if deid { "deid" } else { "plain" },
                    count as f64 / secs,
                    bytes / (1024 * 1024),
                    crate::import::peak_rss_mib()
                );
                if count as usize != loaded {
                    return Err(format!("exported {count} of {loaded} resources"));
                }
                exports.cancel(&job, &ctx).map_err(|e| e.to_string())?;
            }
        }
        drop(exports);
        drop(Arc::try_unwrap(fhir).ok());
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A transaction Bundle of `n` resources starting at resource number `from`: every tenth
/// a Patient, the others its Observations.
fn batch(from: usize, n: usize) -> Value {
    let entries: Vec<Value> = (from..from + n)
        .map(|i| {
            let p = i / 10;
            let r = if i % 10 == 0 {
                json!({"resourceType": "Patient", "id": format!("p{p}"),
                    "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11312345670", "value": format!("{p:08}")}],
                    "name": [{"family": "山田", "given": [format!("太郎{p}")]}],
                    "telecom": [{"system": "phone", "value": format!("03-{:04}-{:04}", p % 10_000, p / 10_000)}],
                    "gender": if p % 2 == 0 { "male" } else { "female" },
                    "birthDate": format!("{}-{:02}-{:02}", 1930 + p % 80, 1 + p % 12, 1 + p % 28),
                    "address": [{"line": [format!("{}-1-1", p)], "city": "千代田区", "postalCode": format!("{:03}-{:04}", 100 + p % 900, p % 10_000)}]})
            } else {
                json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
                    "subject": {"reference": format!("Patient/p{p}")},
                    "effectiveDateTime": format!("2024-{:02}-{:02}T09:00:00+09:00", 1 + i % 12, 1 + i % 28),
                    "valueQuantity": {"value": 90 + i % 40, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}})
            };
            let url = format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            json!({"fullUrl": format!("{BASE}/{url}"), "resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}
