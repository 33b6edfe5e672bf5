//! The synchronous `postgres` client runs a small tokio runtime per connection, and tokio
//! panics when a runtime is started or dropped on a thread that is already running one
//! ("Cannot start a runtime from within a runtime"). The server calls the store from
//! `spawn_blocking` threads, where that cannot happen; should a call come from an async
//! task itself, these helpers keep it from panicking: on a multi-threaded runtime the call
//! runs in `block_in_place`, on a single-threaded one it is refused with an error (a
//! write's closure cannot move to another thread), and connections are dropped on a
//! thread of their own. A `spawn_blocking` thread of a single-threaded runtime (as in
//! `#[tokio::test]`) sees that runtime as current too; it is told apart from the runtime's
//! own thread by running a task (the future `block_on` drives has no task id), and may block.

use tokio::runtime::{Handle, RuntimeFlavor};
use tsunagu_store::StoreError;

/// Runs `f`, which blocks on the database, so that it may block here.
pub(crate) fn blocking<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    match Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) if tokio::task::try_id().is_some() => f(),
        Ok(_) => Err(StoreError::Backend(
            "the PostgreSQL store was called on a single-threaded async runtime; call it from \
             tokio::task::spawn_blocking"
                .into(),
        )),
    }
}

/// Drops `value` (holding connections) where dropping their runtimes is allowed.
pub(crate) fn drop_outside_runtime<T: Send + 'static>(value: T) {
    match Handle::try_current() {
        Err(_) => drop(value),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| drop(value)),
        Ok(_) => {
            let _ = std::thread::spawn(move || drop(value));
        }
    }
}
