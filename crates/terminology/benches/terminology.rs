//! Terminology throughput on a synthetic 200,000-concept code system (the size of a large
//! master): `cargo bench -p tsunagu-terminology`. Prints lookups/s, validate-code/s,
//! filtered expansion latency (p50/p95) and membership checks/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tsunagu_terminology::{ExpandParams, Terminology, ValueSetSource};

const SIZE: usize = 200_000;
const URL: &str = "urn:bench:large";
const NAMES: [&str; 6] = ["インフルエンザ", "高血圧症", "糖尿病", "気管支喘息", "胃潰瘍", "ﾍﾝｽﾞﾂｳ"];

fn large_code_system() -> Value {
    let mut n = 0usize;
    let groups: Vec<Value> = (0..1000)
        .map(|g| {
            let leaves: Vec<Value> = (0..SIZE / 1000 - 1)
                .map(|_| {
                    n += 1;
                    let name = NAMES[n % NAMES.len()];
                    json!({"code": format!("C{n:06}"), "display": format!("{name}{n}"),
                        "designation": [{"language": "ja-Kana", "value": format!("ｺｰﾄﾞ{n}")}]})
                })
                .collect();
            json!({"code": format!("G{g:03}"), "display": format!("群{g}"), "concept": leaves})
        })
        .collect();
    json!({"resourceType": "CodeSystem", "url": URL, "content": "complete", "concept": groups})
}

/// Runs `f` for about two seconds; returns calls per second.
fn rate(mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    let mut i = 0;
    while i % 64 != 0 || start.elapsed() < Duration::from_secs(2) {
        f(i);
        i += 1;
    }
    i as f64 / start.elapsed().as_secs_f64()
}

fn code(i: usize) -> String {
    // Spread over the whole system, leaves only.
    let n = (i * 7919) % (SIZE - 1000) + 1;
    format!("C{n:06}")
}

fn main() {
    let start = Instant::now();
    let resource = large_code_system();
    println!("synthetic code system: {SIZE} concepts built in {:.2} s", start.elapsed().as_secs_f64());
    let t = Terminology::default();
    let start = Instant::now();
    t.add(resource).expect("adds");
    println!("indexed in {:.2} s", start.elapsed().as_secs_f64());
    t.add(json!({"resourceType": "ValueSet", "url": "urn:all", "compose": {"include": [{"system": URL}]}})).unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:g5", "compose": {"include": [{"system": URL,
        "filter": [{"property": "concept", "op": "is-a", "value": "G005"}]}]}}))
        .unwrap();

    let r = rate(|i| {
        black_box(t.lookup(URL, &code(i), None, &[]).unwrap());
    });
    println!("lookup: {r:.0}/s ({:.2} µs each)", 1e6 / r);

    let r = rate(|i| {
        black_box(t.validate_code_in_system(URL, &code(i), None, Some("インフルエンザ1")).unwrap());
    });
    println!("validate-code (with display check): {r:.0}/s ({:.2} µs each)", 1e6 / r);

    // The first expansion builds and caches the full list and the folded search text.
    let first = Instant::now();
    let params = ExpandParams { filter: Some("いんふる"), count: Some(20), ..Default::default() };
    let vs = t.expand(ValueSetSource::Canonical("urn:all"), &params).unwrap();
    println!(
        "first expand with filter (builds the cached expansion and folded text): {:.0} ms, total {}",
        first.elapsed().as_secs_f64() * 1e3,
        vs["expansion"]["total"]
    );
    let filters = ["いんふる", "ｺｳｹﾂｱﾂ", "トウニョウ", "喘息 123", "ずつう", "コード1999", "胃潰瘍 ｺｰﾄﾞ4"];
    let mut times = Vec::new();
    for round in 0..30 {
        for f in filters {
            let params = ExpandParams { filter: Some(f), count: Some(20), ..Default::default() };
            let s = Instant::now();
            black_box(t.expand(ValueSetSource::Canonical("urn:all"), &params).unwrap());
            if round > 0 {
                times.push(s.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "expand {SIZE} concepts with a Japanese filter, count 20: p50 {:.1} ms, p95 {:.1} ms ({} runs)",
        pct(0.5),
        pct(0.95),
        times.len()
    );

    let r = rate(|i| {
        let vs = if i % 2 == 0 { "urn:all" } else { "urn:g5" };
        black_box(t.membership(vs, Some(URL), &code(i)));
    });
    println!("membership: {r:.0}/s ({:.2} µs each)", 1e6 / r);
}
