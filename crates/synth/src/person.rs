//! One synthetic person: who they are everywhere, whichever institution records them.

use crate::codes::{Prefecture, PREFECTURES};
use crate::date::Date;
use crate::names::{Name, FAMILY, GIVEN_FEMALE, GIVEN_MALE};
use crate::prng::Rng;

pub(crate) struct Person {
    pub family: Name,
    pub given: Name,
    pub female: bool,
    pub birth: Date,
    pub prefecture_index: usize,
    pub prefecture: &'static Prefecture,
    pub address_line: String,
    pub phone: String,
    /// `保険者番号8桁:記号:番号:枝番`, the same at every institution: the platform matches
    /// a person's records across institutions by it.
    pub insurance_member: String,
}

/// 記号 as printed on insurance cards: kana or digits.
const CARD_SYMBOLS: &[&str] = &["あいう", "かきく", "さしす", "たちつ", "なにぬ", "はひふ", "まみむ", "やゆよ"];

const FULL_WIDTH_DIGITS: [char; 10] = ['０', '１', '２', '３', '４', '５', '６', '７', '８', '９'];

impl Person {
    pub(crate) fn draw(rng: &mut Rng) -> Person {
        let female = rng.chance(1, 2);
        let family = *rng.pick(FAMILY);
        let given = *rng.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE });
        let birth = Date::ymd(rng.between(1930, 2015), rng.between(1, 12), rng.between(1, 28));
        let prefecture_index = rng.below(PREFECTURES.len());
        let prefecture = &PREFECTURES[prefecture_index];
        let address_line = format!(
            "{}{}丁目{}-{}",
            rng.pick(prefecture.towns),
            rng.between(1, 5),
            rng.between(1, 30),
            rng.between(1, 20)
        );
        let phone = format!("{}-{:04}-{:04}", prefecture.phone_area, rng.between(1000, 9999), rng.between(0, 9999));
        // 健康保険組合 numbers are 06 + prefecture + 4 digits; the last digit stands in
        // for the check digit.
        let insurer = format!("06{}{:04}", prefecture.code, rng.between(0, 9999));
        let symbol = if rng.chance(1, 2) {
            (*rng.pick(CARD_SYMBOLS)).to_owned()
        } else {
            (0..rng.between(2, 4)).map(|_| FULL_WIDTH_DIGITS[rng.below(10)]).collect()
        };
        let number: String = (0..rng.between(3, 7)).map(|_| FULL_WIDTH_DIGITS[rng.below(10)]).collect();
        let branch = rng.between(0, 5);
        let insurance_member = format!("{insurer}:{symbol}:{number}:{branch:02}");
        Person { family, given, female, birth, prefecture_index, prefecture, address_line, phone, insurance_member }
    }

    pub(crate) fn gender(&self) -> &'static str {
        if self.female {
            "female"
        } else {
            "male"
        }
    }

    pub(crate) fn kanji_name(&self) -> String {
        format!("{} {}", self.family.kanji, self.given.kanji)
    }

    pub(crate) fn kana_name(&self) -> String {
        format!("{} {}", self.family.kana, self.given.kana)
    }

    pub(crate) fn address_text(&self) -> String {
        format!("{}{}{}", self.prefecture.name, self.prefecture.city, self.address_line)
    }
}
