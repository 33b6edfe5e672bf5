//! Observations as a results table: item, result (value with unit, or why it is absent),
//! flag, reference range, date. Components and `hasMember` results follow their parent as
//! indented rows, one level only (a member's own members are not followed, so a cycle of
//! references cannot loop).

use std::borrow::Cow;

use serde_json::Value;

use crate::codes;
use crate::cx::Cx;
use crate::escape::Html;
use crate::resolve::Res;
use crate::values;

/// Writes one table for a run of Observations.
pub(crate) fn table<'a>(h: &mut Html, cx: &Cx<'a>, observations: impl Iterator<Item = Res<'a>>) {
    let t = cx.t;
    h.raw("<table class=\"results\"><thead><tr>");
    for label in [t.item, t.result, t.interpretation, t.reference_range, t.effective] {
        h.raw("<th>");
        h.text(label);
        h.raw("</th>");
    }
    h.raw("</tr></thead><tbody>");
    for obs in observations {
        row(h, cx, obs, obs.value, false);
        for component in obs.get("component").and_then(Value::as_array).into_iter().flatten() {
            row(h, cx, obs, component, true);
        }
        for member in obs.get("hasMember").and_then(Value::as_array).into_iter().flatten() {
            match cx.index.resolve(obs, member) {
                Some(m) if m.kind() == "Observation" => row(h, cx, m, m.value, true),
                _ => {
                    h.raw("<tr class=\"sub\"><td colspan=\"5\">");
                    crate::parties::unresolved(h, cx, member);
                    h.raw("</td></tr>");
                }
            }
        }
    }
    h.raw("</tbody></table>");
}

/// One row: an Observation (`item` is its resource) or one of its components (`item` is the
/// component, `obs` the Observation whose references it uses).
fn row<'a>(h: &mut Html, cx: &Cx<'a>, obs: Res<'a>, item: &'a Value, sub: bool) {
    let lang = cx.lang;
    let part = Res { value: item, ..obs };
    h.raw(if sub { "<tr class=\"sub\"><td>" } else { "<tr><td>" });
    h.text(&item.get("code").and_then(values::concept).unwrap_or(Cow::Borrowed("—")));
    h.raw("</td><td>");
    match values::choice(cx, part, "value") {
        Some(v) => h.text(&v),
        None => {
            if let Some(why) = item.get("dataAbsentReason").and_then(values::concept) {
                h.raw("<span class=\"absent\">");
                h.text(&why);
                h.raw("</span>");
            }
        }
    }
    if !sub {
        // A final result needs no mark; anything else (preliminary, cancelled…) says so.
        let status = obs.get("status").filter(|s| !matches!(s.as_str(), Some("final" | "amended" | "corrected")));
        if let Some(status) = values::code(status, codes::STATUS, lang) {
            h.raw(" <small>（");
            h.text(&status);
            h.raw("）</small>");
        }
        if let Some(note) = values::notes(obs.get("note")) {
            h.raw("<div class=\"note\">");
            h.text(&note);
            h.raw("</div>");
        }
    }
    h.raw("</td><td>");
    let flags = item.get("interpretation").and_then(Value::as_array).into_iter().flatten();
    if let Some(flags) = values::join(flags.filter_map(|c| values::coded_concept(c, codes::INTERPRETATION, lang))) {
        h.text(&flags);
    }
    h.raw("</td><td>");
    let ranges = item.get("referenceRange").and_then(Value::as_array).into_iter().flatten();
    if let Some(ranges) = values::join(ranges.filter_map(|r| {
        values::range(r).map(Cow::Owned).or_else(|| r.get("text").and_then(Value::as_str).map(Cow::Borrowed))
    })) {
        h.text(&ranges);
    }
    h.raw("</td><td>");
    if !sub || item.get("resourceType").is_some() {
        if let Some(when) = values::choice(cx, part, "effective") {
            h.text(&when);
        }
    }
    h.raw("</td></tr>");
}
