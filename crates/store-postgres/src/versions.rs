//! The whole history in write order, for backups and checks: every version (older ones
//! and deletions included) by `seq`, and how many there are up to a `seq`. Used inside a
//! pinned view (`REPEATABLE READ`), so that all pages come from one snapshot.

use postgres::GenericClient;

use crate::db::Cached;
use crate::read::{fit, sized_row, PAGE_COLUMNS};
use crate::Pg;
use tsunagu_store::{ResourceVersion, StoreError};

pub(crate) fn versions_after(
    c: &mut Cached<'_, impl GenericClient>,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<ResourceVersion>, StoreError> {
    let sql = format!("SELECT {PAGE_COLUMNS} FROM resource r WHERE r.seq > $1 ORDER BY r.seq LIMIT $2");
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(&sql, &[&after_seq, &limit]).pg()?.iter().map(sized_row).collect();
    let cap = tsunagu_store::ByteCap { max: tsunagu_store::VERSIONS_PAGE_BYTES, first_always: true };
    Ok(fit(c, rows, Some(cap))?.0)
}

pub(crate) fn count_versions_upto(c: &mut Cached<'_, impl GenericClient>, seq: i64) -> Result<u64, StoreError> {
    let n: i64 = c.query_one("SELECT COUNT(*) FROM resource WHERE seq <= $1", &[&seq]).pg()?.get(0);
    Ok(n as u64)
}
