//! The process's side of `lastUpdated` timestamps, shared by both backends: timestamps never
//! go backwards (a clock stepped back) and never repeat, so `_since` and ordering by time
//! agree with the write order.

use std::sync::atomic::{AtomicI64, Ordering};

/// The last timestamp (ms since the epoch) this process gave.
#[derive(Debug)]
pub struct Clock(AtomicI64);

impl Clock {
    /// A clock that has given `last` already.
    pub fn new(last: i64) -> Clock {
        Clock(AtomicI64::new(last))
    }

    /// `n` consecutive timestamps from `floor` on (the wall clock, or a clock shared by
    /// nodes), none at or before one given already; the first of them.
    pub fn take(&self, floor: i64, n: i64) -> i64 {
        let mut prev = self.0.load(Ordering::Relaxed);
        loop {
            let first = floor.max(prev + 1);
            match self.0.compare_exchange_weak(prev, first + n - 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return first,
                Err(p) => prev = p,
            }
        }
    }
}

/// The wall clock in ms since the epoch (0 before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn timestamps_never_repeat_nor_go_back() {
        let clock = Clock::new(100);
        assert_eq!(clock.take(50, 1), 101, "a floor in the past");
        assert_eq!(clock.take(200, 3), 200);
        assert_eq!(clock.take(200, 1), 203, "after the block just given");
    }
}
