//! A page in write order driven by a condition with few index rows: a string prefix
//! (`Patient?name=Smith`), or a chain to a string prefix of the target
//! (`Observation?subject:Patient.name=Smith&code=…`). Those rows are read whole (at most
//! [`FEW`]), the page's other conditions are tested on each of their `seq`s in `seq`
//! order until the page is full, and the page's resources are read by primary key, all in
//! one statement (one round trip, which is most of a small page's time from a client).
//!
//! It is planned once: the general SQL is planned again at each execution with its
//! values, which was most of its time (0.33 ms of planning against 0.08 ms of executing
//! for `Patient?name=Smith`, 0.75–1.1 ms of planning for the chain, on the Synthea
//! sample). Its plan cannot go wrong with the values: the prefix reads the
//! (type, param, norm_key) range, cut at [`FEW`] + 1 rows; a chain reaches the references
//! of each target through a lateral join (a probe of the reference key per target, never
//! a hash of every reference); each other condition is a scalar subquery on the row's own
//! `seq` (a probe, never a semi-join that could hash every row of a common code). Not
//! `:exact`: planned once, its equality on the `exact` hash was ANDed with a bitmap of the
//! parameter's whole (type, param) range. A condition with more rows than [`FEW`] (a
//! prefix of one letter, a name shared by many patients' thousand observations) is left
//! to the general SQL, having cost one index read of [`FEW`] + 1 entries.
//!
//! Index rows exist only for current, live versions, so every `seq` found is a match; the
//! read by key still tests it, and should a row point elsewhere the page goes on after it.

use postgres::GenericClient;
use tsunagu_store::{Clause, Condition, SearchQuery, SizedRow, StoreError, Test};

use crate::db::Cached;
use crate::query::{index_row, keyed_eq, same_id, table, test_kind, KEY_CHARS};
use crate::value::{number, refs, V};
use crate::Pg;

/// Most index rows read whole; past them the general SQL answers.
pub(crate) const FEW: usize = 4000;

/// What reads the few rows a page is chosen among.
enum Driver<'q> {
    /// A string prefix of the searched type.
    Prefix { param: &'q str, test: &'q Test },
    /// A chain whose target's one condition is a string prefix.
    Chain { param: &'q str, target_type: &'q str, target_param: &'q str, test: &'q Test },
}

/// A page this module answers: the driving condition and the other clauses.
struct Plan<'q> {
    ty: &'q str,
    driver: Driver<'q>,
    others: Vec<&'q Clause>,
}

/// The page's rows (at most `count + 1`, in order, `read::sized_row`), or `None` when the query does
/// not qualify or its driving condition has more than [`FEW`] index rows.
pub(crate) fn page(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
) -> Result<Option<Vec<SizedRow>>, StoreError> {
    let Some(plan) = plan(q) else { return Ok(None) };
    let need = q.count + 1;
    let mut found: Vec<SizedRow> = Vec::with_capacity(need);
    let mut after = q.after_seq.unwrap_or(0);
    loop {
        let mut values = Vec::new();
        let want = need - found.len();
        let sql = number(&statement(&plan, after, want, &mut values), &values);
        tsunagu_store::trace::statement(&sql, &values);
        // One plan whatever the values (see the module's documentation).
        let rows = c.query_once(&sql, &refs(&values)).pg()?;
        let (read_whole, targets) =
            rows.first().map_or((0, 0), |r| (r.get::<_, i64>(10) as usize, r.get::<_, i64>(11) as usize));
        if read_whole > FEW || targets > FEW {
            return Ok(None);
        }
        if found.is_empty() {
            tsunagu_store::trace::plan(|| {
                match plan.driver {
                Driver::Prefix { .. } => format!("few matches: {read_whole} index rows read whole, the page among them"),
                Driver::Chain { .. } => format!(
                    "few matches: {read_whole} references to the {targets} targets' rows read whole, the page among them"
                ),
            }
            });
        }
        let page: Vec<&postgres::Row> = rows.iter().filter(|r| r.get::<_, Option<i64>>(9).is_some()).collect();
        found
            .extend(page.iter().filter(|r| r.get::<_, Option<String>>(0).is_some()).map(|r| crate::read::sized_row(r)));
        match page.last() {
            Some(last) if page.len() == want && found.len() < need => after = last.get(9),
            _ => return Ok(Some(found)),
        }
    }
}

/// The statement of one step: `m` the driving rows (and for a chain `t`, its targets'
/// rows), `p` the page's `seq`s after `after` that pass the other clauses, in order, and
/// one row per page entry with its resource's columns, its `seq`, how many rows `m` and
/// `t` read (one row of NULLs and the counts when the page is empty).
fn statement(plan: &Plan<'_>, after: i64, want: usize, values: &mut Vec<V>) -> String {
    let ty = plan.ty;
    let few = V::Int(FEW as i64 + 1);
    let mut with = Vec::new();
    let targets = match plan.driver {
        Driver::Prefix { param, test } => {
            let row = index_row(Some(ty), param, test, values);
            values.push(few);
            with.push(format!("m AS MATERIALIZED (SELECT seq FROM idx_string WHERE {row} LIMIT ?)"));
            "0"
        }
        Driver::Chain { param, target_type, target_param, test } => {
            let row = index_row(Some(target_type), target_param, test, values);
            values.push(few.clone());
            with.push(format!("t AS MATERIALIZED (SELECT seq FROM idx_string WHERE {row} LIMIT ?)"));
            values.extend([V::Text(target_type.into()), V::Text(ty.into()), V::Text(param.into())]);
            let target = keyed_eq("x.target_type", target_type, values);
            // `OFFSET 0` keeps the lateral subquery from being pulled up into a join, which
            // PostgreSQL could make a hash of every reference of the parameter.
            values.push(few);
            with.push(format!(
                "m AS MATERIALIZED (SELECT y.seq FROM t JOIN resource rt ON rt.seq = t.seq AND rt.current \
                 AND NOT rt.deleted AND rt.type = ? CROSS JOIN LATERAL (SELECT x.seq FROM idx_reference x \
                 WHERE x.type = ? AND x.param = ? AND {target} AND x.target_id_key = left(rt.id, {KEY_CHARS}) \
                 AND {} OFFSET 0) y LIMIT ?)",
                same_id("x", "rt")
            ));
            "(SELECT COUNT(*) FROM t)"
        }
    };
    values.push(V::Int(after));
    let others: String = plan.others.iter().map(|c| format!(" AND {}", clause_probe(c, "s", values))).collect();
    values.push(V::Int(want as i64));
    // `OFFSET 0` keeps the other clauses out of the ordered subquery, so they are tested
    // in `seq` order until the page is full.
    with.push(format!(
        "p AS (SELECT seq FROM (SELECT DISTINCT seq FROM m WHERE seq > ? ORDER BY seq OFFSET 0) s \
         WHERE TRUE{others} ORDER BY seq LIMIT ?)"
    ));
    values.push(V::Text(ty.into()));
    format!(
        "WITH {} SELECT {}, p.seq, (SELECT COUNT(*) FROM m), {targets}::int8 FROM (SELECT 1) one LEFT JOIN \
         (p LEFT JOIN resource r ON r.seq = p.seq AND r.current AND NOT r.deleted AND r.type = ?) ON true \
         ORDER BY p.seq",
        with.join(", "),
        crate::read::PAGE_COLUMNS
    )
}

/// A clause tested on the row `alias`: each condition a scalar subquery probing that
/// row's own index rows (see the module's documentation), any of them.
fn clause_probe(c: &Clause, alias: &str, values: &mut Vec<V>) -> String {
    let probe = |table: &str, cond: &str, none: bool| {
        let is = if none { "IS NULL" } else { "IS NOT NULL" };
        format!("(SELECT 1 FROM {table} WHERE seq = {alias}.seq AND {cond} LIMIT 1) {is}")
    };
    let parts: Vec<String> = c
        .any
        .iter()
        .map(|cond| match cond {
            // No type: the row's own, and so through the `(seq, param)` index that holds
            // what the tests read (`query::row_type`): a chain's 3,820 candidates probed
            // for a code at 937k resources, 11 ms through the index led by the type.
            Condition::Index { param, test, negate } => {
                let row = index_row(None, param, test, values);
                probe(table(test_kind(test)), &row, *negate)
            }
            Condition::Missing { param, kind, missing } => {
                values.push(V::Text(param.clone()));
                probe(table(*kind), "param = ?", *missing)
            }
            // Not planned here (see `probed`).
            _ => "FALSE".into(),
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// The page `q` asks for, when this module answers it: in write order, of one type, one
/// clause driving ([`driver`]) and every other clause made of index tests and `:missing`.
fn plan(q: &SearchQuery) -> Option<Plan<'_>> {
    let ty = q.resource_type.as_deref()?;
    if !q.sort.is_empty() {
        return None;
    }
    let (at, driver) = q.clauses.iter().enumerate().find_map(|(i, c)| Some((i, driver(c)?)))?;
    let others: Vec<&Clause> = q.clauses.iter().enumerate().filter(|(i, _)| *i != at).map(|(_, c)| c).collect();
    others.iter().all(|c| probed(c)).then_some(Plan { ty, driver, others })
}

/// A clause whose conditions are each tested by a probe of the row's own index rows.
fn probed(c: &Clause) -> bool {
    !c.any.is_empty() && c.any.iter().all(|c| matches!(c, Condition::Index { .. } | Condition::Missing { .. }))
}

/// The driving condition of a clause that is one positive string prefix (a test of
/// contained text reads every row of the parameter; `:exact`, see above), or one chain to
/// a target whose one condition is such a prefix.
fn driver(c: &Clause) -> Option<Driver<'_>> {
    if let Some((param, test)) = prefix(c) {
        return Some(Driver::Prefix { param, test });
    }
    let [Condition::Chain { param, target_type, query }] = c.any.as_slice() else { return None };
    let same_type = query.resource_type.as_deref().is_none_or(|t| t == target_type);
    let [inner] = query.clauses.as_slice() else { return None };
    let (target_param, test) = prefix(inner)?;
    (same_type && query.sort.is_empty()).then_some(Driver::Chain { param, target_type, target_param, test })
}

/// The parameter and test of a clause that is one positive string prefix.
fn prefix(c: &Clause) -> Option<(&str, &Test)> {
    match c.any.as_slice() {
        [Condition::Index { param, test: test @ Test::StringStarts(_), negate: false }] => Some((param.as_str(), test)),
        _ => None,
    }
}

/// Whether this module plans `q`'s page (a string prefix or a chain to one drives it).
pub(crate) fn drives(q: &SearchQuery) -> bool {
    plan(q).is_some()
}

/// Whether a page of `q` may be this one alone (no `_total` counted before it): then its
/// session plans once, and should the driving condition have too many rows, the general
/// SQL sets it back.
pub(crate) fn alone(q: &SearchQuery) -> bool {
    !q.total && q.count > 0 && plan(q).is_some()
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue, Method, NewVersion, SearchQuery, Store, Test};

    use crate::PostgresStore;

    fn named(id: String, family: &str) -> (&'static str, String, Vec<IndexEntry>) {
        let name = IndexEntry {
            param: "name".into(),
            value: IndexValue::String { norm: family.to_lowercase(), exact: family.into() },
        };
        ("Patient", id, vec![name.clone(), name])
    }

    fn query(test: Test, after_seq: Option<i64>) -> SearchQuery {
        SearchQuery {
            resource_type: Some("Patient".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: "name".into(), test, negate: false }] }],
            count: 2,
            after_seq,
            ..Default::default()
        }
    }

    #[test]
    fn few_matches_are_read_whole_and_many_by_the_general_sql() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        // Rare names among more common ones than `FEW`, written interleaved; each version
        // has its name twice (two index rows, one match).
        let mut patients: Vec<(&str, String, Vec<IndexEntry>)> = Vec::new();
        for i in 0..super::FEW + 5 {
            patients.push(named(format!("c{i}"), "Common"));
            if i % 300 == 0 && i < 1200 {
                patients.push(named(format!("r{i}"), "Rare"));
            }
        }
        crate::test_writes::put_first(&store, &patients);
        // A deleted one is no match.
        store
            .write(&mut |txn| {
                txn.put(&NewVersion {
                    resource_type: "Patient",
                    id: "r300",
                    version: 2,
                    last_updated_ms: 2,
                    method: Method::Delete,
                    body: None,
                    index: &[],
                })
            })
            .unwrap();
        let ids = |q: &SearchQuery| -> (Vec<String>, bool) {
            let page = store.search(q).unwrap();
            (page.resources.iter().map(|v| v.id.clone()).collect(), page.more)
        };
        for rare in [Test::StringStarts("ra".into()), Test::StringStarts("rare".into())] {
            let explained = store.explain(&query(rare.clone(), None)).unwrap();
            assert!(explained.plans.iter().any(|p| p.starts_with("few matches")), "{:?}", explained.plans);
            let (first, more) = ids(&query(rare.clone(), None));
            assert_eq!((first.as_slice(), more), (&["r0".to_string(), "r600".to_string()][..], true));
            let after = store.read("Patient", "r600").unwrap().unwrap().seq;
            assert_eq!(ids(&query(rare, Some(after))), (vec!["r900".to_string()], false));
        }
        let exact = query(Test::StringExact("Rare".into()), None);
        let explained = store.explain(&exact).unwrap();
        assert!(!explained.plans.iter().any(|p| p.starts_with("few matches")), "{:?}", explained.plans);
        assert_eq!(ids(&exact), (vec!["r0".to_string(), "r600".to_string()], true));
        let common = query(Test::StringStarts("co".into()), None);
        let explained = store.explain(&common).unwrap();
        assert!(!explained.plans.iter().any(|p| p.starts_with("few matches")), "{:?}", explained.plans);
        assert_eq!(ids(&common), (vec!["c0".to_string(), "c1".to_string()], true));
    }

    fn entry(param: &str, value: IndexValue) -> IndexEntry {
        IndexEntry { param: param.into(), value }
    }

    fn token(code: &str) -> Test {
        Test::Token { system: tsunagu_store::SystemMatch::Is("urn:s".into()), code: Some(code.into()) }
    }

    fn chain(prefix: &str) -> Condition {
        let name = Condition::Index { param: "name".into(), test: Test::StringStarts(prefix.into()), negate: false };
        let query = SearchQuery {
            resource_type: Some("Patient".into()),
            clauses: vec![Clause { any: vec![name] }],
            ..Default::default()
        };
        Condition::Chain { param: "subject".into(), target_type: "Patient".into(), query: Box::new(query) }
    }

    #[test]
    fn chains_to_few_targets_are_read_whole_and_other_clauses_probed() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        // Ten patients (p3 and p7 named Rare), more named Crowd than `FEW`, and five
        // Observations of each of the ten and of two of the crowd, codes a, b, a, b, a.
        let mut resources: Vec<(&str, String, Vec<IndexEntry>)> = Vec::new();
        let name = |n: &str| entry("name", IndexValue::String { norm: n.to_lowercase(), exact: n.into() });
        for i in 0..10 {
            resources.push(("Patient", format!("p{i}"), vec![name(if i % 4 == 3 { "Rare" } else { "Other" })]));
        }
        for i in 0..super::FEW + 1 {
            resources.push(("Patient", format!("c{i}"), vec![name("Crowd")]));
        }
        let mut observations: Vec<(String, String, &str)> = Vec::new();
        for round in 0..5 {
            for patient in (0..10).map(|i| format!("p{i}")).chain(["c0".to_string(), "c1".to_string()]) {
                let code = if round % 2 == 0 { "a" } else { "b" };
                let id = format!("o-{patient}-{round}");
                let subject = IndexValue::Reference {
                    target_type: Some("Patient".into()),
                    target_id: Some(patient.clone()),
                    url: format!("Patient/{patient}"),
                };
                let code_entry =
                    entry("code", IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None });
                resources.push(("Observation", id.clone(), vec![entry("subject", subject), code_entry]));
                observations.push((id, patient, code));
            }
        }
        crate::test_writes::put_first(&store, &resources);
        let search = |clauses: Vec<Clause>, count: usize, after_seq: Option<i64>| SearchQuery {
            resource_type: Some("Observation".into()),
            clauses,
            count,
            after_seq,
            ..Default::default()
        };
        let few_plan = |q: &SearchQuery| store.explain(q).unwrap().plans.iter().any(|p| p.starts_with("few matches"));
        let ids = |q: &SearchQuery| -> (Vec<String>, bool) {
            let page = store.search(q).unwrap();
            (page.resources.iter().map(|v| v.id.clone()).collect(), page.more)
        };
        let expect = |patients: &[&str], code: Option<(&str, bool)>| -> Vec<String> {
            observations
                .iter()
                .filter(|(_, p, c)| patients.contains(&p.as_str()) && code.is_none_or(|(x, not)| (*c == x) != not))
                .map(|(id, ..)| id.clone())
                .collect()
        };
        let code = |c: &str, negate: bool| Clause {
            any: vec![Condition::Index { param: "code".into(), test: token(c), negate }],
        };
        let rare = || Clause { any: vec![chain("ra")] };
        // The chain alone, with a code, with a negated code, with :missing, paged by two.
        let cases: Vec<(Vec<Clause>, Vec<String>)> = vec![
            (vec![rare()], expect(&["p3", "p7"], None)),
            (vec![code("a", false), rare()], expect(&["p3", "p7"], Some(("a", false)))),
            (vec![rare(), code("a", true)], expect(&["p3", "p7"], Some(("a", true)))),
            (
                vec![
                    rare(),
                    Clause {
                        any: vec![Condition::Missing {
                            param: "code".into(),
                            kind: tsunagu_store::IndexKind::Token,
                            missing: true,
                        }],
                    },
                ],
                Vec::new(),
            ),
        ];
        for (clauses, expected) in cases {
            let q = search(clauses.clone(), 2, None);
            assert!(few_plan(&q), "{clauses:?}");
            let plan = store.explain(&q).unwrap().statements.remove(0).plan;
            assert!(!plan.iter().any(|l| l.contains("Hash")), "probes, never a hash: {plan:#?}");
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let (page, more) = ids(&search(clauses.clone(), 2, after));
                got.extend(page.iter().cloned());
                if !more {
                    break;
                }
                after = Some(store.read("Observation", page.last().unwrap()).unwrap().unwrap().seq);
            }
            assert_eq!(got, expected, "{clauses:?}");
        }
        // A prefix matching more patients than `FEW`: the general SQL, the same answer. With
        // planner statistics, as after an import: without them PostgreSQL planned this
        // chain over a thousand targets to run for minutes (the general SQL's own weakness,
        // which the search ceiling bounds in a server).
        store.analyze().unwrap();
        let crowd = search(vec![Clause { any: vec![chain("cr")] }, code("b", false)], 10, None);
        assert!(!few_plan(&crowd));
        assert_eq!(ids(&crowd).0, expect(&["c0", "c1"], Some(("b", false))));
    }
}
