//! The history interaction at instance, type and system level, as `history` Bundles,
//! newest first, paged by a cursor so that pages stay consistent while writes go on.

use crate::access::Reach;
use crate::error::InteractionError;
use crate::instant::{format_instant, http_date, parse_range};
use crate::search::{full_url, SearchParams};
use crate::{etag, Interactions, Permission, RequestContext};
use serde_json::{json, Value};
use tsunagu_store::{HistoryQuery, HistoryScope, Method};

impl Interactions {
    pub fn history(
        &self,
        scope: HistoryScope,
        params: &SearchParams,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        let caller = &ctx.caller;
        // Whether every version in scope is visible, so the total tells nothing hidden.
        let mut whole = caller.is_unrestricted();
        let path = match &scope {
            HistoryScope::System => format!("{}/_history", ctx.base),
            HistoryScope::Type(t) => {
                self.known_type(t)?;
                whole |= matches!(self.reach(caller, t, Permission::Search, None)?, Reach::All);
                format!("{}/{t}/_history", ctx.base)
            }
            HistoryScope::Instance(t, id) => {
                self.known_type(t)?;
                whole |= match self.reach(caller, t, Permission::Read, None) {
                    Ok(reach) => matches!(reach, Reach::All),
                    // A Binary read through its security context: each version is checked.
                    Err(_) if crate::access::reads_by_context(caller, t) => false,
                    Err(e) => return Err(e),
                };
                match self.store.read(t, id)? {
                    Some(v) if !v.deleted && !whole => self.check_visible(caller, Permission::Read, &v)?,
                    // Nothing about a resource outside the caller's reach, not even that it exists.
                    None | Some(_) if !whole => return Err(crate::access::outside(t, id, Permission::Read)),
                    None => return Err(InteractionError::NotFound(t.clone(), id.clone())),
                    Some(_) => {}
                }
                format!("{}/{t}/{id}/_history", ctx.base)
            }
        };
        // A date of any precision is the period it names (`_at=2026`: the year).
        let period = |name: &str| -> Result<Option<(i64, i64)>, InteractionError> {
            match params.get(name) {
                None => Ok(None),
                Some(v) => parse_range(v).map(Some).ok_or_else(|| {
                    InteractionError::bad_request(
                        format!("{name} must be an instant, not '{v}'"),
                        format!("{name} の値 '{v}' は日時として不正です"),
                    )
                }),
            }
        };
        let count = match params.get("_count") {
            None => self.config.default_count,
            Some(c) => c.parse::<usize>().map_err(|_| {
                InteractionError::bad_request(
                    format!("_count must be a non-negative integer, not '{c}'"),
                    format!("_count は 0 以上の整数でなければなりません（'{c}'）"),
                )
            })?,
        }
        .min(self.config.max_count);
        let before_seq = crate::search::cursor(params)?;
        for (k, _) in &params.pairs {
            if !matches!(
                k.as_str(),
                "_count" | "_since" | "_at" | "_cursor" | "_format" | "_pretty" | "_list" | "_total"
            ) && ctx.strict
            {
                return Err(InteractionError::bad_request(
                    format!("history does not take the parameter '{k}'"),
                    format!("履歴の取得ではパラメータ '{k}' は使えません"),
                ));
            }
        }
        let since_ms = period("_since")?.map(|(from, _)| from);
        let max_page_bytes = self.config.limits.max_page_bytes;
        let max_bytes = ctx.page_cap(max_page_bytes);
        let q = HistoryQuery { scope, since_ms, at: period("_at")?, before_seq, count, max_bytes };
        let page = self.store.history(&q)?;
        ctx.spend(&page.versions)?;
        let mut versions = page.versions;
        // A page cut by its bytes goes on after its last version too; one left empty (a
        // Bundle's entries read before it) from where it started, in a request of its own.
        let full_page = (versions.len() == count && count > 0) || page.cut;
        let last_seq = versions.last().map(|v| v.seq).or(q.before_seq);
        // Counting every version of a type or the system reads them all: only when asked
        // (`_total`). One resource's versions are few.
        let total_asked = matches!(params.get("_total"), Some("accurate") | Some("estimate"))
            || matches!(q.scope, HistoryScope::Instance(..));
        let total = if whole && total_asked { Some(self.store.history_count(&q)?) } else { None };
        if !whole {
            versions.retain(|v| self.may_see_version(caller, Permission::Read, v));
        }
        let base_query: String = params
            .pairs
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut links =
            vec![json!({ "relation": "self", "url": format!("{path}?{base_query}").trim_end_matches('?') })];
        if full_page {
            let sep = if base_query.is_empty() { "" } else { "&" };
            let url = match last_seq {
                Some(last) => format!("{path}?{base_query}{sep}_cursor={last}"),
                None => format!("{path}?{base_query}").trim_end_matches('?').to_string(),
            };
            links.push(json!({ "relation": "next", "url": url }));
        }
        let mut entries = Vec::with_capacity(versions.len());
        for v in &versions {
            let url = full_url(ctx, &v.resource_type, &v.id);
            let request_url = match v.method {
                Method::Post => v.resource_type.clone(),
                _ => format!("{}/{}", v.resource_type, v.id),
            };
            let status = match (v.method, v.version) {
                (Method::Delete, _) => "204",
                (_, 1) => "201",
                _ => "200",
            };
            let mut entry = json!({
                "fullUrl": url,
                "request": { "method": v.method.as_str(), "url": request_url },
                "response": {
                    "status": status,
                    "etag": etag(v.version),
                    "lastModified": format_instant(v.last_updated_ms),
                }
            });
            if !v.deleted {
                let resource: Value = serde_json::from_slice(&v.body)
                    .map_err(|e| tsunagu_store::StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id)))?;
                entry["resource"] = resource;
            }
            entries.push(entry);
        }
        let _ = http_date;
        let mut bundle = json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": { "lastUpdated": format_instant(chrono::Utc::now().timestamp_millis()) },
            "type": "history",
            "link": links,
        });
        if let Some(t) = total {
            bundle["total"] = json!(t);
        }
        if !entries.is_empty() {
            bundle["entry"] = Value::Array(entries);
        }
        Ok(bundle)
    }
}
