//! Bundle identifiers: `医療機関番号10桁^発行年^施設内ID`, unique per Bundle. The
//! service keeps a Bundle's identifier and treats a later Bundle naming it as a
//! replacement, so two Bundles may never share one.

use serde_json::{json, Value};

use crate::codes::system;
use crate::record::Record;

/// Numbers the Bundles of one patient: the 施設内ID is `P<patient index>-<seed tag>-<kind><n>`,
/// which stays unique across patients and across the Bundles of each.
pub(crate) struct BundleIds {
    prefix: String,
    next: usize,
}

impl BundleIds {
    pub(crate) fn new(seed: u64, index: usize) -> Self {
        // 8 hex digits of the seed tell runs with different seeds apart; the whole
        // 施設内ID must stay within 36 characters.
        let tag = (seed ^ (seed >> 32)) as u32;
        BundleIds { prefix: format!("P{index}-{tag:08X}"), next: 0 }
    }

    pub(crate) fn next(&mut self, record: &Record, kind: &str) -> Value {
        self.next += 1;
        let value = format!("{}^{}^{}-{kind}{}", record.institution.code, record.visit.year(), self.prefix, self.next);
        json!({ "system": system::BUNDLE_IDENTIFIER, "value": value })
    }
}
