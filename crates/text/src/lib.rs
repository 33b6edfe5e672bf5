//! Text folding for matching Japanese and Latin text: search string parameters, `_text`,
//! and terminology `$expand` filters all compare values after [`normalize`], so a match is
//! a plain comparison of folded strings. This crate owns nothing else: no tokenising, no
//! ranking, no dictionaries.

use unicode_normalization::UnicodeNormalization;

/// NFKC (full-width ↔ half-width: ﾔﾏﾀﾞ → ヤマダ, Ａ → A), lower case, Latin accents removed
/// (é → e), katakana folded to hiragana (ヤマダ → やまだ). Japanese voicing marks are kept:
/// ダ and タ stay different.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkc().flat_map(char::to_lowercase) {
        out.push(c);
    }
    // Decompose only to drop Latin combining accents; recompose so kana stay whole.
    let stripped: String = out.nfd().filter(|c| !('\u{0300}'..='\u{036F}').contains(c)).nfc().collect();
    stripped.chars().map(fold_kana).collect()
}

fn fold_kana(c: char) -> char {
    match c {
        // Katakana ァ..ヶ map onto hiragana ぁ..ゖ at a fixed distance.
        '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_widths_and_scripts_meet() {
        assert_eq!(normalize("ﾔﾏﾀﾞ"), "やまだ");
        assert_eq!(normalize("ヤマダ"), "やまだ");
        assert_eq!(normalize("やまだ"), "やまだ");
        assert_ne!(normalize("ヤマダ"), normalize("ヤマタ"));
        assert_eq!(normalize("山田"), "山田");
        assert_eq!(normalize("ＹＡＭＡＤＡ"), "yamada");
        assert_eq!(normalize("Éve"), "eve");
    }
}
