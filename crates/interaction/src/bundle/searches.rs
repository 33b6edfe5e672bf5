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

use super::{visit_references, Verb};
use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::Interactions;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tsunagu_limits::{Limit, LimitExceeded};
use tsunagu_store::{Ceiling, StoreError, WriteTxn};

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
    /// `max_bundle_search_ms`. A search a store stopped at the time left is blamed on
    /// that limit, not on the search's own.
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
        match out {
            Err(InteractionError::Store(StoreError::TooCostly { ceiling: Ceiling::Millis(ms), .. }))
                if Some(ms) == left =>
            {
                Err(self.exceeded())
            }
            _ if self.over() => Err(self.exceeded()),
            out => out,
        }
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
    /// Bundle asks for (each set of criteria once), against `max_bundle_conditions`.
    /// Counting stops at the limit, so a Bundle far past it costs no more to refuse.
    pub(super) fn check_bundle_conditions(
        &self,
        bundle: &Map<String, Value>,
        base: &str,
    ) -> Result<(), InteractionError> {
        let max = self.config.limits.max_bundle_conditions;
        let mut seen: HashSet<CriteriaKey> = HashSet::new();
        let mut total = 0usize;
        let mut count = |ty: &str, criteria: &str| -> Result<(), InteractionError> {
            let Some(pairs) = crate::conditional::criteria_key(ty, criteria) else { return Ok(()) };
            if pairs.is_empty() || !seen.insert((ty.to_string(), pairs)) {
                return Ok(());
            }
            total = total.saturating_add(self.search_conditions(ty, criteria));
            if total > max {
                return Err(LimitExceeded::new(Limit::BundleConditions, max)
                    .hint(
                        "Send it as several Bundles, or use criteria with fewer parameters",
                        "複数の Bundle に分けるか、パラメータの少ない条件を使ってください",
                    )
                    .into());
            }
            Ok(())
        };
        for entry in bundle.get("entry").and_then(Value::as_array).into_iter().flatten() {
            let request = entry.get("request");
            let field = |name: &str| request.and_then(|r| r.get(name)).and_then(Value::as_str);
            let url = field("url").unwrap_or("");
            let url = url.strip_prefix(base).and_then(|u| u.strip_prefix('/')).unwrap_or(url).trim_start_matches('/');
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let ty = path.split('/').next().unwrap_or("");
            match field("method").and_then(Verb::parse) {
                Some(Verb::Post) => {
                    if let Some(criteria) = field("ifNoneExist") {
                        count(ty, criteria)?;
                    }
                }
                Some(_) if !query.is_empty() => count(ty, query)?,
                _ => {}
            }
            if let Some(resource) = entry.get("resource") {
                let mut failure = None;
                visit_references(resource, &mut |reference| {
                    if failure.is_none() {
                        if let Some((ty, query)) = self.conditional_reference(reference) {
                            failure = count(ty, query).err();
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

    /// Conditions a search of `criteria` on `ty` expands to; criteria that do not parse
    /// count one per parameter (they fail when run, at no more cost than that).
    fn search_conditions(&self, ty: &str, criteria: &str) -> usize {
        let Ok(params) = crate::conditional::parse_criteria(ty, criteria) else { return 1 };
        let fallback = params.pairs.len().max(1);
        if !self.model.is_resource_type(ty) {
            return fallback;
        }
        self.build_query(Some(ty), &SearchParams { pairs: params.pairs }, false, "")
            .map_or(fallback, |parsed| parsed.conditions.max(1))
    }
}
