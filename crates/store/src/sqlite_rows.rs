//! `tsunagu_index_rows(record)`: the index rows of one version, read from its index record
//! (`sqlite_record`), as a table-valued function whose columns carry the names the index
//! tables give them (`code`, `system`, `lo`, `hi`, `value`, `target_id`, …; NULL where a
//! table has no such column) plus `tbl`, the table's tag in the record.
//!
//! So the SQL of a condition (`sqlite_query::test_sql`) can test one resource's own rows:
//! `EXISTS (SELECT 1 FROM tsunagu_index_rows(…) WHERE tbl = 0 AND param = ? AND code = ?)`
//! costs one record read, where `seq IN (SELECT seq FROM idx_token WHERE …)` first collects
//! every matching row of the table. The write-order walk of a page past its cost ceiling
//! (`sqlite_budget`) tests conditions this way, so it can stop after any resource.

use std::marker::PhantomData;
use std::os::raw::c_int;

use rusqlite::types::Value;
use rusqlite::vtab::{
    eponymous_only_module, Context, IndexConstraintOp, IndexInfo, VTab, VTabConfig, VTabConnection, VTabCursor, Values,
};
use rusqlite::{ffi, Connection};

use crate::sqlite_record::{table, view};

/// The columns, in order; `entries` (hidden) is the argument.
const COLUMNS: [&str; 15] = [
    "tbl",
    "param",
    "code",
    "system",
    "display",
    "norm",
    "exact",
    "lo",
    "hi",
    "value",
    "target_id",
    "target_type",
    "url",
    "c_code",
    "c_system",
];
const ENTRIES: c_int = COLUMNS.len() as c_int;

/// Where each value of a record row of a table goes among [`COLUMNS`].
fn placement(tag: u8) -> &'static [usize] {
    match tag {
        table::TOKEN => &[1, 2, 3],
        table::STRING => &[1, 5, 6],
        table::DATE | table::DATE_WIDE => &[1, 7, 8],
        table::NUMBER => &[1, 9],
        table::QUANTITY => &[1, 2, 9, 3],
        table::REFERENCE => &[1, 10, 11, 12],
        table::URI => &[1, 9],
        table::COMPOSITE => &[1, 13, 14, 9],
        _ => &[],
    }
}

pub(crate) fn register(c: &Connection) -> rusqlite::Result<()> {
    c.create_module("tsunagu_index_rows", eponymous_only_module::<RowsTab>(), None)
}

#[repr(C)]
struct RowsTab {
    base: ffi::sqlite3_vtab,
}

unsafe impl<'vtab> VTab<'vtab> for RowsTab {
    type Aux = ();
    type Cursor = RowsCursor<'vtab>;

    fn connect(db: &mut VTabConnection, _aux: Option<&()>, _args: &[&[u8]]) -> rusqlite::Result<(String, RowsTab)> {
        db.config(VTabConfig::Innocuous)?;
        let schema = format!("CREATE TABLE x({}, entries HIDDEN)", COLUMNS.join(", "));
        Ok((schema, RowsTab { base: ffi::sqlite3_vtab::default() }))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<()> {
        let mut arg = None;
        for (i, c) in info.constraints().enumerate() {
            if c.column() == ENTRIES && c.is_usable() && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
                arg = Some(i);
            }
        }
        match arg {
            Some(i) => {
                let mut usage = info.constraint_usage(i);
                usage.set_argv_index(1);
                usage.set_omit(true);
                info.set_idx_num(1);
                info.set_estimated_cost(10.0);
                info.set_estimated_rows(50);
            }
            None => {
                // Without a record there is nothing to list.
                info.set_idx_num(0);
                info.set_estimated_cost(1e12);
            }
        }
        Ok(())
    }

    fn open(&'vtab mut self) -> rusqlite::Result<RowsCursor<'vtab>> {
        Ok(RowsCursor { base: ffi::sqlite3_vtab_cursor::default(), rows: Vec::new(), at: 0, phantom: PhantomData })
    }
}

#[repr(C)]
struct RowsCursor<'vtab> {
    base: ffi::sqlite3_vtab_cursor,
    /// The record's rows, each as its [`COLUMNS`] values.
    rows: Vec<[Value; COLUMNS.len()]>,
    at: usize,
    phantom: PhantomData<&'vtab RowsTab>,
}

unsafe impl VTabCursor for RowsCursor<'_> {
    fn filter(&mut self, idx_num: c_int, _idx_str: Option<&str>, args: &Values<'_>) -> rusqlite::Result<()> {
        self.rows.clear();
        self.at = 0;
        if idx_num != 1 {
            return Ok(());
        }
        let record: Option<Vec<u8>> = args.get(0)?;
        let Some(record) = record else { return Ok(()) };
        let decoded = crate::sqlite_record::rows(&record)
            .map_err(|e| rusqlite::Error::ModuleError(format!("tsunagu_index_rows: {e}")))?;
        for (tag, values) in decoded {
            let mut row: [Value; COLUMNS.len()] = std::array::from_fn(|_| Value::Null);
            row[0] = Value::Integer(tag as i64);
            for (v, col) in values.iter().zip(placement(tag)) {
                row[*col] = Value::from(view(v));
            }
            self.rows.push(row);
        }
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.at += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.at >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        match self.rows.get(self.at).and_then(|r| r.get(i as usize)) {
            Some(v) => ctx.set_result(v),
            None => ctx.set_result(&Value::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.at as i64)
    }
}
