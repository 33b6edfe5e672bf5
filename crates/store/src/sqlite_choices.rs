//! Plan choices made from estimates before a query's SQL is built, and read by the SQL
//! builder (`sqlite_query`) while it builds: recorded per thread, for the one query being
//! built, by the address of the condition (or `_has` inner query) they concern. The
//! estimates and thresholds live with each choice's own module.

use std::cell::RefCell;

use rustc_hash::FxHashSet;

/// What was chosen for one condition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Choice {
    /// A `_has` inner query: each candidate target tested by its own references
    /// (`sqlite_has`).
    CorrelatedHas,
    /// A half-open date: its matches collected from its lower bound (`sqlite_rare_dates`).
    CollectedDate,
    /// A chain: each candidate's references probed (`sqlite_common_chains`).
    ProbedChain,
    /// A common condition of a sort walk: tested on each walked row's index record
    /// (`sqlite_sort`).
    ProbedInWalk,
    /// `:missing=true` where every resource has the parameter: no match (`sqlite_negation`).
    NoneMissing,
    /// `:missing=false` where every resource has the parameter: every resource matches.
    AllHave,
    /// A token `:not=` of a parameter every resource has: estimated by the rows of the
    /// other values (`sqlite_negation`).
    NotCounted,
    /// A token `:not=` found through the rows of the other values (`sqlite_negation`).
    NotByOthers,
}

thread_local! {
    static MADE: RefCell<FxHashSet<(Choice, usize)>> = RefCell::new(FxHashSet::default());
}

fn key<T>(item: &T) -> usize {
    item as *const T as usize
}

/// Whether `choice` was made for `item` in the query being built.
pub(crate) fn made<T>(choice: Choice, item: &T) -> bool {
    MADE.with(|m| m.borrow().contains(&(choice, key(item))))
}

/// Runs `build` with `choice` made for `items`, then forgets that choice.
pub(crate) fn with_made<I, R>(choice: Choice, items: &[&I], build: impl FnOnce() -> R) -> R {
    if items.is_empty() {
        return build();
    }
    MADE.with(|m| m.borrow_mut().extend(items.iter().map(|i| (choice, key(*i)))));
    let out = build();
    MADE.with(|m| m.borrow_mut().retain(|(c, _)| *c != choice));
    out
}

/// Runs `build` as if `choice` had been made for nothing, then restores what was made.
pub(crate) fn without<R>(choice: Choice, build: impl FnOnce() -> R) -> R {
    let taken: Vec<(Choice, usize)> = MADE.with(|m| {
        let mut m = m.borrow_mut();
        let taken = m.iter().filter(|(c, _)| *c == choice).copied().collect::<Vec<_>>();
        m.retain(|(c, _)| *c != choice);
        taken
    });
    let out = build();
    MADE.with(|m| m.borrow_mut().extend(taken));
    out
}

#[cfg(test)]
mod tests {
    use super::{made, with_made, without, Choice};

    #[test]
    fn choices_hold_only_inside_their_build_and_only_for_their_items() {
        let (a, b) = (1u8, 2u8);
        let inside = with_made(Choice::ProbedChain, &[&a], || {
            with_made(Choice::CollectedDate, &[&b], || {
                (made(Choice::ProbedChain, &a), made(Choice::CollectedDate, &b), made(Choice::ProbedChain, &b))
            })
        });
        assert_eq!(inside, (true, true, false));
        let lifted = with_made(Choice::ProbedChain, &[&a], || {
            (without(Choice::ProbedChain, || made(Choice::ProbedChain, &a)), made(Choice::ProbedChain, &a))
        });
        assert_eq!(lifted, (false, true));
        assert!(!made(Choice::ProbedChain, &a) && !made(Choice::CollectedDate, &b));
    }
}
