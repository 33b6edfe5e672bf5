//! What every part of the page needs while rendering: the reference index, the language,
//! and the one-line summary of a resource that a reference to it is shown as.

use std::borrow::Cow;

use serde_json::Value;

use crate::labels::{Labels, Lang};
use crate::parties;
use crate::resolve::{str_at, Index, Res};
use crate::values;

pub(crate) struct Cx<'a> {
    pub index: Index<'a>,
    pub lang: Lang,
    pub t: &'static Labels,
}

impl<'a> Cx<'a> {
    /// A reference as text: what it names when that is in the document, else its
    /// `display`, its `reference`, or its identifier, as written.
    pub(crate) fn reference_text(&self, from: Res<'a>, reference: &'a Value) -> Cow<'a, str> {
        if let Some(text) = self.index.resolve(from, reference).and_then(|r| self.summary(r)) {
            return text;
        }
        unresolved_text(reference)
    }

    /// The few words that name `res`: a person's or organisation's name, a clinical
    /// resource's code.
    pub(crate) fn summary(&self, res: Res<'a>) -> Option<Cow<'a, str>> {
        let v = res.value;
        match res.kind() {
            "Patient" | "Practitioner" | "RelatedPerson" | "Person" => parties::names(v).preferred(),
            "Organization" | "Location" | "HealthcareService" => res.str("name").map(Cow::Borrowed),
            "PractitionerRole" => {
                let who = v
                    .get("practitioner")
                    .and_then(|p| self.index.resolve(res, p))
                    .filter(|p| p.kind() != "PractitionerRole");
                who.and_then(|p| self.summary(p)).or_else(|| v.get("code").and_then(values::concepts_of))
            }
            "Device" => v.get("deviceName")?.as_array()?.iter().find_map(|d| str_at(d, "name")).map(Cow::Borrowed),
            "MedicationRequest" | "MedicationStatement" | "MedicationAdministration" | "MedicationDispense" => {
                self.medication(res)
            }
            "Medication" | "Condition" | "AllergyIntolerance" | "Observation" | "Procedure" | "ServiceRequest" => {
                v.get("code").and_then(values::concept)
            }
            "Immunization" => v.get("vaccineCode").and_then(values::concept),
            "Encounter" => v.get("class").and_then(values::coding),
            "CarePlan" | "Composition" => res.str("title").map(Cow::Borrowed),
            "DocumentReference" => res.str("description").map(Cow::Borrowed),
            _ => None,
        }
    }

    /// `medication[x]` of a medication resource: the concept, or the Medication it names.
    pub(crate) fn medication(&self, res: Res<'a>) -> Option<Cow<'a, str>> {
        if let Some(c) = res.get("medicationCodeableConcept") {
            return values::concept(c);
        }
        let reference = res.get("medicationReference")?;
        match self.index.resolve(res, reference) {
            Some(m) if m.kind() == "Medication" => m.get("code").and_then(values::concept),
            _ => Some(unresolved_text(reference)),
        }
    }
}

/// What an unresolved Reference still says about its target.
pub(crate) fn unresolved_text(reference: &Value) -> Cow<'_, str> {
    str_at(reference, "display")
        .or_else(|| str_at(reference, "reference"))
        .or_else(|| reference.get("identifier").and_then(|i| str_at(i, "value")))
        .map_or(Cow::Borrowed("—"), Cow::Borrowed)
}
