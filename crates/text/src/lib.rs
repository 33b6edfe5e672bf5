//! Text folding for matching Japanese and Latin text: search string parameters, `_text`,
//! and terminology `$expand` filters all compare values after [`normalize`], so a match is
//! a plain comparison of folded strings. This crate owns nothing else: no tokenising, no
//! ranking, no dictionaries.

use unicode_normalization::UnicodeNormalization;

/// Bytes the normalised form may have per byte of the value. NFKC expands a few
/// compatibility characters many times (U+FDFA, 3 bytes, becomes 33): a value of them
/// would cost its search indexes that much more memory and time than its size (a Person of
/// ten such names, 30 MB, took 27 s and 1 GB to write). Text of any script stays well
/// under it (full-width and half-width forms shrink); past it the normalised form is cut,
/// and values and search terms are cut alike.
const MAX_GROWTH: usize = 3;

/// NFKC (full-width ↔ half-width: ﾔﾏﾀﾞ → ヤマダ, Ａ → A), lower case, Latin accents removed
/// (é → e), katakana folded to hiragana (ヤマダ → やまだ). Japanese voicing marks are kept:
/// ダ and タ stay different. At most [`MAX_GROWTH`] times the value's bytes.
pub fn normalize(s: &str) -> String {
    let cap = s.len().saturating_mul(MAX_GROWTH).saturating_add(16);
    let mut out = String::with_capacity(s.len());
    for c in s.nfkc().flat_map(char::to_lowercase) {
        if out.len() + c.len_utf8() > cap {
            break;
        }
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
    fn expanding_compatibility_characters_are_cut_at_three_times_the_value() {
        // U+FDFA is 3 bytes and 18 characters (33 bytes) after NFKC.
        let long = "\u{FDFA}".repeat(1000);
        let n = normalize(&long);
        assert!(n.len() <= long.len() * MAX_GROWTH + 16, "{}", n.len());
        assert!(n.starts_with(&normalize("\u{FDFA}")));
        // Ordinary text of any script is whole.
        let text = "ﾔﾏﾀﾞ タロウ Ｙａｍａｄａ Éve 山田太郎 ".repeat(100);
        assert_eq!(normalize(&text).chars().count(), text.chars().count() - 100);
    }

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
