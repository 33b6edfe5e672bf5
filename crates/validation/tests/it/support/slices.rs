//! Slice mutations: a required slice removed, or a fixed value inside a slice changed. The
//! instance elements belonging to a slice are found from the slice's own fixed and pattern
//! values at its `value`/`pattern` discriminator paths; slicings with other discriminators
//! (profile, type, exists) are left alone.

use serde_json::Value;

use crate::support::mutate::{Kind, Mutation};

struct Slice<'a> {
    id: &'a str,
    min: u64,
    /// (discriminator path, expected value) for every discriminator.
    expected: Vec<(&'a str, Value)>,
}

fn by_id(sd: &Value) -> Vec<&Value> {
    sd.pointer("/snapshot/element").and_then(Value::as_array).into_iter().flatten().collect()
}

fn id_of(e: &Value) -> &str {
    e.get("id").and_then(Value::as_str).unwrap_or("")
}

/// `fixed[x]` or `pattern[x]` of an element, with whether it is fixed.
fn constraint_value(e: &Value) -> Option<(Value, bool)> {
    e.as_object()?.iter().find_map(|(k, v)| {
        let fixed = k.starts_with("fixed");
        let rest = k.strip_prefix("fixed").or_else(|| k.strip_prefix("pattern"))?;
        rest.starts_with(|c: char| c.is_ascii_uppercase()).then(|| (v.clone(), fixed))
    })
}

fn expected_at(els: &[&Value], slice: &Value, path: &str) -> Option<Value> {
    let sid = id_of(slice);
    if path == "$this" {
        return constraint_value(slice).map(|(v, _)| v);
    }
    let target = format!("{sid}.{path}");
    if let Some(v) = els.iter().find(|e| id_of(e) == target).and_then(|e| constraint_value(e)) {
        return Some(v.0);
    }
    // Extension slices often name their definition only by type profile.
    if path == "url" {
        let profile = slice.pointer("/type/0/profile/0")?.as_str()?;
        return Some(Value::String(profile.split('|').next()?.to_owned()));
    }
    None
}

fn values_at<'v>(item: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut cur = vec![item];
    for step in path.split('.').filter(|s| *s != "$this") {
        let mut next = Vec::new();
        for v in cur {
            match v.get(step) {
                Some(Value::Array(a)) => next.extend(a),
                Some(x) => next.push(x),
                None => {}
            }
        }
        cur = next;
    }
    cur
}

fn pattern_matches(p: &Value, a: &Value) -> bool {
    match (p, a) {
        (Value::Object(p), Value::Object(a)) => {
            p.iter().all(|(k, pv)| a.get(k).is_some_and(|av| pattern_matches(pv, av)))
        }
        (Value::Array(p), Value::Array(a)) => p.iter().all(|pv| a.iter().any(|av| pattern_matches(pv, av))),
        (p, a) => p == a,
    }
}

fn matches(item: &Value, slice: &Slice) -> bool {
    slice.expected.iter().all(|(path, want)| values_at(item, path).iter().any(|v| pattern_matches(want, v)))
}

pub fn broken_slices(resource: &Value, sd: &Value, out: &mut Vec<Mutation>) {
    let els = by_id(sd);
    for base in &els {
        let Some(slicing) = base.get("slicing") else { continue };
        let closed = slicing.get("rules").and_then(Value::as_str) == Some("closed");
        let discriminators: Vec<(&str, &str)> = slicing
            .get("discriminator")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d.get("type")?.as_str()?, d.get("path")?.as_str()?)))
            .collect();
        if discriminators.is_empty() || discriminators.iter().any(|(t, _)| *t != "value" && *t != "pattern") {
            continue;
        }
        let base_id = id_of(base);
        // Only slicings on plain paths (not inside another slice or a choice).
        if base_id.contains(':') || base_id.contains("[x]") {
            continue;
        }
        let segments: Vec<&str> = base_id.split('.').skip(1).collect();
        let mut arrays = Vec::new();
        locate_arrays(resource, &segments, "", &mut arrays);
        for slice_el in els.iter().filter(|e| {
            e.get("sliceName").is_some()
                && id_of(e)
                    .strip_prefix(base_id)
                    .and_then(|r| r.strip_prefix(':'))
                    .is_some_and(|n| !n.contains(['.', ':', '/']))
        }) {
            let expected: Option<Vec<(&str, Value)>> =
                discriminators.iter().map(|(_, p)| expected_at(&els, slice_el, p).map(|v| (*p, v))).collect();
            let Some(expected) = expected else { continue };
            let slice =
                Slice { id: id_of(slice_el), min: slice_el.get("min").and_then(Value::as_u64).unwrap_or(0), expected };
            for array in &arrays {
                let items = resource.pointer(array).and_then(Value::as_array).unwrap();
                let members: Vec<usize> = (0..items.len()).filter(|&i| matches(&items[i], &slice)).collect();
                if members.is_empty() {
                    continue;
                }
                if slice.min >= 1 {
                    let mut r = resource.clone();
                    let a = r.pointer_mut(array).and_then(Value::as_array_mut).unwrap();
                    for &i in members.iter().rev() {
                        a.remove(i);
                    }
                    out.push(Mutation {
                        kind: Kind::RequiredSliceRemoved,
                        what: format!("removed slice {} at {array}", slice.id),
                        resource: r,
                    });
                }
                if let Some(m) = changed_fixed_value(resource, &els, &slice, array, members[0], members.len(), closed) {
                    out.push(m);
                }
                break;
            }
        }
    }
}

/// Changes one fixed or pattern string inside a slice member, when the specification makes
/// that an error: the value is not a discriminator (the member stays in the slice and
/// breaks the fixed value), or the member leaving the slice makes it too short or lands in
/// a closed slicing.
fn changed_fixed_value(
    resource: &Value,
    els: &[&Value],
    slice: &Slice,
    array: &str,
    member: usize,
    members: usize,
    closed: bool,
) -> Option<Mutation> {
    let prefix = format!("{}.", slice.id);
    for e in els {
        let Some(rel) = id_of(e).strip_prefix(&prefix) else { continue };
        if rel.contains([':', '[']) {
            continue;
        }
        let Some((Value::String(_), _)) = constraint_value(e) else { continue };
        let is_discriminator = slice.expected.iter().any(|(p, _)| *p == rel);
        if is_discriminator && !closed && (members as u64) > slice.min {
            continue;
        }
        let item_pointer = format!("{array}/{member}");
        let mut hits = Vec::new();
        crate::support::mutate::locate_pub(
            resource.pointer(&item_pointer)?,
            &rel.split('.').collect::<Vec<_>>(),
            &item_pointer,
            &mut hits,
        );
        let (pointer, _) = hits.into_iter().find(|(p, _)| resource.pointer(p).is_some_and(Value::is_string))?;
        let mut r = resource.clone();
        let old = r.pointer(&pointer)?.as_str()?.to_owned();
        *r.pointer_mut(&pointer)? = Value::String(format!("{old}-changed"));
        return Some(Mutation {
            kind: Kind::SliceValueChanged,
            what: format!("changed {}{rel} at {pointer}", prefix),
            resource: r,
        });
    }
    None
}

/// Pointers of the arrays at a path (the repeating element being sliced).
fn locate_arrays(v: &Value, segments: &[&str], at: &str, out: &mut Vec<String>) {
    let mut hits = Vec::new();
    crate::support::mutate::locate_pub(v, segments, at, &mut hits);
    out.extend(hits.into_iter().filter(|(p, _)| v.pointer(p).is_some_and(Value::is_array)).map(|(p, _)| p));
}
