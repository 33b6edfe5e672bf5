//! Writing versions inside a write transaction (`WriteTxn`), and the shard key rule.

use postgres::Transaction;
use tsunagu_store::{
    AuditEntry, CostlyPart, IndexEntry, IndexValue, NewVersion, ResourceVersion, SearchQuery, StoreError, WriteTxn,
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
    pub(crate) counts: crate::counts::Deltas,
}

impl PgTxn<'_, '_> {
    /// Writes what the transaction kept in memory; the caller commits.
    pub(crate) fn finish(&mut self) -> Result<(), StoreError> {
        self.counts.flush(&mut self.tx)
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

fn conflict(ty: &str, id: &str, version: u64) -> StoreError {
    StoreError::VersionConflict(format!("{ty}/{id}/_history/{version}"))
}

impl WriteTxn for PgTxn<'_, '_> {
    fn current(&mut self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        read::current(&mut self.tx, ty, id)
    }

    fn put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
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
            let mut rows = crate::index::Rows::new();
            rows.add(&shard, seq, v.resource_type, v.index);
            rows.write(&mut self.tx, false)?;
        }
        Ok(())
    }

    fn put_new(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        if versions.is_empty() {
            return Ok(());
        }
        for v in versions {
            if v.version != 1 || v.body.is_none() {
                return Err(StoreError::Corrupt(format!("{}/{}: put_new takes first versions", v.resource_type, v.id)));
            }
        }
        let types: Vec<&str> = versions.iter().map(|v| v.resource_type).collect();
        let ids: Vec<&str> = versions.iter().map(|v| v.id).collect();
        let existing: std::collections::HashSet<(String, String)> = self
            .tx
            .query(
                "SELECT type, id FROM resource WHERE (type, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                &[&types, &ids],
            )
            .pg()?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for v in versions {
            let key = (v.resource_type.to_string(), v.id.to_string());
            if existing.contains(&key) || !seen.insert(key) {
                return Err(conflict(v.resource_type, v.id, 1));
            }
        }
        let first = next_seqs(&mut self.tx, versions.len() as i64)?;
        for v in versions {
            self.counts.add(v.resource_type, 1);
        }
        let shards: Vec<String> = versions.iter().map(|v| shard_key(v.resource_type, v.id, v.index)).collect();
        let seqs: Vec<i64> = (0..versions.len() as i64).map(|i| first + i).collect();
        let updated: Vec<i64> = versions.iter().map(|v| v.last_updated_ms).collect();
        let methods: Vec<&str> = versions.iter().map(|v| v.method.as_str()).collect();
        let bodies: Vec<&[u8]> = versions.iter().map(|v| v.body.unwrap_or(&[])).collect();
        let copy = versions.len() >= COPY_MIN;
        if copy {
            copy_versions(self.tx.c, versions, &shards, first)?;
        } else {
            self.tx
                .execute(
                    "INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body) \
                     SELECT s, q, t, i, 1, u, false, true, m, b \
                     FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::bytea[]) \
                     AS x(s, q, t, i, u, m, b)",
                    &[&shards, &seqs, &types, &ids, &updated, &methods, &bodies],
                )
                .pg()?;
        }
        let mut rows = crate::index::Rows::new();
        for (i, v) in versions.iter().enumerate() {
            rows.add(&shards[i], seqs[i], v.resource_type, v.index);
        }
        rows.write(&mut self.tx, copy)
    }

    /// Under the query's ceiling when it has one: conditional criteria run while this
    /// transaction holds the write lock of every node, and PostgreSQL took minutes to plan
    /// a thousand parameters (`Organization?name=a0&…&name=a999` in a conditional reference).
    fn search_ids(&mut self, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
        let Some(ms) = q.max_ms.filter(|ms| *ms > 0) else { return read::search_ids(&mut self.tx, q) };
        let t = Timeout::begin(&mut self.tx, Scope::Transaction, ms)?;
        let found = read::search_ids(&mut self.tx, q).map_err(|e| costly(e, CostlyPart::Conditions, Some(&t)));
        t.end(&mut self.tx)?;
        found
    }

    fn replace_index(&mut self, seq: i64, _resource_type: &str, index: &[IndexEntry]) -> Result<(), StoreError> {
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
}
