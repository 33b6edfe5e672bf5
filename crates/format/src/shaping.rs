//! Output shaping for `_summary` and `_elements` (search.html, "Summary" and "Elements"):
//! trims a resource for display and marks it `SUBSETTED` so nobody mistakes it for the
//! whole resource (e.g. updates it with the missing parts deleted).

use serde_json::{json, Map, Value};
use tsunagu_model::Model;

use crate::names;

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// `_summary` values that shape a resource; `count` is the server's business (no entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// Elements marked summary in the base definition, plus mandatory ones.
    True,
    /// `text`, `id`, `meta` and top-level mandatory elements.
    Text,
    /// Everything but `text`.
    Data,
    /// The whole resource, untouched.
    False,
}

impl SummaryMode {
    /// Parses a `_summary` value other than `count`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "true" => Self::True,
            "text" => Self::Text,
            "data" => Self::Data,
            "false" => Self::False,
            _ => return None,
        })
    }
}

/// Applies `_summary` to a resource. Anything not a resource of a known type is returned
/// unchanged.
pub fn summary(resource: &Value, mode: SummaryMode) -> Value {
    let model = tsunagu_model::r4();
    let Some((obj, rt)) = as_resource(model, resource) else {
        return resource.clone();
    };
    let out = match mode {
        SummaryMode::False => return resource.clone(),
        SummaryMode::True => summary_object(model, obj, rt, true),
        SummaryMode::Text => filter_top(model, obj, rt, |k| matches!(k, "text" | "id" | "meta")),
        SummaryMode::Data => filter_top(model, obj, rt, |k| k != "text"),
    };
    Value::Object(mark_subsetted(out))
}

/// Applies `_elements`: the listed top-level elements (by element name, so `value` keeps
/// `valueQuantity`) plus `id`, `meta` and mandatory elements.
pub fn elements(resource: &Value, names: &[&str]) -> Value {
    let model = tsunagu_model::r4();
    let Some((obj, rt)) = as_resource(model, resource) else {
        return resource.clone();
    };
    let out = filter_top(model, obj, rt, |k| k == "id" || k == "meta" || names.contains(&k));
    Value::Object(mark_subsetted(out))
}

fn as_resource<'v>(model: &Model, v: &'v Value) -> Option<(&'v Map<String, Value>, &'v str)> {
    let obj = v.as_object()?;
    let rt = obj.get("resourceType")?.as_str()?;
    model.is_resource_type(rt).then_some((obj, rt))
}

/// Keeps top-level properties whose element name passes `keep`, and mandatory ones.
fn filter_top(model: &Model, obj: &Map<String, Value>, rt: &str, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if k == "resourceType" {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let base = k.strip_prefix('_').unwrap_or(k);
        let def = names::child(model, rt, base).map(|(d, _)| d);
        if keep(def.map_or(base, |d| d.name)) || def.is_some_and(|d| d.min > 0) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `_summary=true`: summary and mandatory elements, recursing into backbone elements (which
/// carry their own summary flags) and resources; data types are kept whole, as their
/// content is what the summary element means.
fn summary_object(model: &Model, obj: &Map<String, Value>, parent: &str, is_resource: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if is_resource && k == "resourceType" {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let base = k.strip_prefix('_').unwrap_or(k);
        let Some((def, ty)) = names::child(model, parent, base) else {
            continue;
        };
        let always = is_resource && matches!(def.name, "id" | "meta");
        if !(def.summary || def.min > 0 || always) {
            continue;
        }
        let shaped = if let Some(bb) = def.backbone_path() {
            map_items(v, |o| Value::Object(summary_object(model, o, bb, false)))
        } else if ty.code == "Resource" {
            map_items(v, |o| match o.get("resourceType").and_then(Value::as_str) {
                Some(rt) if model.is_resource_type(rt) => Value::Object(summary_object(model, o, rt, true)),
                _ => Value::Object(o.clone()),
            })
        } else {
            v.clone()
        };
        out.insert(k.clone(), shaped);
    }
    out
}

fn map_items(v: &Value, f: impl Fn(&Map<String, Value>) -> Value) -> Value {
    match v {
        Value::Object(o) => f(o),
        Value::Array(a) => Value::Array(a.iter().map(|i| i.as_object().map_or_else(|| i.clone(), &f)).collect()),
        other => other.clone(),
    }
}

/// Adds the SUBSETTED tag to meta.tag (once), placing a new `meta` right after `id`.
fn mark_subsetted(obj: Map<String, Value>) -> Map<String, Value> {
    let tag = json!({"system": SUBSETTED_SYSTEM, "code": "SUBSETTED", "display": "subsetted"});
    let has_tag = |m: &Map<String, Value>| {
        m.get("tag").and_then(Value::as_array).is_some_and(|tags| {
            tags.iter().any(|t| {
                t.get("system").and_then(Value::as_str) == Some(SUBSETTED_SYSTEM)
                    && t.get("code").and_then(Value::as_str) == Some("SUBSETTED")
            })
        })
    };
    let mut out = Map::new();
    let mut placed = false;
    let needs_meta = !obj.contains_key("meta");
    for (k, v) in obj {
        if k == "meta" {
            let mut meta = v.as_object().cloned().unwrap_or_default();
            if !has_tag(&meta) {
                match meta.get_mut("tag") {
                    Some(Value::Array(tags)) => tags.push(tag.clone()),
                    _ => {
                        meta.insert("tag".into(), Value::Array(vec![tag.clone()]));
                    }
                }
            }
            out.insert(k, Value::Object(meta));
            placed = true;
            continue;
        }
        let after_id = k == "id";
        out.insert(k, v);
        if needs_meta && after_id {
            out.insert("meta".into(), json!({"tag": [tag.clone()]}));
            placed = true;
        }
    }
    if !placed {
        out.insert("meta".into(), json!({"tag": [tag]}));
    }
    out
}
