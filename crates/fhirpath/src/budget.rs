//! The work one evaluation may do (`max_fhirpath_steps`).
//!
//! Expressions come from clients (PATCH paths, `ViewDefinition/$run` columns, uploaded
//! profiles and search parameters), and FHIRPath lets a short one do a great deal:
//! `descendants().descendants()` is quadratic in the resource, `distinct()` and `|` compare
//! every pair, `'x'.repeat($this & $this)` doubles a string at each round. No single
//! function is wrong; only the sum is. So every evaluation counts its work and stops with
//! an error naming the limit when the count passes it.
//!
//! A step is one item produced by a loop (children, descendants, members of a
//! collection, characters), or one evaluation of a lambda argument and the items it gave.
//! Finer work is counted in quarter steps: one comparison of two items (the inner-loop
//! cost of `distinct()`, `|`, `in`, `~`, `=`), one JSON node walked when complex elements
//! are compared, and four bytes of string built, scanned or compared. So the default of
//! 2,000,000 steps lets one evaluation produce two million items (a few hundred MB at
//! most), compare eight million pairs or go through 32 MB of strings. Work is charged
//! before it is done where its size is known beforehand (a `replace()`, a `join()`, a
//! comparison), so nothing grows far past the limit before it is noticed.

use crate::error::{FhirPathError, Result};
use crate::item::Item;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use tsunagu_limits::{Limit, LimitExceeded, Limits};

/// Quarter steps: an item produced.
pub(crate) const ITEM: u64 = 4;
/// Quarter steps: one comparison of two items.
pub(crate) const COMPARE: u64 = 1;

static STEP_LIMIT: AtomicU64 = AtomicU64::new(Limits::DEFAULT_FHIRPATH_STEPS as u64);

/// Sets the steps one evaluation may take in this process (`max_fhirpath_steps`; 0: no
/// limit). Global like the regex limits: the server sets it once at start-up from
/// `[limits]`, and every evaluation, whoever starts it, is bounded alike.
pub fn set_step_limit(steps: usize) {
    STEP_LIMIT.store(steps as u64, Ordering::Relaxed);
}

/// The length of a string item, read without converting it (`Item::prim()` would parse
/// a quantity or a date only to be told it is not a string).
fn string_len(i: &Item<'_>) -> usize {
    match i {
        Item::String(s) => s.len(),
        Item::Node(n) => match n.value {
            Some(serde_json::Value::String(s)) => s.len(),
            _ => 0,
        },
        _ => 0,
    }
}

/// The work counted so far by one evaluation, in quarter steps.
pub(crate) struct Budget {
    used: Cell<u64>,
    max: u64,
}

impl Budget {
    pub fn new() -> Self {
        let steps = STEP_LIMIT.load(Ordering::Relaxed);
        Budget { used: Cell::new(0), max: if steps == 0 { u64::MAX } else { steps.saturating_mul(4) } }
    }

    /// Counts `quarters` more, failing once the total passes the limit.
    #[inline]
    pub fn charge(&self, quarters: u64, pos: usize) -> Result<()> {
        let used = self.used.get().saturating_add(quarters);
        self.used.set(used);
        if used > self.max {
            return Err(self.exceeded(pos));
        }
        Ok(())
    }

    pub fn items(&self, n: usize, pos: usize) -> Result<()> {
        self.charge((n as u64).saturating_mul(ITEM), pos)
    }

    pub fn comparisons(&self, n: usize, pos: usize) -> Result<()> {
        self.charge((n as u64).saturating_mul(COMPARE), pos)
    }

    /// One comparison of two items: strings are compared (or normalised, for `~`) byte by
    /// byte, so two long ones cost their length too.
    pub fn compare(&self, a: &Item<'_>, b: &Item<'_>, pos: usize) -> Result<()> {
        self.charge(COMPARE + (string_len(a).max(string_len(b)) as u64) / 4, pos)
    }

    /// The nodes and strings complex elements compared since the last call walked (two
    /// `name`s are compared whole, however deep).
    pub fn compared_elements(&self, pos: usize) -> Result<()> {
        self.charge(crate::ops::take_json_work(), pos)
    }

    pub fn bytes(&self, n: usize, pos: usize) -> Result<()> {
        self.charge(n as u64 / 4, pos)
    }

    /// Bytes of string that may still be built.
    pub fn bytes_left(&self) -> usize {
        usize::try_from(self.max.saturating_sub(self.used.get()).saturating_mul(4)).unwrap_or(usize::MAX)
    }

    /// The error of a budget spent (for work that stopped itself at [`Self::bytes_left`]).
    pub fn exhausted(&self, pos: usize) -> FhirPathError {
        self.exceeded(pos)
    }

    #[cold]
    fn exceeded(&self, pos: usize) -> FhirPathError {
        let steps = usize::try_from(self.max / 4).unwrap_or(usize::MAX);
        FhirPathError::Limit { pos, limit: Box::new(LimitExceeded::new(Limit::FhirPathSteps, steps)) }
    }
}
