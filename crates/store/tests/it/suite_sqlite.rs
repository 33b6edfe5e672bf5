//! The backend-generic store suite (`suite/mod.rs`) on the embedded SQLite store.

#[macro_use]
#[path = "suite/mod.rs"]
mod suite;

fn fresh() -> Option<(Checked, std::sync::Arc<dyn tsunagu_store::Store>)> {
    let (dir, store) = temp_store();
    Some((Checked(dir), std::sync::Arc::new(store)))
}

/// A suite test's data directory, whose store must pass the consistency check (no index
/// rows of old versions, kept counts equal to a recount) when the test ends.
struct Checked(tempfile::TempDir);

impl Drop for Checked {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let problems = tsunagu_store::Snapshot::open(self.0.path()).unwrap().consistency_check().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

store_suite!(fresh());

/// A narrow date window over many dated resources (`date=ge…&date=lt…` adds one) is
/// estimated by the window's own rows: its page comes from the window's few candidates,
/// not from a walk of every resource in write order that the two half-open conditions,
/// each matching half the type, would suggest.
#[test]
fn narrow_date_windows_are_estimated_by_their_own_rows() {
    use tsunagu_store::{Condition, RangeOp, Test};
    const DAY: i64 = 86_400_000;
    let (_dir, store) = temp_store();
    for d in 0..6000 {
        suite::put(&store, "Observation", &format!("o{d}"), 1, &[suite::date("date", d * DAY, d * DAY + DAY - 1)]);
    }
    let (lo, hi) = (3000 * DAY, 3007 * DAY);
    let q = suite::q(
        Some("Observation"),
        vec![
            vec![suite::index("date", Test::Date { op: RangeOp::Ge, lo, hi: lo + DAY - 1 })],
            vec![suite::index("date", Test::Date { op: RangeOp::Lt, lo: hi, hi: hi + DAY - 1 })],
            vec![Condition::DateWindow { param: "date".into(), lo, hi }],
        ],
    );
    let x = store.explain(&q).unwrap();
    assert_eq!(x.estimate, Some(7), "the window's own rows");
    assert!(!x.plans.iter().any(|p| p.contains("dense")), "{:?}", x.plans);
    let ids: Vec<String> = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
    assert_eq!(ids, (3000..3007).map(|d| format!("o{d}")).collect::<Vec<_>>());
}

/// A half-open date condition that matches few of many dated resources (`gt`, `ge`, `sa`
/// near the newest date) is collected from its lower bound, wide values starting before
/// it included, instead of probed on every resource: the same page in far fewer steps than
/// the probe the store falls back to with its walks switched off.
#[test]
fn rare_half_open_dates_are_collected_from_their_lower_bound() {
    use tsunagu_store::{RangeOp, Test};
    const DAY: i64 = 86_400_000;
    let (_dir, store) = temp_store();
    for d in 0..8000 {
        suite::put(&store, "Observation", &format!("o{d}"), 1, &[suite::date("date", d * DAY, d * DAY + DAY - 1)]);
    }
    // A period from the first day past the last: wide, starting long before any bound.
    suite::put(&store, "Observation", "wide", 1, &[suite::date("date", 0, 9000 * DAY)]);
    let day = |d: i64| (d * DAY, d * DAY + DAY - 1);
    let cases = [
        (RangeOp::Gt, day(7990), (7991..8000).map(|d| format!("o{d}")).chain(["wide".into()]).collect::<Vec<_>>()),
        (RangeOp::Ge, day(7995), (7995..8000).map(|d| format!("o{d}")).chain(["wide".into()]).collect()),
        (RangeOp::Sa, day(7996), (7997..8000).map(|d| format!("o{d}")).collect()),
        (RangeOp::Gt, day(9500), Vec::new()),
    ];
    for (op, (lo, hi), want) in cases {
        let q = suite::q(Some("Observation"), vec![vec![suite::index("date", Test::Date { op, lo, hi })]]);
        let mut q = q;
        q.total = true;
        let collected = store.explain(&q).unwrap();
        assert!(collected.plans.iter().any(|p| p.contains("collected")), "{op:?}: {:?}", collected.plans);
        store.set_sort_walk(None);
        let probed = store.explain(&q).unwrap();
        store.set_sort_walk(Some(2000));
        assert!(!probed.plans.iter().any(|p| p.contains("collected")), "{op:?}: {:?}", probed.plans);
        let page = |x: tsunagu_store::Explain| {
            let p = x.page.unwrap();
            (p.resources.into_iter().map(|v| v.id).collect::<Vec<_>>(), p.total)
        };
        let (c_steps, p_steps) = (collected.steps, probed.steps);
        let (c, p) = (page(collected), page(probed));
        assert_eq!(c, p, "{op:?}: collected and probed pages");
        let mut ids = c.0.clone();
        ids.sort();
        let mut want = want;
        want.sort();
        assert_eq!(ids, want, "{op:?}");
        assert_eq!(c.1, Some(want.len() as u64), "{op:?}");
        assert!(p_steps > 0 && c_steps * 10 <= p_steps, "{op:?}: {c_steps} steps collected, {p_steps} probed");
    }
}

/// A one-key sort walks the token (string) index in its primary key's order: a code met in
/// two systems (a string in two spellings) has its rows in two runs of `seq`, so its
/// resources must be collected and put in `seq` order. The walk (from the first match,
/// several pages, both directions) gives the general plan's pages.
#[test]
fn one_key_walks_order_values_split_over_systems_and_spellings_by_seq() {
    use tsunagu_store::{IndexKind, SortKey, SortParam};
    let (_dir, store) = temp_store();
    for i in 0..60 {
        let system = if i % 3 == 0 { "http://b" } else { "http://a" };
        let code = ["final", "amended", "final", "preliminary"][i % 4];
        let family = ["Smith", "smith", "SMITH", "Tanaka"][(i / 2) % 4];
        let entries = [suite::token("status", system, code, None), suite::string("family", family)];
        suite::put(&store, "Observation", &format!("o{i}"), 1, &entries);
    }
    for (param, kind) in [("status", IndexKind::Token), ("family", IndexKind::String)] {
        for descending in [false, true] {
            for (offset, count) in [(0, 7), (7, 7), (14, 20), (50, 20)] {
                let mut q = suite::q(Some("Observation"), vec![]);
                q.sort = vec![SortKey { param: SortParam::Index { param: param.into(), kind }, descending }];
                (q.offset, q.count) = (offset, count);
                store.set_sort_walk(None);
                let general = suite::ids(&store, &q);
                store.set_sort_walk(Some(0));
                let before = store.sort_walk_pages();
                let walked = suite::ids(&store, &q);
                // A page reaching past the last match is left to the general plan.
                let full = offset + count < 60;
                assert_eq!(store.sort_walk_pages(), before + full as u64, "{param} answered by the walk");
                assert_eq!(walked, general, "{param} descending {descending} offset {offset}");
            }
        }
    }
    store.set_sort_walk(Some(2000));
}

/// A chain whose inner query matches many targets is tested on each candidate's own
/// references (its index record) instead of collecting every reference to every matching
/// target first; either way the pages, their order and the totals are the same, alone, with
/// another condition (a driven plan), sorted (a sort walk) and paged.
#[test]
fn chains_to_many_targets_are_probed_on_each_candidate_with_the_same_answers() {
    use tsunagu_store::{Condition, IndexKind, SortKey, SortParam, Store, SystemMatch, Test};
    let (_dir, store) = temp_store();
    put_patients(&store, |p| p % 3 == 0);
    for o in 0..3000usize {
        let patient = (o * 7919) % 331;
        let code = ["a", "b", "c"][o % 3];
        let mut entries = vec![suite::token("code", "http://loinc.org", code, None)];
        // Some Observations refer to no patient, some to one that does not exist (p300..).
        if o % 11 != 0 {
            entries.push(suite::reference("subject", "Patient", &format!("p{patient}")));
        }
        suite::put(&store, "Observation", &format!("o{o}"), 1, &entries);
    }
    let female = female_subjects;
    let code_a = || {
        suite::index("code", Test::Token { system: SystemMatch::Is("http://loinc.org".into()), code: Some("a".into()) })
    };
    let shapes: Vec<(&str, Vec<Vec<Condition>>, bool)> = vec![
        ("chain", vec![vec![female()]], false),
        ("chain and code", vec![vec![female()], vec![code_a()]], false),
        ("chain sorted by code", vec![vec![female()]], true),
    ];
    for (name, clauses, sorted) in shapes {
        for (offset, count) in [(0, 10), (10, 25), (400, 50)] {
            let mut q = suite::q(Some("Observation"), clauses.clone());
            (q.offset, q.count) = (offset, count);
            if sorted {
                q.sort = vec![SortKey {
                    param: SortParam::Index { param: "code".into(), kind: IndexKind::Token },
                    descending: true,
                }];
            }
            store.set_sort_walk(None);
            let general = suite::ids(&store, &q);
            store.set_sort_walk(Some(2000));
            let x = store.explain(&q).unwrap();
            assert!(x.plans.iter().any(|p| p.contains("chain")), "{name}: {:?}", x.plans);
            let probed: Vec<String> = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
            assert_eq!(probed, general, "{name}, offset {offset}");
            assert!(!general.is_empty() || offset == 400, "{name}, offset {offset}: no matches");
        }
        let mut q = suite::q(Some("Observation"), clauses.clone());
        q.total = true;
        store.set_sort_walk(None);
        let want = store.search(&q).unwrap().total;
        store.set_sort_walk(Some(0));
        assert_eq!(store.search(&q).unwrap().total, want, "{name}: total");
    }
    store.set_sort_walk(Some(2000));
}

/// Patients `p0`..`p299`, female where `female(p)`, male otherwise.
fn put_patients(store: &tsunagu_store::SqliteStore, female: impl Fn(usize) -> bool) {
    for p in 0..300 {
        let gender = if female(p) { "female" } else { "male" };
        suite::put(store, "Patient", &format!("p{p}"), 1, &[suite::token("gender", "", gender, None)]);
    }
}

/// `subject:Patient.gender=female`.
fn female_subjects() -> tsunagu_store::Condition {
    use tsunagu_store::{SystemMatch, Test};
    let inner = suite::q(
        Some("Patient"),
        vec![vec![suite::index("gender", Test::Token { system: SystemMatch::Any, code: Some("female".into()) })]],
    );
    tsunagu_store::Condition::Chain { param: "subject".into(), target_type: "Patient".into(), query: Box::new(inner) }
}

/// A chain to many targets whose referrers are rare among the candidates: the page in
/// write order probing each candidate gives up after its steps and the references are
/// collected instead (`Observation?encounter.type=…` at a million resources: 91 ms of
/// probing 5,000 candidates), with the general plan's pages.
#[test]
fn a_probed_chain_with_rare_referrers_gives_way_to_collecting_them() {
    let (_dir, store) = temp_store();
    put_patients(&store, |p| p % 2 == 0);
    // 50,000 Observations of men, then 30 of women.
    let n = 50_030;
    put_observations(&store, n, |i| {
        let patient = if i < 50_000 { 2 * (i % 150) + 1 } else { 2 * (i % 150) };
        vec![
            suite::token("status", "", "final", None),
            suite::token("code", "http://loinc.org", &format!("c{}", i % 50), None),
            suite::reference("subject", "Patient", &format!("p{patient}")),
        ]
    });
    let chain = female_subjects();
    for (after_seq, count) in [(None, 10), (Some(1_000), 10)] {
        let mut q = suite::q(Some("Observation"), vec![vec![chain.clone()]]);
        (q.after_seq, q.count) = (after_seq, count);
        store.set_sort_walk(None);
        let general = suite::ids(&store, &q);
        store.set_sort_walk(Some(2000));
        let x = store.explain(&q).unwrap();
        assert!(x.plans.iter().any(|p| p.contains("probed chain gave up")), "{:?}", x.plans);
        let ids: Vec<String> = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
        assert_eq!(ids, general, "from {after_seq:?}");
        assert_eq!(general.len(), 10);
    }
}

/// A clause of several values (`status=amended,corrected`, a thousand codes) is one
/// collection of their rows when they are rare — not a test of every resource of the type
/// against one list per value — and a walk in write order or in sort order testing each
/// row when they are common; every plan gives the general plan's pages and totals.
#[test]
fn clauses_of_several_values_are_collected_when_rare_and_probed_when_common() {
    use tsunagu_store::{IndexKind, SortKey, SortParam, Store, SystemMatch, Test};
    const DAY: i64 = 86_400_000;
    let (_dir, store) = temp_store();
    let n = 5000;
    for i in 0..n {
        let status = if i % 1000 == 7 { "amended" } else { "final" };
        let entries = [
            suite::token("status", "http://hl7.org/fhir/observation-status", status, None),
            suite::token("code", "http://loinc.org", &format!("c{}", i % 100), None),
            suite::date("date", (i % 977) * DAY, (i % 977) * DAY + DAY - 1),
        ];
        suite::put(&store, "Observation", &format!("o{i}"), 1, &entries);
    }
    let code = |c: &str| Test::Token { system: SystemMatch::Any, code: Some(c.into()) };
    let clause = |param: &str, codes: &[String]| codes.iter().map(|c| suite::index(param, code(c))).collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rare =
        suite::q(Some("Observation"), vec![clause("status", &strings(&["amended", "corrected", "preliminary"]))]);
    let common = suite::q(Some("Observation"), vec![clause("status", &strings(&["final", "amended"]))]);
    // A thousand codes, a tenth of them present: more than one compound SELECT holds.
    let many =
        suite::q(Some("Observation"), vec![clause("code", &(0..1000).map(|c| format!("c{c}")).collect::<Vec<_>>())]);
    let scan = suite::q(Some("Observation"), vec![vec![suite::not("status", code("corrected"))]]);
    let want = |keep: &dyn Fn(i64) -> bool| (0..n).filter(|i| keep(*i)).map(|i| format!("o{i}")).collect::<Vec<_>>();
    let cases: [(&str, &tsunagu_store::SearchQuery, Vec<String>); 3] = [
        ("rare", &rare, want(&|i| i % 1000 == 7)),
        ("common", &common, want(&|_| true)),
        ("many", &many, want(&|_| true)),
    ];
    for (name, q, want) in cases {
        for (offset_seq, count) in [(None, 10), (Some(3), 25)] {
            let mut q = q.clone();
            (q.count, q.after_seq, q.total) = (count, offset_seq, false);
            // Seqs count from 1 in write order: `o{i}` is seq i + 1.
            let skip = offset_seq.map_or(0, |s| s as usize);
            let want_page: Vec<String> =
                want.iter().filter(|id| id[1..].parse::<usize>().unwrap() >= skip).take(count).cloned().collect();
            assert_eq!(suite::ids(&store, &q), want_page, "{name} from {offset_seq:?}");
        }
        let mut q = q.clone();
        (q.count, q.total) = (2, true);
        assert_eq!(store.search(&q).unwrap().total, Some(want.len() as u64), "{name} total");
    }
    let (rare_x, scan_x) = (store.explain(&rare).unwrap(), store.explain(&scan).unwrap());
    assert_eq!(rare_x.estimate, Some(5), "the rare values' own rows");
    assert!(rare_x.steps * 10 <= scan_x.steps, "rare values: {} steps, a scan {}", rare_x.steps, scan_x.steps);
    // A thousand values none of which is there: one list of their rows (about 15 steps a
    // value), not a test of every resource against sixteen lists (half a million steps).
    let absent =
        suite::q(Some("Observation"), vec![clause("code", &(0..1000).map(|c| format!("x{c}")).collect::<Vec<_>>())]);
    let absent_x = store.explain(&absent).unwrap();
    assert!(absent_x.page.unwrap().resources.is_empty());
    assert!(absent_x.steps <= 50_000, "absent values: {} steps", absent_x.steps);
    let common_x = store.explain(&common).unwrap();
    assert!(common_x.plans.iter().any(|p| p.contains("dense")), "{:?}", common_x.plans);
    // Sorted: the walk tests the common values on each row; its pages are the general plan's.
    for descending in [false, true] {
        for (offset, count) in [(0, 10), (40, 30)] {
            let mut q = common.clone();
            q.sort =
                vec![SortKey { param: SortParam::Index { param: "date".into(), kind: IndexKind::Date }, descending }];
            (q.offset, q.count) = (offset, count);
            let (general, walked, plans) = general_and_walked(&store, &q);
            assert!(plans.iter().any(|p| p.contains("common condition")), "{plans:?}");
            assert_eq!(walked, general, "descending {descending} offset {offset}");
        }
    }
}

/// A sort by a quantity walks its values in order by merging one run per unit code (the
/// primary key leads with the unit), as the first key, as a later key walking a large
/// group, with a filter tested on each row and with resources holding values in several
/// units or none: every page is the general plan's.
#[test]
fn quantity_sorts_merge_their_units_and_give_the_general_plans_pages() {
    use tsunagu_store::{IndexKind, SortKey, SortParam, SystemMatch, Test};
    let (_dir, store) = temp_store();
    for i in 0..1500_i64 {
        let mut entries = vec![
            suite::token("status", "", if i % 5 == 0 { "amended" } else { "final" }, None),
            suite::token("code", "http://loinc.org", &format!("c{}", i % 7), None),
        ];
        if i % 11 != 0 {
            let unit = ["mg", "g", "cm", "kg"][(i % 4) as usize];
            entries.push(quantity(unit, ((i * 37) % 400) as f64 / 4.0));
        }
        if i % 13 == 0 {
            entries.push(quantity("mmol/L", ((i * 7) % 90) as f64));
        }
        suite::put(&store, "Observation", &format!("o{i}"), 1, &entries);
    }
    let key =
        |param: &str, kind, descending| SortKey { param: SortParam::Index { param: param.into(), kind }, descending };
    let qty = |d| key("value-quantity", IndexKind::Quantity, d);
    let status = |d| key("status", IndexKind::Token, d);
    let sorts = [vec![qty(false)], vec![qty(true)], vec![status(false), qty(true)], vec![qty(false), status(true)]];
    let code = suite::index("code", Test::Token { system: SystemMatch::Any, code: Some("c3".into()) });
    let mut walked_first_key = 0;
    for sort in &sorts {
        for conditions in [vec![], vec![vec![code.clone()]]] {
            for (offset, count) in [(0, 10), (35, 20), (1300, 40)] {
                let mut q = suite::q(Some("Observation"), conditions.clone());
                (q.sort, q.offset, q.count) = (sort.clone(), offset, count);
                let (general, walked, plans) = general_and_walked(&store, &q);
                walked_first_key += plans.iter().any(|p| p.contains("sort walk over idx_quantity")) as usize;
                assert_eq!(walked, general, "{sort:?} {conditions:?} offset {offset}: {plans:?}");
            }
        }
    }
    assert!(walked_first_key >= 8, "quantity walks taken: {walked_first_key}");
}

/// A walk sorted by a quantity starts at the bound a condition on the same quantity sets
/// (`value-quantity=gt50&_sort=value-quantity`) while no resource has two values of it, and
/// gives the general plan's pages for every prefix, in both directions, with a unit in the
/// condition, with a window of two conditions and with a later key; once one resource has
/// two values (one outside the bound: its sort value) the bound is not used.
#[test]
fn quantity_walks_start_at_a_bound_on_the_same_quantity() {
    use tsunagu_store::{IndexKind, RangeOp, SortKey, SortParam, Test};
    let (_dir, store) = temp_store();
    for i in 0..1200_i64 {
        let mut entries = vec![suite::token("status", "", if i % 5 == 0 { "amended" } else { "final" }, None)];
        if i % 11 != 0 {
            entries.push(quantity(["mg", "g", "cm"][(i % 3) as usize], ((i * 37) % 400) as f64 / 4.0));
        }
        suite::put(&store, "Observation", &format!("o{i}"), 1, &entries);
    }
    let test = |op, value: f64, unit: Option<&str>| Test::Quantity {
        op,
        value,
        lo: value - 0.5,
        hi: value + 0.5,
        system: None,
        code: unit.map(String::from),
    };
    let cond = |t: Test| vec![suite::index("value-quantity", t)];
    let filters: Vec<Vec<Vec<tsunagu_store::Condition>>> = vec![
        vec![cond(test(RangeOp::Gt, 50.0, None))],
        vec![cond(test(RangeOp::Ge, 50.0, Some("mg")))],
        vec![cond(test(RangeOp::Lt, 20.0, None))],
        vec![cond(test(RangeOp::Le, 20.25, None))],
        vec![cond(test(RangeOp::Eq, 30.0, None))],
        vec![cond(test(RangeOp::Ap, 30.0, Some("g")))],
        vec![cond(test(RangeOp::Sa, 10.0, None)), cond(test(RangeOp::Eb, 60.0, None))],
        vec![cond(test(RangeOp::Ne, 30.0, None))],
    ];
    let key =
        |param: &str, kind, descending| SortKey { param: SortParam::Index { param: param.into(), kind }, descending };
    let sorts = [
        vec![key("value-quantity", IndexKind::Quantity, false)],
        vec![key("value-quantity", IndexKind::Quantity, true)],
        vec![key("value-quantity", IndexKind::Quantity, false), key("status", IndexKind::Token, true)],
    ];
    let run = |expect_bounded: bool| {
        let mut bounded = 0;
        for filter in &filters {
            for sort in &sorts {
                for (offset, count) in [(0, 10), (7, 30), (900, 40)] {
                    let mut q = suite::q(Some("Observation"), filter.clone());
                    (q.sort, q.offset, q.count) = (sort.clone(), offset, count);
                    let (general, walked, plans) = general_and_walked(&store, &q);
                    assert_eq!(walked, general, "{filter:?} {sort:?} offset {offset}: {plans:?}");
                    bounded += plans.iter().any(|p| p.contains("quantity walk bounded")) as usize;
                }
            }
        }
        assert_eq!(bounded > 0, expect_bounded, "bounded walks: {bounded}");
        // Every filter but `ne` bounds the walk, in every sort and page.
        if expect_bounded {
            assert_eq!(bounded, (filters.len() - 1) * sorts.len() * 3);
        }
    };
    run(true);
    // o1 gets a second value below every bound: its ascending sort value.
    suite::put(&store, "Observation", "o1", 2, &[quantity("mg", 55.0), quantity("mg", 1.0)]);
    run(false);
}

/// A `value-quantity` entry in UCUM unit `unit`, for the quantity tests.
fn quantity(unit: &str, value: f64) -> tsunagu_store::IndexEntry {
    suite::entry(
        "value-quantity",
        tsunagu_store::IndexValue::Quantity {
            system: Some("http://unitsofmeasure.org".into()),
            code: Some(unit.into()),
            value,
        },
    )
}

/// A sort walk whose rows almost never pass the filter (`status:not=final` where every
/// resource is final, and also registered so that the other values are many, newest
/// first) gives up after its share of the ceiling and the general plan answers: an empty
/// page, not a 422 after the whole ceiling.
#[test]
fn sort_walks_that_find_nothing_give_way_to_the_general_plan() {
    use tsunagu_store::{IndexKind, SortKey, SortParam, SystemMatch, Test};
    const DAY: i64 = 86_400_000;
    let (_dir, store) = temp_store();
    put_observations(&store, 100_000, |i| {
        let i = i as i64;
        vec![
            suite::token("status", "", "final", None),
            suite::token("status", "", "registered", None),
            suite::date("date", i * DAY, i * DAY + 1),
        ]
    });
    let mut q = suite::q(
        Some("Observation"),
        vec![vec![suite::not("status", Test::Token { system: SystemMatch::Any, code: Some("final".into()) })]],
    );
    q.sort =
        vec![SortKey { param: SortParam::Index { param: "date".into(), kind: IndexKind::Date }, descending: true }];
    q.count = 10;
    store.set_sort_walk(None);
    let general = store.explain(&q).unwrap().steps;
    // Room for the general plan and the walk's share (a million steps) only: a walk that
    // ran on to its end first would pass the ceiling.
    q.max_steps = Some(general + 1_200_000);
    store.set_sort_walk(Some(0));
    let x = store.explain(&q).unwrap();
    store.set_sort_walk(Some(2000));
    assert!(x.plans.iter().any(|p| p.contains("sort walk gave up")), "{:?}", x.plans);
    let page = x.page.expect("answered by the general plan");
    assert!(page.resources.is_empty() && !page.more);
}

/// A quantity walk whose page lies past many other units' larger values gives up on its
/// first share and is tried again with a quarter of what the general plan would take,
/// because the filter's clause has many rows (the general plan decodes each one's sort
/// value): the page is the general plan's, found by the walk.
#[test]
fn a_quantity_walk_past_other_units_is_tried_again() {
    use tsunagu_store::{IndexKind, IndexValue, SortKey, SortParam, SystemMatch, Test};
    let (_dir, store) = temp_store();
    // 30,000 lab values (mg, from 200,000 up) above 100,000 vital signs (cm, below 130,000):
    // descending, the walk passes every lab value before the first vital sign.
    let (labs, vitals) = (30_000, 100_000);
    put_observations(&store, labs + vitals, |i| {
        let (category, unit, value) =
            if i < labs { ("laboratory", "mg", 200_000.0 + i as f64) } else { ("vital-signs", "cm", i as f64) };
        vec![
            suite::token("category", "http://terminology.hl7.org/CodeSystem/observation-category", category, None),
            suite::entry("value", IndexValue::Quantity { system: None, code: Some(unit.into()), value }),
        ]
    });
    let mut q = suite::q(
        Some("Observation"),
        vec![vec![suite::index(
            "category",
            Test::Token { system: SystemMatch::Any, code: Some("vital-signs".into()) },
        )]],
    );
    q.sort = vec![SortKey {
        param: SortParam::Index { param: "value".into(), kind: IndexKind::Quantity },
        descending: true,
    }];
    q.count = 10;
    let (general, walked, plans) = general_and_walked(&store, &q);
    let expected: Vec<String> = (0..10).map(|k| format!("o{}", labs + vitals - 1 - k)).collect();
    assert_eq!(general, expected);
    assert_eq!(walked, expected);
    assert!(plans.iter().any(|p| p.contains("sort walk gave up")), "{plans:?}");
    assert!(plans.iter().any(|p| p.contains("sort walk tried again")), "{plans:?}");
    assert!(plans.iter().any(|p| p.contains("sort walk over idx_quantity")), "{plans:?}");
}

/// A quantity walk whose first matches are sparse (one in 1,000 of the lowest values) gives
/// up on its first share having met a few; those project the whole page within a quarter
/// of what the general plan would sort, so the walk is tried again, with the date probed
/// through `idx_date`'s `seq` index: the page is the general plan's.
#[test]
fn a_walk_whose_matches_project_a_page_is_tried_again() {
    use tsunagu_store::{IndexKind, IndexValue, RangeOp, SortKey, SortParam, Test};
    const YEAR: i64 = 31_536_000_000;
    let (_dir, store) = temp_store();
    // Values below 10,000 match once in 1,000 (10 of them), every one from 10,000 on: the
    // first share (about 6,000 rows here) meets 6, and 35,010 matches leave the second try
    // 700,000 steps, less than the four shares it gets without a projection.
    let n = 45_000;
    put_observations(&store, n, |i| {
        let year = if i >= 10_000 || i % 1000 == 0 { 45 } else { 40 };
        vec![
            suite::date("date", year * YEAR, year * YEAR + 1),
            suite::entry("value", IndexValue::Quantity { system: None, code: Some("mg".into()), value: i as f64 }),
        ]
    });
    let mut q = suite::q(
        Some("Observation"),
        vec![vec![suite::index("date", Test::Date { op: RangeOp::Eq, lo: 45 * YEAR, hi: 46 * YEAR })]],
    );
    q.sort = vec![SortKey {
        param: SortParam::Index { param: "value".into(), kind: IndexKind::Quantity },
        descending: false,
    }];
    q.count = 10;
    let (general, walked, plans) = general_and_walked(&store, &q);
    let expected: Vec<String> = (0..10).map(|k| format!("o{}", k * 1000)).collect();
    assert_eq!(general, expected);
    assert_eq!(walked, expected);
    assert!(plans.iter().any(|p| p.contains("sort walk gave up")), "{plans:?}");
    assert!(plans.iter().any(|p| p.contains("the walk projects Some")), "{plans:?}");
    assert!(plans.iter().any(|p| p.contains("sort walk over idx_quantity")), "{plans:?}");
}

/// Observations `o0`… `o{n-1}` with the index entries `index(i)` gives, one write
/// transaction per thousand.
fn put_observations(
    store: &tsunagu_store::SqliteStore,
    n: usize,
    index: impl Fn(usize) -> Vec<tsunagu_store::IndexEntry>,
) {
    use tsunagu_store::{Method, NewVersion, Store};
    for start in (0..n).step_by(1000) {
        store
            .write(&mut |txn| {
                for i in start..(start + 1000).min(n) {
                    let id = format!("o{i}");
                    let entries = index(i);
                    let body = format!(r#"{{"resourceType":"Observation","id":"{id}"}}"#);
                    txn.put(&NewVersion {
                        resource_type: "Observation",
                        id: &id,
                        version: 1,
                        last_updated_ms: 1000,
                        method: Method::Post,
                        body: Some(body.as_bytes()),
                        index: &entries,
                    })?;
                }
                Ok(())
            })
            .unwrap();
    }
}

/// The page of `q` by the general plan (walks off), then by whatever walk applies (walks
/// tried at any size) with the plans taken; walks back to their default after.
fn general_and_walked(
    store: &tsunagu_store::SqliteStore,
    q: &tsunagu_store::SearchQuery,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    store.set_sort_walk(None);
    let general = suite::ids(store, q);
    store.set_sort_walk(Some(0));
    let x = store.explain(q).unwrap();
    store.set_sort_walk(Some(2000));
    let walked = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
    (general, walked, x.plans)
}

/// The kept counts of live resources and of the parameters they have stay equal to a
/// recount through creates, updates that drop or add a parameter, deletes, re-creates and
/// reindexing; while every resource has `status`, `status:missing=true` is answered as
/// empty, `:missing=false` as every resource and `status:not=` through the other values'
/// rows, and each answer and total (and the type's `_summary=count`) equals the general
/// plan's (which reads none of them), for a code alone, with a system and with none; once
/// one resource lacks `status` they are not used and that resource matches.
#[test]
fn negations_and_missing_use_the_kept_counts_and_agree_with_the_general_plan() {
    use tsunagu_store::{Condition, IndexKind, Method, NewVersion, Store, SystemMatch, Test};
    const S: &str = "http://hl7.org/fhir/observation-status";
    let (dir, store) = temp_store();
    let recount = || {
        let problems = tsunagu_store::Snapshot::open(dir.path()).unwrap().consistency_check().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    };
    // Bulk first versions: most final with a system; some amended, some final without a
    // system, some both.
    let indexes: Vec<Vec<tsunagu_store::IndexEntry>> = (0..400)
        .map(|i| match i % 40 {
            0 => vec![suite::token("status", S, "amended", None)],
            1 => vec![suite::token("status", "", "final", None)],
            2 => vec![suite::token("status", S, "final", None), suite::token("status", S, "amended", None)],
            3 => vec![suite::token("status", "http://other", "final", None)],
            _ => vec![suite::token("status", S, "final", None), suite::token("category", "", "laboratory", None)],
        })
        .collect();
    let ids: Vec<String> = (0..400).map(|i| format!("o{i}")).collect();
    let body = br#"{"resourceType":"Observation"}"#;
    store
        .write(&mut |txn| {
            let versions: Vec<NewVersion<'_>> = (0..400)
                .map(|i| NewVersion {
                    resource_type: "Observation",
                    id: &ids[i],
                    version: 1,
                    last_updated_ms: 1000,
                    method: Method::Post,
                    body: Some(body),
                    index: &indexes[i],
                })
                .collect();
            txn.put_new(&versions)
        })
        .unwrap();
    recount();
    // An update that changes the value, one that drops `category`, a delete, a re-create,
    // and a reindex of one resource.
    suite::put(&store, "Observation", "o4", 2, &[suite::token("status", S, "corrected", None)]);
    suite::put(&store, "Observation", "o5", 2, &[suite::token("status", S, "final", None)]);
    suite::delete(&store, "Observation", "o6", 2);
    suite::put(&store, "Observation", "o7", 2, &[]);
    suite::delete(&store, "Observation", "o7", 3);
    suite::put(&store, "Observation", "o7", 4, &[suite::token("status", S, "amended", None)]);
    let seq = store.read("Observation", "o8").unwrap().unwrap().seq;
    store
        .write(&mut |txn| txn.replace_index(seq, "Observation", &[suite::token("status", S, "preliminary", None)]))
        .unwrap();
    recount();

    let token = |system: SystemMatch| Test::Token { system, code: Some("final".into()) };
    let queries = || {
        vec![
            vec![suite::not("status", token(SystemMatch::Any))],
            vec![suite::not("status", token(SystemMatch::Is(S.into())))],
            vec![suite::not("status", token(SystemMatch::Absent))],
            vec![suite::not("category", Test::Token { system: SystemMatch::Any, code: Some("laboratory".into()) })],
            vec![Condition::Missing { param: "status".into(), kind: IndexKind::Token, missing: true }],
            vec![Condition::Missing { param: "status".into(), kind: IndexKind::Token, missing: false }],
        ]
    };
    // Totals by the general plan and by the chosen one, for the queries and for the type
    // alone (`_summary=count`).
    let totals = || -> Vec<(Option<u64>, Option<u64>)> {
        let mut all: Vec<Vec<Vec<Condition>>> = queries().into_iter().map(|c| vec![c]).collect();
        all.push(Vec::new());
        all.into_iter()
            .map(|clauses| {
                let mut q = suite::q(Some("Observation"), clauses);
                q.total = true;
                q.count = 0;
                store.set_sort_walk(None);
                let general = store.search(&q).unwrap().total;
                store.set_sort_walk(Some(2000));
                (general, store.search(&q).unwrap().total)
            })
            .collect()
    };
    let answers = |expect_counts_used: bool| -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (n, cond) in queries().into_iter().enumerate() {
            let mut q = suite::q(Some("Observation"), vec![cond]);
            q.count = 1000;
            let (general, chosen, plans) = general_and_walked(&store, &q);
            assert_eq!(chosen, general, "query {n}: {plans:?}");
            let used = plans.iter().any(|p| p.contains("every resource has the parameter"));
            // `category` is missing from some resources throughout.
            assert_eq!(used, expect_counts_used && n != 3, "query {n}: {plans:?}");
            out.push(general);
        }
        out
    };
    let before = answers(true);
    let t = totals();
    assert!(t.iter().all(|(general, chosen)| general == chosen), "{t:?}");
    assert_eq!(t[4].1, Some(0));
    assert_eq!(t[5].1, Some(399));
    assert_eq!(t[6].1, Some(399));
    // o4 corrected, o8 preliminary, o0/o40/… amended, o2/o42/… final and amended: not final.
    assert!(before[0].contains(&"o4".to_string()) && before[0].contains(&"o8".to_string()));
    assert!(!before[0].contains(&"o2".to_string()) && !before[0].contains(&"o1".to_string()));
    // `S|final` excludes only that system's final; `|final` only final without a system.
    assert!(before[1].contains(&"o1".to_string()) && before[1].contains(&"o3".to_string()));
    assert!(!before[2].contains(&"o1".to_string()) && before[2].contains(&"o3".to_string()));
    assert!(before[4].is_empty());
    // One resource without `status`: it matches every negation and `:missing=true`.
    suite::put(&store, "Observation", "o9", 2, &[suite::token("category", "", "laboratory", None)]);
    recount();
    // Counts put wrong behind the store's back are found by the check and repaired by a
    // recount (what a reindex ends with).
    let raw = rusqlite::Connection::open(dir.path().join("tsunagu.sqlite")).unwrap();
    raw.execute("UPDATE idx_presence SET n = n + 5 WHERE param = 'category'", []).unwrap();
    drop(raw);
    assert!(!tsunagu_store::Snapshot::open(dir.path()).unwrap().consistency_check().unwrap().is_empty());
    store.recount_statistics().unwrap();
    recount();
    let after = answers(false);
    let t = totals();
    assert!(t.iter().all(|(general, chosen)| general == chosen), "{t:?}");
    assert_eq!((t[4].1, t[5].1, t[6].1), (Some(1), Some(398), Some(399)));
    for (n, ids) in after.iter().enumerate().filter(|(n, _)| *n != 3) {
        // `:missing=false` is the one that leaves it out.
        assert_eq!(ids.contains(&"o9".to_string()), n != 5, "query {n}: {ids:?}");
    }
}

/// Under a steady writer the WAL starts again from its beginning once it is large (a
/// RESTART checkpoint right after a commit): writing about 200 MiB of frames leaves a WAL
/// file far smaller than that, where PASSIVE checkpoints alone let it grow to the writer's
/// 512 MiB backstop. Everything written reads back.
#[test]
fn the_wal_starts_again_under_a_steady_writer() {
    use tsunagu_store::{Method, NewVersion, Store};
    let (dir, store) = temp_store();
    // Each transaction writes 48 resources of about 4 KiB: about 30 pages of frames.
    let text = suite::noise(4000, 7);
    let mut written = 0;
    for t in 0..900 {
        let bodies: Vec<String> =
            (0..48).map(|i| format!(r#"{{"resourceType":"Basic","id":"b{t}-{i}","text":"{text}{t}-{i}"}}"#)).collect();
        let ids: Vec<String> = (0..48).map(|i| format!("b{t}-{i}")).collect();
        let versions: Vec<NewVersion<'_>> = (0..48)
            .map(|i| NewVersion {
                resource_type: "Basic",
                id: &ids[i],
                version: 1,
                last_updated_ms: t * 100 + i as i64,
                method: Method::Post,
                body: Some(bodies[i].as_bytes()),
                index: &[],
            })
            .collect();
        store.write(&mut |txn| versions.iter().try_for_each(|v| txn.put(v))).unwrap();
        written += 48;
        // A client's time between writes: the writes span several checkpoint intervals.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let wal = std::fs::metadata(dir.path().join("tsunagu.sqlite-wal")).map(|m| m.len()).unwrap_or(0);
    let data = std::fs::metadata(dir.path().join("tsunagu.sqlite")).unwrap().len();
    eprintln!("database {data} bytes, WAL {wal} bytes");
    assert!(data + wal > 170 << 20, "the test wrote less than meant: {data} + {wal} bytes");
    assert!(wal < 140 << 20, "the WAL grew to {wal} bytes");
    assert_eq!(store.read("Basic", "b899-47").unwrap().unwrap().version, 1);
    assert_eq!(written, 900 * 48);
}

/// Sorted pages and totals of queries whose conditions are all index tests read one
/// clause's index rows (a code in one system or any, a literal reference, or one
/// resource's compartment) without the
/// resource table: the pages, their order and the totals are the brute-force answer,
/// whichever clause is read, when a code appears in two systems of one resource (read
/// once), and after deletes (index rows exist only for current, live versions).
#[test]
fn index_only_general_plans_read_one_clauses_rows_with_the_same_answers() {
    use tsunagu_store::{IndexKind, IndexValue, SortKey, SortParam, SystemMatch, Test};
    let (_dir, store) = temp_store();
    // (id, code, in a second system too, final, value, patient)
    let mut rows: Vec<(String, &str, bool, bool, f64, usize)> = Vec::new();
    for o in 0..1500usize {
        let row = (format!("o{o}"), ["a", "b", "c"][o % 3], o % 4 == 0, o % 5 != 0, (o % 97) as f64, o % 7);
        let mut entries = vec![
            suite::token("code", "http://loinc.org", row.1, None),
            suite::token("status", "", if row.3 { "final" } else { "amended" }, None),
            suite::reference("subject", "Patient", &format!("p{}", row.5)),
            suite::entry(
                "value-quantity",
                IndexValue::Quantity { system: None, code: Some(["cm", "kg"][o % 2].into()), value: row.4 },
            ),
        ];
        if row.2 {
            entries.push(suite::token("code", "http://example.org/local", row.1, None));
        }
        suite::put(&store, "Observation", &row.0, 1, &entries);
        rows.push(row);
    }
    // Deleted ones must not count.
    for o in (0..1500).step_by(50) {
        suite::delete(&store, "Observation", &rows[o].0, 2);
    }
    rows.retain(|r| r.0.trim_start_matches('o').parse::<usize>().unwrap() % 50 != 0);
    let code = |system: Option<&str>, c: &str| {
        let system = system.map_or(SystemMatch::Any, |s| SystemMatch::Is(s.into()));
        suite::index("code", Test::Token { system, code: Some(c.into()) })
    };
    let fin = || suite::index("status", Test::Token { system: SystemMatch::Any, code: Some("final".into()) });
    let subject = |p: usize| {
        suite::index(
            "subject",
            Test::Reference { target_type: Some("Patient".into()), target_id: Some(format!("p{p}")), url: None },
        )
    };
    // Patient/p{n}/Observation: the parameters of other types name no Observation rows.
    let compartment = |p: usize| tsunagu_store::Condition::Compartment {
        params: vec![("Encounter".into(), "patient".into()), ("Observation".into(), "subject".into())],
        target_type: "Patient".into(),
        target_id: Some(format!("p{p}")),
    };
    type Keep = Box<dyn Fn(&(String, &str, bool, bool, f64, usize)) -> bool>;
    let shapes: Vec<(&str, Vec<Vec<tsunagu_store::Condition>>, Keep)> = vec![
        ("code in any system", vec![vec![code(None, "a")]], Box::new(|r| r.1 == "a")),
        (
            "code and status",
            vec![vec![fin()], vec![code(Some("http://loinc.org"), "b")]],
            Box::new(|r| r.1 == "b" && r.3),
        ),
        ("subject and code", vec![vec![code(None, "c")], vec![subject(3)]], Box::new(|r| r.1 == "c" && r.5 == 3)),
        ("compartment", vec![vec![compartment(4)]], Box::new(|r| r.5 == 4)),
        (
            "compartment and code",
            vec![vec![compartment(2)], vec![code(None, "a")]],
            Box::new(|r| r.5 == 2 && r.1 == "a"),
        ),
    ];
    for (name, clauses, keep) in shapes {
        for descending in [false, true] {
            let mut want: Vec<&(String, &str, bool, bool, f64, usize)> = rows.iter().filter(|r| keep(r)).collect();
            // Ties in write order in the sort's direction.
            want.sort_by(|x, y| x.4.total_cmp(&y.4).then(suite_seq(&x.0).cmp(&suite_seq(&y.0))));
            if descending {
                want.reverse();
            }
            let want: Vec<String> = want.iter().map(|r| r.0.clone()).collect();
            assert!(want.len() > 20, "{name}: {} matches", want.len());
            for (offset, count) in [(0, 10), (7, 13), (want.len() - 3, 10)] {
                let mut q = suite::q(Some("Observation"), clauses.clone());
                (q.offset, q.count, q.total) = (offset, count, true);
                q.sort = vec![SortKey {
                    param: SortParam::Index { param: "value-quantity".into(), kind: IndexKind::Quantity },
                    descending,
                }];
                store.set_sort_walk(None);
                let x = store.explain(&q).unwrap();
                assert!(x.plans.iter().any(|p| p.contains("index rows of clause")), "{name}: {:?}", x.plans);
                let page = x.page.unwrap();
                let got: Vec<String> = page.resources.into_iter().map(|v| v.id).collect();
                let end = want.len().min(offset + count);
                assert_eq!(got, want[offset..end], "{name}, descending {descending}, offset {offset}");
                assert_eq!(page.total, Some(want.len() as u64), "{name}: total");
            }
        }
    }
    store.set_sort_walk(Some(2000));
}

/// The write order of the resources `o{n}` above: their number.
fn suite_seq(id: &str) -> usize {
    id.trim_start_matches('o').parse().unwrap()
}

/// Type history with `_since` pages the same whichever way it reads: a walk of the type's
/// versions newest first when many were written since, those versions read by time and
/// sorted when few were. Every page is the newest matching versions in write order, and
/// following the cursor gives each once.
#[test]
fn type_history_since_pages_alike_whatever_it_reads() {
    use tsunagu_store::{HistoryQuery, HistoryScope, Method, NewVersion, Store};
    fn version(id: &str, version: u64, at: i64, method: Method) -> NewVersion<'_> {
        let body: &'static [u8] = br#"{"resourceType":"Observation"}"#;
        NewVersion {
            resource_type: "Observation",
            id,
            version,
            last_updated_ms: at,
            method,
            body: (method != Method::Delete).then_some(body),
            index: &[],
        }
    }
    let (_dir, store) = temp_store();
    let ids: Vec<String> = (0..2500).map(|i| format!("o{i}")).collect();
    store
        .write(&mut |txn| {
            for (i, id) in ids.iter().enumerate() {
                txn.put(&version(id, 1, 10_000 + i as i64, Method::Post))?;
            }
            txn.put(&version("o5", 2, 20_000, Method::Put))?;
            txn.put(&version("o7", 2, 20_001, Method::Delete))
        })
        .unwrap();
    suite::put(&store, "Patient", "p", 1, &[]);
    let page = |since: i64, count: usize, before_seq: Option<i64>| {
        let scope = HistoryScope::Type("Observation".into());
        store
            .history(&HistoryQuery { scope, since_ms: Some(since), at: None, before_seq, count, max_bytes: None })
            .unwrap()
            .versions
    };
    let names = |vs: &[tsunagu_store::ResourceVersion]| {
        vs.iter().map(|v| format!("{}/{}", v.id, v.version)).collect::<Vec<_>>()
    };
    // Many since: the newest five.
    assert_eq!(names(&page(0, 5, None)), ["o7/2", "o5/2", "o2499/1", "o2498/1", "o2497/1"]);
    // Few since: all of them, newest first.
    assert_eq!(names(&page(12_497, 10, None)), ["o7/2", "o5/2", "o2499/1", "o2498/1", "o2497/1"]);
    assert!(page(30_000, 10, None).is_empty());
    // Paging through the many: every version once, in write order.
    let (mut seen, mut cursor) = (Vec::new(), None);
    loop {
        let p = page(10_100, 700, cursor);
        let Some(last) = p.last() else { break };
        cursor = Some(last.seq);
        seen.extend(p.iter().map(|v| v.seq));
    }
    assert_eq!(seen.len(), 2400 + 2);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
}

/// `_lastUpdated` is counted on `resource_type_updated`: a range holding most of a type is
/// answered by the dense write-order walk (the general plan collected and sorted every match:
/// `Observation?_lastUpdated=gt2020-01-01` at a million resources took 215 ms, now 0.4 ms), a
/// narrow one by the range itself; both give the general plan's pages.
#[test]
fn last_updated_ranges_are_counted_and_a_wide_one_walks() {
    use tsunagu_store::Condition;
    let (_dir, store) = temp_store();
    let n = 5000_i64;
    for i in 0..n {
        let entries = [suite::token("status", "", "final", None)];
        suite::put_at(&store, "Observation", &format!("o{i}"), 1, &entries, 1_000_000 + i * 1000);
    }
    let range = |lo: i64, hi: i64| suite::q(Some("Observation"), vec![vec![Condition::LastUpdated { lo, hi }]]);
    let wide = range(1_000_000 + 10 * 1000, i64::MAX / 2);
    let narrow = range(1_000_000 + 4990 * 1000, 1_000_000 + 4995 * 1000);
    for (name, q, dense) in [("wide", &wide, true), ("narrow", &narrow, false)] {
        for (after_seq, count) in [(None, 10), (Some(100), 25)] {
            let mut q = q.clone();
            (q.count, q.after_seq) = (count, after_seq);
            let (general, walked, _) = general_and_walked(&store, &q);
            assert_eq!(walked, general, "{name} from {after_seq:?}");
            assert!(!general.is_empty(), "{name}");
            // As the server plans (walks from 2,000 matches).
            let x = store.explain(&q).unwrap();
            let ids: Vec<String> = x.page.unwrap().resources.into_iter().map(|v| v.id).collect();
            assert_eq!(ids, general, "{name} from {after_seq:?}");
            assert_eq!(x.plans.iter().any(|p| p.contains("dense")), dense, "{name}: {:?}", x.plans);
        }
    }
    let x = store.explain(&narrow).unwrap();
    assert_eq!(x.estimate, Some(5), "the versions in the narrow range");
}

/// A store in a new temporary directory (kept while the directory lives).
fn temp_store() -> (tempfile::TempDir, tsunagu_store::SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    (dir, store)
}
