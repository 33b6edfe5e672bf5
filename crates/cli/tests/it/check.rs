//! `tsunagu check` as an operator runs it: exit 0 and "no problems" on a directory the
//! server wrote, exit 1 and the damaged resource named once a stored body can no longer be
//! read back (a resource nested deeper than any reader accepts, as older versions stored).

use std::process::Command;

fn tsunagu(data: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tsunagu"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("TSUNAGU_CONFIG")
        .output()
        .expect("run tsunagu");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_finds_a_body_that_cannot_be_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("patients.json");
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a", "name": [{"family": "山田"}]}},
        {"resource": {"resourceType": "Patient", "id": "b", "name": [{"family": "佐藤"}]}}]});
    std::fs::write(&input, bundle.to_string()).unwrap();
    let (code, out) = tsunagu(&data, &["import", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tsunagu(&data, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems"), "{out}");

    // What an older version could store: 140 levels, past serde_json's reader limit.
    let mut deep = serde_json::json!("x");
    for _ in 0..140 {
        deep = serde_json::json!([deep]);
    }
    let body = serde_json::json!({"resourceType": "Patient", "id": "b", "meta": {"versionId": "1"}, "x": deep});
    let db = rusqlite::Connection::open(data.join("tsunagu.sqlite")).unwrap();
    db.execute("UPDATE resource SET body = ?1 WHERE type = 'Patient' AND id = 'b'", [body.to_string().into_bytes()])
        .unwrap();
    drop(db);
    let (code, out) = tsunagu(&data, &["check", "--no-content"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Patient/b/_history/1"), "{out}");
}
