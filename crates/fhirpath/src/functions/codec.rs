//! `encode()`/`decode()` (base64, urlbase64, hex) and `escape()`/`unescape()` (html, json).

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8], url: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (k, &c)| acc | (c as u32) << (16 - 8 * k));
        for k in 0..4 {
            if k <= chunk.len() {
                let mut c = B64[(n >> (18 - 6 * k) & 63) as usize] as char;
                if url {
                    c = match c {
                        '+' => '-',
                        '/' => '_',
                        c => c,
                    };
                }
                out.push(c);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = bits << 6 | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits & 0xff) as u8);
        }
    }
    Some(out)
}

pub(super) fn encode(s: &str, how: &str) -> Option<String> {
    match how {
        "base64" => Some(b64_encode(s.as_bytes(), false)),
        "urlbase64" => Some(b64_encode(s.as_bytes(), true)),
        "hex" => Some(s.bytes().map(|c| format!("{c:02x}")).collect()),
        _ => None,
    }
}

pub(super) fn decode(s: &str, how: &str) -> Option<String> {
    let bytes = match how {
        "base64" | "urlbase64" => b64_decode(s)?,
        "hex" => {
            (0..s.len() / 2).map(|k| u8::from_str_radix(s.get(2 * k..2 * k + 2)?, 16).ok()).collect::<Option<_>>()?
        }
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

pub(super) fn escape(s: &str, how: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        match (how, c) {
            ("html", '<') => out.push_str("&lt;"),
            ("html", '>') => out.push_str("&gt;"),
            ("html", '&') => out.push_str("&amp;"),
            ("html", '"') => out.push_str("&quot;"),
            ("html", '\'') => out.push_str("&#39;"),
            ("json", '"') => out.push_str("\\\""),
            ("json", '\\') => out.push_str("\\\\"),
            ("json", '\n') => out.push_str("\\n"),
            ("json", '\r') => out.push_str("\\r"),
            ("json", '\t') => out.push_str("\\t"),
            ("html" | "json", c) => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

pub(super) fn unescape(s: &str, how: &str) -> Option<String> {
    match how {
        "html" => Some(
            s.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        ),
        "json" => {
            let mut out = String::new();
            let mut it = s.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next()? {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        o => out.push(o),
                    }
                } else {
                    out.push(c);
                }
            }
            Some(out)
        }
        _ => None,
    }
}
