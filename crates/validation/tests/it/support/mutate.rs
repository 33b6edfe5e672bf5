//! A mutation generator for validator tests: from a valid resource and the snapshot of the
//! profile it is checked against, single defects that the specification makes errors.
//! Every decision (what is required, what repeats, which binding is enumerable, which slice
//! is required and what identifies it) is read from the snapshot and the loaded packages,
//! never from a list of paths.

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, PackageSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    RequiredRemoved,
    CardinalityBroken,
    WrongRequiredCode,
    BadPrimitive,
    RequiredSliceRemoved,
    SliceValueChanged,
}

pub struct Mutation {
    pub kind: Kind,
    /// What was done, for failure reports.
    pub what: String,
    pub resource: Value,
}

/// One snapshot element, as far as the generator needs it.
struct Element<'a> {
    id: &'a str,
    /// Path segments after the resource type (`["code", "coding"]`).
    segments: Vec<&'a str>,
    min: u64,
    max: Option<u64>,
    types: Vec<&'a str>,
    raw: &'a Value,
}

fn elements(sd: &Value) -> Vec<Element<'_>> {
    let list = sd.pointer("/snapshot/element").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    list.iter()
        .filter_map(|e| {
            let id = e.get("id")?.as_str()?;
            let path = e.get("path")?.as_str()?;
            Some(Element {
                id,
                segments: path.split('.').skip(1).collect(),
                min: e.get("min").and_then(Value::as_u64).unwrap_or(0),
                max: match e.get("max").and_then(Value::as_str) {
                    Some("*") | None => None,
                    Some(m) => m.parse().ok(),
                },
                types: e
                    .get("type")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.get("code")?.as_str())
                    .collect(),
                raw: e,
            })
        })
        .collect()
}

/// JSON pointers of every value reached by `segments` from `v` (arrays expanded; a `[x]`
/// segment matches any of its typed names). Returns `(pointer, key)` of each hit.
pub fn locate_pub(v: &Value, segments: &[&str], at: &str, out: &mut Vec<(String, String)>) {
    let Some((first, rest)) = segments.split_first() else { return };
    let Value::Object(map) = v else { return };
    for (key, child) in map {
        let hit = match first.strip_suffix("[x]") {
            Some(stem) => key.strip_prefix(stem).is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase())),
            None => key == first,
        };
        if !hit {
            continue;
        }
        let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
        let items: Vec<(String, &Value)> = match child {
            Value::Array(a) => a.iter().enumerate().map(|(i, x)| (format!("{here}/{i}"), x)).collect(),
            x => vec![(here.clone(), x)],
        };
        if rest.is_empty() {
            out.push((here, key.clone()));
            continue;
        }
        for (p, x) in items {
            locate_pub(x, rest, &p, out);
        }
    }
}

/// The objects that hold an element (its parents), as pointers.
fn parents(v: &Value, segments: &[&str]) -> Vec<String> {
    if segments.len() == 1 {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    locate_pub(v, &segments[..segments.len() - 1], "", &mut out);
    let mut expanded = Vec::new();
    for (p, _) in out {
        match v.pointer(&p) {
            Some(Value::Array(a)) => expanded.extend((0..a.len()).map(|i| format!("{p}/{i}"))),
            Some(Value::Object(_)) => expanded.push(p),
            _ => {}
        }
    }
    expanded
}

fn is_slice_or_inside(e: &Element) -> bool {
    e.id.contains(':')
}

/// All mutations of `resource` against the profile `sd`.
pub fn mutations(resource: &Value, sd: &Value, packages: &PackageSet) -> Vec<Mutation> {
    let els = elements(sd);
    let mut out = Vec::new();
    required_removed(resource, &els, &mut out);
    cardinality(resource, &els, &mut out);
    wrong_codes(resource, &els, packages, &mut out);
    bad_primitives(resource, &els, &mut out);
    crate::support::slices::broken_slices(resource, sd, &mut out);
    out
}

fn with(resource: &Value, change: impl FnOnce(&mut Value) -> bool) -> Option<Value> {
    let mut r = resource.clone();
    change(&mut r).then_some(r)
}

/// min ≥ 1, no default or meaning-when-missing: removing it from a parent that has it.
fn required_removed(resource: &Value, els: &[Element], out: &mut Vec<Mutation>) {
    for e in els.iter().filter(|e| e.min >= 1 && !e.segments.is_empty() && !is_slice_or_inside(e)) {
        let has_default = e
            .raw
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with("defaultValue")) || m.contains_key("meaningWhenMissing"));
        if has_default || e.segments.first() == Some(&"resourceType") {
            continue;
        }
        let name = *e.segments.last().unwrap();
        for parent in parents(resource, &e.segments) {
            let Some(obj) = resource.pointer(&parent).and_then(Value::as_object) else { continue };
            let keys: Vec<&String> = obj.keys().filter(|k| element_key_matches(name, k)).collect();
            if keys.is_empty() {
                continue;
            }
            let keys: Vec<String> = keys.into_iter().cloned().collect();
            let m = with(resource, |r| {
                let obj = r.pointer_mut(&parent).and_then(Value::as_object_mut).unwrap();
                for k in &keys {
                    obj.remove(k);
                    // The primitive's extensions would keep the element present.
                    obj.remove(&format!("_{k}"));
                }
                true
            });
            if let Some(resource) = m {
                out.push(Mutation {
                    kind: Kind::RequiredRemoved,
                    what: format!("removed {} at {parent}", e.id),
                    resource,
                });
            }
            break;
        }
    }
}

fn element_key_matches(name: &str, key: &str) -> bool {
    match name.strip_suffix("[x]") {
        Some(stem) => key.strip_prefix(stem).is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase())),
        None => key == name,
    }
}

/// A max-1 element given twice, or a bounded repeating element one past its maximum.
fn cardinality(resource: &Value, els: &[Element], out: &mut Vec<Mutation>) {
    let mut done_single = false;
    let mut done_bounded = false;
    for e in els.iter().filter(|e| !e.segments.is_empty() && !is_slice_or_inside(e)) {
        let Some(max) = e.max.filter(|m| *m >= 1) else { continue };
        let mut hits = Vec::new();
        locate_pub(resource, &e.segments, "", &mut hits);
        let Some((pointer, _)) = hits.first() else { continue };
        let value = resource.pointer(pointer).unwrap().clone();
        let (kind_done, new) = match &value {
            Value::Array(a) if !done_bounded && !a.is_empty() => {
                let mut a = a.clone();
                while a.len() as u64 <= max {
                    a.push(a[0].clone());
                }
                (&mut done_bounded, Value::Array(a))
            }
            Value::Array(_) => continue,
            single if max == 1 && !done_single => (&mut done_single, json!([single.clone(), single.clone()])),
            _ => continue,
        };
        *kind_done = true;
        let resource = with(resource, |r| {
            *r.pointer_mut(pointer).unwrap() = new;
            true
        })
        .unwrap();
        out.push(Mutation { kind: Kind::CardinalityBroken, what: format!("{} past max {max}", e.id), resource });
        if done_single && done_bounded {
            return;
        }
    }
}

/// A required binding whose value set the loaded packages enumerate completely: a code
/// outside it.
fn wrong_codes(resource: &Value, els: &[Element], packages: &PackageSet, out: &mut Vec<Mutation>) {
    for e in els.iter().filter(|e| !e.segments.is_empty() && !is_slice_or_inside(e)) {
        let Some(b) = e.raw.get("binding") else { continue };
        if b.get("strength").and_then(Value::as_str) != Some("required") {
            continue;
        }
        let Some(vs) = b.get("valueSet").and_then(Value::as_str) else { continue };
        let Some(system) = enumerable_system(packages, vs) else { continue };
        let mut hits = Vec::new();
        locate_pub(resource, &e.segments, "", &mut hits);
        let Some((pointer, _)) = hits.first() else { continue };
        let target = resource.pointer(pointer).unwrap();
        let first = match target {
            Value::Array(a) => a.first(),
            x => Some(x),
        };
        let bad = "zz-not-a-code";
        let new = match (e.types.as_slice(), first) {
            (["code"], Some(Value::String(_))) => Value::String(bad.into()),
            (["Coding"], Some(Value::Object(_))) => json!({"system": system, "code": bad}),
            (["CodeableConcept"], Some(Value::Object(_))) => json!({"coding": [{"system": system, "code": bad}]}),
            _ => continue,
        };
        let new = if target.is_array() { json!([new]) } else { new };
        let resource = with(resource, |r| {
            *r.pointer_mut(pointer).unwrap() = new;
            true
        })
        .unwrap();
        out.push(Mutation { kind: Kind::WrongRequiredCode, what: format!("{} = {bad} ({vs})", e.id), resource });
    }
}

/// A system of the value set, when every include enumerates its codes (listed concepts,
/// or a whole CodeSystem loaded with complete content): membership is then decidable.
fn enumerable_system(packages: &PackageSet, vs: &str) -> Option<String> {
    let canonical = vs.split('|').next().unwrap_or(vs);
    let set = packages.resolve(ConformanceKind::ValueSet, canonical)?;
    let includes = set.pointer("/compose/include")?.as_array()?;
    let mut first = None;
    for inc in includes {
        if inc.get("valueSet").is_some() || inc.get("filter").is_some() {
            return None;
        }
        let system = inc.get("system")?.as_str()?;
        if inc.get("concept").is_none() {
            let cs = packages.resolve(ConformanceKind::CodeSystem, system)?;
            if cs.get("content").and_then(Value::as_str) != Some("complete") {
                return None;
            }
        }
        first.get_or_insert_with(|| system.to_owned());
    }
    first
}

/// One malformed value per primitive type present: (type, bad JSON value).
const BAD_PRIMITIVES: &[(&str, &str)] = &[
    ("date", "\"2020-13-01\""),
    ("dateTime", "\"2020-01-01T25:00:00+09:00\""),
    ("instant", "\"2020-01-01\""),
    ("id", "\"no spaces allowed\""),
    ("uri", "\"has white space\""),
    ("code", "\" padded code \""),
    ("integer", "2147483648"),
    ("positiveInt", "0"),
    ("boolean", "\"true\""),
    ("decimal", "\"1.5\""),
];

fn bad_primitives(resource: &Value, els: &[Element], out: &mut Vec<Mutation>) {
    for (ty, bad) in BAD_PRIMITIVES {
        let candidate = els.iter().filter(|e| !e.segments.is_empty() && !is_slice_or_inside(e)).find_map(|e| {
            if e.types.as_slice() != [*ty] && !(e.types.contains(ty) && e.segments.last()?.ends_with("[x]")) {
                return None;
            }
            let mut hits = Vec::new();
            locate_pub(resource, &e.segments, "", &mut hits);
            hits.into_iter().find_map(|(p, key)| {
                // For a choice, only the branch of this type.
                if e.segments.last()?.ends_with("[x]") && !key.to_lowercase().ends_with(&ty.to_lowercase()) {
                    return None;
                }
                match resource.pointer(&p)? {
                    Value::Array(a) if !a.is_empty() && !a[0].is_object() => Some((e.id, format!("{p}/0"))),
                    Value::Array(_) | Value::Object(_) => None,
                    _ => Some((e.id, p)),
                }
            })
        });
        let Some((id, pointer)) = candidate else { continue };
        let bad: Value = serde_json::from_str(bad).unwrap();
        let resource = with(resource, |r| {
            *r.pointer_mut(&pointer).unwrap() = bad.clone();
            true
        })
        .unwrap();
        out.push(Mutation { kind: Kind::BadPrimitive, what: format!("{ty} {id} = {bad}"), resource });
    }
}
