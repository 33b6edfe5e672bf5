//! `_text` (the narrative, `text.div` without markup) and `_content` (the text of the whole
//! resource): tokens for the store's full-text index, and search values into its queries.
//!
//! Why a tokeniser of our own rather than FTS5's: Japanese is written without spaces, so
//! FTS5's `unicode61` would make one token of a whole sentence and find no word inside it.
//! Here text is folded with [`normalize`] (width, case, accents, katakana → hiragana) and
//! then cut into runs: a CJK run becomes its overlapping bigrams followed by its last
//! character (so every character starts some token: a one-character query is a prefix
//! query, a longer one the phrase of its bigrams), any other run of letters and digits one
//! word. The store keeps the token stream in FTS5 with its `ascii` tokenizer, which splits
//! on spaces only for these tokens and so leaves them as they are.

use crate::error::SearchError;
use serde_json::Value;
use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue};
use tsunagu_text::normalize;

/// Keys whose values are identifiers, links, binary data or the narrative (indexed on its
/// own, and searched by `_content` too) rather than text.
const NOT_TEXT: &[&str] = &["id", "reference", "system", "url", "data", "resourceType", "div", "fullUrl", "meta"];

/// Text of one resource indexed for `_text`, and again for `_content`: what follows is not
/// found by them. The full-text index holds a resource's distinct words in memory until
/// its transaction commits, so a narrative of millions of distinct words (a body within
/// `max_body_bytes` may be one) would cost gigabytes there; real narratives are far shorter.
pub const INDEXED_TEXT_BYTES: usize = 1024 * 1024;

/// The first `max` bytes of `text`, cut at a character boundary.
fn within(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `_text` and `_content` entries of a resource. The `_content` tokens leave out the
/// narrative: a `_content` search looks in both columns.
pub(crate) fn entries(resource: &Value, out: &mut Vec<IndexEntry>) {
    let narrative = resource.pointer("/text/div").and_then(Value::as_str).map(strip_markup).unwrap_or_default();
    let mut seen = Vec::new();
    collect_text(resource, &mut rustc_hash::FxHashSet::default(), &mut seen);
    // Sorted, so the tokens do not depend on the order of keys in the JSON (a bulk load
    // indexes the input as sent, a reindex or restore the stored body): the same resource
    // always gets the same full-text rows. Strings are separate phrases either way.
    seen.sort_unstable();
    let content = seen.join(" ; ");
    for (param, text) in [("_text", narrative), ("_content", content)] {
        let tokens = tokens(within(&text, INDEXED_TEXT_BYTES));
        if !tokens.is_empty() {
            out.push(IndexEntry { param: param.into(), value: IndexValue::FullText { tokens } });
        }
    }
}

/// The distinct prose strings of a resource, in the order first met. Claims repeat the
/// same display many times; one copy finds the resource as well. The set keeps this linear
/// in the number of strings (a Patient with 80,000 given names).
fn collect_text<'v>(v: &'v Value, seen: &mut rustc_hash::FxHashSet<&'v str>, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) if is_prose(s) && seen.insert(s.as_str()) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, seen, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if !NOT_TEXT.contains(&k.as_str()) {
                    collect_text(v, seen, out);
                }
            }
        }
        _ => {}
    }
}

/// Text written for people: it has a space, a capital letter, or is not ASCII (Japanese).
/// What is left out (`final`, `8480-6`, `2024-01-02T10:00:00Z`, UUIDs, URLs) are codes,
/// dates and identifiers, which have search parameters of their own; keeping them out of
/// `_content` halves its index on Synthea data.
fn is_prose(s: &str) -> bool {
    !s.is_ascii()
        || s.contains(' ')
        || s.bytes().any(|b| b.is_ascii_uppercase()) && s.bytes().any(|b| b.is_ascii_lowercase())
}

/// [`normalize`], with a shortcut for ASCII text (most of it), where it only lowers case.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        normalize(text)
    }
}

/// XHTML to its text: tags dropped (as spaces, so words on both sides stay apart) and the
/// common entities decoded.
fn strip_markup(xhtml: &str) -> String {
    let mut out = String::with_capacity(xhtml.len());
    let mut rest = xhtml;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            rest = rest.find('>').map_or("", |i| &rest[i + 1..]);
            out.push(' ');
        } else if c == '&' {
            let end = rest.find(';').filter(|i| *i <= 10);
            let decoded = end.and_then(|i| entity(&rest[1..i]));
            match (end, decoded) {
                (Some(i), Some(ch)) => {
                    out.push(ch);
                    rest = &rest[i + 1..];
                }
                _ => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Characters of scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3005 | 0x3040..=0x30FF | 0x31F0..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF
        | 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F | 0x20000..=0x2FFFF)
}

/// A run of text that becomes tokens together.
enum Run {
    Word(String),
    Cjk(Vec<char>),
}

/// Folded text cut into words and CJK runs; everything else separates them.
fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    for c in fold(text).chars() {
        match (is_cjk(c), c.is_alphanumeric(), out.last_mut()) {
            (true, _, Some(Run::Cjk(chars))) => chars.push(c),
            (true, _, _) => out.push(Run::Cjk(vec![c])),
            (false, true, Some(Run::Word(w))) => w.push(c),
            (false, true, _) => out.push(Run::Word(c.to_string())),
            (false, false, _) => out.push(Run::Word(String::new())), // a separator
        }
    }
    out.retain(|r| !matches!(r, Run::Word(w) if w.is_empty()));
    out
}

/// The token stream of a text, space-separated.
pub(crate) fn tokens(text: &str) -> String {
    let mut out = String::new();
    let mut push = |t: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    };
    for run in runs(text) {
        match run {
            Run::Word(w) => push(&w),
            Run::Cjk(chars) => {
                for pair in chars.windows(2) {
                    push(&pair.iter().collect::<String>());
                }
                push(&chars[chars.len() - 1].to_string());
            }
        }
    }
    out
}

/// `_text=…` / `_content=…`: comma-separated values are alternatives; in a value, terms
/// separated by spaces must all occur, `OR` between two terms lets either do, and
/// `"quoted words"` must occur together. `OR` binds tighter than the implicit AND.
pub(crate) fn parse_clause(
    name: &str,
    modifier: Option<&str>,
    value: &str,
    max_terms: usize,
) -> Result<Clause, SearchError> {
    let negate = match modifier {
        None => false,
        Some("not") => true,
        Some(_) => return Err(SearchError::Unsupported(name.to_string())),
    };
    let narrative_only = name.starts_with("_text");
    let mut any = Vec::new();
    for v in value.split(',') {
        // SQLite's full-text query parser nests one level per term; bound it before it does.
        let terms = v.split_whitespace().count();
        if terms > max_terms {
            let e =
                tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::TextTerms, max_terms).found(terms).at(name);
            return Err(e.into());
        }
        let query = match_expression(v).ok_or_else(|| {
            crate::parse::bad(
                name,
                v,
                "no words to search for (letters, digits or kanji/kana)",
                "検索する語（文字、数字、漢字・かな）がありません",
            )
        })?;
        any.push(Condition::FullText { narrative_only, query, negate });
    }
    if negate && any.len() > 1 {
        return Err(SearchError::Unsupported(format!("{name} with several values (repeat the parameter)")));
    }
    Ok(Clause { any })
}

/// The FTS5 match expression for one search value, `None` when it has no words.
pub(crate) fn match_expression(v: &str) -> Option<String> {
    // Terms (each a word or a quoted phrase) in groups joined by OR; groups are ANDed.
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut join_next = false;
    let mut rest = v.trim();
    while !rest.is_empty() {
        let (term, tail) = if let Some(q) = rest.strip_prefix('"') {
            q.split_once('"').unwrap_or((q, ""))
        } else {
            rest.split_once(char::is_whitespace).unwrap_or((rest, ""))
        };
        rest = tail.trim_start();
        if term == "OR" {
            join_next = !groups.is_empty();
            continue;
        }
        let Some(expr) = term_expression(term) else { continue };
        match groups.last_mut() {
            Some(g) if join_next => g.push(expr),
            _ => groups.push(vec![expr]),
        }
        join_next = false;
    }
    if groups.is_empty() {
        return None;
    }
    let ands: Vec<String> = groups.iter().map(|g| format!("({})", g.join(" OR "))).collect();
    Some(ands.join(" AND "))
}

/// One term (no spaces): its tokens as one phrase, as the text would have been cut, so
/// `abc山田` finds those words next to each other. A CJK run followed by more of the term
/// ends with its last character (the index cuts a run into bigrams and that character);
/// a term ending in a single CJK character matches it as a prefix, since in the text it
/// may start a longer run.
fn term_expression(term: &str) -> Option<String> {
    let runs = runs(term);
    let mut tokens: Vec<String> = Vec::new();
    let mut prefix = false;
    for (i, run) in runs.iter().enumerate() {
        let last = i + 1 == runs.len();
        match run {
            Run::Word(w) => tokens.push(w.clone()),
            Run::Cjk(chars) if chars.len() == 1 => {
                tokens.push(chars[0].to_string());
                prefix = last;
            }
            Run::Cjk(chars) => {
                tokens.extend(chars.windows(2).map(|p| p.iter().collect::<String>()));
                if !last {
                    tokens.push(chars[chars.len() - 1].to_string());
                }
            }
        }
    }
    if tokens.is_empty() {
        return None;
    }
    Some(format!("(\"{}\"{})", tokens.join(" "), if prefix { " *" } else { "" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_becomes_bigrams_and_latin_words() {
        assert_eq!(tokens("山田太郎 Blood-Pressure 120"), "山田 田太 太郎 郎 blood pressure 120");
        assert_eq!(tokens("ヤマダ"), "やま まだ だ");
        assert_eq!(tokens("<b>x</b>"), "b x b");
        assert!(is_prose("Body Height") && is_prose("Aspirin") && is_prose("高血圧") && is_prose("blood pressure"));
        assert!(!is_prose("final") && !is_prose("8480-6") && !is_prose("2024-01-02T10:00:00Z") && !is_prose("USD"));
        assert_eq!(strip_markup("<div><p>高血圧&amp;糖尿病</p></div>"), "  高血圧&糖尿病  ");
    }

    #[test]
    fn text_past_the_indexed_bytes_is_left_out_at_a_character_boundary() {
        assert_eq!(within("山田太郎", 7), "山田");
        assert_eq!(within("abc", 7), "abc");
        let words: Vec<String> = (0..200_000).map(|i| format!("w{i}")).collect();
        let div = format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", words.join(" "));
        let patient = serde_json::json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
        let mut out = Vec::new();
        entries(&patient, &mut out);
        let IndexValue::FullText { tokens } = &out[0].value else { panic!("{:?}", out[0]) };
        assert!(tokens.len() <= INDEXED_TEXT_BYTES && tokens.starts_with("w0 w1 "));
        assert!(!tokens.contains("w199999"));
    }

    #[test]
    fn queries_and_or_phrases() {
        assert_eq!(match_expression("高血圧").unwrap(), "((\"高血 血圧\"))");
        assert_eq!(match_expression("a b OR c").unwrap(), "((\"a\")) AND ((\"b\") OR (\"c\"))");
        assert_eq!(match_expression("\"blood pressure\" 血").unwrap(), "((\"blood pressure\")) AND ((\"血\" *))");
        assert!(match_expression(" - ").is_none());
        // A term mixing scripts is one phrase in the order the index cuts the text.
        assert_eq!(match_expression("abc山田").unwrap(), "((\"abc 山田\"))");
        assert_eq!(match_expression("山田abc").unwrap(), "((\"山田 田 abc\"))");
        assert_eq!(match_expression("x線").unwrap(), "((\"x 線\" *))");
        assert_eq!(match_expression("blood-pressure").unwrap(), "((\"blood pressure\"))");
    }
}
