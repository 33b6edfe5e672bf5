//! 電子カルテ情報共有サービス submissions (JP-CLINS). A Bundle that declares one of the
//! JP-CLINS Bundle profiles is a *submission*, not an opaque resource:
//!
//! - it is validated against that profile (and its entries against theirs) whatever
//!   `validate` is set to, and refused whole when it fails;
//! - it is kept as sent (the document of record), under the id of the first submission
//!   with its `Bundle.identifier`;
//! - each entry is also stored as a resource of its own, an *item*, with an id derived
//!   from the Bundle's id and the entry's `fullUrl`, references between entries rewritten
//!   to those ids, and `meta.source` naming the submission, so ordinary search finds it;
//! - a later submission with the same identifier replaces the Bundle and all its items
//!   in one write transaction (items it no longer carries are deleted, unchanged ones
//!   keep their version); identical content writes nothing;
//! - deleting the Bundle (`DELETE Bundle?identifier=…` or by id) withdraws every item.
//!
//! Why derived ids: the items of a submission are known from the stored Bundle alone, so
//! replacement and withdrawal need no search, and a resubmission that keeps its
//! `fullUrl`s keeps its items' ids (their old versions stay in history).

pub(crate) mod consent;
mod items;
mod retention;
pub mod sharing;
mod submit;
pub mod summary;

pub use retention::{PurgeReport, Retention};
pub use submit::PreparedSubmission;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde_json::Value;

/// The Bundle profiles that make a submission (compared without `|version`).
pub const SUBMISSION_PROFILES: &[&str] = &[
    "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_CLINS",
    "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eReferral",
    "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eDischargeSummary",
    "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_ePCS",
    "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eCheckupGeneral",
    "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Bundle_eCheckupGeneral",
];

/// `meta.source` of an item: this prefix and the id of its submission's Bundle.
pub const SOURCE_PREFIX: &str = "urn:tsunagu:submission:";

/// The JP-CLINS profile `resource` declares, when it is a submission Bundle.
pub fn submission_profile(resource: &Value) -> Option<&str> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    resource.pointer("/meta/profile")?.as_array()?.iter().filter_map(Value::as_str).find(|p| {
        let bare = p.split('|').next().unwrap_or(p);
        SUBMISSION_PROFILES.contains(&bare)
    })
}

/// Verifies the `Bundle.signature` of a submission (HPKI: the server wires
/// `tsunagu-hpki` in). Called only when a signature is present.
pub trait SignatureCheck: Send + Sync {
    /// `Err((english, japanese))` says why the signature does not hold.
    fn verify(&self, bundle: &Value) -> Result<(), (String, String)>;
}

/// What the sharing rules keep between requests.
#[derive(Default)]
pub(crate) struct SharingState {
    pub consents: consent::Consents,
    /// Some submission is stored (then every restricted request gets sharing clauses).
    present: AtomicBool,
    /// When the store was last asked, while none was known (ms since the epoch).
    checked_ms: AtomicI64,
}

impl crate::Interactions {
    /// Whether any submission is stored: known at once for those made through this
    /// process, and asked of the store at most once a second otherwise (a `tsunagu import`
    /// running beside the server).
    pub(crate) fn submissions_present(&self) -> bool {
        let s = &self.sharing;
        if s.present.load(Ordering::Relaxed) {
            return true;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let last = s.checked_ms.load(Ordering::Relaxed);
        if now - last < 1000 || s.checked_ms.compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return false;
        }
        let q = tsunagu_store::SearchQuery {
            resource_type: Some("Bundle".into()),
            clauses: vec![tsunagu_store::Clause {
                any: vec![tsunagu_store::Condition::Index {
                    param: "_tag".into(),
                    test: tsunagu_store::Test::Token {
                        system: tsunagu_store::SystemMatch::Is(sharing::SUBMITTER_SYSTEM.into()),
                        code: None,
                    },
                    negate: false,
                }],
            }],
            count: 1,
            ..Default::default()
        };
        // A store that cannot answer is taken to hold submissions: the rules then apply.
        let found = self.store.search(&q).map_or(true, |p| !p.resources.is_empty());
        if found {
            s.present.store(true, Ordering::Relaxed);
        }
        found
    }

    pub(crate) fn note_submission(&self) {
        self.sharing.present.store(true, Ordering::Relaxed);
    }
}

/// One search value escaped as FHIR search requires (`\`, `,`, `$`, `|`).
pub(crate) fn escape_search_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `resource` claims to be an item of a submission (`meta.source` under
/// [`SOURCE_PREFIX`]): only the submission path may write such a resource.
pub(crate) fn claims_item(resource: &Value) -> bool {
    let server_tag = |t: &Value| {
        matches!(t.get("system").and_then(Value::as_str), Some(sharing::SUBMITTER_SYSTEM | sharing::PERSON_SYSTEM))
    };
    resource.pointer("/meta/source").and_then(Value::as_str).is_some_and(|s| s.starts_with(SOURCE_PREFIX))
        // The sharing tags decide who sees what (a person tag lets that person's apps and
        // consented institutions in): only a submission sets them.
        || resource.pointer("/meta/tag").and_then(Value::as_array).is_some_and(|tags| tags.iter().any(server_tag))
}
