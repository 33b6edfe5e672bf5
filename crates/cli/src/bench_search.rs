//! `tsunagu bench search`: latency of a fixed query mix on the loaded data, p50 and p95
//! per query kind, each run with a value sampled from the data itself.

use serde_json::Value;
use std::time::{Duration, Instant};
use tsunagu_interaction::{Interactions, RequestContext, SearchParams};

fn search(fhir: &Interactions, ctx: &RequestContext, ty: Option<&str>, q: &str) -> Result<(Duration, Value), String> {
    let t = Instant::now();
    let b = fhir.search(ty, &SearchParams::parse(q), ctx).map_err(|e| format!("{q}: {e}"))?;
    Ok((t.elapsed(), b))
}

fn resources(b: &Value) -> Vec<&Value> {
    b["entry"].as_array().into_iter().flatten().filter_map(|e| e.get("resource")).collect()
}

pub fn run(cfg: &crate::config::Config, runs: usize, shapes: bool, slowest: bool) -> Result<(), String> {
    let fhir = crate::open(cfg, false)?;
    let ctx = RequestContext::new("http://localhost:8080");
    // Sample values from the data, in an order of the data itself: ids and the order of
    // writing differ between two imports of the same data (into SQLite and PostgreSQL), and
    // two stores are compared on the same values.
    let (_, pats) = search(&fhir, &ctx, Some("Patient"), "_sort=family,given,birthdate&_count=200")?;
    let patients: Vec<(String, String)> = resources(&pats)
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?.to_string(), p["name"][0]["family"].as_str()?.to_string())))
        .collect();
    // The first patients' Observations, each patient's by date and code.
    let mut obs: Vec<Value> = Vec::new();
    for (id, _) in &patients {
        let left = 500 - obs.len();
        if left == 0 {
            break;
        }
        let q = format!("subject=Patient/{id}&_sort=date,code&_count={left}");
        let (_, b) = search(&fhir, &ctx, Some("Observation"), &q)?;
        obs.extend(resources(&b).into_iter().cloned());
    }
    let codes: Vec<String> = obs
        .iter()
        .filter_map(|o| {
            let c = &o["code"]["coding"][0];
            Some(format!("{}|{}", c["system"].as_str()?, c["code"].as_str()?))
        })
        .collect();
    let years: Vec<String> =
        obs.iter().filter_map(|o| o["effectiveDateTime"].as_str().map(|d| d[..7].to_string())).collect();
    if patients.is_empty() || codes.is_empty() || years.is_empty() {
        return Err("no Patients or Observations to sample: load data first (tsunagu import …)".into());
    }
    // From the store: a count through search may be refused past the search ceiling.
    let total = fhir.store().count_current_after(0).map_err(|e| e.to_string())?;
    println!("data: {total} resources in {}", cfg.data.display());
    type Make = Box<dyn Fn(usize) -> (Option<&'static str>, String)>;
    let p = patients.clone();
    let p2 = patients.clone();
    let p3 = patients.clone();
    let p4 = patients.clone();
    let c = codes.clone();
    let c2 = codes.clone();
    let c3 = codes.clone();
    let c4 = codes.clone();
    let y = years.clone();
    let mix: Vec<(&str, Make)> = vec![
        ("token  Observation?code", Box::new(move |i| (Some("Observation"), format!("code={}", c[i % c.len()])))),
        ("string Patient?name", Box::new(move |i| (Some("Patient"), format!("name={}", &p[i % p.len()].1)))),
        (
            "date   Observation?date=ge..&date=lt..",
            Box::new(move |i| {
                let m = &y[i % y.len()];
                (Some("Observation"), format!("date=ge{m}-01&date=lt{m}-08"))
            }),
        ),
        (
            "ref    Observation?subject",
            Box::new(move |i| (Some("Observation"), format!("subject=Patient/{}", p2[i % p2.len()].0))),
        ),
        (
            "chain  Observation?subject:Patient.name",
            Box::new(move |i| {
                (Some("Observation"), format!("subject:Patient.name={}&code={}", p3[i % p3.len()].1, c2[i % c2.len()]))
            }),
        ),
        (
            "_has   Patient?_has:Observation:patient:code",
            Box::new(move |i| (Some("Patient"), format!("_has:Observation:patient:code={}", c3[i % c3.len()]))),
        ),
        (
            "_include Observation?code&_include=subject",
            Box::new(move |i| (Some("Observation"), format!("code={}&_include=Observation:subject", c4[i % c4.len()]))),
        ),
        (
            "_revinclude Patient?_id&_revinclude",
            Box::new(move |i| (Some("Patient"), format!("_id={}&_revinclude=Observation:subject", p4[i % p4.len()].0))),
        ),
        (
            "_sort  Observation?code&_sort=-date",
            Box::new({
                let c = codes.clone();
                move |i| (Some("Observation"), format!("code={}&_sort=-date", c[i % c.len()]))
            }),
        ),
        ("count  Observation?_summary=count", Box::new(|_| (Some("Observation"), "_summary=count".to_string()))),
    ];
    println!("{:<44} {:>10} {:>10} {:>8}", "query (50-entry pages)", "p50", "p95", "matches");
    for (name, make) in &mix {
        let mut times = Vec::with_capacity(runs);
        let (mut matched, mut refused) = (0usize, None);
        let mut worst = (Duration::ZERO, String::new());
        for i in 0..runs {
            let (ty, q) = make(i * 7 + 3);
            let t = Instant::now();
            // A refusal past the search ceiling is a result of the benchmark, not its failure.
            match fhir.search(ty, &SearchParams::parse(&q), &ctx) {
                Ok(b) => {
                    matched += b["entry"].as_array().map_or(0, Vec::len).max(b["total"].as_u64().unwrap_or(0) as usize)
                }
                Err(e) => refused = Some(format!("{} {}", e.status(), e.issue_code())),
            }
            let took = t.elapsed();
            if took > worst.0 {
                worst = (took, q);
            }
            times.push(took);
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
        let matches = refused.unwrap_or_else(|| (matched / runs.max(1)).to_string());
        println!("{name:<44} {:>10.2?} {:>10.2?} {matches:>8}", pct(0.50), pct(0.95));
        if slowest {
            println!("    slowest {:.2?}: {}", worst.0, worst.1);
        }
    }
    let db = match &cfg.database {
        Some(d) => tsunagu_store_postgres::PostgresStore::open(&tsunagu_store_postgres::PostgresConfig::new(&d.url))
            .and_then(|s| s.database_bytes())
            .map_err(|e| e.to_string())?,
        None => std::fs::metadata(cfg.data.join("tsunagu.sqlite")).map(|m| m.len()).unwrap_or(0),
    };
    let n = total.max(1);
    println!(
        "database: {:.1} MiB, {:.0} bytes per resource (all versions and indexes)",
        db as f64 / 1048576.0,
        db as f64 / n as f64
    );
    if shapes {
        crate::bench_shapes::run(&fhir, runs);
    }
    Ok(())
}
