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
/// treats most of them as parse errors and none of them is readable text.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
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
    fn keeps_japanese_text() {
        let mut h = Html::with_capacity(0);
        h.text("牧野 爛漫（マキノ）\n");
        assert_eq!(h.into_string(), "牧野 爛漫（マキノ）\n");
    }
}
