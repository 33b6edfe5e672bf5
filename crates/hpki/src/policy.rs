//! Which hcRole a document type needs from its signer.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Document type code (LOINC, from `Composition.type`) → hcRole values, any one of which the
/// signer must hold (matched exactly, in the Japanese HPKI scheme).
///
/// A document type that is not in the map needs no particular role: its signature, chain and
/// revocation are still verified and the signer's roles are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    required: BTreeMap<String, BTreeSet<String>>,
}

/// 診療情報提供書 (referral letter).
pub const REFERRAL_LETTER: &str = "57133-1";
/// 退院時サマリー (discharge summary).
pub const DISCHARGE_SUMMARY: &str = "18842-5";
/// 健診結果報告書 (health checkup report).
pub const CHECKUP_REPORT: &str = "53576-5";
/// hcRole of a physician.
pub const MEDICAL_DOCTOR: &str = "Medical Doctor";

impl Default for RolePolicy {
    /// 診療情報提供書, 退院時サマリー and 健診結果報告書 each need a "Medical Doctor".
    fn default() -> Self {
        let doctor = || BTreeSet::from([MEDICAL_DOCTOR.to_string()]);
        RolePolicy {
            required: BTreeMap::from([
                (REFERRAL_LETTER.to_string(), doctor()),
                (DISCHARGE_SUMMARY.to_string(), doctor()),
                (CHECKUP_REPORT.to_string(), doctor()),
            ]),
        }
    }
}

impl RolePolicy {
    /// A policy requiring no role for any document type.
    pub fn empty() -> Self {
        RolePolicy { required: BTreeMap::new() }
    }

    /// From a simple map, as a server configuration would give it
    /// (`"57133-1" = ["Medical Doctor"]`). An empty role list means "no role required".
    pub fn from_map<I, K, R, S>(map: I) -> Self
    where
        I: IntoIterator<Item = (K, R)>,
        K: Into<String>,
        R: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let required = map
            .into_iter()
            .map(|(k, roles)| (k.into(), roles.into_iter().map(Into::into).collect()))
            .filter(|(_, roles): &(String, BTreeSet<String>)| !roles.is_empty())
            .collect();
        RolePolicy { required }
    }

    /// Adds or replaces the roles a document type needs.
    pub fn require<S: Into<String>>(
        mut self,
        document_type: impl Into<String>,
        roles: impl IntoIterator<Item = S>,
    ) -> Self {
        let roles: BTreeSet<String> = roles.into_iter().map(Into::into).collect();
        let document_type = document_type.into();
        if roles.is_empty() {
            self.required.remove(&document_type);
        } else {
            self.required.insert(document_type, roles);
        }
        self
    }

    /// The roles (any one suffices) for a document type, if it needs any.
    pub fn required_roles(&self, document_type: &str) -> Option<&BTreeSet<String>> {
        self.required.get(document_type)
    }

    /// Among the codes of a document's type, the first that this policy knows, with its roles.
    pub fn requirement<'a>(&'a self, type_codes: &'a [String]) -> Option<(&'a str, &'a BTreeSet<String>)> {
        type_codes.iter().find_map(|code| self.required.get(code).map(|roles| (code.as_str(), roles)))
    }
}

/// The codes of the document type: `Composition.type.coding[*].code` of the first entry
/// (LOINC codings first, then the others, in order).
pub fn document_type_codes(bundle: &Value) -> Vec<String> {
    let composition = &bundle["entry"][0]["resource"];
    if composition["resourceType"] != "Composition" {
        return Vec::new();
    }
    let Some(codings) = composition["type"]["coding"].as_array() else {
        return Vec::new();
    };
    let (loinc, other): (Vec<&Value>, Vec<&Value>) = codings.iter().partition(|c| c["system"] == "http://loinc.org");
    loinc.into_iter().chain(other).filter_map(|c| c["code"].as_str().map(str::to_string)).collect()
}
