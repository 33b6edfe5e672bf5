//! The searches one Bundle runs, bounded together: conditional criteria (`ifNoneExist`,
//! conditional URLs), conditional references and GET entries' searches. Each search alone
//! is bounded by the search limits, but a transaction runs all of its own under the write
//! lock, so their sum is what every other writer waits for. Two limits bound it: the
//! conditions of all of them (`max_bundle_conditions`), counted before any entry is
//! checked or run, and the time they take together (`max_bundle_search_ms`), counted as
//! they run.
//!
//! Criteria already searched before any entry ran answer again from memory: until the
//! first entry executes, nothing in the transaction has changed what they match.

use super::{request_target, visit_references, Verb};
use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::Interactions;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tsunagu_limits::{Limit, LimitExceeded};
use tsunagu_store::WriteTxn;

/// Criteria as compared: their type and their parameters in any order.
type CriteriaKey = (String, Vec<(String, String)>);

/// What the searches of one Bundle have cost so far, and what they found before any entry
/// ran.
pub(super) struct BundleSearches {
    found: HashMap<CriteriaKey, Vec<(String, String)>>,
    spent: Duration,
    max: Option<Duration>,
}

impl BundleSearches {
    pub(super) fn new(limits: &tsunagu_limits::Limits) -> Self {
        let max = (limits.max_bundle_search_ms > 0).then(|| Duration::from_millis(limits.max_bundle_search_ms as u64));
        BundleSearches { found: HashMap::new(), spent: Duration::ZERO, max }
    }

    /// Forgets what criteria matched: entries have run since (in a batch, each entry
    /// commits before the next), so the same criteria may match otherwise now. The time
    /// spent stays spent.
    pub(super) fn forget_matches(&mut self) {
        self.found.clear();
    }

    /// Runs one search of the Bundle with the time left (ms, `None`: no ceiling), charges
    /// the time it took, and fails once the Bundle's searches together went past
    /// `max_bundle_search_ms`.
    pub(super) fn charge<T>(
        &mut self,
        search: impl FnOnce(Option<u64>) -> Result<T, InteractionError>,
    ) -> Result<T, InteractionError> {
        let left = self.max.map(|max| max.saturating_sub(self.spent).as_millis().max(1) as u64);
        if left.is_some() && self.over() {
            return Err(self.exceeded());
        }
        let started = Instant::now();
        let out = search(left);
        self.spent += started.elapsed();
        // A search cut at the time left (PostgreSQL) has spent it: this limit, not its own.
        if self.over() {
            return Err(self.exceeded());
        }
        out
    }

    fn over(&self) -> bool {
        self.max.is_some_and(|max| self.spent > max)
    }

    fn exceeded(&self) -> InteractionError {
        let max = self.max.map_or(0, |m| m.as_millis() as usize);
        LimitExceeded::new(Limit::BundleSearchMs, max)
            .hint(
                "The searches of this Bundle (conditional criteria and references, GET entries) cost too much \
                 together: send it as several Bundles, or use more selective criteria",
                "この Bundle の検索（条件付き操作・条件付き参照・GET エントリ）の合計の負荷が大きすぎます。\
                 複数の Bundle に分けるか、より絞り込める条件を使ってください",
            )
            .into()
    }
}

impl Interactions {
    /// Resources of type `ty` matching `criteria` for an entry of a Bundle, within the
    /// Bundle's time, from memory when the same criteria were searched before any entry
    /// ran (the caller forgets them once entries run).
    pub(super) fn bundle_matches(
        &self,
        txn: &mut dyn WriteTxn,
        searches: &mut BundleSearches,
        ty: &str,
        criteria: &str,
    ) -> Result<Vec<(String, String)>, InteractionError> {
        let key = crate::conditional::criteria_key(ty, criteria).map(|pairs| (ty.to_string(), pairs));
        if let Some(found) = key.as_ref().and_then(|k| searches.found.get(k)) {
            return Ok(found.clone());
        }
        let found = searches.charge(|left| self.conditional_matches_within(txn, ty, criteria, left))?;
        if let Some(key) = key {
            searches.found.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Counted before any entry is checked or run: the conditions of every search the
    /// Bundle asks for, against `max_bundle_conditions`. Conditional criteria and
    /// references repeated where they are answered from memory count once (in a
    /// transaction, across it; in a batch, within an entry); GET entries count each time,
    /// as each runs. Counting stops at the limit, so a Bundle far past it costs no more to
    /// refuse.
    pub(super) fn check_bundle_conditions(
        &self,
        bundle: &Map<String, Value>,
        base: &str,
    ) -> Result<(), InteractionError> {
        let transaction = bundle.get("type").and_then(Value::as_str) == Some("transaction");
        let mut count = ConditionCount {
            interactions: self,
            seen: HashSet::new(),
            total: 0,
            max: self.config.limits.max_bundle_conditions,
        };
        for entry in bundle.get("entry").and_then(Value::as_array).into_iter().flatten() {
            if !transaction {
                count.seen.clear();
            }
            let request = entry.get("request");
            let field = |name: &str| request.and_then(|r| r.get(name)).and_then(Value::as_str);
            let (path, query) = request_target(field("url").unwrap_or(""), base);
            let query = query.unwrap_or("");
            let ty = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
            match field("method").and_then(Verb::parse) {
                Some(Verb::Post) => {
                    if let Some(criteria) = field("ifNoneExist") {
                        count.conditional(ty, criteria)?;
                    }
                }
                // Read as the entry's search reads it, and counted each time: each runs.
                Some(Verb::Get | Verb::Head) if !query.is_empty() => {
                    count.add(self.search_conditions(ty, SearchParams::parse(query)))?
                }
                Some(_) if !query.is_empty() => count.conditional(ty, query)?,
                _ => {}
            }
            if let Some(resource) = entry.get("resource") {
                let mut failure = None;
                visit_references(resource, &mut |reference| {
                    if failure.is_none() {
                        if let Some((ty, query)) = self.conditional_reference(reference) {
                            failure = count.conditional(ty, query).err();
                        }
                    }
                });
                if let Some(e) = failure {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Conditions a search of `params` on `ty` expands to; a search that does not parse
    /// counts one per parameter.
    fn search_conditions(&self, ty: &str, params: SearchParams) -> usize {
        let fallback = params.pairs.len().max(1);
        if !self.model.is_resource_type(ty) {
            return fallback;
        }
        self.build_query(Some(ty), &params, false, "").map_or(fallback, |parsed| parsed.conditions.max(1))
    }
}

/// The conditions counted so far against `max_bundle_conditions`, and the conditional
/// criteria already counted where repeats are answered from memory.
struct ConditionCount<'a> {
    interactions: &'a Interactions,
    seen: HashSet<CriteriaKey>,
    total: usize,
    max: usize,
}

impl ConditionCount<'_> {
    fn add(&mut self, n: usize) -> Result<(), InteractionError> {
        self.total = self.total.saturating_add(n);
        if self.total <= self.max {
            return Ok(());
        }
        Err(LimitExceeded::new(Limit::BundleConditions, self.max)
            .hint(
                "Send it as several Bundles, or use criteria with fewer parameters",
                "複数の Bundle に分けるか、パラメータの少ない条件を使ってください",
            )
            .into())
    }

    /// Conditional criteria (`ifNoneExist`, a conditional URL or reference) on `ty`.
    fn conditional(&mut self, ty: &str, criteria: &str) -> Result<(), InteractionError> {
        let Some(pairs) = crate::conditional::criteria_key(ty, criteria) else {
            // Criteria that do not parse fail before they search.
            return self.add(1);
        };
        let key = (ty.to_string(), pairs);
        if self.seen.contains(&key) {
            return Ok(());
        }
        let n = self.interactions.search_conditions(ty, SearchParams { pairs: key.1.clone() });
        self.seen.insert(key);
        self.add(n)
    }
}
