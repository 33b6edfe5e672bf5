//! Medical institutions: a pool per prefecture, each drawn from the seed alone, so that
//! the same institution (same 医療機関コード, name and doctors) appears for every patient
//! who visits it.

use crate::codes::{Prefecture, PREFECTURES};
use crate::names::{Name, FAMILY, GIVEN_FEMALE, GIVEN_MALE};
use crate::prng::Rng;

/// Institutions per prefecture; the first [`HOSPITALS_PER_PREFECTURE`] have beds.
pub(crate) const INSTITUTIONS_PER_PREFECTURE: usize = 40;
pub(crate) const HOSPITALS_PER_PREFECTURE: usize = 10;

/// The PRNG stream institutions draw from (patients use another).
const INSTITUTION_STREAM: u64 = 2;

pub(crate) struct Doctor {
    pub family: Name,
    pub given: Name,
    /// The institution's own staff number (D001…).
    pub staff_id: String,
}

impl Doctor {
    pub(crate) fn kanji_name(&self) -> String {
        format!("{} {}", self.family.kanji, self.given.kanji)
    }
}

pub(crate) struct Institution {
    /// 医療機関コード: prefecture (2) + point table (1, medical) + 7 digits.
    pub code: String,
    pub name: String,
    pub prefecture: &'static Prefecture,
    pub address: String,
    pub phone: String,
    pub doctors: Vec<Doctor>,
}

const HOSPITAL_NAMES: &[&str] = &["中央病院", "市民病院", "総合病院", "赤十字病院", "医療センター", "記念病院"];
const CLINIC_NAMES: &[&str] =
    &["内科クリニック", "診療所", "医院", "ファミリークリニック", "循環器内科", "胃腸科クリニック"];
const NAME_STEMS: &[&str] =
    &["さくら", "みどり", "あおば", "ひかり", "駅前", "東", "西", "南", "北", "城山", "若葉", "中町"];

impl Institution {
    /// Institution `slot` (in `0..INSTITUTIONS_PER_PREFECTURE`) of prefecture `prefecture_index`.
    pub(crate) fn pooled(seed: u64, prefecture_index: usize, slot: usize) -> Institution {
        let global = (prefecture_index * INSTITUTIONS_PER_PREFECTURE + slot) as u64;
        let mut rng = Rng::new(seed, INSTITUTION_STREAM, global);
        let prefecture = &PREFECTURES[prefecture_index];
        let hospital = slot < HOSPITALS_PER_PREFECTURE;
        // The 7 digits end in the slot so that two institutions of one prefecture never
        // share a code.
        let code = format!("{}1{:05}{:02}", prefecture.code, rng.below(100_000), slot);
        let stem = rng.pick(NAME_STEMS);
        let city = prefecture.city.trim_end_matches(|c| c != '市' && c != '区');
        let name = if hospital {
            format!("{city}{stem}{}", rng.pick(HOSPITAL_NAMES))
        } else {
            format!("{stem}{}", rng.pick(CLINIC_NAMES))
        };
        let address = format!(
            "{}{}{}{}丁目{}-{}",
            prefecture.name,
            prefecture.city,
            rng.pick(prefecture.towns),
            rng.between(1, 5),
            rng.between(1, 30),
            rng.between(1, 20)
        );
        let phone = format!("{}-{:04}-{:04}", prefecture.phone_area, rng.between(1000, 9999), rng.between(0, 9999));
        let doctors = (0..3)
            .map(|i| {
                let female = rng.chance(1, 3);
                Doctor {
                    family: *rng.pick(FAMILY),
                    given: *rng.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE }),
                    staff_id: format!("D{:03}", i + 1),
                }
            })
            .collect();
        Institution { code, name, prefecture, address, phone, doctors }
    }
}
