//! One audit record per request that wrote nothing itself (writes record theirs inside
//! their transaction): what the request was, from its method and path, with its outcome.

use http::Method;
use tsunagu_interaction::AuditEvent;

use crate::dispatch::Call;
use crate::AppState;

/// Records the request unless its writes already did.
pub(crate) fn record(state: &AppState, c: &Call, status: u16) {
    if c.ctx.audited.load(std::sync::atomic::Ordering::Relaxed) > 0 && status < 400 {
        return;
    }
    let segs: Vec<&str> = c.segments.iter().map(String::as_str).collect();
    let (subtype, action, entities) = describe(&c.method, &segs);
    let request =
        format!("{} /{}{}{}", c.method, c.segments.join("/"), if c.query.is_empty() { "" } else { "?" }, c.query);
    let event = AuditEvent { caller: &c.ctx.caller, subtype, action, status, entities, request: Some(request) };
    state.audit.record(tsunagu_interaction::audit_entry(&event, now_ms()));
}

/// A request refused before anyone was identified (no token, or a bad one).
pub(crate) fn record_unauthenticated(state: &AppState, parts: &http::request::Parts, status: u16) {
    let mut caller = tsunagu_interaction::Caller::operator("none");
    caller.agent.who = "anonymous".into();
    caller.agent.address = parts.extensions.get::<crate::Peer>().map(|p| p.addr.ip().to_string());
    let segs: Vec<&str> = parts.uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let (subtype, action, entities) = describe(&parts.method, &segs);
    let request = format!("{} {}", parts.method, parts.uri.path());
    let event = AuditEvent { caller: &caller, subtype, action, status, entities, request: Some(request) };
    let entry = tsunagu_interaction::audit_entry(&event, now_ms());
    // Called on the async side: when the audit queue is full, the wait happens on the
    // blocking pool, not on a runtime thread.
    let audit = state.audit.clone();
    tokio::task::spawn_blocking(move || audit.record(entry));
}

/// The FHIR interaction, the action code and the resources a request names.
fn describe(method: &Method, segs: &[&str]) -> (&'static str, &'static str, Vec<String>) {
    let op = |s: &str| s.starts_with('$');
    let one = |parts: &[&str]| vec![parts.join("/")];
    match (method.as_str(), segs) {
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
