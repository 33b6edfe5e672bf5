//! The same writes into SQLite and PostgreSQL, then many generated searches on both: the
//! pages (ids, order, `seq`), totals and `more` flags must be identical.

use tsunagu_store::{
    Clause, Condition, HistoryQuery, HistoryScope, IndexEntry, IndexKind, IndexValue, Method, NewVersion, RangeOp,
    SearchQuery, SortKey, SortParam, SqliteStore, Store, SyncMode, SystemMatch, Test,
};

/// xorshift64*: deterministic without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const SHORT_SYSTEMS: [&str; 3] = ["", "urn:s1", "urn:s2"];
const SHORT_CODES: [&str; 5] = ["a", "b", "c", "A", "x_y"];
const DISPLAYS: [&str; 5] = ["Blood pressure", "blood sugar", "BLOOD", "血圧", "Heart % rate"];
const STRINGS: [&str; 8] = ["Yamada", "yamada taro", "山田太郎", "Suzuki", "suzu%ki", "o'brien", "ÄBC", "a_b"];
const SHORT_URIS: [&str; 4] = ["http://e.org/fhir", "http://e.org/fhir/a", "http://e.org/fhir/a/b", "urn:uuid:1"];

/// 3,000 pseudo-random letters: longer than a PostgreSQL B-tree entry may be, and than
/// its index keys (128 characters), which values made from it share.
fn long_head() -> &'static str {
    static HEAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        (0..3_000).map(|_| (b'a' + rng.below(26) as u8) as char).collect()
    })
}

/// The short values and some long ones (sharing their first 3,000 characters).
fn with_long(short: &[&'static str], long: &[&str]) -> Vec<&'static str> {
    let head = long_head();
    let long = long.iter().map(|l| &*Box::leak(l.replace('H', head).into_boxed_str()));
    short.iter().copied().chain(long).collect()
}

fn systems() -> &'static [&'static str] {
    static V: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    V.get_or_init(|| with_long(&SHORT_SYSTEMS, &["urn:H"]))
}

fn codes() -> &'static [&'static str] {
    static V: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    V.get_or_init(|| with_long(&SHORT_CODES, &["H", "Ha", "Hb"]))
}

fn uris() -> &'static [&'static str] {
    static V: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    V.get_or_init(|| with_long(&SHORT_URIS, &["http://e.org/fhir/H", "http://e.org/fhir/H/a", "http://e.org/fhir/Hb"]))
}

/// A reference target id: `p0`…`p6`, or (7) one of 3,001 characters.
fn target_id(n: usize) -> String {
    if n == 7 {
        format!("p{}", long_head())
    } else {
        format!("p{n}")
    }
}
const WORDS: [&str; 8] = ["blood", "pressure", "high", "糖尿", "尿病", "病", "診断", "断"];
const PARAMS: [&str; 3] = ["p", "q", "r"];

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The kind of a composite parameter's second component: fixed per parameter, as a
/// search parameter's definition fixes it (`p7` a number, `q7` a quantity, `r7` a date).
fn second_kind(param: &str) -> usize {
    match param.as_bytes().first() {
        Some(b'p') => 3,
        Some(b'q') => 4,
        _ => 2,
    }
}

fn value(rng: &mut Rng, kind: usize, param: &str) -> IndexValue {
    match kind {
        0 => IndexValue::Token {
            system: opt(rng.pick(systems())),
            code: rng.pick(codes()).to_string(),
            display: rng.chance(60).then(|| rng.pick(&DISPLAYS).to_string()),
        },
        1 => {
            let s = rng.pick(&STRINGS);
            IndexValue::String { norm: s.to_lowercase(), exact: s.to_string() }
        }
        2 => {
            let lo = rng.below(100) as i64 * 10;
            let hi = match rng.below(4) {
                0 => i64::MAX,
                1 => lo + 1 + rng.below(500) as i64,
                _ => lo + 10,
            };
            IndexValue::Date { lo: if rng.chance(5) { i64::MIN } else { lo }, hi }
        }
        3 => IndexValue::Number { value: rng.below(40) as f64 / 4.0 - 2.0 },
        4 => IndexValue::Quantity {
            system: opt(rng.pick(&["", "http://unitsofmeasure.org"])),
            code: rng.chance(80).then(|| rng.pick(&["mg", "g", "mm[Hg]"]).to_string()),
            value: rng.below(40) as f64 / 2.0,
        },
        5 => {
            if rng.chance(80) {
                let ty = rng.pick(&["Patient", "Group"]);
                let id = target_id(rng.below(8));
                IndexValue::Reference {
                    target_type: Some(ty.to_string()),
                    target_id: Some(id.clone()),
                    url: format!("{ty}/{id}"),
                }
            } else {
                IndexValue::Reference {
                    target_type: None,
                    target_id: None,
                    url: format!("http://x.org/{}", rng.below(3)),
                }
            }
        }
        6 => IndexValue::Uri { value: rng.pick(uris()).to_string() },
        _ => IndexValue::Composite {
            system: opt(rng.pick(systems())),
            code: rng.pick(codes()).to_string(),
            second: Box::new(value(rng, second_kind(param), param)),
        },
    }
}

fn entries(rng: &mut Rng) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for _ in 0..rng.below(10) {
        let kind = rng.below(8);
        let param = format!("{}{kind}", rng.pick(&PARAMS));
        let value = value(rng, kind, &param);
        out.push(IndexEntry { param, value });
    }
    if rng.chance(30) {
        out.push(IndexEntry { param: "subject".into(), value: value(rng, 5, "subject") });
    }
    for param in ["_text", "_content"] {
        if rng.chance(50) {
            let n = 1 + rng.below(6);
            let tokens: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
            out.push(IndexEntry { param: param.into(), value: IndexValue::FullText { tokens: tokens.join(" ") } });
        }
    }
    out
}

fn test(rng: &mut Rng, kind: usize, param: &str) -> Test {
    let op = rng.pick(&[
        RangeOp::Eq,
        RangeOp::Ne,
        RangeOp::Gt,
        RangeOp::Lt,
        RangeOp::Ge,
        RangeOp::Le,
        RangeOp::Sa,
        RangeOp::Eb,
        RangeOp::Ap,
    ]);
    let system = |rng: &mut Rng| match rng.below(3) {
        0 => SystemMatch::Any,
        1 => SystemMatch::Absent,
        _ => SystemMatch::Is(rng.pick(&systems()[1..]).to_string()),
    };
    match kind {
        0 => match rng.below(4) {
            0 => Test::TokenText(rng.pick(&["blood", "BLOOD P", "血", "heart %", "b"]).to_string()),
            1 => Test::TokenIn(
                (0..rng.below(4)).map(|_| (rng.pick(systems()).to_string(), rng.pick(codes()).to_string())).collect(),
            ),
            _ => Test::Token { system: system(rng), code: rng.chance(80).then(|| rng.pick(codes()).to_string()) },
        },
        1 => {
            let s = rng.pick(&["yama", "Yamada", "山田", "zu", "%", "_", "o'b", "äbc", "a_b", "taro"]).to_string();
            match rng.below(3) {
                0 => Test::StringStarts(s.to_lowercase()),
                1 => Test::StringContains(s.to_lowercase()),
                _ => Test::StringExact(s),
            }
        }
        2 => {
            let lo = rng.below(110) as i64 * 10;
            Test::Date { op, lo, hi: lo + [1, 10, 100][rng.below(3)] }
        }
        3 => {
            let v = rng.below(40) as f64 / 4.0 - 2.0;
            Test::Number { op, value: v, lo: v - 0.125, hi: v + 0.125 }
        }
        4 => {
            let v = rng.below(40) as f64 / 2.0;
            Test::Quantity {
                op,
                value: v,
                lo: v - 0.25,
                hi: v + 0.25,
                system: rng.chance(30).then(|| "http://unitsofmeasure.org".to_string()),
                code: rng.chance(50).then(|| rng.pick(&["mg", "g"]).to_string()),
            }
        }
        5 => Test::Reference {
            target_type: rng.chance(50).then(|| rng.pick(&["Patient", "Group"]).to_string()),
            target_id: rng.chance(70).then(|| target_id(rng.below(8))),
            url: rng.chance(20).then(|| format!("http://x.org/{}", rng.below(3))),
        },
        6 => {
            let u = rng.pick(uris()).to_string();
            match rng.below(3) {
                0 => Test::UriExact(u),
                1 => Test::UriBelow(u),
                _ => Test::UriAbove(format!("{u}/z")),
            }
        }
        _ => Test::Composite {
            system: system(rng),
            code: rng.pick(codes()).to_string(),
            second: Box::new(test(rng, second_kind(param), param)),
        },
    }
}

fn kind_of(k: usize) -> IndexKind {
    [
        IndexKind::Token,
        IndexKind::String,
        IndexKind::Date,
        IndexKind::Number,
        IndexKind::Quantity,
        IndexKind::Reference,
        IndexKind::Uri,
        IndexKind::Composite,
    ][k]
}

fn fulltext(rng: &mut Rng) -> String {
    let groups: Vec<String> = (0..1 + rng.below(2))
        .map(|_| {
            let terms: Vec<String> = (0..1 + rng.below(2))
                .map(|_| {
                    let n = 1 + rng.below(2);
                    let words: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
                    format!("(\"{}\"{})", words.join(" "), if rng.chance(20) { " *" } else { "" })
                })
                .collect();
            format!("({})", terms.join(" OR "))
        })
        .collect();
    groups.join(" AND ")
}

fn condition(rng: &mut Rng, ty: Option<&str>, depth: usize) -> Condition {
    let kind = rng.below(8);
    let param = format!("{}{kind}", rng.pick(&PARAMS));
    match rng.below(if depth > 0 { 9 } else { 11 }) {
        0 => Condition::Id(format!("r{}", rng.below(40))),
        1 => {
            let lo = rng.below(300) as i64;
            Condition::LastUpdated { lo, hi: lo + rng.below(100) as i64 }
        }
        2 => Condition::Missing { param, kind: kind_of(kind), missing: rng.chance(50) },
        3 => {
            let lo = rng.below(100) as i64 * 10;
            Condition::DateWindow { param: format!("{}2", rng.pick(&PARAMS)), lo, hi: lo + 50 }
        }
        4 => Condition::FullText { narrative_only: rng.chance(50), query: fulltext(rng), negate: rng.chance(20) },
        5 => Condition::Compartment {
            params: vec![("Observation".into(), "subject".into()), ("Patient".into(), "q5".into())],
            target_type: "Patient".into(),
            target_id: rng.chance(70).then(|| target_id(rng.below(8))),
        },
        6 => Condition::ResourceType(rng.pick(&["Patient", "Observation"]).to_string()),
        9 => Condition::Chain {
            param: "subject".into(),
            target_type: "Patient".into(),
            query: Box::new(query(rng, Some("Patient"), depth + 1)),
        },
        10 if ty.is_some() => Condition::Has {
            source_type: "Observation".into(),
            param: "subject".into(),
            query: Box::new(query(rng, Some("Observation"), depth + 1)),
        },
        _ => Condition::Index { test: test(rng, kind, &param), param, negate: rng.chance(15) },
    }
}

/// A clause of several values of one parameter (`code=a,b,c`).
fn values_clause(rng: &mut Rng) -> Clause {
    let kind = rng.below(8);
    let param = format!("{}{kind}", rng.pick(&PARAMS));
    let any = (0..2 + rng.below(5))
        .map(|_| Condition::Index { param: param.clone(), test: test(rng, kind, &param), negate: false })
        .collect();
    Clause { any }
}

fn query(rng: &mut Rng, ty: Option<&str>, depth: usize) -> SearchQuery {
    let clauses = (0..rng.below(3))
        .map(|_| match rng.chance(25) {
            true => values_clause(rng),
            false => Clause { any: (0..1 + rng.below(2)).map(|_| condition(rng, ty, depth)).collect() },
        })
        .collect();
    SearchQuery { resource_type: ty.map(String::from), clauses, count: 1000, ..Default::default() }
}

fn sort(rng: &mut Rng) -> Vec<SortKey> {
    (0..1 + rng.below(2))
        .map(|_| {
            let param = match rng.below(4) {
                0 => SortParam::Id,
                1 => SortParam::LastUpdated,
                _ => {
                    let kind = rng.below(8);
                    SortParam::Index { param: format!("{}{kind}", rng.pick(&PARAMS)), kind: kind_of(kind) }
                }
            };
            SortKey { param, descending: rng.chance(50) }
        })
        .collect()
}

fn write(stores: &[&dyn Store], rng: &mut Rng) {
    let mut versions: std::collections::HashMap<String, u64> = Default::default();
    for step in 0..400 {
        let id = format!("r{}", rng.below(60));
        let ty = if id.ends_with(['0', '1', '2']) { "Patient" } else { "Observation" };
        let version = versions.get(&id).copied().unwrap_or(0) + 1;
        let delete = version > 1 && rng.chance(10);
        let index = entries(rng);
        let body = format!(r#"{{"resourceType":"{ty}","id":"{id}","step":{step}}}"#);
        for store in stores {
            store
                .write(&mut |txn| {
                    txn.put(&NewVersion {
                        resource_type: ty,
                        id: &id,
                        version,
                        last_updated_ms: step,
                        method: if delete { Method::Delete } else { Method::Put },
                        body: (!delete).then_some(body.as_bytes()),
                        index: &index,
                    })
                })
                .unwrap();
        }
        versions.insert(id, version);
    }
}

#[test]
fn generated_searches_agree_with_sqlite() {
    let Some(pg) = tsunagu_store_postgres::throwaway::test_store() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    write(&[&sqlite, &*pg], &mut rng);
    let (mut compared, mut nonempty) = (0, 0);
    for i in 0..1500 {
        let ty = rng.pick(&[Some("Patient"), Some("Observation"), None]);
        let mut q = query(&mut rng, ty, 0);
        q.total = rng.chance(50);
        match rng.below(3) {
            0 => {
                q.sort = sort(&mut rng);
                q.count = 1 + rng.below(20);
                q.offset = rng.below(10);
            }
            1 => {
                q.count = 1 + rng.below(10);
                q.after_seq = Some(rng.below(400) as i64);
            }
            _ => {}
        }
        // Every other query walks the sort index whatever its matches.
        pg.set_sort_walk(if i % 2 == 1 { Some(0) } else { None });
        let a = sqlite.search(&q).unwrap();
        let b = pg.search(&q).unwrap_or_else(|e| panic!("query {i} {q:#?}: {e}"));
        let key = |p: &tsunagu_store::SearchPage| {
            (p.resources.iter().map(|v| (v.id.clone(), v.seq, v.version)).collect::<Vec<_>>(), p.total, p.more)
        };
        assert_eq!(key(&a), key(&b), "query {i}: {q:#?}");
        compared += 1;
        nonempty += usize::from(!a.resources.is_empty());
    }
    // History and the live walk too.
    for scope in [
        HistoryScope::System,
        HistoryScope::Type("Patient".into()),
        HistoryScope::Instance("Observation".into(), "r5".into()),
    ] {
        for at in [None, Some((150, 151)), Some((120, 250))] {
            let h = HistoryQuery {
                scope: scope.clone(),
                since_ms: Some(100),
                at,
                before_seq: Some(350),
                count: 50,
                max_bytes: None,
            };
            let ids = |s: &dyn Store| {
                s.history(&h).unwrap().versions.into_iter().map(|v| (v.id, v.version, v.seq)).collect::<Vec<_>>()
            };
            assert_eq!(ids(&sqlite), ids(&*pg));
            assert_eq!(sqlite.history_count(&h).unwrap(), pg.history_count(&h).unwrap());
        }
    }
    let walk = |s: &dyn Store| s.current_after(100, 1000).unwrap().into_iter().map(|v| v.seq).collect::<Vec<_>>();
    assert_eq!(walk(&sqlite), walk(&*pg));
    eprintln!("differential: {compared} searches agree ({nonempty} with matches)");
}

/// Sorts led by an indexed parameter, alone or with a later key, with no other condition
/// or with conditions tested on each walked row (PostgreSQL walks the index in batches;
/// told to walk whatever the matches): many ties, several values per resource, resources
/// without one, pages past the valued ones, matches among them rare or common.
#[test]
fn index_led_sorts_agree_with_sqlite() {
    let Some(pg) = tsunagu_store_postgres::throwaway::test_store() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path(), SyncMode::Normal).unwrap();
    let mut rng = Rng(0x5eed_0000_5047_0002);
    let n = 600;
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let index: Vec<Vec<IndexEntry>> = (0..n)
        .map(|i| {
            let mut e = Vec::new();
            if i % 7 != 0 {
                for _ in 0..1 + rng.below(3) {
                    // Some codes share their first 3,000 characters (PostgreSQL's keys).
                    let code = match rng.below(12) {
                        n if n < 3 => format!("{}{n}", long_head()),
                        n => format!("c{n}"),
                    };
                    let system = opt(rng.pick(systems()));
                    e.push(IndexEntry {
                        param: "code".into(),
                        value: IndexValue::Token { system, code, display: None },
                    });
                    let lo = rng.below(50) as i64 * 100;
                    e.push(IndexEntry {
                        param: "date".into(),
                        // Some wider than a day, from days before every other (both stores
                        // keep those apart).
                        value: match i % 13 {
                            5 => IndexValue::Date { lo: lo - 3 * 86_400_000, hi: lo + 86_400_000 },
                            _ => IndexValue::Date { lo, hi: lo + 1 + rng.below(3) as i64 },
                        },
                    });
                    e.push(IndexEntry {
                        param: "n".into(),
                        value: IndexValue::Number { value: rng.below(30) as f64 / 2.0 },
                    });
                    let value = rng.pick(uris()).to_string();
                    e.push(IndexEntry { param: "u".into(), value: IndexValue::Uri { value } });
                    // Several units, so a walk merges runs; equal values across them.
                    let value = IndexValue::Quantity {
                        system: opt(rng.pick(&["", "http://unitsofmeasure.org"])),
                        code: rng.chance(80).then(|| rng.pick(&["mg", "g", "mm[Hg]"]).to_string()),
                        value: rng.below(20) as f64 / 2.0,
                    };
                    e.push(IndexEntry { param: "q".into(), value });
                }
            }
            e
        })
        .collect();
    let body = b"{}";
    let versions: Vec<NewVersion<'_>> = (0..n)
        .map(|i| NewVersion {
            resource_type: "Observation",
            id: &ids[i],
            version: 1,
            // Ties, for sorts by `_lastUpdated` after another key.
            last_updated_ms: i as i64 / 3,
            method: Method::Post,
            body: Some(body),
            index: &index[i],
        })
        .collect();
    for store in [&sqlite as &dyn Store, &*pg] {
        for chunk in versions.chunks(50) {
            store.write(&mut |txn| txn.put_new(chunk)).unwrap();
        }
        // Some deleted and some updated, so rows come and go.
        for i in (0..n).step_by(11) {
            store
                .write(&mut |txn| {
                    txn.put(&NewVersion {
                        version: 2,
                        method: Method::Delete,
                        body: None,
                        index: &[],
                        ..versions[i].clone()
                    })
                })
                .unwrap();
        }
    }
    pg.set_sort_walk(Some(0));
    let token = |code: &str| Test::Token { system: SystemMatch::Any, code: Some(code.into()) };
    let one = |c: Condition| Clause { any: vec![c] };
    let index = |param: &str, test: Test, negate: bool| Condition::Index { param: param.into(), test, negate };
    let filters: Vec<Vec<Clause>> = vec![
        vec![],
        vec![one(index("code", token("c3"), false))],
        vec![one(index("code", token("c5"), true))],
        vec![one(Condition::Missing { param: "n".into(), kind: IndexKind::Number, missing: false })],
        vec![one(Condition::DateWindow { param: "date".into(), lo: 1000, hi: 3000 })],
        vec![
            one(index("code", token("c7"), false)),
            Clause {
                any: vec![index("u", Test::UriExact(uris()[0].into()), false), index("code", token("c9"), false)],
            },
        ],
        vec![one(index("code", token("absent"), false))],
    ];
    let keys = [
        ("code", IndexKind::Token),
        ("date", IndexKind::Date),
        ("n", IndexKind::Number),
        ("u", IndexKind::Uri),
        ("q", IndexKind::Quantity),
    ];
    let key = |(param, kind): (&str, IndexKind), descending| SortKey {
        param: SortParam::Index { param: param.into(), kind },
        descending,
    };
    let mut compared = 0;
    let mut compare = |clauses: &Vec<Clause>, sort: Vec<SortKey>, offset, count| {
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: clauses.clone(),
            sort,
            count,
            offset,
            total: true,
            ..Default::default()
        };
        let page = |p: tsunagu_store::SearchPage| {
            (p.resources.into_iter().map(|v| v.seq).collect::<Vec<_>>(), p.total, p.more)
        };
        assert_eq!(page(sqlite.search(&q).unwrap()), page(pg.search(&q).unwrap()), "{q:?}");
        compared += 1;
    };
    for clauses in &filters {
        for first in keys {
            for descending in [false, true] {
                for offset in [0, 7, 150, 480, 500, 520, 560] {
                    for count in [1, 10, 200] {
                        compare(clauses, vec![key(first, descending)], offset, count);
                    }
                }
            }
        }
    }
    // A later key: the walk completes the page's last group of equal first keys, or with
    // groups walked from 0 or 20 members, walks a group reaching into the page by the
    // next key (its index, or the resource table's order for `_lastUpdated` and `_id`).
    for walk_from in [None, Some(20), Some(0)] {
        pg.set_sort_walk(walk_from);
        for clauses in &filters {
            for first in keys {
                let seconds = keys
                    .into_iter()
                    .filter(|k| k.0 != first.0)
                    .map(|k| SortParam::Index { param: k.0.into(), kind: k.1 });
                for second in seconds.chain([SortParam::LastUpdated, SortParam::Id]) {
                    for (descending, later_descending) in [(false, false), (false, true), (true, false), (true, true)] {
                        for (offset, count) in [(0, 1), (30, 10), (480, 10)] {
                            let later = SortKey { param: second.clone(), descending: later_descending };
                            compare(clauses, vec![key(first, descending), later], offset, count);
                        }
                    }
                }
            }
        }
    }
    // Filtered walks off: sorted pages and totals from the matches' index rows alone.
    pg.set_sort_walk(None);
    for clauses in filters.iter().filter(|c| !c.is_empty()) {
        for first in keys {
            for descending in [false, true] {
                for (offset, count) in [(0, 10), (7, 10), (480, 10), (0, 200)] {
                    compare(clauses, vec![key(first, descending)], offset, count);
                }
            }
        }
    }
    eprintln!("sorts led by an indexed parameter: {compared} pages agree");
}
