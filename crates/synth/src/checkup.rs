//! 健診結果報告書 (eCheckupReport IG, 53576-5) as the eCheckup IG's own document Bundle
//! (`…/eCheckup/StructureDefinition/JP_Bundle_eCheckupGeneral`): Composition first, then
//! the Patient, the examining institution and doctor, the checkup encounter and one
//! Observation per item.
//!
//! Not the JP-CLINS derivation (`…/clins/…/JP_Bundle_eCheckupGeneral`): that one cannot be
//! satisfied as published — its Bundle invariant wants an entry declaring
//! `…/eCS/…/JP_Patient_eCS`, while its patient slice's profile allows exactly one
//! `meta.profile`, fixed to `…/clins/…/JP_Patient_eCS`. The submission path accepts both.

use serde_json::{json, Value};

use crate::codes::{system, CHECKUP_ITEMS};
use crate::fhir::{coding, entry, japanese_names, meta, object, reference, resource_identifier, tenths, urn};
use crate::identity::BundleIds;
use crate::patient::patient;
use crate::person::Person;
use crate::prng::Rng;
use crate::record::Record;

const BUNDLE_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Bundle_eCheckupGeneral";
const PATIENT_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Patient_eCS";
/// The eCheckup Bundle names its document by this system (JP-CLINS's own is `…/clins/bundle-identifier`).
const DOCUMENT_IDENTIFIER: &str = "http://jpfhir.jp/fhir/core/IdSystem/documentInstance-identifier";
const CHECKUP_INSURANCE_MEMBER: &str = "http://jpfhir.jp/fhir/eCS/Idsysmem/JP_Insurance_memberID";
const COMPOSITION_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Composition_eCheckupGeneral";
const ORGANIZATION_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Organization_eCheckupGeneral";
const PRACTITIONER_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Practitioner_eCheckupGeneral";
const ENCOUNTER_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Encounter_eCheckupGeneral";
const OBSERVATION_PROFILE: &str = "http://jpfhir.jp/fhir/eCheckup/StructureDefinition/JP_Observation_eCheckupGeneral";

/// A 特定健診 report from `record`'s institution, on its visit day.
pub(crate) fn checkup_report(person: &Person, record: &Record, ids: &mut BundleIds, rng: &mut Rng) -> Value {
    let day = record.visit;
    let updated = day.at(16, 0);
    let institution = &record.institution;
    let doctor = &institution.doctors[record.doctor];
    let composition_url = urn(&rng.uuid());
    let patient_url = urn(&rng.uuid());
    let org_url = urn(&rng.uuid());
    let doctor_url = urn(&rng.uuid());
    let encounter_url = urn(&rng.uuid());

    let mut observations = Vec::with_capacity(CHECKUP_ITEMS.len());
    let mut summary = Vec::with_capacity(CHECKUP_ITEMS.len());
    let (mut height, mut weight) = (0, 0);
    for item in CHECKUP_ITEMS {
        let value = match item.code {
            // BMI = kg / m², from the drawn height and weight, in tenths.
            "9N011000000000001" => (weight * 1_000_000 + height * height / 2) / (height * height),
            _ => item.low_tenths + rng.between(0, item.high_tenths - item.low_tenths),
        };
        match item.code {
            "9N001000000000001" => height = value,
            "9N006000000000001" => weight = value,
            _ => {}
        }
        summary.push(format!("<li>{} {}.{} {}</li>", item.display, value / 10, value % 10, item.unit));
        let url = urn(&rng.uuid());
        let resource = json!({
            "resourceType": "Observation",
            "meta": meta(OBSERVATION_PROFILE, &updated, None),
            "status": "final",
            "category": [{ "coding": [{ "system": system::SIMPLE_OBS_CATEGORY, "code": item.category }] }],
            "code": { "coding": [coding(system::CHECKUP_ITEM, item.code, item.display)] },
            "subject": reference(&patient_url),
            "effectiveDateTime": day.to_string(),
            "performer": [reference(&doctor_url)],
            "valueQuantity": { "value": tenths(value), "unit": item.unit, "system": system::UCUM, "code": item.unit }
        });
        observations.push((url, resource));
    }

    let composition = json!({
        "resourceType": "Composition",
        "meta": meta(COMPOSITION_PROFILE, &updated, None),
        "extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber",
            "valueString": "1.0"
        }],
        "identifier": resource_identifier(format!("{}-{}-CHK", institution.code, record.patient_id)),
        "status": "final",
        "type": { "coding": [coding(system::DOC_TYPE, "53576-5", "検診・健診報告書")] },
        "category": [{ "coding": [coding("urn:oid:2.16.840.1.113883.2.2.1.6.1001", "10", "特定健診")] }],
        "subject": reference(&patient_url),
        "encounter": reference(&encounter_url),
        "date": updated,
        "author": [reference(&doctor_url), reference(&org_url)],
        "title": "健康診断結果のお知らせ",
        "custodian": reference(&org_url),
        "event": [{
            "code": [{ "coding": [coding("urn:oid:1.2.392.200119.6.1002", "010", "特定健診")] }],
            "period": { "start": day.to_string(), "end": day.to_string() },
            "detail": [reference(&encounter_url)]
        }],
        "section": [{
            "title": "健診セクション",
            "code": { "coding": [coding(system::CHECKUP_SECTION, "01011", "特定健診検査結果セクション")] },
            "text": {
                "status": "generated",
                "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul>{}</ul></div>", summary.concat())
            },
            "entry": observations.iter().map(|(url, _)| reference(url)).collect::<Vec<_>>()
        }]
    });

    let mut entries = Vec::with_capacity(observations.len() + 5);
    let mut push = |url: &str, resource: Value| entries.push(entry(url, resource));
    push(&composition_url, composition);
    // JP_Patient_eCS wants the insurance member identifier under the system it spells
    // `…/eCS/Idsysmem/…`; the JP-CLINS one stays too, so people match across institutions.
    let mut checked = patient(person, record, &updated);
    checked["meta"]["profile"] = json!([PATIENT_PROFILE]);
    checked["identifier"]
        .as_array_mut()
        .expect("identifiers")
        .push(json!({ "system": CHECKUP_INSURANCE_MEMBER, "value": person.insurance_member }));
    push(&patient_url, checked);
    push(
        &org_url,
        json!({
            "resourceType": "Organization",
            "meta": meta(ORGANIZATION_PROFILE, &updated, None),
            "identifier": [{ "system": system::INSTITUTION_NO, "value": institution.code }],
            "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov" }] }],
            "name": institution.name,
            "telecom": [{ "system": "phone", "value": institution.phone }],
            "address": [{ "text": institution.address, "country": "JP" }]
        }),
    );
    push(
        &doctor_url,
        json!({
            "resourceType": "Practitioner",
            "meta": meta(PRACTITIONER_PROFILE, &updated, None),
            "name": japanese_names((doctor.family.kanji, doctor.family.kana), (doctor.given.kanji, doctor.given.kana))
        }),
    );
    push(
        &encounter_url,
        json!({
            "resourceType": "Encounter",
            "meta": meta(ENCOUNTER_PROFILE, &updated, None),
            "status": "finished",
            "class": coding("http://jpfhir.jp/fhir/eCheckup/CodeSystem/encounter-category", "checkup", "健診"),
            "period": { "start": day.to_string(), "end": day.to_string() },
            "serviceProvider": reference(&org_url)
        }),
    );
    for (url, resource) in observations {
        push(&url, resource);
    }
    object([
        ("resourceType", json!("Bundle")),
        ("meta", json!({ "lastUpdated": updated, "profile": [BUNDLE_PROFILE] })),
        ("identifier", {
            let mut identifier = ids.next(record, "CHK");
            identifier["system"] = json!(DOCUMENT_IDENTIFIER);
            identifier
        }),
        ("type", json!("document")),
        ("timestamp", json!(updated)),
        ("entry", Value::Array(entries)),
    ])
}
