//! Kept statistics: how many current, live resources each type has, how many of them have
//! at least one index row of each parameter in each index table (`idx_presence.n`), and
//! how many more than one entry of it (`multi`).
//!
//! They are exact, changed in the write transaction that changes what they count: the
//! writes of a transaction sum their changes in memory ([`Deltas`]) and the sums are
//! written once per key just before the commit, so a Bundle of 300 resources adds a few
//! dozen small updates, not one per index row. The planner reads them to learn without
//! visiting rows that every resource of a type has a parameter; then `:missing=true`
//! matches nothing, and a token `:not=x` matches exactly the resources with another value
//! and no `x`, which the index finds by range (`sqlite_negation`); and that no resource has
//! two values of a quantity, so that a walk sorted by it may start at the bound a condition
//! on it sets (`sqlite_sort`). `tsunagu check` recounts them ([`recount_differences`]).

use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::FxHashMap;

use crate::query::{IndexEntry, IndexKind, IndexValue, SearchQuery, SortParam};
use crate::sqlite_record::table;
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idx_presence (type TEXT NOT NULL, tbl INTEGER NOT NULL, param TEXT NOT NULL,
    n INTEGER NOT NULL, multi INTEGER NOT NULL, PRIMARY KEY (type, tbl, param)) WITHOUT ROWID;
";

/// The `tbl` of the row counting a type's live resources (its `param` is '').
const RESOURCES: u8 = u8::MAX;

type Key = (String, u8, String);

/// Changes to the counts (`n`, `multi`) made by one write transaction, not yet written.
#[derive(Default)]
pub(crate) struct Deltas(FxHashMap<Key, (i64, i64)>);

impl Deltas {
    /// A live current version of `ty` written (`delta` 1) or no longer current or live (-1).
    pub(crate) fn resource(&mut self, ty: &str, delta: i64) {
        self.0.entry((ty.to_string(), RESOURCES, String::new())).or_default().0 += delta;
    }

    /// The parameters a version's entries give index rows.
    pub(crate) fn entries(&mut self, ty: &str, entries: &[IndexEntry], delta: i64) {
        let mut rows: Vec<(u8, &[u8])> =
            entries.iter().filter_map(|e| Some((entry_table(&e.value)?, e.param.as_bytes()))).collect();
        self.record_rows(ty, &mut rows, delta);
    }

    /// The parameters of a version's record rows (table tag, parameter): one row per entry,
    /// and an `idx_date_wide` copy, which is left out.
    pub(crate) fn record_rows(&mut self, ty: &str, rows: &mut Vec<(u8, &[u8])>, delta: i64) {
        for ((tbl, param), several) in per_parameter(rows) {
            let d = self.0.entry((ty.to_string(), tbl, String::from_utf8_lossy(param).into_owned())).or_default();
            d.0 += delta;
            if several {
                d.1 += delta;
            }
        }
    }

    /// Writes the sums (one statement per key that changed) and forgets them.
    pub(crate) fn flush(&mut self, c: &Connection) -> Result<(), StoreError> {
        for ((ty, tbl, param), (n, multi)) in self.0.drain().filter(|(_, d)| *d != (0, 0)) {
            c.prepare_cached(
                "INSERT INTO idx_presence (type, tbl, param, n, multi) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (type, tbl, param) DO UPDATE SET n = n + ?4, multi = multi + ?5",
            )?
            .execute(params![ty, tbl, param, n, multi])?;
        }
        c.prepare_cached("DELETE FROM idx_presence WHERE n <= 0")?.execute([])?;
        Ok(())
    }
}

/// Each (table, parameter) of one version's rows once, and whether it has more than one
/// entry (a value repeated counts: this errs towards "several", which only costs a plan).
fn per_parameter<'a>(rows: &mut Vec<(u8, &'a [u8])>) -> Vec<((u8, &'a [u8]), bool)> {
    rows.retain(|(t, _)| *t != table::DATE_WIDE);
    rows.sort_unstable();
    let mut out: Vec<((u8, &[u8]), bool)> = Vec::new();
    for row in rows.iter() {
        match out.last_mut() {
            Some((last, several)) if last == row => *several = true,
            _ => out.push((*row, false)),
        }
    }
    out
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
    let Some(resources) = having(c, ty, RESOURCES, "")? else { return Ok(false) };
    Ok(having(c, ty, tbl, param)? == Some(resources))
}

/// The live resources of `ty` with a row of `param` in table `tbl` (`None`: never counted).
fn having(c: &Connection, ty: &str, tbl: u8, param: &str) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached("SELECT n FROM idx_presence WHERE type = ?1 AND tbl = ?2 AND param = ?3")?
        .query_row(params![ty, tbl, param], |r| r.get(0))
        .optional()?)
}

/// For each sort key of `q`, whether some live resource of its type may have a value of it:
/// `false` only for a parameter held in one index table (not a date, whose wide values are
/// kept apart) with no row there, from the counts.
pub(crate) fn sort_keys_with_values(c: &Connection, q: &SearchQuery) -> Result<Vec<bool>, StoreError> {
    let Some(ty) = q.resource_type.as_deref() else { return Ok(vec![true; q.sort.len()]) };
    q.sort
        .iter()
        .map(|k| {
            let SortParam::Index { param, kind } = &k.param else { return Ok(true) };
            if matches!(kind, IndexKind::Date | IndexKind::Composite) {
                return Ok(true);
            }
            let tbl = crate::sqlite_record::tag(crate::sqlite_query::table(*kind));
            Ok(having(c, ty, tbl, param)?.unwrap_or(0) > 0)
        })
        .collect()
}

/// `q` with only the sort keys some live resource has a value of, by the kept counts
/// ([`sort_keys_with_values`], [`crate::sort_keys_with_values_only`]); `None`: nothing
/// to leave out.
pub(crate) fn without_valueless_keys(c: &Connection, q: &SearchQuery) -> Result<Option<SearchQuery>, StoreError> {
    if q.sort.len() < 2 {
        return Ok(None);
    }
    let valued = sort_keys_with_values(c, q)?;
    Ok(crate::sort_keys_with_values_only(&q.sort, &valued).map(|sort| SearchQuery { sort, ..q.clone() }))
}

/// Whether no live resource of `ty` has more than one entry of `param` in table `tbl`.
pub(crate) fn single_valued(c: &Connection, ty: &str, tbl: u8, param: &str) -> Result<bool, StoreError> {
    let multi: Option<i64> = c
        .prepare_cached("SELECT multi FROM idx_presence WHERE type = ?1 AND tbl = ?2 AND param = ?3")?
        .query_row(params![ty, tbl, param], |r| r.get(0))
        .optional()?;
    Ok(multi.unwrap_or(0) == 0)
}

/// The live resources of `ty`, from the counts.
pub(crate) fn resources(c: &Connection, ty: &str) -> Result<u64, StoreError> {
    let n: Option<i64> = c
        .prepare_cached("SELECT n FROM idx_presence WHERE type = ?1 AND tbl = ?2 AND param = ''")?
        .query_row(params![ty, RESOURCES], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// The counts as the data gives them: live resources by type, and the parameters of each
/// index record.
fn recount(c: &Connection) -> Result<FxHashMap<Key, (i64, i64)>, StoreError> {
    let mut counts = Deltas::default();
    let mut stmt = c.prepare("SELECT type, COUNT(*) FROM resource WHERE current = 1 AND deleted = 0 GROUP BY type")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        counts.resource(&r.get::<_, String>(0)?, r.get(1)?);
    }
    let mut stmt = c.prepare("SELECT r.type, x.entries FROM idx_record x JOIN resource r ON r.seq = x.seq")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let ty: String = r.get(0)?;
        let record = r.get_ref(1)?.as_blob().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        counts.record_rows(&ty, &mut crate::sqlite_record::row_params(record)?, 1);
    }
    Ok(counts.0)
}

/// Fills `idx_presence` from the data: a database written before it existed, and the end
/// of a reindex (`Store::recount_statistics`).
pub(crate) fn count_missing(c: &Connection) -> Result<(), StoreError> {
    let tx = c.unchecked_transaction()?;
    tx.execute("DELETE FROM idx_presence", [])?;
    for ((ty, tbl, param), (n, multi)) in recount(&tx)? {
        tx.prepare_cached("INSERT INTO idx_presence (type, tbl, param, n, multi) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![ty, tbl, param, n, multi])?;
    }
    tx.commit()?;
    Ok(())
}

/// Where the kept counts differ from a recount, one line each (none when they agree).
pub(crate) fn recount_differences(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut actual = recount(c)?;
    let mut out = Vec::new();
    let mut stmt = c.prepare("SELECT type, tbl, param, n, multi FROM idx_presence")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: Key = (r.get(0)?, r.get(1)?, r.get(2)?);
        let kept: (i64, i64) = (r.get(3)?, r.get(4)?);
        let real = actual.remove(&key).unwrap_or_default();
        if kept != real {
            out.push(format!("idx_presence {}/{}/{}: kept {kept:?}, counted {real:?}", key.0, key.1, key.2));
        }
    }
    for ((ty, tbl, param), real) in actual.into_iter().filter(|(_, r)| *r != (0, 0)) {
        out.push(format!("idx_presence {ty}/{tbl}/{param}: kept none, counted {real:?}"));
    }
    out.sort();
    Ok(out)
}
