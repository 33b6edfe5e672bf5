//! `tsunagu import` into PostgreSQL end to end: into an empty database the lookup indexes
//! are dropped for the load and built again at the end (`tsunagu_store_postgres::
//! DeferredIndexes`), so afterwards searches find every resource through them; a second
//! import into the now non-empty database keeps them throughout. Without PostgreSQL it
//! says SKIPPED (and fails under CI=true).

use std::io::Write;
use std::process::Command;

use tsunagu_store::{Clause, Condition, SearchQuery, Store, Test};
use tsunagu_store_postgres::{PostgresConfig, PostgresStore};

/// `patients` Patients `p{i}` and two Observations each, `o{i}a`/`o{i}b`, as NDJSON.
fn ndjson(path: &std::path::Path, from: usize, patients: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in from..from + patients {
        writeln!(f, r#"{{"resourceType":"Patient","id":"p{i}","gender":"female"}}"#).unwrap();
        for s in ["a", "b"] {
            writeln!(
                f,
                r#"{{"resourceType":"Observation","id":"o{i}{s}","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"718-7"}}]}},"subject":{{"reference":"Patient/p{i}"}}}}"#
            )
            .unwrap();
        }
    }
}

fn import(data: &std::path::Path, url: &str, file: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tsunagu"))
        .arg("--data")
        .arg(data)
        .args(["--database", url, "import"])
        .arg(file)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

fn by_subject(patient: &str) -> SearchQuery {
    SearchQuery {
        resource_type: Some("Observation".into()),
        clauses: vec![Clause {
            any: vec![Condition::Index {
                param: "subject".into(),
                test: Test::Reference {
                    target_type: Some("Patient".into()),
                    target_id: Some(patient.into()),
                    url: None,
                },
                negate: false,
            }],
        }],
        count: 10,
        ..Default::default()
    }
}

#[test]
fn an_import_into_an_empty_database_builds_its_indexes_at_the_end() {
    let Some(cluster) = tsunagu_store_postgres::throwaway::shared() else { return };
    let url = cluster.url(&cluster.create_database());
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.ndjson");
    ndjson(&first, 0, 200);
    let text = import(&dir.path().join("data"), &url, &first);
    assert!(text.contains("built the lookup indexes") && text.contains("imported 600 resources"), "{text}");

    let store = PostgresStore::open(&PostgresConfig::new(&url)).unwrap();
    for p in ["p0", "p77", "p199"] {
        let x = store.explain(&by_subject(p)).unwrap();
        assert_eq!(x.page.unwrap().resources.len(), 2, "{p}");
        let plans: String = x.statements.iter().flat_map(|s| s.plan.iter()).cloned().collect();
        assert!(plans.contains("idx_reference_key"), "found through the rebuilt index: {plans}");
    }

    let second = dir.path().join("second.ndjson");
    ndjson(&second, 200, 50);
    let text = import(&dir.path().join("data"), &url, &second);
    assert!(!text.contains("built the lookup indexes") && text.contains("imported 150 resources"), "{text}");
    assert_eq!(store.search(&by_subject("p220")).unwrap().resources.len(), 2);
    assert_eq!(store.search(&by_subject("p10")).unwrap().resources.len(), 2);
}
