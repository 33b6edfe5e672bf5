//! `_text` and `_content` without PostgreSQL's text parsers (they do not cut Japanese):
//! the search crate's token streams become `tsvector` literals with positions built here,
//! and its FTS5 match expressions become `tsquery` literals, both cast with `::tsvector` /
//! `::tsquery` so that no dictionary touches a token.
//!
//! One `tsvector` per version holds both streams: the narrative's tokens weighted `A` at
//! positions 1…, the other text's after a gap (so no phrase spans the two), unweighted. A
//! `_text` query asks for weight `A`; `_content` for any. Tokens are cut as FTS5's `ascii`
//! tokenizer cuts them (ASCII letters folded, other ASCII characters separate tokens).
//! Positions stop at 16,383 (PostgreSQL's limit) and PostgreSQL keeps at most 256 per
//! token, so a `tsvector` cannot tell phrases apart in long texts. Phrases are therefore
//! decided in two steps: the GIN index finds the versions that have every token of the
//! phrase (`&`, a superset), and the phrase is then checked exactly in the token streams,
//! which `idx_fulltext` keeps beside the vector as text (tokens separated by one space):
//! the same answers as FTS5 at any length. PostgreSQL also refuses a `tsvector` over 1 MB:
//! tokens that would take it past [`MAX_TSVECTOR_BYTES`] are left out of the vector (only
//! texts of several hundred thousand distinct words get there).

use crate::value::V;

const MAX_POSITION: usize = 16_383;
/// PostgreSQL refuses longer lexemes; such a token is left out of the index.
const MAX_LEXEME_BYTES: usize = 2_046;
/// Below PostgreSQL's 1 MB limit on a `tsvector`, with room for its header.
const MAX_TSVECTOR_BYTES: usize = 1_000_000;
/// Positions PostgreSQL keeps per lexeme.
const MAX_POSITIONS: usize = 256;

/// The tokens FTS5's `ascii` tokenizer makes of `s`.
fn ascii_tokens(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_ascii_lowercase())
}

fn quote(token: &str, out: &mut String) {
    out.push('\'');
    for c in token.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// The `tsvector` literal of a version's narrative and other text; `None` when both are
/// without tokens. Each lexeme is written once with all its positions (`'a':1A,7`):
/// PostgreSQL's input counts every written lexeme against its 1 MB limit, repeats included.
/// Also whether tokens had to be left out to stay within that limit (then the token text
/// alone decides, see [`row_condition`]).
pub(crate) fn tsvector(narrative: Option<&str>, content: Option<&str>) -> Option<(String, bool)> {
    let mut overflow = false;
    // Lexemes in order of first appearance, each with its positions (and weights).
    let mut lexemes: Vec<(String, Vec<String>)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = Default::default();
    let mut position = 0usize;
    // The size as PostgreSQL counts it: per lexeme an entry and its bytes, and two bytes
    // per position.
    let mut size = 0usize;
    for (stream, weight) in [(narrative, "A"), (content, "")] {
        let Some(stream) = stream else { continue };
        for token in ascii_tokens(stream) {
            position += 1;
            if token.len() > MAX_LEXEME_BYTES {
                overflow = true;
                continue;
            }
            let p = format!("{}{weight}", position.min(MAX_POSITION));
            match at.get(&token) {
                Some(&i) if lexemes[i].1.len() < MAX_POSITIONS && size + 2 <= MAX_TSVECTOR_BYTES => {
                    size += 2;
                    lexemes[i].1.push(p);
                }
                // A position not kept (PostgreSQL keeps 256 per lexeme) loses nothing: the
                // word is there, and phrases are checked in the token text.
                Some(_) => {}
                None if size + 4 + token.len() + 4 <= MAX_TSVECTOR_BYTES => {
                    size += 4 + token.len() + 4;
                    at.insert(token.clone(), lexemes.len());
                    lexemes.push((token, vec![p]));
                }
                None => overflow = true,
            }
        }
        // A gap between the two streams.
        position += 1;
    }
    let mut out = String::new();
    for (token, positions) in &lexemes {
        if !out.is_empty() {
            out.push(' ');
        }
        quote(token, &mut out);
        out.push(':');
        out.push_str(&positions.join(","));
    }
    (!out.is_empty()).then_some((out, overflow))
}

/// A token stream as stored for the exact phrase check: the tokens the vector was made
/// of, separated by one space; `None` without tokens.
pub(crate) fn token_text(stream: Option<&str>) -> Option<String> {
    let text = ascii_tokens(stream?).collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// The condition on an `idx_fulltext` row for an FTS5 match expression, with its values
/// pushed: the index-served `tsv @@ candidates` (phrases as `&` of their tokens) and the
/// exact test of every phrase in the stored token text. `None` when nothing can match.
pub(crate) fn row_condition(expr: &str, narrative_only: bool, values: &mut Vec<V>) -> Option<String> {
    let candidates = tsquery_with(expr, narrative_only, " & ")?;
    let pieces = pieces(expr)?;
    let mut exact = String::new();
    let mut exact_values = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Open => exact.push('('),
            Piece::Close => exact.push(')'),
            Piece::And => exact.push_str(" AND "),
            Piece::Or => exact.push_str(" OR "),
            Piece::Not => exact.push_str(" AND NOT "),
            Piece::Star => {}
            Piece::Phrase(text) => {
                let tokens: Vec<String> = ascii_tokens(text).collect();
                let prefix = pieces.get(i + 1) == Some(&Piece::Star);
                // ' t1 t2 … tn ' inside ' ' || text || ' ' (the last token as a prefix: no
                // space after it).
                let needle = format!(" {}{}", tokens.join(" "), if prefix { "" } else { " " });
                let text_test = |exact_values: &mut Vec<V>| {
                    let mut test = |column: &str| {
                        exact_values.push(V::Text(needle.clone()));
                        format!("strpos(' ' || COALESCE({column}, '') || ' ', ?) > 0")
                    };
                    if narrative_only {
                        test("narrative")
                    } else {
                        let n = test("narrative");
                        format!("({n} OR {})", test("content"))
                    }
                };
                if tokens.len() < 2 {
                    // One token: the vector answers it exactly, unless it had to leave
                    // tokens out (`overflow`).
                    let mut q = String::new();
                    quote(tokens.first()?, &mut q);
                    let w = if narrative_only { "A" } else { "" };
                    if prefix || !w.is_empty() {
                        q.push_str(&format!(":{}{w}", if prefix { "*" } else { "" }));
                    }
                    exact_values.push(V::Text(q));
                    let in_text = text_test(&mut exact_values);
                    exact.push_str(&format!("(tsv @@ (?)::tsquery OR (overflow AND {in_text}))"));
                } else {
                    exact.push_str(&text_test(&mut exact_values));
                }
            }
        }
    }
    values.push(V::Text(candidates));
    values.extend(exact_values);
    Some(format!("(tsv @@ (?)::tsquery OR overflow) AND ({exact})"))
}

/// Pieces of an FTS5 expression as the search crate writes them.
#[derive(Debug, PartialEq)]
enum Piece {
    Open,
    Close,
    And,
    Or,
    Not,
    Star,
    Phrase(String),
}

fn pieces(expr: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Piece::Open),
            ')' => out.push(Piece::Close),
            '*' => out.push(Piece::Star),
            '"' => {
                let mut phrase = String::new();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            phrase.push('"');
                        }
                        '"' => break,
                        c => phrase.push(c),
                    }
                }
                out.push(Piece::Phrase(phrase));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"' | '*') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(match word.as_str() {
                    "AND" => Piece::And,
                    "OR" => Piece::Or,
                    "NOT" => Piece::Not,
                    _ => Piece::Phrase(word),
                });
            }
        }
    }
    Some(out)
}

/// The `tsquery` literal of an FTS5 match expression (terms, `"phrases"`, a trailing `*`
/// for a prefix, `AND`, `OR`, `NOT`, parentheses); with `narrative_only`, every lexeme asks
/// for weight `A`. `None` when a phrase has no tokens or a token is too long (then nothing
/// matches).
#[cfg(test)]
fn tsquery(expr: &str, narrative_only: bool) -> Option<String> {
    tsquery_with(expr, narrative_only, " <-> ")
}

/// As [`tsquery`], with the tokens of a phrase joined by `join` (`<->` for the phrase
/// itself, `&` for the candidates that may hold it).
fn tsquery_with(expr: &str, narrative_only: bool, join: &str) -> Option<String> {
    let weight = if narrative_only { "A" } else { "" };
    let pieces = pieces(expr)?;
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Open => out.push('('),
            Piece::Close => out.push(')'),
            Piece::And => out.push_str(" & "),
            Piece::Or => out.push_str(" | "),
            Piece::Not => out.push_str(" & !"),
            Piece::Star => {}
            Piece::Phrase(text) => {
                let tokens: Vec<String> = ascii_tokens(text).collect();
                if tokens.is_empty() || tokens.iter().any(|t| t.len() > MAX_LEXEME_BYTES) {
                    return None;
                }
                let prefix = pieces.get(i + 1) == Some(&Piece::Star);
                out.push('(');
                for (n, t) in tokens.iter().enumerate() {
                    if n > 0 {
                        out.push_str(join);
                    }
                    quote(t, &mut out);
                    let star = if prefix && n + 1 == tokens.len() { "*" } else { "" };
                    if !star.is_empty() || !weight.is_empty() {
                        out.push_str(&format!(":{star}{weight}"));
                    }
                }
                out.push(')');
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_carry_positions_weights_and_escapes() {
        assert_eq!(
            tsvector(Some("糖尿 尿病 病 a"), Some("it's x\\y")).unwrap().0,
            "'糖尿':1A '尿病':2A '病':3A 'a':4A 'it':6 's':7 'x':8 'y':9"
        );
        assert_eq!(tsvector(None, Some("")), None);
        assert_eq!(tsvector(Some("a b a"), Some("a")).unwrap(), ("'a':1A,3A,5 'b':2A".to_string(), false));
    }

    #[test]
    fn huge_texts_stay_under_the_tsvector_limit() {
        let words: Vec<String> = (0..200_000).map(|i| format!("w{i:07}")).collect();
        let (v, overflow) = tsvector(None, Some(&words.join(" "))).unwrap();
        assert!(overflow);
        assert!(v.len() > 1_000_000 && v.len() < 4_000_000, "{}", v.len());
        // Lexeme bytes as PostgreSQL's input counts them (each written lexeme once).
        let lexeme_bytes = |v: &str| v.split(' ').map(|e| e.rsplit_once(':').unwrap().0.len() - 2).sum::<usize>();
        assert!(lexeme_bytes(&v) < 1_048_575);
        let repeated = vec!["abcdefghij"; 300_000].join(" ") + " " + &words.join(" ");
        let (v, _) = tsvector(Some(&repeated), None).unwrap();
        assert!(lexeme_bytes(&v) < 1_048_575);
    }

    #[test]
    fn expressions_become_tsqueries() {
        assert_eq!(tsquery("((\"高血 血圧\"))", true).unwrap(), "((('高血':A <-> '血圧':A)))");
        assert_eq!(tsquery("((\"a\")) AND ((\"b\") OR (\"c\"))", false).unwrap(), "((('a'))) & ((('b')) | (('c')))");
        assert_eq!(tsquery("((\"x 線\" *))", false).unwrap(), "((('x' <-> '線':*)))");
        assert_eq!(tsquery("((\"it''s\"))", false), tsquery("((\"it s\"))", false));
        assert_eq!(tsquery("((\" - \"))", false), None);
    }

    #[test]
    fn phrases_are_checked_in_the_token_text() {
        assert_eq!(token_text(Some("It's  a LIST")).unwrap(), "it s a list");
        let mut values = Vec::new();
        let sql = row_condition("((\"a list\")) AND ((\"b\" *))", true, &mut values).unwrap();
        assert_eq!(
            sql,
            "(tsv @@ (?)::tsquery OR overflow) AND (((strpos(' ' || COALESCE(narrative, '') || ' ', ?) > 0)) AND \
             (((tsv @@ (?)::tsquery OR (overflow AND strpos(' ' || COALESCE(narrative, '') || ' ', ?) > 0)))))"
        );
        assert_eq!(
            values,
            vec![
                V::Text("((('a':A & 'list':A))) & ((('b':*A)))".into()),
                V::Text(" a list ".into()),
                V::Text("'b':*A".into()),
                V::Text(" b".into())
            ]
        );
    }
}
