//! Retention: items of submissions older than the configured period are deleted, those
//! tagged `LTS` (long-term storage) only after the long-term period; a submission whose
//! items are all gone past its period is deleted too. Each submission is purged in its own
//! write transaction as `operator:purge`, so every deletion has its AuditEvent.

use serde_json::Value;
use tsunagu_store::{Clause, Condition, SearchQuery, SystemMatch, Test};

use super::items::item_refs;
use super::sharing::{INDICATION_SYSTEM, SUBMITTER_SYSTEM};
use crate::access_txn::in_request_txn;
use crate::error::InteractionError;
use crate::{Caller, Interactions, RequestContext};

/// How long items are kept, in days; `None`: for ever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub days: Option<u64>,
    pub lts_days: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PurgeReport {
    pub submissions_seen: usize,
    pub items_deleted: usize,
    pub submissions_deleted: usize,
}

const DAY_MS: i64 = 86_400_000;

impl Interactions {
    /// Deletes what `retention` no longer keeps, as of `now_ms`.
    pub fn purge_expired(&self, retention: Retention, now_ms: i64) -> Result<PurgeReport, InteractionError> {
        let mut report = PurgeReport::default();
        if retention.days.is_none() && retention.lts_days.is_none() {
            return Ok(report);
        }
        let ctx = RequestContext::for_caller("", Caller::operator("purge"));
        let q = SearchQuery {
            resource_type: Some("Bundle".into()),
            clauses: vec![Clause {
                any: vec![Condition::Index {
                    param: "_tag".into(),
                    test: Test::Token { system: SystemMatch::Is(SUBMITTER_SYSTEM.into()), code: None },
                    negate: false,
                }],
            }],
            count: 200,
            ..Default::default()
        };
        tsunagu_store::scan(self.store.as_ref(), q, |v| -> Result<bool, InteractionError> {
            report.submissions_seen += 1;
            let age_days = (now_ms - v.last_updated_ms).max(0) / DAY_MS;
            let (items, whole) = self.purge_submission(&v.id, age_days as u64, retention, &ctx)?;
            report.items_deleted += items;
            report.submissions_deleted += usize::from(whole);
            Ok(true)
        })?;
        Ok(report)
    }

    /// One submission: (items deleted, whether the Bundle went too).
    fn purge_submission(
        &self,
        bundle_id: &str,
        age_days: u64,
        retention: Retention,
        ctx: &RequestContext,
    ) -> Result<(usize, bool), InteractionError> {
        let expired = |limit: Option<u64>| limit.is_some_and(|d| age_days > d);
        if !expired(retention.days) && !expired(retention.lts_days) {
            return Ok((0, false));
        }
        in_request_txn(self, ctx, |txn| {
            let Some(current) = txn.current("Bundle", bundle_id)?.filter(|c| !c.deleted) else {
                return Ok((0, false));
            };
            let bundle: Value = serde_json::from_slice(&current.body).unwrap_or(Value::Null);
            let (mut deleted, mut kept) = (0, 0);
            for (ty, id) in item_refs(&bundle, bundle_id) {
                let Some(item) = txn.current(&ty, &id)?.filter(|c| !c.deleted) else { continue };
                let lts = is_lts(&item.body);
                if expired(if lts { retention.lts_days } else { retention.days }) {
                    self.delete_in(txn, &ty, &id, None)?;
                    deleted += 1;
                } else {
                    kept += 1;
                }
            }
            let whole = kept == 0 && expired(retention.days);
            if whole {
                self.delete_in(txn, "Bundle", bundle_id, None)?;
            }
            Ok((deleted, whole))
        })
    }
}

fn is_lts(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return false };
    v.pointer("/meta/tag").and_then(Value::as_array).is_some_and(|tags| {
        tags.iter().any(|t| {
            t.get("system").and_then(Value::as_str) == Some(INDICATION_SYSTEM)
                && t.get("code").and_then(Value::as_str) == Some("LTS")
        })
    })
}
