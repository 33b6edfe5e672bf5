//! The audit chain: one append-only table (a trigger refuses UPDATE and DELETE), appended
//! inside write transactions, whose advisory lock makes the head read and the appends
//! one step for every node.

use postgres::{GenericClient, Row, Transaction};

use crate::db::Cached;
use tsunagu_store::{chain_hash, AuditEntry, AuditQuery, AuditRecord, StoreError, GENESIS};

use crate::value::{number, refs, V};
use crate::Pg;

const COLUMNS: &str = "n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash";

/// Appends `entries` after the current head, inside the caller's transaction.
pub(crate) fn append(tx: &mut Cached<'_, Transaction<'_>>, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let head = tx.query_opt("SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1", &[]).pg()?;
    let (mut n, mut prev): (i64, Vec<u8>) = head.map_or((0, GENESIS.to_vec()), |r| (r.get(0), r.get(1)));
    for e in entries {
        n += 1;
        let hash = chain_hash(&prev, n, e);
        tx.execute(
            "INSERT INTO audit (n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &n,
                &e.id,
                &e.recorded_ms,
                &e.agent,
                &e.patient,
                &e.subtype,
                &e.outcome,
                &e.entities,
                &e.body,
                &prev,
                &&hash[..],
            ],
        )
        .pg()?;
        prev = hash.to_vec();
    }
    Ok(())
}

fn record(r: &Row) -> AuditRecord {
    AuditRecord {
        n: r.get(0),
        id: r.get(1),
        recorded_ms: r.get(2),
        agent: r.get(3),
        patient: r.get(4),
        subtype: r.get(5),
        outcome: r.get(6),
        entities: r.get(7),
        body: r.get(8),
        prev: r.get(9),
        hash: r.get(10),
    }
}

/// Records in chain order after `after_n`, at most `limit`.
pub(crate) fn chain(
    c: &mut Cached<'_, impl GenericClient>,
    after_n: i64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM audit WHERE n > $1 ORDER BY n LIMIT $2");
    Ok(c.query(&sql, &[&after_n, &(limit as i64)]).pg()?.iter().map(record).collect())
}

/// Records matching `q`, newest first, at most `q.count + 1`.
pub(crate) fn search(c: &mut Cached<'_, impl GenericClient>, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE TRUE");
    let mut values: Vec<V> = Vec::new();
    let mut cond = |part: &str, v: V| {
        sql.push_str(part);
        values.push(v);
    };
    if let Some(id) = &q.id {
        cond(" AND id = ?", V::Text(id.clone()));
    }
    if let Some(t) = q.since_ms {
        cond(" AND recorded >= ?", V::Int(t));
    }
    if let Some(t) = q.until_ms {
        cond(" AND recorded < ?", V::Int(t));
    }
    if let Some(a) = &q.agent {
        cond(" AND agent = ?", V::Text(a.clone()));
    }
    if let Some(p) = &q.patient {
        cond(" AND patient = ?", V::Text(p.clone()));
    }
    if let Some(s) = &q.subtype {
        cond(" AND subtype = ?", V::Text(s.clone()));
    }
    if let Some(o) = &q.outcome {
        cond(" AND outcome = ?", V::Text(o.clone()));
    }
    if let Some(e) = &q.entity {
        // Entities are space-separated references (versioned for writes); the padding makes
        // the match whole-word, the second test finds the versions of `Type/id`.
        cond(" AND (strpos(' ' || entities || ' ', ?) > 0", V::Text(format!(" {e} ")));
        cond(" OR strpos(' ' || entities, ?) > 0)", V::Text(format!(" {e}/_history/")));
    }
    if let Some(b) = q.before_n {
        cond(" AND n < ?", V::Int(b));
    }
    sql.push_str(" ORDER BY n DESC LIMIT ?");
    values.push(V::Int(q.count as i64 + 1));
    Ok(c.query(&number(&sql, &values), &refs(&values)).pg()?.iter().map(record).collect())
}
