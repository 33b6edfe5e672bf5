//! The matches of a filtered sort walk's first countable clause, read whole when they are
//! few enough ([`read_max`] index rows): `Observation?code=…&_sort=-date`, whose
//! commonest code has 2,798 rows on the Synthea sample. The walk then reads its index rows
//! unfiltered and tests each `seq` in the process, and the query's other clauses on those
//! matches alone, one statement per batch. Tested in SQL, each walked row cost an index
//! probe, about 2.5 µs: that page read 1,100 rows in three batches after a count, 3 ms;
//! read whole, its `seq`s cost 0.7 ms and an unfiltered walk 0.4 ms. Past [`read_max`]
//! rows the clause is common, reading them would cost more than probing the few rows the
//! walk needs, and the walk probes in SQL instead.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use postgres::GenericClient;
use tsunagu_store::{Clause, SearchQuery, StoreError};

use crate::db::Cached;
use crate::value::{number, refs, V};
use crate::Pg;

/// The fewest index rows of a clause read whole, however small the type.
pub(crate) const KNOWN_MIN_MAX: usize = 4096;

/// The most, however large the type.
const KNOWN_MAX_MAX: usize = 65_536;

/// How many rows read whole cost as much as one walked row probed in SQL: reading 16,385
/// `seq`s took 4.7 ms at 937k resources, a probed walk 1.6 ms for 408 rows.
const PROBE_PER_READ_ROW: f64 = 13.5;

/// The most index rows of a clause read whole for a walk of `need` matches among `live`
/// resources of the type. A clause of n rows read whole costs n reads; probed in SQL, the
/// walk reads about need × live ÷ n rows, each worth [`PROBE_PER_READ_ROW`] reads: so
/// √([`PROBE_PER_READ_ROW`] × need × live). At 937k resources (429,600 Observations,
/// need 51): 17,207, where a fixed 4,096 sent codes of 4,000–17,000 rows to probed walks
/// or the sorted page (`explain`, `code=…32623-1&_sort=-date`, 5,840 rows: 54 → 8 ms).
pub(crate) fn read_max(need: usize, live: u64) -> usize {
    let n = (PROBE_PER_READ_ROW * need as f64 * live as f64).sqrt();
    (n as usize).clamp(KNOWN_MIN_MAX, KNOWN_MAX_MAX)
}

/// How long a pool remembers that a clause had more than it read, and does
/// not read them again (reading 4,097 rows cost a common clause, `category=vital-signs`,
/// 0.7 ms of a 4 ms page); they are counted up to what the walk needs to know instead, as
/// before. Only the plan depends on it: a clause that has become rare since is sorted by
/// the general plan, as any clause of fewer rows than `sortwalk::WALK_FROM` would be
/// without this file.
const LARGE_FOR: Duration = Duration::from_secs(60);

/// The most such clauses a pool remembers; past it, it forgets them all.
const LARGE_CLAUSES_KEPT: usize = 1024;

/// About how many unfiltered index rows a walk reads in the time the general plan takes
/// to compute one match's sort value.
const WALK_COST_RATIO: u64 = 5;

/// A clause's index rows, read up to a most + 1.
pub(crate) struct Rows {
    /// How many were read; more than the most: the clause has more (then none may have
    /// been read, when the pool found so lately), or the planner expects it to and an
    /// eighth of them were found: a plan choice, not a count.
    pub count: i64,
    /// Their `seq`s, when every row was read.
    pub seqs: Option<Vec<i64>>,
    /// PostgreSQL's estimate of the clause's rows, when it was asked and expected more
    /// than were read (a walk sizes its first batch by it).
    pub estimate: Option<f64>,
}

/// The index rows of `clause` (one `query::is_rows_clause` accepts) of type `ty`, at most
/// `max` + 1; or none read, when the pool found the clause to have more than `max` rows
/// in the last [`LARGE_FOR`] (`count` says more than it found: the caller need not count
/// them, 1.3–3.5 ms for a common code at 937k resources), or when the first eighth of
/// `max` are there and PostgreSQL's planner expects more than 1.25 times `max` (reading
/// them all cost 7 ms of a 10 ms page at 937k resources, `code=…72514-3&_sort=-date`:
/// 30,367 rows estimated, about 30,000 found).
pub(crate) fn read(
    c: &mut Cached<'_, impl GenericClient>,
    clause: &Clause,
    ty: &str,
    max: usize,
) -> Result<Rows, StoreError> {
    let mut values = Vec::new();
    let rows = crate::query::clause_rows_select(clause, ty, &mut values);
    // A hash, not the text: a clause of a thousand long values would keep kilobytes. Two
    // clauses of one hash only share the plan choice.
    let key = {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&format!("{rows} {values:?}"), &mut h);
        std::hash::Hasher::finish(&h)
    };
    if let Some((more_than, estimate)) = c.cache.large_clauses.more_than(key, max) {
        tsunagu_store::trace::plan(|| format!("more than {more_than} rows, as found lately"));
        return Ok(Rows { count: more_than as i64 + 1, seqs: None, estimate });
    }
    // An eighth first: a rare clause, the commonest case, is then read whole at once. Past
    // it the planner is asked, and where it expects far more than the most the clause is
    // taken as large without reading the rest (`read::expected_past`).
    let few = (max / crate::read::FIRST_SHARE).max(1);
    let first = read_up_to(c, &rows, &values, few)?;
    if first.len() <= few {
        return Ok(Rows { count: first.len() as i64, seqs: Some(first), estimate: None });
    }
    if let Some(estimate) = crate::read::expected_past(c, &rows, &values, max as i64)? {
        tsunagu_store::trace::plan(|| format!("more than {max} rows, as the planner expects ({few} read)"));
        c.cache.large_clauses.insert(key, max, Some(estimate));
        return Ok(Rows { count: max as i64 + 1, seqs: None, estimate: Some(estimate) });
    }
    let seqs = read_up_to(c, &rows, &values, max)?;
    let count = seqs.len() as i64;
    if seqs.len() > max {
        c.cache.large_clauses.insert(key, max, None);
    }
    Ok(Rows { count, seqs: (seqs.len() <= max).then_some(seqs), estimate: None })
}

/// The `seq`s of `rows` (a statement of one column, `seq`, with `values`), at most `max` + 1.
fn read_up_to(
    c: &mut Cached<'_, impl GenericClient>,
    rows: &str,
    values: &[V],
    max: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut values = values.to_vec();
    values.push(V::Int(max as i64 + 1));
    let sql = number(&format!("SELECT (SELECT array_agg(seq) FROM ({rows} LIMIT ?) x)"), &values);
    tsunagu_store::trace::statement(&sql, &values);
    let row = c.query_one(&sql, &refs(&values)).pg()?;
    Ok(row.get::<_, Option<Vec<i64>>>(0).unwrap_or_default())
}

/// Clauses found to have more rows than were read whole, by a hash of their statement and
/// values, with when and how many were read: shared by the sessions of a pool, so that each does not read a common
/// clause once more (20 pages of common codes read 17,000 rows on nearly every one: the
/// bench's queries met eight sessions).
#[derive(Default)]
pub(crate) struct LargeClauses(Mutex<HashMap<u64, Large>>);

/// When a clause was found larger, how many rows it had more than, and the planner's
/// estimate of them then, if it was asked.
type Large = (Instant, usize, Option<f64>);

impl LargeClauses {
    /// How many rows the clause was found to have more than lately, when at least `max`,
    /// and the planner's estimate of them then, if it was asked.
    fn more_than(&self, key: u64, max: usize) -> Option<(usize, Option<f64>)> {
        let found = self.0.lock().get(&key).copied();
        found.filter(|(at, more_than, _)| at.elapsed() < LARGE_FOR && *more_than >= max).map(|(_, n, e)| (n, e))
    }

    fn insert(&self, key: u64, more_than: usize, estimate: Option<f64>) {
        let mut large = self.0.lock();
        if large.len() >= LARGE_CLAUSES_KEPT {
            large.clear();
        }
        large.insert(key, (Instant::now(), more_than, estimate));
    }
}

/// The matches of one clause of a query, known whole, and the test of its other clauses.
pub(crate) struct Known {
    seqs: HashSet<i64>,
    type_total: u64,
    /// The other clauses' test of `w.seq` (`query::seq_probe`), and its values.
    rest: Option<(String, Vec<V>)>,
}

impl Known {
    /// Clause `at` of `q` matched by `seqs`, of a type of `type_total` live resources.
    pub(crate) fn new(q: &SearchQuery, at: usize, seqs: Vec<i64>, type_total: u64) -> Known {
        let mut others = q.clone();
        others.clauses.remove(at);
        let mut values = Vec::new();
        let rest = crate::query::seq_probe(&others, "w", &mut values).map(|sql| (sql, values));
        Known { seqs: seqs.into_iter().collect(), type_total, rest }
    }

    /// How many resources match the clause.
    pub(crate) fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether a walk for `need` matches reads fewer rows than the general plan would
    /// cost: it reads about `need` × the type's resources ÷ the matches rows, at about a
    /// fifth of what the general plan spends on each match (an unfiltered index row
    /// 0.35 µs, a match's sort value 2.2 µs, Synthea sample). So from about 670 matches of
    /// its 42,960 Observations for a page of 50 (1,260: 0.8 ms walked, 2.8 ms sorted).
    pub(crate) fn worth_walking(&self, need: usize) -> bool {
        let n = self.seqs.len() as u64;
        n.saturating_mul(n).saturating_mul(WALK_COST_RATIO) >= (need as u64).saturating_mul(self.type_total)
    }

    /// The most rows the walk reads before the general plan answers: as many as would cost
    /// the general plan's time, so that a walk that meets its matches late (an old code,
    /// sorted newest first) costs at most twice the general plan.
    pub(crate) fn walk_bound(&self) -> usize {
        self.seqs.len().saturating_mul(WALK_COST_RATIO as usize).max(1)
    }

    /// The first batch of a walk that needs `need` matches: as many rows as the share of
    /// matches among the type's resources says, a quarter again for chance.
    pub(crate) fn first_batch(&self, need: usize, largest: usize) -> usize {
        let share = self.seqs.len().max(1) as u64;
        let rows = (need as u64).saturating_mul(self.type_total.max(share)) / share;
        usize::try_from(rows.saturating_mul(5) / 4).unwrap_or(usize::MAX).clamp(100, largest)
    }

    /// Which of `seqs` (a batch's) match the whole query.
    pub(crate) fn matches(
        &self,
        c: &mut Cached<'_, impl GenericClient>,
        seqs: impl Iterator<Item = i64>,
    ) -> Result<HashSet<i64>, StoreError> {
        let candidates: HashSet<i64> = seqs.filter(|s| self.seqs.contains(s)).collect();
        let Some((test, rest_values)) = &self.rest else { return Ok(candidates) };
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let mut values = vec![V::IntArray(candidates.into_iter().collect())];
        values.extend(rest_values.iter().cloned());
        let sql = number(&format!("SELECT w.seq FROM unnest(?) AS w(seq) WHERE {test}"), &values);
        tsunagu_store::trace::statement(&sql, &values);
        Ok(c.query(&sql, &refs(&values)).pg()?.iter().map(|r| r.get(0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue, SystemMatch, Test};

    #[test]
    fn the_planner_estimate_is_read_from_the_first_line() {
        let line = "Index Only Scan using idx_token_key on idx_token  (cost=0.56..1382.33 rows=30367 width=8)";
        assert_eq!(crate::read::estimated_rows(line), Some(30367.0));
        assert_eq!(crate::read::estimated_rows("Result  (cost=0.00..0.01 rows=1 width=4)"), Some(1.0));
        assert_eq!(crate::read::estimated_rows("no estimate"), None);
    }

    use super::{read, read_max, KNOWN_MIN_MAX};
    use crate::db::Plans;
    use crate::PostgresStore;

    /// `code=urn:s|{code}`.
    fn clause(code: &str) -> Clause {
        Clause {
            any: vec![Condition::Index {
                param: "code".into(),
                test: Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some(code.into()) },
                negate: false,
            }],
        }
    }

    /// Read whole up to the square root of the walk's cost, within bounds.
    #[test]
    fn the_rows_read_whole_grow_with_the_page_and_the_type() {
        assert_eq!(read_max(51, 1_000), KNOWN_MIN_MAX);
        assert_eq!(read_max(51, 429_600), 17_198);
        assert!(read_max(501, 429_600) > read_max(51, 429_600));
        assert_eq!(read_max(10_000, 100_000_000), super::KNOWN_MAX_MAX);
    }

    /// A clause of more than the most rows read whole is read once, then left for the
    /// caller to count while the pool remembers it, on any of its sessions; a smaller one
    /// is read whole every time.
    #[test]
    fn a_pool_reads_a_large_clause_once() {
        const MAX: usize = 200;
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        let code = |i: usize| if i < MAX + 1 { "large" } else { "small" };
        let observations: Vec<(&str, String, Vec<IndexEntry>)> = (0..MAX + 11)
            .map(|i| {
                let token = IndexValue::Token { system: Some("urn:s".into()), code: code(i).into(), display: None };
                ("Observation", format!("o{i}"), vec![IndexEntry { param: "code".into(), value: token }])
            })
            .collect();
        crate::test_writes::put_first(&store, &observations);
        let mut session = store.primary.get_for_search(Plans::PerValues).unwrap();
        let mut c = session.db();
        let first = read(&mut c, &clause("large"), "Observation", MAX).unwrap();
        assert_eq!((first.count, first.seqs.is_none()), (MAX as i64 + 1, true));
        let again = read(&mut c, &clause("large"), "Observation", MAX).unwrap();
        assert_eq!((again.count, again.seqs.is_none()), (MAX as i64 + 1, true));
        let mut other = store.primary.get_for_search(Plans::PerValues).unwrap();
        let elsewhere = read(&mut other.db(), &clause("large"), "Observation", MAX).unwrap();
        assert_eq!((elsewhere.count, elsewhere.seqs.is_none()), (MAX as i64 + 1, true));
        // Asked to read more than were read then: read again, whole.
        let more = read(&mut c, &clause("large"), "Observation", MAX + 50).unwrap();
        assert_eq!((more.count, more.seqs.map(|s| s.len())), (MAX as i64 + 1, Some(MAX + 1)));
        for _ in 0..2 {
            let small = read(&mut c, &clause("small"), "Observation", MAX).unwrap();
            assert_eq!((small.count, small.seqs.map(|s| s.len())), (10, Some(10)));
        }
    }

    /// Where the planner expects far more rows than the most read whole (or than a count's
    /// cap), an eighth of them decide: a clause that has them is taken as large without
    /// reading (counting) the rest; one the planner overestimates (a code common only under
    /// another parameter) is read whole, as it has fewer.
    #[test]
    fn a_clause_the_planner_expects_large_is_read_only_in_part() {
        const MAX: usize = 100;
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        let token = |param: &str, code: &str| IndexEntry {
            param: param.into(),
            value: IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None },
        };
        let observations: Vec<(&str, String, Vec<IndexEntry>)> = (0..6000)
            .map(|i| ("Observation", format!("o{i}"), vec![token("code", "common"), token("status", "final")]))
            .collect();
        crate::test_writes::put_first(&store, &observations);
        store.primary.get().unwrap().client.batch_execute("ANALYZE idx_token").unwrap();
        let mut session = store.primary.get_for_search(Plans::PerValues).unwrap();
        let mut c = session.db();
        tsunagu_store::trace::start::<crate::value::V>();
        let common = read(&mut c, &clause("common"), "Observation", MAX).unwrap();
        let plans = tsunagu_store::trace::take::<crate::value::V>().plans.join("; ");
        assert_eq!((common.count, common.seqs.is_none()), (MAX as i64 + 1, true));
        assert!(plans.contains("as the planner expects (12 read)"), "{plans}");
        // The estimate comes along (a walk sizes its first batch by it), also when remembered.
        assert!(common.estimate.is_some_and(|e| e > 125.0), "{:?}", common.estimate);
        let again = read(&mut c, &clause("common"), "Observation", MAX).unwrap();
        assert_eq!((again.seqs.is_none(), again.estimate), (true, common.estimate));
        tsunagu_store::trace::start::<crate::value::V>();
        let none = read(&mut c, &clause("final"), "Observation", MAX).unwrap();
        let plans = tsunagu_store::trace::take::<crate::value::V>().plans.join("; ");
        assert_eq!((none.count, none.seqs), (0, Some(Vec::new())));
        assert!(!plans.contains("as the planner expects"), "{plans}");
        // Under the margin, read whole as before.
        let whole = read(&mut c, &clause("common"), "Observation", 5000).unwrap();
        assert_eq!((whole.count, whole.seqs.is_none()), (5001, true));
        // A count up to a cap the planner expects to pass stops at an eighth of it.
        tsunagu_store::trace::start::<crate::value::V>();
        let counted = crate::read::capped_rows(&mut c, &clause("common"), "Observation", 4096).unwrap();
        let plans = tsunagu_store::trace::take::<crate::value::V>().plans.join("; ");
        assert_eq!(counted, Some(4096));
        assert!(plans.contains("as the planner expects (512 counted)"), "{plans}");
        assert_eq!(crate::read::capped_rows(&mut c, &clause("final"), "Observation", 4096).unwrap(), Some(0));
        assert_eq!(crate::read::capped_rows(&mut c, &clause("common"), "Observation", 5500).unwrap(), Some(5500));
    }
}
