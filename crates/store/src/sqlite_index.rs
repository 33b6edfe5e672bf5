//! Writing index rows for a new current version.

use crate::query::{IndexEntry, IndexValue};
use crate::sqlite_presence::Deltas;
use crate::sqlite_record::{table, Record};
use crate::StoreError;
use rusqlite::{params, CachedStatement, Connection};
use rustc_hash::FxHashMap;

/// Date values up to this wide live only in `idx_date`; wider ones also in `idx_date_wide`.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Index rows, record and full-text row of a new current version, and its parameters in
/// the kept counts.
pub(crate) fn insert(
    c: &Connection,
    seq: i64,
    ty: &str,
    entries: &[IndexEntry],
    presence: &mut Deltas,
) -> Result<(), StoreError> {
    presence.entries(ty, entries, 1);
    let mut rows = RowInserter::new(c);
    entries.iter().try_for_each(|e| rows.insert(seq, ty, e))?;
    insert_token_texts(c, entries.iter().map(|e| (ty, e)))?;
    insert_record(c, seq, entries)?;
    count_multi_dates(c, ty, &mut date_rows(entries), 1)?;
    insert_fulltext(c, seq, entries)
}

/// The version's record (see `sqlite_record`): the key of every row `insert_one` writes
/// for its entries, in entry order.
fn insert_record(c: &Connection, seq: i64, entries: &[IndexEntry]) -> Result<(), StoreError> {
    let mut record = Record::default();
    for e in entries {
        record_rows(e, &mut record);
    }
    if !record.is_empty() {
        c.prepare_cached("INSERT INTO idx_record (seq, entries) VALUES (?1, ?2)")?
            .execute(params![seq, record.bytes()])?;
    }
    Ok(())
}

/// The record rows of one entry: the key columns after `type` of each row `insert_one`
/// writes for it, in the order of `sqlite_record::TABLES`.
fn record_rows<'a>(e: &'a IndexEntry, record: &mut Record<'a>) {
    use rusqlite::types::ValueRef as R;
    fn text(s: &str) -> R<'_> {
        R::Text(s.as_bytes())
    }
    fn opt(s: &Option<String>) -> R<'_> {
        R::Text(s.as_deref().unwrap_or("").as_bytes())
    }
    let p = text(&e.param);
    match &e.value {
        IndexValue::Token { system, code, .. } => record.row(table::TOKEN, &[p, text(code), opt(system)]),
        IndexValue::String { norm, exact } => record.row(table::STRING, &[p, text(norm), text(exact)]),
        IndexValue::Date { lo, hi } => {
            if hi.saturating_sub(*lo) > DAY_MS {
                record.row(table::DATE_WIDE, &[p, R::Integer(*lo), R::Integer(*hi)]);
            }
            record.row(table::DATE, &[p, R::Integer(*lo), R::Integer(*hi)]);
        }
        IndexValue::Number { value } => record.row(table::NUMBER, &[p, R::Real(*value)]),
        IndexValue::Quantity { system, code, value } => {
            record.row(table::QUANTITY, &[p, opt(code), R::Real(*value), opt(system)])
        }
        IndexValue::Reference { target_type, target_id, url } => {
            record.row(table::REFERENCE, &[p, opt(target_id), opt(target_type), text(url)])
        }
        IndexValue::Uri { value } => record.row(table::URI, &[p, text(value)]),
        IndexValue::Composite { system, code, second } => {
            // The `value` column of the composite row, for sorting.
            let value = match second.as_ref() {
                IndexValue::Number { value } | IndexValue::Quantity { value, .. } => R::Real(*value),
                IndexValue::Uri { value } => text(value),
                _ => R::Null,
            };
            record.row(table::COMPOSITE, &[p, text(code), opt(system), value])
        }
        IndexValue::FullText { .. } => {}
    }
}

/// The `idx_date` rows (parameter, `lo`, `hi`) of a version's entries, possibly repeated.
fn date_rows(entries: &[IndexEntry]) -> Vec<(&[u8], i64, i64)> {
    let date = |e: &IndexEntry| match e.value {
        IndexValue::Date { lo, hi } => Some((lo, hi)),
        _ => None,
    };
    entries.iter().filter_map(|e| date(e).map(|(lo, hi)| (e.param.as_bytes(), lo, hi))).collect()
}

/// Moves by `delta` (a version written: 1, removed: -1) the count in `idx_date_multi` of
/// each parameter that has more than one distinct row among `dates` (parameter, `lo`,
/// `hi`: one version's `idx_date` rows, possibly repeated).
pub(crate) fn count_multi_dates(
    c: &Connection,
    ty: &str,
    dates: &mut Vec<(&[u8], i64, i64)>,
    delta: i64,
) -> Result<(), StoreError> {
    if dates.len() < 2 {
        return Ok(());
    }
    dates.sort_unstable();
    dates.dedup();
    let mut at = 0;
    while at < dates.len() {
        let param = dates[at].0;
        let n = dates[at..].iter().take_while(|d| d.0 == param).count();
        at += n;
        if n < 2 {
            continue;
        }
        let p = rusqlite::types::ValueRef::Text(param);
        let p = rusqlite::types::ToSqlOutput::Borrowed(p);
        if delta > 0 {
            c.prepare_cached(
                "INSERT INTO idx_date_multi (type, param, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (type, param) DO UPDATE SET n = n + ?3",
            )?
            .execute(params![ty, p, delta])?;
        } else {
            c.prepare_cached("UPDATE idx_date_multi SET n = n + ?3 WHERE type = ?1 AND param = ?2")?
                .execute(params![ty, p, delta])?;
            c.prepare_cached("DELETE FROM idx_date_multi WHERE type = ?1 AND param = ?2 AND n <= 0")?
                .execute(params![ty, p])?;
        }
    }
    Ok(())
}

/// Fills `idx_date_multi` from `idx_date` (a database written before it existed), through
/// the `seq` index, in one statement.
pub(crate) fn count_multi_dates_missing(c: &Connection) -> Result<(), StoreError> {
    c.execute_batch(
        "INSERT INTO idx_date_multi (type, param, n) SELECT type, param, COUNT(*) FROM \
         (SELECT type, param FROM idx_date GROUP BY seq, type, param HAVING COUNT(*) > 1) GROUP BY type, param",
    )?;
    Ok(())
}

/// The displays of the token entries among `entries` (with their resource types) in
/// `idx_token_text`, each distinct one once: a batch repeats a few displays many times.
fn insert_token_texts<'a>(
    c: &Connection,
    entries: impl Iterator<Item = (&'a str, &'a IndexEntry)>,
) -> Result<(), StoreError> {
    let mut seen: rustc_hash::FxHashSet<(&str, &str, &str, &str, &str)> = Default::default();
    for (ty, e) in entries {
        if let IndexValue::Token { system, code, display: Some(display) } = &e.value {
            seen.insert((ty, &e.param, display, code, system.as_deref().unwrap_or("")));
        }
    }
    if seen.is_empty() {
        return Ok(());
    }
    let mut stmt = c.prepare_cached(
        "INSERT OR IGNORE INTO idx_token_text (type, param, display, code, system) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut rows: Vec<_> = seen.into_iter().collect();
    rows.sort_unstable();
    for (ty, param, display, code, system) in rows {
        stmt.execute(params![ty, param, display, code, system])?;
    }
    Ok(())
}

/// Fills `idx_token_text` from `idx_token` (a database written before it existed).
pub(crate) fn token_texts_missing(c: &Connection) -> Result<(), StoreError> {
    c.execute_batch(
        "INSERT OR IGNORE INTO idx_token_text (type, param, display, code, system) \
         SELECT DISTINCT type, param, display, code, system FROM idx_token WHERE display IS NOT NULL",
    )?;
    Ok(())
}

/// The one full-text row of a version: `_text` and `_content` entries share it (rowid =
/// seq), so they cannot go row by row like the other kinds.
fn insert_fulltext(c: &Connection, seq: i64, entries: &[IndexEntry]) -> Result<(), StoreError> {
    let column = |param: &str| {
        entries.iter().find_map(|e| match &e.value {
            IndexValue::FullText { tokens } if e.param == param => Some(tokens.as_str()),
            _ => None,
        })
    };
    let (narrative, content) = (column("_text"), column("_content"));
    if narrative.is_some() || content.is_some() {
        c.prepare_cached("INSERT INTO idx_fulltext (rowid, narrative, content) VALUES (?1, ?2, ?3)")?
            .execute(params![seq, narrative.unwrap_or(""), content.unwrap_or("")])?;
    }
    Ok(())
}

/// Index rows of many new versions, inserted table by table in key order. Each B-tree page
/// is then visited once per batch rather than once per row, which is most of the cost of a
/// bulk load. The order only needs to be close to the tables' key order for that (it decides
/// no result), so rows are sorted by a small key — table, type and parameter as one number,
/// the first bytes of the leading value — and only rows equal there compare in full.
pub(crate) fn insert_sorted(
    c: &Connection,
    versions: &[(i64, &str, &[IndexEntry])],
    presence: &mut Deltas,
) -> Result<(), StoreError> {
    versions.iter().for_each(|(_, ty, entries)| presence.entries(ty, entries, 1));
    let mut groups: FxHashMap<(u8, &str, &str), u32> = FxHashMap::default();
    for (_, ty, entries) in versions {
        for e in entries.iter() {
            groups.entry((rank(&e.value), ty, &e.param)).or_insert(0);
        }
    }
    let mut ordered: Vec<(u8, &str, &str)> = groups.keys().copied().collect();
    ordered.sort_unstable();
    for (n, k) in ordered.into_iter().enumerate() {
        groups.insert(k, n as u32);
    }
    let mut rows: Vec<SortRow<'_>> = Vec::with_capacity(versions.iter().map(|v| v.2.len()).sum());
    for (seq, ty, entries) in versions {
        for e in entries.iter() {
            let group = groups[&(rank(&e.value), *ty, e.param.as_str())];
            rows.push(SortRow { group, prefix: prefix(&e.value), seq: *seq, ty, entry: e });
        }
    }
    rows.sort_unstable_by(|a, b| {
        (a.group, a.prefix)
            .cmp(&(b.group, b.prefix))
            .then_with(|| value_order(&a.entry.value, &b.entry.value))
            .then(a.seq.cmp(&b.seq))
    });
    let mut inserter = RowInserter::new(c);
    rows.iter().try_for_each(|r| inserter.insert(r.seq, r.ty, r.entry))?;
    insert_token_texts(c, rows.iter().map(|r| (r.ty, r.entry)))?;
    versions.iter().try_for_each(|(seq, _, entries)| insert_record(c, *seq, entries))?;
    versions.iter().try_for_each(|(_, ty, entries)| count_multi_dates(c, ty, &mut date_rows(entries), 1))?;
    versions.iter().try_for_each(|(seq, _, entries)| insert_fulltext(c, *seq, entries))
}

struct SortRow<'a> {
    group: u32,
    prefix: u64,
    seq: i64,
    ty: &'a str,
    entry: &'a IndexEntry,
}

/// The tables in the order their rows are inserted.
fn rank(v: &IndexValue) -> u8 {
    match v {
        IndexValue::Token { .. } => 0,
        IndexValue::String { .. } => 1,
        IndexValue::Date { .. } => 2,
        IndexValue::Number { .. } => 3,
        IndexValue::Quantity { .. } => 4,
        IndexValue::Reference { .. } => 5,
        IndexValue::Uri { .. } => 6,
        IndexValue::Composite { .. } => 7,
        IndexValue::FullText { .. } => 8,
    }
}

/// The leading key column after `param`, as a number in the same order: the first eight
/// bytes of a text, a date's start or a number with its sign bit flipped.
fn prefix(v: &IndexValue) -> u64 {
    fn text(s: &str) -> u64 {
        let mut b = [0u8; 8];
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u64::from_be_bytes(b)
    }
    fn float(f: f64) -> u64 {
        let bits = f.to_bits();
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }
    match v {
        IndexValue::Token { code, .. } | IndexValue::Composite { code, .. } => text(code),
        IndexValue::String { norm, .. } => text(norm),
        IndexValue::Date { lo, .. } => (*lo as u64) ^ (1 << 63),
        IndexValue::Number { value } => float(*value),
        IndexValue::Quantity { code, .. } => text(code.as_deref().unwrap_or("")),
        IndexValue::Reference { target_id, .. } => text(target_id.as_deref().unwrap_or("")),
        IndexValue::Uri { value } => text(value),
        IndexValue::FullText { .. } => 0,
    }
}

/// The key order of two values of one table and parameter.
fn value_order(va: &IndexValue, vb: &IndexValue) -> std::cmp::Ordering {
    use IndexValue as I;
    match (va, vb) {
        (I::Token { system: sa, code: ca, .. }, I::Token { system: sb, code: cb, .. }) => ca.cmp(cb).then(sa.cmp(sb)),
        (I::String { norm: na, exact: ea }, I::String { norm: nb, exact: eb }) => na.cmp(nb).then(ea.cmp(eb)),
        (I::Date { lo: la, hi: ha }, I::Date { lo: lb, hi: hb }) => la.cmp(lb).then(ha.cmp(hb)),
        (I::Number { value: x }, I::Number { value: y }) => x.total_cmp(y),
        (I::Quantity { code: ca, value: xa, system: sa }, I::Quantity { code: cb, value: xb, system: sb }) => {
            ca.cmp(cb).then(xa.total_cmp(xb)).then(sa.cmp(sb))
        }
        (
            I::Reference { target_id: ia, target_type: ta, url: ua },
            I::Reference { target_id: ib, target_type: tb, url: ub },
        ) => ia.cmp(ib).then(ta.cmp(tb)).then(ua.cmp(ub)),
        (I::Uri { value: x }, I::Uri { value: y }) => x.cmp(y),
        (I::Composite { code: ca, system: sa, .. }, I::Composite { code: cb, system: sb, .. }) => {
            ca.cmp(cb).then(sa.cmp(sb))
        }
        _ => std::cmp::Ordering::Equal,
    }
}

/// Inserts index rows, holding each table's prepared statement while it is in use (a
/// statement-cache lookup per row was a tenth of a bulk load's writer time).
struct RowInserter<'c> {
    c: &'c Connection,
    statements: [Option<CachedStatement<'c>>; 9],
}

/// One insert per table, by tag (`sqlite_record::table`).
const INSERT_SQL: [&str; 9] = [
    "INSERT OR IGNORE INTO idx_token (seq, type, param, system, code, display) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT OR IGNORE INTO idx_string (seq, type, param, norm, exact) VALUES (?1, ?2, ?3, ?4, ?5)",
    "INSERT OR IGNORE INTO idx_date (seq, type, param, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)",
    "INSERT OR IGNORE INTO idx_date_wide (seq, type, param, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)",
    "INSERT OR IGNORE INTO idx_number (seq, type, param, value) VALUES (?1, ?2, ?3, ?4)",
    "INSERT OR IGNORE INTO idx_quantity (seq, type, param, system, code, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT OR IGNORE INTO idx_reference (seq, type, param, target_type, target_id, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT OR IGNORE INTO idx_uri (seq, type, param, value) VALUES (?1, ?2, ?3, ?4)",
    "INSERT INTO idx_composite (seq, type, param, c_code, c_system, code, system, display, norm, exact, value, \
     lo, hi, target_id, target_type, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
];

impl<'c> RowInserter<'c> {
    fn new(c: &'c Connection) -> Self {
        RowInserter { c, statements: Default::default() }
    }

    /// The statement of the table with this tag (`sqlite_record::TABLES`).
    fn statement(&mut self, table: u8) -> Result<&mut CachedStatement<'c>, StoreError> {
        let slot = &mut self.statements[table as usize];
        if slot.is_none() {
            *slot = Some(self.c.prepare_cached(INSERT_SQL[table as usize])?);
        }
        Ok(slot.as_mut().expect("just prepared"))
    }

    /// Absent optional parts are written as '' (key columns of WITHOUT ROWID tables cannot
    /// be NULL); queries test for '' accordingly.
    fn insert(&mut self, seq: i64, ty: &str, e: &IndexEntry) -> Result<(), StoreError> {
        let p = e.param.as_str();
        match &e.value {
            IndexValue::Token { system, code, display } => self.statement(table::TOKEN)?.execute(params![
                seq,
                ty,
                p,
                system.as_deref().unwrap_or(""),
                code,
                display
            ])?,
            IndexValue::String { norm, exact } => {
                self.statement(table::STRING)?.execute(params![seq, ty, p, norm, exact])?
            }
            IndexValue::Date { lo, hi } => {
                if hi.saturating_sub(*lo) > DAY_MS {
                    self.statement(table::DATE_WIDE)?.execute(params![seq, ty, p, lo, hi])?;
                }
                self.statement(table::DATE)?.execute(params![seq, ty, p, lo, hi])?
            }
            IndexValue::Number { value } => self.statement(table::NUMBER)?.execute(params![seq, ty, p, value])?,
            IndexValue::Quantity { system, code, value } => self.statement(table::QUANTITY)?.execute(params![
                seq,
                ty,
                p,
                system.as_deref().unwrap_or(""),
                code.as_deref().unwrap_or(""),
                value
            ])?,
            IndexValue::Reference { target_type, target_id, url } => {
                self.statement(table::REFERENCE)?.execute(params![
                    seq,
                    ty,
                    p,
                    target_type.as_deref().unwrap_or(""),
                    target_id.as_deref().unwrap_or(""),
                    url
                ])?
            }
            IndexValue::Uri { value } => self.statement(table::URI)?.execute(params![seq, ty, p, value])?,
            IndexValue::Composite { system, code, second } => {
                match composite_values(seq, ty, p, system, code, second) {
                    Some(values) => self.statement(table::COMPOSITE)?.execute(rusqlite::params_from_iter(values))?,
                    None => 0,
                }
            }
            IndexValue::FullText { .. } => 0, // written by `insert_fulltext`
        };
        Ok(())
    }
}

/// The values of a composite row: the second component goes into the columns of its own
/// kind.
fn composite_values(
    seq: i64,
    ty: &str,
    param: &str,
    system: &Option<String>,
    code: &str,
    second: &IndexValue,
) -> Option<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value as V;
    let text = |s: &str| V::Text(s.to_string());
    let opt = |s: &Option<String>| V::Text(s.clone().unwrap_or_default());
    // code, system, display, norm, exact, value, lo, hi, target_id, target_type, url
    let mut cols: [V; 11] = std::array::from_fn(|_| V::Null);
    match second {
        IndexValue::Token { system, code, display } => {
            cols[0] = text(code);
            cols[1] = opt(system);
            cols[2] = display.as_deref().map_or(V::Null, text);
        }
        IndexValue::String { norm, exact } => (cols[3], cols[4]) = (text(norm), text(exact)),
        IndexValue::Date { lo, hi } => (cols[6], cols[7]) = (V::Integer(*lo), V::Integer(*hi)),
        IndexValue::Number { value } => cols[5] = V::Real(*value),
        IndexValue::Quantity { system, code, value } => {
            (cols[0], cols[1], cols[5]) = (opt(code), opt(system), V::Real(*value));
        }
        IndexValue::Reference { target_type, target_id, url } => {
            (cols[8], cols[9], cols[10]) = (opt(target_id), opt(target_type), text(url));
        }
        IndexValue::Uri { value } => cols[5] = text(value),
        IndexValue::Composite { .. } | IndexValue::FullText { .. } => return None,
    }
    let mut values = vec![V::Integer(seq), text(ty), text(param), text(code), opt(system)];
    values.extend(cols);
    Some(values)
}
