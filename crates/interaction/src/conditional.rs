//! Conditional interactions: the criteria of `If-None-Exist`, conditional update, delete
//! and patch, and conditional references in transactions, evaluated inside the write
//! transaction that acts on them. A Bundle may guess them from committed data first, so
//! that its work can start before the write lock; the transaction's answer decides.

use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::{Interactions, RequestContext};
use tsunagu_store::{SearchQuery, WriteTxn};

/// Most work (SQLite steps) a guess from committed data may cost: a guess only saves work,
/// so costly criteria are left to the transaction.
const GUESS_MAX_STEPS: u64 = 20_000;
/// The same on PostgreSQL, in ms.
const GUESS_MAX_MS: u64 = 100;
/// Criteria with more parameters than this are not guessed (an identifier or two is what
/// feeds send; a long list costs as much to plan as to run).
const GUESS_MAX_PARAMS: usize = 4;

impl Interactions {
    /// Resources of type `ty` matching `criteria` (a query string), as seen by `txn`: none,
    /// one, or the first two of several.
    pub(crate) fn conditional_matches(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        criteria: &str,
    ) -> Result<Vec<(String, String)>, InteractionError> {
        self.conditional_matches_within(txn, ty, criteria, None)
    }

    /// As [`Self::conditional_matches`], on PostgreSQL within `left_ms` too (the time left
    /// to a Bundle's searches), when that is less than the search's own ceiling.
    pub(crate) fn conditional_matches_within(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        criteria: &str,
        left_ms: Option<u64>,
    ) -> Result<Vec<(String, String)>, InteractionError> {
        let mut query = self.criteria_query(ty, &parse_criteria(ty, criteria)?)?;
        // Whether none, one or several match is all any caller decides by.
        query.count = 2;
        // The search ceilings: criteria run under the write lock (a store may heed them there).
        let limits = &self.config.limits;
        query.max_steps = (limits.max_search_steps > 0).then_some(limits.max_search_steps as u64);
        let own_ms = (limits.max_search_ms > 0).then_some(limits.max_search_ms as u64);
        query.max_ms = match (own_ms, left_ms) {
            (Some(own), Some(left)) if left < own => Some(left),
            (None, Some(left)) => Some(left),
            _ => own_ms,
        };
        Ok(txn.search_ids(&query)?)
    }

    /// The query criteria select on type `ty`. Criteria are always strict: ignoring a
    /// parameter would widen the match.
    fn criteria_query(&self, ty: &str, params: &SearchParams) -> Result<SearchQuery, InteractionError> {
        if params.pairs.is_empty() {
            return Err(InteractionError::bad_request(
                "conditional criteria must not be empty",
                "条件付き操作の条件が空です",
            ));
        }
        Ok(self.build_query(Some(ty), params, true, "")?.query)
    }

    /// Ids of resources of type `ty` matching `criteria` in committed data (at most two),
    /// read outside any write transaction: a guess at what [`Self::conditional_matches`]
    /// will find, so a Bundle's work can start before the write lock. The transaction's
    /// own answer always decides. Confined, as there, to what the caller may search.
    /// `None` where the criteria are invalid, refused or costly.
    pub(crate) fn committed_matches(&self, ty: &str, criteria: &str, ctx: &RequestContext) -> Option<Vec<String>> {
        let params = parse_criteria(ty, criteria).ok()?;
        if params.pairs.len() > GUESS_MAX_PARAMS {
            return None;
        }
        let mut query = self.criteria_query(ty, &params).ok()?;
        query.count = 2;
        query.total = false;
        query.sort.clear();
        query.max_steps = Some(GUESS_MAX_STEPS);
        query.max_ms = Some(GUESS_MAX_MS);
        self.confine(&ctx.caller, &mut query, None).ok()?;
        let page = self.store.search(&query).ok()?;
        if page.resume_after.is_some() {
            return None;
        }
        Some(page.resources.into_iter().map(|v| v.id).collect())
    }
}

/// Conditional criteria as written in `If-None-Exist`, a conditional URL or reference: a
/// query string, with a leading `?` or `[type]?` allowed (`Patient?identifier=…`, as
/// clients copy it from a search URL; a base URL before the type too). A type other than
/// `ty` is refused: the criteria would be run against the wrong type.
pub(crate) fn parse_criteria(ty: &str, criteria: &str) -> Result<SearchParams, InteractionError> {
    let query = match criteria.split_once('?') {
        Some((prefix, query)) if !prefix.contains(['=', '&']) => {
            let named = prefix.rsplit('/').next().unwrap_or_default();
            if !named.is_empty() && named != ty {
                return Err(InteractionError::bad_request(
                    format!("the conditional criteria '{criteria}' name {named}, not {ty}"),
                    format!("条件 '{criteria}' は {ty} ではなく {named} を指定しています"),
                ));
            }
            query
        }
        _ => criteria,
    };
    if !crate::search::decodes_as_utf8(query) {
        return Err(crate::search::not_utf8());
    }
    Ok(SearchParams::parse(query))
}

/// What makes two sets of criteria the same for one type: their parameters in any order.
pub(crate) fn criteria_key(ty: &str, criteria: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = parse_criteria(ty, criteria).ok()?.pairs;
    pairs.sort();
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::{criteria_key, parse_criteria};

    #[test]
    fn criteria_may_name_their_type() {
        let pairs = |c: &str| parse_criteria("Patient", c).map(|p| p.pairs);
        let expected = vec![("identifier".to_string(), "urn:x|1".to_string())];
        for c in
            ["identifier=urn:x|1", "?identifier=urn:x|1", "Patient?identifier=urn:x|1", "/Patient?identifier=urn:x|1"]
        {
            assert_eq!(pairs(c).unwrap(), expected, "{c}");
        }
        assert_eq!(pairs("http://example.org/fhir/Patient?identifier=urn:x|1").unwrap(), expected);
        assert!(pairs("Organization?identifier=urn:x|1").is_err());
        // A '?' inside a value is not a type prefix.
        assert_eq!(pairs("identifier=a?b").unwrap(), vec![("identifier".to_string(), "a?b".to_string())]);
        assert_eq!(
            criteria_key("Patient", "b=2&a=1"),
            criteria_key("Patient", "Patient?a=1&b=2"),
            "the order of parameters does not matter"
        );
    }
}
