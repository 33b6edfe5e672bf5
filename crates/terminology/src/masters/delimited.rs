//! Reading master files: encoding detection (UTF-8 with or without BOM, else Shift_JIS as
//! Windows-31J/CP932) and comma-separated records with optional `"` quoting, each record
//! with the 1-based line it starts on.

use encoding_rs::SHIFT_JIS;

use crate::error::{Result, TerminologyError};

/// Decodes a master file. Valid UTF-8 is taken as UTF-8 (a BOM is dropped); anything else
/// must be valid Shift_JIS. When neither fits, the error names the line where the
/// encoding that got further broke, as that is the one the file was meant to be in.
pub(crate) fn decode(bytes: &[u8]) -> Result<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let utf8_error = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(text.to_owned()),
        Err(e) => e,
    };
    if let Some(text) = SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes) {
        return Ok(text.into_owned());
    }
    let utf8_line = 1 + bytes[..utf8_error.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
    // 0x0A never occurs inside a Shift_JIS double-byte character, so lines decode alone.
    let sjis_line = bytes
        .split(|&b| b == b'\n')
        .position(|line| SHIFT_JIS.decode_without_bom_handling_and_without_replacement(line).is_none())
        .map_or(1, |n| n + 1);
    Err(if utf8_line >= sjis_line {
        TerminologyError::master(utf8_line, "bytes that are not UTF-8 in a file that reads as UTF-8 so far")
    } else {
        TerminologyError::master(
            sjis_line,
            "bytes that are not Shift_JIS (CP932) in a file that reads as Shift_JIS so far",
        )
    })
}

/// One record: its fields and the line it starts on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

impl Record {
    /// Field `i`, trimmed; empty when the record is shorter.
    pub fn get(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |f| f.trim())
    }
}

/// Splits comma-separated text into records. A quoted field may hold commas, doubled
/// quotes and line breaks; blank lines are skipped; a trailing DOS EOF (0x1A) is ignored.
pub(crate) fn records(text: &str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.trim_end_matches('\u{1a}').chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted_field = false;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if field.is_empty() && !quoted_field => {
                    quoted_field = true;
                    loop {
                        match chars.next() {
                            None => return Err(TerminologyError::master(start, "a quoted field is never closed")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',') | Some('\r') | Some('\n') => {}
                        Some(_) => return Err(TerminologyError::master(line, "text after a closing quote")),
                    }
                }
                Some('"') => return Err(TerminologyError::master(line, "a quote inside an unquoted field")),
                Some(',') => {
                    fields.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') | Some('\r') => {
                    fields.push(std::mem::take(&mut field));
                    line += 1;
                    break;
                }
                Some(c) => field.push(c),
            }
        }
        let blank = fields.len() == 1 && fields[0].trim().is_empty();
        if !blank {
            out.push(Record { line: start, fields });
        }
    }
    Ok(out)
}

/// A header cell reduced for comparison: folded, without spaces, brackets and dots, so
/// `基準番号（ＨＯＴコード）` and `基準番号(HOTコード)` meet.
pub(crate) fn header_key(s: &str) -> String {
    tsunagu_text::normalize(s.trim_start_matches('\u{feff}'))
        .chars()
        .filter(|c| !c.is_whitespace() && !"()[]「」【】・._-‐－―".contains(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_lines() {
        let rs = records("a,\"b,\"\"c\"\"\",d\r\n\n\"x\ny\",2\n3").unwrap();
        assert_eq!(rs[0], Record { line: 1, fields: vec!["a".into(), "b,\"c\"".into(), "d".into()] });
        assert_eq!(rs[1], Record { line: 3, fields: vec!["x\ny".into(), "2".into()] });
        assert_eq!(rs[2].line, 5);
        assert_eq!(records("a,\"b\n").unwrap_err(), TerminologyError::master(1, "a quoted field is never closed"));
        assert!(matches!(records("ok\na,\"b\"c\n"), Err(TerminologyError::Master { line: 2, .. })));
        assert!(matches!(records("ok\nok\na\"b\n"), Err(TerminologyError::Master { line: 3, .. })));
    }

    #[test]
    fn encodings() {
        let text = "病名,ｶﾅ\n";
        let (sjis, _, bad) = SHIFT_JIS.encode(text);
        assert!(!bad);
        assert_eq!(decode(&sjis).unwrap(), text);
        assert_eq!(decode(format!("\u{feff}{text}").as_bytes()).unwrap(), text);
        assert_eq!(decode(text.as_bytes()).unwrap(), text);
        // A lone lead byte on line 2 is neither encoding.
        assert!(matches!(decode(b"ok\n\x81\n"), Err(TerminologyError::Master { line: 2, .. })));
    }

    #[test]
    fn header_keys_meet() {
        assert_eq!(header_key("基準番号（ＨＯＴコード）"), header_key("基準番号(HOTコード)"));
        assert_eq!(header_key("ＩＣＤ１０‐２０１３"), "icd102013");
    }
}
