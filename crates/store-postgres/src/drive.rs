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
//! the page is full or [`DRIVEN_MAX_ROWS`] rows were read, then on only while the
//! matches met say the page fills within [`DRIVEN_LONGEST`] rows; else the general SQL
//! answers: the others may pass few of them. `Observation?code=…8302-2&value-quantity=gt180` at
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

/// The rows of the driving condition a page with other clauses reads before it judges
/// from the matches met whether to go on.
const DRIVEN_MAX_ROWS: i64 = 2048;

/// The most rows it reads in all, when the matches met by then say the page fills within
/// it (a quarter again for chance); else, and when none was met, the general SQL answers.
/// `Observation?code=…2339-0&date=2015-03` at 937k resources: 12 matches in the glucose
/// code's first 3,840 rows, 12,500 more to read (about 2 µs each), where the general SQL
/// walked 275,000 resource rows in `seq` order for the code's matches (330 ms).
const DRIVEN_LONGEST: i64 = 20_000;

/// The first batch of driving rows read beside other clauses (doubling after).
const FIRST_BATCH: i64 = 256;

/// What drives a page: the type, the driving clause's parameter and test, the other
/// clauses, and the driving clause itself.
struct Driving<'q> {
    ty: &'q str,
    param: &'q str,
    test: &'q Test,
    others: Vec<&'q Clause>,
    own: &'q Clause,
}

/// The page's rows (at most `count + 1`, in order, `read::sized_row`), or `None` when the
/// query does not qualify, or beside other clauses the rows it may walk did not fill it.
/// One statement per step: the index walk and the resources it found.
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
    if let Some(rows) = walk(c, q, &d, FIRST_BATCH)? {
        return Ok(Some(rows));
    }
    match rare_driver(c, &d)? {
        Some(rare) => walk(c, q, &rare, RARE_DRIVER_ROWS + 1),
        None => {
            tsunagu_store::trace::plan(|| "no other clause few enough to drive: the general SQL".into());
            Ok(None)
        }
    }
}

/// The rows of another clause that drive the page when the equality's rows pass too few:
/// each of its rows is probed for the others, so it is read whole when it has at most
/// this many. `Observation?code=…2339-0&date=2015-03-05` at 937k resources: no match in
/// the glucose code's first 3,840 rows; the general SQL walked the resource rows in `seq`
/// order (570–940 ms) where the day's rows are a few hundred.
const RARE_DRIVER_ROWS: i64 = 4096;

/// A positive index condition among the others with at most [`RARE_DRIVER_ROWS`] rows (the
/// fewest, each counted up to that), driving with the rest and the equality as others.
fn rare_driver<'q>(c: &mut Cached<'_, impl GenericClient>, d: &Driving<'q>) -> Result<Option<Driving<'q>>, StoreError> {
    let mut fewest: Option<(i64, usize)> = None;
    for (i, clause) in d.others.iter().enumerate() {
        if !matches!(clause.any.as_slice(), [Condition::Index { negate: false, .. }]) {
            continue;
        }
        let n = crate::read::capped_rows(c, clause, d.ty, RARE_DRIVER_ROWS + 1)?.expect("a rows clause");
        if n <= RARE_DRIVER_ROWS && fewest.is_none_or(|(f, _)| n < f) {
            fewest = Some((n, i));
        }
    }
    let Some((n, at)) = fewest else { return Ok(None) };
    let [Condition::Index { param, test, .. }] = d.others[at].any.as_slice() else { unreachable!("checked above") };
    let mut others: Vec<&Clause> = d.others.iter().enumerate().filter(|(i, _)| *i != at).map(|(_, c)| *c).collect();
    others.push(d.own);
    tsunagu_store::trace::plan(|| format!("driven instead by the {n} rows of {param}"));
    Ok(Some(Driving { ty: d.ty, param, test, others, own: d.others[at] }))
}

/// The page driven by `d`, its rows read `first` at a time at first; `None` when beside
/// other clauses the rows it may walk did not fill it.
fn walk(
    c: &mut Cached<'_, impl GenericClient>,
    q: &SearchQuery,
    d: &Driving<'_>,
    first: i64,
) -> Result<Option<Vec<SizedRow>>, StoreError> {
    let need = q.count + 1;
    let mut found = Vec::with_capacity(need);
    let (mut after, mut batch, mut walked) = (q.after_seq, first, 0);
    loop {
        let want = need - found.len();
        let mut values = Vec::new();
        let sql = number(&statement(d, after, batch, want, &mut values), &values);
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
        after = last_read;
        if walked < DRIVEN_MAX_ROWS {
            batch = (batch * 2).min(DRIVEN_MAX_ROWS);
            continue;
        }
        let met = found.len() as i64;
        let more = match met {
            0 => i64::MAX,
            met => ((need as i64 - met) * walked + met - 1) / met * 5 / 4,
        };
        if more > DRIVEN_LONGEST - walked {
            tsunagu_store::trace::plan(|| format!("too few matches in {walked} driving rows"));
            return Ok(None);
        }
        tsunagu_store::trace::plan(|| format!("{met} matches in {walked} driving rows: on for {more} more"));
        batch = more.max(FIRST_BATCH);
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
    let own = &q.clauses[at];
    others.iter().all(|c| c.any.iter().all(crate::query::on_seq)).then_some(Driving { ty, param, test, others, own })
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
        // 5,000 of code a: every 7th preliminary, o4990 and o4995 amended, six from o1002
        // to o4602 registered; 10 of code b, amended.
        let mut rows: Vec<(&str, String, Vec<IndexEntry>)> = (0..5000)
            .map(|i| {
                let status = match i {
                    4990 | 4995 => "amended",
                    1002 | 2502 | 3002 | 4002 | 4302 | 4602 => "registered",
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
        // Two in the code's 5,000 rows, none in its first 3,840: the status's 12 rows drive.
        let (got, plans) = pages(&store, vec![any_system("status", "amended"), equal("code", "a")]);
        assert_eq!(got, ["o4990", "o4995"]);
        assert!(plans.contains("too few matches in 3840 driving rows"), "{plans}");
        assert!(plans.contains("driven instead by the 12 rows of status"), "{plans}");
        // The same matches through a clause of two conditions, which does not drive.
        let either =
            Clause { any: [any_system("status", "amended"), equal("code", "b")].map(|c| c.any[0].clone()).to_vec() };
        let (got, plans) = pages(&store, vec![either, equal("code", "a")]);
        assert_eq!(got, ["o4990", "o4995"]);
        assert!(plans.contains("no other clause few enough to drive: the general SQL"), "{plans}");
        // Three in the first 3,840 rows: on, for the two more a page of five needs.
        let (got, plans) = pages(&store, vec![equal("code", "a"), any_system("status", "registered")]);
        assert_eq!(got, ["o1002", "o2502", "o3002", "o4002", "o4302", "o4602"]);
        assert!(
            plans.contains("3 matches in 3840 driving rows: on for 3200 more") && !plans.contains("too few"),
            "{plans}"
        );
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
