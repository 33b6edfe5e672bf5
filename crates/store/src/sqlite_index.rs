//! Writing index rows for a new current version.

use crate::query::{IndexEntry, IndexKind, IndexValue};
use crate::StoreError;
use rusqlite::{params, Connection};

pub(crate) const ALL_KINDS: [IndexKind; 7] = [
    IndexKind::Token,
    IndexKind::String,
    IndexKind::Date,
    IndexKind::Number,
    IndexKind::Quantity,
    IndexKind::Reference,
    IndexKind::Uri,
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
    Ok(())
}

/// Absent optional parts are written as '' (key columns of WITHOUT ROWID tables cannot be
/// NULL); queries test for '' accordingly.
pub(crate) fn insert(c: &Connection, seq: i64, ty: &str, entries: &[IndexEntry]) -> Result<(), StoreError> {
    entries.iter().try_for_each(|e| insert_one(c, seq, ty, e))
}

/// Index rows of many new versions, inserted table by table in key order. Each B-tree page
/// is then visited once per batch rather than once per row, which is most of the cost of a
/// bulk load.
pub(crate) fn insert_sorted(c: &Connection, versions: &[(i64, &str, &[IndexEntry])]) -> Result<(), StoreError> {
    let mut rows: Vec<(i64, &str, &IndexEntry)> =
        versions.iter().flat_map(|(seq, ty, entries)| entries.iter().map(move |e| (*seq, *ty, e))).collect();
    rows.sort_by(|a, b| row_order(a, b));
    rows.iter().try_for_each(|(seq, ty, e)| insert_one(c, *seq, ty, e))
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
    };
    Ok(())
}
