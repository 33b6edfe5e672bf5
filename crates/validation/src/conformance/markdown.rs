//! Embedded HTML in `markdown` values (every resource). "For control reasons, the FHIR
//! specification does not allow raw html tags in the markdown": the HL7 validator escapes
//! any `<` directly followed by a letter (and not by `\`) and, by default, warns that the
//! markdown "contains content that appears to be an embedded HTML tag" (an error only when
//! asked to be strict). The same warning here; ElementDefinition.comment on a narrative's
//! `div` is exempt, as there. No allocation unless a tag is found.

use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::IssueType;

use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_markdown(&mut self, node: &Node<'a>, parent: &Node<'a>) {
        let Some(md) = node.value.and_then(Value::as_str) else { return };
        let Some(at) = embedded_tag(md) else { return };
        if let Some(p) = parent.value {
            let is_comment = p.get("comment").is_some_and(|c| std::ptr::eq(c, node.value.unwrap_or(&Value::Null)));
            let on_div = p.get("path").and_then(Value::as_str).is_some_and(|path| path.ends_with(".text.div"));
            if is_comment && on_div {
                return;
            }
        }
        let tag: String = md[at..].chars().take(2).collect();
        let loc = self.location(node);
        self.warning(
            IssueType::Invalid,
            loc,
            format!(
                "The markdown contains content that appears to be an embedded HTML tag starting at '{tag}'. This will \
                 (or SHOULD) be escaped by the presentation layer; check that this is the desired behaviour"
            ),
            format!(
                "markdown に HTML タグと思われる内容（'{tag}' から）が含まれています。表示側でエスケープされる（べき）ものなので、意図したものか確認してください"
            ),
        );
    }
}

/// The byte offset of the first `<` followed by a letter and not escaped with `\`.
fn embedded_tag(md: &str) -> Option<usize> {
    let bytes = md.as_bytes();
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'<').map(|i| i + from) {
        let escaped = i > 0 && bytes[i - 1] == b'\\';
        if !escaped && md[i + 1..].chars().next().is_some_and(char::is_alphabetic) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::embedded_tag;

    #[test]
    fn a_tag_is_a_less_than_sign_before_a_letter() {
        assert_eq!(embedded_tag("see <b>this</b>"), Some(4));
        assert_eq!(embedded_tag("a < b, 1<2, <- arrow"), None);
        assert_eq!(embedded_tag(r"escaped \<b>"), None);
        assert_eq!(embedded_tag("</p>"), None);
        assert_eq!(embedded_tag("x <日本>"), Some(2));
    }
}
