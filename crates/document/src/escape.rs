//! The only way text reaches the page. Markup is written from `&'static str` literals
//! ([`Html::raw`]); everything that came from the document goes through [`Html::text`],
//! which escapes it for both element content and quoted attribute values. That split is
//! what makes injection a type error rather than a review finding.

/// The page being written.
pub(crate) struct Html {
    buf: String,
}

impl Html {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Html { buf: String::with_capacity(n) }
    }

    /// Markup written by this crate. `'static` so document data can never be passed here.
    pub(crate) fn raw(&mut self, markup: &'static str) {
        self.buf.push_str(markup);
    }

    /// Document data, escaped.
    pub(crate) fn text(&mut self, s: &str) {
        escape_into(&mut self.buf, s);
    }

    /// Appends a fragment written separately (a narrative re-emitted into its own buffer so
    /// that a parse failure half-way leaves nothing behind).
    pub(crate) fn append(&mut self, other: Html) {
        self.buf.push_str(&other.buf);
    }

    pub(crate) fn into_string(self) -> String {
        self.buf
    }
}

/// Escapes `s` for HTML element content and double- or single-quoted attribute values.
/// Control characters other than tab, line feed and carriage return are dropped: HTML
/// treats most of them as parse errors and none of them is readable text. The colon of a
/// script scheme (`javascript:`, `vbscript:`) is written as `&#58;`: it reads the same,
/// but no filter, search or later processing of the page ever meets an executable URL,
/// even in inert text.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b':' if after_script_scheme(&s.as_bytes()[..i]) => "&#58;",
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            0..=8 | 11 | 12 | 14..=31 | 127 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Whether `before` ends with a script scheme's name (any case).
fn after_script_scheme(before: &[u8]) -> bool {
    [b"javascript".as_slice(), b"vbscript"].iter().any(|scheme| {
        before.len() >= scheme.len() && before[before.len() - scheme.len()..].eq_ignore_ascii_case(scheme)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        let mut h = Html::with_capacity(0);
        h.text("</title><script>alert('x')</script> & \"q\"\u{0}");
        assert_eq!(
            h.into_string(),
            "&lt;/title&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn script_schemes_never_appear_even_as_text() {
        let mut h = Html::with_capacity(0);
        h.text("JavaScript:alert(1) vbscript: http://x");
        assert_eq!(h.into_string(), "JavaScript&#58;alert(1) vbscript&#58; http://x");
    }

    #[test]
    fn keeps_japanese_text() {
        let mut h = Html::with_capacity(0);
        h.text("牧野 爛漫（マキノ）\n");
        assert_eq!(h.into_string(), "牧野 爛漫（マキノ）\n");
    }
}
