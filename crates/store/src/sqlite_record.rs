//! The index record of each current version: the keys of every index row written for it,
//! encoded in one blob (`idx_record`, rowid = seq).
//!
//! Why: without it every index table needs a second B-tree on `seq` (to delete a
//! superseded version's rows and to read a version's sort value), and on a WITHOUT ROWID
//! table that index repeats the whole key, doubling the bytes every write touches. One
//! appended blob per version instead lets deletes go by primary key and sorts read the
//! value from the record. The encoding is hand-written because it is a handful of tagged
//! SQL values, which no serialisation crate would make smaller or simpler.

use crate::StoreError;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;

/// The index tables a record lists, by tag (the tag is the position here). For each: the
/// columns after `type` that, with `type` and `seq`, pick out the version's rows, and how
/// many values follow them in the record only (sort values that are not key columns).
pub(crate) const TABLES: [(&str, &[&str], &[&str]); 9] = [
    ("idx_token", &["param", "code", "system"], &[]),
    ("idx_string", &["param", "norm", "exact"], &[]),
    ("idx_date", &["param", "lo", "hi"], &[]),
    ("idx_date_wide", &["param", "lo", "hi"], &[]),
    ("idx_number", &["param", "value"], &[]),
    ("idx_quantity", &["param", "code", "value", "system"], &[]),
    ("idx_reference", &["param", "target_id", "target_type", "url"], &[]),
    ("idx_uri", &["param", "value"], &[]),
    // Rowid table: its index is (type, param, c_code, c_system, value, seq); `value` follows
    // for sorting.
    ("idx_composite", &["param", "c_code", "c_system"], &["value"]),
];

/// The tags of [`TABLES`], by name, for the write path (no lookup per row).
pub(crate) mod table {
    pub(crate) const TOKEN: u8 = 0;
    pub(crate) const STRING: u8 = 1;
    pub(crate) const DATE: u8 = 2;
    pub(crate) const DATE_WIDE: u8 = 3;
    pub(crate) const NUMBER: u8 = 4;
    pub(crate) const QUANTITY: u8 = 5;
    pub(crate) const REFERENCE: u8 = 6;
    pub(crate) const URI: u8 = 7;
    pub(crate) const COMPOSITE: u8 = 8;
}

/// The tag of a table in [`TABLES`].
pub(crate) fn tag(table: &str) -> u8 {
    TABLES.iter().position(|(t, _, _)| *t == table).expect("an index table") as u8
}

/// A record being built. Texts already written in the same record (systems, parameter
/// names, a patient's id) are written again as a back-reference, and a literal reference's
/// `url` (`Type/id`) as a marker, which keeps records at about half their plain size.
#[derive(Default)]
pub(crate) struct Record<'a> {
    bytes: Vec<u8>,
    texts: rustc_hash::FxHashMap<&'a [u8], u32>,
}

const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
/// A back-reference: the n-th `TEXT` of the record (counting from 0).
const SAME_TEXT: u8 = 4;
/// `{value 2}/{value 1}` of the same row: a reference's url from its type and id.
const TYPE_SLASH_ID: u8 = 5;
/// Shorter texts are cheaper written out than back-referenced.
const SHORTEST_SHARED: usize = 4;

impl<'a> Record<'a> {
    pub(crate) fn row(&mut self, table: u8, values: &[ValueRef<'a>]) {
        self.bytes.push(table);
        for (i, v) in values.iter().enumerate() {
            match *v {
                ValueRef::Null => self.bytes.push(NULL),
                ValueRef::Integer(n) => {
                    self.bytes.push(INTEGER);
                    self.bytes.extend_from_slice(&n.to_le_bytes());
                }
                ValueRef::Real(f) => {
                    self.bytes.push(REAL);
                    self.bytes.extend_from_slice(&f.to_le_bytes());
                }
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    if i == 3 && table == table::REFERENCE && is_type_slash_id(t, values) {
                        self.bytes.push(TYPE_SLASH_ID);
                    } else if let Some(n) = self.texts.get(t) {
                        self.bytes.push(SAME_TEXT);
                        push_varint(&mut self.bytes, *n as usize);
                    } else {
                        self.bytes.push(TEXT);
                        push_varint(&mut self.bytes, t.len());
                        self.bytes.extend_from_slice(t);
                        if t.len() >= SHORTEST_SHARED {
                            let n = self.texts.len() as u32;
                            self.texts.insert(t, n);
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn is_type_slash_id(url: &[u8], row: &[ValueRef<'_>]) -> bool {
    let (Some(ValueRef::Text(id)), Some(ValueRef::Text(ty))) = (row.get(1), row.get(2)) else { return false };
    !id.is_empty()
        && url.len() == ty.len() + 1 + id.len()
        && url.starts_with(ty)
        && url.ends_with(id)
        && url[ty.len()] == b'/'
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// One decoded row: its table tag and values (key columns, then extras), borrowed from
/// the record except a reference url rebuilt from its type and id.
pub(crate) type Row<'a> = (u8, Vec<ToSqlOutput<'a>>);

/// The value as SQLite sees it.
pub(crate) fn view<'v>(v: &'v ToSqlOutput<'_>) -> ValueRef<'v> {
    match v {
        ToSqlOutput::Borrowed(r) => *r,
        ToSqlOutput::Owned(o) => ValueRef::from(o),
        _ => ValueRef::Null,
    }
}

/// The rows of a record.
pub(crate) fn rows(record: &[u8]) -> Result<Vec<Row<'_>>, StoreError> {
    let mut out: Vec<Row<'_>> = Vec::new();
    each_row(record, None, |table, values| out.push((table, std::mem::take(values))))?;
    Ok(out)
}

/// Calls `f` with each row of the record, its values in one reused buffer. With `only`,
/// a reference url of another table is left NULL instead of being rebuilt.
fn each_row<'r>(
    record: &'r [u8],
    only: Option<u8>,
    mut f: impl FnMut(u8, &mut Vec<ToSqlOutput<'r>>),
) -> Result<(), StoreError> {
    crate::sqlite_budget::charge_record(record.len());
    let mut texts: Vec<&[u8]> = Vec::new();
    let mut values: Vec<ToSqlOutput<'r>> = Vec::new();
    let mut at = 0;
    while at < record.len() {
        let table = record[at];
        let Some((_, keys, extra)) = TABLES.get(table as usize) else {
            return Err(corrupt());
        };
        at += 1;
        values.clear();
        for _ in 0..keys.len() + extra.len() {
            let kind = *record.get(at).ok_or_else(corrupt)?;
            at += 1;
            let fixed = |at: usize| -> Result<[u8; 8], StoreError> {
                record.get(at..at + 8).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)
            };
            let v = match kind {
                NULL => ToSqlOutput::Borrowed(ValueRef::Null),
                INTEGER => {
                    at += 8;
                    ToSqlOutput::Borrowed(ValueRef::Integer(i64::from_le_bytes(fixed(at - 8)?)))
                }
                REAL => {
                    at += 8;
                    ToSqlOutput::Borrowed(ValueRef::Real(f64::from_le_bytes(fixed(at - 8)?)))
                }
                TEXT => {
                    let (n, next) = varint(record, at).ok_or_else(corrupt)?;
                    let t = record.get(next..next.checked_add(n).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
                    at = next + n;
                    if t.len() >= SHORTEST_SHARED {
                        texts.push(t);
                    }
                    ToSqlOutput::Borrowed(ValueRef::Text(t))
                }
                SAME_TEXT => {
                    let (n, next) = varint(record, at).ok_or_else(corrupt)?;
                    at = next;
                    ToSqlOutput::Borrowed(ValueRef::Text(texts.get(n).ok_or_else(corrupt)?))
                }
                TYPE_SLASH_ID if values.len() == 3 && only.is_some_and(|t| t != table) => {
                    ToSqlOutput::Borrowed(ValueRef::Null)
                }
                TYPE_SLASH_ID if values.len() == 3 => {
                    let text = |v: &ToSqlOutput<'_>| match view(v) {
                        ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|_| corrupt()),
                        _ => Err(corrupt()),
                    };
                    ToSqlOutput::Owned(Value::Text(format!("{}/{}", text(&values[2])?, text(&values[1])?)))
                }
                _ => return Err(corrupt()),
            };
            values.push(v);
        }
        f(table, &mut values);
    }
    Ok(())
}

fn varint(b: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let (mut n, mut shift) = (0usize, 0u32);
    loop {
        let byte = *b.get(at)?;
        at += 1;
        n |= ((byte & 0x7f) as usize).checked_shl(shift)?;
        if byte < 0x80 {
            return Some((n, at));
        }
        shift += 7;
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("an index record does not decode".into())
}

/// The table tag and parameter of each row of a record.
pub(crate) fn row_params(record: &[u8]) -> Result<Vec<(u8, &[u8])>, StoreError> {
    let mut out = Vec::new();
    each_row(record, Some(u8::MAX), |t, values| {
        if let Some(ToSqlOutput::Borrowed(ValueRef::Text(p))) = values.first() {
            out.push((t, *p));
        }
    })?;
    Ok(out)
}

/// Removes every index row of the version stored at `seq` (of type `ty`), by key, and its
/// parameters from the kept counts.
pub(crate) fn delete(
    c: &Connection,
    seq: i64,
    ty: &str,
    presence: &mut crate::sqlite_presence::Deltas,
) -> Result<(), StoreError> {
    let record: Option<Vec<u8>> = {
        let mut stmt = c.prepare_cached("SELECT entries FROM idx_record WHERE seq = ?1")?;
        let mut rows = stmt.query([seq])?;
        match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        }
    };
    if let Some(record) = record {
        let rows = rows(&record)?;
        let mut dates: Vec<(&[u8], i64, i64)> = Vec::new();
        for (table, values) in &rows {
            if let (table::DATE, [p, lo, hi]) = (*table, values.as_slice()) {
                if let (ValueRef::Text(p), ValueRef::Integer(lo), ValueRef::Integer(hi)) = (view(p), view(lo), view(hi))
                {
                    dates.push((p, lo, hi));
                }
            }
        }
        crate::sqlite_index::count_multi_dates(c, ty, &mut dates, -1)?;
        let mut params: Vec<(u8, &[u8])> = rows
            .iter()
            .filter_map(|(t, values)| match values.first().map(view) {
                Some(ValueRef::Text(p)) => Some((*t, p)),
                _ => None,
            })
            .collect();
        presence.record_rows(ty, &mut params, -1);
        for (table, values) in rows {
            let (name, keys, _) = TABLES[table as usize];
            let tests: Vec<String> = keys.iter().map(|k| format!(" AND {k} = ?")).collect();
            let sql = format!("DELETE FROM {name} WHERE type = ?{} AND seq = ?", tests.concat());
            let mut bind: Vec<ToSqlOutput<'_>> = vec![ToSqlOutput::Borrowed(ValueRef::Text(ty.as_bytes()))];
            bind.extend(values.into_iter().take(keys.len()));
            bind.push(ToSqlOutput::Borrowed(ValueRef::Integer(seq)));
            c.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(bind))?;
        }
        c.prepare_cached("DELETE FROM idx_record WHERE seq = ?1")?.execute([seq])?;
    }
    c.prepare_cached("DELETE FROM idx_fulltext WHERE rowid = ?1")?.execute([seq])?;
    Ok(())
}

/// Databases written before records existed: builds the record of every version from its
/// index rows (found through the `seq` indexes those databases have), then drops those
/// indexes. One transaction, so an interrupted run leaves the old layout to redo.
pub(crate) fn build_missing(c: &Connection) -> Result<(), StoreError> {
    const RANGE: i64 = 50_000;
    c.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), StoreError> {
        let high: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM resource", [], |r| r.get(0))?;
        let mut insert = c.prepare("INSERT INTO idx_record (seq, entries) VALUES (?1, ?2)")?;
        for lo in (0..high).step_by(RANGE as usize) {
            let mut found: std::collections::BTreeMap<i64, Vec<(u8, Vec<Value>)>> = Default::default();
            for (tag, (name, keys, extra)) in TABLES.iter().enumerate() {
                let cols = [*keys, *extra].concat();
                let sql = format!("SELECT seq, {} FROM {name} WHERE seq > ?1 AND seq <= ?2", cols.join(", "));
                let mut stmt = c.prepare(&sql)?;
                let mut rows = stmt.query([lo, lo + RANGE])?;
                while let Some(r) = rows.next()? {
                    let values: Vec<Value> = (1..=cols.len()).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                    found.entry(r.get(0)?).or_default().push((tag as u8, values));
                }
            }
            for (seq, rows) in &found {
                let mut record = Record::default();
                for (tag, values) in rows {
                    record.row(*tag, &values.iter().map(ValueRef::from).collect::<Vec<_>>());
                }
                insert.execute(rusqlite::params![seq, record.bytes()])?;
            }
        }
        for (name, _, _) in TABLES.iter().filter(|(name, _, _)| *name != "idx_date") {
            c.execute_batch(&format!("DROP INDEX IF EXISTS {name}_seq"))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(c.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// SQL for the sort value of the row `alias` (one `?`: the parameter): what
/// `SELECT MIN(column) FROM table WHERE seq = alias.seq AND param = ?` (or `MAX`) gives,
/// read from the record.
pub(crate) fn sort_value_sql(table: &str, column: &str, max: bool, alias: &str) -> String {
    let (_, keys, extra) = TABLES[tag(table) as usize];
    let position = [keys, extra].concat().iter().position(|c| *c == column).expect("a column of the record");
    format!(
        "(SELECT tsunagu_sort_value(entries, {}, ?, {position}, {}) FROM idx_record WHERE seq = {alias}.seq)",
        tag(table),
        max as u8
    )
}

/// Registers `tsunagu_sort_value(record, table, param, column, max)`: the smallest (or
/// with `max` the largest) value in position `column` of the record's rows of `table` for
/// `param`, compared as SQLite compares (NULL < numbers < text), or NULL when there is none
/// — what `SELECT MIN(column) FROM table WHERE seq = … AND param = …` gives.
pub(crate) fn register_sort_value(c: &Connection) -> Result<(), StoreError> {
    c.create_scalar_function(
        "tsunagu_sort_value",
        5,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let record = ctx.get_raw(0).as_blob_or_null()?.unwrap_or_default();
            let table = ctx.get::<i64>(1)?;
            let param = ctx.get_raw(2).as_bytes()?;
            let column = ctx.get::<i64>(3)? as usize;
            let max = ctx.get::<i64>(4)? != 0;
            let mut best: Option<ToSqlOutput<'_>> = None;
            let table = u8::try_from(table).unwrap_or(u8::MAX);
            each_row(record, Some(table), |t, values| {
                if t != table || values.first().map(view) != Some(ValueRef::Text(param)) {
                    return;
                }
                let Some(v) = values.get(column).map(view).filter(|v| *v != ValueRef::Null) else { return };
                let better = best.as_ref().map(view).is_none_or(|b| {
                    if max {
                        sql_order(v, b).is_gt()
                    } else {
                        sql_order(v, b).is_lt()
                    }
                });
                if better {
                    best = Some(std::mem::replace(&mut values[column], ToSqlOutput::Borrowed(ValueRef::Null)));
                }
            })
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
            Ok(best.as_ref().map(|b| Value::from(view(b))))
        },
    )?;
    register_reference_sort(c)?;
    register_refers(c)?;
    crate::sqlite_rows::register(c)?;
    Ok(())
}

/// What a reference sorts by: its target's id, then its type, then the reference as written
/// — `idx_reference`'s own key order, so that a sort walk can read it — in one text, the
/// parts joined by U+0001, which no string a resource may hold contains (FHIR strings carry
/// no control character but tab, CR and LF), so the text compares as the parts do.
pub(crate) fn reference_sort_key(target_id: &[u8], target_type: &[u8], url: &[u8]) -> Vec<u8> {
    [target_id, b"\x01", target_type, b"\x01", url].concat()
}

/// SQL for the sort value of the row `alias` by a reference parameter (one `?`: the
/// parameter): the smallest [`reference_sort_key`] of its rows, or with `max` the largest.
pub(crate) fn reference_sort_sql(max: bool, alias: &str) -> String {
    format!("(SELECT tsunagu_reference_sort(entries, ?, {}) FROM idx_record WHERE seq = {alias}.seq)", max as u8)
}

/// Registers `tsunagu_reference_sort(record, param, max)`: the smallest (or with `max` the
/// largest) [`reference_sort_key`] of the record's reference rows of `param`, or NULL.
fn register_reference_sort(c: &Connection) -> Result<(), StoreError> {
    c.create_scalar_function(
        "tsunagu_reference_sort",
        3,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let record = ctx.get_raw(0).as_blob_or_null()?.unwrap_or_default();
            let param = ctx.get_raw(1).as_bytes()?;
            let max = ctx.get::<i64>(2)? != 0;
            let mut best: Option<Vec<u8>> = None;
            each_row(record, Some(table::REFERENCE), |t, values| {
                if t != table::REFERENCE || values.first().map(view) != Some(ValueRef::Text(param)) {
                    return;
                }
                let part = |i: usize| match values.get(i).map(view) {
                    Some(ValueRef::Text(b)) => b.to_vec(),
                    _ => Vec::new(),
                };
                let key = reference_sort_key(&part(1), &part(2), &part(3));
                if best.as_ref().is_none_or(|b| if max { key > *b } else { key < *b }) {
                    best = Some(key);
                }
            })
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
            Ok(best.map(|b| String::from_utf8_lossy(&b).into_owned()))
        },
    )?;
    Ok(())
}

/// Registers `tsunagu_refers(record, type, pairs, target_type)`: 1 when the record (of a
/// resource of `type`) has a reference row of a parameter listed in `pairs`
/// (`|Type.param|Type.param|…`) pointing at a resource of `target_type`, else 0: what
/// `seq IN (SELECT seq FROM idx_reference WHERE (type, param) IN pairs AND target_type = ?)`
/// says of one resource, without collecting the whole list.
fn register_refers(c: &Connection) -> Result<(), StoreError> {
    c.create_scalar_function(
        "tsunagu_refers",
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let record = ctx.get_raw(0).as_blob_or_null()?.unwrap_or_default();
            let ty = ctx.get_raw(1).as_bytes()?;
            let pairs = ctx.get_raw(2).as_bytes()?;
            let target = ctx.get_raw(3).as_bytes()?;
            let mut found = false;
            let mut key = Vec::with_capacity(64);
            each_row(record, Some(table::REFERENCE), |t, values| {
                if found || t != table::REFERENCE {
                    return;
                }
                let (Some(ValueRef::Text(param)), Some(ValueRef::Text(tt))) =
                    (values.first().map(view), values.get(2).map(view))
                else {
                    return;
                };
                if tt != target {
                    return;
                }
                key.clear();
                key.push(b'|');
                key.extend_from_slice(ty);
                key.push(b'.');
                key.extend_from_slice(param);
                key.push(b'|');
                found = pairs.windows(key.len()).any(|w| w == key.as_slice());
            })
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
            Ok(found as i64)
        },
    )?;
    Ok(())
}

/// SQLite's order of non-NULL values under the BINARY collation.
fn sql_order(a: ValueRef<'_>, b: ValueRef<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let number = |v: ValueRef<'_>| match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        _ => None,
    };
    match (a, b) {
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x.cmp(&y),
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => match (a, b) {
                (ValueRef::Text(x), ValueRef::Text(y)) | (ValueRef::Blob(x), ValueRef::Blob(y)) => x.cmp(y),
                (ValueRef::Text(_), _) => Ordering::Less,
                _ => Ordering::Greater,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_match_the_table_list() {
        use super::table::*;
        let named = [TOKEN, STRING, DATE, DATE_WIDE, NUMBER, QUANTITY, REFERENCE, URI, COMPOSITE];
        let names = TABLES.map(|(name, _, _)| tag(name));
        assert_eq!(named, names);
        assert_eq!(TABLES[REFERENCE as usize].0, "idx_reference");
    }

    #[test]
    fn records_decode_to_what_was_written() {
        let mut r = Record::default();
        let long = "長".repeat(100);
        r.row(tag("idx_token"), &[ValueRef::Text(b"code"), ValueRef::Text(b"x"), ValueRef::Text(b"")]);
        r.row(tag("idx_date"), &[ValueRef::Text(b"date"), ValueRef::Integer(i64::MIN), ValueRef::Integer(-5)]);
        let composite = [ValueRef::Text(long.as_bytes()), ValueRef::Null, ValueRef::Real(1.5), ValueRef::Null];
        r.row(tag("idx_composite"), &composite);
        let reference = [
            ValueRef::Text(b"subject"),
            ValueRef::Text(b"p1"),
            ValueRef::Text(b"Patient"),
            ValueRef::Text(b"Patient/p1"),
        ];
        r.row(tag("idx_reference"), &reference);
        // A second row repeating texts of the first is written with back-references.
        let before = r.bytes().len();
        r.row(tag("idx_composite"), &composite);
        assert!(r.bytes().len() - before < 20, "the 300-byte text is not written again");
        let rows = rows(r.bytes()).unwrap();
        let views = |i: usize| rows[i].1.iter().map(view).collect::<Vec<_>>();
        assert_eq!(rows.len(), 5);
        assert_eq!(views(1), [ValueRef::Text(b"date"), ValueRef::Integer(i64::MIN), ValueRef::Integer(-5)]);
        assert_eq!(views(2), composite);
        assert_eq!(views(3), reference);
        assert_eq!(views(4), composite);
        // Every truncation is an error, never a panic or a wrong row.
        for cut in 1..r.bytes().len() {
            let _ = super::rows(&r.bytes()[..cut]);
        }
        assert!(super::rows(&[200]).is_err());
    }

    #[test]
    fn sort_value_orders_as_sqlite_min_and_max_do() {
        let c = Connection::open_in_memory().unwrap();
        register_sort_value(&c).unwrap();
        let mut r = Record::default();
        for v in ["b", "a", "c"] {
            r.row(tag("idx_token"), &[ValueRef::Text(b"code"), ValueRef::Text(v.as_bytes()), ValueRef::Text(b"")]);
        }
        r.row(tag("idx_token"), &[ValueRef::Text(b"other"), ValueRef::Text(b"0"), ValueRef::Text(b"")]);
        let get = |param: &str, max: i64| -> Option<String> {
            c.query_row(
                "SELECT tsunagu_sort_value(?1, ?2, ?3, 1, ?4)",
                rusqlite::params![r.bytes(), tag("idx_token"), param, max],
                |row| row.get(0),
            )
            .unwrap()
        };
        assert_eq!(get("code", 0).as_deref(), Some("a"));
        assert_eq!(get("code", 1).as_deref(), Some("c"));
        assert_eq!(get("missing", 0), None);
        assert_eq!(sql_order(ValueRef::Integer(2), ValueRef::Real(2.5)), std::cmp::Ordering::Less);
        assert_eq!(sql_order(ValueRef::Real(9.0), ValueRef::Text(b"1")), std::cmp::Ordering::Less);
    }
}
