//! Placing the resources a sort walk meets into the page, group by group, and walking a
//! large group by the next sort key.
//!
//! With several sort keys, the resources sharing one value of the walked key form a group
//! ordered by the later keys. A small group is collected and ordered by the general plan's
//! own `ORDER BY` terms for its members only (`order_group`). A group that reaches into
//! the page and grows past the walk's threshold (`Observation?_sort=status,date`: every
//! Observation is `final`) is instead walked by the next key's own index (for `_lastUpdated`
//! and `_id`, the resource table's), keeping the rows whose earlier keys' sort values are
//! the group's (`subwalk`); that walk is itself a page of the same kind one key further. When it cannot fill the page (the group's resources
//! without a value of the next key come after the others, and the walk does not meet
//! them), the group is collected as before.

use rusqlite::types::Value as V;
use rusqlite::Connection;
use rustc_hash::FxHashSet;

use crate::query::{IndexKind, SearchQuery, SortKey, SortParam};
use crate::StoreError;

/// The deepest sort key whose groups are walked by the next key. Each walk that gives up has
/// read up to `WALK_MAX_ROWS` rows, and a walk one key further can give up inside it, so
/// the work of nested walks grows with their depth; past this key a group is collected.
const MAX_SUBWALK_LEVEL: usize = 2;

/// The join and filter every statement of one sort walk shares, on index rows aliased `d`.
pub(crate) struct WalkFilter {
    /// Empty, or the join of `resource r` the filter reads.
    pub join: String,
    pub filter: String,
    pub values: Vec<V>,
}

/// A page filled from resources met in the order of one sort key, group by group.
pub(crate) struct Page {
    /// The page's `seq`s so far (positions `offset..`).
    pub seqs: Vec<i64>,
    /// Resources in the groups already placed (before or in the page).
    placed: usize,
    offset: usize,
    /// The position after the last one wanted (`offset + count + 1` at the top).
    end: usize,
    /// The resources sharing the current value, in walk order.
    group: Vec<i64>,
    value: Option<V>,
    /// The sort key whose values the walk meets in order.
    level: usize,
    /// The earlier keys' values every resource of this page shares (a group's walk).
    prefix: Vec<(usize, V)>,
    /// Group size from which a group reaching into the page is walked by the next key.
    subwalk_from: usize,
    /// Whether the current group's walk was tried.
    tried: bool,
    /// With one sort key: how to tell that a value's rows, met in index order, are not in
    /// `seq` order (`split_check`); such a value's resources are collected and ordered.
    split: Option<(String, Vec<V>)>,
    /// Whether the current value's resources are collected (`split`).
    collect: bool,
}

impl Page {
    /// The page of `q` over resources met in first-key order; a group reaching into it is
    /// walked by the next key once it has `subwalk_from` resources.
    pub(crate) fn new(q: &SearchQuery, subwalk_from: usize) -> Page {
        Page::at(0, Vec::new(), q.offset, q.offset + q.count + 1, subwalk_from)
    }

    fn at(level: usize, prefix: Vec<(usize, V)>, offset: usize, end: usize, subwalk_from: usize) -> Page {
        Page {
            seqs: Vec::new(),
            placed: 0,
            offset,
            end,
            group: Vec::new(),
            value: None,
            level,
            prefix,
            subwalk_from: subwalk_from.max(1),
            tried: false,
            split: None,
            collect: false,
        }
    }

    /// A page of one sort key over `table` walked in its primary key's order (`column`,
    /// then `split`, then `seq`), where a value's rows are in `seq` order only while they
    /// share one `split` (a code in one system, a normalized string in one spelling): each
    /// value met is checked, and when it has several its resources are collected and
    /// ordered, instead of sorting every value's rows by `seq` before the walk's first row.
    pub(crate) fn split_by(mut self, table: &str, column: &str, split: &str, ty: &str, param: &str) -> Page {
        let one = |agg: &str| {
            format!("(SELECT {agg}({split}) FROM {table} WHERE type = ?1 AND param = ?2 AND {column} = ?3)")
        };
        let sql = format!("SELECT {} IS NOT {}", one("MIN"), one("MAX"));
        self.split = Some((sql, vec![V::Text(ty.into()), V::Text(param.into())]));
        self
    }

    fn later_keys(&self, q: &SearchQuery) -> bool {
        q.sort.len() > self.level + 1
    }

    /// Adds the resource `seq` met first at value `value`; true once the page is full.
    pub(crate) fn add(
        &mut self,
        c: &Connection,
        q: &SearchQuery,
        f: &WalkFilter,
        value: V,
        seq: i64,
    ) -> Result<bool, StoreError> {
        if !self.later_keys(q) {
            if self.split.is_some() && self.value.as_ref() != Some(&value) {
                if self.place_group(c, q)? {
                    return Ok(true);
                }
                let (sql, key) = self.split.as_ref().expect("checked above");
                let params = key.iter().chain([&value]);
                self.collect = c.prepare_cached(sql)?.query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
                self.value = Some(value);
            }
            if self.collect {
                self.group.push(seq);
                return Ok(false);
            }
            self.group.push(seq);
            return self.place_group(c, q);
        }
        if self.value.as_ref() != Some(&value) {
            if self.place_group(c, q)? {
                return Ok(true);
            }
            (self.value, self.tried) = (Some(value), false);
        }
        self.group.push(seq);
        if !self.tried
            && self.level < MAX_SUBWALK_LEVEL
            && self.group.len() >= self.subwalk_from
            && self.placed + self.group.len() > self.offset
        {
            self.tried = true;
            if let Some(seqs) = self.subwalk(c, q, f)? {
                self.seqs.extend(seqs);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Places the last group (the walk ended); true when the page is full.
    pub(crate) fn finish(&mut self, c: &Connection, q: &SearchQuery) -> Result<bool, StoreError> {
        self.place_group(c, q)
    }

    /// Places the current group after the resources before it: the part of it inside the
    /// page in the general plan's order. True once the page is full.
    fn place_group(&mut self, c: &Connection, q: &SearchQuery) -> Result<bool, StoreError> {
        let (from, to) = (self.placed, self.placed + self.group.len());
        let (lo, hi) = (from.max(self.offset), to.min(self.end));
        if lo < hi {
            if self.group.len() == 1 {
                self.seqs.push(self.group[0]);
            } else {
                self.seqs.extend(order_group(c, q, self.level + 1, &self.group, lo - from, hi - lo)?);
            }
        }
        self.placed = to;
        self.group.clear();
        Ok(self.placed >= self.end)
    }

    /// The page's part of the current group, found by walking the next key's index for
    /// the group's members; `None` when that walk cannot fill it.
    fn subwalk(&self, c: &Connection, q: &SearchQuery, f: &WalkFilter) -> Result<Option<Vec<i64>>, StoreError> {
        let next = self.level + 1;
        let key = &q.sort[next];
        let Some(ty) = q.resource_type.as_ref() else { return Ok(None) };
        let Some(KeyRows { from, column: col, keyed, mut values, name: param }) = key_rows(key, ty) else {
            return Ok(None);
        };
        let mut prefix = self.prefix.clone();
        prefix.push((self.level, self.value.clone().unwrap_or(V::Null)));
        // The walk's filter, and each earlier key's sort value equal to the group's.
        let (mut rest, mut rest_values) = (f.filter.clone(), f.values.clone());
        for (level, value) in &prefix {
            let k = &q.sort[*level];
            let SortParam::Index { param, kind } = &k.param else { return Ok(None) };
            let Some(col) = crate::sqlite_sort::sort_column(*kind) else { return Ok(None) };
            rest_values.push(V::Text(param.clone()));
            rest_values.push(value.clone());
            let table = crate::sqlite_query::table(*kind);
            rest.push_str(&format!(" AND {} = ?", crate::sqlite_record::sort_value_sql(table, col, k.descending, "d")));
        }
        let dir = if key.descending { "DESC" } else { "ASC" };
        let tie = if q.sort[0].descending { "DESC" } else { "ASC" };
        // Ties in the next key are ordered by the keys after it when there are any (the
        // sub-page's groups), by `seq` otherwise.
        let last = q.sort.len() == next + 1;
        let (sql, values) = match &key.param {
            SortParam::Index { param, kind: IndexKind::Quantity } => {
                // No unit (no resource has a value): no walk, the group is ordered by its
                // members' sort values instead.
                let units = crate::sqlite_sort::quantity_units(c, ty, param)?;
                let Some(units) = units.filter(|u| !u.is_empty()) else { return Ok(None) };
                let tie = last.then_some(tie);
                crate::sqlite_sort::quantity_walk(
                    &crate::sqlite_sort::Arms::Units { param, units: &units },
                    ty,
                    (None, None),
                    &f.join,
                    &rest,
                    &rest_values,
                    dir,
                    tie,
                )
            }
            _ => {
                let order = if last { format!("d.{col} {dir}, d.seq {tie}") } else { format!("d.{col} {dir}") };
                let sql =
                    format!("SELECT d.{col}, d.seq FROM {from}{} WHERE {keyed} AND {rest} ORDER BY {order}", f.join);
                values.extend(rest_values);
                (sql, values)
            }
        };
        let offset = self.offset.saturating_sub(self.placed);
        let mut page = Page::at(next, prefix, offset, self.end - self.placed, self.subwalk_from);
        let (mut seen, mut walked) = (FxHashSet::default(), 0);
        let level = self.level + 1;
        match page.walk(c, q, f, &sql, values, &mut seen, &mut walked)? {
            Some(true) => {
                crate::trace::plan(|| format!("group of key {level} walked by {param}, {walked} rows read"));
                Ok(Some(page.seqs))
            }
            Some(false) if page.finish(c, q)? => {
                crate::trace::plan(|| format!("group of key {level} walked by {param} to its end"));
                Ok(Some(page.seqs))
            }
            Some(false) => Ok(None),
            None => {
                crate::trace::plan(|| format!("group walk over {param} gave up"));
                Ok(None)
            }
        }
    }

    /// Feeds the page the rows (value, `seq`) `sql` selects, each resource at its first row
    /// (`seen` across a walk's statements): `Some(true)` once the page is full,
    /// `Some(false)` when the rows ran out, `None` past `WALK_MAX_ROWS` rows (`walked`
    /// counts them across statements; conditions the estimate could not see, chains, `_has`,
    /// OR lists, may make matches rare, and then the general plan is cheaper).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn walk(
        &mut self,
        c: &Connection,
        q: &SearchQuery,
        f: &WalkFilter,
        sql: &str,
        values: Vec<V>,
        seen: &mut FxHashSet<i64>,
        walked: &mut usize,
    ) -> Result<Option<bool>, StoreError> {
        crate::trace::statement(sql, &values);
        let mut stmt = c.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            *walked += 1;
            crate::trace::examined(1);
            if *walked > crate::sqlite_sort::WALK_MAX_ROWS {
                return Ok(None);
            }
            let seq: i64 = row.get(1)?;
            if seen.insert(seq) && self.add(c, q, f, row.get(0)?, seq)? {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }
}

/// The rows a walk in one sort key's order reads, aliased `d`.
pub(crate) struct KeyRows {
    /// `FROM` part: the key's index table, or the resource table through its index.
    pub from: String,
    pub column: &'static str,
    /// The rows' key condition, and its values.
    pub keyed: &'static str,
    pub values: Vec<V>,
    /// The key's name, for `explain`.
    pub name: String,
}

/// The rows to walk in `key`'s order, for resources of type `ty`: an index parameter's
/// table, or for `_lastUpdated` and `_id` the resource table through its index of them
/// (left to itself SQLite reads the type's resources and sorts them all). `None` for
/// parameters whose index has no sort column.
pub(crate) fn key_rows(key: &SortKey, ty: &str) -> Option<KeyRows> {
    let ty = V::Text(ty.to_string());
    Some(match &key.param {
        SortParam::Index { param, kind } => KeyRows {
            from: format!("{} d", crate::sqlite_query::table(*kind)),
            column: crate::sqlite_sort::sort_column(*kind)?,
            keyed: "d.type = ? AND d.param = ?",
            values: vec![ty, V::Text(param.clone())],
            name: param.clone(),
        },
        SortParam::LastUpdated => KeyRows {
            from: "resource d INDEXED BY resource_type_updated".into(),
            column: "last_updated",
            keyed: "d.type = ? AND d.current = 1 AND d.deleted = 0",
            values: vec![ty],
            name: "_lastUpdated".into(),
        },
        SortParam::Id => KeyRows {
            from: "resource d INDEXED BY resource_version".into(),
            column: "id",
            keyed: "d.type = ? AND d.current = 1 AND d.deleted = 0",
            values: vec![ty],
            name: "_id".into(),
        },
    })
}

/// `take` resources of `group` (equal in the keys before `from`) from position `skip`, in
/// the general plan's order of the keys from `from` on.
fn order_group(
    c: &Connection,
    q: &SearchQuery,
    from: usize,
    group: &[i64],
    skip: usize,
    take: usize,
) -> Result<Vec<i64>, StoreError> {
    let list = format!("[{}]", group.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let mut values = vec![V::Text(list)];
    let order = crate::sqlite_query::order_by_from(&q.sort, from, "r", &mut values);
    values.extend([V::Integer(take as i64), V::Integer(skip as i64)]);
    // Sort values of index keys come from the index record: the resource row is read only
    // for `_id` and `_lastUpdated`.
    let rows = if q.sort[from..].iter().all(|k| matches!(k.param, SortParam::Index { .. })) {
        "(SELECT value AS seq FROM json_each(?)) r"
    } else {
        "resource r WHERE r.seq IN (SELECT value FROM json_each(?))"
    };
    let sql = format!("SELECT r.seq FROM {rows} ORDER BY {order} LIMIT ? OFFSET ?");
    let mut stmt = c.prepare_cached(&sql)?;
    let seqs = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?;
    Ok(seqs.collect::<Result<_, _>>()?)
}
