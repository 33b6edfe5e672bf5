//! `tsunagu audit verify` finds each kind of tampering with the audit trail: a record
//! edited, deleted, inserted, reordered, or cut from the end (against the head hash kept
//! elsewhere). The attacker here has the database file and drops the append-only triggers.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rusqlite::params;
use serde_json::json;

fn verify(data: &Path, expect_head: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tsunagu"));
    cmd.arg("--data").arg(data).args(["audit", "verify"]).env("RUST_LOG", "error").env_remove("TSUNAGU_CONFIG");
    if let Some(h) = expect_head {
        cmd.args(["--expect-head", h]);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

/// A data directory whose audit trail holds 12 records (one per write).
fn trail(dir: &Path) {
    let store = tsunagu_store::SqliteStore::open(dir, tsunagu_store::SyncMode::Normal).unwrap();
    let fhir = tsunagu_interaction::Interactions::new(
        Arc::new(store),
        Arc::new(tsunagu_interaction::NoCheck),
        Default::default(),
    );
    let ctx = tsunagu_interaction::RequestContext::new("http://localhost");
    for i in 0..12 {
        let p = json!({"resourceType": "Patient", "id": format!("p{i}"), "name": [{"family": format!("F{i}")}]});
        fhir.update("Patient", &format!("p{i}"), p, None, &ctx).unwrap();
    }
}

/// Opens the database as an attacker would: the append-only triggers dropped.
fn tamper(data: &Path, sql: &str) {
    let c = rusqlite::Connection::open(data.join("tsunagu.sqlite")).unwrap();
    c.execute_batch(
        "DROP TRIGGER IF EXISTS audit_append_only_update; DROP TRIGGER IF EXISTS audit_append_only_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn every_kind_of_tampering_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    trail(&clean);
    let (ok, out) = verify(&clean, None);
    assert!(ok, "{out}");
    assert!(out.contains("records: 12"), "{out}");
    let head = out.lines().find_map(|l| l.strip_prefix("head: ")).unwrap().to_string();
    assert_eq!(head.len(), 64);
    assert!(verify(&clean, Some(&head)).0);

    // The triggers refuse changes made the ordinary way.
    let c = rusqlite::Connection::open(clean.join("tsunagu.sqlite")).unwrap();
    assert!(c.execute("UPDATE audit SET outcome = '8' WHERE n = 3", []).is_err());
    assert!(c.execute("DELETE FROM audit WHERE n = 3", []).is_err());
    drop(c);

    let cases: Vec<(&str, String, &str)> = vec![
        ("edited", "UPDATE audit SET body = replace(body, 'Patient', 'Pationt') WHERE n = 5".into(), "record 5"),
        ("agent column edited", "UPDATE audit SET agent = 'someone-else' WHERE n = 7".into(), "record 7"),
        ("deleted", "DELETE FROM audit WHERE n = 5".into(), "after record 4"),
        ("inserted (a copy, renumbered after)", insert_sql(&clean, false), "record 5"),
        ("inserted (its own hash computed, renumbered after)", insert_sql(&clean, true), "record 6"),
        (
            "reordered",
            "UPDATE audit SET n = -1 WHERE n = 3; UPDATE audit SET n = 3 WHERE n = 4; UPDATE audit SET n = 4 WHERE n = -1;"
                .into(),
            "record 3",
        ),
    ];
    for (what, sql, where_) in cases {
        let dir = tmp.path().join(what.replace(' ', "-"));
        copy(&clean, &dir);
        tamper(&dir, &sql);
        let (ok, out) = verify(&dir, None);
        assert!(!ok, "{what}: not detected\n{out}");
        assert!(out.contains(where_), "{what}: expected '{where_}' in\n{out}");
    }
    // Cut from the end: the chain itself is consistent; only the kept head shows it.
    let dir = tmp.path().join("cut");
    copy(&clean, &dir);
    tamper(&dir, "DELETE FROM audit WHERE n = 12");
    assert!(verify(&dir, None).0);
    let (ok, out) = verify(&dir, Some(&head));
    assert!(!ok && out.contains("not the expected"), "{out}");
}

#[test]
fn a_failed_write_leaves_no_record_and_a_write_one_in_its_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    trail(tmp.path());
    let c = rusqlite::Connection::open(tmp.path().join("tsunagu.sqlite")).unwrap();
    let n: i64 = c.query_row("SELECT COUNT(*) FROM audit WHERE subtype = 'update'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 12);
    let e: String = c.query_row("SELECT entities FROM audit WHERE n = ?1", params![3], |r| r.get(0)).unwrap();
    assert_eq!(e, "Patient/p2/_history/1");
}

/// SQL that makes room at 5 and inserts a forged record there; with `rehash`, the forger
/// computes its hash correctly after record 4 (SHA-256 needs no key), so only the link
/// of the record after it breaks.
fn insert_sql(clean: &Path, rehash: bool) -> String {
    let c = rusqlite::Connection::open(clean.join("tsunagu.sqlite")).unwrap();
    let prev: Vec<u8> = c.query_row("SELECT hash FROM audit WHERE n = 4", [], |r| r.get(0)).unwrap();
    let (recorded, body): (i64, Vec<u8>) =
        c.query_row("SELECT recorded, body FROM audit WHERE n = 5", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let entry = tsunagu_store::AuditEntry {
        id: "forged".into(),
        recorded_ms: recorded,
        agent: "nobody".into(),
        patient: String::new(),
        subtype: "read".into(),
        outcome: "0".into(),
        entities: String::new(),
        body,
    };
    let hash = if rehash { tsunagu_store::chain_hash(&prev, 5, &entry).to_vec() } else { prev.clone() };
    let hex = |b: &[u8]| tsunagu_store::hex(b);
    format!(
        "UPDATE audit SET n = n + 100 WHERE n >= 5; UPDATE audit SET n = n - 99 WHERE n >= 105;
         INSERT INTO audit (n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash)
           SELECT 5, 'forged', {recorded}, 'nobody', '', 'read', '0', '', body, x'{}', x'{}' FROM audit WHERE n = 6;",
        hex(&prev),
        hex(&hash)
    )
}

/// Reads are recorded in batches: a SIGKILL loses at most the reads of the last
/// `audit_flush_ms` (100 ms). Reads answered more than that before the kill are all there.
#[test]
fn reads_answered_before_the_flush_interval_survive_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut server = common::start_server(&data, &addr);
    common::wait_ready(&addr, &mut server);
    let body = json!({"resourceType": "Patient", "id": "read-me"}).to_string();
    let (status, _, _) = common::http(&addr, "PUT", "/Patient/read-me", Some(&body)).unwrap();
    assert_eq!(status, 201);
    let reads = 300;
    for _ in 0..reads {
        let (status, _, _) = common::http(&addr, "GET", "/Patient/read-me", None).unwrap();
        assert_eq!(status, 200);
    }
    // Past the bound (100 ms), then more reads right before the kill, which may be lost.
    std::thread::sleep(std::time::Duration::from_millis(400));
    for _ in 0..50 {
        let _ = common::http(&addr, "GET", "/Patient/read-me", None);
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let c = rusqlite::Connection::open(data.join("tsunagu.sqlite")).unwrap();
    let stored: i64 = c
        .query_row("SELECT COUNT(*) FROM audit WHERE subtype = 'read' AND entities = 'Patient/read-me'", [], |r| {
            r.get(0)
        })
        .unwrap();
    eprintln!("audit: {stored} of {} reads recorded after SIGKILL ({reads} answered > 100 ms before it)", reads + 50);
    assert!(stored >= reads as i64, "{stored} read records; {reads} were answered before the flush interval");
    let writes: i64 = c
        .query_row("SELECT COUNT(*) FROM audit WHERE entities = 'Patient/read-me/_history/1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(writes, 1);
}
