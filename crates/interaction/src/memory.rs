//! The memory all requests hold together, against `max_memory_bytes`.
//!
//! Each request is bounded on its own (`max_body_bytes`, `max_body_values`,
//! `max_page_bytes`), but one bounded request can still cost hundreds of megabytes once
//! parsed and indexed, and `max_concurrent_requests` of them at once would exhaust the
//! machine: 12 concurrent POSTs of a Person with 990,000 names peaked at 5.6 GB. So each
//! request reserves an estimate before the costly work starts and gives it back when it
//! ends; one that does not fit waits for others to finish, up to `memory_wait_ms`, then is
//! refused with 503 and `Retry-After`.
//!
//! The estimates are upper-bound rules of thumb measured on this server, not an allocator's
//! count: a body costs [`BODY_BYTES_FACTOR`] times its bytes plus [`BYTES_PER_VALUE`] per
//! JSON value (or XML tag); a response page [`PAGE_BYTES_FACTOR`] times the stored bytes of
//! its resources.

use crate::InteractionError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes one parsed value costs by the time it is indexed (measured: about 470 for a
/// Person of 990,000 names, 10.7 MB, written).
pub const BYTES_PER_VALUE: u64 = 600;
/// A body's bytes are held as sent, as text inside the parsed values, and several times
/// more as the normalised strings and full-text tokens of its search indexes: a Person of
/// 32 names of a million letters (32 MB) peaked at about 200 MB, ten names of a million
/// U+3300 (30 MB) at about 400 MB before `tsunagu_text` bounded normalisation's growth.
pub const BODY_BYTES_FACTOR: u64 = 16;
/// A page of resources peaks at 5–12 times their stored bytes while the response is built
/// (parsed bodies, the Bundle, its serialisation).
pub const PAGE_BYTES_FACTOR: u64 = 8;
/// The least a page reads when the budget is full: a page is cut to what the budget has
/// room for, and this keeps a busy server answering small pages (then waiting for room to
/// build them).
const PAGE_MIN_BYTES: u64 = 1 << 20;

/// The server's budget: `max_memory_bytes`, shared by every request.
pub struct MemoryBudget {
    limit: u64,
    wait: Duration,
    used: Mutex<u64>,
    freed: Condvar,
}

impl MemoryBudget {
    /// `limit` 0 turns the budget off.
    pub fn new(limit: u64, wait: Duration) -> Arc<Self> {
        Arc::new(MemoryBudget { limit, wait, used: Mutex::new(0), freed: Condvar::new() })
    }

    /// Bytes reserved now by all requests.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` bytes, waiting up to the configured time for room. `n` above the whole
    /// budget is taken as the whole budget: such a request runs once it is alone.
    fn take(&self, n: u64) -> Result<u64, InteractionError> {
        let n = n.min(self.limit);
        let deadline = Instant::now() + self.wait;
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + n > self.limit {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(InteractionError::MemoryBusy { limit: self.limit, wait_ms: self.wait.as_millis() as u64 });
            }
            used = self.freed.wait_timeout(used, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        *used += n;
        Ok(n)
    }

    fn give_back(&self, n: u64) {
        if n == 0 {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// What one request holds of the budget; given back when the last clone of its context
/// is dropped.
pub struct MemoryHold {
    budget: Arc<MemoryBudget>,
    held: AtomicU64,
}

impl MemoryHold {
    pub fn new(budget: Arc<MemoryBudget>) -> Arc<Self> {
        Arc::new(MemoryHold { budget, held: AtomicU64::new(0) })
    }

    fn off(&self) -> bool {
        self.budget.limit == 0
    }

    /// Reserves `n` bytes for the rest of the request, waiting for room.
    pub fn reserve(&self, n: u64) -> Result<(), InteractionError> {
        if self.off() || n == 0 {
            return Ok(());
        }
        let got = self.budget.take(n)?;
        self.held.fetch_add(got, Ordering::Relaxed);
        Ok(())
    }

    /// Reserves a body's estimate before it is parsed.
    pub fn reserve_body(&self, bytes: usize, values: usize) -> Result<(), InteractionError> {
        self.reserve(
            (bytes as u64)
                .saturating_mul(BODY_BYTES_FACTOR)
                .saturating_add((values as u64).saturating_mul(BYTES_PER_VALUE)),
        )
    }

    /// Counts `stored` bytes of resources as read into the response (a page, or one
    /// resource read by id), waiting for room to build the response from them.
    pub fn spend_page(&self, stored: u64) -> Result<(), InteractionError> {
        self.reserve(stored.saturating_mul(PAGE_BYTES_FACTOR))
    }

    /// The most stored bytes a page should read now: what the budget has room for (at
    /// least [`PAGE_MIN_BYTES`], so that a busy server still answers small pages). Nothing
    /// is taken: [`MemoryHold::spend_page`] takes it once the page is read.
    pub(crate) fn page_room(&self) -> Option<u64> {
        if self.off() {
            return None;
        }
        let left = self.budget.limit.saturating_sub(self.budget.used());
        Some((left / PAGE_BYTES_FACTOR).max(PAGE_MIN_BYTES))
    }
}

impl std::fmt::Debug for MemoryHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHold").field("held", &self.held.load(Ordering::Relaxed)).finish()
    }
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        self.budget.give_back(*self.held.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_waits_for_room_and_gives_it_back() {
        let budget = MemoryBudget::new(1000, Duration::from_millis(2000));
        let first = MemoryHold::new(budget.clone());
        first.reserve(800).unwrap();
        assert_eq!(budget.used(), 800);
        let b = budget.clone();
        let waiter = std::thread::spawn(move || {
            let second = MemoryHold::new(b);
            let t = Instant::now();
            second.reserve(500).map(|()| t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        let waited = waiter.join().unwrap().expect("room once the first request ended");
        assert!(waited >= Duration::from_millis(50), "it waited for the first: {waited:?}");
        assert_eq!(budget.used(), 0, "both gave everything back");
    }

    #[test]
    fn a_request_that_never_fits_is_refused_after_the_wait() {
        let budget = MemoryBudget::new(1000, Duration::from_millis(50));
        let first = MemoryHold::new(budget.clone());
        first.reserve(900).unwrap();
        let second = MemoryHold::new(budget.clone());
        let e = second.reserve(200).unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(e.message(crate::Lang::En).contains("max_memory_bytes"));
        assert!(e.message(crate::Lang::Ja).contains("max_memory_bytes"));
        // More than the whole budget is the whole budget: it runs alone.
        drop(first);
        second.reserve(5000).unwrap();
        assert_eq!(budget.used(), 1000);
    }

    #[test]
    fn pages_are_cut_to_the_room_left_and_wait_to_be_built() {
        let budget = MemoryBudget::new(40 << 20, Duration::from_millis(50));
        let other = MemoryHold::new(budget.clone());
        other.reserve(30 << 20).unwrap();
        let page = MemoryHold::new(budget.clone());
        // 10 MiB left: room for 1.25 MiB of stored resources.
        assert_eq!(page.page_room(), Some((10 << 20) / PAGE_BYTES_FACTOR));
        page.spend_page((10 << 20) / PAGE_BYTES_FACTOR).unwrap();
        assert_eq!(budget.used(), 40 << 20);
        // Full: a page still reads a little, then waits to be built, refused when no room comes.
        assert_eq!(page.page_room(), Some(PAGE_MIN_BYTES));
        assert_eq!(page.spend_page(1 << 20).unwrap_err().status(), 503);
        drop(other);
        page.spend_page(1 << 20).unwrap();
        drop(page);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_budget_of_zero_is_off() {
        let budget = MemoryBudget::new(0, Duration::from_millis(10));
        let hold = MemoryHold::new(budget.clone());
        hold.reserve(u64::MAX).unwrap();
        assert_eq!(hold.page_room(), None);
        hold.spend_page(1 << 40).unwrap();
        assert_eq!(budget.used(), 0);
    }
}
