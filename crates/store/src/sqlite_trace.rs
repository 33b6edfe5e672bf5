//! What one search did, for `tsunagu explain`: the plans it took and the statements it ran,
//! recorded per thread only while [`SqliteStore::explain`](crate::SqliteStore::explain) runs
//! a search (otherwise every call here is a no-op).

use std::cell::RefCell;

use rusqlite::types::Value;

#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub plans: Vec<String>,
    pub statements: Vec<(String, Vec<Value>)>,
    /// Rows the store's own walks looked at (sort walks, write-order walks).
    pub examined: u64,
    /// SQLite virtual-machine steps of the page.
    pub steps: u64,
}

thread_local! {
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

pub(crate) fn start() {
    TRACE.with(|t| *t.borrow_mut() = Some(Trace::default()));
}

pub(crate) fn take() -> Trace {
    TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default()
}

/// The plan taken for (part of) the page, in words.
pub(crate) fn plan(name: impl FnOnce() -> String) {
    TRACE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.plans.push(name());
        }
    });
}

pub(crate) fn statement(sql: &str, values: &[Value]) {
    TRACE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.statements.push((sql.to_string(), values.to_vec()));
        }
    });
}

pub(crate) fn examined(n: u64) {
    TRACE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.examined += n;
        }
    });
}

pub(crate) fn steps(n: u64) {
    TRACE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.steps += n;
        }
    });
}
