//! `put_new` for imports: per-version `put`, `INSERT … unnest` batches and binary `COPY`
//! batches store the same thing (compared with each other and with SQLite); the figures
//! printed compare their speed. `TSUNAGU_IMPORT_N` sets the number of resources (2,000).

use std::time::Instant;

use tsunagu_store::{
    Clause, Condition, IndexEntry, IndexKind, IndexValue, Method, NewVersion, SearchQuery, SortKey, SortParam,
    SqliteStore, Store, SyncMode, SystemMatch, Test,
};

fn entries(n: usize) -> Vec<IndexEntry> {
    let e = |param: &str, value| IndexEntry { param: param.into(), value };
    vec![
        e(
            "code",
            IndexValue::Token {
                system: Some("http://loinc.org".into()),
                code: format!("c{}", n % 50),
                display: Some("Blood pressure".into()),
            },
        ),
        e("identifier", IndexValue::Token { system: Some("urn:x".into()), code: format!("id{n}"), display: None }),
        e("name", IndexValue::String { norm: format!("やまだ{}", n % 300), exact: format!("山田{}", n % 300) }),
        e("date", IndexValue::Date { lo: n as i64 * 1000, hi: n as i64 * 1000 + 86_400_000 * (n as i64 % 3) }),
        e("value", IndexValue::Quantity { system: None, code: Some("mg".into()), value: (n % 97) as f64 }),
        e(
            "subject",
            IndexValue::Reference {
                target_type: Some("Patient".into()),
                target_id: Some(format!("p{}", n % 100)),
                url: format!("Patient/p{}", n % 100),
            },
        ),
        e("url", IndexValue::Uri { value: format!("http://example.org/{}", n % 10) }),
        e(
            "code-value",
            IndexValue::Composite {
                system: None,
                code: "bp".into(),
                second: Box::new(IndexValue::Number { value: n as f64 }),
            },
        ),
        e("_text", IndexValue::FullText { tokens: format!("糖尿 尿病 病 word{}", n % 20) }),
    ]
}

struct Data {
    ids: Vec<String>,
    bodies: Vec<String>,
    index: Vec<Vec<IndexEntry>>,
}

impl Data {
    fn new(n: usize) -> Data {
        let ids: Vec<String> = (0..n).map(|i| format!("o{i}")).collect();
        let bodies = ids
            .iter()
            .map(|id| format!(r#"{{"resourceType":"Observation","id":"{id}","pad":"{}"}}"#, "x".repeat(400)))
            .collect();
        Data { ids, bodies, index: (0..n).map(entries).collect() }
    }

    fn versions(&self) -> Vec<NewVersion<'_>> {
        (0..self.ids.len())
            .map(|i| NewVersion {
                resource_type: "Observation",
                id: &self.ids[i],
                version: 1,
                last_updated_ms: i as i64,
                method: Method::Post,
                body: Some(self.bodies[i].as_bytes()),
                index: &self.index[i],
            })
            .collect()
    }
}

/// Seconds to write everything with `batch` versions per transaction.
fn load(store: &dyn Store, versions: &[NewVersion<'_>], batch: usize, one_by_one: bool) -> f64 {
    let start = Instant::now();
    for chunk in versions.chunks(batch) {
        store
            .write(&mut |txn| {
                if one_by_one {
                    chunk.iter().try_for_each(|v| txn.put(v))
                } else {
                    txn.put_new(chunk)
                }
            })
            .unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn queries() -> Vec<SearchQuery> {
    let q = |conds: Vec<Condition>| SearchQuery {
        resource_type: Some("Observation".into()),
        clauses: conds.into_iter().map(|c| Clause { any: vec![c] }).collect(),
        count: 50,
        total: true,
        ..Default::default()
    };
    let index = |param: &str, test| Condition::Index { param: param.into(), test, negate: false };
    let mut sorted = q(vec![index("code", Test::Token { system: SystemMatch::Any, code: Some("c7".into()) })]);
    sorted.sort =
        vec![SortKey { param: SortParam::Index { param: "name".into(), kind: IndexKind::String }, descending: true }];
    vec![
        q(vec![]),
        q(vec![index(
            "identifier",
            Test::Token { system: SystemMatch::Is("urn:x".into()), code: Some("id77".into()) },
        )]),
        q(vec![index(
            "subject",
            Test::Reference { target_type: Some("Patient".into()), target_id: Some("p5".into()), url: None },
        )]),
        q(vec![index("name", Test::StringStarts("やまだ1".into()))]),
        q(vec![Condition::FullText {
            narrative_only: true,
            query: "((\"糖尿 尿病\")) AND ((\"word3\"))".into(),
            negate: false,
        }]),
        q(vec![Condition::DateWindow { param: "date".into(), lo: 100_000, hi: 200_000 }]),
        sorted,
    ]
}

/// Per query: the page's ids and `seq`s, and the total.
type Answer = (Vec<(String, i64)>, Option<u64>);

fn answers(store: &dyn Store) -> Vec<Answer> {
    queries()
        .iter()
        .map(|q| {
            let page = store.search(q).unwrap();
            (page.resources.into_iter().map(|v| (v.id, v.seq)).collect(), page.total)
        })
        .collect()
}

#[test]
fn imports_by_put_unnest_and_copy_store_the_same() {
    let n: usize = std::env::var("TSUNAGU_IMPORT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let Some(cluster) = tsunagu_store_postgres::throwaway::shared() else { return };
    let data = Data::new(n);
    let versions = data.versions();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    let open = || tsunagu_store_postgres::PostgresStore::open(&cluster.fresh_config()).unwrap();
    let (by_put, by_unnest, by_copy) = (open(), open(), open());
    let t_sqlite = load(&sqlite, &versions, 500, false);
    let t_put = load(&by_put, &versions, 500, true);
    let t_unnest = load(&by_unnest, &versions, 32, false);
    let t_copy = load(&by_copy, &versions, 500, false);
    let rate = |t: f64| n as f64 / t;
    eprintln!(
        "import of {n} resources (9 index entries each): SQLite put_new {:.0}/s; PostgreSQL put {:.0}/s, \
         put_new by INSERT unnest (batches of 32) {:.0}/s, put_new by binary COPY (batches of 500) {:.0}/s",
        rate(t_sqlite),
        rate(t_put),
        rate(t_unnest),
        rate(t_copy)
    );
    // Single writes, one version per transaction (a server's create), of 300 more.
    let ids: Vec<String> = (0..300).map(|i| format!("single{i}")).collect();
    let single: Vec<NewVersion<'_>> = versions.iter().zip(&ids).map(|(v, id)| NewVersion { id, ..v.clone() }).collect();
    let t_sqlite_single = load(&sqlite, &single, 1, true);
    let t_single = load(&by_put, &single, 1, true);
    load(&by_unnest, &single, 1, true);
    load(&by_copy, &single, 1, true);
    eprintln!(
        "single writes (one put per transaction): SQLite {:.0}/s, PostgreSQL {:.0}/s",
        single.len() as f64 / t_sqlite_single,
        single.len() as f64 / t_single
    );
    let expected = answers(&sqlite);
    assert!(expected.iter().all(|(_, total)| total.unwrap() > 0));
    for store in [&by_put, &by_unnest, &by_copy] {
        assert_eq!(answers(store), expected);
    }
}
