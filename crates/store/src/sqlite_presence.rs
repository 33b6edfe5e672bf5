//! Kept statistics: how many current, live resources each type has, and how many of them
//! have at least one index row of each parameter in each index table (`idx_presence`).
//!
//! They are exact, changed in the write transaction that changes what they count: the
//! writes of a transaction sum their changes in memory ([`Deltas`]) and the sums are
//! written once per key just before the commit, so a Bundle of 300 resources adds a few
//! dozen small updates, not one per index row. The planner reads them to learn without
//! visiting rows that every resource of a type has a parameter; then `:missing=true`
//! matches nothing, and a token `:not=x` matches exactly the resources with another value
//! and no `x`, which the index finds by range (`sqlite_negation`). `tsunagu check`
//! recounts them ([`recount_differences`]).

use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::FxHashMap;

use crate::query::{IndexEntry, IndexValue};
use crate::sqlite_record::table;
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idx_presence (type TEXT NOT NULL, tbl INTEGER NOT NULL, param TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (type, tbl, param)) WITHOUT ROWID;
";

/// The `tbl` of the row counting a type's live resources (its `param` is '').
const RESOURCES: u8 = u8::MAX;

/// Changes to the counts made by one write transaction, not yet written.
#[derive(Default)]
pub(crate) struct Deltas(FxHashMap<(String, u8, String), i64>);

impl Deltas {
    /// A live current version of `ty` written (`delta` 1) or no longer current or live (-1).
    pub(crate) fn resource(&mut self, ty: &str, delta: i64) {
        *self.0.entry((ty.to_string(), RESOURCES, String::new())).or_default() += delta;
    }

    /// The parameters a version's entries give index rows, each once.
    pub(crate) fn entries(&mut self, ty: &str, entries: &[IndexEntry], delta: i64) {
        let mut seen: Vec<(u8, &str)> =
            entries.iter().filter_map(|e| Some((entry_table(&e.value)?, &*e.param))).collect();
        seen.sort_unstable();
        seen.dedup();
        for (tbl, param) in seen {
            *self.0.entry((ty.to_string(), tbl, param.to_string())).or_default() += delta;
        }
    }

    /// The parameters of a version's stored record rows (table tag, parameter), each once.
    pub(crate) fn record_rows(&mut self, ty: &str, rows: &mut Vec<(u8, &[u8])>, delta: i64) {
        rows.retain(|(t, _)| *t != table::DATE_WIDE);
        rows.sort_unstable();
        rows.dedup();
        for (tbl, param) in rows.iter() {
            let param = String::from_utf8_lossy(param).into_owned();
            *self.0.entry((ty.to_string(), *tbl, param)).or_default() += delta;
        }
    }

    /// Writes the sums (one statement per key that changed) and forgets them.
    pub(crate) fn flush(&mut self, c: &Connection) -> Result<(), StoreError> {
        for ((ty, tbl, param), delta) in self.0.drain().filter(|(_, d)| *d != 0) {
            c.prepare_cached(
                "INSERT INTO idx_presence (type, tbl, param, n) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (type, tbl, param) DO UPDATE SET n = n + ?4",
            )?
            .execute(params![ty, tbl, param, delta])?;
        }
        c.prepare_cached("DELETE FROM idx_presence WHERE n <= 0")?.execute([])?;
        Ok(())
    }
}

/// The table tag of the record row an entry gives (its `idx_date_wide` copy aside); `None`
/// for full text, which has no record row.
fn entry_table(v: &IndexValue) -> Option<u8> {
    Some(match v {
        IndexValue::Token { .. } => table::TOKEN,
        IndexValue::String { .. } => table::STRING,
        IndexValue::Date { .. } => table::DATE,
        IndexValue::Number { .. } => table::NUMBER,
        IndexValue::Quantity { .. } => table::QUANTITY,
        IndexValue::Reference { .. } => table::REFERENCE,
        IndexValue::Uri { .. } => table::URI,
        IndexValue::Composite { .. } => table::COMPOSITE,
        IndexValue::FullText { .. } => return None,
    })
}

/// Whether every live resource of `ty` has a row of `param` in table `tbl` (and there is at
/// least one resource): from the counts, without visiting rows.
pub(crate) fn everyone_has(c: &Connection, ty: &str, tbl: u8, param: &str) -> Result<bool, StoreError> {
    let count = |tbl: u8, param: &str| -> Result<Option<i64>, StoreError> {
        Ok(c.prepare_cached("SELECT n FROM idx_presence WHERE type = ?1 AND tbl = ?2 AND param = ?3")?
            .query_row(params![ty, tbl, param], |r| r.get(0))
            .optional()?)
    };
    let Some(resources) = count(RESOURCES, "")? else { return Ok(false) };
    Ok(count(tbl, param)? == Some(resources))
}

/// The counts as the data gives them: live resources by type, and for each index record
/// its parameters, each once.
fn recount(c: &Connection) -> Result<FxHashMap<(String, u8, String), i64>, StoreError> {
    let mut counts: FxHashMap<(String, u8, String), i64> = FxHashMap::default();
    let mut stmt = c.prepare("SELECT type, COUNT(*) FROM resource WHERE current = 1 AND deleted = 0 GROUP BY type")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        counts.insert((r.get(0)?, RESOURCES, String::new()), r.get(1)?);
    }
    let mut stmt = c.prepare("SELECT r.type, x.entries FROM idx_record x JOIN resource r ON r.seq = x.seq")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let ty: String = r.get(0)?;
        let record = r.get_ref(1)?.as_blob().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut params = crate::sqlite_record::row_params(record)?;
        params.retain(|(t, _)| *t != table::DATE_WIDE);
        params.sort_unstable();
        params.dedup();
        for (tbl, param) in params {
            *counts.entry((ty.clone(), tbl, String::from_utf8_lossy(param).into_owned())).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Fills `idx_presence` from the data (a database written before it existed).
pub(crate) fn count_missing(c: &Connection) -> Result<(), StoreError> {
    let tx = c.unchecked_transaction()?;
    tx.execute("DELETE FROM idx_presence", [])?;
    for ((ty, tbl, param), n) in recount(&tx)? {
        tx.prepare_cached("INSERT INTO idx_presence (type, tbl, param, n) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![ty, tbl, param, n])?;
    }
    tx.commit()?;
    Ok(())
}

/// Where the kept counts differ from a recount, one line each (none when they agree).
pub(crate) fn recount_differences(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut actual = recount(c)?;
    let mut out = Vec::new();
    let mut stmt = c.prepare("SELECT type, tbl, param, n FROM idx_presence")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: (String, u8, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let kept: i64 = r.get(3)?;
        let real = actual.remove(&key).unwrap_or(0);
        if kept != real {
            out.push(format!("idx_presence {}/{}/{}: kept {kept}, counted {real}", key.0, key.1, key.2));
        }
    }
    for ((ty, tbl, param), real) in actual {
        out.push(format!("idx_presence {ty}/{tbl}/{param}: kept 0, counted {real}"));
    }
    out.sort();
    Ok(out)
}
