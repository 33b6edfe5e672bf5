//! What one institution knows about one person: the facts every Bundle about them is
//! built from, drawn once so that an information Bundle and a document from the same
//! institution tell the same story.

use crate::codes::{
    Allergen, Department, Disease, Drug, LabTest, Usage, ALLERGENS, DISEASES, DRUGS, LAB_TESTS, USAGES,
};
use crate::date::Date;
use crate::institution::{Institution, HOSPITALS_PER_PREFECTURE, INSTITUTIONS_PER_PREFECTURE};
use crate::person::Person;
use crate::prng::Rng;

/// `JP_ehrshrs_indication` tags: long-term storage, not yet told to the patient, not to
/// be shared.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Indication {
    LongTerm,
    Uninformed,
    Undelivered,
}

impl Indication {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Indication::LongTerm => "LTS",
            Indication::Uninformed => "UNINFORMED",
            Indication::Undelivered => "UNDELIVERED",
        }
    }
    pub(crate) fn display(self) -> &'static str {
        match self {
            Indication::LongTerm => "長期保存",
            Indication::Uninformed => "未告知",
            Indication::Undelivered => "未提供",
        }
    }

    /// About one item in twelve carries a tag. Conditions may carry any of the three;
    /// the AllergyIntolerance and lab Observation profiles close their tag slicing on
    /// `LTS` alone (`long_term_only`).
    fn draw(rng: &mut Rng, long_term_only: bool) -> Option<Indication> {
        match rng.below(36) {
            0..=3 if long_term_only => Some(Indication::LongTerm),
            0 | 1 => Some(Indication::LongTerm),
            2 => Some(Indication::Uninformed),
            3 => Some(Indication::Undelivered),
            _ => None,
        }
    }
}

pub(crate) struct ConditionFact {
    pub disease: &'static Disease,
    pub onset: Date,
    pub active: bool,
    pub indication: Option<Indication>,
}

pub(crate) struct AllergyFact {
    pub allergen: &'static Allergen,
    pub indication: Option<Indication>,
}

pub(crate) struct LabFact {
    pub test: &'static LabTest,
    /// In tenths of the test's unit.
    pub value_tenths: i64,
    pub indication: Option<Indication>,
}

pub(crate) struct PrescriptionFact {
    pub drug: &'static Drug,
    pub usage: &'static Usage,
    pub days: i64,
}

pub(crate) struct Record {
    pub institution: Institution,
    /// The department seeing the person: that of their first condition.
    pub department: &'static Department,
    /// The institution's own patient number.
    pub patient_id: String,
    /// Index into `institution.doctors` of the doctor in charge.
    pub doctor: usize,
    pub visit: Date,
    pub encounter_id: String,
    pub conditions: Vec<ConditionFact>,
    pub allergies: Vec<AllergyFact>,
    pub labs: Vec<LabFact>,
    pub prescriptions: Vec<PrescriptionFact>,
}

/// The records of `person` at 2 or 3 institutions of their prefecture; the first is
/// always a hospital (it admits and receives referrals), the others any.
pub(crate) fn draw_records(seed: u64, person: &Person, rng: &mut Rng) -> Vec<Record> {
    let count = 2 + rng.below(2);
    let hospital_slot = rng.below(HOSPITALS_PER_PREFECTURE);
    let mut slots = vec![hospital_slot];
    while slots.len() < count {
        let slot = rng.below(INSTITUTIONS_PER_PREFECTURE);
        if !slots.contains(&slot) {
            slots.push(slot);
        }
    }
    slots
        .into_iter()
        .map(|slot| {
            let institution = Institution::pooled(seed, person.prefecture_index, slot);
            draw_record(institution, person, rng)
        })
        .collect()
}

fn draw_record(institution: Institution, person: &Person, rng: &mut Rng) -> Record {
    let patient_id = format!("{:08}", rng.below(100_000_000));
    let doctor = rng.below(institution.doctors.len());
    let visit = Date::ymd(rng.between(2024, 2025), rng.between(1, 12), rng.between(1, 28));
    let encounter_id = format!("{:06}", rng.below(1_000_000));
    let born = person.birth;
    let condition_count = 1 + rng.below(3);
    let conditions: Vec<ConditionFact> = rng
        .distinct(DISEASES.len(), condition_count)
        .into_iter()
        .map(|i| {
            let onset = visit.plus_days(-(rng.between(0, 3650)));
            ConditionFact {
                disease: &DISEASES[i],
                onset: if onset < born { visit } else { onset },
                active: rng.chance(4, 5),
                indication: Indication::draw(rng, false),
            }
        })
        .collect();
    let allergy_count = [0, 0, 1, 1, 2][rng.below(5)];
    let allergies = rng
        .distinct(ALLERGENS.len(), allergy_count)
        .into_iter()
        .map(|i| AllergyFact { allergen: &ALLERGENS[i], indication: Indication::draw(rng, true) })
        .collect();
    let lab_count = 3 + rng.below(5);
    let labs = rng
        .distinct(LAB_TESTS.len(), lab_count)
        .into_iter()
        .map(|i| {
            let test = &LAB_TESTS[i];
            // Mostly within the reference range, sometimes up to a fifth above it.
            let span = test.high_tenths - test.low_tenths;
            let value_tenths = test.low_tenths + rng.between(0, span + span / 5);
            LabFact { test, value_tenths, indication: Indication::draw(rng, true) }
        })
        .collect();
    let prescription_count = 1 + rng.below(3);
    let prescriptions = rng
        .distinct(DRUGS.len(), prescription_count)
        .into_iter()
        .map(|i| PrescriptionFact { drug: &DRUGS[i], usage: rng.pick(USAGES), days: *rng.pick(&[7, 14, 28, 30]) })
        .collect();
    let department = conditions[0].disease.department;
    Record {
        institution,
        department,
        patient_id,
        doctor,
        visit,
        encounter_id,
        conditions,
        allergies,
        labs,
        prescriptions,
    }
}
