//! Read throughput: starts the server on an ephemeral loopback port with a throwaway data
//! directory (or, with `--database`, `nodes` servers on that PostgreSQL database, each with
//! its own store and connections, replicas as configured), creates patients, then has N
//! clients GET them for a fixed time, spread over the nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(
    config: &crate::config::Config,
    clients: usize,
    seconds: u64,
    patients: usize,
    nodes: usize,
) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tsunagu-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = crate::config::Config {
        sync: tsunagu_store::SyncMode::Normal,
        database: config.database.clone(),
        ..crate::config::Config::defaults(dir.clone())
    };
    if nodes > 1 && cfg.database.is_none() {
        return Err("--nodes needs --database postgres://… (SQLite serves one node)".into());
    }
    let fhirs = (0..nodes.max(1)).map(|_| crate::open(&cfg, true)).collect::<Result<Vec<_>, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        let mut bases = Vec::new();
        for fhir in fhirs {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let node_base = format!("http://{addr}");
            let limits = cfg.limits.clone();
            let app = tsunagu_server::router(fhir, tsunagu_server::ServerConfig::new(node_base.clone()));
            tokio::spawn(async move { tsunagu_server::serve(listener, app, &limits).await });
            bases.push(node_base);
        }
        let base = bases[0].clone();
        let bases = Arc::new(bases);
        let client = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().map_err(|e| e.to_string())?;
        let mut ids = Vec::with_capacity(patients);
        for i in 0..patients {
            let body = serde_json::json!({
                "resourceType": "Patient",
                "identifier": [{ "system": "urn:oid:1.2.392.100495.20.3.51.11312345670", "value": i.to_string() }],
                "name": [{ "family": "山田", "given": ["太郎"] }],
                "gender": "male",
                "birthDate": "1970-01-01"
            });
            let r = client
                .post(format!("{base}/Patient"))
                .header("content-type", "application/fhir+json")
                .header("prefer", "return=minimal")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("no Location")?.to_string();
            let id = loc.split("/Patient/").nth(1).and_then(|s| s.split('/').next()).ok_or("bad Location")?;
            ids.push(id.to_string());
        }
        let ids = Arc::new(ids);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let start = Instant::now();
        for c in 0..clients {
            let (client, ids, stop) = (client.clone(), ids.clone(), stop.clone());
            let base = bases[c % bases.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = client.get(format!("{base}/Patient/{}", ids[i % ids.len()])).send().await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                        }
                        _ => return Err("a read failed".to_string()),
                    }
                    lat.push(t.elapsed());
                    i += clients;
                }
                Ok(lat)
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| e.to_string())??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        println!(
            "GET /Patient/{{id}}: {clients} clients on {} node(s) ({}), {} requests in {elapsed:.1} s = {:.0} req/s; p50 {:?}, p99 {:?} (client in the same process)",
            bases.len(),
            match &cfg.database {
                None => "SQLite".to_string(),
                Some(d) if d.replicas.is_empty() => "PostgreSQL".to_string(),
                Some(d) => format!("PostgreSQL, {} replica(s)", d.replicas.len()),
            },
            all.len(),
            all.len() as f64 / elapsed,
            pct(0.50),
            pct(0.99)
        );
        Ok::<(), String>(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
