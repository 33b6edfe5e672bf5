//! Token modifiers answered by the terminology service (search.html#token): `:in` and
//! `:not-in` (a value set's codes), `:below` and `:above` (a code with its descendants or
//! ancestors in its code system). Each becomes a plain list of `(system, code)` pairs, so
//! the store needs no terminology of its own.

use crate::error::SearchError;
use crate::parse::{bad, split_bar};
use tsunagu_store::Test;
use tsunagu_terminology::Terminology;

/// The test for `name:modifier=v`; `:not-in` is the caller's negation of `:in`.
pub(crate) fn test(terminology: &Terminology, modifier: &str, name: &str, v: &str) -> Result<Test, SearchError> {
    match modifier {
        "in" | "not-in" => {
            let codes = terminology
                .expand_codes(v)
                .map_err(|e| bad(name, v, &e.to_string(), &format!("値セットを展開できません（{e}）")))?;
            Ok(Test::TokenIn(codes))
        }
        _ => {
            let (system, code) = split_bar(v);
            let Some(system) = system.filter(|s| !s.is_empty()) else {
                return Err(bad(
                    name,
                    v,
                    &format!(":{modifier} needs system|code"),
                    &format!(":{modifier} には system|code が必要です"),
                ));
            };
            if code.is_empty() {
                return Err(bad(
                    name,
                    v,
                    &format!(":{modifier} needs system|code"),
                    &format!(":{modifier} には system|code が必要です"),
                ));
            }
            // An unknown system or code has no hierarchy: the code matches itself only.
            let related = if modifier == "below" {
                terminology.descendants(&system, &code)
            } else {
                terminology.ancestors(&system, &code)
            };
            let mut pairs = vec![(system.clone(), code)];
            pairs.extend(related.into_iter().map(|c| (system.clone(), c)));
            Ok(Test::TokenIn(pairs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terminology() -> Terminology {
        let t = Terminology::default();
        t.add(json!({"resourceType": "CodeSystem", "url": "urn:cs", "status": "active", "content": "complete",
            "concept": [{"code": "a", "concept": [{"code": "a1", "concept": [{"code": "a11"}]}, {"code": "a2"}]}]}))
            .unwrap();
        t.add(json!({"resourceType": "ValueSet", "url": "urn:vs", "status": "active",
            "compose": {"include": [{"system": "urn:cs", "concept": [{"code": "a1"}, {"code": "a2"}]}]}}))
            .unwrap();
        t
    }

    fn codes(t: Test) -> Vec<String> {
        let Test::TokenIn(pairs) = t else { panic!("not a code list") };
        let mut c: Vec<String> = pairs.into_iter().map(|(s, c)| format!("{s}|{c}")).collect();
        c.sort();
        c
    }

    #[test]
    fn hierarchy_and_value_sets_become_code_lists() {
        let t = terminology();
        assert_eq!(codes(test(&t, "below", "code", "urn:cs|a1").unwrap()), ["urn:cs|a1", "urn:cs|a11"]);
        assert_eq!(codes(test(&t, "above", "code", "urn:cs|a11").unwrap()), ["urn:cs|a", "urn:cs|a1", "urn:cs|a11"]);
        assert_eq!(codes(test(&t, "in", "code", "urn:vs").unwrap()), ["urn:cs|a1", "urn:cs|a2"]);
        assert_eq!(codes(test(&t, "below", "code", "urn:other|x").unwrap()), ["urn:other|x"]);
        assert!(matches!(test(&t, "in", "code", "urn:nowhere"), Err(SearchError::BadValue { .. })));
        assert!(matches!(test(&t, "below", "code", "a1"), Err(SearchError::BadValue { .. })));
    }
}
