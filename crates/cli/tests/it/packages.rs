//! `tsunagu package install` and `tsunagu terminology load` through the binary, then the
//! server they prepare: installed conformance resources are readable over REST and the
//! terminology operations see both the package and the master.

use crate::common;

use common::{free_port, http, start_server, wait_ready};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn tsunagu(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tsunagu"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tsunagu")
}

/// Writes an npm-style FHIR package (`package/package.json` plus resources) as a .tgz.
fn make_package(dir: &Path, name: &str, deps: Value, resources: &[Value]) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("package")).unwrap();
    let manifest = json!({ "name": name, "version": "0.1.0", "dependencies": deps });
    std::fs::write(root.join("package/package.json"), manifest.to_string()).unwrap();
    for r in resources {
        let file = format!("{}-{}.json", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        std::fs::write(root.join("package").join(file), r.to_string()).unwrap();
    }
    let tgz = dir.join(format!("{name}.tgz"));
    let status = Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(&root).arg("package").status().unwrap();
    assert!(status.success());
    tgz
}

fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = http(addr, "GET", path, None).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn install_packages_load_a_master_and_serve_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cs = json!({ "resourceType": "CodeSystem", "id": "colours", "url": "http://example.jp/cs/colours",
        "status": "active", "content": "complete",
        "concept": [{ "code": "aka", "display": "赤" }, { "code": "ao", "display": "青" }] });
    let vs = json!({ "resourceType": "ValueSet", "id": "colours", "url": "http://example.jp/vs/colours",
        "status": "active", "compose": { "include": [{ "system": "http://example.jp/cs/colours" }] } });
    let pkg = make_package(tmp.path(), "example.colours", json!({}), &[cs, vs]);

    let out = tsunagu(&data, &["package", "install", pkg.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("example.colours#0.1.0: 2 conformance resources stored"), "{stdout}");
    let again = tsunagu(&data, &["package", "install", pkg.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already installed"));

    // A package whose dependency is not installed is refused, naming what is missing.
    let needy = make_package(tmp.path(), "example.needy", json!({ "example.absent": "1.0.0" }), &[]);
    let out = tsunagu(&data, &["package", "install", needy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("example.absent#1.0.0"));
    let list = tsunagu(&data, &["package", "list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "example.colours#0.1.0");

    let master = Path::new(env!("CARGO_MANIFEST_DIR")).join("../terminology/tests/data/jlac10_sjis.csv");
    let out = tsunagu(&data, &["terminology", "load", "--format", "jlac10", master.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stored CodeSystem/master-JLAC10-17digits"));

    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&data, &addr);
    wait_ready(&addr, &mut server);
    let (status, bundle) = get_json(&addr, "/CodeSystem?url=http://example.jp/cs/colours");
    assert_eq!((status, bundle["entry"].as_array().map(Vec::len)), (200, Some(1)), "{bundle}");
    let (status, vs) = get_json(&addr, "/ValueSet/$expand?url=http://example.jp/vs/colours");
    assert_eq!(status, 200, "{vs}");
    assert_eq!(vs["expansion"]["total"], 2);
    let (status, p) = get_json(
        &addr,
        "/CodeSystem/$lookup?system=http://medis.or.jp/CodeSystem/master-JLAC10-17digits&code=3A015000002327101",
    );
    assert_eq!(status, 200, "{p}");
    assert!(p.to_string().contains("アルブミン"), "{p}");
}

/// Writes a package whose manifest carries `name` as is (a path, say) as `<dir>/<file>`.
fn make_raw_package(dir: &Path, file: &str, name: &str) -> std::path::PathBuf {
    let root = dir.join(format!("{file}.src"));
    std::fs::create_dir_all(root.join("package")).unwrap();
    let manifest = json!({ "name": name, "version": "0.1.0" });
    std::fs::write(root.join("package/package.json"), manifest.to_string()).unwrap();
    let cs = json!({ "resourceType": "CodeSystem", "id": "evil", "url": "http://example.jp/cs/evil",
        "status": "active", "content": "complete" });
    std::fs::write(root.join("package/CodeSystem-evil.json"), cs.to_string()).unwrap();
    let tgz = dir.join(file);
    let status = Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(&root).arg("package").status().unwrap();
    assert!(status.success());
    tgz
}

/// Every path under `dir`, sorted.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(tree(&p));
        }
        out.push(p);
    }
    out.sort();
    out
}

/// A package whose name is a path (`../../x`, or absolute) is refused with exit status 1
/// and a message, and no file appears where its installed copy would have gone.
#[test]
fn install_refuses_package_names_that_are_paths() {
    let tmp = tempfile::tempdir().unwrap();
    // The data directory sits two levels down, so `../../x` from its packages/ lands in
    // `tmp/base`, which the test can watch.
    let base = tmp.path().join("base");
    let data = base.join("a/data");
    std::fs::create_dir_all(&data).unwrap();
    let absolute = base.join("abs/x");
    let cases = [
        ("relative.tgz", "../../x".to_owned(), base.join("a/x#0.1.0.tgz")),
        ("absolute.tgz", absolute.to_str().unwrap().to_owned(), base.join("abs/x#0.1.0.tgz")),
    ];
    for (file, name, would_be) in &cases {
        let pkg = make_raw_package(tmp.path(), file, name);
        let before = tree(&base);
        let out = tsunagu(&data, &["package", "install", pkg.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&format!("package.json name {name:?} is not allowed")), "{name}: {stderr}");
        assert!(!would_be.exists(), "{name}: {} was written", would_be.display());
        assert!(!absolute.parent().unwrap().exists(), "{name}: created {}", absolute.display());
        // Nothing new anywhere under base, outside the data directory.
        let after: Vec<_> = tree(&base).into_iter().filter(|p| !p.starts_with(&data)).collect();
        let before: Vec<_> = before.into_iter().filter(|p| !p.starts_with(&data)).collect();
        assert_eq!(after, before, "{name}");
        let installed: Vec<_> = tree(&data.join("packages"));
        assert!(installed.is_empty(), "{name}: {installed:?}");
    }
    let list = tsunagu(&data, &["package", "list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "");
}
