//! The 6 information items as JP-CLINS resources (Condition, AllergyIntolerance, lab
//! result Observation, MedicationRequest), each from a fact of a [`Record`].

use serde_json::{json, Value};

use crate::codes::{system, Department};
use crate::fhir::{coding, concept, institution_extension, meta, reference, resource_identifier, tenths};
use crate::patient::{contained_encounter, contained_practitioner, contained_serum};
use crate::person::Person;
use crate::record::{AllergyFact, ConditionFact, LabFact, PrescriptionFact, Record};

const CONDITION_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Condition_eCS";
const ALLERGY_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_AllergyIntolerance_eCS";
const LAB_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Observation_LabResult_eCS";
const MEDICATION_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_MedicationRequest_eCS";

/// The SS-MIX2 department extension JP_Bundle_CLINS requires on Conditions and Observations.
fn department_extension(department: &Department) -> Value {
    json!({
        "url": "http://jpfhir.jp/fhir/eCS/Extension/StructureDefinition/JP_eCS_Department",
        "valueCodeableConcept": {
            "coding": [coding("http://jami.jp/SS-MIX2/CodeSystem/ClinicalDepartment", department.code, department.name)],
            "text": department.name
        }
    })
}

/// `施設コード-患者番号-種別連番`: unique within the institution.
fn instance_id(record: &Record, kind: &str, n: usize) -> Value {
    resource_identifier(format!("{}-{}-{kind}{n}", record.institution.code, record.patient_id))
}

/// JP_Condition_eCS: MEDIS 病名管理番号 (required), 病名交換用コード where known, ICD-10.
pub(crate) fn condition(
    record: &Record,
    fact: &ConditionFact,
    n: usize,
    patient_url: &str,
    last_updated: &str,
) -> Value {
    let disease = fact.disease;
    let mut codings = vec![coding(system::MEDIS_KEY_NUMBER, disease.key_number, disease.name)];
    if let Some(exchange) = disease.exchange {
        codings.push(coding(system::MEDIS_EXCHANGE, exchange, disease.name));
    }
    codings.push(coding(system::ICD10, disease.icd10, disease.icd10_display));
    let clinical = if fact.active { "active" } else { "resolved" };
    let doctor = &record.institution.doctors[record.doctor];
    let mut resource = json!({
        "resourceType": "Condition",
        "meta": meta(CONDITION_PROFILE, last_updated, fact.indication),
        "extension": [
            institution_extension(&record.institution.code),
            department_extension(disease.department)
        ],
        "identifier": [instance_id(record, "CND", n)],
        "clinicalStatus": { "coding": [coding("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical, if fact.active { "Active" } else { "Resolved" })] },
        "verificationStatus": { "coding": [coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")] },
        "category": [{ "coding": [coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")] }],
        "code": { "coding": codings, "text": disease.name },
        "subject": reference(patient_url),
        "encounter": reference("#encounter"),
        "onsetDateTime": fact.onset.to_string(),
        "recordedDate": record.visit.to_string(),
        "recorder": reference("#recorder")
    });
    if !fact.active {
        resource["abatementDateTime"] = json!(record.visit.to_string());
    }
    // Moved in rather than interpolated: `json!` would copy them through the serializer.
    resource["contained"] = Value::Array(vec![
        contained_encounter("encounter", record),
        contained_practitioner("recorder", doctor, &record.institution),
    ]);
    resource
}

/// JP_AllergyIntolerance_eCS with a JFAGY allergen code.
pub(crate) fn allergy(record: &Record, fact: &AllergyFact, n: usize, patient_url: &str, last_updated: &str) -> Value {
    let allergen = fact.allergen;
    json!({
        "resourceType": "AllergyIntolerance",
        "meta": meta(ALLERGY_PROFILE, last_updated, fact.indication),
        "extension": [institution_extension(&record.institution.code)],
        "identifier": [instance_id(record, "ALG", n)],
        "clinicalStatus": { "coding": [coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")] },
        "verificationStatus": { "coding": [coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed")] },
        "type": "allergy",
        "category": [allergen.category],
        "code": concept(allergen.system, allergen.code, allergen.name),
        "patient": reference(patient_url),
        "recordedDate": record.visit.to_string()
    })
}

/// JP_Observation_LabResult_eCS: the institution's local code and the JLAC10 core-labo
/// code, with the encounter, the serum specimen and the performer contained.
pub(crate) fn lab_result(record: &Record, fact: &LabFact, n: usize, patient_url: &str, last_updated: &str) -> Value {
    let test = fact.test;
    let doctor = &record.institution.doctors[record.doctor];
    let mut resource = json!({
        "resourceType": "Observation",
        "meta": meta(LAB_PROFILE, last_updated, fact.indication),
        "extension": [
            institution_extension(&record.institution.code),
            department_extension(record.department)
        ],
        "identifier": [instance_id(record, "LAB", n)],
        "status": "final",
        "category": [{ "coding": [coding(system::SIMPLE_OBS_CATEGORY, "laboratory", "Laboratory")] }],
        "code": {
            "coding": [
                coding(system::LOCAL_LABO, test.local_code, test.name),
                coding(system::CORE_LABO, test.jlac10, test.group)
            ],
            "text": test.name
        },
        "subject": reference(patient_url),
        "encounter": reference("#encounter"),
        "effectiveDateTime": record.visit.at(9, 30),
        "issued": record.visit.at(15, 0),
        "performer": [reference("#performer")],
        "valueQuantity": { "value": tenths(fact.value_tenths), "unit": test.unit },
        "specimen": { "reference": "#specimen", "type": "Specimen" }
    });
    resource["contained"] = Value::Array(vec![
        contained_encounter("encounter", record),
        contained_serum("specimen"),
        contained_practitioner("performer", doctor, &record.institution),
    ]);
    resource
}

/// JP_MedicationRequest_eCS: an outpatient (or discharge, `category`) prescription with
/// the YJ code the profile requires and the HOT9 code where known.
pub(crate) fn prescription(
    person: &Person,
    record: &Record,
    fact: &PrescriptionFact,
    n: usize,
    patient_url: &str,
    last_updated: &str,
    discharge: bool,
) -> Value {
    let drug = fact.drug;
    let usage = fact.usage;
    let doctor = &record.institution.doctors[record.doctor];
    let mut codings = vec![coding(system::YJ, drug.yj, drug.name)];
    if let Some(hot9) = drug.hot9 {
        codings.push(coding(system::HOT9, hot9, drug.name));
    }
    let per_day = drug.tablets_per_dose * usage.per_day;
    let tablets = |value: i64| json!({ "value": value, "unit": "錠", "system": system::MERIT9_UNIT, "code": "TAB" });
    let days = |value: i64| json!({ "value": value, "unit": "日", "system": system::UCUM, "code": "d" });
    let (category, category_text) = if discharge { ("DCG", "退院処方") } else { ("OHP", "外来処方") };
    json!({
        "resourceType": "MedicationRequest",
        "meta": meta(MEDICATION_PROFILE, last_updated, None),
        "contained": [contained_practitioner("requester", doctor, &record.institution)],
        "extension": [institution_extension(&record.institution.code)],
        "identifier": [
            { "system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/Medication-RPGroupNumber", "value": (n + 1).to_string() },
            { "system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/MedicationAdministrationIndex", "value": "1" },
            instance_id(record, "MED", n)
        ],
        "status": "completed",
        "intent": "order",
        "category": [{ "coding": [coding(system::MED_CATEGORY, category, category_text)] }],
        "medicationCodeableConcept": { "coding": codings, "text": drug.name },
        "subject": {
            "reference": patient_url,
            "identifier": { "system": system::INSURANCE_MEMBER, "value": person.insurance_member }
        },
        "authoredOn": record.visit.at(11, 0),
        "requester": { "reference": "#requester", "type": "Practitioner", "display": doctor.kanji_name() },
        "dosageInstruction": [{
            "extension": [{
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_MedicationDosage_PeriodOfUse",
                "valuePeriod": { "start": record.visit.to_string() }
            }],
            "text": format!("{} 1回{}錠 {}日分", usage.text, drug.tablets_per_dose, fact.days),
            "timing": {
                "repeat": { "boundsDuration": days(fact.days) },
                "code": { "coding": [coding(system::USAGE, usage.code, usage.display)], "text": usage.text }
            },
            "doseAndRate": [{
                "type": { "coding": [coding("http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationIngredientStrengthStrengthType", "1", "製剤量")] },
                "doseQuantity": tablets(drug.tablets_per_dose),
                "rateRatio": { "numerator": tablets(per_day), "denominator": days(1) }
            }]
        }],
        "dispenseRequest": {
            "quantity": tablets(per_day * fact.days),
            "expectedSupplyDuration": days(fact.days)
        }
    })
}
