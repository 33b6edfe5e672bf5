//! Reading the audit trail through the API: `GET AuditEvent/[id]` and `GET AuditEvent?…`
//! over the store's audit chain (which is not the resource table, so AuditEvents never
//! appear in other searches, histories or compartments). Searchable by `date`, `agent`,
//! `patient`, `entity`, `subtype`, `outcome` and `_id`, newest first. Only callers with a
//! scope naming AuditEvent reach them; a `patient/` scope sees its own patient's.

use serde_json::{json, Value};
use tsunagu_auth::Permission;
use tsunagu_store::{AuditQuery, AuditRecord};

use crate::access::Reach;
use crate::error::InteractionError;
use crate::search::{full_url, SearchParams};
use crate::{Interactions, RequestContext};

/// The type served from the audit chain, never from the resource table.
pub(crate) const TYPE: &str = "AuditEvent";

impl Interactions {
    /// `GET AuditEvent/[id]`.
    pub fn audit_event(&self, id: &str, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let mut q = AuditQuery { id: Some(id.to_string()), count: 1, ..Default::default() };
        self.confine_audit(ctx, Permission::Read, &mut q)?;
        let found = self.store.audit_search(&q)?;
        let record = found.first().ok_or_else(|| InteractionError::NotFound(TYPE.into(), id.into()))?;
        body(record)
    }

    /// `GET AuditEvent?…`: one page of a `searchset` Bundle.
    pub fn audit_events(&self, params: &SearchParams, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let mut q = AuditQuery { count: self.config.default_count, ..Default::default() };
        for (name, value) in &params.pairs {
            self.audit_param(&mut q, name, value)?;
        }
        self.confine_audit(ctx, Permission::Search, &mut q)?;
        let mut records = self.store.audit_search(&q)?;
        let more = records.len() > q.count;
        records.truncate(q.count);
        let path = format!("{}/{TYPE}", ctx.base);
        let query: Vec<String> =
            params.pairs.iter().filter(|(k, _)| k != "_cursor").map(|(k, v)| format!("{k}={v}")).collect();
        let query = query.join("&");
        let mut links = vec![json!({ "relation": "self", "url": format!("{path}?{query}") })];
        if let (true, Some(last)) = (more, records.last()) {
            let sep = if query.is_empty() { "" } else { "&" };
            links.push(json!({ "relation": "next", "url": format!("{path}?{query}{sep}_cursor={}", last.n) }));
        }
        let entries: Vec<Value> = records
            .iter()
            .map(|r| {
                Ok(json!({ "fullUrl": full_url(ctx, TYPE, &r.id), "resource": body(r)?, "search": { "mode": "match" } }))
            })
            .collect::<Result<_, InteractionError>>()?;
        let mut bundle = json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": { "lastUpdated": crate::instant::format_instant(chrono::Utc::now().timestamp_millis()) },
            "type": "searchset",
            "link": links,
        });
        if !entries.is_empty() {
            bundle["entry"] = Value::Array(entries);
        }
        Ok(bundle)
    }

    fn confine_audit(&self, ctx: &RequestContext, p: Permission, q: &mut AuditQuery) -> Result<(), InteractionError> {
        let caller = &ctx.caller;
        if let Reach::All = self.reach(caller, TYPE, p, None)? {
            return Ok(());
        }
        // Only a patient's own trail, and only when nothing but the compartment restricts.
        match caller.patient() {
            Some(pid) if matches!(self.reach(caller, TYPE, p, Some(pid))?, Reach::All) => {
                q.patient = Some(format!("Patient/{pid}"));
                Ok(())
            }
            _ => Err(crate::access::denied(TYPE, p)),
        }
    }

    fn audit_param(&self, q: &mut AuditQuery, name: &str, value: &str) -> Result<(), InteractionError> {
        let bad = || {
            InteractionError::bad_request(
                format!("AuditEvent search: '{name}={value}' is not understood"),
                format!("AuditEvent の検索: '{name}={value}' は解釈できません"),
            )
        };
        let token = |v: &str| v.rsplit('|').next().unwrap_or(v).to_string();
        match name {
            "_id" => q.id = Some(value.to_string()),
            "agent" | "who" => q.agent = Some(token(value)),
            "patient" => {
                let p = value.rsplit_once("Patient/").map_or(value, |(_, id)| id);
                q.patient = Some(format!("Patient/{p}"));
            }
            "entity" => q.entity = Some(value.to_string()),
            "subtype" => q.subtype = Some(token(value)),
            "outcome" => q.outcome = Some(token(value)),
            "date" => {
                let (prefix, rest) = match value.get(..2) {
                    Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &value[2..]),
                    _ => ("eq", value),
                };
                let (lo, hi) = crate::instant::parse_range(rest).ok_or_else(bad)?;
                let (since, until) = match prefix {
                    "ge" => (Some(lo), None),
                    "gt" => (Some(hi), None),
                    "le" => (None, Some(hi)),
                    "lt" => (None, Some(lo)),
                    _ => (Some(lo), Some(hi)),
                };
                if let Some(s) = since {
                    q.since_ms = Some(q.since_ms.map_or(s, |x| x.max(s)));
                }
                if let Some(u) = until {
                    q.until_ms = Some(q.until_ms.map_or(u, |x| x.min(u)));
                }
            }
            "_count" => q.count = value.parse::<usize>().map_err(|_| bad())?.min(self.config.max_count),
            "_cursor" => q.before_n = Some(value.parse().map_err(|_| bad())?),
            "_format" | "_pretty" | "_summary" | "_elements" => {}
            _ => {
                return Err(InteractionError::bad_request(
                    format!(
                        "AuditEvent is searched by date, agent, patient, entity, subtype, outcome and _id, not '{name}'"
                    ),
                    format!("AuditEvent の検索パラメータは date・agent・patient・entity・subtype・outcome・_id です（'{name}' は使えません）"),
                ))
            }
        }
        Ok(())
    }
}

fn body(r: &AuditRecord) -> Result<Value, InteractionError> {
    serde_json::from_slice(&r.body)
        .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(format!("AuditEvent/{}: {e}", r.id))))
}
