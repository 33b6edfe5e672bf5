//! Fixed and pattern values, and assigning repeated elements to slices by their
//! discriminators.

use serde_json::{Map, Value};

use crate::profile::{DiscriminatorKind, ElementRule, Profile};

/// `pattern[x]` semantics: every property of the pattern is present with a matching
/// value; each element of a pattern array matches some element of the instance array.
pub(crate) fn matches_pattern(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(p), Value::Object(a)) => {
            p.iter().all(|(k, pv)| a.get(k).is_some_and(|av| matches_pattern(pv, av)))
        }
        (Value::Array(p), Value::Array(a)) => p.iter().all(|pv| a.iter().any(|av| matches_pattern(pv, av))),
        (Value::Array(p), single) => p.iter().all(|pv| matches_pattern(pv, single)),
        // A pattern built from a profile with `max = 1` on a repeating element.
        (Value::Object(_), Value::Array(a)) => a.iter().any(|av| matches_pattern(pattern, av)),
        (p, a) => primitive_eq(p, a),
    }
}

/// `fixed[x]` semantics: exactly equal (numbers compared by their decimal text).
pub(crate) fn matches_fixed(fixed: &Value, actual: &Value) -> bool {
    match (fixed, actual) {
        (Value::Object(p), Value::Object(a)) => {
            p.len() == a.len() && p.iter().all(|(k, pv)| a.get(k).is_some_and(|av| matches_fixed(pv, av)))
        }
        (Value::Array(p), Value::Array(a)) => p.len() == a.len() && p.iter().zip(a).all(|(x, y)| matches_fixed(x, y)),
        (p, a) => primitive_eq(p, a),
    }
}

fn primitive_eq(p: &Value, a: &Value) -> bool {
    match (p, a) {
        (Value::Number(x), Value::Number(y)) => x.as_str() == y.as_str() || x == y,
        _ => p == a,
    }
}

/// Splits a discriminator path into steps, keeping `extension('http://…')` whole.
fn steps(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0, false, 0);
    for (i, c) in path.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '.' if !quoted && depth == 0 => {
                out.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&path[start..]);
    out
}

fn extension_url(step: &str) -> Option<&str> {
    step.strip_prefix("extension('")?.strip_suffix("')")
}

/// What a slice says the values at a discriminator path must be: `(values, is_fixed)`,
/// each value to be matched by some value at the path.
fn expected_value(profile: &Profile, slice: &ElementRule, path: &str) -> Option<(Vec<Value>, bool)> {
    let all = steps(path);
    let rest = if all.first() == Some(&"$this") { &all[1..] } else { &all[..] };
    expected_below(profile, slice, rest, 0)
}

/// [`expected_value`] from `rule` for the remaining `steps`. Where the element on the way
/// does not fix the value itself but is sliced (`component:SystolicBP.code.coding`, with
/// its code fixed in `coding:SBPCode`), the values its required slices fix are expected
/// together.
fn expected_below(profile: &Profile, rule: &ElementRule, all: &[&str], depth: usize) -> Option<(Vec<Value>, bool)> {
    if depth > 8 {
        return None;
    }
    let from_value = |value: &Value, fixed: bool| -> Option<(Vec<Value>, bool)> {
        // The remaining steps walk into the fixed or pattern value itself.
        let mut v: &Value = value;
        for step in all {
            v = match v {
                Value::Object(m) => m.get(*step)?,
                Value::Array(a) if a.len() == 1 => a[0].get(*step)?,
                _ => return None,
            };
        }
        Some((vec![v.clone()], fixed))
    };
    match (&rule.fixed, &rule.pattern) {
        (Some(f), _) => return from_value(f, true),
        (None, Some(p)) => return from_value(p, false),
        (None, None) => {}
    }
    let Some((step, rest)) = all.split_first() else {
        // No value on the element itself: its children's fixed values together act as a
        // pattern (`category:laboratory` fixes `coding.system` and `coding.code`).
        if let Some(v) = synthesize(profile, rule) {
            return Some((vec![v], false));
        }
        return from_required_slices(profile, rule, all, depth);
    };
    let next = if let Some(url) = extension_url(step) {
        let ext = child_named(profile, rule, "extension")?;
        ext.slices
            .iter()
            .map(|&s| &profile.elements[s])
            .find(|s| extension_profile(profile, s).is_some_and(|u| u == url))
    } else {
        child_named(profile, rule, step)
    };
    if let Some(found) = next.and_then(|n| expected_below(profile, n, rest, depth + 1)) {
        return Some(found);
    }
    from_required_slices(profile, rule, all, depth)
}

/// The values the required slices (`min` ≥ 1) of a sliced `rule` fix at `all`.
fn from_required_slices(
    profile: &Profile,
    rule: &ElementRule,
    all: &[&str],
    depth: usize,
) -> Option<(Vec<Value>, bool)> {
    let mut values = Vec::new();
    let mut fixed = true;
    for &s in &rule.slices {
        let slice = &profile.elements[s];
        if slice.min == 0 {
            continue;
        }
        if let Some((v, f)) = expected_below(profile, slice, all, depth + 1) {
            values.extend(v);
            fixed &= f;
        }
    }
    (!values.is_empty()).then_some((values, fixed))
}

/// A pattern made of the fixed and pattern values found below `rule`; `None` if none.
fn synthesize(profile: &Profile, rule: &ElementRule) -> Option<Value> {
    let mut out = Map::new();
    for &c in &rule.children {
        let child = &profile.elements[c];
        if child.name.ends_with("[x]") {
            continue;
        }
        let value = match (&child.fixed, &child.pattern) {
            (Some(v), _) | (None, Some(v)) => Some(v.clone()),
            (None, None) => synthesize(profile, child),
        };
        if let Some(v) = value {
            let v = if child.max == Some(1) { v } else { Value::Array(vec![v]) };
            out.insert(child.name.clone(), v);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn child_named<'p>(profile: &'p Profile, rule: &ElementRule, name: &str) -> Option<&'p ElementRule> {
    rule.children
        .iter()
        .map(|&c| &profile.elements[c])
        .find(|c| c.name == name || c.name.strip_suffix("[x]") == Some(name))
}

/// The URL an extension slice stands for: its fixed `url` child, else its type profile.
pub(crate) fn extension_profile<'p>(profile: &'p Profile, slice: &'p ElementRule) -> Option<&'p str> {
    if let Some(Value::String(u)) = child_named(profile, slice, "url").and_then(|u| u.fixed.as_ref()) {
        return Some(u);
    }
    slice
        .single_type()
        .filter(|t| t.code == "Extension")
        .and_then(|t| t.profiles.first())
        .map(|s| s.split('|').next().unwrap_or(s))
}

/// The JSON values reached from `node` by a discriminator path (plain element names and
/// `extension('url')`); `None` when the path uses something not supported here.
pub(crate) fn actual_values<'a>(node: &'a Value, path: &str) -> Option<Vec<&'a Value>> {
    let mut cur = vec![node];
    for step in steps(path) {
        if step == "$this" {
            continue;
        }
        let mut next = Vec::new();
        if let Some(url) = extension_url(step) {
            for v in &cur {
                for e in v.get("extension").and_then(Value::as_array).into_iter().flatten() {
                    if e.get("url").and_then(Value::as_str) == Some(url) {
                        next.push(e);
                    }
                }
            }
        } else {
            if step.contains('(') {
                return None;
            }
            for v in &cur {
                match v.get(step) {
                    Some(Value::Array(a)) => next.extend(a.iter()),
                    Some(x) => next.push(x),
                    None => {}
                }
            }
        }
        cur = next;
    }
    Some(cur)
}

/// Whether an instance of type `actual` is of the declared type `declared` (itself or a
/// specialization of it).
pub(crate) fn same_type(declared: &str, actual: &str) -> bool {
    declared == actual || tsunagu_model::r4().is_subtype(actual, declared)
}

/// The types of the elements at a `type` discriminator path: a resource's
/// `resourceType`, a choice element's type suffix (`valueQuantity`: `Quantity`); `None`
/// when some element's type cannot be told from the JSON.
fn actual_types(node: &Value, path: &str) -> Option<Vec<String>> {
    let all = steps(path);
    let (last, parents) = all.split_last()?;
    let parents = parents.join(".");
    let holders = if parents.is_empty() { vec![node] } else { actual_values(node, &parents)? };
    let model = tsunagu_model::r4();
    let mut out = Vec::new();
    for holder in holders {
        let Some(object) = holder.as_object() else { continue };
        if let Some(v) = object.get(*last) {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for item in items {
                out.push(item.get("resourceType")?.as_str()?.to_owned());
            }
            continue;
        }
        for key in object.keys() {
            let Some(suffix) = key.strip_prefix(*last) else { continue };
            if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
                continue;
            }
            if model.type_def(suffix).is_some() {
                out.push(suffix.to_owned());
            } else {
                let mut lower = suffix[..1].to_ascii_lowercase();
                lower.push_str(&suffix[1..]);
                out.push(lower);
            }
        }
    }
    Some(out)
}

/// Outcome of testing one instance element against one slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceMatch {
    Yes,
    No,
    /// A discriminator this module cannot evaluate (profile, resolve(), …).
    Undecidable,
}

/// Whether the instance value (`json`, of FHIR type `type_name`) belongs to `slice` under
/// the slicing of `base`.
/// Fills [`ElementRule::expected`] for every slice.
pub(crate) fn precompute_expected(profile: &mut Profile) {
    let mut found = Vec::new();
    for base in &profile.elements {
        let Some(slicing) = &base.slicing else { continue };
        for &s in &base.slices {
            let slice = &profile.elements[s];
            let values = slicing
                .discriminators
                .iter()
                .map(|(kind, path)| match kind {
                    DiscriminatorKind::Value | DiscriminatorKind::Pattern => expected_value(profile, slice, path),
                    _ => None,
                })
                .collect();
            found.push((s, values));
        }
    }
    for (s, values) in found {
        profile.elements[s].expected = values;
    }
}

/// `by_walk` decides `profile` discriminators and `type` discriminators through
/// `resolve()` (they need the validator and the resource's references).
pub(crate) fn slice_matches(
    profile: &Profile,
    base: &ElementRule,
    slice: &ElementRule,
    json: Option<&Value>,
    type_name: &str,
    by_walk: &mut dyn FnMut(DiscriminatorKind, &ElementRule, &str) -> SliceMatch,
) -> SliceMatch {
    let Some(slicing) = &base.slicing else {
        return SliceMatch::Undecidable;
    };
    if slicing.discriminators.is_empty() {
        return SliceMatch::Undecidable;
    }
    for (d, (kind, path)) in slicing.discriminators.iter().enumerate() {
        let ok = match kind {
            DiscriminatorKind::Value | DiscriminatorKind::Pattern => {
                let Some(json) = json else { return SliceMatch::No };
                let Some(actual) = actual_values(json, path) else {
                    return SliceMatch::Undecidable;
                };
                match slice.expected.get(d).and_then(Option::as_ref) {
                    Some((expected, true)) => expected.iter().all(|e| actual.iter().any(|a| matches_fixed(e, a))),
                    Some((expected, false)) => expected.iter().all(|e| actual.iter().any(|a| matches_pattern(e, a))),
                    // Extension slices often carry only a type profile, no expanded `url`.
                    None if path == "url" => match extension_profile(profile, slice) {
                        Some(url) => actual.iter().any(|a| a.as_str() == Some(url)),
                        None => return SliceMatch::Undecidable,
                    },
                    None => return SliceMatch::Undecidable,
                }
            }
            DiscriminatorKind::Exists => {
                let Some(target) = find_rule(profile, slice, path) else {
                    return SliceMatch::Undecidable;
                };
                let present = json.and_then(|j| actual_values(j, path)).is_some_and(|v| !v.is_empty());
                if target.max == Some(0) {
                    !present
                } else if target.min >= 1 {
                    present
                } else {
                    return SliceMatch::Undecidable;
                }
            }
            DiscriminatorKind::Type if path == "$this" => slice.types.iter().any(|t| same_type(&t.code, type_name)),
            DiscriminatorKind::Profile => match by_walk(*kind, slice, path) {
                SliceMatch::Yes => true,
                SliceMatch::No => false,
                SliceMatch::Undecidable => return SliceMatch::Undecidable,
            },
            DiscriminatorKind::Type if path.ends_with("resolve()") => match by_walk(*kind, slice, path) {
                SliceMatch::Yes => true,
                SliceMatch::No => false,
                SliceMatch::Undecidable => return SliceMatch::Undecidable,
            },
            DiscriminatorKind::Type => {
                let Some(json) = json else { return SliceMatch::No };
                let Some(target) = find_rule(profile, slice, path) else {
                    return SliceMatch::Undecidable;
                };
                if target.types.is_empty() {
                    return SliceMatch::Undecidable;
                }
                let Some(actual) = actual_types(json, path) else {
                    return SliceMatch::Undecidable;
                };
                actual.iter().any(|a| target.types.iter().any(|t| same_type(&t.code, a)))
            }
        };
        if !ok {
            return SliceMatch::No;
        }
    }
    SliceMatch::Yes
}

pub(crate) fn find_rule<'p>(profile: &'p Profile, slice: &'p ElementRule, path: &str) -> Option<&'p ElementRule> {
    let mut rule = slice;
    for step in steps(path) {
        if step == "$this" || step.is_empty() {
            continue;
        }
        rule = child_named(profile, rule, step)?;
    }
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pattern_is_a_subset() {
        let p = json!({"coding": [{"system": "s", "code": "c"}]});
        assert!(matches_pattern(
            &p,
            &json!({"coding": [{"system": "x"}, {"system": "s", "code": "c", "display": "d"}], "text": "t"})
        ));
        assert!(!matches_pattern(&p, &json!({"coding": [{"system": "s", "code": "d"}]})));
        assert!(!matches_fixed(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn steps_keep_extension_urls() {
        assert_eq!(steps("extension('http://a.b/c').value"), vec!["extension('http://a.b/c')", "value"]);
    }
}
