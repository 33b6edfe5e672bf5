//! Sorted pages driven by the sort parameter's own index.
//!
//! The general plan for `_sort` collects every match, computes each one's sort value and
//! sorts them all: fine for a few hundred matches, slow for `Observation?code=…&_sort=-date`
//! over tens of thousands. When the filter matches many resources, walking the index of
//! the sort parameter in key order and keeping the first rows that pass the filter finds
//! the page after reading about `page × (rows / matches)` index entries instead.
//!
//! The walk yields each resource at its smallest value (ascending) or largest value
//! (descending) first, which is exactly the general plan's `MIN`/`MAX` sort value, and
//! breaks ties by `seq` in the sort direction like the general plan. Resources without a
//! value sort last; when the walk runs out before the page is full, the caller falls back
//! to the general plan, which places them.

use rusqlite::types::Value as V;
use rusqlite::Connection;
use rustc_hash::FxHashSet;

use crate::query::{IndexKind, SearchQuery, SortParam};
use crate::StoreError;

/// Below this many matches the general plan is cheap enough.
const DRIVE_MIN_MATCHES: i64 = 2000;
/// The longest walk before giving up on this plan.
const WALK_MAX_ROWS: usize = 50_000;

/// The index column a sort walks; `None` where the column does not lead the index key.
fn sort_column(kind: IndexKind) -> Option<&'static str> {
    match kind {
        IndexKind::Date => Some("lo"),
        IndexKind::Token => Some("code"),
        IndexKind::String => Some("norm"),
        IndexKind::Number | IndexKind::Uri => Some("value"),
        IndexKind::Quantity | IndexKind::Reference | IndexKind::Composite => None,
    }
}

/// The `seq`s of the requested page (plus one, to tell whether more follow), or `None`
/// when this plan does not apply or cannot fill the page.
pub(crate) fn sorted_page(
    c: &Connection,
    q: &SearchQuery,
    filter: &str,
    values: &[V],
) -> Result<Option<Vec<i64>>, StoreError> {
    let [key] = q.sort.as_slice() else { return Ok(None) };
    let SortParam::Index { param, kind } = &key.param else { return Ok(None) };
    let (Some(col), Some(ty)) = (sort_column(*kind), q.resource_type.as_ref()) else { return Ok(None) };
    if crate::sqlite_has::fewest_matches(c, q, DRIVE_MIN_MATCHES)? < DRIVE_MIN_MATCHES {
        return Ok(None);
    }
    let dir = if key.descending { "DESC" } else { "ASC" };
    let table = crate::sqlite_query::table(*kind);
    let sql = format!(
        "SELECT d.seq FROM {table} d CROSS JOIN resource r ON r.seq = d.seq WHERE d.type = ? AND d.param = ? AND {filter} \
         ORDER BY d.{col} {dir}, d.seq {dir}"
    );
    let mut all = vec![V::Text(ty.clone()), V::Text(param.clone())];
    all.extend(values.iter().cloned());
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(all))?;
    let want = q.offset + q.count + 1;
    let mut seen = FxHashSet::default();
    let mut page = Vec::with_capacity(q.count + 1);
    let mut walked = 0;
    while let Some(row) = rows.next()? {
        // Conditions the estimate could not see (chains, `_has`, OR lists) may still make
        // the matches rare: past this many index rows the general plan is cheaper.
        walked += 1;
        if walked > WALK_MAX_ROWS {
            return Ok(None);
        }
        let seq: i64 = row.get(0)?;
        if !seen.insert(seq) {
            continue;
        }
        if seen.len() > q.offset {
            page.push(seq);
        }
        if seen.len() == want {
            return Ok(Some(page));
        }
    }
    Ok(None)
}
