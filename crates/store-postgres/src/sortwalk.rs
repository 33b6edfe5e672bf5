//! `_sort` on one indexed parameter with no other condition (`Observation?_sort=-date`):
//! the general plan computes every resource's sort value before it can order them
//! (about 2.5 µs per resource: 100 ms for 40,000), so instead the parameter's index is
//! walked in the sort order, in batches, until the page is full. The first row of each
//! resource met ascending holds its smallest value, descending its largest: the values the
//! general plan sorts by. Index rows exist only for current, live versions of their type,
//! so with no condition every resource met is a match; resources without a value follow
//! in write order, as `NULLS LAST` puts them.
//!
//! Only kinds whose index leads with the sort column qualify (token code, date start,
//! number, URI); other sorts and filtered ones take the general plan. Token codes and URIs
//! are indexed by their keys, their first `KEY_CHARS` characters: a batch is read from the
//! keys alone (an index-only scan) when they all are shorter than a key can be, so whole
//! values; else it orders by the key and then the whole value, which is the order of the
//! whole value (a key is smaller than another only when its value is), the index giving
//! the first and a sort within equal keys the rest.

use std::collections::HashSet;

use postgres::GenericClient;
use tsunagu_store::{IndexKind, SearchQuery, SortParam, StoreError};

use crate::db::Cached;
use crate::query::KEY_CHARS;
use crate::value::{number, refs, V};
use crate::Pg;

/// The page's `seq`s (at most `count + 1`, in order), or `None` when the query does not
/// qualify.
pub(crate) fn page(c: &mut Cached<'_, impl GenericClient>, q: &SearchQuery) -> Result<Option<Vec<i64>>, StoreError> {
    let (Some(ty), [key]) = (q.resource_type.as_deref(), q.sort.as_slice()) else { return Ok(None) };
    let SortParam::Index { param, kind } = &key.param else { return Ok(None) };
    if !q.clauses.is_empty() {
        return Ok(None);
    }
    let (table, column, keyed) = match kind {
        IndexKind::Token => ("idx_token", "code", true),
        IndexKind::Date => ("idx_date", "lo", false),
        IndexKind::Number => ("idx_number", "value", false),
        IndexKind::Uri => ("idx_uri", "value", true),
        _ => return Ok(None),
    };
    tsunagu_store::trace::plan(|| format!("sort walk: {table} in the order of {column}"));
    let bounded = format!("{column}_key");
    let (dir, cmp) = if key.descending { ("DESC", "<") } else { ("ASC", ">") };
    let need = q.offset + q.count + 1;
    let mut found: Vec<i64> = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut after: Option<(V, i64)> = None;
    let mut batch = (need * 2).max(100);
    let mut exhausted = false;
    while found.len() < need {
        // Keyed kinds first try the keys alone, in an index-only scan (after a value shorter
        // than a key, so that the keys resume where the values do): a batch of keys all
        // shorter than a key can be are whole values, in their order. Otherwise (a key
        // perhaps cut short among them) the batch is read again ordered by whole values.
        let short_after = after.as_ref().is_none_or(|(v, _)| matches!(v, V::Text(t) if t.len() < KEY_CHARS));
        let modes: &[bool] = if keyed && short_after { &[true, false] } else { &[false] };
        let mut rows = Vec::new();
        for &keys_only in modes {
            let col = if keys_only { bounded.as_str() } else { column };
            let mut values = vec![V::Text(ty.to_string()), V::Text(param.clone())];
            let mut sql = format!("SELECT seq, {col} FROM {table} WHERE type = ? AND param = ?");
            if let Some((v, s)) = &after {
                if keyed && !keys_only {
                    // Where the index resumes (the key of the last value, included), then exactly.
                    sql.push_str(&format!(" AND {bounded} {cmp}= left(?, {KEY_CHARS})"));
                    values.push(v.clone());
                }
                sql.push_str(&format!(" AND ({col}, seq) {cmp} (?, ?)"));
                values.push(v.clone());
                values.push(V::Int(*s));
            }
            if keyed && !keys_only {
                sql.push_str(&format!(" ORDER BY {bounded} {dir}, {column} {dir}, seq {dir} LIMIT ?"));
            } else {
                sql.push_str(&format!(" ORDER BY {col} {dir}, seq {dir} LIMIT ?"));
            }
            values.push(V::Int(batch as i64));
            let sql = number(&sql, &values);
            tsunagu_store::trace::statement(&sql, &values);
            rows = c.query(&sql, &refs(&values)).pg()?;
            if !keys_only || rows.iter().all(|r| r.get::<_, &str>(1).len() < KEY_CHARS) {
                break;
            }
        }
        for r in &rows {
            let seq: i64 = r.get(0);
            if seen.insert(seq) {
                found.push(seq);
            }
        }
        let Some(last) = rows.last() else {
            exhausted = true;
            break;
        };
        let v = match kind {
            IndexKind::Date => V::Int(last.get(1)),
            IndexKind::Number => V::Real(last.get(1)),
            _ => V::Text(last.get(1)),
        };
        after = Some((v, last.get(0)));
        if rows.len() < batch {
            exhausted = true;
            break;
        }
        batch *= 4;
    }
    let mut page: Vec<i64> = found.into_iter().skip(q.offset).take(q.count + 1).collect();
    if exhausted && page.len() < q.count + 1 {
        // Then the resources without a value, in write order (in the key's direction).
        let valued = seen.len();
        let skip = q.offset.saturating_sub(valued);
        let take = q.count + 1 - page.len();
        let values = vec![V::Text(ty.to_string()), V::Text(param.clone()), V::Int(take as i64), V::Int(skip as i64)];
        let sql = format!(
            "SELECT r.seq FROM resource r WHERE r.current AND NOT r.deleted AND r.type = ? AND NOT EXISTS \
             (SELECT 1 FROM {table} x WHERE x.seq = r.seq AND x.param = ?) ORDER BY r.seq {dir} LIMIT ? OFFSET ?"
        );
        let sql = number(&sql, &values);
        tsunagu_store::trace::statement(&sql, &values);
        let rows = c.query(&sql, &refs(&values)).pg()?;
        page.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    Ok(Some(page))
}
