//! The cost ceiling of one search page (`SearchQuery::max_steps`, the `max_search_steps`
//! limit), and what a page does when it reaches it.
//!
//! SQLite's progress handler runs every [`STEPS_PER_CALL`] virtual-machine steps of any
//! statement on the connection; while a page runs it counts them and interrupts the
//! statement past the ceiling. Steps bound the time of every plan shape alike (index walks,
//! `IN` lists collected before the first row, `_has`, chains, counts, sorts), which a count
//! of rows read by the store's own walks would not.
//!
//! A call of one of the store's SQL functions that decode a resource's index record (its
//! sort value, its reference targets, its rows) is one step to SQLite but decodes hundreds
//! of bytes: a sort on a reference over a million Observations took 19 million steps and
//! 2.4–6 s. So the decoder counts the bytes it reads on its thread ([`charge_record`]) and
//! the handler adds one step per [`RECORD_BYTES_PER_STEP`] of them.
//!
//! A page in write order (no `_sort`, no `_total`) interrupted that way is answered again by
//! [`write_order_walk`]: every live resource of the type after the cursor, in `seq` order,
//! each tested against the whole filter, under a fresh ceiling. It stops where the ceiling
//! stops it and reports the last `seq` it looked at, so the next page continues exactly
//! there: no match is lost or repeated, and the page may hold fewer than `_count` entries,
//! which FHIR allows. A sorted page or a total cannot be cut that way (the first entries
//! are unknown until every match is seen), and neither can a walk that stops before its
//! first row (a condition that must collect all its index rows first): those are
//! [`StoreError::TooCostly`].

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::Connection;

use crate::query::SearchQuery;
use crate::{CostlyPart, StoreError};

/// How often the progress handler runs.
pub(crate) const STEPS_PER_CALL: i32 = 1000;

/// Bytes of index record decoded that cost one step. At a million resources a sort on a
/// reference decodes each Observation's record (about 550 bytes) by `tsunagu_sort_value`:
/// at 8 bytes a step, 25 million steps were 0.42–0.49 s, faster than the plain steps of
/// other plans (0.5–1.1 s); at 12, about the middle of that.
pub(crate) const RECORD_BYTES_PER_STEP: u64 = 12;

thread_local! {
    /// Record bytes decoded on this thread and not yet charged to a ceiling. The progress
    /// handler runs on the thread of the statement that called the decoding function.
    static DECODED: Cell<u64> = const { Cell::new(0) };
}

/// Counts `bytes` of index record decoded on this thread, for the ceiling of the statement
/// running on it (if any: outside a search page nothing reads the count).
pub(crate) fn charge_record(bytes: usize) {
    DECODED.with(|d| d.set(d.get().saturating_add(bytes as u64)));
}

/// A new ceiling (or none) starts owing nothing: what was decoded before it, under
/// another or outside any, is not charged to it.
fn forgive_decoded() {
    DECODED.with(|d| d.set(0));
}

/// Handler calls' worth of decoded bytes, taken from this thread's count (the remainder
/// stays for the next call).
fn decoded_calls() -> u64 {
    const BYTES_PER_CALL: u64 = RECORD_BYTES_PER_STEP * STEPS_PER_CALL as u64;
    DECODED.with(|d| {
        let calls = d.get() / BYTES_PER_CALL;
        d.set(d.get() - calls * BYTES_PER_CALL);
        calls
    })
}

/// The progress handler installed on a connection for one page; removed when dropped.
pub(crate) struct Budget<'c> {
    conn: &'c Connection,
    /// Handler calls left before the statement is interrupted.
    left: Arc<AtomicI64>,
    /// Handler calls since installed.
    calls: Arc<AtomicU64>,
    max_calls: i64,
}

impl<'c> Budget<'c> {
    /// Counts steps on `conn`, interrupting past `max_steps` (never when `None`).
    pub(crate) fn install(conn: &'c Connection, max_steps: Option<u64>) -> Budget<'c> {
        let max_calls = match max_steps {
            Some(m) => i64::try_from(m / STEPS_PER_CALL as u64).unwrap_or(i64::MAX).max(1),
            None => i64::MAX,
        };
        let left = Arc::new(AtomicI64::new(max_calls));
        let calls = Arc::new(AtomicU64::new(0));
        let (l, n) = (left.clone(), calls.clone());
        forgive_decoded();
        conn.progress_handler(
            STEPS_PER_CALL,
            Some(move || {
                let charged = 1 + decoded_calls();
                n.fetch_add(charged, Ordering::Relaxed);
                let charged = i64::try_from(charged).unwrap_or(i64::MAX);
                l.fetch_sub(charged, Ordering::Relaxed) < charged
            }),
        );
        Budget { conn, left, calls, max_calls }
    }

    /// A fresh ceiling (for the walk that answers after an interrupted plan).
    pub(crate) fn reset(&self) {
        forgive_decoded();
        self.left.store(self.max_calls, Ordering::Relaxed);
    }

    /// A ceiling of `steps` from here on (never above the page's own); [`Budget::reset`]
    /// gives the page's back.
    pub(crate) fn limit_to(&self, steps: u64) {
        let calls = i64::try_from(steps / STEPS_PER_CALL as u64).unwrap_or(i64::MAX).max(1);
        forgive_decoded();
        self.left.store(calls.min(self.max_calls), Ordering::Relaxed);
    }

    /// Runs `f` under a ceiling of at most `steps`, then gives back what is left of the
    /// ceiling before it, less what `f` used: a plan that may give up (a sort walk) cannot
    /// use more than its share, nor a fresh ceiling after it.
    pub(crate) fn within<T>(&self, steps: u64, f: impl FnOnce() -> T) -> T {
        let (before, calls) = (self.left.load(Ordering::Relaxed), self.calls.load(Ordering::Relaxed));
        let share = i64::try_from(steps / STEPS_PER_CALL as u64).unwrap_or(i64::MAX).max(1);
        self.left.store(share.min(before), Ordering::Relaxed);
        let out = f();
        let used = i64::try_from(self.calls.load(Ordering::Relaxed) - calls).unwrap_or(i64::MAX);
        self.left.store(before.saturating_sub(used), Ordering::Relaxed);
        out
    }

    /// Steps left under the ceiling (to the nearest [`STEPS_PER_CALL`]).
    pub(crate) fn left(&self) -> u64 {
        u64::try_from(self.left.load(Ordering::Relaxed)).unwrap_or(0).saturating_mul(STEPS_PER_CALL as u64)
    }

    /// No ceiling from here on (fetching the bodies of a page already chosen).
    pub(crate) fn lift(&self) {
        forgive_decoded();
        self.left.store(i64::MAX, Ordering::Relaxed);
    }

    /// Steps run since installed, decoded record bytes included (to the nearest
    /// [`STEPS_PER_CALL`]).
    pub(crate) fn steps(&self) -> u64 {
        self.calls.load(Ordering::Relaxed) * STEPS_PER_CALL as u64
    }
}

impl Drop for Budget<'_> {
    fn drop(&mut self) {
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }
}

/// Whether an error is the interruption of a statement by the ceiling.
pub(crate) fn interrupted(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(e) if is_interrupt(e))
}

fn is_interrupt(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted)
}

/// What could not be answered within the ceiling, for the error.
pub(crate) fn costly_part(q: &SearchQuery) -> CostlyPart {
    if q.total {
        CostlyPart::Total
    } else if !q.sort.is_empty() {
        CostlyPart::Sort
    } else {
        CostlyPart::Conditions
    }
}

/// Where a write-order walk got to.
pub(crate) struct Walked {
    /// Matches in write order, at most `count + 1`.
    pub seqs: Vec<i64>,
    /// Whether the walk met every live resource after the cursor.
    pub finished: bool,
    /// The last `seq` looked at (`None`: none).
    pub last: Option<i64>,
}

/// Walks the live resources of the query's type after its cursor in write order, testing
/// each against the whole filter, until `count + 1` match, the resources run out, or the
/// ceiling interrupts it.
pub(crate) fn write_order_walk(c: &Connection, q: &SearchQuery) -> Result<Walked, StoreError> {
    let mut values = Vec::new();
    // Conditions tested on each resource's own index record: an `IN` list collected before
    // the first row could use up the ceiling before the walk looks at anything.
    let filter = crate::sqlite_query::with_record_probes(|| crate::sqlite_query::where_clause(q, "r", &mut values));
    let mut sql = format!(
        "SELECT r.seq, CASE WHEN {filter} THEN 1 ELSE 0 END FROM resource r WHERE r.current = 1 AND r.deleted = 0"
    );
    if let Some(t) = &q.resource_type {
        sql.push_str(" AND r.type = ?");
        values.push(rusqlite::types::Value::Text(t.clone()));
    }
    if let Some(after) = q.after_seq {
        sql.push_str(" AND r.seq > ?");
        values.push(rusqlite::types::Value::Integer(after));
    }
    sql.push_str(" ORDER BY r.seq");
    crate::trace::statement(&sql, &values);
    let mut stmt = c.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
    let mut walked = Walked { seqs: Vec::new(), finished: false, last: None };
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                let seq: i64 = row.get(0)?;
                walked.last = Some(seq);
                if row.get::<_, i64>(1)? == 1 {
                    walked.seqs.push(seq);
                    if walked.seqs.len() > q.count {
                        return Ok(walked);
                    }
                }
                crate::trace::examined(1);
            }
            Ok(None) => {
                walked.finished = true;
                return Ok(walked);
            }
            Err(e) if is_interrupt(&e) => return Ok(walked),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite_record::{register_sort_value, tag, Record};
    use rusqlite::types::ValueRef;

    /// 2,000 records of about 1,000 bytes, each row naming a different code.
    fn records() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        register_sort_value(&c).unwrap();
        c.execute_batch("CREATE TABLE t (r BLOB)").unwrap();
        for i in 0..2_000 {
            let codes: Vec<String> = (0..40).map(|k| format!("code-{i}-{k}-padding")).collect();
            let mut r = Record::default();
            for code in &codes {
                r.row(
                    tag("idx_token"),
                    &[ValueRef::Text(b"code"), ValueRef::Text(code.as_bytes()), ValueRef::Text(b"s")],
                );
            }
            c.execute("INSERT INTO t VALUES (?1)", [r.bytes()]).unwrap();
        }
        c
    }

    fn steps_of(c: &Connection, sql: &str, max_steps: Option<u64>) -> (u64, bool) {
        let budget = Budget::install(c, max_steps);
        let result = c.query_row(sql, [], |r| r.get::<_, Option<String>>(0));
        let stopped = matches!(&result, Err(e) if is_interrupt(e));
        assert!(stopped || result.is_ok(), "{result:?}");
        (budget.steps(), stopped)
    }

    /// Decoding is charged by the bytes decoded, so a page that decodes many records is
    /// stopped by a ceiling that its plain steps would never reach.
    #[test]
    fn decoded_records_are_charged_to_the_ceiling() {
        let c = records();
        let bytes: i64 = c.query_row("SELECT SUM(length(r)) FROM t", [], |r| r.get(0)).unwrap();
        assert!(bytes > 1_500_000, "{bytes}");
        let plain = "SELECT MAX(length(r) || '') FROM t";
        let decoding = format!("SELECT MAX(tsunagu_sort_value(r, {}, 'code', 1, 1)) FROM t", tag("idx_token"));
        let (plain_steps, _) = steps_of(&c, plain, None);
        let (decoding_steps, _) = steps_of(&c, &decoding, None);
        let charged = bytes as u64 / RECORD_BYTES_PER_STEP;
        // What the last rows decode after the handler's last call goes uncharged.
        assert!(
            decoding_steps >= plain_steps + charged * 9 / 10,
            "{decoding_steps} steps decoding, {plain_steps} without, {charged} charged"
        );
        // A ceiling above the plain steps and below the charged ones stops the decoding.
        let ceiling = plain_steps + charged / 2;
        assert!(!steps_of(&c, plain, Some(ceiling)).1);
        assert!(steps_of(&c, &decoding, Some(ceiling)).1);
        // What a search decodes outside a ceiling is not charged to the next one.
        charge_record(1 << 30);
        assert!(!steps_of(&c, plain, Some(ceiling)).1);
    }
}
