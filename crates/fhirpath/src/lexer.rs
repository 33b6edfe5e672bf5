//! Tokens of FHIRPath text. Comments are dropped here; literals keep their source text so
//! the parser can build exact decimals and partial dates.

use crate::error::{FhirPathError, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A backtick-delimited identifier: never a keyword.
    Delimited(String),
    Str(String),
    /// Digits with an optional fraction, as written.
    Number(String),
    /// Digits with an `L` suffix (a Long, FHIRPath 3.0).
    Long(String),
    /// Text after `@`: a date, date-time, or (with leading `T`) time.
    DateTime(String),
    /// `$this`, `$index`, `$total`.
    Special(String),
    /// `%name`, `%`name``, `%'name'`.
    Env(String),
    Sym(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const SYMS: &[&str] =
    &["<=", ">=", "!=", "!~", ".", "[", "]", "(", ")", "{", "}", ",", "+", "-", "*", "/", "&", "|", "=", "~", "<", ">"];

pub fn tokenize(src: &str) -> Result<Vec<Token>> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            match src[i + 2..].find("*/") {
                Some(e) => i += e + 4,
                None => return Err(FhirPathError::syntax(i, "unterminated comment")),
            }
            continue;
        }
        let start = i;
        let tok = match c {
            b'\'' => {
                let (s, n) = string_lit(src, i, b'\'')?;
                i = n;
                Tok::Str(s)
            }
            b'`' => {
                let (s, n) = string_lit(src, i, b'`')?;
                i = n;
                Tok::Delimited(s)
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                // `2L` is a Long; `2Lx` stays a number followed by an identifier.
                let suffixed = b.get(i) == Some(&b'L')
                    && !b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    && !src[start..i].contains('.');
                if suffixed {
                    i += 1;
                    Tok::Long(src[start..i - 1].to_string())
                } else {
                    Tok::Number(src[start..i].to_string())
                }
            }
            b'@' => {
                i += 1;
                // Greedy over the characters a date/time literal may contain; the parser
                // validates the shape. A `.` belongs to the literal only before digits.
                while i < b.len() {
                    let ch = b[i];
                    let ok = ch.is_ascii_digit()
                        || matches!(ch, b'-' | b':' | b'T' | b'Z' | b'+')
                        || (ch == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit());
                    if !ok {
                        break;
                    }
                    i += 1;
                }
                Tok::DateTime(src[start + 1..i].to_string())
            }
            b'$' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Special(src[start + 1..i].to_string())
            }
            b'%' => {
                i += 1;
                match b.get(i) {
                    Some(b'`') | Some(b'\'') => {
                        let (s, n) = string_lit(src, i, b[i])?;
                        i = n;
                        Tok::Env(s)
                    }
                    _ => {
                        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                            i += 1;
                        }
                        if i == start + 1 {
                            return Err(FhirPathError::syntax(start, "expected a variable name after %"));
                        }
                        Tok::Env(src[start + 1..i].to_string())
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Ident(src[start..i].to_string())
            }
            _ => match SYMS.iter().find(|s| src[i..].starts_with(**s)) {
                Some(s) => {
                    i += s.len();
                    Tok::Sym(s)
                }
                None => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(FhirPathError::syntax(i, format!("unexpected character '{ch}'")));
                }
            },
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token { tok: Tok::Eof, pos: src.len() });
    Ok(out)
}

/// Reads a quoted literal starting at `i` (the opening quote), handling FHIRPath escapes.
fn string_lit(src: &str, i: usize, q: u8) -> Result<(String, usize)> {
    let b = src.as_bytes();
    let mut out = String::new();
    let mut j = i + 1;
    loop {
        let Some(&c) = b.get(j) else {
            return Err(FhirPathError::syntax(i, "unterminated string"));
        };
        if c == q {
            return Ok((out, j + 1));
        }
        if c == b'\\' {
            let Some(&e) = b.get(j + 1) else {
                return Err(FhirPathError::syntax(j, "unterminated escape"));
            };
            j += 2;
            match e {
                b'\'' => out.push('\''),
                b'"' => out.push('"'),
                b'`' => out.push('`'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hex = src.get(j..j + 4).ok_or_else(|| FhirPathError::syntax(j, "bad \\u escape"))?;
                    let n = u32::from_str_radix(hex, 16).map_err(|_| FhirPathError::syntax(j, "bad \\u escape"))?;
                    out.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                    j += 4;
                }
                _ => return Err(FhirPathError::syntax(j - 2, "unknown escape")),
            }
            continue;
        }
        let ch = src[j..].chars().next().unwrap_or('\0');
        out.push(ch);
        j += ch.len_utf8();
    }
}
