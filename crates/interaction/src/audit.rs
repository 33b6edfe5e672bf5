//! The audit trail's records: one R4 AuditEvent per request (following IHE Basic Audit
//! Log Patterns: a RESTful-operation event with the interaction as subtype, the requesting
//! agent with its network address, this server as observer, the resources or the query as
//! entities), and `AuditLog`, which appends the records of reads in batches.
//!
//! Writes put theirs in their own write transaction (`access_txn.rs`), so no acknowledged
//! write lacks one. Reads go through `AuditLog`: a record is durable at most
//! `flush_interval` after the response was sent, which is what a crash can lose.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tsunagu_store::{AuditEntry, Store};

use crate::access::Caller;

/// What happened, for one audit record.
pub struct AuditEvent<'a> {
    pub caller: &'a Caller,
    /// The FHIR restful-interaction code (`read`, `search-type`, `create`, `transaction`,
    /// `operation`, …) or `login`/`token` for the authorization server.
    pub subtype: &'a str,
    /// C, R, U, D or E (AuditEvent.action).
    pub action: &'a str,
    /// The HTTP status the request was answered with.
    pub status: u16,
    /// Resources the event is about (`Patient/1`, `Observation/2/_history/3`).
    pub entities: Vec<String>,
    /// The request as the client sent it (method, path and query), for searches.
    pub request: Option<String>,
}

/// The stored form of an event, recorded now.
pub fn audit_entry(e: &AuditEvent<'_>, now_ms: i64) -> AuditEntry {
    let id = uuid::Uuid::now_v7().to_string();
    let outcome = match e.status {
        0..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let agent = &e.caller.agent;
    let who = if agent.who.is_empty() { "anonymous" } else { agent.who.as_str() };
    let mut requestor = json!({
        "type": { "coding": [{ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                                "display": "Source Role ID" }] },
        "who": { "identifier": { "system": "urn:tsunagu:agent", "value": who } },
        "requestor": true,
    });
    if let Some(user) = &agent.fhir_user {
        requestor["who"]["reference"] = json!(user);
    }
    if let Some(client) = &agent.client_id {
        requestor["altId"] = json!(client);
    }
    if let Some(role) = &agent.role {
        requestor["role"] = json!([{ "text": role }]);
    }
    if let Some(addr) = &agent.address {
        requestor["network"] = json!({ "address": addr, "type": "2" });
    }
    let mut agents = vec![requestor];
    if let Some(org) = &agent.organization {
        agents.push(json!({ "who": { "reference": org }, "requestor": false }));
    }
    let mut entities: Vec<Value> =
        e.entities.iter().map(|r| json!({ "what": { "reference": r }, "role": { "code": "4" } })).collect();
    if let Some(req) = &e.request {
        use base64::Engine;
        entities.push(json!({
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query" },
            "description": req,
            "query": base64::engine::general_purpose::STANDARD.encode(req.as_bytes()),
        }));
    }
    let patient = patient_of(e);
    let mut body = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                  "display": "RESTful Operation" },
        "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": e.subtype }],
        "action": e.action,
        "recorded": crate::instant::format_instant(now_ms),
        "outcome": outcome,
        "agent": agents,
        "source": { "observer": { "display": "Tsunagu" },
                    "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4" }] },
    });
    if outcome != "0" {
        body["outcomeDesc"] = json!(format!("HTTP {}", e.status));
    }
    if !entities.is_empty() {
        body["entity"] = Value::Array(entities);
    }
    AuditEntry {
        id,
        recorded_ms: now_ms,
        agent: who.to_string(),
        patient: patient.unwrap_or_default(),
        subtype: e.subtype.to_string(),
        outcome: outcome.to_string(),
        entities: e.entities.join(" "),
        body: serde_json::to_vec(&body).expect("a JSON value always serialises"),
    }
}

/// The patient an event concerns: the one a `patient/` token is bound to, else the first
/// Patient among the entities.
fn patient_of(e: &AuditEvent<'_>) -> Option<String> {
    if let Some(p) = e.caller.patient() {
        return Some(format!("Patient/{p}"));
    }
    e.entities.iter().find(|r| r.starts_with("Patient/")).map(|r| r.split('/').take(2).collect::<Vec<_>>().join("/"))
}

enum Message {
    Entry(AuditEntry),
    Flush(SyncSender<()>),
}

/// Appends read records in batches on a thread of its own: one transaction per
/// `flush_interval` (or per 1,000 records), instead of one per read. The queue is bounded;
/// when the store cannot keep up, requests wait for room rather than memory growing.
pub struct AuditLog {
    tx: Option<SyncSender<Message>>,
    thread: Option<std::thread::JoinHandle<()>>,
    flush_interval: Duration,
    dropped: std::sync::atomic::AtomicU64,
}

const BATCH: usize = 1000;
/// Records held while the store refuses them, at most.
const MAX_UNSTORED: usize = 100_000;

impl AuditLog {
    pub fn start(store: Arc<dyn Store>, flush_interval: Duration, capacity: usize) -> AuditLog {
        let (tx, rx) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("tsunagu-audit".into())
            .spawn(move || run(store, rx, flush_interval))
            .expect("the audit thread starts");
        AuditLog { tx: Some(tx), thread: Some(thread), flush_interval, dropped: Default::default() }
    }

    /// The most time a recorded read spends before it is durable.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    pub fn record(&self, entry: AuditEntry) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Message::Entry(entry));
        }
    }

    /// [`AuditLog::record`] without waiting: when the queue is full the record is dropped
    /// (and counted). For requests nobody was identified for, so that a flood of them can
    /// neither hold threads nor crowd out the records of real requests.
    pub fn try_record(&self, entry: AuditEntry) {
        if let Some(tx) = &self.tx {
            if tx.try_send(Message::Entry(entry)).is_err() {
                let n = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!("{n} audit records of unauthenticated requests dropped (audit queue full)");
                }
            }
        }
    }

    /// Returns once everything recorded so far is stored.
    pub fn flush(&self) {
        let (done, wait) = sync_channel(1);
        if let Some(tx) = &self.tx {
            if tx.send(Message::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(store: Arc<dyn Store>, rx: Receiver<Message>, interval: Duration) {
    let mut batch: Vec<AuditEntry> = Vec::new();
    let mut since: Option<Instant> = None;
    let store_batch = |batch: &mut Vec<AuditEntry>| {
        if batch.is_empty() {
            return;
        }
        match store.append_audit(batch) {
            Ok(()) => batch.clear(),
            Err(e) => tracing::error!("audit records could not be stored ({} waiting): {e}", batch.len()),
        }
    };
    loop {
        let wait = since.map_or(interval, |s| interval.saturating_sub(s.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(Message::Entry(e)) => {
                since.get_or_insert_with(Instant::now);
                batch.push(e);
                if batch.len() >= BATCH {
                    store_batch(&mut batch);
                    // The store is failing: stop taking records (callers wait on the
                    // bounded queue) until it takes these, rather than grow without bound.
                    while batch.len() >= MAX_UNSTORED {
                        std::thread::sleep(interval);
                        store_batch(&mut batch);
                    }
                    since = None;
                }
            }
            Ok(Message::Flush(done)) => {
                store_batch(&mut batch);
                since = None;
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                store_batch(&mut batch);
                since = if batch.is_empty() { None } else { Some(Instant::now()) };
            }
            Err(RecvTimeoutError::Disconnected) => {
                store_batch(&mut batch);
                return;
            }
        }
    }
}
