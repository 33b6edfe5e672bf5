//! JP-CLINS information Bundles (JP_Bundle_CLINS): a `collection` holding the Patient
//! first and then items of one resource type, named by the Bundle's
//! BundleResourceType_CS tag. One Bundle per institution and item type.

use serde_json::{json, Value};

use crate::clinical::{allergy, condition, lab_result};
use crate::codes::system;
use crate::fhir::{entry, object, urn};
use crate::identity::BundleIds;
use crate::patient::patient;
use crate::person::Person;
use crate::prng::Rng;
use crate::record::Record;

const BUNDLE_PROFILE: &str = "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_CLINS";

/// The information Bundles of one record: conditions, allergies (when there are any) and
/// lab results.
pub(crate) fn information_bundles(person: &Person, record: &Record, ids: &mut BundleIds, rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::with_capacity(3);
    let updated = record.visit.at(17, 0);
    let patient_url = urn(&rng.uuid());
    let mut items = |item_type: &str, resources: Vec<Value>, rng: &mut Rng, ids: &mut BundleIds| {
        if resources.is_empty() {
            return;
        }
        let mut entries = Vec::with_capacity(resources.len() + 1);
        entries.push(entry(&patient_url, patient(person, record, &updated)));
        for resource in resources {
            entries.push(entry(&urn(&rng.uuid()), resource));
        }
        out.push(object([
            ("resourceType", json!("Bundle")),
            (
                "meta",
                json!({
                    "lastUpdated": updated,
                    "profile": [BUNDLE_PROFILE],
                    "tag": [{ "system": system::BUNDLE_RESOURCE_TYPE, "code": item_type }]
                }),
            ),
            ("identifier", ids.next(record, "INF")),
            ("type", json!("collection")),
            ("timestamp", json!(updated)),
            ("entry", Value::Array(entries)),
        ]));
    };
    let conditions =
        record.conditions.iter().enumerate().map(|(n, f)| condition(record, f, n, &patient_url, &updated)).collect();
    items("Condition", conditions, rng, ids);
    let allergies =
        record.allergies.iter().enumerate().map(|(n, f)| allergy(record, f, n, &patient_url, &updated)).collect();
    items("AllergyIntolerance", allergies, rng, ids);
    let labs = record.labs.iter().enumerate().map(|(n, f)| lab_result(record, f, n, &patient_url, &updated)).collect();
    items("Observation", labs, rng, ids);
    out
}
