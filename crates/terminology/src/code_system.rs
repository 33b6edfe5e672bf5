//! One CodeSystem indexed for lookups: concepts in a flat arena addressed by `u32`, a
//! code → index map, and the is-a hierarchy from nested `concept` elements and from the
//! `parent` / `subsumedBy` / `child` properties. Strings are boxed slices and links are
//! boxed `u32` slices so that a 200k-concept master stays a few tens of megabytes.

use std::sync::OnceLock;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// A designation (another name) of a concept.
#[derive(Debug, Clone)]
pub(crate) struct Designation {
    pub language: Option<Box<str>>,
    /// The `use` Coding, kept as JSON because it is only echoed back.
    pub use_: Option<Value>,
    pub value: Box<str>,
}

/// A concept property: its code, the JSON key of its value (`valueCode`, `valueString`,
/// …) and the value.
#[derive(Debug, Clone)]
pub(crate) struct ConceptProperty {
    pub code: Box<str>,
    pub key: Box<str>,
    pub value: Value,
}

impl ConceptProperty {
    /// The value as text for `=`, `in` and `regex` filters: a Coding by its code, other
    /// primitives as written.
    pub fn text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => o.get("code").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Concept {
    pub code: Box<str>,
    pub display: Option<Box<str>>,
    pub definition: Option<Box<str>>,
    pub designations: Box<[Designation]>,
    pub properties: Box<[ConceptProperty]>,
    pub parents: Box<[u32]>,
    pub children: Box<[u32]>,
    /// `status` retired or `inactive` true (deprecated concepts are still active).
    pub inactive: bool,
    /// `notSelectable` true: a grouper, shown as `abstract` in expansions.
    pub not_selectable: bool,
}

#[derive(Debug)]
pub(crate) struct CodeSystemIndex {
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    pub title: Option<String>,
    /// `complete`, `fragment`, `example`, `not-present` or `supplement`.
    pub content: String,
    pub case_sensitive: bool,
    pub concepts: Vec<Concept>,
    by_code: FxHashMap<Box<str>, u32>,
    /// Lower-cased codes, only for systems declared case-insensitive.
    by_folded_code: Option<FxHashMap<String, u32>>,
    /// Folded (`tsunagu_text::normalize`) code, display and designations per concept,
    /// built on the first text filter.
    search_text: OnceLock<Box<[Box<str>]>>,
}

const HIERARCHY_UP: [&str; 2] = ["parent", "subsumedBy"];

impl CodeSystemIndex {
    pub fn from_resource(cs: &Value) -> Self {
        let text = |k: &str| cs.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut index = CodeSystemIndex {
            url: text("url").unwrap_or_default(),
            version: text("version"),
            name: text("name"),
            title: text("title"),
            content: text("content").unwrap_or_else(|| "complete".to_owned()),
            case_sensitive: cs.get("caseSensitive").and_then(Value::as_bool).unwrap_or(true),
            concepts: Vec::new(),
            by_code: FxHashMap::default(),
            by_folded_code: None,
            search_text: OnceLock::new(),
        };
        let mut links = Links::default();
        if let Some(list) = cs.get("concept").and_then(Value::as_array) {
            index.concepts.reserve(list.len());
            index.add_concepts(list, None, &mut links);
        }
        index.link(links);
        if !index.case_sensitive {
            let folded = index.concepts.iter().enumerate().map(|(i, c)| (c.code.to_lowercase(), i as u32)).collect();
            index.by_folded_code = Some(folded);
        }
        index
    }

    /// Walks a `concept` list; nested lists make their concepts children of `parent`. A
    /// code met twice (the same concept under two groupers) stays one concept with two
    /// parents.
    fn add_concepts(&mut self, list: &[Value], parent: Option<u32>, links: &mut Links) {
        for c in list {
            let Some(code) = c.get("code").and_then(Value::as_str) else { continue };
            let at = match self.by_code.get(code) {
                Some(&at) => at,
                None => {
                    let at = self.concepts.len() as u32;
                    self.concepts.push(concept_from(c));
                    self.by_code.insert(code.into(), at);
                    for p in c.get("property").and_then(Value::as_array).into_iter().flatten() {
                        let pcode = p.get("code").and_then(Value::as_str).unwrap_or("");
                        let target = p.get("valueCode").or_else(|| p.get("valueString")).and_then(Value::as_str);
                        match (pcode, target) {
                            (k, Some(t)) if HIERARCHY_UP.contains(&k) => links.up.push((at, t.to_owned())),
                            ("child", Some(t)) => links.down.push((at, t.to_owned())),
                            _ => {}
                        }
                    }
                    at
                }
            };
            if let Some(p) = parent {
                links.pairs.push((p, at));
            }
            if let Some(nested) = c.get("concept").and_then(Value::as_array) {
                self.add_concepts(nested, Some(at), links);
            }
        }
    }

    fn link(&mut self, links: Links) {
        let mut pairs = links.pairs;
        for (child, parent_code) in links.up {
            if let Some(&p) = self.by_code.get(parent_code.as_str()) {
                pairs.push((p, child));
            }
        }
        for (parent, child_code) in links.down {
            if let Some(&c) = self.by_code.get(child_code.as_str()) {
                pairs.push((parent, c));
            }
        }
        if pairs.is_empty() {
            return;
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs.retain(|(p, c)| p != c);
        let mut parents: Vec<Vec<u32>> = vec![Vec::new(); self.concepts.len()];
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); self.concepts.len()];
        for (p, c) in pairs {
            parents[c as usize].push(p);
            children[p as usize].push(c);
        }
        for (concept, (ps, cs)) in self.concepts.iter_mut().zip(parents.into_iter().zip(children)) {
            concept.parents = ps.into_boxed_slice();
            concept.children = cs.into_boxed_slice();
        }
    }

    pub fn find(&self, code: &str) -> Option<u32> {
        if let Some(&i) = self.by_code.get(code) {
            return Some(i);
        }
        self.by_folded_code.as_ref()?.get(&code.to_lowercase()).copied()
    }

    pub fn concept(&self, i: u32) -> &Concept {
        &self.concepts[i as usize]
    }

    pub fn is_complete(&self) -> bool {
        self.content == "complete"
    }

    /// Every concept below `i`, without `i` itself, in breadth-first order.
    pub fn descendants(&self, i: u32) -> Vec<u32> {
        self.walk(i, |c| &c.children)
    }

    /// Every concept above `i`, without `i` itself, nearest first.
    pub fn ancestors(&self, i: u32) -> Vec<u32> {
        self.walk(i, |c| &c.parents)
    }

    fn walk(&self, start: u32, next: impl Fn(&Concept) -> &[u32]) -> Vec<u32> {
        let mut seen = FxHashSet::default();
        seen.insert(start);
        let mut out = Vec::new();
        let mut at = 0;
        out.extend(next(self.concept(start)).iter().copied().filter(|n| seen.insert(*n)));
        while at < out.len() {
            let here = out[at];
            at += 1;
            for &n in next(self.concept(here)) {
                if seen.insert(n) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Whether `ancestor` is `descendant` or above it.
    pub fn subsumes(&self, ancestor: u32, descendant: u32) -> bool {
        ancestor == descendant || self.ancestors(descendant).contains(&ancestor)
    }

    /// Folded text of concept `i` for substring filters: code, display and designations,
    /// separated by U+001F so that a filter word never matches across two names.
    pub fn search_text(&self, i: u32) -> &str {
        let all = self.search_text.get_or_init(|| {
            self.concepts
                .iter()
                .map(|c| {
                    fold_names(&c.code, c.display.as_deref(), c.designations.iter().map(|d| &*d.value)).into_boxed_str()
                })
                .collect()
        });
        &all[i as usize]
    }

    /// The display in `language` when a designation has it (`ja` matches `ja-JP`),
    /// otherwise the concept's display.
    pub fn display_in(&self, i: u32, language: Option<&str>) -> Option<&str> {
        let c = self.concept(i);
        language.and_then(|lang| designation_in(&c.designations, lang)).or(c.display.as_deref())
    }
}

#[derive(Default)]
struct Links {
    /// (parent, child) from nesting.
    pairs: Vec<(u32, u32)>,
    /// (child, parent code) from `parent` / `subsumedBy`.
    up: Vec<(u32, String)>,
    /// (parent, child code) from `child`.
    down: Vec<(u32, String)>,
}

pub(crate) fn designation_in<'d>(designations: &'d [Designation], language: &str) -> Option<&'d str> {
    designations
        .iter()
        .find(|d| d.language.as_deref().is_some_and(|l| language_matches(l, language)))
        .map(|d| &*d.value)
}

/// `ja` asks for any Japanese (`ja`, `ja-JP`, `ja-Kana`); `ja-JP` asks for exactly that.
fn language_matches(have: &str, want: &str) -> bool {
    have.eq_ignore_ascii_case(want)
        || (have.len() > want.len()
            && have.as_bytes()[want.len()] == b'-'
            && have[..want.len()].eq_ignore_ascii_case(want))
}

pub(crate) fn fold_names<'a>(code: &str, display: Option<&'a str>, others: impl Iterator<Item = &'a str>) -> String {
    let mut text = tsunagu_text::normalize(code);
    for name in display.into_iter().chain(others) {
        text.push('\u{1f}');
        text.push_str(&tsunagu_text::normalize(name));
    }
    text
}

fn concept_from(c: &Value) -> Concept {
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(Box::from);
    let designations: Box<[Designation]> =
        c.get("designation").and_then(Value::as_array).into_iter().flatten().filter_map(designation_from).collect();
    let properties: Box<[ConceptProperty]> = c
        .get("property")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let obj = p.as_object()?;
            let code = obj.get("code")?.as_str()?;
            let (key, value) = obj.iter().find(|(k, _)| k.starts_with("value"))?;
            Some(ConceptProperty { code: code.into(), key: key.as_str().into(), value: value.clone() })
        })
        .collect();
    let prop = |code: &str| properties.iter().find(|p| &*p.code == code).map(|p| &p.value);
    let inactive = prop("status").and_then(Value::as_str) == Some("retired")
        || prop("status").and_then(Value::as_str) == Some("inactive")
        || prop("inactive").and_then(Value::as_bool) == Some(true);
    let not_selectable = prop("notSelectable").and_then(Value::as_bool) == Some(true);
    Concept {
        code: text("code").unwrap_or_default(),
        display: text("display"),
        definition: text("definition"),
        designations,
        properties,
        parents: Box::new([]),
        children: Box::new([]),
        inactive,
        not_selectable,
    }
}

pub(crate) fn designation_from(d: &Value) -> Option<Designation> {
    Some(Designation {
        language: d.get("language").and_then(Value::as_str).map(Box::from),
        use_: d.get("use").cloned(),
        value: d.get("value")?.as_str()?.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> CodeSystemIndex {
        CodeSystemIndex::from_resource(&json!({
            "resourceType": "CodeSystem", "url": "urn:test", "content": "complete", "caseSensitive": false,
            "concept": [
                {"code": "A", "display": "Alpha", "concept": [
                    {"code": "A1", "display": "Alpha one"},
                    {"code": "A2", "display": "Alpha two", "concept": [{"code": "A2x"}]}
                ]},
                {"code": "B", "property": [{"code": "parent", "valueCode": "A1"}, {"code": "status", "valueCode": "retired"}]},
                {"code": "G", "concept": [{"code": "A2x"}]}
            ]
        }))
    }

    #[test]
    fn hierarchy_from_nesting_and_properties() {
        let cs = sample();
        let a = cs.find("A").unwrap();
        let codes = |v: Vec<u32>| v.into_iter().map(|i| cs.concept(i).code.to_string()).collect::<Vec<_>>();
        assert_eq!(codes(cs.descendants(a)), ["A1", "A2", "B", "A2x"]);
        let a2x = cs.find("A2x").unwrap();
        assert_eq!(codes(cs.ancestors(a2x)), ["A2", "G", "A"]);
        assert!(cs.subsumes(a, cs.find("B").unwrap()));
        assert!(!cs.subsumes(cs.find("G").unwrap(), a));
        assert!(cs.concept(cs.find("B").unwrap()).inactive);
        assert_eq!(cs.find("a2X"), Some(a2x), "case-insensitive system");
    }

    #[test]
    fn languages() {
        assert!(language_matches("ja-JP", "ja"));
        assert!(language_matches("JA", "ja"));
        assert!(!language_matches("jam", "ja"));
        assert!(!language_matches("ja", "ja-JP"));
    }
}
