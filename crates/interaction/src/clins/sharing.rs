//! Who sees the items of a submission. Every item (and the submission Bundle) carries
//! server-set tags: `urn:tsunagu:submitter|{医療機関コード}` and one
//! `urn:tsunagu:person|{kind}:{identifier}` per identifier the person is matched by. From
//! them and the JP-CLINS indication tags, each request gets search clauses that the
//! access layer adds to what its scopes reach:
//!
//! - the submitting institution sees its items;
//! - another institution (or a client acting for none) sees an item only when it is not
//!   `UNDELIVERED` and the person's consent allows it now (or, with `consent_default =
//!   "allow"`, when no current consent refuses it);
//! - a patient's app sees its own items except `UNDELIVERED` and `UNINFORMED` ones — the
//!   items of every institution's copy of the person, when the app is bound to a Patient a
//!   submission carried (the access layer widens the patient's compartment by the person
//!   tags of that Patient);
//! - operators (unrestricted callers) see everything.
//!
//! Persons are matched across institutions by the insurance member identifier
//! (`JP_Insurance_memberID`) and the public-assistance identifier (`JP_PublicPayer_memberID`),
//! compared after the project's text folding (so full-width and half-width digits agree).

use serde_json::Value;
use tsunagu_store::{Clause, Condition, SystemMatch, Test};

use super::consent::Decision;
use crate::access::Caller;
use crate::{Interactions, Permission};

pub const SUBMITTER_SYSTEM: &str = "urn:tsunagu:submitter";
pub const PERSON_SYSTEM: &str = "urn:tsunagu:person";
pub const INDICATION_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication";
pub const INSURANCE_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
pub const PUBLIC_PAYER_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_PublicPayer_memberID";

/// The person keys of a Patient (or anything with `identifier`): `insurance:{value}` and
/// `public:{value}`, values folded.
pub fn person_keys(patient: &Value) -> Vec<String> {
    let mut out: Vec<String> = patient
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|id| {
            let kind = match id.get("system").and_then(Value::as_str)? {
                INSURANCE_SYSTEM => "insurance",
                PUBLIC_PAYER_SYSTEM => "public",
                _ => return None,
            };
            let value = id.get("value").and_then(Value::as_str)?;
            Some(format!("{kind}:{}", tsunagu_search::normalize(value)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn tag(system: &str, code: Option<&str>, negate: bool) -> Condition {
    Condition::Index {
        param: "_tag".into(),
        test: Test::Token { system: SystemMatch::Is(system.into()), code: code.map(str::to_string) },
        negate,
    }
}

/// Tagged with the person key `key` (one of [`person_keys`]).
pub(crate) fn person_tag(key: &str) -> Condition {
    tag(PERSON_SYSTEM, Some(key), false)
}

impl Interactions {
    /// The person keys the server tagged `Patient/{pid}` with when a submission carried it
    /// (never those of a Patient written otherwise: only submissions may set the tag). A
    /// patient's app bound to one institution's copy of them reaches every copy's items.
    pub(crate) fn persons_of_patient(&self, pid: &str) -> Vec<String> {
        if !self.submissions_present() {
            return Vec::new();
        }
        let Ok(Some(v)) = self.store.read("Patient", pid) else { return Vec::new() };
        if v.deleted {
            return Vec::new();
        }
        let Ok(patient) = serde_json::from_slice::<Value>(&v.body) else { return Vec::new() };
        patient
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t.get("system").and_then(Value::as_str) == Some(PERSON_SYSTEM))
            .filter_map(|t| t.get("code").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// The clauses that keep `caller` to the JP-CLINS items it may see with `p` (none for
    /// unrestricted callers, or while no submission is stored).
    pub(crate) fn sharing_clauses(&self, caller: &Caller, p: Permission) -> Vec<Clause> {
        if caller.is_unrestricted() || !self.submissions_present() {
            return Vec::new();
        }
        let not_item = tag(SUBMITTER_SYSTEM, None, true);
        let institution = caller.agent.institution.as_deref();
        let own: Vec<Condition> = institution.map(|i| tag(SUBMITTER_SYSTEM, Some(i), false)).into_iter().collect();
        let open = |extra: Vec<Condition>| {
            let mut any = vec![not_item.clone()];
            any.extend(own.iter().cloned());
            any.extend(extra);
            Clause { any }
        };
        if !matches!(p, Permission::Read | Permission::Search) {
            // Items change only by resubmission; nobody else's may be deleted.
            return vec![open(Vec::new())];
        }
        let undelivered = tag(INDICATION_SYSTEM, Some("UNDELIVERED"), true);
        if caller.patient().is_some() {
            return vec![open(vec![undelivered]), open(vec![tag(INDICATION_SYSTEM, Some("UNINFORMED"), true)])];
        }
        let now = chrono::Utc::now().timestamp_millis();
        let decision =
            self.sharing.consents.decide(self.store.as_ref(), institution, now, self.config.consent_default_allow);
        let mut clauses = vec![open(vec![undelivered])];
        match decision.as_ref() {
            Decision::Only(persons) => {
                clauses.push(open(persons.iter().map(|k| tag(PERSON_SYSTEM, Some(k), false)).collect()))
            }
            Decision::AllBut(persons) => {
                clauses.extend(persons.iter().map(|k| open(vec![tag(PERSON_SYSTEM, Some(k), true)])))
            }
        }
        clauses
    }
}
