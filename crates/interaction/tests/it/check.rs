//! `check_data` finds damage in a data directory: a store written through `Interactions`
//! is clean, and each kind of damage injected into a copy of its SQLite file with plain
//! SQL (as an older version or a bug could have left it) is reported with its kind and
//! the version it concerns.

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tsunagu_interaction::{
    check_data, CheckOptions, CheckProblem, CheckReport, ContentIssue, Interactions, NoCheck, ProblemKind,
    ResourceCheck,
};

/// The store every test damages a copy of. Built once per test (it is small).
struct Fixture {
    dir: tempfile::TempDir,
    /// Patient "Alpha": one version.
    alpha: String,
    /// Patient "Beta", updated to "Bettina": versions 1 and 2.
    beta: String,
    /// Patient "Gamma", deleted: version 2 is the deletion.
    gamma: String,
    /// Patient "Delta" with gender unknown (what the test content check rejects).
    delta: String,
    /// Observation about Alpha.
    obs: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    let fhir = Interactions::new(Arc::new(store), Arc::new(NoCheck), Default::default());
    let patient = |family: &str, gender: &str| {
        json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Test"]}], "gender": gender,
               "birthDate": "1970-01-01",
               "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{family}</div>")}})
    };
    let id = |w: tsunagu_interaction::Written| w.version.id;
    let alpha = id(fhir
        .create("Patient", patient("Alpha", "female"), None, &tsunagu_interaction::RequestContext::new(""))
        .unwrap());
    let beta = id(fhir
        .create("Patient", patient("Beta", "male"), None, &tsunagu_interaction::RequestContext::new(""))
        .unwrap());
    let gamma = id(fhir
        .create("Patient", patient("Gamma", "male"), None, &tsunagu_interaction::RequestContext::new(""))
        .unwrap());
    let delta = id(fhir
        .create("Patient", patient("Delta", "unknown"), None, &tsunagu_interaction::RequestContext::new(""))
        .unwrap());
    let obs = id(fhir
        .create(
            "Observation",
            json!({"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                   "subject": {"reference": format!("Patient/{alpha}")},
                   "effectiveDateTime": "2024-05-01T10:00:00Z",
                   "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
            None,
            &tsunagu_interaction::RequestContext::new(""),
        )
        .unwrap());
    let mut bettina = patient("Bettina", "male");
    bettina["id"] = json!(beta);
    fhir.update("Patient", &beta, bettina, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
    fhir.delete("Patient", &gamma, None, &tsunagu_interaction::RequestContext::new("")).unwrap();
    drop(fhir);
    Fixture { dir, alpha, beta, gamma, delta, obs }
}

impl Fixture {
    /// A copy of the data directory to damage.
    fn copy(&self) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
        to
    }
}

fn sql(dir: &Path) -> Connection {
    Connection::open(dir.join("tsunagu.sqlite")).unwrap()
}

fn seq_of(c: &Connection, ty: &str, id: &str, version: u64) -> i64 {
    c.query_row(
        "SELECT seq FROM resource WHERE type = ?1 AND id = ?2 AND version = ?3",
        params![ty, id, version],
        |r| r.get(0),
    )
    .unwrap()
}

fn body_of(c: &Connection, ty: &str, id: &str, version: u64) -> Value {
    let body: Vec<u8> = c
        .query_row(
            "SELECT body FROM resource WHERE type = ?1 AND id = ?2 AND version = ?3",
            params![ty, id, version],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn set_body(c: &Connection, ty: &str, id: &str, version: u64, body: &[u8]) {
    let n = c
        .execute(
            "UPDATE resource SET body = ?4 WHERE type = ?1 AND id = ?2 AND version = ?3",
            params![ty, id, version, body],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn check(dir: &Path, content: Option<&dyn ResourceCheck>) -> CheckReport {
    let options = CheckOptions { content, max_problems: 10_000, max_index_rows: 1000, ..Default::default() };
    check_data(dir, &options).unwrap()
}

/// The (kind, reference) pairs of the problems other than index mismatches, sorted.
fn non_index(report: &CheckReport) -> Vec<(ProblemKind, Option<String>)> {
    let mut v: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind != ProblemKind::IndexMismatch)
        .map(|p| (p.kind, p.reference.clone()))
        .collect();
    v.sort();
    v
}

fn index_rows<'r>(report: &'r CheckReport, table: &str) -> Vec<&'r CheckProblem> {
    report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::IndexMismatch && p.reference.is_some())
        .filter(|p| p.message.starts_with(&format!("{table}: ")))
        .collect()
}

fn r(ty: &str, id: &str, version: u64) -> Option<String> {
    Some(format!("{ty}/{id}/_history/{version}"))
}

fn dump(report: &CheckReport) -> String {
    report.problems.iter().map(|p| format!("\n  {p}")).collect()
}

const STORED_NOT_EXTRACTED: &str = "stored row that a fresh extraction does not give";
const EXTRACTED_NOT_STORED: &str = "row a fresh extraction gives that is not stored";

/// Rejects Patients of unknown gender: a stand-in for the base-structure check.
struct NoUnknownGender;

impl ResourceCheck for NoUnknownGender {
    fn check(&self, resource: &Value) -> Vec<ContentIssue> {
        if resource["gender"] == "unknown" {
            vec![ContentIssue {
                severity: "error",
                code: "value",
                expression: Some("Patient.gender".into()),
                en: "gender may not be unknown here".into(),
                ja: "性別が不明です".into(),
            }]
        } else {
            Vec::new()
        }
    }
}

#[test]
fn a_store_written_through_interactions_is_clean() {
    let f = fixture();
    let report = check(f.dir.path(), None);
    assert!(report.is_clean(), "problems:{}", dump(&report));
    assert!(report.problems.is_empty());
    assert!(report.index_compared);
    // Alpha, Beta ×2, Gamma ×2, Delta, the Observation.
    assert_eq!(report.versions_read, 7);
    // Gamma is deleted.
    assert_eq!(report.current_resources, 4);
    assert!(report.index_rows_stored > 20, "{} index rows", report.index_rows_stored);
    assert_eq!(report.index_rows_stored, report.index_rows_expected);
    assert!(report.index_tables.iter().any(|t| t.table == "idx_fulltext" && t.rows_stored > 0));
    assert!(report.index_tables.iter().any(|t| t.table == "idx_record" && t.rows_stored == 4));
    assert!(report.index_tables.iter().all(|t| !t.differs()), "{:?}", report.index_tables);
}

#[test]
fn the_content_check_runs_only_when_given() {
    let f = fixture();
    assert!(check(f.dir.path(), None).is_clean());
    let report = check(f.dir.path(), Some(&NoUnknownGender));
    assert_eq!(non_index(&report), vec![(ProblemKind::ContentIssue, r("Patient", &f.delta, 1))], "{}", dump(&report));
    assert!(report.problems[0].message.contains("Patient.gender: gender may not be unknown"), "{}", dump(&report));
    assert_eq!(report.total(), 1);
}

#[test]
fn a_body_nested_140_deep_is_unreadable() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    // What an older version without a nesting limit could have stored: valid JSON with the
    // right identity, nested past serde_json's default recursion limit (128).
    let mut body = body_of(&c, "Patient", &f.alpha, 1);
    let mut nest = json!("deep");
    for _ in 0..140 {
        nest = json!([nest]);
    }
    body["extension"] = json!([{"url": "http://example.org/deep", "valueString": "x"}]);
    body["extension"][0]["extension"] = nest;
    let text = serde_json::to_string(&body).unwrap();
    set_body(&c, "Patient", &f.alpha, 1, text.as_bytes());
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![(ProblemKind::UnreadableBody, r("Patient", &f.alpha, 1))], "{}", dump(&report));
    let p = report.problems.iter().find(|p| p.kind == ProblemKind::UnreadableBody).unwrap();
    assert!(p.message.contains("recursion limit"), "{p}");
    // It is the current version: its stored index rows are no longer what extraction gives.
    let rows = index_rows(&report, "idx_string");
    assert!(!rows.is_empty(), "{}", dump(&report));
    assert!(rows.iter().all(|p| p.reference == r("Patient", &f.alpha, 1) && p.message.contains(STORED_NOT_EXTRACTED)));
}

#[test]
fn a_body_that_is_not_json_is_unreadable() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    // A superseded version: nothing else depends on it, so it is the one problem.
    set_body(&c, "Patient", &f.beta, 1, b"{\"resourceType\": \"Patient\", \"id\": tru");
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![(ProblemKind::UnreadableBody, r("Patient", &f.beta, 1))], "{}", dump(&report));
    assert_eq!(report.total(), 1, "{}", dump(&report));
    assert!(report.problems[0].message.contains("cannot be parsed as JSON"), "{}", dump(&report));
}

#[test]
fn a_body_xml_cannot_carry_is_unreadable() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    // What an older version could store from JSON: a control character XML has no way to
    // write, so the resource answered every `_format=xml` read with an error.
    let mut body = body_of(&c, "Patient", &f.beta, 1);
    body["name"] = json!([{"family": "a\u{1b}b"}]);
    set_body(&c, "Patient", &f.beta, 1, serde_json::to_string(&body).unwrap().as_bytes());
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![(ProblemKind::UnreadableBody, r("Patient", &f.beta, 1))], "{}", dump(&report));
    assert!(report.problems[0].message.contains("cannot be written as XML"), "{}", dump(&report));
}

#[test]
fn a_body_whose_identity_differs_from_its_row_is_reported() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    let mut body = body_of(&c, "Patient", &f.beta, 1);
    body["id"] = json!("someone-else");
    set_body(&c, "Patient", &f.beta, 1, body.to_string().as_bytes());
    let mut body = body_of(&c, "Observation", &f.obs, 1);
    body["meta"]["versionId"] = json!("7");
    set_body(&c, "Observation", &f.obs, 1, body.to_string().as_bytes());
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(
        non_index(&report),
        vec![
            (ProblemKind::IdentityMismatch, r("Observation", &f.obs, 1)),
            (ProblemKind::IdentityMismatch, r("Patient", &f.beta, 1)),
        ],
        "{}",
        dump(&report)
    );
    let msg = |reference| &report.problems.iter().find(|p| p.reference == reference).unwrap().message;
    assert!(msg(r("Patient", &f.beta, 1)).contains("id is \"someone-else\""), "{}", dump(&report));
    assert!(msg(r("Observation", &f.obs, 1)).contains("meta.versionId is \"7\""), "{}", dump(&report));
}

#[test]
fn a_deleted_index_row_is_reported() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    let seq = seq_of(&c, "Patient", &f.alpha, 1);
    // The row only: the version's idx_record still lists it, as a bug could leave it.
    let n =
        c.execute("DELETE FROM idx_string WHERE type = 'Patient' AND param = 'family' AND seq = ?1", [seq]).unwrap();
    assert_eq!(n, 1);
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![], "{}", dump(&report));
    let rows = index_rows(&report, "idx_string");
    assert_eq!(rows.len(), 1, "{}", dump(&report));
    assert_eq!(rows[0].reference, r("Patient", &f.alpha, 1));
    assert!(rows[0].message.contains(EXTRACTED_NOT_STORED), "{}", rows[0]);
    assert!(rows[0].message.contains("param=\"family\"") && rows[0].message.contains("\"alpha\""), "{}", rows[0]);
    assert_eq!(report.found.get(&ProblemKind::IndexMismatch), Some(&1));
    let differing: Vec<_> = report.index_tables.iter().filter(|t| t.differs()).collect();
    assert_eq!(differing.len(), 1, "{:?}", report.index_tables);
    assert_eq!(
        (differing[0].table.as_str(), differing[0].only_stored, differing[0].only_extracted),
        ("idx_string", 0, 1)
    );
    assert_eq!(differing[0].rows_stored + 1, differing[0].rows_extracted);
}

#[test]
fn an_added_index_row_is_reported() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    let seq = seq_of(&c, "Patient", &f.delta, 1);
    c.execute(
        "INSERT INTO idx_token (type, param, code, system, seq, display) VALUES ('Patient', 'gender', 'bogus', '', ?1, NULL)",
        [seq],
    )
    .unwrap();
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![], "{}", dump(&report));
    let rows = index_rows(&report, "idx_token");
    assert_eq!(rows.len(), 1, "{}", dump(&report));
    assert_eq!(rows[0].reference, r("Patient", &f.delta, 1));
    assert!(rows[0].message.contains(STORED_NOT_EXTRACTED) && rows[0].message.contains("\"bogus\""), "{}", rows[0]);
    assert_eq!(report.total(), 1, "{}", dump(&report));
}

#[test]
fn an_index_row_of_a_deleted_or_missing_version_is_reported() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    let gone = seq_of(&c, "Patient", &f.gamma, 1);
    c.execute("INSERT INTO idx_uri (type, param, value, seq) VALUES ('Patient', 'x', 'urn:x', ?1)", [gone]).unwrap();
    c.execute("INSERT INTO idx_uri (type, param, value, seq) VALUES ('Patient', 'x', 'urn:y', 999999)", []).unwrap();
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![(ProblemKind::Consistency, None)], "{}", dump(&report));
    assert!(report.problems[0].message.contains("2 rows of idx_uri"), "{}", dump(&report));
    let rows = index_rows(&report, "idx_uri");
    assert_eq!(rows.len(), 1, "{}", dump(&report));
    assert_eq!(rows[0].reference, r("Patient", &f.gamma, 1));
    let orphan = report.problems.iter().find(|p| p.message.contains("seq 999999: no such version")).unwrap();
    assert!(orphan.reference.is_none() && orphan.kind == ProblemKind::IndexMismatch, "{orphan}");
}

#[test]
fn a_body_changed_under_its_index_is_reported() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    // Beta's current version now says "Omega", but its index rows still say "Bettina".
    let mut body = body_of(&c, "Patient", &f.beta, 2);
    body["name"][0]["family"] = json!("Omega");
    set_body(&c, "Patient", &f.beta, 2, body.to_string().as_bytes());
    drop(c);

    let report = check(copy.path(), None);
    assert_eq!(non_index(&report), vec![], "{}", dump(&report));
    let rows = index_rows(&report, "idx_string");
    let beta = r("Patient", &f.beta, 2);
    assert!(rows.iter().all(|p| p.reference == beta), "{}", dump(&report));
    assert!(
        rows.iter().any(|p| p.message.contains(STORED_NOT_EXTRACTED) && p.message.contains("\"bettina\"")),
        "{}",
        dump(&report)
    );
    assert!(
        rows.iter().any(|p| p.message.contains(EXTRACTED_NOT_STORED) && p.message.contains("\"omega\"")),
        "{}",
        dump(&report)
    );
    // The version's record lists other rows now, too.
    assert!(!index_rows(&report, "idx_record").is_empty(), "{}", dump(&report));
}

#[test]
fn listing_is_capped_but_everything_is_counted() {
    let f = fixture();
    let copy = f.copy();
    let c = sql(copy.path());
    for id in [&f.alpha, &f.delta] {
        set_body(&c, "Patient", id, 1, b"garbage");
    }
    set_body(&c, "Patient", &f.beta, 1, b"garbage");
    drop(c);
    let options = CheckOptions { max_problems: 2, max_index_rows: 1, ..Default::default() };
    let report = check_data(copy.path(), &options).unwrap();
    assert_eq!(report.found.get(&ProblemKind::UnreadableBody), Some(&3));
    // Two listed; the index rows of the two current ones are counted, not listed.
    assert_eq!(report.problems.len(), 2, "{}", dump(&report));
    assert!(report.problems.iter().all(|p| p.kind == ProblemKind::UnreadableBody));
    let index: u64 = report.index_tables.iter().map(|t| t.only_stored + t.only_extracted).sum();
    assert!(index > 10);
    assert_eq!(report.found.get(&ProblemKind::IndexMismatch), Some(&index));
    assert_eq!(report.total(), 3 + index);
}
