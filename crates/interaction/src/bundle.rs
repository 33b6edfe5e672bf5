//! `transaction` and `batch` Bundles (R4 http.html §3.1.0.11).
//!
//! A transaction runs in one store write transaction: identities are resolved first (new
//! ids for POST, conditional matches), then every `urn:uuid:`/fullUrl reference and every
//! conditional reference (`Patient?identifier=…`) is rewritten, then the entries run in the
//! order the specification gives — DELETE, POST, PUT/PATCH, GET/HEAD — and the responses
//! come back in the order of the request. Any failure rolls everything back.
//! Conditional creates that create, and carry the same criteria, make one resource (the
//! first's), and a conditional reference with those criteria names it: the criteria are
//! evaluated before any entry runs, so each would otherwise find nothing.
//! A batch runs each entry on its own, each with its own response.

use crate::error::InteractionError;
use crate::resource::expect_resource;
use crate::search::{full_url, SearchParams};
use crate::write::{multiple_matches, Content, PatchBody};
use crate::{etag, instant, parse_etag, Interactions, RequestContext, ReturnPreference, Written};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use tsunagu_limits::{Limit, LimitExceeded};
use tsunagu_store::{HistoryScope, WriteTxn};

mod early;
mod searches;

use searches::BundleSearches;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    fn parse(method: &str) -> Option<Verb> {
        Some(match method {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "PATCH" => Verb::Patch,
            "DELETE" => Verb::Delete,
            _ => return None,
        })
    }

    /// Processing order within a transaction.
    fn rank(self) -> u8 {
        match self {
            Verb::Delete => 0,
            Verb::Post => 1,
            Verb::Put | Verb::Patch => 2,
            Verb::Get | Verb::Head => 3,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    verb: Verb,
    ty: String,
    /// Path segments after the type (`[id]`, `[id, _history, vid]`, `[_history]`).
    rest: Vec<String>,
    criteria: Option<String>,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<u64>,
    /// The id a POST, or a conditional PUT that matches nothing and names none, gets if it
    /// creates; chosen before the write transaction.
    new_id: Option<String>,
    /// The id references to this entry were rewritten with before the transaction (see
    /// [`Interactions::early_id`]); `process` extracts their entries again when the
    /// transaction decides another.
    early_id: Option<String>,
    /// The index entries of the resource as rewritten before the transaction (references
    /// to entries whose id was already known), extracted outside the write lock; dropped
    /// when the rewriting inside the transaction replaces a reference those did not know.
    /// (Extraction ignores `id`, which an update sets afterwards.)
    early: Option<Vec<tsunagu_store::IndexEntry>>,
}

/// What the identity pass decided for an entry.
#[derive(Debug, Clone)]
enum Plan {
    Create(String),
    Exists(tsunagu_store::ResourceVersion),
    /// A conditional create whose criteria an earlier POST of this transaction already
    /// carries and creates by: the resource that one creates, with the id given.
    CreatedByEarlier(String),
    Update(String),
    Delete(Option<String>),
    Patch(String),
    Read,
}

fn entry_error(index: usize, e: InteractionError) -> InteractionError {
    match e {
        InteractionError::Entry { .. } => e,
        e => InteractionError::Entry { index, source: Box::new(e) },
    }
}

/// R4 bdl-7: a fullUrl names one entry, unless the entries are versions of one resource
/// (different `meta.versionId`). Two entries under one fullUrl would make references to it
/// ambiguous: which resource a `urn:uuid:` names.
fn unique_full_urls(map: &Map<String, Value>) -> Result<(), InteractionError> {
    let mut seen: HashSet<(&str, Option<&str>)> = HashSet::new();
    for (i, e) in map.get("entry").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let Some(url) = e.get("fullUrl").and_then(Value::as_str) else { continue };
        let version = e.pointer("/resource/meta/versionId").and_then(Value::as_str);
        if !seen.insert((url, version)) {
            return Err(bad(
                i,
                format!("fullUrl '{url}' is that of an earlier entry too (bdl-7: a fullUrl names one entry)"),
                format!("fullUrl '{url}' は前のエントリと重複しています（bdl-7: fullUrl は 1 つのエントリを指します）"),
            ));
        }
    }
    Ok(())
}

fn bad(index: usize, en: String, ja: String) -> InteractionError {
    entry_error(index, InteractionError::BadRequest { en, ja })
}

impl Interactions {
    /// `POST /` with a Bundle of type `transaction` or `batch`.
    pub fn bundle(&self, body: Value, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let map = expect_resource("Bundle", body)?;
        self.check_entry_count(&map)?;
        if matches!(map.get("type").and_then(Value::as_str), Some("transaction" | "batch")) {
            unique_full_urls(&map)?;
        }
        self.check_bundle_conditions(&map, &ctx.base)?;
        match map.get("type").and_then(Value::as_str) {
            // A transaction is checked whole: one bad entry fails it anyway.
            Some("transaction") => self.transaction(self.checked_resource("Bundle", Value::Object(map))?, ctx),
            // A batch's entries are checked one by one, each failing on its own.
            Some("batch") => Ok(self.batch(map, ctx)),
            other => Err(InteractionError::bad_request(
                format!("POST to the base needs a transaction or batch Bundle, not {}", other.unwrap_or("(none)")),
                format!(
                    "ベース URL への POST には transaction か batch の Bundle が必要です（{}）",
                    other.unwrap_or("なし")
                ),
            )),
        }
    }

    /// Counted before anything in the Bundle is checked or run: a transaction holds the
    /// write lock to its commit, so its size is what other writers wait for.
    fn check_entry_count(&self, map: &Map<String, Value>) -> Result<(), InteractionError> {
        let entries = map.get("entry").and_then(Value::as_array).map_or(0, Vec::len);
        let max = self.config.limits.max_bundle_entries;
        if entries <= max {
            return Ok(());
        }
        Err(LimitExceeded::new(Limit::BundleEntries, max)
            .found(entries)
            .hint(
                "Send it as several Bundles, or load large sets with `tsunagu import`",
                "複数の Bundle に分けて送るか、大量のデータは `tsunagu import` で取り込んでください",
            )
            .into())
    }

    fn transaction(&self, map: Map<String, Value>, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let mut entries = parse_entries(map, ctx)?;
        let guesses = self.extract_early(&mut entries, ctx);
        let mut searches = BundleSearches::new(&self.config.limits);
        let responses = crate::access_txn::in_request_txn(self, ctx, |txn| {
            self.process(txn, entries, &guesses, &mut searches, ctx, true)
        })?;
        Ok(response_bundle("transaction-response", responses))
    }

    fn batch(&self, map: Map<String, Value>, ctx: &RequestContext) -> Value {
        let mut map = map;
        let raw = match map.remove("entry") {
            Some(Value::Array(entries)) => entries,
            _ => Vec::new(),
        };
        let mut responses = Vec::with_capacity(raw.len());
        // One budget for the whole batch: its entries are one request.
        let mut searches = BundleSearches::new(&self.config.limits);
        for (index, e) in raw.into_iter().enumerate() {
            let result = parse_entry(index, e, ctx).and_then(|mut entry| {
                if matches!(entry.verb, Verb::Post | Verb::Put) {
                    if let Some(r) = entry.resource.take() {
                        entry.resource = Some(Value::Object(self.checked_resource(&entry.ty, r)?));
                    }
                }
                let mut entries = vec![entry];
                let guesses = self.extract_early(&mut entries, ctx);
                searches.forget_matches();
                crate::access_txn::in_request_txn(self, ctx, |txn| {
                    self.process(txn, entries, &guesses, &mut searches, ctx, false)
                })
                .map(|mut r| r.pop().unwrap_or(Value::Null))
            });
            responses.push(match result {
                Ok(r) => r,
                Err(e) => {
                    // The entry's own error: "transaction entry N failed, nothing was
                    // written" is not what happened to a batch.
                    let e = match e {
                        InteractionError::Entry { source, .. } => *source,
                        e => e,
                    };
                    let status = e.status();
                    json!({ "response": {
                        "status": status_line(status),
                        "outcome": crate::outcome::operation_outcome(&e, ctx.lang),
                    }})
                }
            });
        }
        response_bundle("batch-response", responses)
    }

    /// Resolves identities, rewrites references and runs the entries inside `txn`.
    fn process(
        &self,
        txn: &mut dyn WriteTxn,
        mut entries: Vec<Entry>,
        guesses: &HashMap<String, String>,
        searches: &mut BundleSearches,
        ctx: &RequestContext,
        transaction: bool,
    ) -> Result<Vec<Value>, InteractionError> {
        // 1. Identities.
        let mut ids: HashMap<String, String> = HashMap::new();
        // Full URLs whose id the transaction decided otherwise than the early extraction
        // assumed (or could not foresee): entries referring to them are extracted again.
        let mut late: HashSet<String> = HashSet::new();
        let mut plans = Vec::with_capacity(entries.len());
        let mut written: HashSet<(String, String)> = HashSet::new();
        // Conditional creates that create, by type and criteria: a second entry with the
        // same criteria names the resource the first creates (as if the entries ran one
        // after the other), not a duplicate of it.
        let mut creating: HashMap<(String, Vec<(String, String)>), String> = HashMap::new();
        for e in &entries {
            let key = match (&e.if_none_exist, e.verb, transaction) {
                (Some(cond), Verb::Post, true) => {
                    crate::conditional::criteria_key(&e.ty, cond).map(|pairs| (e.ty.clone(), pairs))
                }
                _ => None,
            };
            // The criteria an earlier entry creates by are not searched again.
            let plan = match key.as_ref().and_then(|k| creating.get(k)) {
                Some(first) => {
                    self.check_entry(e, ctx).map_err(|err| entry_error(e.index, err))?;
                    Plan::CreatedByEarlier(first.clone())
                }
                None => self.plan(txn, searches, e, ctx).map_err(|err| entry_error(e.index, err))?,
            };
            if let (Plan::Create(id), Some(key)) = (&plan, key) {
                creating.insert(key, id.clone());
            }
            let target = match &plan {
                Plan::Create(id) | Plan::Update(id) | Plan::Patch(id) | Plan::Delete(Some(id)) => Some(id.clone()),
                Plan::Exists(tsunagu_store::ResourceVersion { id, .. }) | Plan::CreatedByEarlier(id) => {
                    if let Some(f) = &e.full_url {
                        ids.insert(f.clone(), format!("{}/{id}", e.ty));
                        if e.early_id.as_deref() != Some(id.as_str()) {
                            late.insert(f.clone());
                        }
                    }
                    None
                }
                _ => None,
            };
            if let Some(id) = target {
                if !written.insert((e.ty.clone(), id.clone())) {
                    return Err(bad(
                        e.index,
                        format!("{}/{id} is the target of more than one entry", e.ty),
                        format!("{}/{id} が複数のエントリの対象になっています", e.ty),
                    ));
                }
                if let (Some(f), Verb::Post | Verb::Put) = (&e.full_url, e.verb) {
                    ids.insert(f.clone(), format!("{}/{id}", e.ty));
                    if e.early_id.as_deref() != Some(id.as_str()) {
                        late.insert(f.clone());
                    }
                }
            }
            plans.push(plan);
        }
        // 2. References.
        for e in entries.iter_mut() {
            if let Some(resource) = e.resource.as_mut() {
                let mut failure = None;
                let mut unknown_early = false;
                rewrite_references(resource, &mut |reference| {
                    if let Some(to) = ids.get(reference) {
                        unknown_early |= late.contains(reference);
                        return Some(to.clone());
                    }
                    if !transaction {
                        // In a batch, entries are independent: only conditional references resolve.
                        if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
                            return None;
                        }
                    }
                    let (ty, query) = self.conditional_reference(reference)?;
                    // Criteria a conditional create of this transaction creates by name
                    // what it creates (an existing match would have made it no create).
                    let created = (!creating.is_empty())
                        .then(|| crate::conditional::criteria_key(ty, query))
                        .flatten()
                        .and_then(|key| creating.get(&(ty.to_string(), key)));
                    if let Some(id) = created {
                        let target = format!("{ty}/{id}");
                        unknown_early |= guesses.get(reference) != Some(&target);
                        return Some(target);
                    }
                    match self.bundle_matches(txn, searches, ty, query) {
                        Ok(m) if m.len() == 1 => {
                            let target = format!("{ty}/{}", m[0].1);
                            unknown_early |= guesses.get(reference) != Some(&target);
                            Some(target)
                        }
                        Ok(m) => {
                            failure.get_or_insert_with(|| {
                                if m.is_empty() {
                                    InteractionError::precondition(
                                        format!("the conditional reference '{reference}' matches nothing"),
                                        format!("条件付き参照 '{reference}' に一致するリソースがありません"),
                                    )
                                } else {
                                    multiple_matches(ty, query)
                                }
                            });
                            None
                        }
                        Err(err) => {
                            failure.get_or_insert(err);
                            None
                        }
                    }
                });
                if let Some(err) = failure {
                    return Err(entry_error(e.index, err));
                }
                if unknown_early {
                    e.early = None;
                }
            }
        }
        // 3. Execution in the specified order. From here on, entries change what criteria match.
        searches.forget_matches();
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].verb.rank());
        let mut responses: Vec<Value> = vec![Value::Null; entries.len()];
        for i in order {
            let e = &mut entries[i];
            let index = e.index;
            let r = self.execute(txn, searches, e, &plans[i], ctx).map_err(|err| entry_error(index, err))?;
            responses[i] = r;
        }
        Ok(responses)
    }

    /// What every entry is checked for before its plan: a known type, and the caller's
    /// permissions for its interaction.
    fn check_entry(&self, e: &Entry, ctx: &RequestContext) -> Result<(), InteractionError> {
        // A read at system level (a search across types, `_history`, `$op`) names no type:
        // what it reads is checked as it reads.
        if matches!(e.verb, Verb::Get | Verb::Head) && system_level(&e.ty) {
            return Ok(());
        }
        self.known_type(&e.ty)?;
        self.check_entry_permissions(e, ctx)
    }

    fn plan(
        &self,
        txn: &mut dyn WriteTxn,
        searches: &mut BundleSearches,
        e: &Entry,
        ctx: &RequestContext,
    ) -> Result<Plan, InteractionError> {
        self.check_entry(e, ctx)?;
        let id_in_url = e.rest.first().cloned();
        Ok(match e.verb {
            Verb::Post => {
                if let Some(cond) = &e.if_none_exist {
                    let m = self.bundle_matches(txn, searches, &e.ty, cond)?;
                    if let Some(existing) = self.one_for_create(txn, &e.ty, cond, &m)? {
                        return Ok(Plan::Exists(existing));
                    }
                }
                Plan::Create(e.new_id.clone().unwrap_or_else(crate::resource::new_id))
            }
            Verb::Put => match (&e.criteria, id_in_url) {
                (Some(c), _) => {
                    let m = self.bundle_matches(txn, searches, &e.ty, c)?;
                    let body_id = e.resource.as_ref().and_then(|r| r.get("id")).and_then(Value::as_str);
                    match m.as_slice() {
                        [] => Plan::Update(
                            body_id
                                .map(str::to_string)
                                .or_else(|| e.new_id.clone())
                                .unwrap_or_else(crate::resource::new_id),
                        ),
                        [(_, id)] => Plan::Update(id.clone()),
                        _ => return Err(multiple_matches(&e.ty, c)),
                    }
                }
                (None, Some(id)) => {
                    self.check_id(&id)?;
                    Plan::Update(id)
                }
                (None, None) => {
                    return Err(InteractionError::bad_request(
                        "PUT needs an id or criteria in request.url",
                        "PUT の request.url には id か条件が必要です",
                    ))
                }
            },
            Verb::Delete => match (&e.criteria, id_in_url) {
                (Some(c), _) => {
                    let m = self.bundle_matches(txn, searches, &e.ty, c)?;
                    match m.as_slice() {
                        [] => Plan::Delete(None),
                        [(_, id)] => Plan::Delete(Some(id.clone())),
                        _ => return Err(multiple_matches(&e.ty, c)),
                    }
                }
                (None, Some(id)) => Plan::Delete(Some(id)),
                (None, None) => {
                    return Err(InteractionError::bad_request(
                        "DELETE needs an id or criteria in request.url",
                        "DELETE の request.url には id か条件が必要です",
                    ))
                }
            },
            Verb::Patch => match (&e.criteria, id_in_url) {
                (Some(c), _) => {
                    let m = self.bundle_matches(txn, searches, &e.ty, c)?;
                    match m.as_slice() {
                        [(_, id)] => Plan::Patch(id.clone()),
                        [] => return Err(InteractionError::NotFound(e.ty.clone(), c.clone())),
                        _ => return Err(multiple_matches(&e.ty, c)),
                    }
                }
                (None, Some(id)) => Plan::Patch(id),
                (None, None) => {
                    return Err(InteractionError::bad_request(
                        "PATCH needs an id or criteria in request.url",
                        "PATCH の request.url には id か条件が必要です",
                    ))
                }
            },
            Verb::Get | Verb::Head => Plan::Read,
        })
    }

    /// What the entry's interaction needs of the caller's scopes whatever it finds, as the
    /// same interaction checks over REST before reading anything: a conditional create that
    /// finds its match writes nothing, yet it is a create, and its criteria a search. What a
    /// write may reach is checked again when it is written (`access_txn`).
    fn check_entry_permissions(&self, e: &Entry, ctx: &RequestContext) -> Result<(), InteractionError> {
        let (needed, conditional) = match e.verb {
            Verb::Post => (Some(crate::Permission::Create), e.if_none_exist.is_some()),
            // Create or update, as the match decides: checked when written.
            Verb::Put => (None, e.criteria.is_some()),
            Verb::Delete => (Some(crate::Permission::Delete), e.criteria.is_some()),
            Verb::Patch => (Some(crate::Permission::Update), e.criteria.is_some()),
            Verb::Get | Verb::Head => (None, false),
        };
        if let Some(p) = needed {
            self.check_permission(&ctx.caller, &e.ty, p)?;
        }
        if conditional {
            self.check_permission(&ctx.caller, &e.ty, crate::Permission::Search)?;
        }
        Ok(())
    }

    fn execute(
        &self,
        txn: &mut dyn WriteTxn,
        searches: &mut BundleSearches,
        e: &mut Entry,
        plan: &Plan,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        let written = |w: Written| written_response(&w, ctx);
        match plan {
            Plan::Create(id) => {
                let index = e.early.take();
                let map = expect_resource(&e.ty, e.resource.take().unwrap_or(Value::Null))?;
                let version =
                    self.put_version(txn, &e.ty, id, 1, tsunagu_store::Method::Post, Content::with_index(map, index))?;
                Ok(written(Written { version, created: true, existing: false, unchanged: false }))
            }
            Plan::Exists(v) => {
                Ok(written(Written { version: v.clone(), created: false, existing: true, unchanged: false }))
            }
            Plan::CreatedByEarlier(id) => {
                // POSTs run in entry order, so the earlier entry has written it.
                let version =
                    txn.current(&e.ty, id)?.ok_or_else(|| InteractionError::NotFound(e.ty.clone(), id.clone()))?;
                Ok(written(Written { version, created: false, existing: true, unchanged: false }))
            }
            Plan::Update(id) => {
                let index = e.early.take();
                let mut map = expect_resource(&e.ty, e.resource.take().unwrap_or(Value::Null))?;
                match map.get("id").and_then(Value::as_str) {
                    Some(body_id) if body_id != id => {
                        return Err(InteractionError::bad_request(
                            format!("the resource id '{body_id}' differs from '{id}' in request.url"),
                            format!("リソースの id '{body_id}' が request.url の '{id}' と一致しません"),
                        ))
                    }
                    _ => {
                        map.insert("id".into(), Value::String(id.clone()));
                    }
                }
                Ok(written(self.update_in(
                    txn,
                    &e.ty,
                    id,
                    Content::with_index(map, index),
                    e.if_match,
                    tsunagu_store::Method::Put,
                )?))
            }
            Plan::Delete(id) => {
                let w = match id {
                    Some(id) => self.delete_in(txn, &e.ty, id, e.if_match)?,
                    None => None,
                };
                Ok(match w {
                    Some(w) => json!({ "response": {
                        "status": "204 No Content",
                        "etag": etag(w.version.version),
                        "lastModified": instant::format_instant(w.version.last_updated_ms),
                    }}),
                    None => json!({ "response": { "status": "204 No Content" } }),
                })
            }
            Plan::Patch(id) => {
                let patch = patch_from_resource(e.resource.as_ref())?;
                Ok(written(self.patch_in(txn, &e.ty, id, &patch, e.if_match, None)?))
            }
            // A read under the lock: its searches count with the Bundle's others.
            Plan::Read => searches.charge(|left| {
                let ctx = &RequestContext { search_ms_cap: left, ..ctx.clone() };
                self.execute_read(txn, e, ctx)
            }),
        }
    }

    fn execute_read(&self, txn: &mut dyn WriteTxn, e: &Entry, ctx: &RequestContext) -> Result<Value, InteractionError> {
        // The Bundle's read entries share one `max_page_bytes`: nothing is read past it.
        let max_page_bytes = self.config.limits.max_page_bytes;
        ctx.check_room(max_page_bytes)?;
        let params = SearchParams::parse(e.criteria.as_deref().unwrap_or(""));
        let rest: Vec<&str> = e.rest.iter().map(String::as_str).collect();
        let read = |resource: Value| {
            let mut out = json!({ "response": { "status": "200 OK" } });
            if e.verb == Verb::Get {
                out["resource"] = resource;
            }
            out
        };
        match (e.ty.as_str(), rest.as_slice()) {
            ("", []) => return Ok(read(self.search(None, &params, ctx)?)),
            ("_history", []) => return Ok(read(self.history(HistoryScope::System, &params, ctx)?)),
            ("metadata", []) => {
                return match self.capability_statement(&ctx.base, params.get("mode")) {
                    Some(cs) => {
                        let cs = cs?;
                        // Hundreds of kilobytes each: a Bundle of them must not pass the bound.
                        ctx.spend_bytes(json_bytes(&cs))?;
                        Ok(read(cs))
                    }
                    None => Err(InteractionError::bad_request(
                        "metadata is answered by a server only",
                        "metadata はサーバだけが応答します",
                    )),
                };
            }
            // The one system-level operation, `$export`, answers through a status URL.
            (op, []) if op.starts_with('$') => {
                return Err(InteractionError::bad_request(
                    format!(
                        "{op} is not an operation a Bundle entry can invoke (system-level operations are asynchronous)"
                    ),
                    format!(
                        "{op} は Bundle のエントリで呼び出せる操作ではありません（システムレベルの操作は非同期です）"
                    ),
                ))
            }
            _ => {}
        }
        if let Some((op, id)) = crate::operations::entry_operation(&e.ty, &rest) {
            // Operations that change nothing, as GET would invoke them; they read
            // committed data, not this Bundle's earlier entries.
            if !op.get {
                return Err(InteractionError::bad_request(
                    format!("${} cannot be invoked by a GET entry", op.name),
                    format!("${} は GET エントリでは呼び出せません", op.name),
                ));
            }
            let invocation = crate::operations::Invocation { ty: Some(&e.ty), id, params: &params, body: None };
            let out = self.invoke(op, &invocation, ctx)?;
            // A searchset counted what it read; any other answer (an expansion, a
            // document) counts as it is.
            if op.output != crate::operations::Output::Searchset {
                ctx.spend_bytes(json_bytes(&out))?;
            }
            return Ok(read(out));
        }
        let (resource, version) = match rest.as_slice() {
            ["_history"] => (self.history(HistoryScope::Type(e.ty.clone()), &params, ctx)?, None),
            [id] => match txn.current(&e.ty, id)? {
                None => return Err(InteractionError::NotFound(e.ty.clone(), id.to_string())),
                Some(v) if v.deleted => return Err(InteractionError::Gone(e.ty.clone(), id.to_string())),
                Some(v) => {
                    self.check_visible(&ctx.caller, crate::Permission::Read, &v)?;
                    ctx.spend_one(max_page_bytes, &v)?;
                    (parse_body(&v)?, Some(v))
                }
            },
            [id, "_history", vid] => {
                let v = self.vread(&e.ty, id, vid, ctx)?;
                ctx.spend_one(max_page_bytes, &v)?;
                (parse_body(&v)?, Some(v))
            }
            [id, "_history"] => {
                (self.history(HistoryScope::Instance(e.ty.clone(), id.to_string()), &params, ctx)?, None)
            }
            [] => (self.search(Some(&e.ty), &params, ctx)?, None),
            _ => {
                return Err(InteractionError::bad_request(
                    format!("cannot read '{}'", e.rest.join("/")),
                    format!("'{}' は読み取れません", e.rest.join("/")),
                ))
            }
        };
        let mut out = read(resource);
        if let Some(v) = &version {
            out["response"]["etag"] = json!(etag(v.version));
            out["response"]["lastModified"] = json!(instant::format_instant(v.last_updated_ms));
            out["fullUrl"] = json!(full_url(ctx, &v.resource_type, &v.id));
        }
        Ok(out)
    }
}

/// The bytes of `v` as compact JSON, counted without keeping them.
fn json_bytes(v: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// Whether an entry's first segment is a system-level read rather than a type: none (a
/// search across types), `_history`, `metadata` or `$op`.
fn system_level(ty: &str) -> bool {
    ty.is_empty() || ty == "_history" || ty == "metadata" || ty.starts_with('$')
}

fn parse_body(v: &tsunagu_store::ResourceVersion) -> Result<Value, InteractionError> {
    serde_json::from_slice(&v.body)
        .map_err(|e| tsunagu_store::StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id)).into())
}

/// A PATCH entry carries a Binary (JSON Patch, base64) or a Parameters (FHIRPath Patch).
fn patch_from_resource(resource: Option<&Value>) -> Result<PatchBody, InteractionError> {
    let r = resource.ok_or_else(|| {
        InteractionError::bad_request("a PATCH entry needs a resource", "PATCH のエントリにはリソースが必要です")
    })?;
    match r.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => Ok(PatchBody::FhirPath(r.clone())),
        Some("Binary") => {
            let data = r.get("data").and_then(Value::as_str).unwrap_or("");
            let bytes = base64_decode(data).ok_or_else(|| {
                InteractionError::bad_request("Binary.data is not base64", "Binary.data が base64 ではありません")
            })?;
            let ops: Value = tsunagu_format::json_from_slice(&bytes).map_err(|e| {
                InteractionError::bad_request(
                    format!("JSON Patch is not JSON: {e}"),
                    format!("JSON Patch が JSON ではありません: {e}"),
                )
            })?;
            Ok(PatchBody::Json(ops))
        }
        _ => Err(InteractionError::bad_request(
            "a PATCH entry needs a Parameters (FHIRPath Patch) or Binary (JSON Patch) resource",
            "PATCH のエントリには Parameters（FHIRPath Patch）か Binary（JSON Patch）が必要です",
        )),
    }
}

/// Standard base64 (RFC 4648) decoding. Hand-written: it is the only use of base64 here,
/// twenty lines, and not worth a dependency.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn written_response(w: &Written, ctx: &RequestContext) -> Value {
    let v = &w.version;
    let status = if w.created { "201 Created" } else { "200 OK" };
    let mut out = json!({
        "fullUrl": full_url(ctx, &v.resource_type, &v.id),
        "response": {
            "status": status,
            "location": format!("{}/{}/_history/{}", v.resource_type, v.id, v.version),
            "etag": etag(v.version),
            "lastModified": instant::format_instant(v.last_updated_ms),
        }
    });
    match ctx.return_pref {
        ReturnPreference::Representation => {
            if let Ok(r) = serde_json::from_slice::<Value>(&v.body) {
                out["resource"] = r;
            }
        }
        ReturnPreference::OperationOutcome => {
            out["response"]["outcome"] = crate::outcome::information("Done", "完了しました", ctx.lang);
        }
        ReturnPreference::Minimal => {}
    }
    out
}

fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{status} {reason}")
}

fn response_bundle(kind: &str, responses: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": kind,
        "entry": responses,
    })
}

/// Calls `f` on every `Reference.reference` in a resource (nested resources included) and
/// replaces the value when `f` returns a new one.
pub(crate) fn rewrite_references(v: &mut Value, f: &mut dyn FnMut(&str) -> Option<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference" {
                    if let Value::String(s) = child {
                        if let Some(new) = f(s) {
                            *s = new;
                        }
                        continue;
                    }
                }
                rewrite_references(child, f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_references(i, f)),
        _ => {}
    }
}

/// An entry's `request.url` as its path (from the type on, this server's base taken off)
/// and its query string.
fn request_target<'u>(url: &'u str, base: &str) -> (&'u str, Option<&'u str>) {
    let url = url.strip_prefix(base).and_then(|u| u.strip_prefix('/')).unwrap_or(url).trim_start_matches('/');
    match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    }
}

/// Calls `f` on every `Reference.reference` in a resource (nested resources included).
fn visit_references(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match child {
                    Value::String(s) if k == "reference" => f(s),
                    _ => visit_references(child, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| visit_references(i, f)),
        _ => {}
    }
}

/// The Bundle's entries, their resources moved out of it (a large Bundle is not copied).
fn parse_entries(mut map: Map<String, Value>, ctx: &RequestContext) -> Result<Vec<Entry>, InteractionError> {
    let raw = match map.remove("entry") {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    raw.into_iter().enumerate().map(|(i, e)| parse_entry(i, e, ctx)).collect()
}

fn parse_entry(index: usize, mut e: Value, ctx: &RequestContext) -> Result<Entry, InteractionError> {
    let resource = e.as_object_mut().and_then(|o| o.remove("resource"));
    let req = e
        .get("request")
        .ok_or_else(|| bad(index, "the entry has no request".into(), "エントリに request がありません".into()))?;
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let Some(verb) = Verb::parse(method) else {
        return Err(bad(
            index,
            format!("unknown request.method '{method}'"),
            format!("request.method '{method}' は不明です"),
        ));
    };
    let url = req.get("url").and_then(Value::as_str).unwrap_or("");
    if !crate::search::decodes_as_utf8(url) {
        return Err(entry_error(index, crate::search::not_utf8()));
    }
    let (path, query) = request_target(url, &ctx.base);
    // An absolute URL not under this server's base names nothing here.
    if path.contains("://") || path.starts_with("urn:") {
        return Err(bad(
            index,
            format!("request.url '{url}' is not on this server ({})", ctx.base),
            format!("request.url '{url}' はこのサーバ（{}）の URL ではありません", ctx.base),
        ));
    }
    let query = query.map(str::to_string);
    let mut segments = path.split('/').filter(|s| !s.is_empty()).map(str::to_string);
    // A search across types (`?_type=…`) names none.
    let system_search = matches!(verb, Verb::Get | Verb::Head) && query.is_some();
    let Some(ty) = segments.next().or_else(|| system_search.then(String::new)) else {
        return Err(bad(
            index,
            "request.url names no resource type".into(),
            "request.url にリソースタイプがありません".into(),
        ));
    };
    let rest: Vec<String> = segments.collect();
    if matches!(verb, Verb::Post | Verb::Put) && resource.is_none() {
        return Err(bad(
            index,
            format!("a {method} entry needs a resource"),
            format!("{method} のエントリにはリソースが必要です"),
        ));
    }
    if matches!(verb, Verb::Post | Verb::Put) {
        if let Some(rt) = resource.as_ref().and_then(|r| r.get("resourceType")).and_then(Value::as_str) {
            if rt != ty {
                return Err(bad(
                    index,
                    format!("request.url names {ty} but the resource is a {rt}"),
                    format!("request.url は {ty} ですが、リソースは {rt} です"),
                ));
            }
        }
    }
    let if_match = match req.get("ifMatch").and_then(Value::as_str) {
        None => None,
        Some(s) => Some(parse_etag(s).ok_or_else(|| {
            bad(index, format!("ifMatch '{s}' is not an ETag"), format!("ifMatch '{s}' は ETag として不正です"))
        })?),
    };
    Ok(Entry {
        index,
        verb,
        ty,
        rest,
        criteria: query,
        full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
        resource,
        if_none_exist: req.get("ifNoneExist").and_then(Value::as_str).map(str::to_string),
        if_match,
        new_id: None,
        early_id: None,
        early: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_statuses_carry_their_reason_phrase() {
        assert_eq!(status_line(403), "403 Forbidden");
        assert_eq!(status_line(413), "413 Content Too Large");
        assert_eq!(status_line(299), "299 Error");
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("W10=").unwrap(), b"[]");
        assert!(base64_decode("@@").is_none());
    }

    #[test]
    fn references_are_rewritten_everywhere() {
        let mut r = json!({"subject": {"reference": "urn:uuid:1"}, "contained": [{"x": {"reference": "urn:uuid:1"}}],
                            "identifier": [{"value": "urn:uuid:1"}]});
        rewrite_references(&mut r, &mut |s| (s == "urn:uuid:1").then(|| "Patient/9".to_string()));
        assert_eq!(r["subject"]["reference"], "Patient/9");
        assert_eq!(r["contained"][0]["x"]["reference"], "Patient/9");
        assert_eq!(r["identifier"][0]["value"], "urn:uuid:1");
    }
}
