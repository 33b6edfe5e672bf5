//! Extensions (Extensibility §2.4.1): each one against its definition, found by its URL;
//! the URL absolute except on the parts of a complex extension; those parts named by the
//! definition; `modifierExtension` holding only modifier definitions and `extension` none;
//! an unknown definition an error unless its URL is under an allowed domain. The place of
//! an extension against its definition's `context` is in `context.rs`.

use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::profile::Profile;
use crate::slicing::extension_profile;
use crate::terminology::strip_version;
use crate::walk::Walk;

/// Domains whose extensions may be used without a loaded definition (a warning, not an
/// error): HL7 and FHIR's own, the Japanese ones the JP packages use, and the example
/// domains the specification's own examples use (RFC 2606 names and `nema.org`, as the
/// HL7 validator also accepts).
pub const DEFAULT_EXTENSION_DOMAINS: &[&str] = &[
    "hl7.org",
    "fhir.org",
    "jpfhir.jp",
    "hl7.jp",
    "jami.jp",
    "mhlw.go.jp",
    "medis.or.jp",
    "example.org",
    "example.com",
    "acme.com",
    "nema.org",
];

/// Whether `url` has a scheme (RFC 3986 §3.1), so is absolute.
pub(crate) fn is_absolute(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The host of `scheme://host[:port]/…`, lower-cased; `None` for URLs without one (urn:).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    Some(host.to_ascii_lowercase())
}

/// Whether `url` is under one of `domains` (the domain itself or a subdomain of it).
pub(crate) fn in_domains(url: &str, domains: &[String]) -> bool {
    let Some(host) = host_of(url) else { return false };
    domains.iter().any(|d| {
        let d = d.trim_start_matches('.').to_ascii_lowercase();
        host == d || host.strip_suffix(&d).is_some_and(|h| h.ends_with('.'))
    })
}

impl<'a> Walk<'_, 'a> {
    /// An extension met by the scan; `parent` is the element holding it.
    pub(crate) fn check_extension(&mut self, node: Node<'a>, parent: Node<'a>, res: &'a Value) {
        let Some(json) = node.value else { return };
        let Some(url) = json.get("url").and_then(Value::as_str) else {
            return;
        };
        if !is_absolute(url) {
            // Relative URLs name the parts of a complex extension, checked with their parent.
            if parent.type_name() != "Extension" {
                self.report_relative_url(&node, url);
            }
            return;
        }
        let seen = self.seen_extensions.contains(&(json as *const Value as usize));
        match self.v.profile(strip_version(url)) {
            Some(def) => {
                if !seen {
                    self.mark_extension(&node);
                    self.check_node(&def, 0, node, res);
                }
                self.check_sub_extensions(&def, &node, url);
                self.check_modifier_use(&def, &node, parent, url);
                self.check_extension_context(&def, &node, parent, res);
            }
            None if seen => {}
            None => self.report_unknown(&node, url),
        }
    }

    fn report_relative_url(&mut self, node: &Node<'a>, url: &str) {
        let loc = self.location(node);
        self.push(
            Severity::Error,
            IssueType::Structure,
            format!("{loc}.url"),
            format!("Extension.url '{url}' must be an absolute URL (only the parts of a complex extension are named relatively)"),
            format!("Extension.url '{url}' は絶対 URL でなければなりません（相対名は複合拡張の内側だけで使えます）"),
        );
    }

    fn report_unknown(&mut self, node: &Node<'a>, url: &str) {
        let loc = self.location(node);
        if in_domains(url, &self.v.extension_domains) {
            self.push(
                Severity::Warning,
                IssueType::Structure,
                loc,
                format!("Unknown extension {url}: its definition is not loaded"),
                format!("拡張 {url} の定義が読み込まれていないため、検証していません"),
            );
        } else {
            self.push(
                Severity::Error,
                IssueType::Structure,
                loc,
                format!("Unknown extension {url}: its definition is not loaded, and its domain is not one whose extensions are allowed without one"),
                format!("拡張 {url} の定義が見つかりません（定義なしで使える拡張のドメインでもありません）"),
            );
        }
    }

    /// The relative URLs inside a complex extension must be parts its definition declares
    /// (the slices of `Extension.extension`); absolute ones are extensions in their own
    /// right.
    fn check_sub_extensions(&mut self, def: &Profile, node: &Node<'a>, url: &str) {
        let Some(declared) = declared_parts(def) else { return };
        let Some(parts) = node.value.and_then(|v| v.get("extension")).and_then(Value::as_array) else { return };
        for (i, part) in parts.iter().enumerate() {
            let Some(part_url) = part.get("url").and_then(Value::as_str) else { continue };
            if is_absolute(part_url) || declared.contains(&part_url) {
                continue;
            }
            let loc = self.location(node);
            self.push(
                Severity::Error,
                IssueType::Structure,
                format!("{loc}.extension[{i}]"),
                format!(
                    "Sub-extension '{part_url}' is not defined by the extension {url} (it defines {})",
                    declared.join(", ")
                ),
                format!("部分拡張 '{part_url}' は拡張 {url} に定義されていません（定義: {}）", declared.join(", ")),
            );
        }
    }

    /// A modifier extension goes in `modifierExtension` and nowhere else (Extensibility
    /// §2.4.1.2: "modifier extensions SHALL NOT be placed in extension").
    fn check_modifier_use(&mut self, def: &Profile, node: &Node<'a>, parent: Node<'a>, url: &str) {
        let json = node.value.expect("checked by the caller");
        let as_modifier = parent
            .value
            .and_then(|p| p.get("modifierExtension"))
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|e| std::ptr::eq(e, json)));
        if as_modifier == def.modifier {
            return;
        }
        let (en, ja) = if as_modifier {
            (
                format!("Extension {url} is not a modifier extension, so it cannot be used in modifierExtension"),
                format!("拡張 {url} は修飾拡張ではないため、modifierExtension には使えません"),
            )
        } else {
            (
                format!("Extension {url} is a modifier extension, so it must be used in modifierExtension"),
                format!("拡張 {url} は修飾拡張なので、modifierExtension に置かなければなりません"),
            )
        };
        let loc = self.location(node);
        self.push(Severity::Error, IssueType::Structure, loc, en, ja);
    }
}

/// The URLs of the parts a complex extension definition declares; `None` when its
/// `Extension.extension` is not sliced (a simple extension forbids parts by cardinality).
fn declared_parts(def: &Profile) -> Option<Vec<&str>> {
    let root = def.elements.first()?;
    let list = root.children.iter().map(|&c| &def.elements[c]).find(|c| c.name == "extension")?;
    if list.slices.is_empty() {
        return None;
    }
    Some(list.slices.iter().filter_map(|&s| extension_profile(def, &def.elements[s])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_have_a_scheme() {
        assert!(is_absolute("http://example.org/x"));
        assert!(is_absolute("urn:oid:1.2.3"));
        assert!(!is_absolute("birthPlace"));
        assert!(!is_absolute("/StructureDefinition/x"));
        assert!(!is_absolute("1x:y"));
        for ok in ["http://a", "urn:oid:1.2", "urn:uuid:x", "mailto:a@b", "a+b-c.d:x"] {
            assert!(is_absolute(ok), "{ok}");
        }
        for bad in ["a", "/fhir/x", "1ab:x", ":x", "a b:x", "Patient/1"] {
            assert!(!is_absolute(bad), "{bad}");
        }
    }

    #[test]
    fn domains_match_the_host_or_its_subdomains() {
        let domains: Vec<String> = DEFAULT_EXTENSION_DOMAINS.iter().map(|d| d.to_string()).collect();
        assert!(in_domains("http://hl7.org/fhir/StructureDefinition/x", &domains));
        assert!(in_domains("https://www.jpfhir.jp/fhir/core/Extension/x", &domains));
        assert!(in_domains("http://user@HL7.ORG:80/x", &domains));
        assert!(!in_domains("http://nothl7.org/x", &domains));
        assert!(!in_domains("http://acme.org/x", &domains));
        assert!(!in_domains("urn:oid:1.2.3", &domains));
    }
}
