//! One backup format for every backend: a backup taken from SQLite restores onto
//! PostgreSQL, a backup taken from PostgreSQL restores onto SQLite, with equal digests at
//! every step and the same search answers; incremental generations from PostgreSQL; a
//! restore refuses a store that is not empty; `check_store` over the backend-neutral
//! reader. The PostgreSQL tests skip (say SKIPPED) where PostgreSQL is not installed, and
//! fail under CI=true; the store-generic paths are also run on SQLite alone.

use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tsunagu_backup::{
    backup, backup_store, digest_dir, digest_store, restore, restore_into_store, verify, BackupError, Identity,
    StoreDigest,
};
use tsunagu_interaction::{check_store, CheckOptions, Interactions, NoCheck, RequestContext, SearchParams};
use tsunagu_store::{SqliteStore, Store, SyncMode};

fn fhir(store: Arc<dyn Store>) -> Interactions {
    Interactions::new(store, Arc::new(NoCheck), Default::default())
}

fn sqlite(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir, SyncMode::Normal).unwrap())
}

fn ctx() -> RequestContext {
    RequestContext::new("http://x")
}

fn put(f: &Interactions, v: Value) {
    let (ty, id) = (v["resourceType"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string());
    f.update(&ty, &id, v, None, &ctx()).unwrap();
}

fn patient(i: usize, gender: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": format!("p{i}"), "gender": gender,
           "name": [{"family": family, "given": [format!("Given{i}")]}],
           "birthDate": format!("19{:02}-0{}-1{}", 40 + i % 60, 1 + i % 9, i % 10),
           "identifier": [{"system": "urn:mrn", "value": format!("MRN-{i}")}]})
}

fn observation(i: usize, value: f64) -> Value {
    json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
           "subject": {"reference": format!("Patient/p{}", i % 40)},
           "code": {"coding": [{"system": "http://loinc.org", "code": if i.is_multiple_of(2) { "718-7" } else { "8480-6" }}]},
           "effectiveDateTime": format!("2024-0{}-1{}", 1 + i % 9, i % 10),
           "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}})
}

/// About 300 versions: creates, updates (some twice), deletes, a recreate after delete.
fn fill(f: &Interactions) {
    for i in 0..100 {
        put(f, patient(i, if i % 2 == 0 { "female" } else { "male" }, if i % 3 == 0 { "Smith" } else { "Tanaka" }));
    }
    for i in 0..120 {
        put(f, observation(i, 10.0 + i as f64 / 10.0));
    }
    for i in (0..100).step_by(3) {
        put(f, patient(i, "other", "Suzuki"));
    }
    for i in (0..120).step_by(4) {
        put(f, observation(i, 99.5));
    }
    for i in (0..100).step_by(9) {
        put(f, patient(i, "unknown", "Sato"));
    }
    for i in (5..100).step_by(10) {
        f.delete("Patient", &format!("p{i}"), None, &ctx()).unwrap();
    }
    for i in (1..120).step_by(11) {
        f.delete("Observation", &format!("o{i}"), None, &ctx()).unwrap();
    }
    // Recreated after its deletion.
    put(f, patient(15, "female", "Again"));
}

const QUERIES: &[(&str, &str)] = &[
    ("Patient", "gender=female"),
    ("Patient", "gender=male"),
    ("Patient", "gender=other"),
    ("Patient", "family=Tanaka"),
    ("Patient", "name=suzuki"),
    ("Patient", "identifier=urn:mrn|MRN-15"),
    ("Patient", "birthdate=ge1970-01-01"),
    ("Patient", "_id=p5,p6,p15"),
    ("Patient", ""),
    ("Observation", "subject=Patient/p3"),
    ("Observation", "code=http://loinc.org|718-7"),
    ("Observation", "value-quantity=gt50"),
    ("Observation", "date=lt2024-05-01"),
    ("Observation", "patient.gender=male"),
    ("Observation", ""),
];

/// The ids each query finds (all pages), and each's total.
fn answers(f: &Interactions) -> Vec<(String, u64, Vec<String>)> {
    QUERIES
        .iter()
        .map(|(ty, q)| {
            let query = if q.is_empty() {
                "_count=1000&_total=accurate".to_string()
            } else {
                format!("{q}&_count=1000&_total=accurate")
            };
            let b = f.search(Some(ty), &SearchParams::parse(&query), &ctx()).unwrap();
            let mut ids: Vec<String> = b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            (format!("{ty}?{q}"), b["total"].as_u64().unwrap_or(u64::MAX), ids)
        })
        .collect()
}

fn clean_check(store: &dyn Store, versions: u64) {
    let report = check_store(store, &CheckOptions::default()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.versions_read, versions);
    assert!(!report.index_compared);
}

struct Source {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    digest: StoreDigest,
    index_sha256: String,
    answers: Vec<(String, u64, Vec<String>)>,
}

fn sqlite_source() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let f = fhir(sqlite(&path));
    fill(&f);
    let answers = answers(&f);
    drop(f);
    let (digest, index_sha256) = digest_dir(&path).unwrap();
    assert!(digest.versions >= 300, "{} versions", digest.versions);
    assert!(digest.resources > digest.live_resources);
    // The queries have answers worth comparing: all but the single-id ones find several.
    for (q, total, ids) in &answers {
        assert_eq!(*total, ids.len() as u64, "{q}");
        assert!(!ids.is_empty(), "{q} finds nothing");
    }
    assert!(answers.iter().filter(|(_, _, ids)| ids.len() >= 5).count() >= 10, "{answers:?}");
    Source { _dir: dir, path, digest, index_sha256, answers }
}

#[test]
fn sqlite_to_postgres_and_back() {
    let Some(pg) = tsunagu_store_postgres::throwaway::test_store() else { return };
    let pg: Arc<dyn Store> = pg;
    let src = sqlite_source();
    let work = tempfile::tempdir().unwrap();
    let identity = Identity::generate();
    let recipient = identity.to_public();

    // SQLite → backup → PostgreSQL.
    let from_sqlite = work.path().join("from-sqlite");
    let created = backup(&src.path, &from_sqlite, &recipient).unwrap();
    assert_eq!(created.manifest.stats.versions, src.digest.versions);
    let r = restore_into_store(&from_sqlite, None, &identity, pg.clone(), Some(work.path())).unwrap();
    assert_eq!(r.digest, src.digest);
    assert!(!r.indexes_compared && !r.indexes_identical);
    assert_eq!(digest_store(pg.as_ref()).unwrap(), src.digest);
    let on_pg = fhir(pg.clone());
    assert_eq!(answers(&on_pg), src.answers);
    clean_check(pg.as_ref(), src.digest.versions);

    // Not into a store that holds versions.
    let again = restore_into_store(&from_sqlite, None, &identity, pg.clone(), Some(work.path()));
    assert!(matches!(again, Err(BackupError::Usage(ref m)) if m.contains("not empty")), "{again:?}");
    assert_eq!(digest_store(pg.as_ref()).unwrap(), src.digest);

    // PostgreSQL → backup → SQLite.
    let from_pg = work.path().join("from-pg");
    let created = backup_store(pg.as_ref(), &from_pg, &recipient).unwrap();
    assert_eq!(created.manifest.stats.versions, src.digest.versions);
    assert_eq!(created.manifest.stats.live_resources, src.digest.live_resources);
    assert!(verify(&from_pg, Some(&created.manifest_sha256)).unwrap().problems.is_empty());
    let back = work.path().join("back");
    let r = restore(&from_pg, None, &identity, &back).unwrap();
    assert_eq!(r.digest, src.digest);
    assert!(!r.indexes_compared && !r.indexes_identical, "a PostgreSQL backup has no index digest");
    let (digest, index_sha256) = digest_dir(&back).unwrap();
    assert_eq!(digest, src.digest);
    // Rebuilt twice over, through PostgreSQL, the SQLite indexes are the source's.
    assert_eq!(index_sha256, src.index_sha256);
    assert_eq!(answers(&fhir(sqlite(&back))), src.answers);

    // Incremental generations from PostgreSQL: a delta catalog, restored onto a second
    // PostgreSQL store.
    put(&on_pg, patient(500, "female", "Later"));
    put(&on_pg, patient(3, "male", "Changed"));
    on_pg.delete("Observation", "o2", None, &ctx()).unwrap();
    let second = backup_store(pg.as_ref(), &from_pg, &recipient).unwrap();
    assert_eq!(second.manifest.catalogs.len(), 2, "a delta catalog on the first");
    assert_eq!(second.manifest.stats.versions, src.digest.versions + 3);
    assert_eq!(second.manifest.stats.new_blobs, 2);
    let now = digest_store(pg.as_ref()).unwrap();
    let Some(pg2) = tsunagu_store_postgres::throwaway::test_store() else { return };
    let pg2: Arc<dyn Store> = pg2;
    let r = restore_into_store(&from_pg, None, &identity, pg2.clone(), None).unwrap();
    assert_eq!(r.digest, now);
    assert_eq!(digest_store(pg2.as_ref()).unwrap(), now);
    assert_eq!(answers(&fhir(pg2.clone())), answers(&on_pg));
    // And the older generation still restores, onto SQLite.
    let first_gen = created.manifest.generation.clone();
    let older = work.path().join("older");
    let r = restore(&from_pg, Some(&first_gen), &identity, &older).unwrap();
    assert_eq!(r.digest, src.digest);

    // After a move to PostgreSQL, backups go on into the SQLite backup directory: the
    // restored store holds the same versions in the same order, so the new generation
    // is a delta on the SQLite one, and it restores onto SQLite with PostgreSQL's content.
    let moved = backup_store(pg.as_ref(), &from_sqlite, &recipient).unwrap();
    assert_eq!(moved.manifest.catalogs.len(), 2, "a delta on the SQLite generation");
    assert_eq!(moved.manifest.stats.new_blobs, 2, "bodies already in the SQLite packs are not written again");
    assert!(verify(&from_sqlite, Some(&moved.manifest_sha256)).unwrap().problems.is_empty());
    let home = work.path().join("home");
    let r = restore(&from_sqlite, None, &identity, &home).unwrap();
    assert_eq!(r.digest, now);
    assert!(!r.indexes_compared);
    assert_eq!(answers(&fhir(sqlite(&home))), answers(&on_pg));
}

/// The store-generic paths (`backup_store`, `restore_into_store`, `check_store`) on
/// SQLite alone: they run wherever PostgreSQL is missing too.
#[test]
fn store_paths_on_sqlite() {
    let src = sqlite_source();
    let work = tempfile::tempdir().unwrap();
    let identity = Identity::generate();
    let recipient = identity.to_public();

    let source_store = sqlite(&src.path);
    clean_check(source_store.as_ref(), src.digest.versions);
    assert_eq!(digest_store(source_store.as_ref()).unwrap(), src.digest);
    let dest = work.path().join("b");
    let created = backup_store(source_store.as_ref(), &dest, &recipient).unwrap();
    assert_eq!(created.manifest.stats.versions, src.digest.versions);
    drop(source_store);

    // The SQLite backup of the same data: same catalog digest, so either restores the same.
    let dest_dir = work.path().join("d");
    backup(&src.path, &dest_dir, &recipient).unwrap();

    for (i, dest) in [&dest, &dest_dir].into_iter().enumerate() {
        let target_dir = work.path().join(format!("t{i}"));
        let target = sqlite(&target_dir);
        let r = restore_into_store(dest, None, &identity, target.clone(), None).unwrap();
        assert_eq!(r.digest, src.digest);
        assert_eq!(digest_store(target.as_ref()).unwrap(), src.digest);
        assert_eq!(answers(&fhir(target.clone())), src.answers);
        let refused = restore_into_store(dest, None, &identity, target.clone(), None);
        assert!(matches!(refused, Err(BackupError::Usage(_))), "{refused:?}");
        drop(target);
        let (digest, index_sha256) = digest_dir(&target_dir).unwrap();
        assert_eq!(digest, src.digest);
        assert_eq!(index_sha256, src.index_sha256);
    }

    // A store backup restored as a data directory: digest proven, indexes not compared.
    let dir = work.path().join("restored");
    let r = restore(&dest, None, &identity, &dir).unwrap();
    assert_eq!(r.digest, src.digest);
    assert!(!r.indexes_compared);
    // A SQLite backup still compares them.
    let dir = work.path().join("restored-sqlite");
    let r = restore(&dest_dir, None, &identity, &dir).unwrap();
    assert!(r.indexes_compared && r.indexes_identical);
}

/// `check_store` finds a body that is not what its row says, on the backend-neutral path.
#[test]
fn check_store_reports_damaged_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path());
    let f = fhir(store.clone());
    put(&f, patient(1, "female", "Smith"));
    put(&f, patient(2, "male", "Tanaka"));
    // A version whose body names another id, written below the interaction layer.
    store
        .write(&mut |txn| {
            txn.put(&tsunagu_store::NewVersion {
                resource_type: "Patient",
                id: "p2",
                version: 2,
                last_updated_ms: 4_000_000_000_000,
                method: tsunagu_store::Method::Put,
                body: Some(br#"{"resourceType":"Patient","id":"p9","meta":{"versionId":"2"}}"#),
                index: &[],
            })
        })
        .unwrap();
    let report = check_store(store.as_ref(), &CheckOptions::default()).unwrap();
    assert_eq!(report.versions_read, 3);
    assert_eq!(report.current_resources, 2);
    assert_eq!(report.total(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].reference.as_deref(), Some("Patient/p2/_history/2"));
}
