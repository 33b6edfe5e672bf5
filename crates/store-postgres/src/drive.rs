//! A page in write order driven by an equality on the whole key of an index
//! (`Observation?code=http://loinc.org|718-7`, `Observation?subject=Patient/p1`): that
//! index holds the condition's rows in `seq` order, so the page is the first `count + 1`
//! distinct `seq`s it lists after the cursor, read from the index alone and joined to
//! their resources in the same statement. The general SQL leaves the choice to PostgreSQL's estimate of the
//! condition's rows, which for a value outside the most common ones is often a few dozen
//! when there are thousands: it then fetches every match and sorts them (4 ms for 588
//! matches of a Synthea code, against 0.5 ms walking the index).
//!
//! Beside other clauses (none another such equality, each a test of index rows by `seq`)
//! the walk reads the driving rows in batches and probes the others on each `seq`, until
//! the page is full or [`DRIVEN_MAX_ROWS`] rows were read, when the general SQL answers:
//! the others may pass few of them. `Observation?code=…8302-2&value-quantity=gt180` at
//! 937k resources: 31 ms by the general SQL, which fetched the 2,180 heights over 180 cm
//! and probed each for the code, against a walk of the code's first rows.
//!
//! Index rows exist only for current, live versions, so every `seq` found is a match; the
//! join still tests it, and should a row point elsewhere the walk goes on after it.

use postgres::GenericClient;
use tsunagu_store::{Clause, Condition, SearchQuery, SizedRow, StoreError, SystemMatch, Test};

use crate::db::Cached;
use crate::query::Probe;
use crate::value::{number, refs, V};
use crate::Pg;

/// The most rows of the driving condition a page with other clauses reads before the
/// general SQL answers.
const DRIVEN_MAX_ROWS: i64 = 2048;

/// The first batch of driving rows read beside other clauses (doubling after).
const FIRST_BATCH: i64 = 256;

/// What drives a page: the type, the equality's parameter and test, the other clauses.
struct Driving<'q> {
    ty: &'q str,
    param: &'q str,
    test: &'q Test,
    others: Vec<&'q Clause>,
}

/// The page's rows (at most `count + 1`, in order, `read::sized_row`), or `None` when the
/// query does not qualify, or beside other clauses [`DRIVEN_MAX_ROWS`] rows did not fill
/// it. One statement per step: the index walk and the resources it found.
pub(crate) fn page(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
) -> Result<Option<Vec<SizedRow>>, StoreError> {
    let Some(d) = driving(q) else { return Ok(None) };
    let table = crate::query::table(crate::query::test_kind(d.test));
    tsunagu_store::trace::plan(|| match d.others.len() {
        0 => format!("driven walk: {table} in seq order"),
        n => format!("driven walk: {table} in seq order, {n} other clause(s) probed on each row"),
    });
    let need = q.count + 1;
    let mut found = Vec::with_capacity(need);
    let (mut after, mut batch, mut walked) = (q.after_seq, FIRST_BATCH, 0);
    loop {
        let want = need - found.len();
        let mut values = Vec::new();
        let sql = number(&statement(&d, after, batch, want, &mut values), &values);
        tsunagu_store::trace::statement(&sql, &values);
        let rows = if d.others.is_empty() {
            // One plan: every column of the key index before `seq` is fixed, so that index
            // gives the rows in `seq` order whatever the values are.
            c.query_once(&sql, &refs(&values)).pg()?
        } else {
            c.query(&sql, &refs(&values)).pg()?
        };
        let page: Vec<&postgres::Row> = rows.iter().filter(|r| r.get::<_, Option<i64>>(9).is_some()).collect();
        found.extend(page.iter().filter(|r| r.get::<_, Option<i64>>(7).is_some()).map(|r| crate::read::sized_row(r)));
        if d.others.is_empty() {
            match rows.last() {
                Some(last) if rows.len() == want && found.len() < need => after = Some(last.get(9)),
                _ => return Ok(Some(found)),
            }
            continue;
        }
        let (read, last_read) = rows.first().map_or((0, None), |r| (r.get::<_, i64>(10), r.get::<_, Option<i64>>(11)));
        walked += read;
        if found.len() >= need || read < batch {
            return Ok(Some(found));
        }
        if page.len() == want {
            // Full but for a row that pointed elsewhere: on after the last one met.
            after = page.last().map(|r| r.get(9));
            continue;
        }
        if walked >= DRIVEN_MAX_ROWS {
            tsunagu_store::trace::plan(|| format!("too few matches in {walked} driving rows: the general SQL"));
            return Ok(None);
        }
        after = last_read;
        batch = (batch * 2).min(DRIVEN_MAX_ROWS);
    }
}

/// One step: `w` the driving rows after `after` (all of them, or beside other clauses
/// `batch` of them), `m` those that pass the others (at most `want`), one row per page
/// entry with its resource's columns and its `seq`, then how many rows `w` read and its
/// last `seq` (one row of NULLs and those when the page is empty).
fn statement(d: &Driving<'_>, after: Option<i64>, batch: i64, want: usize, values: &mut Vec<V>) -> String {
    let table = crate::query::table(crate::query::test_kind(d.test));
    let row = crate::query::index_row(Some(d.ty), d.param, d.test, values);
    let mut walk = format!("SELECT DISTINCT seq FROM {table} WHERE {row}");
    if let Some(a) = after {
        walk.push_str(" AND seq > ?");
        values.push(V::Int(a));
    }
    if d.others.is_empty() {
        values.push(V::Int(want as i64));
        values.push(V::Text(d.ty.to_string()));
        return format!(
            "WITH m AS MATERIALIZED ({walk} ORDER BY seq LIMIT ?) SELECT {}, m.seq FROM m LEFT JOIN resource r \
             ON r.seq = m.seq AND r.current AND NOT r.deleted AND r.type = ? ORDER BY m.seq",
            crate::read::PAGE_COLUMNS
        );
    }
    values.push(V::Int(batch));
    let others: Vec<String> =
        d.others.iter().map(|c| crate::query::clause_sql(c, Some(d.ty), "w", values, Probe::Each)).collect();
    values.push(V::Int(want as i64));
    values.push(V::Text(d.ty.to_string()));
    // The others tested in `seq` order until `want` pass (`OFFSET 0` keeps them out of the
    // ordered walk).
    format!(
        "WITH w AS MATERIALIZED ({walk} ORDER BY seq LIMIT ?), m AS MATERIALIZED (SELECT seq FROM \
         (SELECT seq FROM w ORDER BY seq OFFSET 0) w WHERE {} ORDER BY seq LIMIT ?) \
         SELECT {}, m.seq, (SELECT COUNT(*) FROM w), (SELECT MAX(seq) FROM w) FROM (SELECT 1) one LEFT JOIN \
         (m LEFT JOIN resource r ON r.seq = m.seq AND r.current AND NOT r.deleted AND r.type = ?) ON true \
         ORDER BY m.seq",
        others.join(" AND "),
        crate::read::PAGE_COLUMNS
    )
}

/// The page a query in write order asks for, when this walk answers it: one clause an
/// equality on an index's whole key, the others (if any) none such, each a test of index
/// rows by `seq`, and none a condition `few.rs` drives by.
fn driving(q: &SearchQuery) -> Option<Driving<'_>> {
    let ty = q.resource_type.as_deref()?;
    if !q.sort.is_empty() {
        return None;
    }
    fn equality(c: &Clause) -> Option<(&str, &Test)> {
        match c.any.as_slice() {
            [Condition::Index { param, test, negate: false }] if whole_key(test) => Some((param.as_str(), test)),
            _ => None,
        }
    }
    let mut equalities = q.clauses.iter().enumerate().filter_map(|(i, c)| Some((i, equality(c)?)));
    let (at, (param, test)) = equalities.next()?;
    if equalities.next().is_some() {
        return None;
    }
    let others: Vec<&Clause> = q.clauses.iter().enumerate().filter(|(i, _)| *i != at).map(|(_, c)| c).collect();
    // A string prefix or a chain to one beside: its few rows drive instead (`few.rs`).
    if !others.is_empty() && crate::few::drives(q) {
        return None;
    }
    others.iter().all(|c| c.any.iter().all(crate::query::on_seq)).then_some(Driving { ty, param, test, others })
}

/// Whether a page of `q` is this walk alone (one clause, no `_total` counted before it):
/// then every statement of the page is planned once ([`Cached::query_once`]).
pub(crate) fn alone(q: &SearchQuery) -> bool {
    !q.total && q.count > 0 && q.clauses.len() == 1 && driving(q).is_some()
}

/// Whether the test fixes every column of its index before `seq`, so the index lists its
/// rows in `seq` order.
fn whole_key(test: &Test) -> bool {
    matches!(
        test,
        Test::Token { system: SystemMatch::Is(_) | SystemMatch::Absent, code: Some(_) }
            | Test::Reference { target_type: Some(_), target_id: Some(_), .. }
            | Test::UriExact(_)
    )
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue, SearchQuery, Store, SystemMatch, Test};

    use crate::PostgresStore;

    fn token(param: &str, code: &str) -> IndexEntry {
        let value = IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None };
        IndexEntry { param: param.into(), value }
    }

    fn equal(param: &str, code: &str) -> Clause {
        let test = Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some(code.into()) };
        Clause { any: vec![Condition::Index { param: param.into(), test, negate: false }] }
    }

    /// A code in any system: no equality on a whole key (the system is not fixed).
    fn any_system(param: &str, code: &str) -> Clause {
        let test = Test::Token { system: SystemMatch::Any, code: Some(code.into()) };
        Clause { any: vec![Condition::Index { param: param.into(), test, negate: false }] }
    }

    /// Every page of `q` (pages of 4, following the cursor) and the plans of the first.
    fn pages(store: &PostgresStore, clauses: Vec<Clause>) -> (Vec<String>, String) {
        let mut q = SearchQuery { resource_type: Some("Observation".into()), clauses, count: 4, ..Default::default() };
        let plans = store.explain(&q).unwrap().plans.join("; ");
        let mut ids = Vec::new();
        loop {
            let page = store.search(&q).unwrap();
            ids.extend(page.resources.iter().map(|v| v.id.clone()));
            if !page.more {
                return (ids, plans);
            }
            q.after_seq = page.resources.last().map(|v| v.seq);
        }
    }

    /// Beside other clauses, the equality's rows are walked and the others probed on each;
    /// when they pass too few of them the general SQL answers, the same pages either way.
    #[test]
    fn a_driven_walk_probes_other_clauses_or_leaves_them_to_the_general_sql() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        // 5,000 of code a: every 7th preliminary, o4990 and o4995 amended; 10 of code b,
        // amended.
        let mut rows: Vec<(&str, String, Vec<IndexEntry>)> = (0..5000)
            .map(|i| {
                let status = match i {
                    4990 | 4995 => "amended",
                    i if i % 7 == 0 => "preliminary",
                    _ => "final",
                };
                ("Observation", format!("o{i}"), vec![token("code", "a"), token("status", status)])
            })
            .collect();
        rows.extend(
            (0..10).map(|i| ("Observation", format!("b{i}"), vec![token("code", "b"), token("status", "amended")])),
        );
        crate::test_writes::put_first(&store, &rows);
        let (got, plans) = pages(&store, vec![equal("code", "a"), any_system("status", "preliminary")]);
        let want: Vec<String> = (0..5000).filter(|i| i % 7 == 0).map(|i| format!("o{i}")).collect();
        assert_eq!(got, want);
        assert!(plans.contains("1 other clause(s) probed on each row") && !plans.contains("too few"), "{plans}");
        let (got, plans) = pages(&store, vec![any_system("status", "amended"), equal("code", "a")]);
        assert_eq!(got, ["o4990", "o4995"]);
        assert!(plans.contains("too few matches in 3840 driving rows: the general SQL"), "{plans}");
        // Two equalities: the general SQL, as before.
        let (got, plans) = pages(&store, vec![equal("status", "amended"), equal("code", "b")]);
        assert_eq!(got.len(), 10);
        assert!(!plans.contains("driven walk"), "{plans}");
        // A negation beside: walked, probed.
        let test = Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some("final".into()) };
        let not_final = Clause { any: vec![Condition::Index { param: "status".into(), test, negate: true }] };
        let (got, plans) = pages(&store, vec![equal("code", "b"), not_final]);
        assert_eq!(got, (0..10).map(|i| format!("b{i}")).collect::<Vec<_>>());
        assert!(plans.contains("probed on each row"), "{plans}");
    }
}
