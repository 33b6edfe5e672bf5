//! Throughput over the official R4 examples: `cargo bench -p tsunagu-format`.
//! Reads the examples from TSUNAGU_SHARED (default `../shared` beside the workspace); prints
//! SKIP when they are absent, and fails under `CI=true`.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The examples package read out; `None` (after a SKIP line, or a panic under `CI=true`)
/// when it is absent.
fn examples() -> Option<Vec<Value>> {
    let path = tsunagu_reference::find("fhir/hl7.fhir.r4.examples-4.0.1.tgz")?;
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with("package.json") || name.contains("/.") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        out.push(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    Some(out)
}

/// Runs `f` over all items repeatedly for at least ~2 s and reports resources/s.
fn bench<T>(label: &str, items: &[T], bytes: usize, mut f: impl FnMut(&T)) {
    let start = Instant::now();
    let mut rounds = 0u32;
    while rounds == 0 || start.elapsed() < Duration::from_secs(2) {
        items.iter().for_each(&mut f);
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = items.len() as f64 * rounds as f64;
    println!(
        "{label:<18} {:>9.0} resources/s  {:>7.1} MB/s  ({} rounds of {} resources, {:.2} s)",
        n / secs,
        bytes as f64 * rounds as f64 / secs / 1e6,
        rounds,
        items.len(),
        secs
    );
}

fn main() {
    let Some(values) = examples() else { return };
    let json_bytes: usize = values.iter().map(|v| v.to_string().len()).sum();
    let xmls: Vec<String> = values.iter().map(|v| tsunagu_format::json_to_xml(v, false).unwrap()).collect();
    let xml_bytes: usize = xmls.iter().map(String::len).sum();
    println!("{} examples, {:.1} MB JSON, {:.1} MB XML", values.len(), json_bytes as f64 / 1e6, xml_bytes as f64 / 1e6);
    let texts: Vec<String> = values.iter().map(Value::to_string).collect();
    for _ in 0..2 {
        bench("JSON read strict", &texts, json_bytes, |t| {
            std::hint::black_box(tsunagu_format::json_from_slice(t.as_bytes()).unwrap());
        });
        bench("JSON read serde", &texts, json_bytes, |t| {
            std::hint::black_box(serde_json::from_slice::<Value>(t.as_bytes()).unwrap());
        });
    }
    bench("JSON→XML", &values, json_bytes, |v| {
        std::hint::black_box(tsunagu_format::json_to_xml(v, false).unwrap());
    });
    bench("JSON→XML pretty", &values, json_bytes, |v| {
        std::hint::black_box(tsunagu_format::json_to_xml(v, true).unwrap());
    });
    bench("XML→JSON", &xmls, xml_bytes, |x| {
        std::hint::black_box(tsunagu_format::xml_to_json(x).unwrap());
    });
    bench("check_structure", &values, json_bytes, |v| {
        std::hint::black_box(tsunagu_format::check_structure(v));
    });
}
