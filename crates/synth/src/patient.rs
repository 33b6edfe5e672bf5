//! The people and places of a record as resources: the Patient as one institution
//! registers them, the institution as an Organization, its doctors as Practitioners.

use serde_json::{json, Value};

use crate::codes::system;
use crate::fhir::{coding, institution_extension, japanese_names, meta};
use crate::institution::{Doctor, Institution};
use crate::person::Person;
use crate::record::Record;

pub(crate) const PATIENT_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Patient_eCS";
const ORGANIZATION_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Organization_eCS";
const PRACTITIONER_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Practitioner_eCS";
const CORE_PRACTITIONER: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Practitioner";
const CORE_ENCOUNTER: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Encounter";
const CORE_SPECIMEN: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Specimen";

/// JP_Patient_eCS as `record`'s institution knows the person: its own patient number
/// (system `…20.3.51.1` + 医療機関コード) and the insurance member identifier they share.
pub(crate) fn patient(person: &Person, record: &Record, last_updated: &str) -> Value {
    let code = &record.institution.code;
    json!({
        "resourceType": "Patient",
        "meta": meta(PATIENT_PROFILE, last_updated, None),
        "text": {
            "status": "generated",
            "div": format!(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}（{}）</p><p>{} {}</p></div>",
                person.kanji_name(),
                person.kana_name(),
                person.birth,
                person.address_text()
            )
        },
        "extension": [institution_extension(code)],
        "identifier": [
            { "system": format!("{}{code}", system::PATIENT_ID_PREFIX), "value": record.patient_id },
            { "system": system::INSURANCE_MEMBER, "value": person.insurance_member }
        ],
        "name": japanese_names(
            (person.family.kanji, person.family.kana),
            (person.given.kanji, person.given.kana)
        ),
        "telecom": [{ "system": "phone", "value": person.phone, "use": "home" }],
        "gender": person.gender(),
        "birthDate": person.birth.to_string(),
        "address": [{
            "text": person.address_text(),
            "line": [person.address_line],
            "city": person.prefecture.city,
            "state": person.prefecture.name,
            "postalCode": person.prefecture.postal,
            "country": "JP"
        }]
    })
}

/// JP_Organization_eCS for a medical institution.
pub(crate) fn organization(institution: &Institution, last_updated: &str) -> Value {
    json!({
        "resourceType": "Organization",
        "meta": meta(ORGANIZATION_PROFILE, last_updated, None),
        "extension": [{
            "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_PrefectureNo",
            "valueCoding": { "system": system::PREFECTURE, "code": institution.prefecture.code }
        }],
        "identifier": [{ "system": system::INSTITUTION_NO, "value": institution.code }],
        "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov" }] }],
        "name": institution.name,
        "telecom": [{ "system": "phone", "value": institution.phone }],
        "address": [{ "text": institution.address, "country": "JP" }]
    })
}

/// JP_Practitioner_eCS, a document's author or addressee.
pub(crate) fn practitioner(doctor: &Doctor, institution: &Institution, last_updated: &str) -> Value {
    json!({
        "resourceType": "Practitioner",
        "meta": meta(PRACTITIONER_PROFILE, last_updated, None),
        "identifier": [practitioner_identifier(doctor, institution)],
        "name": japanese_names((doctor.family.kanji, doctor.family.kana), (doctor.given.kanji, doctor.given.kana))
    })
}

fn practitioner_identifier(doctor: &Doctor, institution: &Institution) -> Value {
    json!({ "system": format!("{}{}", system::PRACTITIONER_ID_PREFIX, institution.code), "value": doctor.staff_id })
}

/// A contained JP_Practitioner (`#id`), as information items carry their recorder.
pub(crate) fn contained_practitioner(id: &str, doctor: &Doctor, institution: &Institution) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": id,
        "meta": { "profile": [CORE_PRACTITIONER] },
        "identifier": [practitioner_identifier(doctor, institution)],
        "name": [{
            "extension": [{ "url": system::NAME_REPRESENTATION, "valueCode": "IDE" }],
            "text": doctor.kanji_name(),
            "family": doctor.family.kanji,
            "given": [doctor.given.kanji]
        }]
    })
}

/// A contained outpatient JP_Encounter (`#id`).
pub(crate) fn contained_encounter(id: &str, record: &Record) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": id,
        "meta": { "profile": [CORE_ENCOUNTER] },
        "identifier": [{ "system": system::RESOURCE_INSTANCE, "value": record.encounter_id }],
        "status": "finished",
        "class": coding(system::ACT_CODE, "AMB", "外来"),
        "period": { "start": record.visit.to_string() }
    })
}

/// A contained serum JP_Specimen (`#id`).
pub(crate) fn contained_serum(id: &str) -> Value {
    json!({
        "resourceType": "Specimen",
        "id": id,
        "meta": { "profile": [CORE_SPECIMEN] },
        "type": {
            "coding": [
                coding("http://jpfhir.jp/fhir/core/CodeSystem/JP_ObservationSampleMaterialCode_CS", "023", "血清"),
                coding("http://terminology.hl7.org/CodeSystem/v2-0487", "SER", "Serum")
            ],
            "text": "血清"
        }
    })
}
