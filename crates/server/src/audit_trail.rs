//! One audit record per request that wrote nothing itself (writes record theirs inside
//! their transaction): what the request was, from its method and path, with its outcome.

use http::Method;
use tsunagu_interaction::AuditEvent;

use crate::dispatch::Call;
use crate::AppState;

/// Records the request unless its one write already did. A Bundle is always recorded
/// (with its entries' requests), whatever its writes recorded.
pub(crate) fn record(state: &AppState, c: &Call, status: u16) {
    let segs: Vec<&str> = c.segments.iter().map(String::as_str).collect();
    let bundle = c.method == Method::POST && segs.is_empty();
    if c.ctx.audited.load(std::sync::atomic::Ordering::Relaxed) > 0 && status < 400 && !bundle {
        return;
    }
    let (subtype, action, mut entities) = describe(&c.method, &segs);
    let mut query = c.query.clone();
    if c.method == Method::POST && segs.last() == Some(&"_search") {
        // The search's parameters are in the form body.
        let form = String::from_utf8_lossy(&c.body);
        query = [query.as_str(), form.as_ref()].iter().filter(|q| !q.is_empty()).copied().collect::<Vec<_>>().join("&");
    }
    if bundle {
        entities = c.bundle_requests.get().cloned().unwrap_or_default();
    }
    let request = format!("{} /{}{}{}", c.method, c.segments.join("/"), if query.is_empty() { "" } else { "?" }, query);
    let event = AuditEvent { caller: &c.ctx.caller, subtype, action, status, entities, request: Some(request) };
    state.audit.record(tsunagu_interaction::audit_entry(&event, now_ms()));
}

/// A request refused before anyone was identified (no token, or a bad one).
pub(crate) fn record_unauthenticated(state: &AppState, parts: &http::request::Parts, status: u16) {
    let mut caller = tsunagu_interaction::Caller::operator("none");
    caller.agent.who = "anonymous".into();
    caller.agent.address = parts.extensions.get::<crate::Peer>().map(|p| p.addr.ip().to_string());
    let segs: Vec<&str> = parts.uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // No entities: nobody identified may put records into a patient's trail.
    let (subtype, action, _) = describe(&parts.method, &segs);
    let entities = Vec::new();
    let request = format!("{} {}", parts.method, parts.uri.path());
    let event = AuditEvent { caller: &caller, subtype, action, status, entities, request: Some(request) };
    state.audit.try_record(tsunagu_interaction::audit_entry(&event, now_ms()));
}

/// `METHOD url` of each entry of a batch or transaction (the first 1,000), so a batch's
/// reads are named in the trail too (spaces become `_`: entities are space-separated).
pub(crate) fn bundle_requests(bundle: &serde_json::Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .take(1000)
        .filter_map(|e| {
            let r = &e["request"];
            Some(format!("{} {}", r["method"].as_str()?, r["url"].as_str()?).replace(' ', "_"))
        })
        .collect()
}

/// The FHIR interaction, the action code and the resources a request names.
fn describe(method: &Method, segs: &[&str]) -> (&'static str, &'static str, Vec<String>) {
    let op = |s: &str| s.starts_with('$');
    let one = |parts: &[&str]| vec![parts.join("/")];
    match (method.as_str(), segs) {
        // Bulk export: status polls, downloads and cancellations name the job.
        ("GET" | "HEAD", ["$export-status", job]) => ("operation", "R", vec![format!("$export-status/{job}")]),
        ("DELETE", ["$export-status", job]) => ("operation", "D", vec![format!("$export-status/{job}")]),
        ("GET" | "HEAD", ["$export-file", job, _]) => ("operation", "R", vec![format!("$export-file/{job}")]),
        ("GET" | "HEAD", []) | ("POST", ["_search"]) => ("search-system", "E", vec![]),
        ("GET" | "HEAD", ["_history"]) => ("history-system", "R", vec![]),
        ("POST", []) => ("batch", "E", vec![]),
        ("GET" | "POST", [ty, o]) | ("GET" | "POST", [ty, _, o]) if op(o) => {
            let entity = if segs.len() == 3 { one(&segs[..2]) } else { vec![ty.to_string()] };
            ("operation", "E", entity)
        }
        ("GET" | "HEAD", [_]) | ("POST", [_, "_search"]) => ("search-type", "E", vec![]),
        ("GET" | "HEAD", [_, "_history"]) => ("history-type", "R", vec![]),
        ("GET" | "HEAD", [_, _]) => ("read", "R", one(segs)),
        ("GET" | "HEAD", [_, _, "_history"]) => ("history-instance", "R", one(&segs[..2])),
        ("GET" | "HEAD", [_, _, "_history", _]) => ("vread", "R", one(segs)),
        ("GET" | "HEAD", [c, id, _]) => ("search-type", "E", vec![format!("{c}/{id}")]),
        ("POST", [_]) => ("create", "C", vec![]),
        ("PUT", [_]) => ("update", "U", vec![]),
        ("PUT", [_, _]) => ("update", "U", one(segs)),
        ("PATCH", [_]) => ("patch", "U", vec![]),
        ("PATCH", [_, _]) => ("patch", "U", one(segs)),
        ("DELETE", [_]) => ("delete", "D", vec![]),
        ("DELETE", [_, _]) => ("delete", "D", one(segs)),
        _ => ("operation", "E", vec![]),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
