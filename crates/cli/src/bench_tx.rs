//! Transaction throughput over HTTP: starts the server on an ephemeral loopback port with a
//! throwaway data directory (the configured `sync`, `full` by default; with `--database`,
//! resources go to that PostgreSQL database, which should be a scratch one), then one client
//! POSTs transaction Bundles (the Synthea sample) one after another, as an EHR feeding a
//! regional server would. Reports resources/s and the time per Bundle.

use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Plan {
    pub input: PathBuf,
    /// Bundles to post (the archive is read again from the start if it has fewer).
    pub bundles: usize,
    /// Make Organization and Practitioner entries conditional creates on their identifier
    /// (`ifNoneExist`), so later Bundles reuse them instead of creating copies.
    pub conditional: bool,
}

pub fn run(cfg: &crate::config::Config, plan: Plan) -> Result<(), String> {
    let mut bodies = read_bundles(&plan.input)?;
    if bodies.is_empty() {
        return Err(format!("{}: no transaction Bundles", plan.input.display()));
    }
    if plan.conditional {
        bodies.iter_mut().for_each(make_conditional);
    }
    let sizes: Vec<usize> =
        bodies.iter().map(|b| b.get("entry").and_then(Value::as_array).map_or(0, Vec::len)).collect();
    let bodies: Vec<Vec<u8>> = bodies.iter().map(|b| serde_json::to_vec(b).expect("serialises")).collect();
    let dir = std::env::temp_dir().join(format!("tsunagu-bench-tx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run_cfg = crate::config::Config {
        sync: cfg.sync,
        database: cfg.database.clone(),
        ..crate::config::Config::defaults(dir.clone())
    };
    if let Some(db) = &cfg.database {
        println!("into PostgreSQL {} (not emptied first)", crate::config::redacted(&db.url));
    }
    let fhir = crate::open(&run_cfg, true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let limits = run_cfg.limits.clone();
        let mut server_cfg = tsunagu_server::ServerConfig::new(base.clone());
        server_cfg.audit_flush = Duration::from_millis(cfg.audit_flush_ms);
        let app = tsunagu_server::router(fhir, server_cfg);
        tokio::spawn(async move { tsunagu_server::serve(listener, app, &limits).await });
        let client = reqwest::Client::new();
        let mut lat = Vec::with_capacity(plan.bundles);
        let mut resources = 0usize;
        let start = Instant::now();
        let cpu_start = process_cpu_seconds();
        for i in 0..plan.bundles {
            let k = i % bodies.len();
            let t = Instant::now();
            let r = client
                .post(&base)
                .header("content-type", "application/fhir+json")
                .header("prefer", "return=minimal")
                .body(bodies[k].clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status();
            let text = r.bytes().await.map_err(|e| e.to_string())?;
            if status != 200 {
                return Err(format!("Bundle {k} answered {status}: {}", String::from_utf8_lossy(&text)));
            }
            lat.push(t.elapsed());
            resources += sizes[k];
        }
        let secs = start.elapsed().as_secs_f64();
        let store = match &cfg.database {
            Some(_) => "PostgreSQL".to_string(),
            None => format!("sync {:?}", cfg.sync),
        };
        report(&lat, resources, secs, process_cpu_seconds() - cpu_start, &store);
        Ok::<(), String>(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn report(lat: &[Duration], resources: usize, secs: f64, cpu: f64, store: &str) {
    let mut sorted = lat.to_vec();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    println!(
        "transactions over HTTP ({store}, one client): {} Bundles, {resources} resources in {secs:.2} s = \
         {:.0} resources/s, {:.1} Bundles/s; per Bundle p50 {:.1} ms, p95 {:.1} ms; CPU (client and server, \
         all threads) {:.1} ms per Bundle",
        lat.len(),
        resources as f64 / secs.max(1e-9),
        lat.len() as f64 / secs.max(1e-9),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        cpu * 1e3 / lat.len().max(1) as f64,
    );
}

/// User and system CPU time of this process so far (from /proc; 0 where unavailable). CPU
/// time is steadier than wall time on a shared machine.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

/// The transaction Bundles in a file, a directory or a `.tar.zst` archive, in order.
fn read_bundles(input: &std::path::Path) -> Result<Vec<Value>, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let path = input.to_path_buf();
    let reader = std::thread::spawn(move || crate::import::read_path(&path, &tx));
    let mut out = Vec::new();
    for doc in rx {
        let v: Value = serde_json::from_slice(&doc.bytes).map_err(|e| format!("{}: {e}", doc.name))?;
        if v.get("type").and_then(Value::as_str) == Some("transaction") {
            out.push(v);
        }
    }
    reader.join().map_err(|_| "the reader panicked".to_string())??;
    Ok(out)
}

/// Organization and Practitioner POSTs become conditional creates on their first
/// identifier, as a feed that must not duplicate shared resources sends them.
fn make_conditional(bundle: &mut Value) {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else { return };
    for e in entries {
        let ty = e.pointer("/resource/resourceType").and_then(Value::as_str).unwrap_or_default();
        if ty != "Organization" && ty != "Practitioner" {
            continue;
        }
        let ident = e.pointer("/resource/identifier/0").cloned();
        let (Some(system), Some(value)) = (
            ident.as_ref().and_then(|i| i.get("system")).and_then(Value::as_str),
            ident.as_ref().and_then(|i| i.get("value")).and_then(Value::as_str),
        ) else {
            continue;
        };
        let condition = format!("identifier={}|{}", encode(system), encode(value));
        if let Some(req) = e.get_mut("request").and_then(Value::as_object_mut) {
            req.insert("ifNoneExist".into(), Value::String(condition));
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
