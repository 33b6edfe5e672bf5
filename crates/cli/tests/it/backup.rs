//! Backup, verify, restore and the ransomware drill on Synthea data, through the binary:
//! backup → wipe → restore gives identical content (digest over every version's body),
//! a changed byte in any backup file is caught by `verify`, and a wrong key fails cleanly.
//!
//! Uses the first `TSUNAGU_BACKUP_TEST_FILES` (default 20) patients of
//! `$TSUNAGU_SHARED/data/synthea-r4-dev.tar.zst`; prints SKIP when the archive is absent (fails
//! under `CI=true`).

use crate::common;

use common::{free_port, http, start_server, wait_ready};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tsunagu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tsunagu")).args(args).env("RUST_LOG", "error").output().expect("run tsunagu")
}

fn ok(args: &[&str]) -> String {
    let out = tsunagu(args);
    assert!(out.status.success(), "tsunagu {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Extracts the first `n` JSON files of the archive into `dir`.
fn extract(archive: &Path, dir: &Path, n: usize) {
    let f = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(f).unwrap());
    let mut taken = 0;
    for entry in tar.entries().unwrap() {
        let mut e = entry.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || taken >= n {
            continue;
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        std::fs::write(dir.join(format!("{taken}.json")), bytes).unwrap();
        taken += 1;
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn backup_wipe_restore_tamper_wrong_key_and_drill() {
    let Some(archive) = tsunagu_reference::find("data/synthea-r4-dev.tar.zst") else { return };
    let files: usize = std::env::var("TSUNAGU_BACKUP_TEST_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let input = t.join("input");
    std::fs::create_dir(&input).unwrap();
    extract(&archive, &input, files);
    let data = t.join("data");
    let bk = t.join("backup");
    let key = t.join("key.txt");
    ok(&["--data", s(&data), "import", s(&input)]);
    let public = ok(&["backup", "keygen", "--out", s(&key)]);
    assert!(public.trim().starts_with("age1"));
    let key_text = std::fs::read_to_string(&key).unwrap();

    // Generation 1, then change some resources and take generation 2.
    let (before, _) = tsunagu_backup::digest_dir(&data).unwrap();
    let out = ok(&["--data", s(&data), "backup", "--to", s(&bk), "--recipient", public.trim()]);
    let first_sum = manifest_sum(&out);
    change_some(&data, 20);
    let out = ok(&["--data", s(&data), "backup", "--to", s(&bk), "--recipient-file", &format!("{}.pub", s(&key))]);
    let latest_sum = manifest_sum(&out);
    assert!(out.contains("reused"), "{out}");
    let gens = tsunagu_backup::generations(&bk).unwrap();
    assert_eq!(gens.len(), 2);
    let inc = &gens[1].manifest.stats;
    assert!(inc.reused_blobs >= before.live_resources - 20, "unchanged bodies are not written again");
    assert_eq!(inc.new_blobs, 20);
    // The private key never lands in the backup directory.
    for f in walk(&bk) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("AGE-SECRET-KEY"), "{f:?}");
    }
    let _ = key_text;

    ok(&["backup", "verify", s(&bk), "--expect", &latest_sum]);

    // Wipe and restore generation 1: identical content to before the changes.
    let restored = t.join("restored");
    let g1 = gens[0].manifest.generation.clone();
    let out = ok(&["--data", s(&restored), "restore", "--from", s(&bk), "--generation", &g1, "--identity", s(&key)]);
    assert!(out.contains("identical to the source"), "{out}");
    let (after, _) = tsunagu_backup::digest_dir(&restored).unwrap();
    assert_eq!(before, after, "restored generation 1 differs from the source");
    eprintln!(
        "backup test: {} versions, {} live resources, content sha256 {} restored identically",
        after.versions, after.live_resources, after.sha256
    );
    serves_what_it_holds(&restored);

    // A wrong key fails cleanly, naming the key the backup was made for.
    let wrong = t.join("wrong.txt");
    ok(&["backup", "keygen", "--out", s(&wrong)]);
    let out = tsunagu(&["--data", s(&t.join("w")), "restore", "--from", s(&bk), "--identity", s(&wrong)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match") && err.contains(public.trim()), "{err}");
    assert!(!t.join("w").exists(), "a failed restore leaves no data directory");

    // Tampering with any byte of any file is caught by a key-less verify.
    let mut tampered = 0;
    for f in walk(&bk) {
        let rel = f.strip_prefix(&bk).unwrap().to_path_buf();
        let copy = t.join("tamper");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&bk, &copy);
        let target = copy.join(&rel);
        let mut bytes = std::fs::read(&target).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&target, bytes).unwrap();
        let caught = match tsunagu_backup::verify(&copy, Some(&latest_sum)) {
            Ok(v) => !v.problems.is_empty(),
            Err(_) => true,
        };
        assert!(caught, "tampering with {rel:?} was not detected");
        tampered += 1;
    }
    eprintln!("backup test: a flipped byte in each of {tampered} backup files was detected");
    let _ = first_sum;

    // The drill: scramble the live directory, restore the newest generation, prove it.
    let (live, _) = tsunagu_backup::digest_dir(&data).unwrap();
    let out = ok(&["--data", s(&data), "drill", "--to", s(&bk), "--identity", s(&key), "--confirm"]);
    assert!(out.contains("drill passed"), "{out}");
    let (drilled, _) = tsunagu_backup::digest_dir(&data).unwrap();
    assert_eq!(live, drilled);

    // Prune to one generation per day: only the newest stays, with the packs and the
    // catalog chain it needs, and it still verifies and restores.
    let out = ok(&["backup", "prune", s(&bk), "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"]);
    eprintln!("prune: {}", out.trim());
    assert_eq!(tsunagu_backup::generations(&bk).unwrap().len(), 1);
    ok(&["backup", "verify", s(&bk)]);
    let again = t.join("again");
    ok(&["--data", s(&again), "restore", "--from", s(&bk), "--identity", s(&key)]);
    assert_eq!(tsunagu_backup::digest_dir(&again).unwrap().0, live);
}

fn manifest_sum(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("manifest sha256 "))
        .and_then(|l| l.split_whitespace().next())
        .expect("backup prints the manifest checksum")
        .to_string()
}

/// Updates `n` live resources through the interaction layer (as the server would).
fn change_some(data: &Path, n: usize) {
    let snap = tsunagu_store::Snapshot::open(data).unwrap();
    let mut picked = Vec::new();
    snap.versions(|v| -> Result<(), tsunagu_store::StoreError> {
        if picked.len() < n && !v.deleted && v.resource_type == "Observation" {
            picked.push(v);
        }
        Ok(())
    })
    .unwrap();
    drop(snap);
    let store = tsunagu_store::SqliteStore::open(data, tsunagu_store::SyncMode::Full).unwrap();
    let fhir = tsunagu_interaction::Interactions::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(tsunagu_interaction::NoCheck),
        Default::default(),
    );
    for v in picked {
        let mut body: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
        body["language"] = "ja".into();
        fhir.update(&v.resource_type, &v.id, body, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Starts the server on `data` and reads every live resource over HTTP: the bytes served
/// are the stored ones, and a token search through the rebuilt index finds each Patient.
fn serves_what_it_holds(data: &Path) {
    let snap = tsunagu_store::Snapshot::open(data).unwrap();
    let mut current = std::collections::HashMap::new();
    snap.versions(|v| -> Result<(), tsunagu_store::StoreError> {
        current.insert((v.resource_type.clone(), v.id.clone()), v);
        Ok(())
    })
    .unwrap();
    drop(snap);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(data, &addr);
    wait_ready(&addr, &mut server);
    let mut served = 0;
    let mut searched = 0;
    for ((ty, id), v) in &current {
        if v.deleted {
            continue;
        }
        let (status, _, body) = http(&addr, "GET", &format!("/{ty}/{id}"), None).unwrap();
        assert_eq!(status, 200, "{ty}/{id}");
        let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
        assert_eq!(got, stored, "{ty}/{id} served differently");
        served += 1;
        if ty == "Patient" {
            let (status, _, body) = http(
                &addr,
                "GET",
                &format!("/Patient?_id={id}&gender={}", stored["gender"].as_str().unwrap_or("unknown")),
                None,
            )
            .unwrap();
            assert_eq!(status, 200);
            let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(bundle["entry"].as_array().map(|e| e.len()), Some(1), "search for Patient/{id}");
            searched += 1;
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!("backup test: the restored server served all {served} live resources identically; {searched} token searches found their Patient");
}

/// A backup taken while clients write: writes go on during it, every write acknowledged
/// before it started is in it, and the restored server serves them and finds them by search.
#[test]
fn online_backup_does_not_pause_writes_and_holds_every_earlier_write() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = t.join("data");
    let bk = t.join("backup");
    let key = t.join("key.txt");
    let public = ok(&["backup", "keygen", "--out", s(&key)]);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&data, &addr);
    wait_ready(&addr, &mut server);
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<(Instant, String, serde_json::Value)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (addr, stop, acks) = (addr.clone(), stop.clone(), acks.clone());
        writers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = serde_json::json!({"resourceType": "Patient", "gender": "female",
                    "identifier": [{"system": "urn:tsunagu:online", "value": format!("{w}-{n}")}]});
                let (status, _, resp) = http(&addr, "POST", "/Patient", Some(&body.to_string())).unwrap();
                assert_eq!(status, 201);
                let json: serde_json::Value = serde_json::from_slice(&resp).unwrap();
                let id = json["id"].as_str().unwrap().to_string();
                acks.lock().unwrap().push((Instant::now(), id, json));
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    ok(&["--data", s(&data), "backup", "--to", s(&bk), "--recipient", public.trim()]);
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let acks = acks.lock().unwrap();
    let before: Vec<_> = acks.iter().filter(|a| a.0 < t0).collect();
    let during = acks.iter().filter(|a| a.0 >= t0 && a.0 <= t1).count();
    eprintln!(
        "online backup: {} writes acknowledged before it, {during} during its {:.2} s",
        before.len(),
        (t1 - t0).as_secs_f64()
    );
    assert!(during > 0, "writes paused during the backup");

    let restored = t.join("restored");
    ok(&["--data", s(&restored), "restore", "--from", s(&bk), "--identity", s(&key)]);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&restored, &addr);
    wait_ready(&addr, &mut server);
    for (_, id, body) in &before {
        let (status, _, got) = http(&addr, "GET", &format!("/Patient/{id}"), None).unwrap();
        assert_eq!(status, 200, "Patient/{id} acknowledged before the backup is missing");
        let got: serde_json::Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(&got, body);
    }
    let value = before[before.len() / 2].2["identifier"][0]["value"].as_str().unwrap().to_string();
    let (_, _, found) = http(&addr, "GET", &format!("/Patient?identifier=urn:tsunagu:online|{value}"), None).unwrap();
    let found: serde_json::Value = serde_json::from_slice(&found).unwrap();
    assert_eq!(found["entry"].as_array().map(|e| e.len()), Some(1));
    server.kill().unwrap();
    server.wait().unwrap();
}
