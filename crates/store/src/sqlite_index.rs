//! Writing index rows for a new current version.

use crate::query::{IndexEntry, IndexKind, IndexValue};
use crate::StoreError;
use rusqlite::{params, Connection};

pub(crate) const ALL_KINDS: [IndexKind; 8] = [
    IndexKind::Token,
    IndexKind::String,
    IndexKind::Date,
    IndexKind::Number,
    IndexKind::Quantity,
    IndexKind::Reference,
    IndexKind::Uri,
    IndexKind::Composite,
];

/// Date values up to this wide live only in `idx_date`; wider ones also in `idx_date_wide`.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Removes every index row of the version stored at `seq`.
pub(crate) fn delete(c: &Connection, seq: i64) -> Result<(), StoreError> {
    for kind in ALL_KINDS {
        let sql = format!("DELETE FROM {} WHERE seq = ?1", crate::sqlite_query::table(kind));
        c.prepare_cached(&sql)?.execute([seq])?;
    }
    c.prepare_cached("DELETE FROM idx_date_wide WHERE seq = ?1")?.execute([seq])?;
    c.prepare_cached("DELETE FROM idx_fulltext WHERE rowid = ?1")?.execute([seq])?;
    Ok(())
}

/// Absent optional parts are written as '' (key columns of WITHOUT ROWID tables cannot be
/// NULL); queries test for '' accordingly.
pub(crate) fn insert(c: &Connection, seq: i64, ty: &str, entries: &[IndexEntry]) -> Result<(), StoreError> {
    entries.iter().try_for_each(|e| insert_one(c, seq, ty, e))?;
    insert_fulltext(c, seq, entries)
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
/// bulk load.
pub(crate) fn insert_sorted(c: &Connection, versions: &[(i64, &str, &[IndexEntry])]) -> Result<(), StoreError> {
    let mut rows: Vec<(i64, &str, &IndexEntry)> =
        versions.iter().flat_map(|(seq, ty, entries)| entries.iter().map(move |e| (*seq, *ty, e))).collect();
    rows.sort_by(row_order);
    rows.iter().try_for_each(|(seq, ty, e)| insert_one(c, *seq, ty, e))?;
    versions.iter().try_for_each(|(seq, _, entries)| insert_fulltext(c, *seq, entries))
}

/// The primary-key order of the index tables (see the schema), table first.
fn row_order(a: &(i64, &str, &IndexEntry), b: &(i64, &str, &IndexEntry)) -> std::cmp::Ordering {
    use IndexValue as I;
    fn rank(v: &IndexValue) -> u8 {
        match v {
            I::Token { .. } => 0,
            I::String { .. } => 1,
            I::Date { .. } => 2,
            I::Number { .. } => 3,
            I::Quantity { .. } => 4,
            I::Reference { .. } => 5,
            I::Uri { .. } => 6,
            I::Composite { .. } => 7,
            I::FullText { .. } => 8,
        }
    }
    let (va, vb) = (&a.2.value, &b.2.value);
    let value = match (va, vb) {
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
        _ => std::cmp::Ordering::Equal,
    };
    rank(va).cmp(&rank(vb)).then(a.1.cmp(b.1)).then(a.2.param.cmp(&b.2.param)).then(value).then(a.0.cmp(&b.0))
}

fn insert_one(c: &Connection, seq: i64, ty: &str, e: &IndexEntry) -> Result<(), StoreError> {
    let p = e.param.as_str();
    match &e.value {
        IndexValue::Token { system, code, display } => c
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_token (seq, type, param, system, code, display) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![seq, ty, p, system.as_deref().unwrap_or(""), code, display])?,
        IndexValue::String { norm, exact } => c
            .prepare_cached("INSERT OR IGNORE INTO idx_string (seq, type, param, norm, exact) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![seq, ty, p, norm, exact])?,
        IndexValue::Date { lo, hi } => {
            if hi.saturating_sub(*lo) > DAY_MS {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO idx_date_wide (seq, type, param, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![seq, ty, p, lo, hi])?;
            }
            c.prepare_cached("INSERT OR IGNORE INTO idx_date (seq, type, param, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![seq, ty, p, lo, hi])?
        }
        IndexValue::Number { value } => c
            .prepare_cached("INSERT OR IGNORE INTO idx_number (seq, type, param, value) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![seq, ty, p, value])?,
        IndexValue::Quantity { system, code, value } => c
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_quantity (seq, type, param, system, code, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![seq, ty, p, system.as_deref().unwrap_or(""), code.as_deref().unwrap_or(""), value])?,
        IndexValue::Reference { target_type, target_id, url } => c
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_reference (seq, type, param, target_type, target_id, url) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                seq,
                ty,
                p,
                target_type.as_deref().unwrap_or(""),
                target_id.as_deref().unwrap_or(""),
                url
            ])?,
        IndexValue::Uri { value } => c
            .prepare_cached("INSERT OR IGNORE INTO idx_uri (seq, type, param, value) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![seq, ty, p, value])?,
        IndexValue::Composite { system, code, second } => insert_composite(c, seq, ty, p, system, code, second)?,
        IndexValue::FullText { .. } => 0, // written by `insert_fulltext`
    };
    Ok(())
}

/// A composite row: the second component goes into the columns of its own kind.
fn insert_composite(
    c: &Connection,
    seq: i64,
    ty: &str,
    param: &str,
    system: &Option<String>,
    code: &str,
    second: &IndexValue,
) -> Result<usize, StoreError> {
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
        IndexValue::Composite { .. } | IndexValue::FullText { .. } => return Ok(0),
    }
    let mut values = vec![V::Integer(seq), text(ty), text(param), text(code), opt(system)];
    values.extend(cols);
    Ok(c.prepare_cached(
        "INSERT INTO idx_composite (seq, type, param, c_code, c_system, code, system, display, norm, exact, value, \
         lo, hi, target_id, target_type, url) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(rusqlite::params_from_iter(values))?)
}
