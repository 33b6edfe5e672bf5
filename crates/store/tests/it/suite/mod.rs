//! The store's behaviour, generic over the backend: each test body takes a fresh, empty
//! [`Store`]. Included (`#[path]`) by this crate's `suite_sqlite.rs` and by
//! `tsunagu-store-postgres`'s tests, which run it on SQLite and on PostgreSQL alike; the
//! [`store_suite!`] macro makes one `#[test]` per body.
#![allow(dead_code)]

use tsunagu_store::{
    AuditEntry, AuditQuery, Clause, Condition, HistoryQuery, HistoryScope, IndexEntry, IndexKind, IndexValue, Method,
    NewVersion, RangeOp, SearchQuery, SortKey, SortParam, Store, StoreError, SystemMatch, Test,
};

/// One `#[test]` per body; `$fresh` gives `Option<(guard, Arc<dyn Store>)>` (`None`: skip).
#[macro_export]
macro_rules! store_suite {
    ($fresh:expr) => {
        $crate::store_suite!(@tests $fresh;
            updates_and_deletes_leave_no_rows_of_old_versions, sort_values_are_min_and_max,
            version_conflicts_and_rollbacks, many_versions_in_one_transaction, history_and_versions, live_walk, audit_chain_and_search,
            pinned_views_do_not_see_later_writes, settings, token_string_and_uri_searches,
            date_number_quantity_searches, references_chains_has_and_compartments, composite_and_missing,
            full_text, text_finds_every_display_of_a_code, paging_sorting_and_totals, sort_keys_without_values, timestamps_increase, replace_index_reindexes,
            put_new_writes_batches, long_strings, huge_texts, long_values_of_every_kind,
            long_values_sharing_a_head_sort_and_page, pages_are_bounded_in_bytes);
    };
    (@tests $fresh:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let Some((_guard, store)) = $fresh else { return };
                suite::$name(&*store);
            }
        )*
    };
}

pub fn entry(param: &str, value: IndexValue) -> IndexEntry {
    IndexEntry { param: param.into(), value }
}

pub fn token(param: &str, system: &str, code: &str, display: Option<&str>) -> IndexEntry {
    entry(
        param,
        IndexValue::Token {
            system: (!system.is_empty()).then(|| system.to_string()),
            code: code.into(),
            display: display.map(String::from),
        },
    )
}

pub fn string(param: &str, exact: &str) -> IndexEntry {
    entry(param, IndexValue::String { norm: exact.to_lowercase(), exact: exact.into() })
}

pub fn reference(param: &str, ty: &str, id: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::Reference { target_type: Some(ty.into()), target_id: Some(id.into()), url: format!("{ty}/{id}") },
    )
}

pub fn date(param: &str, lo: i64, hi: i64) -> IndexEntry {
    entry(param, IndexValue::Date { lo, hi })
}

pub fn put(store: &dyn Store, ty: &str, id: &str, version: u64, index: &[IndexEntry]) {
    put_at(store, ty, id, version, index, version as i64 * 1000);
}

pub fn put_at(store: &dyn Store, ty: &str, id: &str, version: u64, index: &[IndexEntry], at: i64) {
    let body = format!(r#"{{"resourceType":"{ty}","id":"{id}","v":{version}}}"#);
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: ty,
                id,
                version,
                last_updated_ms: at,
                method: if version == 1 { Method::Post } else { Method::Put },
                body: Some(body.as_bytes()),
                index,
            })
        })
        .unwrap();
}

pub fn delete(store: &dyn Store, ty: &str, id: &str, version: u64) {
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: ty,
                id,
                version,
                last_updated_ms: version as i64 * 1000,
                method: Method::Delete,
                body: None,
                index: &[],
            })
        })
        .unwrap();
}

pub fn q(ty: Option<&str>, conditions: Vec<Vec<Condition>>) -> SearchQuery {
    SearchQuery {
        resource_type: ty.map(String::from),
        clauses: conditions.into_iter().map(|any| Clause { any }).collect(),
        count: 100,
        ..Default::default()
    }
}

pub fn index(param: &str, test: Test) -> Condition {
    Condition::Index { param: param.into(), test, negate: false }
}

pub fn not(param: &str, test: Test) -> Condition {
    Condition::Index { param: param.into(), test, negate: true }
}

pub fn ids(store: &dyn Store, query: &SearchQuery) -> Vec<String> {
    store.search(query).unwrap().resources.into_iter().map(|v| v.id).collect()
}

/// Ids in write order, sorted for comparisons that do not care about order.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn tok(code: &str) -> Test {
    Test::Token { system: SystemMatch::Any, code: Some(code.into()) }
}

/// One value of every kind, varied by `n`.
pub fn entries(n: i64) -> Vec<IndexEntry> {
    vec![
        token("code", "http://loinc.org", &format!("c{n}"), None),
        token("code", "http://loinc.org", "shared", None),
        entry("name", IndexValue::String { norm: format!("やまだ{n}"), exact: format!("山田{n}") }),
        date("date", n * 1000, n * 1000 + 1),
        date("period", 0, i64::MAX),
        entry("length", IndexValue::Number { value: n as f64 / 3.0 }),
        entry("value", IndexValue::Quantity { system: None, code: Some("mg".into()), value: -(n as f64) }),
        reference("subject", "Patient", "p1"),
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

pub fn updates_and_deletes_leave_no_rows_of_old_versions(store: &dyn Store) {
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        put(store, "Observation", id, 1, &entries(i as i64));
    }
    put(store, "Observation", "a", 2, &entries(7));
    put(store, "Observation", "b", 2, &[]);
    delete(store, "Observation", "c", 2);
    let code = |c: &str| ids(store, &q(Some("Observation"), vec![vec![index("code", tok(c))]]));
    assert_eq!(code("c0"), Vec::<String>::new());
    assert_eq!(code("c7"), ["a"]);
    assert_eq!(code("shared"), ["a"]);
    let all = q(Some("Observation"), vec![]);
    assert_eq!(ids(store, &all), ["a", "b"]);
    let text = q(
        Some("Observation"),
        vec![vec![Condition::FullText { narrative_only: false, query: "((\"word7\"))".into(), negate: false }]],
    );
    assert_eq!(ids(store, &text), ["a"]);
    let old = q(
        Some("Observation"),
        vec![vec![Condition::FullText { narrative_only: false, query: "((\"word0\"))".into(), negate: false }]],
    );
    assert_eq!(ids(store, &old), Vec::<String>::new());
}

fn sorted_ids(store: &dyn Store, param: &str, kind: IndexKind, descending: bool) -> Vec<String> {
    let q = SearchQuery {
        resource_type: Some("Observation".into()),
        sort: vec![SortKey { param: SortParam::Index { param: param.into(), kind }, descending }],
        count: 10,
        ..Default::default()
    };
    ids(store, &q)
}

pub fn sort_values_are_min_and_max(store: &dyn Store) {
    for (n, id) in [(2, "two"), (1, "one"), (3, "three")] {
        put(store, "Observation", id, 1, &entries(n));
    }
    put(store, "Observation", "none", 1, &[]);
    assert_eq!(sorted_ids(store, "date", IndexKind::Date, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(store, "date", IndexKind::Date, true), ["three", "two", "one", "none"]);
    // Ascending takes each resource's smallest code ("c1" < "shared"), descending its largest.
    assert_eq!(sorted_ids(store, "code", IndexKind::Token, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(store, "code", IndexKind::Token, true), ["three", "one", "two", "none"]);
    assert_eq!(sorted_ids(store, "value", IndexKind::Quantity, false), ["three", "two", "one", "none"]);
    assert_eq!(sorted_ids(store, "length", IndexKind::Number, true), ["three", "two", "one", "none"]);
    assert_eq!(sorted_ids(store, "source", IndexKind::Reference, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(store, "name", IndexKind::String, true), ["three", "two", "one", "none"]);
    assert_eq!(sorted_ids(store, "url", IndexKind::Uri, false), ["one", "two", "three", "none"]);
    assert_eq!(sorted_ids(store, "code-value-quantity", IndexKind::Composite, true), ["three", "two", "one", "none"]);
}

pub fn version_conflicts_and_rollbacks(store: &dyn Store) {
    put(store, "Patient", "a", 1, &[]);
    let body = b"{}";
    let v = |version| NewVersion {
        resource_type: "Patient",
        id: "a",
        version,
        last_updated_ms: 1,
        method: Method::Put,
        body: Some(body),
        index: &[],
    };
    let again = store.write(&mut |txn| txn.put(&v(1)));
    assert!(matches!(again, Err(StoreError::VersionConflict(_))), "{again:?}");
    let batch = store.write(&mut |txn| txn.put_new(&[v(1)]));
    assert!(matches!(batch, Err(StoreError::VersionConflict(_))), "{batch:?}");
    // An error from the closure rolls back what it wrote.
    let aborted = store.write(&mut |txn| {
        txn.put(&v(2))?;
        txn.put(&NewVersion { id: "b", version: 1, ..v(1) })?;
        Err(StoreError::Aborted)
    });
    assert!(matches!(aborted, Err(StoreError::Aborted)));
    assert_eq!(store.read("Patient", "a").unwrap().unwrap().version, 1);
    assert!(store.read("Patient", "b").unwrap().is_none());
    // Inside a transaction, reads see its own writes.
    store
        .write(&mut |txn| {
            txn.put(&v(2))?;
            assert_eq!(txn.current("Patient", "a")?.unwrap().version, 2);
            assert_eq!(txn.search_ids(&q(Some("Patient"), vec![]))?, [("Patient".to_string(), "a".to_string())]);
            Ok(())
        })
        .unwrap();
    assert_eq!(store.read("Patient", "a").unwrap().unwrap().version, 2);
}

/// Several versions written in one transaction (a Bundle's entries): a search inside it
/// sees them, a second version written there replaces the first's index rows, and what
/// commits is what one write per transaction would have left.
pub fn many_versions_in_one_transaction(store: &dyn Store) {
    let body = |id: &str, n: i64| format!(r#"{{"resourceType":"Observation","id":"{id}","v":{n}}}"#);
    let bodies: Vec<String> = (0..40).map(|n| body(&format!("o{n}"), n)).collect();
    let indexes: Vec<Vec<IndexEntry>> = (0..40).map(entries).collect();
    let code = |txn: &mut dyn tsunagu_store::WriteTxn, c: &str| -> Vec<String> {
        let found = txn.search_ids(&q(Some("Observation"), vec![vec![index("code", tok(c))]])).unwrap();
        sorted(found.into_iter().map(|(_, id)| id).collect())
    };
    store
        .write(&mut |txn| {
            for n in 0..40 {
                txn.put(&NewVersion {
                    resource_type: "Observation",
                    id: &format!("o{n}"),
                    version: 1,
                    last_updated_ms: 1000 + n as i64,
                    method: Method::Post,
                    body: Some(bodies[n].as_bytes()),
                    index: &indexes[n],
                })?;
            }
            // A second version of o3 in the same transaction, then a delete of o4.
            let again = body("o3", 77);
            txn.put(&NewVersion {
                resource_type: "Observation",
                id: "o3",
                version: 2,
                last_updated_ms: 2000,
                method: Method::Put,
                body: Some(again.as_bytes()),
                index: &entries(77),
            })?;
            txn.put(&NewVersion {
                resource_type: "Observation",
                id: "o4",
                version: 2,
                last_updated_ms: 2001,
                method: Method::Delete,
                body: None,
                index: &[],
            })?;
            assert_eq!(code(txn, "c3"), Vec::<String>::new());
            assert_eq!(code(txn, "c77"), ["o3"]);
            assert_eq!(code(txn, "c4"), Vec::<String>::new());
            assert_eq!(code(txn, "c5"), ["o5"]);
            assert_eq!(code(txn, "shared").len(), 39);
            // At most `count` (a conditional interaction asks for two: none, one or several).
            let two = SearchQuery { count: 2, ..q(Some("Observation"), vec![vec![index("code", tok("shared"))]]) };
            assert_eq!(txn.search_ids(&two)?.len(), 2);
            Ok(())
        })
        .unwrap();
    let committed = |c: &str| sorted(ids(store, &q(Some("Observation"), vec![vec![index("code", tok(c))]])));
    assert_eq!(committed("c3"), Vec::<String>::new());
    assert_eq!(committed("c77"), ["o3"]);
    assert_eq!(committed("c4"), Vec::<String>::new());
    assert_eq!(committed("c39"), ["o39"]);
    assert_eq!(committed("shared").len(), 39);
    let text = |w: &str| {
        let q = q(
            Some("Observation"),
            vec![vec![Condition::FullText { narrative_only: false, query: format!("((\"{w}\"))"), negate: false }]],
        );
        ids(store, &q)
    };
    assert_eq!(text("word77"), ["o3"]);
    assert!(text("word3").is_empty() && text("word4").is_empty());
    assert_eq!(text("word12"), ["o12"]);
    // A rolled-back transaction leaves none of its index rows.
    let aborted = store.write(&mut |txn| {
        txn.put(&NewVersion {
            resource_type: "Observation",
            id: "gone",
            version: 1,
            last_updated_ms: 3000,
            method: Method::Post,
            body: Some(bodies[0].as_bytes()),
            index: &entries(500),
        })?;
        Err(StoreError::Aborted)
    });
    assert!(matches!(aborted, Err(StoreError::Aborted)));
    assert!(committed("c500").is_empty());
}

pub fn history_and_versions(store: &dyn Store) {
    put_at(store, "Patient", "a", 1, &[], 100);
    put_at(store, "Patient", "b", 1, &[], 200);
    put_at(store, "Patient", "a", 2, &[], 300);
    put_at(store, "Observation", "o", 1, &[], 400);
    delete(store, "Patient", "b", 2);
    let a2 = store.read("Patient", "a").unwrap().unwrap();
    assert_eq!((a2.version, a2.last_updated_ms, a2.method, a2.deleted), (2, 300, Method::Put, false));
    let b = store.read("Patient", "b").unwrap().unwrap();
    assert!(b.deleted && b.body.is_empty() && b.method == Method::Delete);
    assert_eq!(store.vread("Patient", "a", 1).unwrap().unwrap().last_updated_ms, 100);
    assert!(store.vread("Patient", "a", 3).unwrap().is_none());
    // Several at once: the newest version of each found, a deletion included, in any order.
    let key = |t: &str, id: &str| (t.to_string(), id.to_string());
    let keys = [key("Patient", "a"), key("Patient", "missing"), key("Patient", "b"), key("Observation", "a")];
    let (many, cut) = store.read_many(&keys, None).unwrap();
    let many: Vec<_> = many.into_iter().map(|v| (v.resource_type, v.id, v.version, v.deleted)).collect();
    assert_eq!(many, [("Patient".into(), "a".into(), 2, false), ("Patient".into(), "b".into(), 2, true)]);
    assert!(!cut);
    assert!(store.read_many(&[], None).unwrap().0.is_empty());
    let h = |scope: HistoryScope, since: Option<i64>, at: Option<i64>, before: Option<i64>| HistoryQuery {
        scope,
        since_ms: since,
        at: at.map(|ms| (ms, ms + 1)),
        before_seq: before,
        count: 10,
        max_bytes: None,
    };
    let versions = |q: &HistoryQuery| -> Vec<(String, u64)> {
        store.history(q).unwrap().versions.into_iter().map(|v| (v.id, v.version)).collect()
    };
    let s = |id: &str, v: u64| (id.to_string(), v);
    assert_eq!(
        versions(&h(HistoryScope::System, None, None, None)),
        [s("b", 2), s("o", 1), s("a", 2), s("b", 1), s("a", 1)]
    );
    assert_eq!(
        versions(&h(HistoryScope::Type("Patient".into()), Some(200), None, None)),
        [s("b", 2), s("a", 2), s("b", 1)]
    );
    assert_eq!(
        versions(&h(HistoryScope::Instance("Patient".into(), "a".into()), None, None, None)),
        [s("a", 2), s("a", 1)]
    );
    assert_eq!(versions(&h(HistoryScope::Type("Patient".into()), None, Some(250), None)), [s("b", 1), s("a", 1)]);
    let all = store.history(&h(HistoryScope::System, None, None, None)).unwrap().versions;
    let before = h(HistoryScope::System, None, None, Some(all[1].seq));
    assert_eq!(versions(&before), [s("a", 2), s("b", 1), s("a", 1)]);
    assert_eq!(store.history_count(&before).unwrap(), 5);
    assert_eq!(store.history_count(&h(HistoryScope::Type("Patient".into()), None, None, None)).unwrap(), 4);
}

pub fn live_walk(store: &dyn Store) {
    put(store, "Patient", "a", 1, &[]);
    put(store, "Patient", "b", 1, &[]);
    put(store, "Patient", "c", 1, &[]);
    put(store, "Patient", "a", 2, &[]);
    delete(store, "Patient", "b", 2);
    let walk: Vec<(String, u64)> = store.current_after(0, 10).unwrap().into_iter().map(|v| (v.id, v.version)).collect();
    assert_eq!(walk, [("c".to_string(), 1), ("a".to_string(), 2)]);
    let first = store.current_after(0, 1).unwrap();
    assert_eq!(store.count_current_after(0).unwrap(), 2);
    assert_eq!(store.count_current_after(first[0].seq).unwrap(), 1);
    assert_eq!(store.current_after(first[0].seq, 10).unwrap()[0].id, "a");
}

fn audit(id: &str, patient: &str, entities: &str, at: i64) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        recorded_ms: at,
        agent: "client-1".into(),
        patient: patient.into(),
        subtype: "read".into(),
        outcome: "0".into(),
        entities: entities.into(),
        body: format!(r#"{{"id":"{id}"}}"#).into_bytes(),
    }
}

pub fn audit_chain_and_search(store: &dyn Store) {
    store
        .append_audit(&[audit("e1", "Patient/p1", "Patient/p1/_history/1", 10), audit("e2", "", "Observation/o1", 20)])
        .unwrap();
    store
        .write(&mut |txn| txn.append_audit(&[audit("e3", "Patient/p1", "Patient/p1 Observation/o2/_history/3", 30)]))
        .unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.first_break, None);
    let chain = store.audit_chain(1, 10).unwrap();
    assert_eq!(chain.iter().map(|r| r.n).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(chain[0].prev, store.audit_chain(0, 1).unwrap()[0].hash);
    let search = |q: AuditQuery| {
        store.audit_search(&AuditQuery { count: 10, ..q }).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(search(AuditQuery { patient: Some("Patient/p1".into()), ..Default::default() }), ["e3", "e1"]);
    assert_eq!(search(AuditQuery { entity: Some("Patient/p1".into()), ..Default::default() }), ["e3", "e1"]);
    assert_eq!(search(AuditQuery { entity: Some("Observation/o2".into()), ..Default::default() }), ["e3"]);
    assert_eq!(search(AuditQuery { entity: Some("Observation/o".into()), ..Default::default() }), Vec::<String>::new());
    assert_eq!(search(AuditQuery { since_ms: Some(20), until_ms: Some(30), ..Default::default() }), ["e2"]);
    assert_eq!(search(AuditQuery { before_n: Some(3), ..Default::default() }), ["e2", "e1"]);
    assert_eq!(store.audit_search(&AuditQuery { count: 1, ..Default::default() }).unwrap().len(), 2);
}

pub fn pinned_views_do_not_see_later_writes(store: &dyn Store) {
    put_at(store, "Patient", "a", 1, &[token("gender", "", "male", None)], 100);
    let view = store.pinned().unwrap();
    put_at(store, "Patient", "a", 2, &[token("gender", "", "female", None)], 200);
    put_at(store, "Patient", "b", 1, &[], 300);
    assert_eq!(view.last_updated_ms(), 100);
    assert_eq!(view.read("Patient", "a").unwrap().unwrap().version, 1);
    assert!(view.read("Patient", "b").unwrap().is_none());
    let male = q(Some("Patient"), vec![vec![index("gender", tok("male"))]]);
    assert_eq!(view.search(&male).unwrap().resources.len(), 1);
    assert_eq!(ids(store, &male), Vec::<String>::new());
    let high = view.high_seq();
    // The view moves to another thread and still sees its moment.
    let later =
        std::thread::spawn(move || view.search(&q(Some("Patient"), vec![])).unwrap().resources.len()).join().unwrap();
    assert_eq!(later, 1);
    assert!(store.pinned().unwrap().high_seq() > high);
}

pub fn settings(store: &dyn Store) {
    store.write(&mut |txn| txn.set_setting("reindex.cursor", Some("12"))).unwrap();
    store.write(&mut |txn| txn.set_setting("reindex.cursor", Some("13"))).unwrap();
    let mut got = None;
    store
        .write(&mut |txn| {
            got = txn.get_setting("reindex.cursor")?;
            txn.set_setting("reindex.cursor", None)
        })
        .unwrap();
    assert_eq!(got.as_deref(), Some("13"));
    store
        .write(&mut |txn| {
            got = txn.get_setting("reindex.cursor")?;
            Ok(())
        })
        .unwrap();
    assert_eq!(got, None);
}

pub fn token_string_and_uri_searches(store: &dyn Store) {
    put(
        store,
        "Patient",
        "a",
        1,
        &[
            token("identifier", "urn:sys", "id1", None),
            token("gender", "", "male", None),
            token("code", "http://loinc.org", "1234", Some("Blood Pressure")),
            string("name", "Yamada Taro"),
            string("name", "山田 太郎"),
            entry("url", IndexValue::Uri { value: "http://example.org/fhir/a".into() }),
        ],
    );
    put(
        store,
        "Patient",
        "b",
        1,
        &[
            token("identifier", "urn:other", "id1", None),
            token("gender", "", "female", None),
            token("code", "http://snomed.info/sct", "1234", Some("blood sugar")),
            string("name", "Suzuki 100%_x"),
            entry("url", IndexValue::Uri { value: "http://example.org/fhir".into() }),
        ],
    );
    put(store, "Patient", "c", 1, &[token("gender", "", "male", None)]);
    let find = |conds: Vec<Vec<Condition>>| ids(store, &q(Some("Patient"), conds));
    let t = |system: SystemMatch, code: Option<&str>| Test::Token { system, code: code.map(String::from) };
    assert_eq!(find(vec![vec![index("identifier", t(SystemMatch::Is("urn:sys".into()), Some("id1")))]]), ["a"]);
    assert_eq!(find(vec![vec![index("identifier", t(SystemMatch::Any, Some("id1")))]]), ["a", "b"]);
    assert_eq!(find(vec![vec![index("identifier", t(SystemMatch::Is("urn:other".into()), None))]]), ["b"]);
    assert_eq!(find(vec![vec![index("gender", t(SystemMatch::Absent, Some("male")))]]), ["a", "c"]);
    assert_eq!(find(vec![vec![index("identifier", t(SystemMatch::Absent, Some("id1")))]]), Vec::<String>::new());
    assert_eq!(find(vec![vec![not("gender", tok("male"))]]), ["b"]);
    assert_eq!(find(vec![vec![index("gender", tok("female")), index("identifier", tok("id1"))]]), ["a", "b"]);
    assert_eq!(find(vec![vec![index("gender", tok("male"))], vec![index("identifier", tok("id1"))]]), ["a"]);
    // Many values of one parameter (as many as `max_values_per_parameter` allows), and
    // alternatives on different index tables.
    let mut many: Vec<Condition> = (0..999).map(|i| index("gender", tok(&format!("x{i}")))).collect();
    many.push(index("gender", tok("female")));
    assert_eq!(find(vec![many.clone()]), ["b"]);
    assert_eq!(find(vec![many, vec![index("identifier", tok("id1"))]]), ["b"]);
    let names =
        vec![index("name", Test::StringStarts("suzuki".into())), index("name", Test::StringStarts("山".into()))];
    assert_eq!(find(vec![names]), ["a", "b"]);
    assert_eq!(
        find(vec![vec![index("gender", tok("female")), index("name", Test::StringStarts("yamada".into()))]]),
        ["a", "b"]
    );
    // :text is a case-insensitive (ASCII) prefix of the display.
    assert_eq!(find(vec![vec![index("code", Test::TokenText("blood".into()))]]), ["a", "b"]);
    assert_eq!(find(vec![vec![index("code", Test::TokenText("BLOOD P".into()))]]), ["a"]);
    let pairs = |p: &[(&str, &str)]| Test::TokenIn(p.iter().map(|(s, c)| (s.to_string(), c.to_string())).collect());
    assert_eq!(
        find(vec![vec![index("code", pairs(&[("http://loinc.org", "1234"), ("http://loinc.org", "9")]))]]),
        ["a"]
    );
    assert_eq!(find(vec![vec![index("gender", pairs(&[("", "female"), ("x", "male")]))]]), ["b"]);
    assert_eq!(find(vec![vec![index("gender", pairs(&[]))]]), Vec::<String>::new());
    assert_eq!(find(vec![vec![index("name", Test::StringStarts("yamada".into()))]]), ["a"]);
    assert_eq!(find(vec![vec![index("name", Test::StringStarts("山田".into()))]]), ["a"]);
    assert_eq!(find(vec![vec![index("name", Test::StringContains("ZUK".into()))]]), ["b"]);
    assert_eq!(find(vec![vec![index("name", Test::StringContains("100%_".into()))]]), ["b"]);
    assert_eq!(find(vec![vec![index("name", Test::StringContains("0%x".into()))]]), Vec::<String>::new());
    assert_eq!(find(vec![vec![index("name", Test::StringContains("太".into()))]]), ["a"]);
    assert_eq!(find(vec![vec![index("name", Test::StringExact("Yamada Taro".into()))]]), ["a"]);
    assert_eq!(find(vec![vec![index("name", Test::StringExact("yamada taro".into()))]]), Vec::<String>::new());
    assert_eq!(find(vec![vec![index("url", Test::UriExact("http://example.org/fhir".into()))]]), ["b"]);
    assert_eq!(find(vec![vec![index("url", Test::UriBelow("http://example.org/fhir".into()))]]), ["a", "b"]);
    assert_eq!(find(vec![vec![index("url", Test::UriAbove("http://example.org/fhir/a/b".into()))]]), ["a", "b"]);
    assert_eq!(find(vec![vec![index("url", Test::UriAbove("http://example.org/fhir/x".into()))]]), ["b"]);
    assert_eq!(find(vec![vec![Condition::Id("b".into())]]), ["b"]);
    assert_eq!(find(vec![vec![Condition::Id("b".into()), Condition::Id("c".into())]]), ["b", "c"]);
    assert_eq!(find(vec![vec![Condition::LastUpdated { lo: 1000, hi: 1001 }]]), ["a", "b", "c"]);
    assert_eq!(find(vec![vec![Condition::LastUpdated { lo: 0, hi: 1000 }]]), Vec::<String>::new());
    // An empty clause matches nothing.
    assert_eq!(find(vec![vec![]]), Vec::<String>::new());
}

pub fn date_number_quantity_searches(store: &dyn Store) {
    // Days as [lo, hi) in units of 10.
    put(
        store,
        "Observation",
        "day",
        1,
        &[
            date("date", 100, 110),
            entry("n", IndexValue::Number { value: 5.0 }),
            entry(
                "v",
                IndexValue::Quantity {
                    system: Some("http://unitsofmeasure.org".into()),
                    code: Some("mg".into()),
                    value: 120.0,
                },
            ),
        ],
    );
    put(
        store,
        "Observation",
        "year",
        1,
        &[
            date("date", 0, 3650),
            entry("n", IndexValue::Number { value: 100.0 }),
            entry("v", IndexValue::Quantity { system: None, code: Some("g".into()), value: 0.12 }),
        ],
    );
    put(store, "Observation", "open", 1, &[date("date", 200, i64::MAX)]);
    let find = |conds: Vec<Vec<Condition>>| ids(store, &q(Some("Observation"), conds));
    let d = |op, lo, hi| index("date", Test::Date { op, lo, hi });
    assert_eq!(find(vec![vec![d(RangeOp::Eq, 100, 110)]]), ["day"]);
    assert_eq!(find(vec![vec![d(RangeOp::Ne, 100, 110)]]), ["year", "open"]);
    assert_eq!(find(vec![vec![d(RangeOp::Gt, 150, 160)]]), ["year", "open"]);
    assert_eq!(find(vec![vec![d(RangeOp::Lt, 150, 160)]]), ["day", "year"]);
    assert_eq!(find(vec![vec![d(RangeOp::Ge, 100, 110)]]), ["day", "year", "open"]);
    assert_eq!(find(vec![vec![d(RangeOp::Le, 100, 110)]]), ["day", "year"]);
    assert_eq!(find(vec![vec![d(RangeOp::Sa, 90, 100)]]), ["day", "open"]);
    assert_eq!(find(vec![vec![d(RangeOp::Eb, 110, 120)]]), ["day"]);
    assert_eq!(find(vec![vec![d(RangeOp::Ap, 95, 115)]]), ["day", "year"]);
    let window = |lo, hi| Condition::DateWindow { param: "date".into(), lo, hi };
    assert_eq!(find(vec![vec![window(105, 106)]]), ["day", "year"]);
    assert_eq!(find(vec![vec![window(5000, 6000)]]), ["open"]);
    let n = |op, value, lo, hi| index("n", Test::Number { op, value, lo, hi });
    assert_eq!(find(vec![vec![n(RangeOp::Eq, 5.0, 4.5, 5.5)]]), ["day"]);
    assert_eq!(find(vec![vec![n(RangeOp::Ne, 5.0, 4.5, 5.5)]]), ["year"]);
    assert_eq!(find(vec![vec![n(RangeOp::Gt, 5.0, 4.5, 5.5)]]), ["year"]);
    assert_eq!(find(vec![vec![n(RangeOp::Ge, 5.0, 4.5, 5.5)]]), ["day", "year"]);
    assert_eq!(find(vec![vec![n(RangeOp::Lt, 100.0, 99.5, 100.5)]]), ["day"]);
    assert_eq!(find(vec![vec![n(RangeOp::Le, 100.0, 99.5, 100.5)]]), ["day", "year"]);
    let qty = |op, value: f64, system: Option<&str>, code: Option<&str>| {
        index(
            "v",
            Test::Quantity {
                op,
                value,
                lo: value * 0.95,
                hi: value * 1.05,
                system: system.map(String::from),
                code: code.map(String::from),
            },
        )
    };
    assert_eq!(find(vec![vec![qty(RangeOp::Eq, 120.0, None, Some("mg"))]]), ["day"]);
    assert_eq!(find(vec![vec![qty(RangeOp::Eq, 120.0, Some("http://unitsofmeasure.org"), Some("mg"))]]), ["day"]);
    assert_eq!(find(vec![vec![qty(RangeOp::Eq, 120.0, None, Some("g"))]]), Vec::<String>::new());
    assert_eq!(find(vec![vec![qty(RangeOp::Gt, 0.1, None, None)]]), ["day", "year"]);
    assert_eq!(find(vec![vec![qty(RangeOp::Lt, 1.0, None, None)]]), ["year"]);
}

pub fn references_chains_has_and_compartments(store: &dyn Store) {
    put(store, "Patient", "p1", 1, &[string("name", "Yamada"), token("gender", "", "male", None)]);
    put(store, "Patient", "p2", 1, &[string("name", "Suzuki"), token("gender", "", "female", None)]);
    put(store, "Observation", "o1", 1, &[reference("subject", "Patient", "p1"), token("code", "l", "bp", None)]);
    put(store, "Observation", "o2", 1, &[reference("subject", "Patient", "p2"), token("code", "l", "hr", None)]);
    put(
        store,
        "Observation",
        "o3",
        1,
        &[
            reference("subject", "Group", "g1"),
            reference("performer", "Patient", "p1"),
            entry(
                "based-on",
                IndexValue::Reference { target_type: None, target_id: None, url: "http://x.org/r/1".into() },
            ),
        ],
    );
    put(store, "Encounter", "e1", 1, &[reference("subject", "Patient", "p2")]);
    let obs = |conds: Vec<Vec<Condition>>| ids(store, &q(Some("Observation"), conds));
    let r = |t: Option<&str>, id: Option<&str>, url: Option<&str>| Test::Reference {
        target_type: t.map(String::from),
        target_id: id.map(String::from),
        url: url.map(String::from),
    };
    assert_eq!(obs(vec![vec![index("subject", r(Some("Patient"), Some("p1"), None))]]), ["o1"]);
    assert_eq!(obs(vec![vec![index("subject", r(None, Some("p2"), None))]]), ["o2"]);
    assert_eq!(obs(vec![vec![index("subject", r(Some("Group"), None, None))]]), ["o3"]);
    assert_eq!(obs(vec![vec![index("based-on", r(None, None, Some("http://x.org/r/1")))]]), ["o3"]);
    let chain = |conds| Condition::Chain {
        param: "subject".into(),
        target_type: "Patient".into(),
        query: Box::new(q(Some("Patient"), conds)),
    };
    assert_eq!(obs(vec![vec![chain(vec![vec![index("name", Test::StringStarts("suz".into()))]])]]), ["o2"]);
    assert_eq!(obs(vec![vec![chain(vec![vec![index("gender", tok("male"))]])]]), ["o1"]);
    let pats = |conds: Vec<Vec<Condition>>| ids(store, &q(Some("Patient"), conds));
    let has = |source: &str, param: &str, conds| Condition::Has {
        source_type: source.into(),
        param: param.into(),
        query: Box::new(q(Some(source), conds)),
    };
    assert_eq!(pats(vec![vec![has("Observation", "subject", vec![vec![index("code", tok("hr"))]])]]), ["p2"]);
    assert_eq!(pats(vec![vec![has("Observation", "subject", vec![])]]), ["p1", "p2"]);
    assert_eq!(pats(vec![vec![has("Observation", "performer", vec![vec![Condition::Id("o3".into())]])]]), ["p1"]);
    let compartment = |id: Option<&str>| Condition::Compartment {
        params: vec![
            ("Observation".into(), "subject".into()),
            ("Observation".into(), "performer".into()),
            ("Encounter".into(), "subject".into()),
        ],
        target_type: "Patient".into(),
        target_id: id.map(String::from),
    };
    assert_eq!(obs(vec![vec![compartment(Some("p1"))]]), ["o1", "o3"]);
    assert_eq!(ids(store, &q(None, vec![vec![compartment(Some("p2"))]])), ["o2", "e1"]);
    assert_eq!(ids(store, &q(None, vec![vec![compartment(None)]])), ["o1", "o2", "o3", "e1"]);
    // Type-level $everything: the patients and everything in their compartments.
    let everything = q(None, vec![vec![Condition::ResourceType("Patient".into()), compartment(None)]]);
    assert_eq!(ids(store, &everything), ["p1", "p2", "o1", "o2", "o3", "e1"]);
    let empty = Condition::Compartment { params: vec![], target_type: "Patient".into(), target_id: None };
    assert_eq!(ids(store, &q(None, vec![vec![empty]])), Vec::<String>::new());
}

pub fn composite_and_missing(store: &dyn Store) {
    let comp = |code: &str, second: IndexValue| {
        entry(
            "code-value",
            IndexValue::Composite { system: Some("l".into()), code: code.into(), second: Box::new(second) },
        )
    };
    put(
        store,
        "Observation",
        "a",
        1,
        &[
            comp("bp", IndexValue::Quantity { system: None, code: Some("mmHg".into()), value: 120.0 }),
            comp("hr", IndexValue::Quantity { system: None, code: Some("/min".into()), value: 60.0 }),
            entry(
                "code-concept",
                IndexValue::Composite {
                    system: None,
                    code: "x".into(),
                    second: Box::new(IndexValue::Token { system: Some("s".into()), code: "y".into(), display: None }),
                },
            ),
            entry(
                "code-string",
                IndexValue::Composite {
                    system: None,
                    code: "x".into(),
                    second: Box::new(IndexValue::String { norm: "abc".into(), exact: "ABC".into() }),
                },
            ),
            entry(
                "code-date",
                IndexValue::Composite {
                    system: None,
                    code: "x".into(),
                    second: Box::new(IndexValue::Date { lo: 10, hi: 20 }),
                },
            ),
            entry(
                "code-uri",
                IndexValue::Composite {
                    system: None,
                    code: "x".into(),
                    second: Box::new(IndexValue::Uri { value: "http://u/1".into() }),
                },
            ),
            date("date", 1, 2),
        ],
    );
    put(
        store,
        "Observation",
        "b",
        1,
        &[comp("bp", IndexValue::Quantity { system: None, code: Some("mmHg".into()), value: 60.0 })],
    );
    let find = |conds: Vec<Vec<Condition>>| ids(store, &q(Some("Observation"), conds));
    let ct = |param: &str, system: SystemMatch, code: &str, second: Test| {
        index(param, Test::Composite { system, code: code.into(), second: Box::new(second) })
    };
    let qty = |value: f64| Test::Quantity {
        op: RangeOp::Eq,
        value,
        lo: value - 0.5,
        hi: value + 0.5,
        system: None,
        code: None,
    };
    // The two components come from the same element: bp=60 is only b's.
    assert_eq!(find(vec![vec![ct("code-value", SystemMatch::Any, "bp", qty(60.0))]]), ["b"]);
    assert_eq!(find(vec![vec![ct("code-value", SystemMatch::Is("l".into()), "hr", qty(60.0))]]), ["a"]);
    assert_eq!(find(vec![vec![ct("code-value", SystemMatch::Absent, "hr", qty(60.0))]]), Vec::<String>::new());
    assert_eq!(
        find(vec![vec![ct(
            "code-concept",
            SystemMatch::Absent,
            "x",
            Test::Token { system: SystemMatch::Is("s".into()), code: Some("y".into()) }
        )]]),
        ["a"]
    );
    assert_eq!(find(vec![vec![ct("code-string", SystemMatch::Any, "x", Test::StringStarts("ab".into()))]]), ["a"]);
    assert_eq!(
        find(vec![vec![ct("code-date", SystemMatch::Any, "x", Test::Date { op: RangeOp::Ge, lo: 15, hi: 16 })]]),
        ["a"]
    );
    assert_eq!(find(vec![vec![ct("code-uri", SystemMatch::Any, "x", Test::UriBelow("http://u".into()))]]), ["a"]);
    let missing = |param: &str, kind, missing| Condition::Missing { param: param.into(), kind, missing };
    assert_eq!(find(vec![vec![missing("date", IndexKind::Date, true)]]), ["b"]);
    assert_eq!(find(vec![vec![missing("date", IndexKind::Date, false)]]), ["a"]);
    assert_eq!(find(vec![vec![missing("code-value", IndexKind::Composite, false)]]), ["a", "b"]);
}

pub fn full_text(store: &dyn Store) {
    let ft = |narrative: &str, content: &str| {
        vec![
            entry("_text", IndexValue::FullText { tokens: narrative.into() }),
            entry("_content", IndexValue::FullText { tokens: content.into() }),
        ]
    };
    // 糖尿病の診断 / blood pressure high, as the search crate cuts them.
    put(store, "Condition", "a", 1, &ft("糖尿 尿病 病の の診 診断 断", "blood pressure high"));
    put(store, "Condition", "b", 1, &ft("high blood", "糖尿 尿病 病 pressure"));
    put(store, "Condition", "c", 1, &[]);
    let find = |narrative_only: bool, query: &str, negate: bool| {
        ids(
            store,
            &q(Some("Condition"), vec![vec![Condition::FullText { narrative_only, query: query.into(), negate }]]),
        )
    };
    assert_eq!(find(true, "((\"糖尿 尿病\"))", false), ["a"]);
    assert_eq!(find(false, "((\"糖尿 尿病\"))", false), ["a", "b"]);
    assert_eq!(find(false, "((\"blood pressure\"))", false), ["a"]);
    assert_eq!(find(false, "((\"pressure blood\"))", false), Vec::<String>::new());
    assert_eq!(find(true, "((\"blood pressure\"))", false), Vec::<String>::new());
    assert_eq!(find(false, "((\"high\")) AND ((\"blood\"))", false), ["a", "b"]);
    assert_eq!(find(false, "((\"診断\") OR (\"pressure\"))", false), ["a", "b"]);
    assert_eq!(find(true, "((\"診断\") OR (\"pressure\"))", false), ["a"]);
    // A phrase never spans the narrative and the rest.
    assert_eq!(find(false, "((\"blood 糖尿\"))", false), Vec::<String>::new());
    assert_eq!(find(false, "((\"BLOOD\"))", false), ["a", "b"]);
    assert_eq!(find(false, "((\"pres\" *))", false), ["a", "b"]);
    assert_eq!(find(false, "((\"病\" *))", false), ["a", "b"]);
    assert_eq!(find(true, "((\"糖尿 尿病\"))", true), ["b", "c"]);
}

/// `:text` finds a code's resources by each display it is written with (the stores look
/// codes up by display first), after updates and deletes too.
pub fn text_finds_every_display_of_a_code(store: &dyn Store) {
    let coded = |code: &str, display: &str| [token("code", "http://loinc.org", code, Some(display))];
    put(store, "Observation", "a", 1, &coded("2339-0", "glucose"));
    put(store, "Observation", "b", 1, &coded("2339-0", "blood sugar"));
    put(store, "Observation", "c", 1, &coded("5792-7", "glucose [mass/volume] in urine"));
    put(store, "Observation", "d", 1, &coded("x", "100%_sure"));
    let find =
        |text: &str| ids(store, &q(Some("Observation"), vec![vec![index("code", Test::TokenText(text.into()))]]));
    assert_eq!(find("glucose"), ["a", "c"]);
    assert_eq!(find("blood"), ["b"]);
    assert_eq!(find("100%_"), ["d"]);
    assert_eq!(find("100_"), Vec::<String>::new());
    // A new display of a known code is found; the one it replaced no longer matches.
    put(store, "Observation", "a", 2, &coded("2339-0", "fasting glucose"));
    assert_eq!(find("fasting"), ["a"]);
    assert_eq!(find("glucose"), ["c"]);
    delete(store, "Observation", "c", 2);
    assert_eq!(find("glucose"), Vec::<String>::new());
    // Another type's display of the same code is its own.
    put(store, "Condition", "e", 1, &coded("2339-0", "glucose"));
    assert_eq!(find("glucose"), Vec::<String>::new());
}

/// Sort keys no resource has a value of sort every match alike (the stores leave them out
/// before planning), whatever their position; the first key's direction still orders
/// ties, so a first key without values stays unless the next key sorts the same way.
pub fn sort_keys_without_values(store: &dyn Store) {
    for (n, id) in [(2, "two"), (1, "one"), (3, "three")] {
        put(store, "Observation", id, 1, &[token("status", "", "final", None), date("date", n * 1000, n * 1000 + 1)]);
    }
    let key =
        |param: &str, kind, descending| SortKey { param: SortParam::Index { param: param.into(), kind }, descending };
    let (status, length, value) = (IndexKind::Token, IndexKind::Number, IndexKind::Quantity);
    for (sort, want) in [
        (vec![key("status", status, false), key("length", length, false)], ["two", "one", "three"]),
        (vec![key("status", status, true), key("length", length, false)], ["three", "one", "two"]),
        (
            vec![key("value", value, true), key("status", status, false), key("length", length, false)],
            ["three", "one", "two"],
        ),
        (
            vec![key("status", status, false), key("value", value, true), key("date", IndexKind::Date, true)],
            ["three", "two", "one"],
        ),
        (vec![key("value", value, false), key("status", status, false)], ["two", "one", "three"]),
        (vec![key("value", value, true), key("status", status, true)], ["three", "one", "two"]),
        (
            vec![key("value", value, true), key("length", length, false), key("date", IndexKind::Date, false)],
            ["one", "two", "three"],
        ),
    ] {
        let query = SearchQuery {
            resource_type: Some("Observation".into()),
            sort: sort.clone(),
            count: 10,
            ..Default::default()
        };
        assert_eq!(ids(store, &query), want, "{sort:?}");
    }
}

pub fn paging_sorting_and_totals(store: &dyn Store) {
    for (i, id) in ["e", "a", "d", "b", "c"].iter().enumerate() {
        put_at(
            store,
            "Patient",
            id,
            1,
            &[
                string("name", &format!("n{}", 5 - i)),
                token("gender", "", if i % 2 == 0 { "male" } else { "female" }, None),
            ],
            100 + i as i64,
        );
    }
    put(store, "Observation", "o", 1, &[]);
    let mut query = q(Some("Patient"), vec![]);
    query.count = 2;
    query.total = true;
    let page = store.search(&query).unwrap();
    assert_eq!((page.total, page.more), (Some(5), true));
    assert_eq!(page.resources.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["e", "a"]);
    query.after_seq = Some(page.resources[1].seq);
    let page = store.search(&query).unwrap();
    assert_eq!(page.resources.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["d", "b"]);
    query.after_seq = Some(page.resources[1].seq);
    let page = store.search(&query).unwrap();
    assert_eq!((page.resources.len(), page.more), (1, false));
    // Sorted pages by offset; ties broken by write order.
    let mut sorted_q = q(Some("Patient"), vec![]);
    sorted_q.sort = vec![SortKey { param: SortParam::Id, descending: false }];
    sorted_q.count = 2;
    sorted_q.offset = 2;
    assert_eq!(ids(store, &sorted_q), ["c", "d"]);
    sorted_q.sort = vec![
        SortKey { param: SortParam::Index { param: "gender".into(), kind: IndexKind::Token }, descending: false },
        SortKey { param: SortParam::LastUpdated, descending: true },
    ];
    sorted_q.count = 10;
    sorted_q.offset = 0;
    assert_eq!(ids(store, &sorted_q), ["b", "a", "c", "d", "e"]);
    sorted_q.sort =
        vec![SortKey { param: SortParam::Index { param: "gender".into(), kind: IndexKind::Token }, descending: true }];
    assert_eq!(ids(store, &sorted_q), ["c", "d", "e", "b", "a"]);
    // Counting only.
    let mut count_only = q(None, vec![]);
    count_only.count = 0;
    count_only.total = true;
    let page = store.search(&count_only).unwrap();
    assert_eq!((page.total, page.resources.len(), page.more), (Some(6), 0, false));
    // System-level search in write order.
    assert_eq!(ids(store, &q(None, vec![])), ["e", "a", "d", "b", "c", "o"]);
    let mut seen = Vec::new();
    let mut walk = q(Some("Patient"), vec![]);
    walk.count = 2;
    tsunagu_store::scan::<StoreError>(store, walk, |v| {
        seen.push(v.id.clone());
        Ok(true)
    })
    .unwrap();
    assert_eq!(seen, ["e", "a", "d", "b", "c"]);
}

pub fn timestamps_increase(store: &dyn Store) {
    put_at(store, "Patient", "future", 1, &[], 4_102_444_800_000);
    let mut last = 0;
    for _ in 0..50 {
        let t = store.next_timestamp_ms();
        assert!(t > last, "{t} after {last}");
        last = t;
    }
    // A batch's timestamps: all after the last one given, and the next one after all of them.
    let first = store.next_timestamps_ms(1_000);
    assert!(first > last, "{first} after {last}");
    let next = store.next_timestamp_ms();
    assert!(next >= first + 1_000, "{next} after {first}..{}", first + 1_000);
    last = next;
    assert!(last > 4_102_444_800_000 || store.next_timestamp_ms() > 0);
}

pub fn replace_index_reindexes(store: &dyn Store) {
    put(store, "Patient", "a", 1, &[token("gender", "", "male", None)]);
    let seq = store.read("Patient", "a").unwrap().unwrap().seq;
    store.write(&mut |txn| txn.replace_index(seq, "Patient", &[token("gender", "", "female", None)])).unwrap();
    let find = |code: &str| ids(store, &q(Some("Patient"), vec![vec![index("gender", tok(code))]]));
    assert_eq!(find("male"), Vec::<String>::new());
    assert_eq!(find("female"), ["a"]);
}

pub fn put_new_writes_batches(store: &dyn Store) {
    let bodies: Vec<String> = (0..20).map(|i| format!(r#"{{"id":"b{i}"}}"#)).collect();
    let ids_: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    let idx: Vec<Vec<IndexEntry>> = (0..20)
        .map(|i| vec![token("code", "s", &format!("c{}", i % 3), None), reference("subject", "Patient", "p")])
        .collect();
    let versions: Vec<NewVersion<'_>> = (0..20)
        .map(|i| NewVersion {
            resource_type: "Observation",
            id: &ids_[i],
            version: 1,
            last_updated_ms: 10 + i as i64,
            method: Method::Post,
            body: Some(bodies[i].as_bytes()),
            index: &idx[i],
        })
        .collect();
    store.write(&mut |txn| txn.put_new(&versions)).unwrap();
    let found = ids(store, &q(Some("Observation"), vec![vec![index("code", tok("c1"))]]));
    assert_eq!(found, ["b1", "b4", "b7", "b10", "b13", "b16", "b19"]);
    let all = store.search(&q(Some("Observation"), vec![])).unwrap().resources;
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), ids_);
    let again = store.write(&mut |txn| txn.put_new(&versions[3..4]));
    assert!(matches!(again, Err(StoreError::VersionConflict(_))));
}

/// Strings far longer than a B-tree entry may be (PostgreSQL: about 2,700 bytes).
pub fn long_strings(store: &dyn Store) {
    let long = format!("{}{}", "山田".repeat(1500), "x".repeat(2000));
    put(store, "Patient", "long", 1, &[string("name", &long)]);
    put(store, "Patient", "short", 1, &[string("name", "山田")]);
    let find = |test: Test| ids(store, &q(Some("Patient"), vec![vec![index("name", test)]]));
    assert_eq!(find(Test::StringStarts("山田".into())), ["long", "short"]);
    assert_eq!(find(Test::StringStarts("山田".repeat(150))), ["long"]);
    assert_eq!(find(Test::StringStarts(format!("{}x", "山田".repeat(1500)))), ["long"]);
    assert_eq!(find(Test::StringStarts(format!("{}y", "山田".repeat(1500)))), Vec::<String>::new());
    assert_eq!(find(Test::StringStarts(format!("{}x", "山田".repeat(99)))), Vec::<String>::new());
    assert_eq!(find(Test::StringExact(long.clone())), ["long"]);
    assert_eq!(find(Test::StringContains("田x".into())), ["long"]);
    let mut sorted_q = q(Some("Patient"), vec![]);
    sorted_q.sort =
        vec![SortKey { param: SortParam::Index { param: "name".into(), kind: IndexKind::String }, descending: true }];
    assert_eq!(ids(store, &sorted_q), ["long", "short"]);
}

/// Full text of a resource with very many words (PostgreSQL: over its 1 MB `tsvector`).
pub fn huge_texts(store: &dyn Store) {
    let words: Vec<String> = (0..150_000).map(|i| format!("w{i:07}")).collect();
    let tokens = format!("first second {}", words.join(" "));
    put(store, "DocumentReference", "big", 1, &[entry("_content", IndexValue::FullText { tokens })]);
    let find = |query: &str| {
        ids(
            store,
            &q(
                Some("DocumentReference"),
                vec![vec![Condition::FullText { narrative_only: false, query: query.into(), negate: false }]],
            ),
        )
    };
    assert_eq!(find("((\"first second\"))"), ["big"]);
    assert_eq!(find("((\"w0000010\"))"), ["big"]);
    // The same words many times over (as in the R4 publication's large Bundles), and a
    // phrase far past PostgreSQL's last vector position.
    let tokens = format!("{} {} tail phrase", vec!["repeated words here"; 200_000].join(" "), words.join(" "));
    put(store, "DocumentReference", "repeats", 1, &[entry("_content", IndexValue::FullText { tokens })]);
    assert_eq!(find("((\"repeated words\"))"), ["repeats"]);
    assert_eq!(find("((\"tail phrase\"))"), ["repeats"]);
    assert_eq!(find("((\"here repeated\"))"), ["repeats"]);
    assert!(find("((\"words repeated\"))").is_empty());
}

/// `len` pseudo-random lowercase letters (deterministic by `seed`): a value PostgreSQL
/// cannot compress below its B-tree entry limit, as a repeated letter would be.
pub fn noise(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (b'a' + (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 59) as u8 % 26) as char
        })
        .collect()
}

/// Token codes and systems, URIs, references, quantities and composites far longer than a
/// B-tree entry may be (PostgreSQL: about 2,700 bytes; its indexes hold the first 128
/// characters): written, found exactly (and by prefix where the kind has one), told apart
/// when they share their first thousands of characters, and sorted by the whole value.
pub fn long_values_of_every_kind(store: &dyn Store) {
    let head = format!("c{}", noise(10_000, 1));
    let (code_a, code_b, code_c) = (format!("{head}a"), format!("{head}b"), format!("{head}a0"));
    let system = format!("urn:{}", noise(5_000, 2));
    let other_system = format!("{system}x");
    let base = format!("http://e.org/{}", noise(20_000, 3));
    let (uri_a, uri_b, uri_c) = (format!("{base}a"), format!("{base}b"), format!("{base}a/sub"));
    let id_head = format!("r{}", noise(10_000, 4));
    let (id_a, id_b) = (format!("{id_head}1"), format!("{id_head}2"));
    let url = format!("http://x.org/{}", noise(10_000, 5));
    let name = |tail: &str| format!("{}{}{tail}", "山".repeat(13_333), noise(60_000, 6));
    let quantity = |code: &str| {
        entry("value", IndexValue::Quantity { system: Some(system.clone()), code: Some(code.to_string()), value: 1.0 })
    };
    let composite = |code: &str, uri: &str| {
        entry(
            "code-uri",
            IndexValue::Composite {
                system: Some(system.clone()),
                code: code.to_string(),
                second: Box::new(IndexValue::Uri { value: uri.to_string() }),
            },
        )
    };
    let uri = |v: &str| entry("url", IndexValue::Uri { value: v.to_string() });
    let reference_url =
        entry("based-on", IndexValue::Reference { target_type: None, target_id: None, url: url.clone() });
    // Written out of value order, so that write order (seq) cannot pass for value order.
    let all = [
        ("b", code_b.clone(), uri_b.clone(), id_b.clone(), name("b")),
        ("a", code_a.clone(), uri_a.clone(), id_a.clone(), name("a")),
        ("c", code_c.clone(), uri_c.clone(), format!("{id_head}3"), name("a0")),
    ];
    for (id, code, u, target, n) in &all {
        let mut index = vec![
            token("code", &system, code, Some(&format!("{}{id}", "d".repeat(10_000)))),
            uri(u),
            reference("subject", "Patient", target),
            quantity(code),
            composite(code, u),
            string("name", n),
        ];
        if *id == "a" {
            index.push(reference_url.clone());
        }
        put(store, "Observation", id, 1, &index);
    }
    put(
        store,
        "Observation",
        "short",
        1,
        &[token("code", "", "c", None), uri("http://e.org/"), reference("subject", "Patient", "p1")],
    );
    let obs = |test: Test, param: &str| ids(store, &q(Some("Observation"), vec![vec![index(param, test)]]));
    let token_test = |system: SystemMatch, code: &str| Test::Token { system, code: Some(code.to_string()) };
    let is = |s: &str| SystemMatch::Is(s.to_string());
    assert_eq!(obs(tok(&code_a), "code"), ["a"]);
    assert_eq!(obs(tok(&code_b), "code"), ["b"]);
    assert_eq!(obs(tok(&head), "code"), Vec::<String>::new());
    assert_eq!(obs(token_test(is(&system), &code_a), "code"), ["a"]);
    assert_eq!(obs(token_test(is(&other_system), &code_a), "code"), Vec::<String>::new());
    assert_eq!(obs(token_test(SystemMatch::Absent, &code_a), "code"), Vec::<String>::new());
    assert_eq!(obs(Test::Token { system: is(&system), code: None }, "code"), ["b", "a", "c"]);
    assert_eq!(obs(Test::Token { system: SystemMatch::Absent, code: None }, "code"), ["short"]);
    assert_eq!(
        obs(Test::TokenIn(vec![(system.clone(), code_a.clone()), (system.clone(), code_c.clone())]), "code"),
        ["a", "c"]
    );
    assert_eq!(obs(Test::TokenIn(vec![(other_system.clone(), code_a.clone())]), "code"), Vec::<String>::new());
    assert_eq!(obs(Test::TokenText(format!("{}a", "d".repeat(10_000))), "code"), ["a"]);
    // URIs: exact, below (a prefix), above (the value is a prefix of the search's).
    assert_eq!(obs(Test::UriExact(uri_a.clone()), "url"), ["a"]);
    assert_eq!(obs(Test::UriExact(base.clone()), "url"), Vec::<String>::new());
    assert_eq!(obs(Test::UriBelow(uri_a.clone()), "url"), ["a", "c"]);
    assert_eq!(obs(Test::UriBelow(base.clone()), "url"), ["b", "a", "c"]);
    assert_eq!(obs(Test::UriBelow("http://e.org/".into()), "url"), ["b", "a", "c", "short"]);
    assert_eq!(obs(Test::UriAbove(format!("{uri_c}/more")), "url"), ["a", "c", "short"]);
    // References: by target id (with and without type), by URL, in a compartment.
    let r = |t: Option<&str>, id: Option<&str>, url: Option<&str>| Test::Reference {
        target_type: t.map(String::from),
        target_id: id.map(String::from),
        url: url.map(String::from),
    };
    assert_eq!(obs(r(Some("Patient"), Some(&id_a), None), "subject"), ["a"]);
    assert_eq!(obs(r(None, Some(&id_b), None), "subject"), ["b"]);
    assert_eq!(obs(r(None, Some(&id_head), None), "subject"), Vec::<String>::new());
    assert_eq!(obs(r(None, None, Some(&url)), "based-on"), ["a"]);
    let compartment = |id: &str| Condition::Compartment {
        params: vec![("Observation".into(), "subject".into())],
        target_type: "Patient".into(),
        target_id: Some(id.to_string()),
    };
    assert_eq!(ids(store, &q(None, vec![vec![compartment(&id_a)]])), ["a"]);
    assert_eq!(ids(store, &q(None, vec![vec![compartment(&id_head)]])), Vec::<String>::new());
    // Quantities with a long unit code and system.
    let quantity_test = |code: &str, system: &str| Test::Quantity {
        op: RangeOp::Eq,
        value: 1.0,
        lo: 0.5,
        hi: 1.5,
        system: Some(system.to_string()),
        code: Some(code.to_string()),
    };
    assert_eq!(obs(quantity_test(&code_b, &system), "value"), ["b"]);
    assert_eq!(obs(quantity_test(&code_b, &other_system), "value"), Vec::<String>::new());
    // Composites with a long first component and a long URI second.
    let composite_test = |code: &str, second: Test| Test::Composite {
        system: is(&system),
        code: code.to_string(),
        second: Box::new(second),
    };
    assert_eq!(obs(composite_test(&code_a, Test::UriExact(uri_a.clone())), "code-uri"), ["a"]);
    assert_eq!(obs(composite_test(&code_a, Test::UriExact(uri_b.clone())), "code-uri"), Vec::<String>::new());
    assert_eq!(obs(composite_test(&code_c, Test::UriBelow(uri_a.clone())), "code-uri"), ["c"]);
    // A 100,000-byte string.
    assert_eq!(obs(Test::StringExact(name("a")), "name"), ["a"]);
    assert_eq!(obs(Test::StringStarts(name("a")), "name"), ["a", "c"]);
    assert_eq!(obs(Test::StringStarts(name("")), "name"), ["b", "a", "c"]);
    // Sorted by the whole value: "c" < head+"a" < head+"a0" < head+"b".
    assert_eq!(sorted_ids(store, "code", IndexKind::Token, false), ["short", "a", "c", "b"]);
    assert_eq!(sorted_ids(store, "code", IndexKind::Token, true), ["b", "c", "a", "short"]);
    assert_eq!(sorted_ids(store, "url", IndexKind::Uri, false), ["short", "a", "c", "b"]);
    assert_eq!(sorted_ids(store, "url", IndexKind::Uri, true), ["b", "c", "a", "short"]);
    assert_eq!(sorted_ids(store, "subject", IndexKind::Reference, false), ["short", "a", "b", "c"]);
    assert_eq!(sorted_ids(store, "name", IndexKind::String, true), ["b", "c", "a", "short"]);
    assert_eq!(sorted_ids(store, "value", IndexKind::Quantity, false), ["b", "a", "c", "short"]);
    // Values of megabytes, as a request body may hold.
    let huge = format!("{base}{}", noise(3_000_000, 8));
    put(store, "Observation", "huge", 1, &[token("code", &huge, &huge, None), uri(&huge)]);
    assert_eq!(obs(token_test(is(&huge), &huge), "code"), ["huge"]);
    assert_eq!(obs(Test::UriExact(huge.clone()), "url"), ["huge"]);
    assert_eq!(obs(Test::UriBelow(huge[..1_000_000].to_string()), "url"), ["huge"]);
}

/// Sixty resources with three codes each, written in shuffled order: forty with short
/// codes, twenty with long ones all sharing their first 5,000 characters; sorted pages
/// (walked in batches on PostgreSQL, through keys alone while they are short) follow the
/// whole values, page after page.
pub fn long_values_sharing_a_head_sort_and_page(store: &dyn Store) {
    let head = noise(5_000, 7);
    let rank = |i: usize| (i * 37) % 60;
    for i in 0..60 {
        let codes: Vec<IndexEntry> = (0..3)
            .map(|j| {
                let code = format!("{:03}-{j}", rank(i));
                token("code", "urn:x", &if rank(i) < 40 { code } else { format!("{head}{code}") }, None)
            })
            .collect();
        let uri = entry("url", IndexValue::Uri { value: format!("{head}{:03}", 59 - rank(i)) });
        let mut index = codes;
        index.push(uri);
        put(store, "Observation", &format!("o{i}"), 1, &index);
    }
    let by_rank = |descending: bool| {
        let mut v: Vec<usize> = (0..60).collect();
        v.sort_by_key(|i| rank(*i));
        if descending {
            v.reverse();
        }
        v.into_iter().map(|i| format!("o{i}")).collect::<Vec<_>>()
    };
    let page = |param: &str, kind: IndexKind, descending: bool, offset: usize, count: usize| {
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            sort: vec![SortKey { param: SortParam::Index { param: param.into(), kind }, descending }],
            count,
            offset,
            ..Default::default()
        };
        ids(store, &q)
    };
    for descending in [false, true] {
        let want = by_rank(descending);
        assert_eq!(page("code", IndexKind::Token, descending, 0, 50), want[..50]);
        assert_eq!(page("code", IndexKind::Token, descending, 40, 30), want[40..]);
        assert_eq!(page("code", IndexKind::Token, descending, 0, 10), want[..10]);
        assert_eq!(page("code", IndexKind::Token, descending, 30, 20), want[30..50]);
        let mut by_uri = by_rank(!descending);
        by_uri.truncate(45);
        assert_eq!(page("url", IndexKind::Uri, descending, 0, 45), by_uri);
    }
}

/// `max_bytes` of a page (`max_page_bytes`): pages of search (in write order, sorted, driven
/// by an index), history and `read_many` stop before the resource that would pass it,
/// bodies larger than what comes with a page's rows are read whole, and paging from where
/// a cut page stopped reaches every resource once.
pub fn pages_are_bounded_in_bytes(store: &dyn Store) {
    let big = tsunagu_store::INLINE_BODY_BYTES as usize + 30_000;
    // b0 small, b1 and b2 large, b3 small, b4 large.
    let sizes = [100, big, big + 1, 200, big + 2];
    let body = |i: usize| format!(r#"{{"resourceType":"Binary","id":"b{i}","data":"{}"}}"#, "A".repeat(sizes[i]));
    for i in 0..sizes.len() {
        let (id, b) = (format!("b{i}"), body(i));
        let index = [token("t", "", "x", None)];
        store
            .write(&mut |txn| {
                txn.put(&NewVersion {
                    resource_type: "Binary",
                    id: &id,
                    version: 1,
                    last_updated_ms: 1000 + i as i64,
                    method: Method::Post,
                    body: Some(b.as_bytes()),
                    index: &index,
                })
            })
            .unwrap();
    }
    let len = |i: usize| body(i).len() as u64;
    // Room for one large body and a small one, not two large ones.
    let cap = tsunagu_store::ByteCap { max: len(4) + len(3), first_always: true };
    let ids = |vs: &[tsunagu_store::ResourceVersion]| vs.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    let whole = |vs: &[tsunagu_store::ResourceVersion]| {
        for v in vs {
            let i: usize = v.id[1..].parse().unwrap();
            assert_eq!(v.body, body(i).as_bytes(), "{} read whole", v.id);
        }
    };
    for driven in [false, true] {
        let mut query =
            if driven { q(Some("Binary"), vec![vec![index("t", tok("x"))]]) } else { q(Some("Binary"), vec![]) };
        query.count = 10;
        query.max_bytes = Some(cap);
        let mut pages = Vec::new();
        loop {
            let page = store.search(&query).unwrap();
            whole(&page.resources);
            pages.push(ids(&page.resources));
            if !page.more {
                assert_eq!(page.stopped_by, None);
                break;
            }
            assert_eq!(page.stopped_by, Some(tsunagu_store::Ceiling::Bytes(cap.max)));
            assert_eq!(page.resume_after, page.resources.last().map(|v| v.seq));
            query.after_seq = page.resume_after;
        }
        assert_eq!(pages, [vec!["b0", "b1"], vec!["b2", "b3"], vec!["b4"]], "driven: {driven}");
    }
    // Sorted: the page stops the same way; the next offset is what it holds.
    let mut sorted_q = q(Some("Binary"), vec![]);
    sorted_q.sort = vec![SortKey { param: SortParam::Id, descending: true }];
    sorted_q.count = 10;
    sorted_q.max_bytes = Some(cap);
    let page = store.search(&sorted_q).unwrap();
    assert_eq!((ids(&page.resources), page.more), (vec!["b4".to_string(), "b3".into()], true));
    whole(&page.resources);
    // A bound that is not a page's first takes only what fits: here nothing.
    let mut strict = q(Some("Binary"), vec![]);
    strict.max_bytes = Some(tsunagu_store::ByteCap { max: 10, first_always: false });
    let page = store.search(&strict).unwrap();
    assert!(page.resources.is_empty() && page.more);
    assert_eq!(page.stopped_by, Some(tsunagu_store::Ceiling::Bytes(10)));
    // Alone larger than the bound, a first resource still comes whole.
    let mut one = q(Some("Binary"), vec![]);
    one.after_seq = pages_after(store, "b0");
    one.max_bytes = Some(tsunagu_store::ByteCap { max: 10, first_always: true });
    let page = store.search(&one).unwrap();
    assert_eq!((ids(&page.resources), page.more), (vec!["b1".to_string()], true));
    whole(&page.resources);
    // History, newest first.
    let h = HistoryQuery {
        scope: HistoryScope::Type("Binary".into()),
        since_ms: None,
        at: None,
        before_seq: None,
        count: 10,
        max_bytes: Some(cap),
    };
    let page = store.history(&h).unwrap();
    assert_eq!((ids(&page.versions), page.cut), (vec!["b4".to_string(), "b3".into()], true));
    whole(&page.versions);
    let page = store.history(&HistoryQuery { max_bytes: None, ..h }).unwrap();
    assert_eq!((page.versions.len(), page.cut), (5, false));
    whole(&page.versions);
    // Several reads at once, in the order asked.
    let keys: Vec<(String, String)> =
        ["b4", "b0", "b1", "b3"].iter().map(|i| ("Binary".into(), i.to_string())).collect();
    let (read, cut) = store.read_many(&keys, Some(cap)).unwrap();
    assert_eq!((ids(&read), cut), (vec!["b4".to_string(), "b0".into()], true));
    whole(&read);
}

/// The `seq` of the live Binary `id`.
fn pages_after(store: &dyn Store, id: &str) -> Option<i64> {
    Some(store.read("Binary", id).unwrap().unwrap().seq)
}
