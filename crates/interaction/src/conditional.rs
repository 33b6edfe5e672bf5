//! Conditional interactions: the criteria of `If-None-Exist`, conditional update, delete
//! and patch, and conditional references in transactions, evaluated inside the write
//! transaction that acts on them.

use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::Interactions;
use tsunagu_store::WriteTxn;

impl Interactions {
    /// Resources of type `ty` matching `criteria` (a query string), as seen by `txn`.
    pub(crate) fn conditional_matches(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        criteria: &str,
    ) -> Result<Vec<(String, String)>, InteractionError> {
        let criteria = criteria.trim_start_matches('?');
        let params = SearchParams::parse(criteria);
        if params.pairs.is_empty() {
            return Err(InteractionError::bad_request(
                "conditional criteria must not be empty",
                "条件付き操作の条件が空です",
            ));
        }
        // Criteria are always strict: ignoring a parameter would widen the match.
        let parsed = self.build_query(Some(ty), &params, true, "")?;
        Ok(txn.search_ids(&parsed.query)?)
    }
}
