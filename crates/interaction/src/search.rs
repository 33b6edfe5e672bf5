//! The search interaction: parameters parsed by `tsunagu-search`, run by the store, and
//! shaped into a `searchset` Bundle with paging links, `_include`/`_revinclude` entries,
//! totals and an outcome entry for ignored parameters. Also compartment search and
//! `Patient/$everything`.

use crate::error::InteractionError;
use crate::instant::format_instant;
use crate::{Interactions, RequestContext};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use tsunagu_search::{parse_search, Include, SearchError};
use tsunagu_store::{Clause, Condition, ResourceVersion, SearchQuery, SystemMatch, Test};

/// Search parameters as given, in order (a parameter may repeat: AND).
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub pairs: Vec<(String, String)>,
}

impl SearchParams {
    pub fn parse(query: &str) -> SearchParams {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        SearchParams { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The query string again, without the paging parameters.
    fn without_paging(&self) -> String {
        self.pairs
            .iter()
            .filter(|(k, _)| k != "_cursor" && k != "_offset")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-decoding of a query component (`+` is a space); bytes that are not UTF-8 become
/// U+FFFD (requests are checked with [`decodes_as_utf8`] first).
pub fn decode(s: &str) -> String {
    String::from_utf8_lossy(&decode_bytes(s)).into_owned()
}

/// Whether `s` (a query string, a path, a Bundle entry's URL) percent-decodes to UTF-8: a
/// value that does not would otherwise be searched for as U+FFFD, not as sent.
pub fn decodes_as_utf8(s: &str) -> bool {
    std::str::from_utf8(&decode_bytes(s)).is_ok()
}

/// The error for a request URL (or a Bundle entry's `request.url`, or a search form) that
/// does not percent-decode to UTF-8.
pub fn not_utf8() -> InteractionError {
    InteractionError::bad_request(
        "the request URL has percent-encoded bytes that are not UTF-8",
        "リクエストの URL に UTF-8 でないパーセントエンコードのバイトがあります",
    )
}

fn decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:|,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl From<SearchError> for InteractionError {
    fn from(e: SearchError) -> Self {
        let ja = e.japanese();
        match e {
            SearchError::Limit(l) => InteractionError::Limit(l),
            SearchError::Unsupported(_) => InteractionError::not_supported(e.to_string(), ja),
            _ => InteractionError::bad_request(e.to_string(), ja),
        }
    }
}

impl Interactions {
    /// The store query for search parameters (used by search and by conditional
    /// interactions, which are always strict).
    pub(crate) fn build_query(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        strict: bool,
        base: &str,
    ) -> Result<tsunagu_search::ParsedSearch, InteractionError> {
        Ok(parse_search(&self.search, self.terminology(), ty, &params.pairs, strict, base, &self.config.limits)?)
    }

    fn page_size(&self, params: &SearchParams) -> Result<usize, InteractionError> {
        match params.get("_count") {
            None => Ok(self.config.default_count),
            Some(c) => c.parse::<usize>().map(|n| n.min(self.config.max_count)).map_err(|_| {
                InteractionError::bad_request(
                    format!("_count must be a non-negative integer, not '{c}'"),
                    format!("_count は 0 以上の整数でなければなりません（'{c}'）"),
                )
            }),
        }
    }

    /// Type-level (`ty` given) or system-level search, one page as a `searchset` Bundle.
    pub fn search(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        let mut extra = Vec::new();
        if ty.is_none() && !ctx.caller.is_unrestricted() {
            // `_type` itself is a condition of the query (the parser's); here only what
            // the caller may search of the types it names.
            let listed: Option<Vec<String>> =
                params.get("_type").map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
            let candidates: Vec<String> = match &listed {
                Some(l) => l.clone(),
                // AuditEvents are never in the resource table a search over every type
                // reads: whether the caller reaches them does not narrow it.
                None => self
                    .model
                    .resource_types()
                    .iter()
                    .filter(|t| **t != crate::audit_api::TYPE)
                    .map(|t| t.to_string())
                    .collect(),
            };
            // A name that is no type is the parser's 400, not a refusal here.
            if candidates.iter().all(|t| self.model.is_resource_type(t)) {
                extra.extend(self.types_clause(&ctx.caller, &candidates, listed.is_some(), None)?);
            }
        }
        self.search_with(ty, params, ctx, extra, None, None, &[])
    }

    /// A clause limiting a search over several types to those the caller may search
    /// whole; `None` when that is every candidate (a clause naming them all would only
    /// cost: the store cannot page a list of many types in write order). A type the
    /// caller reaches only in part must be searched on its own (where its conditions
    /// apply); when `explicit` (the client named the types), that is refused.
    fn types_clause(
        &self,
        caller: &crate::Caller,
        candidates: &[String],
        explicit: bool,
        confined_to: Option<&str>,
    ) -> Result<Option<Clause>, InteractionError> {
        let mut any = Vec::new();
        for t in candidates {
            match self.reach(caller, t, crate::Permission::Search, confined_to) {
                Ok(crate::access::Reach::All) => any.push(Condition::ResourceType(t.clone())),
                Ok(crate::access::Reach::Where(_)) if explicit => {
                    return Err(InteractionError::forbidden(
                        format!("The access token reaches only part of {t}: search {t} on its own"),
                        format!("アクセストークンで検索できるのは {t} の一部だけです。{t} を単独で検索してください"),
                    ))
                }
                Err(e) if explicit => return Err(e),
                _ => {}
            }
        }
        if any.is_empty() {
            return Err(InteractionError::forbidden(
                "The access token's scopes allow searching none of these types",
                "アクセストークンのスコープではこれらのタイプをどれも検索できません",
            ));
        }
        Ok((any.len() < candidates.len()).then_some(Clause { any }))
    }

    /// Compartment search: `GET [Compartment]/[id]/[type]` (`ty` `None` for `*`).
    pub fn compartment_search(
        &self,
        compartment: &str,
        id: &str,
        ty: Option<&str>,
        params: &SearchParams,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        self.known_type(compartment)?;
        let clause = self.compartment_clause(compartment, Some(id), ty)?;
        let path = match ty {
            Some(t) => format!("{}/{compartment}/{id}/{t}", ctx.base),
            None => format!("{}/{compartment}/{id}/*", ctx.base),
        };
        let confined = (compartment == "Patient").then_some(id);
        let mut clause = clause;
        if ty.is_none() {
            self.reachable_part(&mut clause, ctx, &self.member_types(compartment, false), confined)?;
        }
        self.search_with(ty, params, ctx, vec![clause], Some(path), confined, &[])
    }

    /// The types of a compartment (and the compartment's own type when `with_self`).
    fn member_types(&self, compartment: &str, with_self: bool) -> Vec<String> {
        let mut types: Vec<String> = self
            .model
            .compartment(compartment)
            .map(|d| d.members.keys().map(|t| t.to_string()).collect())
            .unwrap_or_default();
        if with_self && !types.iter().any(|t| t == compartment) {
            types.push(compartment.to_string());
        }
        types.sort();
        types
    }

    /// `Patient/[id]/$everything`: the patient and every resource in its compartment, paged.
    pub fn everything(&self, id: &str, params: &SearchParams, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let patient = self.read("Patient", id, ctx)?;
        let params = &since_as_last_updated(params);
        let types = self.member_types("Patient", false);
        let mut clause = self.compartment_clause("Patient", Some(id), None)?;
        self.reachable_part(&mut clause, ctx, &types, Some(id))?;
        let (mut clauses, narrowed) = crate::care_dates::clauses(&self.search, &types, params)?;
        clauses.insert(0, clause);
        let path = format!("{}/Patient/{id}/$everything", ctx.base);
        let patient_wanted = params.get("_type").is_none_or(|t| t.split(',').any(|t| t.trim() == "Patient"))
            && updated_since(patient.last_updated_ms, params);
        let first_page = params.get("_cursor").is_none() && params.get("_offset").is_none();
        if first_page && patient_wanted {
            // The Patient is on the first page: it counts against max_page_bytes with it.
            ctx.spend(std::slice::from_ref(&patient))?;
        }
        let mut bundle =
            self.search_with(None, params, ctx, clauses, Some(path), Some(id), crate::care_dates::PARAMS)?;
        care_dates_note(&mut bundle, &narrowed, ctx);
        if first_page && patient_wanted {
            let entry = search_entry(&patient, ctx, "match")?;
            match bundle.get_mut("entry").and_then(Value::as_array_mut) {
                Some(entries) => entries.insert(0, entry),
                None => bundle["entry"] = json!([entry]),
            }
        }
        Ok(bundle)
    }

    /// `Patient/$everything`: every patient and every resource in any patient's
    /// compartment, paged in write order (so a patient may follow its own data).
    pub fn everything_all(&self, params: &SearchParams, ctx: &RequestContext) -> Result<Value, InteractionError> {
        // As a search parameter `_id` would keep only resources with that id (the Patient
        // alone), not that patient's data: said rather than answered so.
        if params.pairs.iter().any(|(k, _)| k == "_id" || k.starts_with("_id:")) {
            return Err(InteractionError::bad_request(
                "Patient/$everything does not take _id: ask Patient/[id]/$everything for one patient's data",
                "Patient/$everything では _id は使えません。一人の患者のデータは Patient/[id]/$everything で取得してください",
            ));
        }
        let params = &since_as_last_updated(params);
        let types = self.member_types("Patient", true);
        let mut clause = self.compartment_clause("Patient", None, None)?;
        clause.any.push(Condition::ResourceType("Patient".into()));
        // Every patient's data: only of the types the caller may search whole.
        self.reachable_part(&mut clause, ctx, &types, None)?;
        let (mut clauses, narrowed) = crate::care_dates::clauses(&self.search, &types, params)?;
        clauses.insert(0, clause);
        let path = format!("{}/Patient/$everything", ctx.base);
        let mut bundle = self.search_with(None, params, ctx, clauses, Some(path), None, crate::care_dates::PARAMS)?;
        care_dates_note(&mut bundle, &narrowed, ctx);
        Ok(bundle)
    }

    /// A compartment clause (and the compartment's own type beside it) narrowed to the
    /// `candidates` the caller may search whole ([`Self::types_clause`]). Narrowed in the
    /// clause itself, not by a clause of types beside it: the store pages a compartment
    /// of every patient in write order, which a list of types would keep it from.
    fn reachable_part(
        &self,
        clause: &mut Clause,
        ctx: &RequestContext,
        candidates: &[String],
        confined_to: Option<&str>,
    ) -> Result<(), InteractionError> {
        if ctx.caller.is_unrestricted() {
            return Ok(());
        }
        let Some(reached) = self.types_clause(&ctx.caller, candidates, false, confined_to)? else { return Ok(()) };
        let reached: HashSet<&str> = reached
            .any
            .iter()
            .filter_map(|c| match c {
                Condition::ResourceType(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        for c in clause.any.iter_mut() {
            if let Condition::Compartment { params, .. } = c {
                params.retain(|(member, _)| reached.contains(member.as_str()));
            }
        }
        clause.any.retain(|c| match c {
            Condition::ResourceType(t) => reached.contains(t.as_str()),
            Condition::Compartment { params, .. } => !params.is_empty(),
            _ => true,
        });
        Ok(())
    }

    fn compartment_clause(
        &self,
        compartment: &str,
        id: Option<&str>,
        ty: Option<&str>,
    ) -> Result<Clause, InteractionError> {
        let def = self.model.compartment(compartment).ok_or_else(|| {
            InteractionError::bad_request(
                format!("{compartment} is not a compartment"),
                format!("{compartment} はコンパートメントではありません"),
            )
        })?;
        let mut params = Vec::new();
        for (member, codes) in &def.members {
            if ty.is_some_and(|t| t != *member) {
                continue;
            }
            for code in codes {
                params.push((member.to_string(), code.to_string()));
            }
        }
        if let Some(t) = ty {
            self.known_type(t)?;
            if params.is_empty() {
                return Err(InteractionError::bad_request(
                    format!("{t} is not in the {compartment} compartment"),
                    format!("{t} は {compartment} コンパートメントに含まれません"),
                ));
            }
        }
        Ok(Clause {
            any: vec![Condition::Compartment {
                params,
                target_type: compartment.to_string(),
                target_id: id.map(str::to_string),
            }],
        })
    }

    /// One page of a search with `extra` clauses; `own` names the operation's own
    /// parameters among `params`, which its links keep but the search does not parse.
    #[allow(clippy::too_many_arguments)]
    fn search_with(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        ctx: &RequestContext,
        extra: Vec<Clause>,
        path: Option<String>,
        confined_to: Option<&str>,
        own: &[&str],
    ) -> Result<Value, InteractionError> {
        if let Some(t) = ty {
            self.known_type(t)?;
        }
        // Only an operation's own parameters are set aside: a plain search is not copied.
        let searched: std::borrow::Cow<'_, SearchParams> =
            if params.pairs.iter().any(|(k, _)| own.contains(&k.as_str())) {
                let pairs = params.pairs.iter().filter(|(k, _)| !own.contains(&k.as_str())).cloned().collect();
                std::borrow::Cow::Owned(SearchParams { pairs })
            } else {
                std::borrow::Cow::Borrowed(params)
            };
        match contained_mode(params)? {
            None => {}
            // Containers of every type are scanned: only for callers that reach everything.
            Some(_) if !ctx.caller.is_unrestricted() => {
                return Err(InteractionError::forbidden(
                    "_contained searches need unrestricted access (they scan containers of every type)",
                    "_contained 検索には制限のないアクセス権が必要です（あらゆるタイプのコンテナを走査するため）",
                ))
            }
            Some(mode) => return self.contained_search(ty, &searched, ctx, extra, path, mode),
        }
        let mut parsed = self.build_query(ty, &searched, ctx.strict, &ctx.base)?;
        self.confine(&ctx.caller, &mut parsed.query, confined_to)?;
        let q = &mut parsed.query;
        q.clauses.extend(extra);
        self.page_of(q, params)?;
        if let Some(cap) = ctx.search_ms_cap {
            q.max_ms = Some(q.max_ms.map_or(cap, |m| m.min(cap)));
        }
        let max_page_bytes = self.config.limits.max_page_bytes;
        q.max_bytes = ctx.page_cap(max_page_bytes);
        let by_memory = ctx.page_cut_by_memory(max_page_bytes, q.max_bytes);
        let page = self.store.search(q)?;
        // A page cut by its bytes may be empty when this request read others before (a
        // Bundle's entries, `$everything`'s Patient): its next link, followed in a request
        // of its own, goes on from where it stopped.
        let cut_by_bytes = matches!(page.stopped_by, Some(tsunagu_store::Ceiling::Bytes(_)));
        ctx.spend(&page.resources)?;
        let path = path.unwrap_or_else(|| match ty {
            Some(t) => format!("{}/{t}", ctx.base),
            None => ctx.base.clone(),
        });
        let query = params.without_paging();
        let sep = if query.is_empty() { "" } else { "&" };
        let used = params_string(params, &parsed.ignored);
        let mut links = vec![json!({ "relation": "self", "url": format!("{path}?{used}") })];
        let mut past_offset = false;
        if page.more {
            let next = if q.sort.is_empty() {
                // A page the cost ceiling cut short goes on after the last resource it
                // looked at, not the last it found.
                page.resume_after.or(page.resources.last().map(|last| last.seq)).map(|seq| format!("_cursor={seq}"))
            } else {
                // No link a client could follow only to be refused past max_search_offset;
                // an outcome entry says the results go on there instead.
                // A page cut by its bytes goes on after its last resource.
                let next = q.offset + if cut_by_bytes { page.resources.len() } else { q.count };
                past_offset = next > self.config.limits.max_search_offset;
                (!past_offset).then(|| format!("_offset={next}"))
            };
            if let Some(next) = next {
                links.push(json!({ "relation": "next", "url": format!("{path}?{query}{sep}{next}") }));
            }
        }
        if !q.sort.is_empty() && q.offset > 0 {
            let prev = q.offset.saturating_sub(q.count);
            links.push(json!({ "relation": "previous", "url": format!("{path}?{query}{sep}_offset={prev}") }));
        }
        let mut entries: Vec<Value> =
            page.resources.iter().map(|v| search_entry(v, ctx, "match")).collect::<Result<_, _>>()?;
        let included = self.includes(&page.resources, &parsed.includes, &parsed.revincludes, ctx)?;
        for v in &included.resources {
            entries.push(search_entry(v, ctx, "include")?);
        }
        if !included.complete {
            let max = self.config.limits.max_included;
            let oo = crate::outcome::warning(
                "incomplete",
                &format!(
                    "The included resources of this page are incomplete: _include/_revinclude found more than \
                     the limit max_included = {max} allows, more than the search ceiling (max_search_steps, \
                     max_search_ms on PostgreSQL) lets one page read, or more bytes than max_page_bytes = \
                     {max_page_bytes} leaves room for; search for them directly (e.g. with the reference as a parameter) to get all"
                ),
                &format!(
                    "このページの _include/_revinclude の結果は不完全です。上限 max_included = {max}、検索の上限 \
                     （max_search_steps、PostgreSQL では max_search_ms）または max_page_bytes = {max_page_bytes} を超えました。\
                     すべて取得するには参照をパラメータとして直接検索してください"
                ),
                ctx.lang,
            );
            entries.push(json!({ "resource": oo, "search": { "mode": "outcome" } }));
        }
        if past_offset {
            let max = self.config.limits.max_search_offset;
            let oo = crate::outcome::warning(
                "incomplete",
                &format!(
                    "More results follow, past the limit max_search_offset = {max} of a sorted search's \
                     pages: add a parameter that narrows the search to reach them"
                ),
                &format!(
                    "続きの結果がありますが、並べ替えた検索のページの上限 max_search_offset = {max} を超えます。\
                     取得するには検索を絞り込むパラメータを加えてください"
                ),
                ctx.lang,
            );
            entries.push(json!({ "resource": oo, "search": { "mode": "outcome" } }));
        }
        if let Some(ceiling) = page.stopped_by.filter(|_| page.resume_after.is_some() && !past_offset) {
            let (limit, max) = crate::error::ceiling_limit(ceiling);
            // A Bundle's later entry gets what is left of max_page_bytes: named as configured.
            let (key, max) = match limit {
                tsunagu_limits::Limit::PageBytes if by_memory => {
                    (tsunagu_limits::Limit::MemoryBytes.key(), self.config.limits.max_memory_bytes)
                }
                tsunagu_limits::Limit::PageBytes => (limit.key(), max_page_bytes),
                _ => (limit.key(), max),
            };
            entries.push(stopped_early(key, max, ctx));
        }
        Ok(searchset(page.total, links, entries, &parsed.ignored, ctx))
    }

    /// Sets the paging of a parsed query from the request (`_count`, `_summary=count`,
    /// `_total`, `_cursor`, `_offset`) and its cost ceiling.
    fn page_of(&self, q: &mut SearchQuery, params: &SearchParams) -> Result<(), InteractionError> {
        q.count = self.page_size(params)?;
        let summary_count = params.get("_summary") == Some("count");
        if summary_count {
            q.count = 0;
        }
        q.total = summary_count || matches!(params.get("_total"), Some("accurate") | Some("estimate"));
        q.after_seq = cursor(params)?;
        if let Some(o) = params.get("_offset") {
            q.offset = o.parse().map_err(|_| bad_cursor())?;
            let max = self.config.limits.max_search_offset;
            if q.offset > max {
                return Err(tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::SearchOffset, max)
                    .found(q.offset)
                    .into());
            }
        }
        let limits = &self.config.limits;
        q.max_steps = (limits.max_search_steps > 0).then_some(limits.max_search_steps as u64);
        q.max_ms = (limits.max_search_ms > 0).then_some(limits.max_search_ms as u64);
        Ok(())
    }

    /// The store query one page of a type-level or system-level search by an operator runs
    /// (for `tsunagu explain`): parsed, paged and with its ceiling as the search would.
    pub fn search_query(&self, ty: Option<&str>, params: &SearchParams) -> Result<SearchQuery, InteractionError> {
        if let Some(t) = ty {
            self.known_type(t)?;
        }
        let mut parsed = self.build_query(ty, params, false, "http://localhost")?;
        self.page_of(&mut parsed.query, params)?;
        Ok(parsed.query)
    }

    /// `_contained=true|both`: contained resources of type `ty` that match, found by
    /// scanning, in write order, the containers that hold some (the store indexes which
    /// types a container holds), and matching each contained resource in memory. Pages
    /// follow the containers' write order; a container's matches are never split.
    fn contained_search(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        ctx: &RequestContext,
        extra: Vec<Clause>,
        path: Option<String>,
        mode: ContainedMode,
    ) -> Result<Value, InteractionError> {
        let unsupported = |what: &str| {
            InteractionError::not_supported(
                format!("{what} with _contained=true or both is not supported"),
                format!("_contained=true/both と {what} の組み合わせには対応していません"),
            )
        };
        let Some(ty) = ty.filter(|_| extra.is_empty()) else { return Err(unsupported("system or compartment search")) };
        let parsed = self.build_query(Some(ty), params, ctx.strict, &ctx.base)?;
        if !parsed.query.sort.is_empty() || !parsed.includes.is_empty() || !parsed.revincludes.is_empty() {
            return Err(unsupported("_sort, _include or _revinclude"));
        }
        let count = self.page_size(params)?;
        let after = cursor(params)?;
        let mut items: Vec<ContainedHit> = Vec::new();
        let mut own_more = false;
        let mut own_horizon = None;
        let max_page_bytes = self.config.limits.max_page_bytes;
        // What the page may hold, taken once: its resources are counted when chosen below.
        let cap = ctx.page_cap(max_page_bytes);
        if mode.both {
            let mut q = parsed.query.clone();
            (q.count, q.after_seq) = (count, after);
            q.max_bytes = cap;
            let page = self.store.search(&q)?;
            own_more = page.more;
            // A page its bytes cut looked no further than its last resource.
            own_horizon = page.resume_after.filter(|_| page.stopped_by.is_some());
            for v in &page.resources {
                let e = search_entry(v, ctx, "match")?;
                let bytes = v.body.len() as u64;
                items.push((v.seq, full_url(ctx, &v.resource_type, &v.id), e["resource"].clone(), bytes));
            }
        }
        let (found, horizon) = self.contained_matches(ty, &parsed.query, after, count, mode.return_contained, ctx)?;
        items.extend(found);
        // Everything at or before the horizon has been looked at by both streams.
        let horizon = match (horizon, own_horizon) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(h) = horizon {
            items.retain(|(seq, ..)| *seq <= h);
        }
        items.sort_by_key(|(seq, ..)| *seq);
        // At most `count` containers' matches, and no more bytes than max_page_bytes leaves
        // (the first container's whole); a container's matches are never split.
        let (mut taken, mut bytes, mut bytes_stopped) = (0, 0u64, own_horizon.is_some());
        while taken < items.len() {
            let same_container = taken > 0 && items[taken].0 == items[taken - 1].0;
            let fits = cap.is_none_or(|c| bytes + items[taken].3 <= c.max || (taken == 0 && c.first_always));
            if !same_container && (taken >= count || !fits) {
                bytes_stopped |= !fits && taken < count;
                break;
            }
            bytes += items[taken].3;
            taken += 1;
        }
        let cut = taken < items.len();
        let more = cut || horizon.is_some() || own_more;
        let cursor = items[..taken].last().map(|(seq, ..)| *seq).or(horizon).or(after).or(Some(0));
        items.truncate(taken);
        ctx.spend_bytes(bytes)?;
        let path = path.unwrap_or_else(|| format!("{}/{ty}", ctx.base));
        let used = params_string(params, &parsed.ignored);
        let mut links = vec![json!({ "relation": "self", "url": format!("{path}?{used}") })];
        if let (true, Some(c)) = (more, cursor) {
            let query = params.without_paging();
            let sep = if query.is_empty() { "" } else { "&" };
            links.push(json!({ "relation": "next", "url": format!("{path}?{query}{sep}_cursor={c}") }));
        }
        let mut entries: Vec<Value> = items
            .into_iter()
            .map(|(_, url, resource, _)| json!({ "fullUrl": url, "resource": resource, "search": { "mode": "match" } }))
            .collect();
        if bytes_stopped {
            let limit = match ctx.page_cut_by_memory(max_page_bytes, cap) {
                true => (tsunagu_limits::Limit::MemoryBytes.key(), self.config.limits.max_memory_bytes),
                false => (tsunagu_limits::Limit::PageBytes.key(), max_page_bytes),
            };
            entries.push(stopped_early(limit.0, limit.1, ctx));
        }
        Ok(searchset(None, links, entries, &parsed.ignored, ctx))
    }

    /// The contained matches after `after`, and the last container looked at when the scan
    /// stopped before the end (`None` when it reached the end).
    fn contained_matches(
        &self,
        ty: &str,
        query: &SearchQuery,
        after: Option<i64>,
        count: usize,
        return_contained: bool,
        ctx: &RequestContext,
    ) -> Result<(Vec<ContainedHit>, Option<i64>), InteractionError> {
        const BATCH: usize = 200;
        // A bound on one request's work; the next page goes on from where it stopped.
        const MAX_SCANNED: usize = 10_000;
        let test = Test::Token { system: SystemMatch::Any, code: Some(ty.to_string()) };
        let holds = Condition::Index { param: tsunagu_search::CONTAINED_TYPE_PARAM.into(), test, negate: false };
        // The containers read at once, and the matches kept, are bounded in bytes too.
        let max_bytes = self.config.limits.max_page_bytes as u64;
        let mut q = SearchQuery {
            clauses: vec![Clause { any: vec![holds] }],
            count: BATCH,
            after_seq: after,
            max_bytes: (max_bytes > 0).then_some(tsunagu_store::ByteCap { max: max_bytes, first_always: true }),
            ..Default::default()
        };
        let (mut found, mut scanned, mut containers, mut found_bytes) = (Vec::new(), 0, 0, 0u64);
        loop {
            let page = self.store.search(&q)?;
            for v in &page.resources {
                scanned += 1;
                let container: Value = serde_json::from_slice(&v.body)
                    .map_err(|e| tsunagu_store::StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id)))?;
                let mut hit = false;
                for c in container["contained"].as_array().into_iter().flatten().filter(|c| c["resourceType"] == ty) {
                    let id = c["id"].as_str().unwrap_or("");
                    let entries = self.search.index_entries(ty, c);
                    if !tsunagu_search::contained_matches(query, id, &entries)? {
                        continue;
                    }
                    if return_contained {
                        let url = format!("{}#{id}", full_url(ctx, &v.resource_type, &v.id));
                        found.push((v.seq, url, c.clone(), c.to_string().len() as u64));
                    } else if !hit {
                        let url = full_url(ctx, &v.resource_type, &v.id);
                        found.push((v.seq, url, container.clone(), v.body.len() as u64));
                    }
                    hit = true;
                }
                containers += usize::from(hit);
                found_bytes += if hit { v.body.len() as u64 } else { 0 };
                let stop = containers > count || scanned >= MAX_SCANNED || (max_bytes > 0 && found_bytes > max_bytes);
                if stop {
                    return Ok((found, Some(v.seq)));
                }
            }
            match page.resources.last() {
                Some(last) if page.more => q.after_seq = Some(last.seq),
                _ => return Ok((found, None)),
            }
        }
    }
}

/// `_cursor`: a position in the write order the server wrote into a `next` link (a
/// non-negative `seq`).
pub(crate) fn cursor(params: &SearchParams) -> Result<Option<i64>, InteractionError> {
    match params.get("_cursor") {
        None => Ok(None),
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).map(Some).ok_or_else(bad_cursor),
    }
}

fn bad_cursor() -> InteractionError {
    InteractionError::bad_request("the paging cursor is invalid", "ページングのカーソルが不正です")
}

/// The outcome entry of a page that stopped early at the limit `key` (`max`), whose next
/// link goes on where it stopped.
/// Conditions (a parameter referring to one match) in one `_revinclude` search: SQLite
/// binds a few values for each and allows 32,766 in a statement.
const REVINCLUDE_CONDITIONS_PER_SEARCH: usize = 1000;

fn stopped_early(key: &str, max: usize, ctx: &RequestContext) -> Value {
    let oo = crate::outcome::information(
        &format!(
            "This page stopped early at the limit {key} = {max}: it may hold fewer entries than \
             _count; the next link continues the search where it stopped"
        ),
        &format!(
            "このページは上限 {key} = {max} で打ち切られたため、_count より少ない件数の\
             ことがあります。next リンクで打ち切った位置から検索を続けられます"
        ),
        ctx.lang,
    );
    json!({ "resource": oo, "search": { "mode": "outcome" } })
}

/// A match of a `_contained` search: its write position (the container's), fullUrl,
/// resource and its bytes (against `max_page_bytes`).
type ContainedHit = (i64, String, Value, u64);

/// `_contained` and `_containedType` (search.html#contained).
#[derive(Debug, Clone, Copy)]
struct ContainedMode {
    /// `both`: the resources themselves too, not only contained ones.
    both: bool,
    /// `_containedType=contained`: the contained resources rather than their containers.
    return_contained: bool,
}

/// `None` for the default `_contained=false`.
fn contained_mode(params: &SearchParams) -> Result<Option<ContainedMode>, InteractionError> {
    let bad = |name: &str, v: &str| {
        InteractionError::bad_request(format!("{name}={v} is not valid"), format!("{name}={v} は不正な値です"))
    };
    let both = match params.get("_contained").unwrap_or("false") {
        "false" => return Ok(None),
        "true" => false,
        "both" => true,
        v => return Err(bad("_contained", v)),
    };
    let return_contained = match params.get("_containedType").unwrap_or("container") {
        "container" => false,
        "contained" => true,
        v => return Err(bad("_containedType", v)),
    };
    Ok(Some(ContainedMode { both, return_contained }))
}

/// A `searchset` Bundle with its links, entries, total, and an outcome entry for ignored
/// parameters.
fn searchset(
    total: Option<u64>,
    links: Vec<Value>,
    mut entries: Vec<Value>,
    ignored: &[String],
    ctx: &RequestContext,
) -> Value {
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    bundle.insert("meta".into(), json!({ "lastUpdated": format_instant(chrono::Utc::now().timestamp_millis()) }));
    bundle.insert("type".into(), "searchset".into());
    if let Some(t) = total {
        bundle.insert("total".into(), t.into());
    }
    bundle.insert("link".into(), Value::Array(links));
    if !ignored.is_empty() {
        let oo = crate::outcome::information(
            &format!("Ignored unknown or unusable search parameters: {}", ignored.join(", ")),
            &format!("不明または使えない検索パラメータを無視しました: {}", ignored.join(", ")),
            ctx.lang,
        );
        entries.push(json!({ "resource": oo, "search": { "mode": "outcome" } }));
    }
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(bundle)
}

impl Interactions {
    /// Resources named by `_include` (what the matches refer to) and `_revinclude` (what
    /// refers to the matches), repeated for `:iterate` until nothing new appears.
    /// Only resources the caller may read are included, and only they lead further
    /// (`:iterate` never walks through a resource the caller cannot see). At most
    /// `max_included` are added; past it, or where the cost ceiling cut a `_revinclude`
    /// search, the result says it is incomplete rather than silently holding fewer.
    /// The resources `inc` names from `frontier` that are not in `seen`: (type, id), each
    /// once, in the order met.
    fn include_targets(
        &self,
        frontier: &[ResourceVersion],
        inc: &Include,
        seen: &HashSet<(String, String)>,
    ) -> Vec<(String, String)> {
        let mut wanted = Vec::new();
        let mut met = HashSet::new();
        for v in frontier {
            if inc.source_type != "*" && inc.source_type != v.resource_type {
                continue;
            }
            let Ok(resource) = serde_json::from_slice::<Value>(&v.body) else { continue };
            for e in self.search.reference_entries(&v.resource_type, &resource, inc.param.as_deref()) {
                if let tsunagu_store::IndexValue::Reference { target_type: Some(t), target_id: Some(id), .. } = e.value
                {
                    if inc.target_type.as_ref().is_some_and(|tt| *tt != t) {
                        continue;
                    }
                    let key = (t, id);
                    if !seen.contains(&key) && met.insert(key.clone()) {
                        wanted.push(key);
                    }
                }
            }
        }
        wanted
    }

    /// The searches one round of `_revinclude`s makes: one per source type, for any of its
    /// named parameters referring to any resource of `frontier` (of the named target type,
    /// and one the parameter may point at), each condition once however many `_revinclude`
    /// values (`*`, `Type:*`, `Type:param`) name it.
    fn revinclude_searches(
        &self,
        revincludes: &[Include],
        first: bool,
        frontier: &[ResourceVersion],
    ) -> Vec<(String, Vec<Condition>)> {
        // Each value once (`_revinclude=*,*,…` is one `*`), then for each (source type,
        // parameter) the matches it may refer to, whichever values named it.
        let mut values: HashSet<(&str, Option<&str>, Option<&str>)> = HashSet::new();
        let mut asked: Vec<((String, String), Vec<bool>)> = Vec::new();
        let mut slot_of: HashMap<(String, String), usize> = HashMap::new();
        for inc in revincludes.iter().filter(|i| first || i.iterate) {
            if !values.insert((inc.source_type.as_str(), inc.param.as_deref(), inc.target_type.as_deref())) {
                continue;
            }
            for pair in self.revinclude_params(inc, frontier) {
                let targets = self.search.param(&pair.0, &pair.1).map(|p| p.targets.clone()).unwrap_or_default();
                let slot = *slot_of.entry(pair.clone()).or_insert_with(|| {
                    asked.push((pair, vec![false; frontier.len()]));
                    asked.len() - 1
                });
                for (i, v) in frontier.iter().enumerate() {
                    let named = inc.target_type.as_ref().is_none_or(|t| *t == v.resource_type);
                    let possible =
                        targets.is_empty() || targets.iter().any(|t| *t == v.resource_type || *t == "Resource");
                    asked[slot].1[i] |= named && possible;
                }
            }
        }
        let mut searches: Vec<(String, Vec<Condition>)> = Vec::new();
        for ((source_type, param), referred) in asked {
            for v in frontier.iter().zip(referred).filter_map(|(v, r)| r.then_some(v)) {
                let condition = Condition::Index {
                    param: param.clone(),
                    test: Test::Reference {
                        target_type: Some(v.resource_type.clone()),
                        target_id: Some(v.id.clone()),
                        url: None,
                    },
                    negate: false,
                };
                // At most as many conditions in one search as one parameter's own search
                // had: a page of `max_count` matches.
                match searches.iter_mut().rev().find(|(t, _)| *t == source_type) {
                    Some((_, any)) if any.len() < REVINCLUDE_CONDITIONS_PER_SEARCH => any.push(condition),
                    _ => searches.push((source_type.clone(), vec![condition])),
                }
            }
        }
        searches
    }

    /// The (source type, reference parameter) pairs a `_revinclude` searches: the one it
    /// names, every reference parameter of its type (`Type:*`), or of every type (`*`),
    /// leaving out parameters that cannot point at any resource of `frontier`.
    fn revinclude_params(&self, inc: &Include, frontier: &[ResourceVersion]) -> Vec<(String, String)> {
        if let Some(param) = &inc.param {
            return vec![(inc.source_type.clone(), param.clone())];
        }
        let types: Vec<&str> = match inc.source_type.as_str() {
            "*" => self.model.resource_types().to_vec(),
            ty => vec![ty],
        };
        let reaches = |targets: &[&str]| {
            targets.is_empty()
                || frontier.iter().any(|v| targets.iter().any(|t| *t == v.resource_type || *t == "Resource"))
        };
        let mut pairs = Vec::new();
        for ty in types {
            for p in self.search.params(ty).iter() {
                if p.index_kind() == Some(tsunagu_store::IndexKind::Reference) && reaches(&p.targets) {
                    pairs.push((ty.to_string(), p.code.to_string()));
                }
            }
        }
        pairs
    }

    fn includes(
        &self,
        matches: &[ResourceVersion],
        includes: &[Include],
        revincludes: &[Include],
        ctx: &RequestContext,
    ) -> Result<Included, InteractionError> {
        let caller = &*ctx.caller;
        let max_included = self.config.limits.max_included;
        let max_page_bytes = self.config.limits.max_page_bytes;
        let mut seen: HashSet<(String, String)> =
            matches.iter().map(|v| (v.resource_type.clone(), v.id.clone())).collect();
        let mut out = Included { resources: Vec::new(), complete: true };
        let mut frontier: Vec<ResourceVersion> = matches.to_vec();
        let mut first = true;
        // Rounds after the first; each must find something new to count against the limit.
        let mut rounds = 0;
        while !frontier.is_empty() {
            if !first && !includes.iter().chain(revincludes).any(|i| i.iterate) {
                break;
            }
            // Found this round; a few more than fit are read, so that "more than fits" is
            // known, then cut (what the caller may not see does not count).
            let room = max_included.saturating_sub(out.resources.len());
            let mut next = Vec::new();
            for inc in includes.iter().filter(|i| first || i.iterate) {
                let wanted = self.include_targets(&frontier, inc, &seen);
                // A batch at a time, no more than still fits (and one more, to know that
                // more did not fit), in the order the targets were met.
                let mut rest = wanted.as_slice();
                while !rest.is_empty() && next.len() <= room && out.complete {
                    let (batch, later) = rest.split_at((room + 1 - next.len()).min(rest.len()));
                    rest = later;
                    let (read, cut) = self.store.read_many(batch, ctx.page_cap(max_page_bytes))?;
                    ctx.spend(&read)?;
                    out.complete &= !cut;
                    let mut found: HashMap<(String, String), ResourceVersion> = read
                        .into_iter()
                        .filter(|f| !f.deleted)
                        .map(|f| ((f.resource_type.clone(), f.id.clone()), f))
                        .collect();
                    for key in batch {
                        if let Some(f) = found.remove(key) {
                            seen.insert(key.clone());
                            next.push(f);
                        }
                    }
                }
            }
            for (source_type, any) in self.revinclude_searches(revincludes, first, &frontier) {
                if next.len() > room || !out.complete {
                    break;
                }
                let limits = &self.config.limits;
                let q = SearchQuery {
                    resource_type: Some(source_type),
                    clauses: vec![Clause { any }],
                    count: room + 1 - next.len(),
                    max_steps: (limits.max_search_steps > 0).then_some(limits.max_search_steps as u64),
                    max_ms: (limits.max_search_ms > 0)
                        .then_some(limits.max_search_ms as u64)
                        .map(|m| ctx.search_ms_cap.map_or(m, |cap| m.min(cap))),
                    max_bytes: ctx.page_cap(max_page_bytes),
                    ..Default::default()
                };
                let page = match self.store.search(&q) {
                    Ok(page) => page,
                    // Too costly even to start: nothing from this one, and said so.
                    Err(tsunagu_store::StoreError::TooCostly { .. }) => {
                        out.complete = false;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if page.resume_after.is_some() || page.stopped_by.is_some() {
                    out.complete = false;
                }
                ctx.spend(&page.resources)?;
                for found in page.resources {
                    if seen.insert((found.resource_type.clone(), found.id.clone())) {
                        next.push(found);
                    }
                }
            }
            next.retain(|v| self.may_see_version(caller, crate::Permission::Read, v));
            if next.len() > room {
                next.truncate(room);
                out.complete = false;
            }
            if !first && !next.is_empty() {
                rounds += 1;
                let max = self.config.limits.max_include_iterations;
                if rounds > max {
                    return Err(
                        tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::IncludeIterations, max).into()
                    );
                }
            }
            out.resources.extend(next.iter().cloned());
            frontier = next;
            first = false;
            if !out.complete {
                break;
            }
        }
        let _ = SystemMatch::Any;
        Ok(out)
    }
}

/// What `_include` and `_revinclude` added to a page, and whether it is all of it.
struct Included {
    resources: Vec<ResourceVersion>,
    complete: bool,
}

/// The parameters as a query string, leaving out those the search `ignored`: a self link
/// names the search that was run (search.html: the parameters actually used).
fn params_string(params: &SearchParams, ignored: &[String]) -> String {
    params
        .pairs
        .iter()
        .filter(|(k, _)| !ignored.contains(k))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn full_url(ctx: &RequestContext, ty: &str, id: &str) -> String {
    format!("{}/{ty}/{id}", ctx.base)
}

fn search_entry(v: &ResourceVersion, ctx: &RequestContext, mode: &str) -> Result<Value, InteractionError> {
    let resource: Value = serde_json::from_slice(&v.body)
        .map_err(|e| tsunagu_store::StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id)))?;
    Ok(json!({
        "fullUrl": full_url(ctx, &v.resource_type, &v.id),
        "resource": resource,
        "search": { "mode": mode }
    }))
}

/// `$everything`'s `_since` (resources updated at or after it) as the search condition it
/// is, `_lastUpdated=ge…`; a value that is no date is that parameter's 400.
fn since_as_last_updated(params: &SearchParams) -> SearchParams {
    let pairs = params
        .pairs
        .iter()
        .map(|(k, v)| match k.as_str() {
            "_since" => ("_lastUpdated".to_string(), format!("ge{v}")),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    SearchParams { pairs }
}

/// An outcome entry saying which types `start`/`end` narrowed (none: no entry): R4 leaves
/// "care date" open, so the client is told how it was read.
fn care_dates_note(bundle: &mut Value, narrowed: &[String], ctx: &RequestContext) {
    if narrowed.is_empty() {
        return;
    }
    let types = narrowed.join(", ");
    let oo = crate::outcome::information(
        &format!(
            "start/end were applied as the care date (search parameter clinical-date) of {types}; \
             resources of other types are included whatever their dates"
        ),
        &format!(
            "start/end は {types} の診療日（検索パラメータ clinical-date）に適用しました。\
             その他のタイプのリソースは日付にかかわらず含まれます"
        ),
        ctx.lang,
    );
    let entry = json!({ "resource": oo, "search": { "mode": "outcome" } });
    match bundle.get_mut("entry").and_then(Value::as_array_mut) {
        Some(entries) => entries.push(entry),
        None => bundle["entry"] = json!([entry]),
    }
}

/// Whether a version written at `updated_ms` meets every `_lastUpdated=ge…` of `params`
/// (for the patient `$everything` adds beside its search).
fn updated_since(updated_ms: i64, params: &SearchParams) -> bool {
    params.pairs.iter().filter(|(k, _)| k == "_lastUpdated").all(|(_, v)| {
        v.strip_prefix("ge").and_then(tsunagu_search::parse_range).is_none_or(|(since, _)| updated_ms >= since)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = SearchParams::parse("name=Yamada%20Taro&_id=a,b&x=%E5%B1%B1&bad=%zz&plus=a+b");
        assert_eq!(p.get("name"), Some("Yamada Taro"));
        assert_eq!(p.get("_id"), Some("a,b"));
        assert_eq!(p.get("x"), Some("山"));
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get("plus"), Some("a b"));
    }
}
