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
    for e in entries {
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
    }
    Ok(())
}
