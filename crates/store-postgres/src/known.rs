//! The matches of a filtered sort walk's first countable clause, read whole when they are
//! few enough (at most [`KNOWN_MAX`] index rows): `Observation?code=…&_sort=-date`, whose
//! commonest code has 2,798 rows on the Synthea sample. The walk then reads its index rows
//! unfiltered and tests each `seq` in the process, and the query's other clauses on those
//! matches alone, one statement per batch. Tested in SQL, each walked row cost an index
//! probe, about 2.5 µs: that page read 1,100 rows in three batches after a count, 3 ms;
//! read whole, its `seq`s cost 0.7 ms and an unfiltered walk 0.4 ms. Past [`KNOWN_MAX`]
//! rows the clause is common, reading them would cost more than probing the few rows the
//! walk needs, and the walk probes in SQL instead.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use postgres::GenericClient;
use tsunagu_store::{Clause, SearchQuery, StoreError};

use crate::db::Cached;
use crate::value::{number, refs, V};
use crate::Pg;

/// The most index rows of a clause read whole.
pub(crate) const KNOWN_MAX: usize = 4096;

/// How long a session remembers that a clause had more than [`KNOWN_MAX`] rows, and does
/// not read them again (reading 4,097 rows cost a common clause, `category=vital-signs`,
/// 0.7 ms of a 4 ms page); they are counted up to what the walk needs to know instead, as
/// before. Only the plan depends on it: a clause that has become rare since is sorted by
/// the general plan, as any clause of fewer rows than `sortwalk::WALK_FROM` would be
/// without this file.
const LARGE_FOR: Duration = Duration::from_secs(60);

/// The most such clauses a session remembers; past it, it forgets them all.
const LARGE_CLAUSES_KEPT: usize = 1024;

/// About how many unfiltered index rows a walk reads in the time the general plan takes
/// to compute one match's sort value.
const WALK_COST_RATIO: u64 = 5;

/// A clause's index rows, read up to [`KNOWN_MAX`] + 1.
pub(crate) struct Rows {
    /// How many were read (more than [`KNOWN_MAX`]: the clause has more; 0: none were).
    pub count: i64,
    /// Their `seq`s, when every row was read.
    pub seqs: Option<Vec<i64>>,
    /// The live resources of the type, from the kept counts.
    pub type_total: u64,
}

/// The index rows of `clause` (one `query::is_rows_clause` accepts) of type `ty`, and the
/// type's live resources, in one statement; or none read (`count` 0, for the caller to
/// count them as before), when the session found the clause to have more than
/// [`KNOWN_MAX`] rows in the last [`LARGE_FOR`].
pub(crate) fn read(c: &mut Cached<'_, impl GenericClient>, clause: &Clause, ty: &str) -> Result<Rows, StoreError> {
    let mut values = Vec::new();
    let rows = crate::query::clause_rows_select(clause, ty, &mut values);
    // A hash, not the text: a clause of a thousand long values would keep kilobytes. Two
    // clauses of one hash only share the plan choice.
    let key = {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&format!("{rows} {values:?}"), &mut h);
        std::hash::Hasher::finish(&h)
    };
    if c.cache.large_clauses.get(&key).is_some_and(|at| at.elapsed() < LARGE_FOR) {
        tsunagu_store::trace::plan(|| format!("more than {KNOWN_MAX} rows, as found lately"));
        return Ok(Rows { count: 0, seqs: None, type_total: 0 });
    }
    values.extend([V::Int(KNOWN_MAX as i64 + 1), V::Text(ty.to_string())]);
    let sql =
        format!("SELECT (SELECT array_agg(seq) FROM ({rows} LIMIT ?) x), (SELECT n FROM live_count WHERE type = ?)");
    let sql = number(&sql, &values);
    tsunagu_store::trace::statement(&sql, &values);
    let row = c.query_one(&sql, &refs(&values)).pg()?;
    let seqs: Vec<i64> = row.get::<_, Option<Vec<i64>>>(0).unwrap_or_default();
    let type_total = row.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as u64;
    let count = seqs.len() as i64;
    if seqs.len() > KNOWN_MAX {
        let large = &mut c.cache.large_clauses;
        if large.len() >= LARGE_CLAUSES_KEPT {
            large.clear();
        }
        large.insert(key, Instant::now());
    }
    Ok(Rows { count, seqs: (seqs.len() <= KNOWN_MAX).then_some(seqs), type_total })
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

    use super::{read, KNOWN_MAX};
    use crate::db::Plans;
    use crate::PostgresStore;

    /// A clause of more than `KNOWN_MAX` rows is read once, then left for the caller to
    /// count while the session remembers it; a smaller one is read whole every time.
    #[test]
    fn a_session_reads_a_large_clause_once() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
        let code = |i: usize| if i < KNOWN_MAX + 1 { "large" } else { "small" };
        let observations: Vec<(&str, String, Vec<IndexEntry>)> = (0..KNOWN_MAX + 11)
            .map(|i| {
                let token = IndexValue::Token { system: Some("urn:s".into()), code: code(i).into(), display: None };
                ("Observation", format!("o{i}"), vec![IndexEntry { param: "code".into(), value: token }])
            })
            .collect();
        crate::test_writes::put_first(&store, &observations);
        let clause = |c: &str| Clause {
            any: vec![Condition::Index {
                param: "code".into(),
                test: Test::Token { system: SystemMatch::Is("urn:s".into()), code: Some(c.into()) },
                negate: false,
            }],
        };
        let mut session = store.primary.get_for_search(Plans::PerValues).unwrap();
        let mut c = session.db();
        let first = read(&mut c, &clause("large"), "Observation").unwrap();
        assert_eq!((first.count, first.seqs.is_none()), (KNOWN_MAX as i64 + 1, true));
        let again = read(&mut c, &clause("large"), "Observation").unwrap();
        assert_eq!((again.count, again.seqs.is_none()), (0, true));
        for _ in 0..2 {
            let small = read(&mut c, &clause("small"), "Observation").unwrap();
            assert_eq!((small.count, small.seqs.map(|s| s.len()), small.type_total), (10, Some(10), 4107));
        }
    }
}
