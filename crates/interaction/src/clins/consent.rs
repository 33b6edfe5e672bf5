//! Patients' consents to share their JP-CLINS items, as R4 Consent resources, kept in a
//! table that is rebuilt when a Consent is written.
//!
//! A Consent counts when `status` is `active`. Its person is `Consent.patient`: a
//! reference to any of the person's Patient resources, or a logical reference by the
//! insurance member (or public-assistance) identifier. `provision.type` `deny` refuses,
//! anything else permits; `provision.period` bounds it; `provision.actor[].reference`
//! names the institutions (by identifier, system
//! `http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no`, or as
//! `Organization/{10-digit code}`); no actor means every institution.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use tsunagu_store::{SearchQuery, Store};

use super::sharing::person_keys;

pub const INSTITUTION_SYSTEM: &str = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";

/// Each person's consent rules, by person key.
type RuleTable = HashMap<String, Vec<Rule>>;

#[derive(Debug, Clone)]
struct Rule {
    /// `None`: every institution.
    institution: Option<String>,
    start_ms: i64,
    end_ms: i64,
    permit: bool,
}

/// What an institution may see now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Only the items of these persons (default deny).
    Only(Vec<String>),
    /// Every person's items but these (default allow).
    AllBut(Vec<String>),
}

thread_local! {
    /// A Consent was written in the write transaction running on this thread.
    static WRITTEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called as a write transaction begins, for each version it writes, and once it committed:
/// the table is invalidated only after the commit, so a reader can never cache the old
/// Consents under the new generation.
pub(crate) fn begin() {
    WRITTEN.with(|w| w.set(false));
}

pub(crate) fn written(ty: &str) {
    if ty == "Consent" {
        WRITTEN.with(|w| w.set(true));
    }
}

pub(crate) fn committed(consents: &Consents) {
    if WRITTEN.with(|w| w.replace(false)) {
        consents.changed();
    }
}

#[derive(Default)]
pub(crate) struct Consents {
    /// Bumped by every Consent write; the table is rebuilt when it moved.
    generation: AtomicU64,
    table: RwLock<Option<(u64, Arc<RuleTable>)>>,
    /// Decisions already made, by (institution, default), each good for one generation
    /// and until the next rule starts or ends: every request asks, usually several times.
    decided: RwLock<HashMap<(Option<String>, bool), CachedDecision>>,
}

struct CachedDecision {
    generation: u64,
    /// The decision holds for `now` in `[from_ms, until_ms)`.
    from_ms: i64,
    until_ms: i64,
    decision: Arc<Decision>,
}

impl Consents {
    /// A Consent was written (or deleted): read them again before the next decision.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn decide(
        &self,
        store: &dyn Store,
        institution: Option<&str>,
        now_ms: i64,
        default_allow: bool,
    ) -> Arc<Decision> {
        let generation = self.generation.load(Ordering::SeqCst);
        let key = (institution.map(str::to_string), default_allow);
        if let Some(c) = self.decided.read().get(&key) {
            if c.generation == generation && c.from_ms <= now_ms && now_ms < c.until_ms {
                return c.decision.clone();
            }
        }
        let table = self.table(store);
        // The decision stays true until the nearest rule boundary on either side of now.
        let (mut from_ms, mut until_ms) = (i64::MIN, i64::MAX);
        for r in table.values().flatten() {
            for edge in [r.start_ms, r.end_ms] {
                if edge <= now_ms {
                    from_ms = from_ms.max(edge);
                } else {
                    until_ms = until_ms.min(edge);
                }
            }
        }
        let decision = Arc::new(Self::decide_in(&table, institution, now_ms, default_allow));
        let mut decided = self.decided.write();
        if decided.len() > 10_000 {
            // Bounded: institutions are many, but only so many ask within one generation.
            decided.clear();
        }
        decided.insert(key, CachedDecision { generation, from_ms, until_ms, decision: decision.clone() });
        decision
    }

    fn decide_in(table: &RuleTable, institution: Option<&str>, now_ms: i64, default_allow: bool) -> Decision {
        let (mut permitted, mut denied) = (Vec::new(), Vec::new());
        for (person, rules) in table.iter() {
            let current = rules.iter().filter(|r| {
                r.start_ms <= now_ms
                    && now_ms < r.end_ms
                    && r.institution.as_deref().is_none_or(|i| Some(i) == institution)
            });
            let (mut permit, mut deny) = (false, false);
            for r in current {
                if r.permit {
                    permit = true
                } else {
                    deny = true
                }
            }
            if deny {
                denied.push(person.clone());
            } else if permit {
                permitted.push(person.clone());
            }
        }
        permitted.sort();
        denied.sort();
        if default_allow {
            Decision::AllBut(denied)
        } else {
            Decision::Only(permitted)
        }
    }

    fn table(&self, store: &dyn Store) -> Arc<RuleTable> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((g, t)) = self.table.read().as_ref() {
            if *g == generation {
                return t.clone();
            }
        }
        let table = Arc::new(read_all(store));
        *self.table.write() = Some((generation, table.clone()));
        table
    }
}

fn read_all(store: &dyn Store) -> RuleTable {
    let mut out = RuleTable::new();
    let q = SearchQuery { resource_type: Some("Consent".into()), count: 1000, ..Default::default() };
    let read = tsunagu_store::scan(store, q, |v| -> Result<bool, tsunagu_store::StoreError> {
        let Ok(consent) = serde_json::from_slice::<Value>(&v.body) else { return Ok(true) };
        if consent.get("status").and_then(Value::as_str) != Some("active") {
            return Ok(true);
        }
        for person in persons_of(store, &consent) {
            out.entry(person).or_default().extend(rules_of(&consent));
        }
        Ok(true)
    });
    if read.is_err() {
        tracing::error!("the Consent resources could not be read; no consent counts until they can");
    }
    out
}

fn persons_of(store: &dyn Store, consent: &Value) -> Vec<String> {
    let Some(patient) = consent.get("patient") else { return Vec::new() };
    if let Some(identifier) = patient.get("identifier") {
        let p = serde_json::json!({ "identifier": [identifier] });
        return person_keys(&p);
    }
    let Some(reference) = patient.get("reference").and_then(Value::as_str) else { return Vec::new() };
    let Some(id) = reference.strip_prefix("Patient/") else { return Vec::new() };
    match store.read("Patient", id) {
        Ok(Some(v)) if !v.deleted => {
            serde_json::from_slice::<Value>(&v.body).map(|p| person_keys(&p)).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

fn rules_of(consent: &Value) -> Vec<Rule> {
    let provision = consent.get("provision");
    let permit = provision.and_then(|p| p.get("type")).and_then(Value::as_str) != Some("deny");
    let period = provision.and_then(|p| p.get("period"));
    let bound = |key: &str, default: i64| {
        period
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .and_then(crate::instant::parse_range)
            .map_or(default, |(lo, hi)| if key == "start" { lo } else { hi })
    };
    let (start_ms, end_ms) = (bound("start", i64::MIN), bound("end", i64::MAX));
    let actors: Vec<Option<String>> = provision
        .and_then(|p| p.get("actor"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| institution_of(a.get("reference")))
        .collect();
    if actors.is_empty() {
        return vec![Rule { institution: None, start_ms, end_ms, permit }];
    }
    // An actor this server cannot read as an institution names nobody.
    actors.into_iter().flatten().map(|i| Rule { institution: Some(i), start_ms, end_ms, permit }).collect()
}

fn institution_of(reference: Option<&Value>) -> Option<String> {
    let r = reference?;
    if let Some(id) = r.get("identifier") {
        if id.get("system").and_then(Value::as_str) == Some(INSTITUTION_SYSTEM) {
            return id.get("value").and_then(Value::as_str).map(str::to_string);
        }
        return None;
    }
    let code = r.get("reference").and_then(Value::as_str)?.strip_prefix("Organization/")?;
    (code.len() == 10 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn periods_actors_and_denials() {
        let c = json!({ "status": "active", "provision": { "type": "permit",
            "period": { "start": "2026-01-01", "end": "2026-12-31" },
            "actor": [{ "reference": { "identifier": { "system": INSTITUTION_SYSTEM, "value": "1312345670" } } },
                      { "reference": { "reference": "Organization/1318814790" } },
                      { "reference": { "reference": "Organization/not-a-code" } }] } });
        let rules = rules_of(&c);
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r.permit));
        assert_eq!(rules[0].institution.as_deref(), Some("1312345670"));
        assert!(rules[0].start_ms < rules[0].end_ms);
        let all = rules_of(&json!({ "status": "active", "provision": { "type": "deny" } }));
        assert_eq!(all.len(), 1);
        assert!(!all[0].permit && all[0].institution.is_none());
    }

    /// A cached decision is reused only within its generation and until the next rule
    /// starts or ends.
    #[test]
    fn cached_decisions_follow_periods_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
        let consents = Consents::default();
        let rule = |start_ms, end_ms| Rule { institution: Some("A".into()), start_ms, end_ms, permit: true };
        let table: RuleTable = [("p".to_string(), vec![rule(100, 200)])].into_iter().collect();
        *consents.table.write() = Some((0, Arc::new(table)));
        let only = |v: &[&str]| Decision::Only(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(*consents.decide(&store, Some("A"), 150, false), only(&["p"]));
        assert_eq!(*consents.decide(&store, Some("A"), 250, false), only(&[]));
        assert_eq!(*consents.decide(&store, Some("A"), 120, false), only(&["p"]));
        assert_eq!(*consents.decide(&store, Some("B"), 120, false), only(&[]));
        assert_eq!(*consents.decide(&store, Some("A"), 50, false), only(&[]));
        // A Consent write: the table is read again (the store holds none now).
        consents.changed();
        assert_eq!(*consents.decide(&store, Some("A"), 150, false), only(&[]));
    }
}
