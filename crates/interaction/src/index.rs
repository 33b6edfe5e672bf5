//! Extraction of token index values from a resource, for the token search parameters
//! whose expression is a plain path (`Patient.identifier`, `Observation.code`,
//! `Patient.gender`), which is most of them.
//!
//! Paths are walked with the model (choice types included) rather than with FHIRPath, so
//! that indexing is cheap and does not wait for the FHIRPath engine. Parameters with
//! functions in their expression are not indexed yet and the CapabilityStatement leaves
//! them out; the search engine will extract everything through FHIRPath.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;
use tsunagu_model::{Model, SearchParamType};
use tsunagu_store::TokenValue;

/// A token parameter as paths from the resource root: each path is a list of element names.
#[derive(Debug)]
pub(crate) struct TokenPaths {
    pub code: &'static str,
    pub paths: Vec<Vec<&'static str>>,
}

/// Token parameters indexable by plain paths, per resource type.
pub(crate) fn token_params(ty: &str) -> &'static [TokenPaths] {
    static TABLE: OnceLock<HashMap<&'static str, Vec<TokenPaths>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let model = tsunagu_model::r4();
        let mut t: HashMap<&'static str, Vec<TokenPaths>> = HashMap::new();
        for &rt in model.resource_types() {
            let list = model
                .search_params(rt)
                .filter(|p| p.kind == SearchParamType::Token && !p.code.starts_with('_'))
                .filter_map(|p| {
                    plain_paths(rt, p.expression).map(|paths| TokenPaths {
                        code: p.code,
                        paths,
                    })
                })
                .collect();
            t.insert(rt, list);
        }
        t
    });
    table.get(ty).map(Vec::as_slice).unwrap_or(&[])
}

/// `Patient.identifier | Patient.other.x` → paths below the root; `None` if any term is
/// not a plain path of this resource type.
fn plain_paths(ty: &str, expr: &'static str) -> Option<Vec<Vec<&'static str>>> {
    let mut out = Vec::new();
    for term in expr.split('|').map(str::trim) {
        let rest = term.strip_prefix(ty)?.strip_prefix('.')?;
        if !rest
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return None;
        }
        out.push(rest.split('.').collect());
    }
    Some(out)
}

/// Whether `code` on `ty` is indexed (for the CapabilityStatement and the query builder).
pub fn is_indexed_token(ty: &str, code: &str) -> bool {
    token_params(ty).iter().any(|p| p.code == code)
}

/// Codes of the token parameters indexed for `ty`.
pub fn indexed_tokens(ty: &str) -> impl Iterator<Item = &'static str> {
    token_params(ty).iter().map(|p| p.code)
}

/// Every token value of a resource.
pub(crate) fn tokens(model: &Model, ty: &str, resource: &Value) -> Vec<TokenValue> {
    let mut out = Vec::new();
    for p in token_params(ty) {
        for path in &p.paths {
            walk(model, ty, resource, path, &mut |type_code, v| {
                token_values(p.code, type_code, v, &mut out)
            });
        }
    }
    out.sort_by(|a, b| (&a.param, &a.system, &a.code).cmp(&(&b.param, &b.system, &b.code)));
    out.dedup();
    out
}

/// Calls `f(type, value)` for each node at `path` below `node` (whose definition is
/// `parent`), resolving choice elements by their JSON names.
fn walk(model: &Model, parent: &str, node: &Value, path: &[&str], f: &mut dyn FnMut(&str, &Value)) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(map) = node else { return };
    let mut visit = |key: &str, child: &Value| {
        let Some((e, t)) = model.child(parent, key) else {
            return;
        };
        let next_parent = model.child_parent(e, t);
        let items: Vec<&Value> = match child {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for item in items {
            if rest.is_empty() {
                f(t.code, item);
            } else {
                walk(model, next_parent, item, rest, f);
            }
        }
    };
    if let Some(child) = map.get(*first) {
        visit(first, child);
        return;
    }
    // A choice element: `value` is present as `valueCodeableConcept`, `valueBoolean`, ….
    for (key, child) in map {
        if key.len() > first.len()
            && key.starts_with(first)
            && key.as_bytes()[first.len()].is_ascii_uppercase()
        {
            visit(key, child);
        }
    }
}

fn token_values(param: &str, type_code: &str, v: &Value, out: &mut Vec<TokenValue>) {
    let mut push = |system: Option<&str>, code: Option<&str>| {
        if let Some(code) = code.filter(|c| !c.is_empty()) {
            out.push(TokenValue {
                param: param.to_string(),
                system: system.filter(|s| !s.is_empty()).map(str::to_string),
                code: code.to_string(),
            });
        }
    };
    let s = |key: &str| v.get(key).and_then(Value::as_str);
    match type_code {
        "Identifier" => push(s("system"), s("value")),
        "Coding" => push(s("system"), s("code")),
        "CodeableConcept" => {
            for c in v
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let cs = |key: &str| c.get(key).and_then(Value::as_str);
                push(cs("system"), cs("code"));
            }
        }
        "ContactPoint" => push(s("system"), s("value")),
        "boolean" => push(None, v.as_bool().map(|b| if b { "true" } else { "false" })),
        _ => push(None, v.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_identifiers_codes_and_choices() {
        let m = tsunagu_model::r4();
        let p = json!({"resourceType": "Patient", "identifier": [{"system": "urn:s", "value": "1"}, {"value": "2"}],
                       "gender": "female", "active": true});
        let t = tokens(m, "Patient", &p);
        let has = |param: &str, sys: Option<&str>, code: &str| {
            t.iter()
                .any(|v| v.param == param && v.system.as_deref() == sys && v.code == code)
        };
        assert!(has("identifier", Some("urn:s"), "1"));
        assert!(has("identifier", None, "2"));
        assert!(has("gender", None, "female"));
        assert!(has("active", None, "true"));
        let o = json!({"resourceType": "Observation", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
                       "valueCodeableConcept": {"coding": [{"system": "urn:v", "code": "pos"}]}});
        let t = tokens(m, "Observation", &o);
        assert!(t.iter().any(|v| v.param == "code" && v.code == "1234-5"));
        assert!(t.iter().any(|v| v.param == "status" && v.code == "final"));
        assert!(is_indexed_token("Patient", "identifier"));
    }
}
