//! The audit chain in SQLite: one append-only table, guarded by triggers against UPDATE
//! and DELETE (a mistake's guard; someone with the file can drop them, which the chain
//! then shows).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::audit::{chain_hash, AuditEntry, AuditQuery, AuditRecord, GENESIS};
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    n        INTEGER PRIMARY KEY,
    id       TEXT    NOT NULL UNIQUE,
    recorded INTEGER NOT NULL,
    agent    TEXT    NOT NULL,
    patient  TEXT    NOT NULL,
    subtype  TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    entities TEXT    NOT NULL,
    body     BLOB    NOT NULL,
    prev     BLOB    NOT NULL,
    hash     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_agent ON audit(agent, n);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient, n);
CREATE INDEX IF NOT EXISTS audit_recorded ON audit(recorded);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
";

const COLUMNS: &str = "n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash";

/// Appends `entries` after the current head, inside the caller's transaction.
pub(crate) fn append(conn: &Connection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut n, mut prev) = head.unwrap_or((0, GENESIS.to_vec()));
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit (n, id, recorded, agent, patient, subtype, outcome, entities, body, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for e in entries {
        n += 1;
        let hash = chain_hash(&prev, n, e);
        stmt.execute(params![
            n,
            e.id,
            e.recorded_ms,
            e.agent,
            e.patient,
            e.subtype,
            e.outcome,
            e.entities,
            e.body,
            prev,
            &hash[..]
        ])?;
        prev = hash.to_vec();
    }
    Ok(())
}

/// A record as stored, whatever was done to the file: a column of another type than
/// written is read as its bytes (and then fails the hash), never refused, so that a
/// verification can say which record was changed.
fn row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    use rusqlite::types::ValueRef;
    let bytes = |i: usize| -> rusqlite::Result<Vec<u8>> {
        Ok(match r.get_ref(i)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
            ValueRef::Integer(n) => n.to_string().into_bytes(),
            ValueRef::Real(x) => x.to_string().into_bytes(),
            ValueRef::Null => Vec::new(),
        })
    };
    let text = |i: usize| -> rusqlite::Result<String> { Ok(String::from_utf8_lossy(&bytes(i)?).into_owned()) };
    Ok(AuditRecord {
        n: r.get(0)?,
        id: text(1)?,
        recorded_ms: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
        agent: text(3)?,
        patient: text(4)?,
        subtype: text(5)?,
        outcome: text(6)?,
        entities: text(7)?,
        body: bytes(8)?,
        prev: bytes(9)?,
        hash: bytes(10)?,
    })
}

/// Records in chain order after `after_n`, at most `limit`.
pub(crate) fn chain(conn: &Connection, after_n: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit WHERE n > ?1 ORDER BY n LIMIT ?2"))?;
    let rows = stmt.query_map(params![after_n, limit as i64], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records matching `q`, newest first, at most `q.count + 1` (the extra one tells whether
/// there is a next page).
pub(crate) fn search(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut cond = |sql_part: &str, v: rusqlite::types::Value| {
        sql.push_str(sql_part);
        values.push(v);
    };
    use rusqlite::types::Value as V;
    if let Some(id) = &q.id {
        cond(" AND id = ?", V::Text(id.clone()));
    }
    if let Some(t) = q.since_ms {
        cond(" AND recorded >= ?", V::Integer(t));
    }
    if let Some(t) = q.until_ms {
        cond(" AND recorded < ?", V::Integer(t));
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
        cond(" AND (instr(' ' || entities || ' ', ?) > 0", V::Text(format!(" {e} ")));
        cond(" OR instr(' ' || entities, ?) > 0)", V::Text(format!(" {e}/_history/")));
    }
    if let Some(b) = q.before_n {
        cond(" AND n < ?", V::Integer(b));
    }
    sql.push_str(&format!(" ORDER BY n DESC LIMIT {}", q.count + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
