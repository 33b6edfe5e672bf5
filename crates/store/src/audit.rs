//! The audit trail's storage contract: records appended in write order, each holding the
//! SHA-256 of the one before, so that editing, removing, inserting or reordering a record
//! breaks the chain where it happened. The hash covers every stored field, including the
//! columns searches use, and the record's number.

use sha2::{Digest, Sha256};

/// An audit record about to be appended. The searchable fields repeat what the body says.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The AuditEvent's id.
    pub id: String,
    pub recorded_ms: i64,
    /// Who acted (a client id, a user id, `operator:…`).
    pub agent: String,
    /// The patient the event concerns (`Patient/123`), or empty.
    pub patient: String,
    /// The interaction (`read`, `create`, `search-type`, …).
    pub subtype: String,
    /// FHIR AuditEvent.outcome: `0` success, `4` minor failure, `8` serious failure.
    pub outcome: String,
    /// References the event is about, space-separated.
    pub entities: String,
    /// The AuditEvent as compact JSON.
    pub body: Vec<u8>,
}

/// A stored audit record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, 3 … in append order.
    pub n: i64,
    pub id: String,
    pub recorded_ms: i64,
    pub agent: String,
    pub patient: String,
    pub subtype: String,
    pub outcome: String,
    pub entities: String,
    pub body: Vec<u8>,
    /// The hash of record `n - 1` (zeros for the first).
    pub prev: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Which audit records a search wants, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub id: Option<String>,
    /// `[since_ms, until_ms)` on the recorded time.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub agent: Option<String>,
    pub patient: Option<String>,
    pub subtype: Option<String>,
    pub outcome: Option<String>,
    /// A reference that must be among the entities.
    pub entity: Option<String>,
    /// Paging: only records numbered below this.
    pub before_n: Option<i64>,
    pub count: usize,
}

/// The hash the chain starts from.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of record `n` with these fields after `prev`. Every variable-length field is
/// length-prefixed, so no two different records hash the same input.
pub fn chain_hash(prev: &[u8], n: i64, e: &AuditEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(n.to_be_bytes());
    h.update(e.recorded_ms.to_be_bytes());
    for field in [e.id.as_bytes(), e.agent.as_bytes(), e.patient.as_bytes(), e.subtype.as_bytes()] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    for field in [e.outcome.as_bytes(), e.entities.as_bytes(), &e.body] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.finalize().into()
}

impl AuditRecord {
    fn entry(&self) -> AuditEntry {
        AuditEntry {
            id: self.id.clone(),
            recorded_ms: self.recorded_ms,
            agent: self.agent.clone(),
            patient: self.patient.clone(),
            subtype: self.subtype.clone(),
            outcome: self.outcome.clone(),
            entities: self.entities.clone(),
            body: self.body.clone(),
        }
    }
}

/// How a chain was found to be broken, at the first record that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The record's content no longer matches its hash: it was edited.
    Edited { n: i64 },
    /// Numbers jump from `after` to `n`: records between were deleted.
    Missing { after: i64, n: i64 },
    /// The record does not follow the one before it: a record was inserted, removed and
    /// renumbered, or the order changed.
    Unlinked { n: i64 },
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub records: u64,
    /// The hash of the last record (for the operator to keep elsewhere: a chain cut at its
    /// end is only detected against it).
    pub head: [u8; 32],
    pub first_break: Option<ChainBreak>,
}

/// Checks records in order, one at a time, remembering only the previous link.
pub struct ChainWalker {
    expected_n: i64,
    prev: [u8; 32],
    records: u64,
    first_break: Option<ChainBreak>,
}

impl Default for ChainWalker {
    fn default() -> Self {
        ChainWalker { expected_n: 1, prev: GENESIS, records: 0, first_break: None }
    }
}

impl ChainWalker {
    pub fn step(&mut self, r: &AuditRecord) {
        self.records += 1;
        let computed = chain_hash(&r.prev, r.n, &r.entry());
        if self.first_break.is_none() {
            if r.n != self.expected_n {
                self.first_break = Some(ChainBreak::Missing { after: self.expected_n - 1, n: r.n });
            } else if computed[..] != r.hash[..] {
                self.first_break = Some(ChainBreak::Edited { n: r.n });
            } else if r.prev[..] != self.prev[..] {
                self.first_break = Some(ChainBreak::Unlinked { n: r.n });
            }
        }
        self.expected_n = r.n + 1;
        // Go on from the stored hash, so one edit is reported once, not at every record after.
        self.prev = r.hash.as_slice().try_into().unwrap_or(computed);
    }

    pub fn finish(self) -> ChainReport {
        ChainReport { records: self.records, head: self.prev, first_break: self.first_break }
    }
}

/// Lower-case hex, for printing hashes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
