//! What one search did, for `tsunagu explain`: the plans it took and the statements it ran
//! with their bound values (of the store's own value type `V`), recorded per thread only
//! between [`start`] and [`take`] (otherwise every call here is a no-op). Both stores record
//! here; each re-runs its statements under its own database's EXPLAIN.

use std::any::Any;
use std::cell::RefCell;

#[derive(Debug)]
pub struct Trace<V> {
    pub plans: Vec<String>,
    pub statements: Vec<(String, Vec<V>)>,
    /// Rows the store's own walks looked at (sort walks, write-order walks).
    pub examined: u64,
    /// SQLite virtual-machine steps of the page (0 on PostgreSQL).
    pub steps: u64,
}

impl<V> Default for Trace<V> {
    fn default() -> Self {
        Trace { plans: Vec::new(), statements: Vec::new(), examined: 0, steps: 0 }
    }
}

struct Recording {
    plans: Vec<String>,
    /// `Vec<(String, Vec<V>)>`: `Any` because the value type is the store's.
    statements: Box<dyn Any>,
    examined: u64,
    steps: u64,
}

thread_local! {
    static TRACE: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

fn record(f: impl FnOnce(&mut Recording)) {
    TRACE.with(|t| {
        if let Some(r) = t.borrow_mut().as_mut() {
            f(r);
        }
    });
}

/// Records what this thread's searches do until [`take`].
pub fn start<V: 'static>() {
    let statements: Vec<(String, Vec<V>)> = Vec::new();
    TRACE.with(|t| {
        *t.borrow_mut() = Some(Recording { plans: Vec::new(), statements: Box::new(statements), examined: 0, steps: 0 })
    });
}

/// What was recorded since [`start`] (empty when nothing was), and stops recording.
pub fn take<V: 'static>() -> Trace<V> {
    let Some(r) = TRACE.with(|t| t.borrow_mut().take()) else { return Trace::default() };
    let statements = r.statements.downcast::<Vec<(String, Vec<V>)>>().map(|s| *s).unwrap_or_default();
    Trace { plans: r.plans, statements, examined: r.examined, steps: r.steps }
}

/// The plan taken for (part of) the page, in words.
pub fn plan(name: impl FnOnce() -> String) {
    record(|r| r.plans.push(name()));
}

/// A statement that chooses the page's matches, as sent, with its bound values.
pub fn statement<V: Clone + 'static>(sql: &str, values: &[V]) {
    record(|r| {
        if let Some(s) = r.statements.downcast_mut::<Vec<(String, Vec<V>)>>() {
            s.push((sql.to_string(), values.to_vec()));
        }
    });
}

/// Rows a walk looked at.
pub fn examined(n: u64) {
    record(|r| r.examined += n);
}

/// SQLite virtual-machine steps.
pub fn steps(n: u64) {
    record(|r| r.steps += n);
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_only_between_start_and_take_and_only_its_own_value_type() {
        super::plan(|| "not recording".into());
        super::start::<i64>();
        super::plan(|| "walk".into());
        super::statement("SELECT ?", &[1i64]);
        super::statement("SELECT ?", &["other store".to_string()]);
        super::examined(3);
        let t = super::take::<i64>();
        assert_eq!(t.plans, ["walk"]);
        assert_eq!(t.statements, [("SELECT ?".to_string(), vec![1i64])]);
        assert_eq!(t.examined, 3);
        assert!(super::take::<i64>().plans.is_empty(), "taken once");
    }
}
