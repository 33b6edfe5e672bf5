//! Crash test: the server is killed with SIGKILL at random moments during heavy
//! concurrent writes, restarted on the same data directory, and checked: every write it
//! acknowledged is present with the acknowledged content, SQLite's integrity check
//! passes, resource versions and index rows are consistent, and rebuilding the indexes
//! from the resources gives exactly the stored index rows.
//!
//! `TSUNAGU_CRASH_ITERATIONS` (default 100) and `TSUNAGU_CRASH_SEED` tune a run.

use crate::common;

use common::{free_port, http, start_server, wait_ready, Rng};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tsunagu_store::{ResourceVersion, Snapshot};

const WRITERS: usize = 8;

/// A write the server answered with 2xx: it must survive any crash after this point.
#[derive(Debug, Clone)]
struct Ack {
    ty: String,
    id: String,
    version: u64,
    /// `None` for a delete.
    body: Option<serde_json::Value>,
}

#[test]
fn sigkill_during_concurrent_writes_loses_no_acknowledged_write() {
    let iterations: usize = std::env::var("TSUNAGU_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let seed: u64 = std::env::var("TSUNAGU_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash test: {iterations} iterations, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acks: Vec<Ack> = Vec::new();
    let mut unacked_attempts = 0u64;
    let start = Instant::now();
    for it in 0..iterations {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut server = start_server(&data, &addr);
        wait_ready(&addr, &mut server);
        // The restarted server must serve what was acknowledged before the crash.
        if let Some(a) = acks.iter().rev().find(|a| a.body.is_some()) {
            let (status, _, body) = http(&addr, "GET", &format!("/{}/{}/_history/{}", a.ty, a.id, a.version), None)
                .expect("read after restart");
            assert_eq!(status, 200, "vread {}/{} after restart", a.ty, a.id);
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(Some(&got), a.body.as_ref());
        }
        check_store(&data, &acks, it % 10 == 9 || it + 1 == iterations);

        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for w in 0..WRITERS {
            let addr = addr.clone();
            let stop = stop.clone();
            let wseed = rng.next() | 1;
            let tag = format!("{it}-{w}");
            handles.push(std::thread::spawn(move || writer(&addr, &stop, wseed, &tag)));
        }
        // Kill at a random moment while the writers are busy.
        std::thread::sleep(Duration::from_millis(30 + rng.below(370)));
        server.kill().unwrap();
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let (a, failed) = h.join().unwrap();
            acks.extend(a);
            unacked_attempts += failed;
        }
    }
    // Final restart and full check.
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&data, &addr);
    wait_ready(&addr, &mut server);
    check_store(&data, &acks, true);
    server.kill().unwrap();
    server.wait().unwrap();
    let deletes = acks.iter().filter(|a| a.body.is_none()).count();
    eprintln!(
        "crash test: {iterations} SIGKILLs, {} acknowledged writes ({} deletes) all present after restart, \
         {unacked_attempts} requests cut off by the kill, {:.1} s",
        acks.len(),
        deletes,
        start.elapsed().as_secs_f64()
    );
    assert!(acks.len() > iterations, "the writers made too little progress");
}

/// Checks every acknowledged write against the store on disk (read-only, beside the
/// running server), SQLite's integrity check and the store's own invariants. With
/// `rebuild`, also replays every version into a fresh store and compares index rows.
fn check_store(data: &Path, acks: &[Ack], rebuild: bool) {
    if acks.is_empty() && !data.join("tsunagu.sqlite").exists() {
        return;
    }
    let snap = Snapshot::open(data).unwrap();
    let problems = snap.integrity_check().unwrap();
    assert!(problems.is_empty(), "integrity_check: {problems:?}");
    let problems = snap.consistency_check().unwrap();
    assert!(problems.is_empty(), "consistency: {problems:?}");
    let mut versions: HashMap<(String, String, u64), ResourceVersion> = HashMap::new();
    let mut all = Vec::new();
    snap.versions(|v| -> Result<(), tsunagu_store::StoreError> {
        if rebuild {
            all.push(v.clone());
        }
        versions.insert((v.resource_type.clone(), v.id.clone(), v.version), v);
        Ok(())
    })
    .unwrap();
    for a in acks {
        let v = versions
            .get(&(a.ty.clone(), a.id.clone(), a.version))
            .unwrap_or_else(|| panic!("acknowledged {}/{}/_history/{} is lost", a.ty, a.id, a.version));
        match &a.body {
            None => assert!(v.deleted, "acknowledged delete of {}/{} is lost", a.ty, a.id),
            Some(body) => {
                let stored: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
                assert_eq!(&stored, body, "content of {}/{}/{}", a.ty, a.id, a.version);
            }
        }
    }
    check_audit(data, acks);
    if rebuild {
        let mut original = Vec::new();
        snap.index_rows(|t, r| -> Result<(), tsunagu_store::StoreError> {
            original.push(format!("{t}\t{r}"));
            Ok(())
        })
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = tsunagu_store::SqliteStore::open(tmp.path(), tsunagu_store::SyncMode::Normal).unwrap();
            let fhir = tsunagu_interaction::Interactions::new(
                Arc::new(store),
                Arc::new(tsunagu_interaction::NoCheck),
                Default::default(),
            );
            for chunk in all.chunks(2000) {
                fhir.restore_versions(chunk).unwrap();
            }
        }
        let rebuilt_snap = Snapshot::open(tmp.path()).unwrap();
        let mut rebuilt = Vec::new();
        rebuilt_snap
            .index_rows(|t, r| -> Result<(), tsunagu_store::StoreError> {
                rebuilt.push(format!("{t}\t{r}"));
                Ok(())
            })
            .unwrap();
        assert_eq!(original.len(), rebuilt.len(), "index row count differs from a rebuild");
        assert!(original == rebuilt, "index rows differ from a rebuild");
    }
}

/// One client: creates, updates and deletes its own Patients as fast as it can until the
/// server goes away. Returns the acknowledged writes and the number of requests that got
/// no answer.
fn writer(addr: &str, stop: &AtomicBool, seed: u64, tag: &str) -> (Vec<Ack>, u64) {
    let mut rng = Rng(seed);
    let mut acks = Vec::new();
    let mut mine: Vec<(String, bool, u64)> = Vec::new(); // (id, deleted, version)
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let roll = rng.below(100);
        let result = if roll < 50 || mine.is_empty() {
            let body = patient(None, tag, n, &mut rng);
            http(addr, "POST", "/Patient", Some(&body.to_string())).map(|r| (r, None))
        } else {
            let k = rng.below(mine.len() as u64) as usize;
            let (id, deleted, _) = mine[k].clone();
            if roll < 88 || deleted {
                let body = patient(Some(&id), tag, n, &mut rng);
                http(addr, "PUT", &format!("/Patient/{id}"), Some(&body.to_string())).map(|r| (r, Some((k, false))))
            } else {
                http(addr, "DELETE", &format!("/Patient/{id}"), None).map(|r| (r, Some((k, true))))
            }
        };
        let ((status, headers, body), target) = match result {
            Ok(r) => r,
            // The server was killed mid-request: not acknowledged, so no promise was made.
            Err(_) => return (acks, 1),
        };
        assert!((200..300).contains(&status), "status {status}: {}", String::from_utf8_lossy(&body));
        let version = headers.get("etag").and_then(|e| e.trim_start_matches("W/").trim_matches('"').parse().ok());
        match target {
            Some((k, true)) => {
                // Only this writer touches its resources, so the deleted version is the
                // next one after the last it wrote.
                let v = mine[k].2 + 1;
                if let Some(e) = version {
                    assert_eq!(e, v, "ETag of a delete");
                }
                acks.push(Ack { ty: "Patient".into(), id: mine[k].0.clone(), version: v, body: None });
                mine[k].1 = true;
                mine[k].2 = v;
            }
            _ => {
                let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
                let id = json["id"].as_str().unwrap().to_string();
                let v: u64 = json["meta"]["versionId"].as_str().unwrap().parse().unwrap();
                assert_eq!(Some(v), version, "ETag and meta.versionId agree");
                match target {
                    Some((k, _)) => {
                        assert_eq!(v, mine[k].2 + 1, "versions of {id} follow each other");
                        mine[k].1 = false;
                        mine[k].2 = v;
                    }
                    None => mine.push((id.clone(), false, v)),
                }
                acks.push(Ack { ty: "Patient".into(), id, version: v, body: Some(json) });
            }
        }
    }
    (acks, 0)
}

fn patient(id: Option<&str>, tag: &str, n: u64, rng: &mut Rng) -> serde_json::Value {
    let gender = ["male", "female", "other", "unknown"][rng.below(4) as usize];
    let mut p = serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:tsunagu:crash", "value": format!("{tag}-{n}")}],
        "name": [{"family": format!("Family{}", rng.below(1000)), "given": [format!("G{n}")]}],
        "gender": gender,
        "birthDate": format!("19{:02}-0{}-1{}", rng.below(100), 1 + rng.below(9), rng.below(10)),
        "active": rng.below(2) == 0
    });
    if let Some(id) = id {
        p["id"] = id.into();
    }
    p
}

/// Every acknowledged write has its audit record (written in the write's own
/// transaction), and the audit chain is unbroken after the crash.
fn check_audit(data: &Path, acks: &[Ack]) {
    let c =
        rusqlite::Connection::open_with_flags(data.join("tsunagu.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = c
        .prepare("SELECT n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash FROM audit ORDER BY n")
        .unwrap();
    let mut walker = tsunagu_store::ChainWalker::default();
    let mut audited = std::collections::HashSet::new();
    let rows = stmt
        .query_map([], |r| {
            Ok(tsunagu_store::AuditRecord {
                n: r.get(0)?,
                id: r.get(1)?,
                recorded_ms: r.get(2)?,
                agent: r.get(3)?,
                patient: r.get(4)?,
                subtype: r.get(5)?,
                outcome: r.get(6)?,
                entities: r.get(7)?,
                body: r.get(8)?,
                prev: r.get(9)?,
                hash: r.get(10)?,
            })
        })
        .unwrap();
    for r in rows {
        let r = r.unwrap();
        walker.step(&r);
        audited.extend(r.entities.split(' ').map(str::to_string));
    }
    let report = walker.finish();
    assert!(report.first_break.is_none(), "audit chain broken: {:?}", report.first_break);
    for a in acks {
        let reference = format!("{}/{}/_history/{}", a.ty, a.id, a.version);
        assert!(audited.contains(&reference), "acknowledged write {reference} has no audit record");
    }
}
