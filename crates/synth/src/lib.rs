//! Deterministic Japanese synthetic clinical data as JP-CLINS Bundles.
//!
//! This crate owns the synthetic population behind `tsunagu synth`: people with kanji and
//! katakana names, birth dates, sexes, addresses and insurance member identifiers, the
//! institutions they visit (2–3 each, with 医療機関コード), and what those institutions
//! record about them — conditions (MEDIS 病名管理番号 and ICD-10), allergies (JFAGY),
//! JLAC10 lab results and prescriptions (YJ/HOT9). It writes them as JP-CLINS information
//! Bundles, referral letters, discharge summaries and checkup reports.
//!
//! Everything is a pure function of `(seed, patient index)`: the same seed gives the same
//! bytes on every machine and with any number of threads, and patient `i` never depends on
//! patient `i - 1`, so patients can be generated in parallel. The random numbers come from
//! the crate's own SplitMix64 ([`prng`]) rather than a library whose output might change.
//!
//! It never reads the network, the shared reference data or any file: the few real codes
//! it uses are small tables in [`codes`]. It never validates what it makes; its tests do,
//! against the JP Core, JP-CLINS and eCheckupReport packages.

mod base64;
mod checkup;
mod clinical;
pub(crate) mod codes;
mod date;
mod documents;
mod fhir;
mod identity;
mod information;
mod institution;
mod names;
mod output;
mod patient;
mod person;
pub(crate) mod prng;
mod record;

use serde_json::Value;

pub use output::{write_dir, SynthStats};

/// What `tsunagu synth` generates: `patients` people (indices `0..patients`) from `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    pub patients: usize,
    pub seed: u64,
}

/// The kinds of Bundle, one output file each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BundleKind {
    /// JP_Bundle_CLINS (`collection`): the Patient and items of one type.
    Information,
    /// 診療情報提供書 (JP_Bundle_eReferral).
    Referral,
    /// 退院時サマリー (JP_Bundle_eDischargeSummary).
    DischargeSummary,
    /// 健診結果報告書 (JP_Bundle_eCheckupGeneral).
    Checkup,
}

impl BundleKind {
    pub const ALL: [BundleKind; 4] =
        [BundleKind::Information, BundleKind::Referral, BundleKind::DischargeSummary, BundleKind::Checkup];

    /// The output file name without `.ndjson`.
    pub fn file_stem(&self) -> &'static str {
        match self {
            BundleKind::Information => "clins-information",
            BundleKind::Referral => "ereferral",
            BundleKind::DischargeSummary => "edischarge-summary",
            BundleKind::Checkup => "echeckup",
        }
    }
}

/// One generated Bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthBundle {
    pub kind: BundleKind,
    pub bundle: Value,
}

/// The PRNG stream patients draw from (institutions use another).
const PATIENT_STREAM: u64 = 1;

/// Everything about patient `index`: information Bundles from each institution they
/// visit, a referral letter from one institution to their hospital, a discharge summary
/// from the hospital for about half of them, and a checkup report. Depends only on
/// `(seed, index)`.
pub fn patient_bundles(seed: u64, index: usize) -> Vec<SynthBundle> {
    let mut rng = prng::Rng::new(seed, PATIENT_STREAM, index as u64);
    let person = person::Person::draw(&mut rng);
    let records = record::draw_records(seed, &person, &mut rng);
    let mut ids = identity::BundleIds::new(seed, index);
    let mut out = Vec::with_capacity(records.len() * 3 + 3);
    for record in &records {
        for bundle in information::information_bundles(&person, record, &mut ids, &mut rng) {
            out.push(SynthBundle { kind: BundleKind::Information, bundle });
        }
    }
    // records[0] is the hospital; the referral comes from another institution to it.
    let hospital = &records[0];
    let referrer = &records[1 + rng.below(records.len() - 1)];
    out.push(SynthBundle {
        kind: BundleKind::Referral,
        bundle: documents::referral(&person, referrer, hospital, &mut ids, &mut rng),
    });
    if rng.chance(1, 2) {
        out.push(SynthBundle {
            kind: BundleKind::DischargeSummary,
            bundle: documents::discharge_summary(&person, hospital, &mut ids, &mut rng),
        });
    }
    let examiner = &records[rng.below(records.len())];
    out.push(SynthBundle {
        kind: BundleKind::Checkup,
        bundle: checkup::checkup_report(&person, examiner, &mut ids, &mut rng),
    });
    out
}
