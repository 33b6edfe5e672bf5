//! A list of labelled values (`<dl>`), opened at its first row so that a resource with
//! nothing to show leaves no empty list behind.

use crate::escape::Html;

pub(crate) struct Fields<'h> {
    h: &'h mut Html,
    open: bool,
}

impl<'h> Fields<'h> {
    pub(crate) fn new(h: &'h mut Html) -> Self {
        Fields { h, open: false }
    }

    /// `label: value`, skipped when there is no value. Line breaks in the value are kept
    /// (by the page's CSS), as notes are often written on several lines.
    pub(crate) fn row(&mut self, label: &'static str, value: Option<impl AsRef<str>>) {
        if let Some(value) = value {
            let value = value.as_ref();
            if !value.trim().is_empty() {
                self.row_with(label, |h| h.text(value));
            }
        }
    }

    /// `label:` followed by whatever `body` writes.
    pub(crate) fn row_with(&mut self, label: &'static str, body: impl FnOnce(&mut Html)) {
        if !self.open {
            self.h.raw("<dl class=\"fields\">");
            self.open = true;
        }
        self.h.raw("<dt>");
        self.h.text(label);
        self.h.raw("</dt><dd>");
        body(self.h);
        self.h.raw("</dd>");
    }
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        if self.open {
            self.h.raw("</dl>");
        }
    }
}
