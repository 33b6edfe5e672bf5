//! Writing versions inside a write transaction (`WriteTxn`), and the shard key rule.

use postgres::Transaction;
use std::collections::HashSet;

use tsunagu_store::{
    AuditEntry, CostlyPart, IndexEntry, IndexValue, Method, NewVersion, ResourceVersion, SearchQuery, StoreError,
    WriteTxn,
};

use crate::ceiling::{costly, Scope, Timeout};
use crate::db::Cached;
use crate::{read, Pg};

/// The distribution key of a resource (see the crate documentation): a Patient's own id;
/// for another resource the id of the Patient it belongs to, from its first literal
/// `Patient` reference under `patient`, else under `subject`, else under any parameter;
/// otherwise `~Type/id`. Decided at the first version and kept for later ones. A reference
/// whose id is longer than a FHIR id may be (64 characters) names no Patient and is passed
/// over: `shard` is in B-tree keys, which hold at most about 2,700 bytes.
pub fn shard_key(resource_type: &str, id: &str, index: &[IndexEntry]) -> String {
    if resource_type == "Patient" {
        return id.to_string();
    }
    let patient = |e: &&IndexEntry| match &e.value {
        IndexValue::Reference { target_type: Some(t), target_id: Some(id), .. }
            if t == "Patient" && !id.is_empty() && id.chars().count() <= MAX_ID_CHARS =>
        {
            Some(id.clone())
        }
        _ => None,
    };
    for wanted in [Some("patient"), Some("subject"), None] {
        let found = index.iter().filter(|e| wanted.is_none_or(|w| e.param == w)).find_map(|e| patient(&e));
        if let Some(id) = found {
            return id;
        }
    }
    format!("~{resource_type}/{id}")
}

/// The longest FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
const MAX_ID_CHARS: usize = 64;

pub(crate) struct PgTxn<'a, 't> {
    pub(crate) tx: Cached<'a, Transaction<'t>>,
    /// Changes to the kept counts, written just before the commit ([`PgTxn::finish`]).
    counts: crate::counts::Deltas,
    /// First versions `put` was given, not yet written: written together, as `put_new`
    /// writes a batch, before anything in the transaction reads resources or index rows,
    /// and before the commit. Three round trips per resource were two thirds of a
    /// 300-resource Bundle's time.
    deferred: Vec<Deferred>,
    /// The `(type, id)`s of `deferred`: a second first version of one is refused at once.
    deferred_ids: HashSet<(String, String)>,
    /// Index rows of later versions `put` wrote, not yet in the index tables.
    pending: crate::index::Rows,
    /// How many versions' rows `pending` holds.
    pending_versions: usize,
}

/// A first version waiting in [`PgTxn::deferred`].
struct Deferred {
    resource_type: String,
    id: String,
    last_updated_ms: i64,
    method: Method,
    body: Vec<u8>,
    index: Vec<IndexEntry>,
}

impl<'a, 't> PgTxn<'a, 't> {
    pub(crate) fn new(tx: Cached<'a, Transaction<'t>>) -> PgTxn<'a, 't> {
        PgTxn {
            tx,
            counts: Default::default(),
            deferred: Vec::new(),
            deferred_ids: HashSet::new(),
            pending: crate::index::Rows::new(),
            pending_versions: 0,
        }
    }

    /// Writes what the transaction kept in memory; the caller commits.
    pub(crate) fn finish(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.counts.flush(&mut self.tx)
    }

    /// Writes the deferred first versions and the pending index rows.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending_versions > 0 {
            let rows = std::mem::replace(&mut self.pending, crate::index::Rows::new());
            let copy = self.pending_versions >= COPY_MIN;
            self.pending_versions = 0;
            rows.write(&mut self.tx, copy)?;
        }
        if self.deferred.is_empty() {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        self.deferred_ids.clear();
        let versions: Vec<NewVersion<'_>> = deferred
            .iter()
            .map(|d| NewVersion {
                resource_type: &d.resource_type,
                id: &d.id,
                version: 1,
                last_updated_ms: d.last_updated_ms,
                method: d.method,
                body: Some(&d.body),
                index: &d.index,
            })
            .collect();
        self.write_first_versions(&versions)
    }

    /// Keeps a first version (with a body) for the next [`flush`](Self::flush).
    fn defer(&mut self, v: &NewVersion<'_>, body: &[u8]) -> Result<(), StoreError> {
        if !self.deferred_ids.insert((v.resource_type.to_string(), v.id.to_string())) {
            return Err(conflict(v.resource_type, v.id, 1));
        }
        self.deferred.push(Deferred {
            resource_type: v.resource_type.to_string(),
            id: v.id.to_string(),
            last_updated_ms: v.last_updated_ms,
            method: v.method,
            body: body.to_vec(),
            index: v.index.to_vec(),
        });
        Ok(())
    }
}

/// Reserves `n` sequence numbers from the counter row; the first of them.
fn next_seqs(tx: &mut Cached<'_, Transaction<'_>>, n: i64) -> Result<i64, StoreError> {
    let last: i64 =
        tx.query_one("UPDATE counter SET value = value + $1 WHERE name = 'seq' RETURNING value", &[&n]).pg()?.get(0);
    Ok(last - n + 1)
}

/// From this many versions on, `put_new` writes by binary `COPY` (an import's batches);
/// smaller batches by `INSERT … unnest`. See the crate's `import` test for figures.
const COPY_MIN: usize = 64;

/// First versions by binary `COPY`, their `seq` from `first` on.
fn copy_versions(
    tx: &mut Transaction<'_>,
    versions: &[NewVersion<'_>],
    shards: &[String],
    first: i64,
) -> Result<(), StoreError> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let sink = tx
        .copy_in(
            "COPY resource (shard, seq, type, id, version, last_updated, deleted, current, method, body) \
             FROM STDIN BINARY",
        )
        .pg()?;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::BOOL,
        Type::BOOL,
        Type::TEXT,
        Type::BYTEA,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for (i, v) in versions.iter().enumerate() {
        let seq = first + i as i64;
        let body: &[u8] = v.body.unwrap_or(&[]);
        writer
            .write(&[
                &shards[i],
                &seq,
                &v.resource_type,
                &v.id,
                &1i64,
                &v.last_updated_ms,
                &false,
                &true,
                &v.method.as_str(),
                &body,
            ])
            .pg()?;
    }
    writer.finish().pg()?;
    Ok(())
}

impl PgTxn<'_, '_> {
    /// First versions of resources that do not exist yet, in one batch: from [`COPY_MIN`]
    /// of them by `COPY` after a check for existing ones, else in one statement that takes
    /// their `seq`s, checks and inserts (a single create is one round trip, and its index
    /// rows another).
    fn write_first_versions(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        if versions.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        for v in versions {
            if v.version != 1 || v.body.is_none() {
                return Err(StoreError::Corrupt(format!("{}/{}: put_new takes first versions", v.resource_type, v.id)));
            }
            if !seen.insert((v.resource_type, v.id)) {
                return Err(conflict(v.resource_type, v.id, 1));
            }
        }
        let types: Vec<&str> = versions.iter().map(|v| v.resource_type).collect();
        let ids: Vec<&str> = versions.iter().map(|v| v.id).collect();
        let shards: Vec<String> = versions.iter().map(|v| shard_key(v.resource_type, v.id, v.index)).collect();
        let n = versions.len() as i64;
        let copy = versions.len() >= COPY_MIN;
        let first = if copy {
            self.refuse_existing(&types, &ids)?;
            let first = next_seqs(&mut self.tx, n)?;
            copy_versions(self.tx.c, versions, &shards, first)?;
            first
        } else {
            let updated: Vec<i64> = versions.iter().map(|v| v.last_updated_ms).collect();
            let methods: Vec<&str> = versions.iter().map(|v| v.method.as_str()).collect();
            let bodies: Vec<&[u8]> = versions.iter().map(|v| v.body.unwrap_or(&[])).collect();
            let inserted = self
                .tx
                .query(
                    "WITH c AS (UPDATE counter SET value = value + $7 WHERE name = 'seq' RETURNING value) \
                     INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body) \
                     SELECT x.s, c.value - $7 + x.o, x.t, x.i, 1, x.u, false, true, x.m, x.b FROM c, \
                     unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::bytea[]) \
                     WITH ORDINALITY AS x(s, t, i, u, m, b, o) \
                     WHERE NOT EXISTS (SELECT 1 FROM resource r WHERE r.type = x.t AND r.id = x.i) RETURNING seq",
                    &[&shards, &types, &ids, &updated, &methods, &bodies, &n],
                )
                .pg()?;
            if inserted.len() < versions.len() {
                // Some exist already: the transaction fails, naming one.
                self.refuse_existing(&types, &ids)?;
                return Err(StoreError::Corrupt("first versions left out without an existing version".into()));
            }
            inserted.iter().map(|r| r.get::<_, i64>(0)).min().unwrap_or_default()
        };
        let mut rows = crate::index::Rows::new();
        for (i, v) in versions.iter().enumerate() {
            self.counts.add(v.resource_type, 1);
            rows.add(&shards[i], first + i as i64, v.resource_type, v.index);
        }
        rows.write(&mut self.tx, copy)
    }

    /// A conflict naming the first of `(types[i], ids[i])` that has a version already.
    fn refuse_existing(&mut self, types: &[&str], ids: &[&str]) -> Result<(), StoreError> {
        let existing = self
            .tx
            .query_opt(
                "SELECT x.t, x.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(t, i, o) \
                 WHERE EXISTS (SELECT 1 FROM resource r WHERE r.type = x.t AND r.id = x.i) ORDER BY x.o LIMIT 1",
                &[&types, &ids],
            )
            .pg()?;
        match existing {
            Some(r) => Err(conflict(r.get(0), r.get(1), 1)),
            None => Ok(()),
        }
    }
}

fn conflict(ty: &str, id: &str, version: u64) -> StoreError {
    StoreError::VersionConflict(format!("{ty}/{id}/_history/{version}"))
}

impl WriteTxn for PgTxn<'_, '_> {
    fn current(&mut self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        self.flush()?;
        read::current(&mut self.tx, ty, id)
    }

    fn put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
        if let (1, Some(body)) = (v.version, v.body) {
            return self.defer(v, body);
        }
        // The current version may be one this transaction wrote; its index rows are
        // removed by its `seq`.
        self.flush()?;
        // The newest version, and whether this version number is taken already.
        let cur = self
            .tx
            .query_opt(
                "SELECT seq, shard, version, EXISTS (SELECT 1 FROM resource WHERE type = $1 AND id = $2 \
                 AND version = $3), deleted FROM resource WHERE type = $1 AND id = $2 ORDER BY version DESC LIMIT 1",
                &[&v.resource_type, &v.id, &(v.version as i64)],
            )
            .pg()?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, bool>(3), r.get::<_, bool>(4)));
        if cur.as_ref().is_some_and(|c| c.2) {
            return Err(conflict(v.resource_type, v.id, v.version));
        }
        if v.version > 1 {
            if let Some((old, shard, _, deleted)) = &cur {
                crate::index::delete(&mut self.tx, *old, Some(shard))?;
                if !deleted {
                    self.counts.add(v.resource_type, -1);
                }
            }
        }
        if v.body.is_some() {
            self.counts.add(v.resource_type, 1);
        }
        let shard = match &cur {
            Some((_, shard, ..)) => shard.clone(),
            None => shard_key(v.resource_type, v.id, v.index),
        };
        let body: &[u8] = v.body.unwrap_or(&[]);
        // The next `seq` and the row in one statement.
        let seq: i64 = self
            .tx
            .query_one(
                "WITH s AS (UPDATE counter SET value = value + 1 WHERE name = 'seq' RETURNING value) \
                 INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body) \
                 SELECT $1, s.value, $2, $3, $4, $5, $6, true, $7, $8 FROM s RETURNING seq",
                &[
                    &shard,
                    &v.resource_type,
                    &v.id,
                    &(v.version as i64),
                    &v.last_updated_ms,
                    &v.body.is_none(),
                    &v.method.as_str(),
                    &body,
                ],
            )
            .pg()?
            .get(0);
        if v.body.is_some() {
            self.pending.add(&shard, seq, v.resource_type, v.index);
            self.pending_versions += 1;
        }
        Ok(())
    }

    fn put_new(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        self.flush()?;
        self.write_first_versions(versions)
    }

    /// Under the query's ceiling when it has one: conditional criteria run while this
    /// transaction holds the write lock of every node, and PostgreSQL took minutes to plan
    /// a thousand parameters (`Organization?name=a0&…&name=a999` in a conditional reference).
    ///
    /// Planned with their values, as searches are: under the write's `auto`, a statement
    /// run five times took one plan for every identifier, 10 ms a conditional create on a
    /// growing database. The savepoint's rollback (or the statement after) restores `auto`.
    fn search_ids(&mut self, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
        const PER_VALUES: &str = "SET LOCAL plan_cache_mode = force_custom_plan";
        self.flush()?;
        let Some(ms) = q.max_ms.filter(|ms| *ms > 0) else {
            self.tx.c.batch_execute(PER_VALUES).pg()?;
            let found = read::search_ids(&mut self.tx, q)?;
            self.tx.c.batch_execute("SET LOCAL plan_cache_mode = auto").pg()?;
            return Ok(found);
        };
        let t = Timeout::begin(&mut self.tx, Scope::Transaction, ms)?;
        self.tx.c.batch_execute(PER_VALUES).pg()?;
        let found = read::search_ids(&mut self.tx, q).map_err(|e| costly(e, CostlyPart::Conditions, Some(&t)));
        t.end(&mut self.tx)?;
        found
    }

    fn replace_index(&mut self, seq: i64, _resource_type: &str, index: &[IndexEntry]) -> Result<(), StoreError> {
        self.flush()?;
        let row = self.tx.query_opt("SELECT shard, type FROM resource WHERE seq = $1", &[&seq]).pg()?;
        let Some(row) = row else { return Ok(()) };
        let (shard, ty): (String, String) = (row.get(0), row.get(1));
        crate::index::delete(&mut self.tx, seq, None)?;
        let mut rows = crate::index::Rows::new();
        rows.add(&shard, seq, &ty, index);
        rows.write(&mut self.tx, false)
    }

    fn get_setting(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.tx.query_opt("SELECT value FROM setting WHERE key = $1", &[&key]).pg()?.map(|r| r.get(0)))
    }

    fn set_setting(&mut self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => self.tx.execute(
                "INSERT INTO setting (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
                &[&key, &v],
            ),
            None => self.tx.execute("DELETE FROM setting WHERE key = $1", &[&key]),
        }
        .pg()?;
        Ok(())
    }

    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        crate::audit::append(&mut self.tx, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(param: &str, ty: &str, id: &str) -> IndexEntry {
        IndexEntry {
            param: param.into(),
            value: IndexValue::Reference {
                target_type: Some(ty.into()),
                target_id: Some(id.into()),
                url: format!("{ty}/{id}"),
            },
        }
    }

    #[test]
    fn shard_keys_follow_the_patient() {
        assert_eq!(shard_key("Patient", "p1", &[]), "p1");
        let idx = [
            reference("performer", "Patient", "x"),
            reference("subject", "Patient", "s"),
            reference("patient", "Patient", "p"),
        ];
        assert_eq!(shard_key("Observation", "o", &idx), "p");
        assert_eq!(shard_key("Observation", "o", &idx[..2]), "s");
        assert_eq!(shard_key("Observation", "o", &idx[..1]), "x");
        assert_eq!(shard_key("Observation", "o", &[reference("subject", "Group", "g")]), "~Observation/o");
        // An id longer than a FHIR id names no Patient.
        let long = "x".repeat(65);
        assert_eq!(shard_key("Observation", "o", &[reference("subject", "Patient", &long)]), "~Observation/o");
        let both = [reference("patient", "Patient", &long), reference("subject", "Patient", "s")];
        assert_eq!(shard_key("Observation", "o", &both), "s");
        assert_eq!(shard_key("Observation", "o", &[reference("subject", "Patient", &"x".repeat(64))]), "x".repeat(64));
    }

    fn code(code: &str) -> Vec<IndexEntry> {
        vec![IndexEntry {
            param: "code".into(),
            value: IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None },
        }]
    }

    fn coded(code: &str) -> SearchQuery {
        let test = tsunagu_store::Test::Token {
            system: tsunagu_store::SystemMatch::Is("urn:s".into()),
            code: Some(code.into()),
        };
        SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![tsunagu_store::Clause {
                any: vec![tsunagu_store::Condition::Index { param: "code".into(), test, negate: false }],
            }],
            count: 1000,
            ..Default::default()
        }
    }

    fn version<'a>(id: &'a str, version: u64, index: &'a [IndexEntry]) -> NewVersion<'a> {
        NewVersion {
            resource_type: "Observation",
            id,
            version,
            last_updated_ms: 1,
            method: tsunagu_store::Method::Put,
            body: Some(b"{}"),
            index,
        }
    }

    /// First versions and index rows wait in the transaction until something reads or
    /// removes them: a read or a search inside it, a later version of a resource it wrote,
    /// the commit.
    #[test]
    fn deferred_writes_are_written_before_anything_reads_them() {
        use tsunagu_store::Store;
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = crate::PostgresStore::open(&cluster.fresh_config()).unwrap();
        let (x, y) = (code("x"), code("y"));
        store
            .write(&mut |txn| {
                txn.put(&version("a", 1, &x))?;
                assert_eq!(txn.current("Observation", "a")?.map(|v| v.version), Some(1));
                txn.put(&version("e", 1, &x))?;
                assert!(matches!(txn.put(&version("e", 1, &x)), Err(StoreError::VersionConflict(_))));
                assert_eq!(txn.search_ids(&coded("x"))?.len(), 2);
                // The first version's rows, still pending, go with it.
                txn.put(&version("b", 1, &x))?;
                txn.put(&version("b", 2, &y))?;
                txn.put(&version("c", 1, &x))?;
                Ok(())
            })
            .unwrap();
        let ids =
            |q: &SearchQuery| -> Vec<String> { store.search(q).unwrap().resources.into_iter().map(|v| v.id).collect() };
        assert_eq!(ids(&coded("x")), ["a", "e", "c"]);
        assert_eq!(ids(&coded("y")), ["b"]);
        // Enough versions for COPY, written by `put` one at a time.
        let many: Vec<String> = (0..COPY_MIN + 6).map(|i| format!("m{i}")).collect();
        let z = code("z");
        store.write(&mut |txn| many.iter().try_for_each(|id| txn.put(&version(id, 1, &z)))).unwrap();
        assert_eq!(ids(&coded("z")).len(), many.len());
        // A first version of an id that has one is refused, and the transaction rolls back.
        let err = store
            .write(&mut |txn| {
                txn.put(&version("d", 1, &z))?;
                txn.put(&version("a", 1, &z))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::VersionConflict(_)), "{err:?}");
        assert!(store.read("Observation", "d").unwrap().is_none());
        assert_eq!(ids(&coded("z")).len(), many.len());
        assert_eq!(store.live_counts().unwrap(), vec![("Observation".to_string(), 4 + many.len() as u64)]);
    }

    /// Conditional criteria inside a write are planned with their values, with a ceiling
    /// and without, however often they run.
    #[test]
    fn searches_in_a_write_are_planned_with_their_values() {
        use tsunagu_store::Store;
        let Some(cluster) = crate::throwaway::shared() else { return };
        let store = crate::PostgresStore::open(&cluster.fresh_config()).unwrap();
        let codes: Vec<Vec<IndexEntry>> = (0..8).map(|i| code(&format!("c{i}"))).collect();
        let ids: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
        store.write(&mut |txn| (0..8).try_for_each(|i| txn.put(&version(&ids[i], 1, &codes[i])))).unwrap();
        store
            .write(&mut |txn| {
                for i in 0..16 {
                    let mut q = coded(&format!("c{}", i % 8));
                    q.max_ms = (i % 2 == 0).then_some(1000);
                    assert_eq!(txn.search_ids(&q)?.len(), 1);
                }
                Ok(())
            })
            .unwrap();
        let mut conn = store.primary.get().unwrap();
        let row = conn
            .client
            .query_one(
                "SELECT COALESCE(sum(generic_plans), 0)::int8, COALESCE(sum(custom_plans), 0)::int8 \
                 FROM pg_prepared_statements WHERE statement LIKE 'SELECT r.type, r.id%'",
                &[],
            )
            .unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1) >= 16), (0, true));
    }

    /// Inside a write, timestamps come from blocks of the shared clock and still increase
    /// strictly; another node's later write gets later ones.
    #[test]
    fn timestamps_taken_in_blocks_keep_increasing_across_nodes() {
        use tsunagu_store::Store;
        let Some(cluster) = crate::throwaway::shared() else { return };
        let config = cluster.fresh_config();
        let (one, two) = (crate::PostgresStore::open(&config).unwrap(), crate::PostgresStore::open(&config).unwrap());
        let mut taken = Vec::new();
        one.write(&mut |_| {
            taken.extend((0..300).map(|_| one.next_timestamp_ms()));
            Ok(())
        })
        .unwrap();
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "{taken:?}");
        let later = two.next_timestamp_ms();
        assert!(later > *taken.last().unwrap());
        // Leftover steps are skipped, at most a block's worth.
        assert!(later - taken.last().unwrap() <= crate::MAX_TIMESTAMP_BLOCK + 1_000, "{later}");
        // Outside a write, one step at a time as before.
        let next = one.next_timestamp_ms();
        assert!(next > later);
    }
}
