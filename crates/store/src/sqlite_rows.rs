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

/// `idx_num` flags: which arguments `filter` receives, in this order.
const HAS_RECORD: c_int = 1;
const HAS_TBL: c_int = 2;
const HAS_PARAM: c_int = 4;

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
        // The record argument, and `tbl = …` and `param = …` tested while decoding, so that
        // a probe materialises only the rows it asks about (a record holds 30 to 50).
        let (mut arg, mut tbl, mut param) = (None, None, None);
        for (i, c) in info.constraints().enumerate() {
            if !c.is_usable() || c.operator() != IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
                continue;
            }
            match c.column() {
                ENTRIES => arg = Some(i),
                0 => tbl = Some(i),
                1 => param = Some(i),
                _ => {}
            }
        }
        let Some(arg) = arg else {
            // Without a record there is nothing to list.
            info.set_idx_num(0);
            info.set_estimated_cost(1e12);
            return Ok(());
        };
        let (mut idx_num, mut argv) = (HAS_RECORD, 1);
        for (constraint, flag) in
            [(arg, 0), (tbl.unwrap_or(usize::MAX), HAS_TBL), (param.unwrap_or(usize::MAX), HAS_PARAM)]
        {
            if constraint == usize::MAX {
                continue;
            }
            let mut usage = info.constraint_usage(constraint);
            usage.set_argv_index(argv);
            usage.set_omit(true);
            argv += 1;
            idx_num |= flag;
        }
        info.set_idx_num(idx_num);
        info.set_estimated_cost(10.0 / argv as f64);
        info.set_estimated_rows(if idx_num & HAS_PARAM != 0 { 2 } else { 50 });
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
        if idx_num & HAS_RECORD == 0 {
            return Ok(());
        }
        let record: Option<Vec<u8>> = args.get(0)?;
        let Some(record) = record else { return Ok(()) };
        let mut next = 1;
        let mut argument = |flag: c_int| -> rusqlite::Result<Option<Value>> {
            if idx_num & flag == 0 {
                return Ok(None);
            }
            next += 1;
            args.get(next - 1).map(Some)
        };
        // An equality SQL would not find true (NULL, another type) keeps no row.
        let tbl = match argument(HAS_TBL)? {
            None => None,
            Some(Value::Integer(t)) => Some(t),
            Some(Value::Real(r)) if r.fract() == 0.0 && (0.0..256.0).contains(&r) => Some(r as i64),
            Some(_) => return Ok(()),
        };
        let param = match argument(HAS_PARAM)? {
            None => None,
            Some(Value::Text(p)) => Some(p),
            Some(_) => return Ok(()),
        };
        let decoded = crate::sqlite_record::rows(&record)
            .map_err(|e| rusqlite::Error::ModuleError(format!("tsunagu_index_rows: {e}")))?;
        for (tag, values) in decoded {
            if tbl.is_some_and(|t| t != tag as i64) {
                continue;
            }
            if let Some(p) = &param {
                if !matches!(values.first().map(view), Some(rusqlite::types::ValueRef::Text(t)) if t == p.as_bytes()) {
                    continue;
                }
            }
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

#[cfg(test)]
mod tests {
    use rusqlite::types::ValueRef as R;

    use crate::sqlite_record::{table, Record};

    /// `tbl` and `param` tested while decoding give the rows SQLite's own test of each row
    /// gives (a `+` keeps a term from being offered to the table), whatever the operand.
    #[test]
    fn pushed_down_equalities_keep_the_rows_sqlite_would() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        super::register(&c).unwrap();
        let mut record = Record::default();
        record.row(table::TOKEN, &[R::Text(b"code"), R::Text(b"c1"), R::Text(b"")]);
        record.row(table::TOKEN, &[R::Text(b"status"), R::Text(b"final"), R::Text(b"")]);
        record.row(table::DATE, &[R::Text(b"code"), R::Integer(1), R::Integer(2)]);
        record.row(table::NUMBER, &[R::Text(b"2"), R::Real(2.0)]);
        let bytes = record.bytes().to_vec();
        for test in [
            "tbl = 0",
            "tbl = 0 AND param = 'code'",
            "param = 'code'",
            "tbl = 2.0",
            "tbl = '0'",
            "tbl = NULL",
            "param = 2",
            "param = x'636f6465'",
            "tbl = 4 AND param = '2'",
            "tbl = 0 AND param = 'code' AND code = 'c1'",
        ] {
            let count = |where_: &str| -> i64 {
                let sql = format!("SELECT COUNT(*) FROM tsunagu_index_rows(?1) WHERE {where_}");
                c.query_row(&sql, [&bytes], |r| r.get(0)).unwrap()
            };
            let unpushed = test.replace("tbl =", "+tbl =").replace("param =", "+param =");
            assert_eq!(count(test), count(&unpushed), "{test}");
        }
        let mut explain = c
            .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM tsunagu_index_rows(?1) WHERE tbl = 0 AND param = 'code'")
            .unwrap();
        let plan: Vec<String> = explain.query_map([&bytes], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
        let plan = plan.join(" ");
        assert!(plan.contains("INDEX 7"), "{plan}");
    }
}
