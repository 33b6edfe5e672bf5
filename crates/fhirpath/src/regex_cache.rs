//! Compiled regular expressions for `matches()`, `matchesFull()` and `replaceMatches()`,
//! bounded one by one (`max_regex_bytes`) and all together (`regex_cache_bytes`).
//!
//! Patterns are usually literals in expressions evaluated many times (invariants), so
//! compiled regexes are kept for reuse — but in ONE cache for the whole process, counted in
//! bytes: a per-thread cache on every thread of a large blocking pool multiplies whatever
//! one thread keeps by the number of threads.
//!
//! What is counted is what stays allocated between evaluations: each regex's own measure of
//! its heap (`meta::Regex::memory_usage()`: NFAs, one-pass DFA, prefilter, lazy-DFA
//! skeleton), its pattern, a fixed overhead for the handle, and the search caches (lazy-DFA
//! transition tables, PikeVM and backtracker scratch) kept idle next to it for the next
//! search, each by `meta::Cache::memory_usage()`. Caches go back to their entry only while
//! they fit in the budget, so a lazy DFA grown by a hostile input is not kept uncounted.
//! A cache in use by an evaluation in progress is not counted; there is one per `matches()`
//! running, bounded by a small multiple of its regex's size (PikeVM state), twice
//! [`LAZY_DFA_BYTES`] (forward and reverse lazy DFA) and the backtracker's 256 KiB bitset.
//!
//! The limits live under the same lock as the cache (not in separate atomics) so that a
//! regex compiled under one `max_regex_bytes` is never cached after the limits changed.

use regex_automata::meta::{Cache, Regex};
use regex_automata::util::iter::Searcher;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use tsunagu_limits::{Limit, LimitExceeded, Limits};

use crate::error::{FhirPathError, Result};

/// Transition-table capacity of each lazy DFA (forward and reverse) of one search cache. The
/// `regex` crate's default is 2 MiB; a regex whose lazy DFA needs more than this falls back
/// to slower (still linear-time) engines instead of growing.
const LAZY_DFA_BYTES: usize = 256 * 1024;

/// Idle search caches kept per regex (searches of one regex running at once on several
/// threads each need their own).
const IDLE_CACHES_PER_REGEX: usize = 4;

/// What an entry costs besides `memory_usage()` and its pattern: the entry and its map slot,
/// the `Arc` and `meta::Regex` handle, and the regex's own (unused here) pool of caches
/// (8 cache-line sized stacks).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 2 * std::mem::size_of::<usize>() + 1024;

/// Sets the two regex limits of this process: `max_regex_bytes` (the largest compiled size
/// of one regular expression; larger ones, and patterns longer than that many bytes, are
/// execution errors naming the limit) and `regex_cache_bytes` (the memory of all compiled
/// regexes kept for reuse). Before the first call both are `Limits::default()`'s.
///
/// This is global rather than per [`crate::EvalContext`] because the cache it bounds is:
/// there is one regex cache per process, shared by every thread and every expression, so
/// that its bound is a bound on the process and not on each thread. The server calls this
/// once at start-up with its `[limits]`; changing the limits empties the cache.
pub fn set_regex_limits(max_regex_bytes: usize, cache_bytes: usize) {
    let mut st = state();
    st.max_regex_bytes = max_regex_bytes;
    st.budget = cache_bytes;
    st.generation += 1;
    st.map.clear();
    st.bytes = 0;
}

/// Bytes currently charged to the regex cache (compiled regexes kept for reuse and their
/// idle search caches); never more than `regex_cache_bytes`.
pub fn regex_cache_bytes_in_use() -> usize {
    state().bytes
}

/// The pattern as the function uses it.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    /// `matches()`: the pattern anywhere, `.` matching newlines.
    Find,
    /// `matchesFull()`: the whole string.
    Full,
    /// `replaceMatches()`: the pattern as given.
    Replace,
}

/// Runs `f` with the compiled `pattern` and a search cache for it, compiling (and caching)
/// it first when needed. `func` names the FHIRPath function in errors.
pub(crate) fn with_regex<T>(
    func: &str,
    pattern: &str,
    mode: Mode,
    pos: usize,
    f: impl FnOnce(&Regex, &mut Cache) -> T,
) -> Result<T> {
    let key = match mode {
        Mode::Find => format!("(?s){pattern}"),
        Mode::Full => format!("(?s)^(?:{pattern})$"),
        Mode::Replace => pattern.to_string(),
    };
    let found = state().acquire(&key);
    let (id, re, cache) = match found {
        Acquired::Hit { id, re, cache } => (Some(id), re, cache),
        Acquired::Miss { max_regex_bytes, generation } => {
            let limit = |found: Option<usize>| {
                let mut e = LimitExceeded::new(Limit::RegexBytes, max_regex_bytes);
                e.found = found;
                e.message_en()
            };
            let exec = |msg: String| FhirPathError::Execution { pos, msg: format!("{func}(): {msg}") };
            if pattern.len() > max_regex_bytes {
                let n = pattern.len();
                return Err(exec(format!("a pattern of {n} bytes is refused before compiling. {}", limit(None))));
            }
            let re = build(&key, max_regex_bytes).map_err(|e| match e.size_limit() {
                Some(_) => exec(limit(None)),
                None => exec(format!("invalid regex: {e}")),
            })?;
            let size = re.memory_usage();
            if size > max_regex_bytes {
                return Err(exec(limit(Some(size))));
            }
            let re = Arc::new(re);
            let cost = size + key.len() + ENTRY_OVERHEAD;
            let (id, re) = state().insert(&key, re, cost, generation);
            (id, re, None)
        }
    };
    let mut cache = cache.unwrap_or_else(|| Box::new(re.create_cache()));
    let out = f(&re, &mut cache);
    if let Some(id) = id {
        let size = std::mem::size_of::<Cache>() + cache.memory_usage();
        state().release(&key, id, cache, size);
    }
    Ok(out)
}

/// `regex::Regex::replace_all(haystack, replacement)` (`$1`, `${name}`, `$$` in the
/// replacement), on a meta regex with an explicit cache.
/// `None` when the output would pass `max_bytes`.
pub(crate) fn replace_all(
    re: &Regex,
    cache: &mut Cache,
    haystack: &str,
    replacement: &str,
    max_bytes: usize,
) -> Option<String> {
    let mut out = String::with_capacity(haystack.len().min(max_bytes));
    let mut last = 0;
    let mut it = Searcher::new(Input::new(haystack));
    if !replacement.contains('$') {
        while let Some(m) = it.advance(|input| Ok(re.search_with(cache, input))) {
            out.push_str(&haystack[last..m.start()]);
            out.push_str(replacement);
            last = m.end();
            if out.len() > max_bytes {
                return None;
            }
        }
    } else {
        let mut caps = re.create_captures();
        while let Some(m) = it.advance(|input| {
            re.search_captures_with(cache, input, &mut caps);
            Ok(caps.get_match())
        }) {
            out.push_str(&haystack[last..m.start()]);
            caps.interpolate_string_into(haystack, replacement, &mut out);
            last = m.end();
            if out.len() > max_bytes {
                return None;
            }
        }
    }
    out.push_str(&haystack[last..]);
    (out.len() <= max_bytes).then_some(out)
}

/// Compiles as `regex::RegexBuilder::new(pattern).size_limit(max).dfa_size_limit(..)`
/// does (same syntax, match semantics and engines), with every NFA bounded by `max`.
fn build(pattern: &str, max: usize) -> std::result::Result<Regex, Box<regex_automata::meta::BuildError>> {
    let config = Regex::config()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .nfa_size_limit(Some(max))
        .onepass_size_limit(Some(max.min(1 << 20)))
        .hybrid_cache_capacity(LAZY_DFA_BYTES);
    Regex::builder().configure(config).syntax(syntax::Config::new().utf8(true)).build(pattern).map_err(Box::new)
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    let l = Limits::default();
    Mutex::new(State {
        max_regex_bytes: l.max_regex_bytes,
        budget: l.regex_cache_bytes,
        generation: 0,
        bytes: 0,
        tick: 0,
        next_id: 0,
        map: HashMap::new(),
    })
});

/// The lock is held only to look up, insert and evict; never while compiling or searching.
fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

struct State {
    max_regex_bytes: usize,
    /// `regex_cache_bytes`.
    budget: usize,
    /// Bumped when the limits change, so that a regex compiled under the old ones is not
    /// cached under the new.
    generation: u64,
    /// Sum of the entries' charges.
    bytes: usize,
    /// Recency clock: every touch takes the next value, so values are unique.
    tick: u64,
    next_id: u64,
    map: HashMap<Box<str>, Entry>,
}

struct Entry {
    /// Tells a cache made for this regex from one made for an earlier regex of the same
    /// pattern (evicted and compiled again meanwhile).
    id: u64,
    re: Arc<Regex>,
    /// The regex, its pattern and [`ENTRY_OVERHEAD`].
    cost: usize,
    /// Idle search caches with their size when put back.
    idle: Vec<(Box<Cache>, usize)>,
    last_used: u64,
}

impl Entry {
    fn charge(&self) -> usize {
        self.cost + self.idle.iter().map(|(_, n)| n).sum::<usize>()
    }
}

enum Acquired {
    Hit { id: u64, re: Arc<Regex>, cache: Option<Box<Cache>> },
    Miss { max_regex_bytes: usize, generation: u64 },
}

impl State {
    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn acquire(&mut self, key: &str) -> Acquired {
        let tick = self.touch();
        match self.map.get_mut(key) {
            Some(e) => {
                e.last_used = tick;
                let cache = e.idle.pop().map(|(c, n)| {
                    self.bytes -= n;
                    c
                });
                Acquired::Hit { id: e.id, re: e.re.clone(), cache }
            }
            None => Acquired::Miss { max_regex_bytes: self.max_regex_bytes, generation: self.generation },
        }
    }

    /// Caches a freshly compiled regex when it fits, evicting the least recently used;
    /// one larger than the whole budget (or compiled under limits since changed) is used
    /// once and dropped (its id is then `None`).
    fn insert(&mut self, key: &str, re: Arc<Regex>, cost: usize, generation: u64) -> (Option<u64>, Arc<Regex>) {
        if let Some(e) = self.map.get(key) {
            // Another thread compiled it meanwhile: use that one, drop ours.
            return (Some(e.id), e.re.clone());
        }
        if generation != self.generation || !self.make_room(cost, None) {
            return (None, re);
        }
        self.next_id += 1;
        let id = self.next_id;
        let last_used = self.touch();
        self.map.insert(key.into(), Entry { id, re: re.clone(), cost, idle: Vec::new(), last_used });
        self.bytes += cost;
        (Some(id), re)
    }

    /// Puts a search cache back next to its regex, if the regex is still cached and the
    /// cache fits in the budget (evicting less recently used regexes, never its own).
    fn release(&mut self, key: &str, id: u64, cache: Box<Cache>, size: usize) {
        match self.map.get(key) {
            Some(e) if e.id == id && e.idle.len() < IDLE_CACHES_PER_REGEX => {}
            _ => return,
        }
        if !self.make_room(size, Some(id)) {
            return;
        }
        if let Some(e) = self.map.get_mut(key) {
            e.idle.push((cache, size));
            self.bytes += size;
        }
    }

    /// Evicts least recently used entries (not `keep`) until `need` more bytes fit. When
    /// eviction is needed at all it frees an eighth of the budget more than asked, so that
    /// the sort it costs is paid once per many insertions. False when `need` cannot fit.
    fn make_room(&mut self, need: usize, keep: Option<u64>) -> bool {
        if self.bytes + need <= self.budget {
            return true;
        }
        if need > self.budget {
            return false;
        }
        let slack = self.budget / 8;
        let target = if need <= self.budget - slack { self.budget - slack } else { self.budget };
        let mut order: Vec<(u64, usize)> =
            self.map.values().filter(|e| Some(e.id) != keep).map(|e| (e.last_used, e.charge())).collect();
        order.sort_unstable();
        let mut freed = 0;
        let mut cutoff = None;
        for (last_used, charge) in order {
            if self.bytes - freed + need <= target {
                break;
            }
            freed += charge;
            cutoff = Some(last_used);
        }
        if let Some(cutoff) = cutoff {
            self.map.retain(|_, e| e.last_used > cutoff || Some(e.id) == keep);
            self.bytes -= freed;
        }
        self.bytes + need <= self.budget
    }
}
