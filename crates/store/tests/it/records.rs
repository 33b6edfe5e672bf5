//! Index records: a superseded or deleted version's index rows are removed by the keys its
//! record lists, `_sort` reads values from records, and a database written before records
//! existed gains them when opened.

use tsunagu_store::{
    IndexEntry, IndexKind, IndexValue, Method, NewVersion, SearchQuery, Snapshot, SortKey, SortParam, SqliteStore,
    Store, SyncMode,
};

fn entry(param: &str, value: IndexValue) -> IndexEntry {
    IndexEntry { param: param.into(), value }
}

/// One value of every kind, varied by `n`, including a wide date (two tables), a literal
/// reference (its url is rebuilt from type and id), a composite and full text.
fn entries(n: i64) -> Vec<IndexEntry> {
    let text = |s: String| s;
    vec![
        entry(
            "code",
            IndexValue::Token { system: Some("http://loinc.org".into()), code: format!("c{n}"), display: None },
        ),
        entry(
            "code",
            IndexValue::Token { system: Some("http://loinc.org".into()), code: "shared".into(), display: None },
        ),
        entry("name", IndexValue::String { norm: format!("やまだ{n}"), exact: text(format!("山田{n}")) }),
        entry("date", IndexValue::Date { lo: n * 1000, hi: n * 1000 + 1 }),
        entry("period", IndexValue::Date { lo: 0, hi: i64::MAX }),
        entry("length", IndexValue::Number { value: n as f64 / 3.0 }),
        entry("value", IndexValue::Quantity { system: None, code: Some("mg".into()), value: -(n as f64) }),
        entry(
            "subject",
            IndexValue::Reference {
                target_type: Some("Patient".into()),
                target_id: Some("p1".into()),
                url: "Patient/p1".into(),
            },
        ),
        entry("source", IndexValue::Reference { target_type: None, target_id: None, url: format!("urn:x:{n}") }),
        entry("url", IndexValue::Uri { value: format!("http://example.org/{n}") }),
        entry(
            "code-value-quantity",
            IndexValue::Composite {
                system: None,
                code: "bp".into(),
                second: Box::new(IndexValue::Quantity { system: None, code: None, value: n as f64 }),
            },
        ),
        entry("_content", IndexValue::FullText { tokens: format!("word{n}") }),
    ]
}

fn put(store: &SqliteStore, id: &str, version: u64, index: &[IndexEntry], deleted: bool) {
    let body = format!(r#"{{"resourceType":"Observation","id":"{id}"}}"#);
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: "Observation",
                id,
                version,
                last_updated_ms: 1,
                method: if deleted { Method::Delete } else { Method::Put },
                body: (!deleted).then_some(body.as_bytes()),
                index,
            })
        })
        .unwrap();
}

fn problems(dir: &std::path::Path) -> Vec<String> {
    Snapshot::open(dir).unwrap().consistency_check().unwrap()
}

fn sorted_ids(store: &SqliteStore, param: &str, kind: IndexKind, descending: bool) -> Vec<String> {
    let q = SearchQuery {
        resource_type: Some("Observation".into()),
        sort: vec![SortKey { param: SortParam::Index { param: param.into(), kind }, descending }],
        count: 10,
        ..Default::default()
    };
    store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect()
}

#[test]
fn updates_and_deletes_leave_no_rows_of_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        put(&store, id, 1, &entries(i as i64), false);
    }
    put(&store, "a", 2, &entries(7), false);
    put(&store, "b", 2, &[], false);
    put(&store, "c", 2, &[], true);
    assert_eq!(problems(dir.path()), Vec::<String>::new());
    // The rows of version 1 of `a` are gone, those of version 2 are there.
    let ids = |code: &str| {
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![tsunagu_store::Clause {
                any: vec![tsunagu_store::Condition::Index {
                    param: "code".into(),
                    test: tsunagu_store::Test::Token {
                        system: tsunagu_store::SystemMatch::Any,
                        code: Some(code.into()),
                    },
                    negate: false,
                }],
            }],
            count: 10,
            ..Default::default()
        };
        store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect::<Vec<_>>()
    };
    assert_eq!(ids("c0"), Vec::<String>::new());
    assert_eq!(ids("c7"), ["a"]);
    assert_eq!(ids("shared"), ["a"]);
}

#[test]
fn sort_values_come_from_records_as_min_and_max() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    for (n, id) in [(2, "two"), (1, "one"), (3, "three")] {
        put(&store, id, 1, &entries(n), false);
    }
    put(&store, "none", 1, &[], false);
    assert_eq!(sorted_ids(&store, "date", IndexKind::Date, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(&store, "date", IndexKind::Date, true), ["three", "two", "one", "none"]);
    // Ascending takes each resource's smallest code ("c1" < "shared"), descending its largest.
    assert_eq!(sorted_ids(&store, "code", IndexKind::Token, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(&store, "code", IndexKind::Token, true), ["three", "one", "two", "none"]);
    assert_eq!(sorted_ids(&store, "value", IndexKind::Quantity, false), ["three", "two", "one", "none"]);
    assert_eq!(sorted_ids(&store, "length", IndexKind::Number, true), ["three", "two", "one", "none"]);
    assert_eq!(sorted_ids(&store, "source", IndexKind::Reference, false), ["one", "two", "three", "none"]);
}

/// A quantity no resource has a value of, sorted on first or after another key, by the walk
/// and by the general plan: every match in write order (the walk has no unit to merge; it
/// once built a statement of no arms, a syntax error).
#[test]
fn a_quantity_without_values_sorts_every_match_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    for (n, id) in [(2, "two"), (1, "one"), (3, "three")] {
        let code = entry("status", IndexValue::Token { system: None, code: "final".into(), display: None });
        put(&store, id, 1, &[code, entry("date", IndexValue::Date { lo: n * 1000, hi: n * 1000 + 1 })], false);
    }
    let key =
        |param: &str, kind, descending| SortKey { param: SortParam::Index { param: param.into(), kind }, descending };
    for (sort, want) in [
        (vec![key("value", IndexKind::Quantity, false)], ["two", "one", "three"]),
        (vec![key("value", IndexKind::Quantity, true)], ["three", "one", "two"]),
        (
            vec![key("status", IndexKind::Token, false), key("value", IndexKind::Quantity, false)],
            ["two", "one", "three"],
        ),
        (
            vec![
                key("status", IndexKind::Token, false),
                key("value", IndexKind::Quantity, true),
                key("date", IndexKind::Date, false),
            ],
            ["one", "two", "three"],
        ),
        // A first key without values still gives the ties its direction when a later key
        // without values is left out.
        (
            vec![
                key("value", IndexKind::Quantity, true),
                key("status", IndexKind::Token, false),
                key("length", IndexKind::Quantity, false),
            ],
            ["three", "one", "two"],
        ),
    ] {
        // The walk tried at once, and the general plan (which leaves the key's term out).
        for walk in [Some(0), None] {
            store.set_sort_walk(walk);
            let q = SearchQuery {
                resource_type: Some("Observation".into()),
                sort: sort.clone(),
                count: 10,
                ..Default::default()
            };
            let got: Vec<String> = store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect();
            assert_eq!(got, want, "{sort:?}, walk from {walk:?}");
        }
    }
}

#[test]
fn a_database_without_records_gains_them_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
        for (i, id) in ["a", "b"].iter().enumerate() {
            put(&store, id, 1, &entries(i as i64), false);
        }
    }
    // The layout before records: no idx_record, an index on `seq` in every index table.
    let c = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    c.execute_batch("DROP TABLE idx_record").unwrap();
    for t in ["token", "string", "date_wide", "number", "quantity", "reference", "uri", "composite"] {
        c.execute_batch(&format!("CREATE INDEX idx_{t}_seq ON idx_{t}(seq)")).unwrap();
    }
    drop(c);
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    put(&store, "a", 2, &entries(5), false);
    put(&store, "b", 2, &[], true);
    assert_eq!(problems(dir.path()), Vec::<String>::new());
    assert_eq!(sorted_ids(&store, "code", IndexKind::Token, false), ["a"]);
    let c = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    let seq_indexes: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_seq' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seq_indexes, ["idx_date_seq"]);
}

/// `idx_date_multi` counts, per type and date parameter, the current versions with more
/// than one distinct value (the sort walk starts at a date bound only where it has none):
/// kept on writes, updates and deletes, and rebuilt the same for a database without it.
#[test]
fn resources_with_several_values_of_a_date_parameter_are_counted() {
    let date = |param: &str, lo: i64| entry(param, IndexValue::Date { lo, hi: lo + 1 });
    let two = |n: i64| vec![date("date", n), date("date", n + 10), date("date", n + 10), date("issued", n)];
    // The same value twice is one index row.
    let one = |n: i64| vec![date("date", n), date("date", n), date("issued", n)];
    let counts = |dir: &std::path::Path| -> Vec<(String, String, i64)> {
        let c = rusqlite::Connection::open(dir.join("tsunagu.sqlite")).unwrap();
        let mut stmt = c.prepare("SELECT type, param, n FROM idx_date_multi ORDER BY type, param").unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let obs = |n: i64| vec![("Observation".to_string(), "date".to_string(), n)];
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
        put(&store, "a", 1, &two(0), false);
        assert_eq!(counts(dir.path()), obs(1));
        put(&store, "b", 1, &two(100), false);
        put(&store, "c", 1, &one(5), false);
        assert_eq!(counts(dir.path()), obs(2));
        put(&store, "a", 2, &one(0), false);
        assert_eq!(counts(dir.path()), obs(1));
        put(&store, "b", 2, &[], true);
        assert_eq!(counts(dir.path()), vec![]);
        put(&store, "d", 1, &two(7), false);
        put(&store, "e", 1, &two(9), false);
        put(&store, "e", 2, &two(11), false);
        assert_eq!(counts(dir.path()), obs(2));
    }
    let c = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    c.execute_batch("DROP TABLE idx_date_multi").unwrap();
    drop(c);
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    assert_eq!(counts(dir.path()), obs(2));
    put(&store, "d", 2, &[], true);
    assert_eq!(counts(dir.path()), obs(1));
    assert_eq!(problems(dir.path()), Vec::<String>::new());
}

/// `code:text=prefix` over the Observations of `store`, their ids in write order.
fn text_matches(store: &SqliteStore, text: &str) -> Vec<String> {
    let q = SearchQuery {
        resource_type: Some("Observation".into()),
        clauses: vec![tsunagu_store::Clause {
            any: vec![tsunagu_store::Condition::Index {
                param: "code".into(),
                test: tsunagu_store::Test::TokenText(text.into()),
                negate: false,
            }],
        }],
        count: 10,
        ..Default::default()
    };
    store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect()
}

fn coded(code: &str, display: &str) -> Vec<IndexEntry> {
    let token =
        IndexValue::Token { system: Some("http://loinc.org".into()), code: code.into(), display: Some(display.into()) };
    vec![entry("code", token)]
}

#[test]
fn a_database_without_the_displays_table_gains_it_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
        put(&store, "a", 1, &coded("2339-0", "glucose"), false);
        put(&store, "b", 1, &coded("8302-2", "body height"), false);
    }
    let c = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    c.execute_batch("DROP TABLE idx_token_text").unwrap();
    drop(c);
    let store = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    assert_eq!(text_matches(&store, "body"), ["b"]);
    assert_eq!(problems(dir.path()), Vec::<String>::new());
    // A display the table lost is reported by the consistency check.
    let c = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    c.execute_batch("DELETE FROM idx_token_text WHERE display = 'glucose'").unwrap();
    drop(c);
    assert_eq!(problems(dir.path()), ["1 rows of idx_token whose display idx_token_text does not hold"]);
}
