//! JP-CLINS documents (Bundle type `document`, Composition first): the referral letter
//! (診療情報提供書, 57133-1) and the discharge summary (退院時サマリー, 18842-5), with
//! their prescriptions as JP_MedicationRequest_eCS.

use serde_json::{json, Value};

use crate::base64;
use crate::clinical::{allergy, condition, prescription};
use crate::codes::system;
use crate::fhir::{coding, entry, meta, narrative, object, reference, resource_identifier, typed_reference, urn};
use crate::identity::BundleIds;
use crate::patient::{organization, patient, practitioner};
use crate::person::Person;
use crate::prng::Rng;
use crate::record::{ConditionFact, Record};

const REFERRAL_BUNDLE: &str = "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eReferral";
const REFERRAL_COMPOSITION: &str = "http://jpfhir.jp/fhir/eReferral/StructureDefinition/JP_Composition_eReferral";
const DISCHARGE_BUNDLE: &str = "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Bundle_eDischargeSummary";
const DISCHARGE_COMPOSITION: &str =
    "http://jpfhir.jp/fhir/eDischargeSummary/StructureDefinition/JP_Composition_eDischargeSummary";
const ENCOUNTER_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Encounter_eCS";
const DOCUMENT_REFERENCE_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_DocumentReference_eCS";

/// Entries of a document, in order, with the full URL each is referenced by.
struct Entries {
    list: Vec<Value>,
}

impl Entries {
    fn push(&mut self, url: &str, resource: Value) {
        self.list.push(entry(url, resource));
    }
}

/// A section of the `document-section` code system; `entries` may be empty when `text` says
/// what there is (a section needs entries, text or subsections).
fn section(code: &str, title: &str, entries: Vec<Value>, text: Option<&str>) -> Value {
    let mut s = json!({
        "title": title,
        "code": { "coding": [coding(system::DOC_SECTION, code, &format!("{title}セクション"))] }
    });
    if let Some(text) = text {
        s["text"] = narrative(text);
    }
    if !entries.is_empty() {
        s["entry"] = Value::Array(entries);
    }
    s
}

fn document_bundle(profile: &str, identifier: Value, timestamp: &str, entries: Entries) -> Value {
    object([
        ("resourceType", json!("Bundle")),
        ("meta", json!({ "lastUpdated": timestamp, "profile": [profile] })),
        ("identifier", identifier),
        ("type", json!("document")),
        ("timestamp", json!(timestamp)),
        ("entry", Value::Array(entries.list)),
    ])
}

fn composition_header(
    profile: &str,
    record: &Record,
    n: usize,
    updated: &str,
    doc_type: (&str, &str),
    category: (&str, &str),
) -> Value {
    json!({
        "resourceType": "Composition",
        "meta": meta(profile, updated, None),
        "extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber",
            "valueString": "1.0"
        }],
        "identifier": resource_identifier(format!("{}-{}-DOC{n}", record.institution.code, record.patient_id)),
        "status": "final",
        "type": { "coding": [coding(system::DOC_TYPE, doc_type.0, doc_type.1)] },
        "category": [{ "coding": [coding(system::DOC_SUBTYPE, category.0, category.1)] }],
        "title": doc_type.1
    })
}

fn encounter(record: &Record, updated: &str, class: (&str, &str), period: Value) -> Value {
    json!({
        "resourceType": "Encounter",
        "meta": meta(ENCOUNTER_PROFILE, updated, None),
        "identifier": [{ "system": system::RESOURCE_INSTANCE, "value": record.encounter_id }],
        "status": "finished",
        "class": coding(system::ACT_CODE, class.0, class.1),
        "period": period
    })
}

fn condition_names(conditions: &[ConditionFact]) -> String {
    conditions.iter().map(|c| c.disease.name).collect::<Vec<_>>().join("、")
}

/// A 診療情報提供書 from `from` to `to` (both records of `person`).
pub(crate) fn referral(person: &Person, from: &Record, to: &Record, ids: &mut BundleIds, rng: &mut Rng) -> Value {
    let updated = from.visit.at(18, 0);
    let from_doctor = &from.institution.doctors[from.doctor];
    let to_doctor = &to.institution.doctors[to.doctor];
    let urls: Vec<String> = (0..7).map(|_| urn(&rng.uuid())).collect();
    let [composition_url, patient_url, encounter_url, from_doctor_url, to_doctor_url, from_org_url, to_org_url] =
        <[String; 7]>::try_from(urls).expect("seven URLs");
    let purpose_url = urn(&rng.uuid());
    let mut entries = Entries { list: Vec::new() };
    let mut composition = composition_header(
        REFERRAL_COMPOSITION,
        from,
        1,
        &updated,
        ("57133-1", "診療情報提供書"),
        ("OUTPATIENT", "外来文書"),
    );
    let problems = condition_names(&from.conditions);
    let mut problem_entries = Vec::new();
    let mut item_entries: Vec<(String, Value)> = Vec::new();
    for (n, fact) in from.conditions.iter().enumerate() {
        let url = urn(&rng.uuid());
        problem_entries.push(typed_reference(&url, "Condition"));
        item_entries.push((url.clone(), condition(from, fact, n, &patient_url, &updated)));
    }
    let mut allergy_entries = Vec::new();
    for (n, fact) in from.allergies.iter().enumerate() {
        let url = urn(&rng.uuid());
        allergy_entries.push(typed_reference(&url, "AllergyIntolerance"));
        item_entries.push((url.clone(), allergy(from, fact, n, &patient_url, &updated)));
    }
    let mut medication_entries = Vec::new();
    for (n, fact) in from.prescriptions.iter().enumerate() {
        let url = urn(&rng.uuid());
        medication_entries.push(typed_reference(&url, "MedicationRequest"));
        item_entries.push((url.clone(), prescription(person, from, fact, n, &patient_url, &updated, false)));
    }
    let allergy_text = if allergy_entries.is_empty() { Some("特記すべきアレルギーなし") } else { None };
    let purpose = format!("{problems}の精査加療をお願いいたします。");
    composition["subject"] = typed_reference(&patient_url, "Patient");
    composition["encounter"] = typed_reference(&encounter_url, "Encounter");
    composition["date"] = json!(updated);
    composition["author"] =
        json!([typed_reference(&from_doctor_url, "Practitioner"), typed_reference(&from_org_url, "Organization")]);
    composition["custodian"] = typed_reference(&from_org_url, "Organization");
    composition["event"] =
        json!([{ "code": [{ "text": "診療情報提供書発行" }], "period": { "start": from.visit.to_string() } }]);
    composition["section"] = json!([
        {
            "title": "紹介元情報",
            "code": { "coding": [coding(system::DOC_SECTION, "920", "紹介元情報セクション")] },
            "entry": [typed_reference(&from_org_url, "Organization"), typed_reference(&from_doctor_url, "Practitioner")]
        },
        {
            "title": "紹介先情報",
            "code": { "coding": [coding(system::DOC_SECTION, "910", "紹介先情報セクション")] },
            "entry": [typed_reference(&to_org_url, "Organization"), typed_reference(&to_doctor_url, "Practitioner")]
        },
        {
            "title": "構造情報",
            "code": { "coding": [coding(system::DOC_SECTION, "300", "構造情報セクション")] },
            "section": [
                section("950", "紹介目的", vec![typed_reference(&purpose_url, "Encounter")], None),
                section("340", "傷病名・主訴", problem_entries, None),
                section("360", "現病歴", Vec::new(), Some(&format!("{problems}にて当院外来通院中。"))),
                section("510", "アレルギー・不耐性反応", allergy_entries, allergy_text),
                section("430", "投薬指示", medication_entries, None)
            ]
        }
    ]);
    entries.push(&composition_url, composition);
    entries.push(&patient_url, patient(person, from, &updated));
    entries
        .push(&encounter_url, encounter(from, &updated, ("AMB", "外来"), json!({ "start": from.visit.to_string() })));
    entries.push(&from_doctor_url, practitioner(from_doctor, &from.institution, &updated));
    entries.push(&to_doctor_url, practitioner(to_doctor, &to.institution, &updated));
    entries.push(&from_org_url, organization(&from.institution, &updated));
    entries.push(&to_org_url, organization(&to.institution, &updated));
    let mut purpose_encounter = encounter(from, &updated, ("AMB", "外来"), json!({ "start": from.visit.to_string() }));
    purpose_encounter["reasonCode"] = json!([{ "text": purpose }]);
    entries.push(&purpose_url, purpose_encounter);
    for (url, resource) in item_entries {
        entries.push(&url, resource);
    }
    document_bundle(REFERRAL_BUNDLE, ids.next(from, "REF"), &updated, entries)
}

/// A 退院時サマリー from `record`'s institution (a hospital): admitted some days before
/// the recorded visit for its first condition, discharged on the visit day.
pub(crate) fn discharge_summary(person: &Person, record: &Record, ids: &mut BundleIds, rng: &mut Rng) -> Value {
    let discharged = record.visit;
    let admitted = discharged.plus_days(-(3 + rng.between(0, 18)));
    let updated = discharged.at(19, 0);
    let doctor = &record.institution.doctors[record.doctor];
    let composition_url = urn(&rng.uuid());
    let patient_url = urn(&rng.uuid());
    let encounter_url = urn(&rng.uuid());
    let doctor_url = urn(&rng.uuid());
    let org_url = urn(&rng.uuid());
    let course_url = urn(&rng.uuid());
    let main = &record.conditions[0];
    let problems = condition_names(&record.conditions);
    let mut item_entries: Vec<(String, Value)> = Vec::new();
    let mut diagnosis_entries = Vec::new();
    for (n, fact) in record.conditions.iter().enumerate() {
        let url = urn(&rng.uuid());
        diagnosis_entries.push(typed_reference(&url, "Condition"));
        item_entries.push((url.clone(), condition(record, fact, n, &patient_url, &updated)));
    }
    let mut allergy_entries = Vec::new();
    for (n, fact) in record.allergies.iter().enumerate() {
        let url = urn(&rng.uuid());
        allergy_entries.push(typed_reference(&url, "AllergyIntolerance"));
        item_entries.push((url.clone(), allergy(record, fact, n, &patient_url, &updated)));
    }
    let mut medication_entries = Vec::new();
    for (n, fact) in record.prescriptions.iter().enumerate() {
        let url = urn(&rng.uuid());
        medication_entries.push(typed_reference(&url, "MedicationRequest"));
        item_entries.push((url.clone(), prescription(person, record, fact, n, &patient_url, &updated, true)));
    }
    let allergy_text = if allergy_entries.is_empty() { Some("特記すべきアレルギーなし") } else { None };
    let course = format!(
        "{}年{}にて入院。入院後の経過は良好で、{}に退院となった。",
        admitted.year(),
        main.disease.name,
        discharged
    );
    let mut composition = composition_header(
        DISCHARGE_COMPOSITION,
        record,
        2,
        &updated,
        ("18842-5", "退院時サマリー"),
        ("DISCHARGE", "退院時文書"),
    );
    composition["subject"] = typed_reference(&patient_url, "Patient");
    composition["encounter"] = typed_reference(&encounter_url, "Encounter");
    composition["date"] = json!(updated);
    composition["author"] =
        json!([typed_reference(&doctor_url, "Practitioner"), typed_reference(&org_url, "Organization")]);
    composition["custodian"] = typed_reference(&org_url, "Organization");
    composition["event"] = json!([{ "period": { "start": admitted.to_string(), "end": discharged.to_string() } }]);
    let encounter_ref = || vec![typed_reference(&encounter_url, "Encounter")];
    composition["section"] = json!([{
        "title": "構造情報",
        "code": { "coding": [coding(system::DOC_SECTION, "300", "構造情報セクション")] },
        "section": [
            section("322", "入院時詳細", encounter_ref(), None),
            section("342", "入院時診断", diagnosis_entries[..1].to_vec(), None),
            section("510", "アレルギー・不耐性反応", allergy_entries, allergy_text),
            section("352", "主訴", Vec::new(), Some(&format!("{}の精査加療目的", main.disease.name))),
            section("312", "入院理由", encounter_ref(), None),
            section("362", "現病歴", Vec::new(), Some(&format!("{problems}にて加療中。"))),
            section("333", "入院中経過", vec![typed_reference(&course_url, "DocumentReference")], None),
            section("324", "退院時詳細", encounter_ref(), None),
            section("344", "退院時診断", diagnosis_entries, None),
            section("444", "退院時投薬指示", medication_entries, None),
            section("424", "退院時方針指示", Vec::new(), Some("外来にて経過観察。"))
        ]
    }]);
    let mut entries = Entries { list: Vec::new() };
    entries.push(&composition_url, composition);
    entries.push(&patient_url, patient(person, record, &updated));
    let mut stay = encounter(
        record,
        &updated,
        ("IMP", "入院"),
        json!({ "start": admitted.to_string(), "end": discharged.to_string() }),
    );
    stay["reasonCode"] = json!([{ "text": format!("{}の精査加療", main.disease.name) }]);
    stay["hospitalization"] = json!({
        "admitSource": { "coding": [coding("http://jpfhir.jp/fhir/Common/CodeSystem/admit-Source", "1", "家庭からの入院")] },
        "dischargeDisposition": { "coding": [coding("http://jpfhir.jp/fhir/Common/CodeSystem/discharge-disposition", "1", "傷病が治癒・軽快")] }
    });
    entries.push(&encounter_url, stay);
    entries.push(&doctor_url, practitioner(doctor, &record.institution, &updated));
    entries.push(&org_url, organization(&record.institution, &updated));
    entries.push(
        &course_url,
        json!({
            "resourceType": "DocumentReference",
            "meta": meta(DOCUMENT_REFERENCE_PROFILE, &updated, None),
            "status": "current",
            "type": { "coding": [coding("http://loinc.org", "8648-8", "Hospital course Narrative")] },
            "subject": reference(&patient_url),
            "description": "入院中経過",
            "content": [{ "attachment": { "contentType": "text/plain; charset=utf-8", "data": base64::encode(course.as_bytes()) } }]
        }),
    );
    for (url, resource) in item_entries {
        entries.push(&url, resource);
    }
    document_bundle(DISCHARGE_BUNDLE, ids.next(record, "DIS"), &updated, entries)
}
