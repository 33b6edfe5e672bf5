//! What one search did, for `tsunagu explain`: the plans it took and the statements it ran
//! (numbered SQL and bound values), recorded per thread only while
//! [`PostgresStore::explain`](crate::PostgresStore::explain) runs a search (otherwise every
//! call here is a no-op).

use std::cell::RefCell;

use crate::value::V;

#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub plans: Vec<String>,
    pub statements: Vec<(String, Vec<V>)>,
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

/// A statement that chooses the page's matches (`sql` numbered, as sent).
pub(crate) fn statement(sql: &str, values: &[V]) {
    TRACE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.statements.push((sql.to_string(), values.to_vec()));
        }
    });
}
