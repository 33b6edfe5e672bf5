//! The document's sections, in Composition order, nested as written: title, narrative,
//! entries, or why the section is empty.
//!
//! Nesting is bounded by [`MAX_SECTION_DEPTH`]: a hostile or broken document could nest
//! sections thousands deep, and every level costs the browser (and a printer) more than it
//! tells the reader. Below the limit, sections are listed by title only, without recursion.

use serde_json::Value;

use crate::cx::Cx;
use crate::entries::entries;
use crate::escape::Html;
use crate::narrative::narrative;
use crate::resolve::{str_at, Res};
use crate::values;

/// Section levels rendered in full; deeper sections are listed by title only.
pub const MAX_SECTION_DEPTH: usize = 16;

/// How many titles of over-deep sections are listed at most (each costs a line).
const MAX_DEEP_TITLES: usize = 1000;

const HEADINGS: [(&str, &str); 5] =
    [("<h2>", "</h2>"), ("<h3>", "</h3>"), ("<h4>", "</h4>"), ("<h5>", "</h5>"), ("<h6>", "</h6>")];

/// Writes `list` (a `section` array) at `depth` (1 for the Composition's own sections).
pub(crate) fn sections<'a>(h: &mut Html, cx: &Cx<'a>, composition: Res<'a>, list: &'a [Value], depth: usize) {
    for section in list {
        h.raw("<section class=\"doc-section\">");
        let (open, close) = HEADINGS[(depth - 1).min(HEADINGS.len() - 1)];
        h.raw(open);
        h.text(&title(section, cx));
        h.raw(close);
        if let Some(div) = section.get("text").and_then(|t| t.get("div")).and_then(Value::as_str) {
            narrative(h, div, cx.t);
        }
        match section.get("entry").and_then(Value::as_array).filter(|e| !e.is_empty()) {
            Some(list) => entries(h, cx, composition, list),
            None => {
                if let Some(why) = section.get("emptyReason").and_then(values::concept) {
                    h.raw("<p class=\"empty\">");
                    h.text(cx.t.empty_reason);
                    h.raw(": ");
                    h.text(&why);
                    h.raw("</p>");
                }
            }
        }
        if let Some(children) = section.get("section").and_then(Value::as_array).filter(|s| !s.is_empty()) {
            if depth < MAX_SECTION_DEPTH {
                sections(h, cx, composition, children, depth + 1);
            } else {
                titles_only(h, cx, children);
            }
        }
        h.raw("</section>");
    }
}

fn title<'a>(section: &'a Value, cx: &Cx<'_>) -> std::borrow::Cow<'a, str> {
    str_at(section, "title")
        .map(std::borrow::Cow::Borrowed)
        .or_else(|| section.get("code").and_then(values::concept))
        .unwrap_or(std::borrow::Cow::Borrowed(cx.t.untitled_section))
}

/// The titles of `list` and everything below it, in document order, as one flat list.
fn titles_only(h: &mut Html, cx: &Cx<'_>, list: &[Value]) {
    h.raw("<div class=\"too-deep\"><p class=\"warning\">");
    h.text(cx.t.too_deep);
    h.raw("</p><ul>");
    // An explicit stack (last child pushed first) instead of recursion: the depth is what
    // cannot be trusted here.
    let mut stack: Vec<&Value> = list.iter().rev().collect();
    let mut shown = 0;
    while let Some(section) = stack.pop() {
        if shown == MAX_DEEP_TITLES {
            h.raw("<li>…</li>");
            break;
        }
        h.raw("<li>");
        h.text(&title(section, cx));
        h.raw("</li>");
        shown += 1;
        if let Some(children) = section.get("section").and_then(Value::as_array) {
            stack.extend(children.iter().rev());
        }
    }
    h.raw("</ul></div>");
}
