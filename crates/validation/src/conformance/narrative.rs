//! Internal links of narratives (every resource's `text.div`). The HL7 validator resolves
//! each hyperlink `<a href="#x">` and image `<img src="#x">` in the resource that holds the
//! narrative: an element whose `id` is `x` (the resource's, a contained resource's, any
//! element's), or, in any of its narratives, an XHTML element with `id="x"` or an
//! `<a name="x">`; inside a Bundle, the whole Bundle when the resource has none. A link
//! that resolves to nothing, or to several, is a warning: the R4 pages state no rule for
//! it (the official v3 terminologies link to anchors named otherwise), and a broken link
//! in a hospital's narrative should not make a JP-CLINS submission fail. The XHTML is read by the format crate (`internal_links`,
//! `link_targets`); narratives without an attribute value starting with `#` cost one scan.

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::IssueType;

use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_narrative_links(&mut self, div: &Node<'a>, res: &'a Value) {
        let Some(xhtml) = div.value.and_then(Value::as_str) else { return };
        let links = tsunagu_format::internal_links(xhtml);
        if links.is_empty() {
            return;
        }
        let own = link_targets(res);
        let in_bundle =
            !std::ptr::eq(res, self.root) && self.root.get("resourceType").and_then(Value::as_str) == Some("Bundle");
        let mut bundle: Option<FxHashMap<String, usize>> = None;
        let loc = self.location(div);
        for link in links {
            let mut count = own.get(&link.target).copied().unwrap_or(0);
            if count == 0 && in_bundle {
                count = bundle.get_or_insert_with(|| link_targets(self.root)).get(&link.target).copied().unwrap_or(0);
            }
            let (what_en, what_ja) = if link.image {
                ("Image source", "画像のソース")
            } else {
                ("Hyperlink", "ハイパーリンク")
            };
            let target = &link.target;
            let text = if link.text.is_empty() { String::new() } else { format!(" ('{}')", link.text) };
            match count {
                0 => self.warning(
                    IssueType::Invalid,
                    loc.clone(),
                    format!(
                        "{what_en} '#{target}'{text} does not resolve: no element id, XHTML id or <a name> in the \
                         resource is '{target}'"
                    ),
                    format!(
                        "{what_ja} '#{target}'{text} の参照先がありません（リソース内に id・XHTML の id・<a name> が '{target}' のものがありません）"
                    ),
                ),
                1 => {}
                n => self.warning(
                    IssueType::Invalid,
                    loc.clone(),
                    format!("{what_en} '#{target}'{text} resolves to {n} targets"),
                    format!("{what_ja} '#{target}'{text} の参照先が {n} 個あります"),
                ),
            }
        }
    }
}

/// How many times each name a link can point to occurs in `v`: the `id` of every object
/// (resources and elements) and the `id`s and `<a name>`s of every narrative.
fn link_targets(v: &Value) -> FxHashMap<String, usize> {
    let mut out: FxHashMap<String, usize> = FxHashMap::default();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(id)) = m.get("id") {
                    *out.entry(id.clone()).or_default() += 1;
                }
                if let Some(Value::String(div)) = m.get("div") {
                    tsunagu_format::link_targets(div, &mut |t| *out.entry(t.to_owned()).or_default() += 1);
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}
