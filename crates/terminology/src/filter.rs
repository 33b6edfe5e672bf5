//! `compose.include.filter` evaluated over one indexed code system. Each filter yields
//! the matching concept indices; the filters of one include are intersected.

use rustc_hash::FxHashSet;

use crate::code_system::CodeSystemIndex;
use crate::error::{Result, TerminologyError};

/// Concepts of `cs` that pass every `(property, op, value)` filter, in arena order.
/// `max_regex_bytes` bounds the compiled size of a `regex` filter.
pub(crate) fn apply(cs: &CodeSystemIndex, filters: &[(&str, &str, &str)], max_regex_bytes: usize) -> Result<Vec<u32>> {
    let mut selected: Option<FxHashSet<u32>> = None;
    for &(property, op, value) in filters {
        let hits = one(cs, property, op, value, max_regex_bytes)?;
        selected = Some(match selected {
            None => hits,
            Some(prev) => prev.intersection(&hits).copied().collect(),
        });
    }
    let mut out: Vec<u32> = selected.unwrap_or_default().into_iter().collect();
    out.sort_unstable();
    Ok(out)
}

fn one(cs: &CodeSystemIndex, property: &str, op: &str, value: &str, max_regex_bytes: usize) -> Result<FxHashSet<u32>> {
    let all = || 0..cs.concepts.len() as u32;
    let hierarchical = matches!(property, "concept" | "code");
    let below = |with_self: bool| -> FxHashSet<u32> {
        match cs.find(value) {
            Some(i) => {
                let mut set: FxHashSet<u32> = cs.descendants(i).into_iter().collect();
                if with_self {
                    set.insert(i);
                }
                set
            }
            None => FxHashSet::default(),
        }
    };
    Ok(match op {
        "is-a" if hierarchical => below(true),
        "descendent-of" if hierarchical => below(false),
        "is-not-a" if hierarchical => {
            let excluded = below(true);
            all().filter(|i| !excluded.contains(i)).collect()
        }
        "generalizes" if hierarchical => match cs.find(value) {
            Some(i) => cs.ancestors(i).into_iter().chain([i]).collect(),
            None => FxHashSet::default(),
        },
        "=" => all().filter(|&i| values_of(cs, i, property).iter().any(|v| v == value)).collect(),
        "in" | "not-in" => {
            let wanted: FxHashSet<&str> = value.split(',').map(str::trim).collect();
            let inside = |i: u32| values_of(cs, i, property).iter().any(|v| wanted.contains(v.as_str()));
            all().filter(|&i| inside(i) == (op == "in")).collect()
        }
        "regex" => {
            // Any client can store a value set, so its pattern is hostile input.
            let re = regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(max_regex_bytes)
                .dfa_size_limit(256 * 1024)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => TerminologyError::Limit(
                        tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::RegexBytes, max_regex_bytes)
                            .at("ValueSet.compose.include.filter"),
                    ),
                    e => TerminologyError::Invalid(format!("filter regex '{value}' is not valid: {e}")),
                })?;
            all().filter(|&i| values_of(cs, i, property).iter().any(|v| re.is_match(v))).collect()
        }
        "exists" => {
            let want = match value {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(TerminologyError::Invalid(format!("filter exists needs true or false, not '{value}'")))
                }
            };
            all().filter(|&i| values_of(cs, i, property).is_empty() != want).collect()
        }
        _ => {
            return Err(TerminologyError::Invalid(format!(
                "filter '{property} {op} {value}' is not supported on code system {}",
                cs.url
            )))
        }
    })
}

/// The values of `property` on concept `i` as text. `code`/`concept` and `display` name
/// the concept itself; `parent` and `child` fall back to the indexed hierarchy when the
/// concept carries no such property.
fn values_of(cs: &CodeSystemIndex, i: u32, property: &str) -> Vec<String> {
    let c = cs.concept(i);
    match property {
        "code" | "concept" => return vec![c.code.to_string()],
        "display" => return c.display.iter().map(|d| d.to_string()).collect(),
        _ => {}
    }
    let explicit: Vec<String> = c.properties.iter().filter(|p| &*p.code == property).filter_map(|p| p.text()).collect();
    if !explicit.is_empty() {
        return explicit;
    }
    let linked = match property {
        "parent" => &c.parents,
        "child" => &c.children,
        _ => return explicit,
    };
    linked.iter().map(|&j| cs.concept(j).code.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cs() -> CodeSystemIndex {
        CodeSystemIndex::from_resource(&json!({
            "url": "urn:t", "content": "complete",
            "concept": [
                {"code": "root", "concept": [
                    {"code": "x1", "property": [{"code": "kind", "valueString": "lab"}]},
                    {"code": "x2", "property": [{"code": "kind", "valueString": "vital"}]}
                ]},
                {"code": "other"}
            ]
        }))
    }

    fn codes(cs: &CodeSystemIndex, f: &[(&str, &str, &str)]) -> Vec<String> {
        apply(cs, f, 1 << 20).unwrap().into_iter().map(|i| cs.concept(i).code.to_string()).collect()
    }

    #[test]
    fn operators() {
        let cs = cs();
        assert_eq!(codes(&cs, &[("concept", "is-a", "root")]), ["root", "x1", "x2"]);
        assert_eq!(codes(&cs, &[("concept", "descendent-of", "root")]), ["x1", "x2"]);
        assert_eq!(codes(&cs, &[("concept", "is-not-a", "root")]), ["other"]);
        assert_eq!(codes(&cs, &[("kind", "=", "lab")]), ["x1"]);
        assert_eq!(codes(&cs, &[("kind", "in", "lab, vital")]), ["x1", "x2"]);
        assert_eq!(codes(&cs, &[("code", "regex", "x[0-9]")]), ["x1", "x2"]);
        assert_eq!(codes(&cs, &[("kind", "exists", "false")]), ["root", "other"]);
        assert_eq!(codes(&cs, &[("parent", "=", "root")]), ["x1", "x2"]);
        assert_eq!(codes(&cs, &[("concept", "is-a", "root"), ("kind", "exists", "true")]), ["x1", "x2"]);
        assert!(apply(&cs, &[("kind", "regex", "(")], 1 << 20).is_err());
        assert!(apply(&cs, &[("kind", "frobs", "x")], 1 << 20).is_err());
        let huge = "(a{1,100}){1,100}";
        assert!(matches!(apply(&cs, &[("kind", "regex", huge)], 10_000), Err(TerminologyError::Limit(_))));
    }
}
