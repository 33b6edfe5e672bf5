//! Routing of FHIR REST URLs to interactions. FHIR's URL grammar is small and regular, so
//! one match over (method, path segments) states the whole API in one place.

use crate::negotiate::{body_kind, parse_resource, response_format, BodyKind, Format};
use crate::reply::{self, Render};
use crate::AppState;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{header, HeaderMap, Method};
use serde_json::Value;
use std::sync::Arc;
use tsunagu_interaction::operations::{self, Invocation, Level, Output};
use tsunagu_interaction::{
    etag, http_date, information, parse_etag, InteractionError, Lang, PatchBody, RequestContext, ReturnPreference,
    SearchParams, Written,
};
use tsunagu_store::{HistoryScope, ResourceVersion};

/// Everything a route needs, owned, so it can run on the blocking pool.
pub(crate) struct Call {
    pub method: Method,
    pub segments: Vec<String>,
    pub params: SearchParams,
    pub query: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    pub ctx: RequestContext,
    pub render: Render,
    /// Whether the client asked for a page (`_format=html`) or would take one (`Accept`
    /// naming text/html first): documents are then rendered for people.
    pub html: Option<crate::document_page::HtmlAsk>,
    /// `max_json_depth` and `max_body_values`, for reading bodies.
    pub body_limits: crate::negotiate::BodyLimits,
    /// A batch or transaction's entry requests, noted when its body is parsed (JSON or
    /// XML) for the audit trail, which would otherwise parse the body a second time.
    pub bundle_requests: std::sync::OnceLock<Vec<String>>,
    /// A Binary read whose `Accept` names no FHIR format: the content itself is asked for
    /// (`binary.rs`); holds that `Accept`.
    pub raw_binary: Option<String>,
}

pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let mut r = answer(state, req).await;
    crate::headers::secure(&mut r);
    r
}

async fn answer(state: Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let lang = Lang::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    if let Err(e) = check_host(&state.config, &parts) {
        return reply::error(&e, Format::Json, lang);
    }
    // Past the limit, answer at once: queueing would only hold more connections open.
    let Ok(permit) = state.in_process.clone().try_acquire_owned() else {
        return reply::busy(lang);
    };
    if crate::oauth::is_auth_path(parts.uri.path()) {
        let r = crate::oauth::handle(state, Request::from_parts(parts, body), lang).await;
        drop(permit);
        return r;
    }
    // The CapabilityStatement is public (it says how to get a token); everything else
    // needs one.
    let public = parts.method == Method::GET && parts.uri.path().trim_end_matches('/') == "/metadata";
    let caller = if public {
        tsunagu_interaction::Caller::operator("public")
    } else {
        match crate::authn::caller(&state, &parts, lang) {
            Ok(c) => c,
            Err(r) => {
                crate::audit_trail::record_unauthenticated(&state, &parts, r.status().as_u16());
                return *r;
            }
        }
    };
    // With authorization on, one identity holds at most its share of the slots.
    let max_share = match state.config.authorization {
        crate::Authorization::Required(_) if !public => state.config.limits.max_concurrent_requests_per_client,
        _ => 0,
    };
    let Some(client_slot) = state.shares.take(&caller.agent.who, max_share) else {
        let e = InteractionError::TooManyRequests {
            en: format!(
                "This client already has {max_share} requests in progress (limit max_concurrent_requests_per_client); retry shortly"
            ),
            ja: format!(
                "このクライアントは既に {max_share} 件のリクエストを処理中です（上限 max_concurrent_requests_per_client）。しばらくしてから再試行してください"
            ),
        };
        return reply::error(&e, Format::Json, lang);
    };
    let query = parts.uri.query().unwrap_or("").to_string();
    let params = SearchParams::parse(&query);
    let segments: Vec<String> =
        parts.uri.path().split('/').filter(|s| !s.is_empty()).map(tsunagu_interaction::percent_decode).collect();
    // A Binary read may ask for its content rather than a FHIR format; errors stay FHIR.
    let raw_binary = match parts.method {
        Method::GET | Method::HEAD if crate::binary::is_read(&segments) && params.get("_format").is_none() => {
            let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            accept.filter(|a| crate::binary::names_other_type(a)).map(str::to_string)
        }
        _ => None,
    };
    let format = match response_format(&parts.headers, &params) {
        Ok(f) => f,
        Err(_) if raw_binary.is_some() => Format::Json,
        Err(e) => return reply::error(&e, Format::Json, lang),
    };
    if !tsunagu_interaction::decodes_as_utf8(&query) || !tsunagu_interaction::decodes_as_utf8(parts.uri.path()) {
        return reply::error(&tsunagu_interaction::not_utf8(), format, lang);
    }
    let summary = match params.get("_summary") {
        None | Some("false") | Some("count") => None,
        Some(s) => match tsunagu_format::SummaryMode::parse(s) {
            Some(m) => Some(m),
            None => {
                let e = InteractionError::bad_request(
                    format!("_summary '{s}' is not one of true, text, data, count, false"),
                    format!("_summary '{s}' は true・text・data・count・false のいずれかでなければなりません"),
                );
                return reply::error(&e, format, lang);
            }
        },
    };
    let render = Render {
        format,
        pretty: params.get("_pretty") == Some("true"),
        summary,
        elements: params.get("_elements").map(|e| e.split(',').map(|s| s.trim().to_string()).collect()),
        lang,
    };
    // A write the caller may make to no resource of its type is refused before its body is
    // read (up to max_body_bytes, for nothing).
    let refused = match write_of(&parts.method, &segments) {
        Some((ty, kind)) if !caller.is_unrestricted() => {
            // Scope checks may read the store (consent, sharing): not on an async worker.
            let (state, caller, ty) = (state.clone(), caller.clone(), ty.to_string());
            tokio::task::spawn_blocking(move || state.fhir.check_write_before_body(&caller, &ty, kind).err())
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
        _ => None,
    };
    // Only methods that carry content have their body read; any other body is left
    // unread (and the connection closed after the answer).
    let body = if refused.is_none() && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        match read_body(&state, &parts.headers, body).await {
            Ok(b) => b,
            Err(e) => return reply::error(&e, format, lang),
        }
    } else {
        bytes::Bytes::new()
    };
    let (return_pref, strict) = prefer(&parts.headers);
    let ctx = RequestContext {
        base: state.config.base_url.clone(),
        lang,
        strict,
        return_pref,
        caller: Arc::new(caller),
        audited: Default::default(),
        search_ms_cap: None,
        // Each request its own bound, shared by its Bundle's entries.
        read_bytes: Some(Default::default()),
        memory: Some(tsunagu_interaction::MemoryHold::new(state.memory.clone())),
    };
    let limits = &state.config.limits;
    let body_limits = crate::negotiate::BodyLimits {
        max_depth: limits.max_json_depth,
        max_values: limits.max_body_values,
        values: None,
    };
    let html = crate::document_page::html_asked(&parts.headers, &params);
    let call = Call {
        method: parts.method,
        segments,
        params,
        query,
        headers: parts.headers,
        body,
        ctx,
        render,
        html,
        body_limits,
        bundle_requests: Default::default(),
        raw_binary,
    };
    let state = state.clone();
    // The slot goes with the work: a client that hangs up does not free it while its
    // request still runs.
    let work = move || {
        let _permit = permit;
        let _client_slot = client_slot;
        let mut call = call;
        // Counted once, off the async workers; then room for the body as parsed and
        // indexed before any of that work starts.
        call.body_limits.values = crate::negotiate::body_values(&call.headers, &call.body);
        let reserved = match &call.ctx.memory {
            Some(m) => {
                // A body past max_body_values is refused as it is parsed, right after.
                let values = call.body_limits.values.map_or(0, |(n, _)| n.min(call.body_limits.max_values));
                m.reserve_body(call.body.len(), values)
            }
            None => Ok(()),
        };
        let r = match refused.as_ref().or(reserved.as_ref().err()) {
            Some(e) => reply::error(e, call.render.format, call.render.lang),
            None => route(&state, &call),
        };
        if !public {
            crate::audit_trail::record(&state, &call, r.status().as_u16());
        }
        r
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r,
        Err(_) => reply::panic_response(Box::new(())),
    }
}

/// The resource write a request is, by its method and path: `POST [type]`, `PUT` or
/// `PATCH` of `[type]` (conditional) or `[type]/[id]` — not operations, `_search` or history.
fn write_of<'s>(method: &Method, segments: &'s [String]) -> Option<(&'s str, tsunagu_interaction::WriteKind)> {
    use tsunagu_interaction::WriteKind;
    let kind = match *method {
        Method::POST => WriteKind::Create,
        Method::PUT => WriteKind::Put,
        Method::PATCH => WriteKind::Patch,
        _ => return None,
    };
    match segments {
        [ty] => Some((ty, kind)),
        [ty, id] if kind != WriteKind::Create && !id.starts_with(['$', '_']) => Some((ty, kind)),
        _ => None,
    }
}

/// The request body, within `max_body_bytes` (413) and `body_read_timeout_secs` (408),
/// decoded when it came with a `Content-Encoding` (`content_coding`).
async fn read_body(
    state: &AppState,
    headers: &http::HeaderMap,
    body: axum::body::Body,
) -> Result<bytes::Bytes, InteractionError> {
    let limits = &state.config.limits;
    let timeout = std::time::Duration::from_secs(limits.body_read_timeout_secs.max(1));
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limits.max_body_bytes)).await {
        Ok(Ok(b)) if headers.contains_key(http::header::CONTENT_ENCODING) => {
            // Inflating up to max_body_bytes is CPU work: not on an async worker. A panic
            // there goes on to the catch-panic layer, as one in the handler would.
            let (headers, max) = (headers.clone(), limits.max_body_bytes);
            tokio::task::spawn_blocking(move || crate::content_coding::decoded(&headers, b, max))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) if is_too_large(&e) => {
            Err(tsunagu_interaction::LimitExceeded::new(tsunagu_interaction::Limit::BodyBytes, limits.max_body_bytes)
                .into())
        }
        Ok(Err(_)) => Err(InteractionError::bad_request(
            "the request body could not be read",
            "リクエスト本文を読み取れませんでした",
        )),
        Err(_) => Err(InteractionError::RequestTimeout(limits.body_read_timeout_secs)),
    }
}

fn is_too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Refuses a `Host` outside the allowed names (DNS rebinding: a page on an attacker's
/// name that resolves to this server would otherwise be same-origin with it).
fn check_host(config: &crate::ServerConfig, parts: &http::request::Parts) -> Result<(), InteractionError> {
    // RFC 9112 §3.2: a request with more than one Host is answered 400, whichever names us.
    if parts.headers.get_all(header::HOST).iter().nth(1).is_some() {
        return Err(InteractionError::bad_request(
            "The request has more than one Host header",
            "リクエストに Host ヘッダが複数あります",
        ));
    }
    if config.allowed_hosts.is_empty() {
        return Ok(());
    }
    let authority = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = crate::host_part(authority);
    if config.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(InteractionError::MisdirectedRequest(host.to_ascii_lowercase()))
    }
}

/// `Prefer: return=…` and `Prefer: handling=…`.
fn prefer(headers: &HeaderMap) -> (ReturnPreference, bool) {
    let mut ret = ReturnPreference::Representation;
    let mut strict = false;
    for v in headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
        for p in v.split([',', ';']).map(str::trim) {
            match p {
                "return=minimal" => ret = ReturnPreference::Minimal,
                "return=representation" => ret = ReturnPreference::Representation,
                "return=OperationOutcome" => ret = ReturnPreference::OperationOutcome,
                "handling=strict" => strict = true,
                "handling=lenient" => strict = false,
                _ => {}
            }
        }
    }
    (ret, strict)
}

fn route(state: &AppState, call: &Call) -> Response {
    let format = call.render.format;
    let lang = call.render.lang;
    match route_inner(state, call) {
        Ok(r) => r,
        Err(e) => reply::error(&e, format, lang),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn if_match(h: &HeaderMap) -> Result<Option<u64>, InteractionError> {
    match header(h, "if-match") {
        None => Ok(None),
        Some(v) => parse_etag(v).map(Some).ok_or_else(|| {
            InteractionError::bad_request(
                format!("If-Match '{v}' is not an ETag"),
                format!("If-Match '{v}' は ETag として不正です"),
            )
        }),
    }
}

fn route_inner(state: &AppState, c: &Call) -> Result<Response, InteractionError> {
    let fhir = &state.fhir;
    let segs: Vec<&str> = c.segments.iter().map(String::as_str).collect();
    // HEAD is GET without the body (hyper never sends a body for HEAD).
    let m = if c.method == Method::HEAD { &Method::GET } else { &c.method };
    match (m, segs.as_slice()) {
        // Documents first: with `_format=html` nothing else may answer.
        (&Method::GET, ["Bundle", id]) if c.html.is_some() => {
            let v = fhir.read("Bundle", id, &c.ctx)?;
            crate::document_page::stored_document_reply(c, v)
        }
        (&Method::GET, ["$export-status", job]) => crate::export::status(state, c, job),
        (&Method::DELETE, ["$export-status", job]) => crate::export::cancel(state, c, job),
        (&Method::GET, ["$export-file", job, file]) => crate::export::file(state, c, job, file),
        (_, [op]) if op.starts_with('$') => operation(state, c, None, None, op, Level::System),
        (_, [ty, op]) if op.starts_with('$') => operation(state, c, Some(ty), None, op, Level::Type),
        (_, [ty, id, op]) if op.starts_with('$') => operation(state, c, Some(ty), Some(id), op, Level::Instance),
        (_, _) if c.params.get("_format").is_some_and(crate::negotiate::rows_format) => Err(rows_refused()),
        (_, _) if c.html == Some(crate::document_page::HtmlAsk::Required) => Err(InteractionError::not_acceptable(
            "Only documents (Bundle/{id}, Patient/$summary) are rendered as HTML",
            "HTML で表示できるのは文書（Bundle/{id}、Patient/$summary）だけです",
        )),
        (&Method::GET, ["metadata"]) => {
            let smart = matches!(state.config.authorization, crate::Authorization::Required(_));
            let statement = crate::capability::for_mode(fhir, &c.ctx.base, smart, c.params.get("mode"))?;
            // `_summary` and `_elements` as on any read.
            ok_resource(c, 200, &c.render.shape(statement))
        }
        (_, ["metadata"]) => Err(InteractionError::MethodNotAllowed(format!("{m} /metadata"))),
        (&Method::GET, ["AuditEvent", id]) => ok_resource(c, 200, &fhir.audit_event(id, &c.ctx)?),
        (&Method::GET, ["AuditEvent"]) => bundle_reply(c, fhir.audit_events(&c.params, &c.ctx)?),
        (&Method::POST, ["AuditEvent", "_search"]) => bundle_reply(c, fhir.audit_events(&form_params(c)?, &c.ctx)?),
        (_, ["AuditEvent", ..]) => Err(InteractionError::MethodNotAllowed(
            "AuditEvents are recorded by the server and only read and searched (AuditEvent はサーバが記録し、読み取りと検索のみ可能です)".into(),
        )),
        (&Method::GET, []) => bundle_reply(c, fhir.search(None, &c.params, &c.ctx)?),
        (&Method::POST, ["_search"]) => bundle_reply(c, fhir.search(None, &form_params(c)?, &c.ctx)?),
        (&Method::POST, []) => {
            let body = resource_body(c)?;
            let _ = c.bundle_requests.set(crate::audit_trail::bundle_requests(&body));
            let out = fhir.bundle(body, &c.ctx)?;
            ok_resource(c, 200, &out)
        }
        (&Method::GET, ["_history"]) => bundle_reply(c, fhir.history(HistoryScope::System, &c.params, &c.ctx)?),
        (&Method::GET, [ty]) => bundle_reply(c, fhir.search(Some(ty), &c.params, &c.ctx)?),
        (&Method::POST, [ty, "_search"]) => {
            fhir.known_type(ty)?;
            bundle_reply(c, fhir.search(Some(ty), &form_params(c)?, &c.ctx)?)
        }
        (&Method::GET, [ty, "_history"]) => {
            bundle_reply(c, fhir.history(HistoryScope::Type(ty.to_string()), &c.params, &c.ctx)?)
        }
        (&Method::POST, [ty]) => {
            fhir.known_type(ty)?;
            let body = binary_or_resource_body(state, c, ty, None)?;
            let w = fhir.create(ty, body, header(&c.headers, "if-none-exist"), &c.ctx)?;
            written_reply(c, &w)
        }
        (&Method::PUT, [ty]) => {
            fhir.known_type(ty)?;
            let criteria = criteria(c)?;
            let body = binary_or_resource_body(state, c, ty, None)?;
            let w = fhir.conditional_update(ty, &criteria, body, if_match(&c.headers)?, &c.ctx)?;
            written_reply(c, &w)
        }
        (&Method::DELETE, [ty]) => {
            fhir.known_type(ty)?;
            let w = fhir.conditional_delete(ty, &criteria(c)?, &c.ctx)?;
            deleted_reply(c, w)
        }
        (&Method::PATCH, [ty]) => {
            fhir.known_type(ty)?;
            let criteria = criteria(c)?;
            let patch = patch_body(c)?;
            let target = tsunagu_interaction::PatchTarget::Criteria(&criteria);
            let w = fhir.patch(ty, target, &patch, if_match(&c.headers)?, &c.ctx)?;
            written_reply(c, &w)
        }
        (&Method::GET, [ty, id]) => {
            let v = fhir.read(ty, id, &c.ctx)?;
            reserve_read(c, &v)?;
            if not_modified(&c.headers, &v) {
                let mut r = reply::empty(304);
                version_headers(&mut r, &v);
                return Ok(r);
            }
            match &c.raw_binary {
                Some(accept) => crate::binary::reply(c, v, accept),
                None => stored_reply(c, v),
            }
        }
        (&Method::PUT, [ty, id]) => {
            fhir.known_type(ty)?;
            let body = binary_or_resource_body(state, c, ty, Some(id))?;
            let w = fhir.update(ty, id, body, if_match(&c.headers)?, &c.ctx)?;
            written_reply(c, &w)
        }
        (&Method::DELETE, [ty, id]) => {
            let w = fhir.delete(ty, id, if_match(&c.headers)?, &c.ctx)?;
            deleted_reply(c, w)
        }
        (&Method::PATCH, [ty, id]) => {
            fhir.known_type(ty)?;
            let patch = patch_body(c)?;
            let w = fhir.patch(ty, tsunagu_interaction::PatchTarget::Id(id), &patch, if_match(&c.headers)?, &c.ctx)?;
            written_reply(c, &w)
        }
        (&Method::GET, [ty, id, "_history"]) => {
            bundle_reply(c, fhir.history(HistoryScope::Instance(ty.to_string(), id.to_string()), &c.params, &c.ctx)?)
        }
        (&Method::GET, [ty, id, "_history", vid]) => {
            let v = fhir.vread(ty, id, vid, &c.ctx)?;
            reserve_read(c, &v)?;
            match &c.raw_binary {
                Some(accept) => crate::binary::reply(c, v, accept),
                None => stored_reply(c, v),
            }
        }
        (&Method::GET, [comp, id, "*"]) => bundle_reply(c, fhir.compartment_search(comp, id, None, &c.params, &c.ctx)?),
        (&Method::GET, [comp, id, ty]) if !ty.starts_with(['_', '$']) => {
            bundle_reply(c, fhir.compartment_search(comp, id, Some(ty), &c.params, &c.ctx)?)
        }
        (_, [ty, ..]) if !ty.starts_with('_') && !ty.starts_with('$') && *ty != "metadata" => {
            fhir.known_type(ty)?;
            if segs.len() > 4 {
                return Err(InteractionError::bad_request(
                    format!("'{}' is not a FHIR REST path", c.segments.join("/")),
                    format!("'{}' は FHIR REST のパスではありません", c.segments.join("/")),
                ));
            }
            Err(InteractionError::MethodNotAllowed(format!("{m} /{}", c.segments.join("/"))))
        }
        _ => Err(InteractionError::MethodNotAllowed(format!("{m} /{}", c.segments.join("/")))),
    }
}

/// The criteria of a conditional interaction: the query string, minus result parameters.
fn criteria(c: &Call) -> Result<String, InteractionError> {
    let q: Vec<&str> = c
        .query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("_format") && !p.starts_with("_pretty"))
        .collect();
    if q.is_empty() {
        return Err(InteractionError::bad_request(
            "a conditional interaction needs search criteria in the URL",
            "条件付き操作には URL に検索条件が必要です",
        ));
    }
    Ok(q.join("&"))
}

/// `POST _search`: parameters from the form body and the URL together. A search changes
/// nothing, so a form (which a page may send cross-site) is accepted here and only here.
fn form_params(c: &Call) -> Result<SearchParams, InteractionError> {
    let ct = header(&c.headers, "content-type").unwrap_or(if c.body.is_empty() {
        "application/x-www-form-urlencoded"
    } else {
        ""
    });
    if !ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(InteractionError::unsupported_media_type(
            "POST _search takes application/x-www-form-urlencoded",
            "POST _search には application/x-www-form-urlencoded を使ってください",
        ));
    }
    let text = std::str::from_utf8(&c.body).map_err(|_| {
        InteractionError::bad_request("the form body is not UTF-8", "フォーム本文が UTF-8 ではありません")
    })?;
    if !tsunagu_interaction::decodes_as_utf8(text) {
        return Err(tsunagu_interaction::not_utf8());
    }
    let mut p = SearchParams::parse(text);
    p.pairs.extend(c.params.pairs.iter().cloned());
    Ok(p)
}

/// Room in `max_memory_bytes` for answering a resource read by id (parsed again for
/// `_elements`, `_summary` or XML).
fn reserve_read(c: &Call, v: &ResourceVersion) -> Result<(), InteractionError> {
    c.ctx.memory.as_ref().map_or(Ok(()), |m| m.spend_page(v.body.len() as u64))
}

/// A create or update's body: for Binary, content of another type is the Binary's own
/// (`binary.rs`); otherwise a FHIR resource.
fn binary_or_resource_body(state: &AppState, c: &Call, ty: &str, id: Option<&str>) -> Result<Value, InteractionError> {
    if ty == "Binary" {
        if let Some(content_type) = crate::binary::raw_content_type(c)? {
            return crate::binary::from_raw(c, &content_type, id, state.config.limits.max_body_bytes);
        }
    }
    resource_body(c)
}

pub(crate) fn resource_body(c: &Call) -> Result<Value, InteractionError> {
    match body_kind(&c.headers)? {
        BodyKind::Resource(f) => parse_resource(f, &c.body, c.body_limits),
        BodyKind::JsonPatch => Err(InteractionError::unsupported_media_type(
            "a JSON Patch body is only accepted by PATCH",
            "JSON Patch の本文は PATCH でのみ受け付けます",
        )),
    }
}

fn patch_body(c: &Call) -> Result<PatchBody, InteractionError> {
    match body_kind(&c.headers)? {
        BodyKind::JsonPatch => {
            crate::negotiate::check_body_values(&c.body, false, c.body_limits)?;
            tsunagu_format::json_from_slice(&c.body).map(PatchBody::Json).map_err(|e| {
                InteractionError::bad_request(
                    format!("the JSON Patch is not JSON: {e}"),
                    format!("JSON Patch が JSON として不正です: {}", crate::negotiate::json_error_ja(&e)),
                )
            })
        }
        BodyKind::Resource(f) => {
            let v = parse_resource(f, &c.body, c.body_limits)?;
            if v.get("resourceType").and_then(Value::as_str) == Some("Parameters") {
                Ok(PatchBody::FhirPath(v))
            } else {
                Err(InteractionError::bad_request(
                    "PATCH takes a JSON Patch (application/json-patch+json) or a FHIRPath Patch Parameters resource",
                    "PATCH には JSON Patch（application/json-patch+json）か FHIRPath Patch の Parameters が必要です",
                ))
            }
        }
    }
}

/// `$op` at any level, through the one registry of operations.
fn operation(
    state: &AppState,
    c: &Call,
    ty: Option<&str>,
    id: Option<&str>,
    name: &str,
    level: Level,
) -> Result<Response, InteractionError> {
    let Some(op) = operations::find(name, ty, level) else {
        let at = match (ty, id) {
            (Some(t), Some(i)) => format!("{t}/{i}"),
            (Some(t), None) => t.to_string(),
            _ => "the system".to_string(),
        };
        return Err(InteractionError::not_supported(
            format!("{name} is not an operation this server serves on {at}"),
            format!("{name} は {at} で提供している操作ではありません"),
        ));
    };
    let posted = c.method == Method::POST;
    if !(posted || (c.method == Method::GET && op.get)) {
        return Err(InteractionError::MethodNotAllowed(format!(
            "${} is invoked with {}",
            op.name,
            if op.get { "GET or POST" } else { "POST" }
        )));
    }
    if op.output != Output::Binary && c.params.get("_format").is_some_and(crate::negotiate::rows_format) {
        return Err(rows_refused());
    }
    let body = if posted && !c.body.iter().all(u8::is_ascii_whitespace) { Some(resource_body(c)?) } else { None };
    if op.output == Output::Async {
        return crate::export::kickoff(state, c, ty, id, body);
    }
    let fhir = &state.fhir;
    let out = fhir.invoke(op, &Invocation { ty, id, params: &c.params, body }, &c.ctx)?;
    match op.output {
        Output::Searchset => bundle_reply(c, out),
        Output::Document => crate::document_page::document_reply(c, &out),
        Output::Resource => ok_resource(c, 200, &out),
        Output::Binary => binary_reply(&out),
        Output::Async => unreachable!("asynchronous operations return above"),
    }
}

fn rows_refused() -> InteractionError {
    InteractionError::not_acceptable(
        "Only ViewDefinition/$run answers in csv, ndjson or parquet; resources come as json or xml",
        "csv・ndjson・parquet で応答するのは ViewDefinition/$run だけです。リソースは json か xml で返します",
    )
}

/// A Binary made by an operation, sent as what it holds (`contentType`, decoded `data`).
fn binary_reply(binary: &Value) -> Result<Response, InteractionError> {
    use base64::Engine;
    let content_type = binary.get("contentType").and_then(Value::as_str).unwrap_or("application/octet-stream");
    let data = binary.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(format!("operation output: {e}"))))?;
    let mut r = Response::new(axum::body::Body::from(bytes));
    let ct =
        http::HeaderValue::from_str(content_type).unwrap_or(http::HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    Ok(r)
}

pub(crate) fn ok_resource(c: &Call, status: u16, v: &Value) -> Result<Response, InteractionError> {
    Ok(reply::with_body(status, c.render.format, c.render.body(v)?))
}

fn bundle_reply(c: &Call, bundle: Value) -> Result<Response, InteractionError> {
    let bundle = c.render.shape_entries(bundle);
    ok_resource(c, 200, &bundle)
}

/// A conditional read the current version satisfies (RFC 9110 §13.1.2, §13.1.3):
/// `If-None-Match` naming its ETag or `*`; without `If-None-Match`, `If-Modified-Since` no
/// earlier than its `Last-Modified` (whole seconds, as that header has them).
fn not_modified(h: &HeaderMap, v: &ResourceVersion) -> bool {
    if h.contains_key("if-none-match") {
        let mut tags = h.get_all("if-none-match").iter().filter_map(|l| l.to_str().ok()).flat_map(|l| l.split(','));
        return tags.any(|t| t.trim() == "*" || parse_etag(t.trim()) == Some(v.version));
    }
    let since = header(h, "if-modified-since").and_then(tsunagu_interaction::parse_http_date);
    since.is_some_and(|ms| v.last_updated_ms.div_euclid(1000) <= ms.div_euclid(1000))
}

pub(crate) fn version_headers(r: &mut Response, v: &ResourceVersion) {
    reply::set_header(r, header::ETAG, &etag(v.version));
    reply::set_header(r, header::LAST_MODIFIED, &http_date(v.last_updated_ms));
}

pub(crate) fn stored_reply(c: &Call, v: ResourceVersion) -> Result<Response, InteractionError> {
    // HEAD too: hyper sends the head alone, with the Content-Length GET would have.
    let body = c.render.stored(v.body.clone())?;
    let mut r = reply::with_body(200, c.render.format, body);
    version_headers(&mut r, &v);
    Ok(r)
}

fn written_reply(c: &Call, w: &Written) -> Result<Response, InteractionError> {
    let v = &w.version;
    let status = w.status();
    let mut r = match c.ctx.return_pref {
        ReturnPreference::Minimal => reply::empty(status),
        ReturnPreference::Representation => {
            let body = c.render.stored(v.body.clone())?;
            reply::with_body(status, c.render.format, body)
        }
        ReturnPreference::OperationOutcome => {
            let (en, ja) = if w.existing {
                (
                    "A matching resource exists; nothing was created",
                    "条件に一致するリソースが既に存在するため、作成しませんでした",
                )
            } else if w.unchanged {
                (
                    "The resource is unchanged; no new version was written",
                    "リソースに変更がないため、新しいバージョンは作成しませんでした",
                )
            } else {
                ("The resource was stored", "リソースを保存しました")
            };
            reply::with_body(status, c.render.format, c.render.body(&information(en, ja, c.render.lang))?)
        }
    };
    version_headers(&mut r, v);
    let location = format!("{}/{}/{}/_history/{}", c.ctx.base, v.resource_type, v.id, v.version);
    reply::set_header(&mut r, header::LOCATION, &location);
    Ok(r)
}

fn deleted_reply(c: &Call, w: Option<Written>) -> Result<Response, InteractionError> {
    let mut r = match c.ctx.return_pref {
        ReturnPreference::OperationOutcome => {
            let oo = information("The resource was deleted", "リソースを削除しました", c.render.lang);
            reply::with_body(200, c.render.format, c.render.body(&oo)?)
        }
        _ => reply::empty(204),
    };
    if let Some(w) = w {
        reply::set_header(&mut r, header::ETAG, &etag(w.version.version));
    }
    Ok(r)
}
