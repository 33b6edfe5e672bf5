//! Crash test for JP-CLINS replacements: several submissions are replaced over and over
//! (each generation changes every item), the server is killed with SIGKILL at a random
//! moment, restarted, and each submission must be wholly one generation — the stored
//! Bundle and every one of its items — and no older than the last acknowledged one.
//!
//! `TSUNAGU_CLINS_CRASH_ITERATIONS` (default 6) and `TSUNAGU_CRASH_SEED` tune a run.

use crate::common;

use common::{free_port, http, start_server_args, wait_ready};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SUBMISSIONS: usize = 3;
const PACKAGES: [&str; 3] =
    ["fhir/hl7.fhir.r4.core-4.0.1.tgz", "jp/jp-core.r4-1.1.2-url.tgz", "jp/jp-clins.r4-1.5.2-snap.tgz"];

fn identifier(k: usize) -> String {
    format!("1318814790^2024^crash-{k}")
}

/// Submission `k` at generation `g`: every quantity result is `g`.
fn generation(template: &Value, k: usize, g: u64) -> Value {
    let mut b = template.clone();
    b["identifier"]["value"] = json!(identifier(k));
    for e in b["entry"].as_array_mut().unwrap() {
        if e["resource"]["valueQuantity"].is_object() {
            e["resource"]["valueQuantity"]["value"] = json!(g);
        }
    }
    b
}

fn value_of(r: &Value) -> u64 {
    r["valueQuantity"]["value"].as_u64().unwrap_or_else(|| panic!("no generation in {r}"))
}

fn get(addr: &str, path: &str) -> Value {
    let (status, _, body) = http(addr, "GET", path, None).unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Each submission is one generation throughout; returns them.
fn check(addr: &str, observations: usize) -> Vec<u64> {
    (0..SUBMISSIONS)
        .map(|k| {
            let found = get(addr, &format!("/Bundle?identifier={}", identifier(k).replace('^', "%5E")));
            let entries = found["entry"].as_array().expect("the submission is held");
            assert_eq!(entries.len(), 1);
            let bundle = &entries[0]["resource"];
            let id = bundle["id"].as_str().unwrap();
            let generations: Vec<u64> = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["resource"]["valueQuantity"].is_object())
                .map(|e| value_of(&e["resource"]))
                .collect();
            let g = generations[0];
            assert!(generations.iter().all(|x| *x == g), "the Bundle mixes generations: {generations:?}");
            let items = get(addr, &format!("/Observation?_source=urn:tsunagu:submission:{id}&_count=100"));
            let values: Vec<u64> = items["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["resource"]["valueQuantity"].is_object())
                .map(|e| value_of(&e["resource"]))
                .collect();
            assert_eq!(values.len(), observations, "submission {k}: items {values:?}");
            assert!(values.iter().all(|v| *v == g), "submission {k} at generation {g} has items {values:?}");
            g
        })
        .collect()
}

#[test]
fn sigkill_during_replacements_leaves_each_submission_whole() {
    let Some(template_path) =
        tsunagu_reference::find("jp/clins-examples/Bundle-Bundle-CLINS-Observations-Example-01.json")
    else {
        return;
    };
    let mut packages = Vec::new();
    for p in PACKAGES {
        let Some(path) = tsunagu_reference::find(p) else { return };
        packages.push(path);
    }
    let template: Value = serde_json::from_str(&std::fs::read_to_string(template_path).unwrap()).unwrap();
    let observations =
        template["entry"].as_array().unwrap().iter().filter(|e| e["resource"]["valueQuantity"].is_object()).count();
    let iterations: usize =
        std::env::var("TSUNAGU_CLINS_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("TSUNAGU_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("JP-CLINS crash test: {iterations} iterations, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("tsunagu.toml");
    let list: Vec<String> = packages.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    std::fs::write(&config, format!("packages = [{}]\n", list.join(", "))).unwrap();
    let global = [std::ffi::OsStr::new("--config"), config.as_os_str()];
    // The last generation acknowledged per submission.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..SUBMISSIONS).map(|_| AtomicU64::new(0)).collect());
    let mut rng = seed;
    let mut replacements = 0u64;
    for it in 0..iterations {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut server = start_server_args(&data, &addr, &global);
        wait_ready(&addr, &mut server);
        if it == 0 {
            for k in 0..SUBMISSIONS {
                let (status, _, body) =
                    http(&addr, "POST", "/Bundle", Some(&generation(&template, k, 1).to_string())).unwrap();
                assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
                acked[k].store(1, Ordering::SeqCst);
            }
        } else {
            let held = check(&addr, observations);
            for (k, g) in held.iter().enumerate() {
                assert!(*g >= acked[k].load(Ordering::SeqCst), "submission {k} lost acknowledged generation");
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..SUBMISSIONS)
            .map(|k| {
                let (addr, template, stop, acked) = (addr.clone(), template.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    let mut g = (it as u64 + 1) * 100_000;
                    while !stop.load(Ordering::SeqCst) {
                        g += 1;
                        match http(&addr, "POST", "/Bundle", Some(&generation(&template, k, g).to_string())) {
                            Ok((200 | 201, _, _)) => {
                                acked[k].store(g, Ordering::SeqCst);
                                n += 1;
                            }
                            Ok((status, _, body)) => panic!("{status}: {}", String::from_utf8_lossy(&body)),
                            Err(_) => break,
                        }
                    }
                    n
                })
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 1200));
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        replacements += writers.into_iter().map(|w| w.join().unwrap()).sum::<u64>();
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server_args(&data, &addr, &global);
    wait_ready(&addr, &mut server);
    let held = check(&addr, observations);
    for (k, g) in held.iter().enumerate() {
        assert!(*g >= acked[k].load(Ordering::SeqCst), "submission {k} lost acknowledged generation");
    }
    println!("crash (JP-CLINS replacements): {iterations} kills, {replacements} acknowledged replacements, every submission whole");
}
