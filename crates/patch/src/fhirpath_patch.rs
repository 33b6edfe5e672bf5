//! FHIRPath Patch (R4 fhirpatch.html): a `Parameters` resource whose `operation`
//! parameters add, insert, delete, replace or move elements located by FHIRPath.
//!
//! Nodes are found with the FHIRPath engine, located in the JSON by their path of keys and
//! indexes, and changed there. The model says whether an element repeats (JSON array) and
//! how choice elements are named, so values given as `value[x]` or as anonymous `part`s land
//! in the right JSON shape.

use crate::PatchError;
use serde_json::{Map, Value};
use tsunagu_fhirpath::PathSegment;

fn err(msg: impl Into<String>) -> PatchError {
    PatchError::FhirPath(msg.into())
}

/// One operation's parts by name.
struct Operation<'a> {
    parts: Vec<&'a Value>,
}

impl<'a> Operation<'a> {
    fn part(&self, name: &str) -> Option<&'a Value> {
        self.parts.iter().copied().find(|p| p.get("name").and_then(Value::as_str) == Some(name))
    }

    fn string(&self, name: &str) -> Result<&'a str, PatchError> {
        let p = self.part(name).ok_or_else(|| err(format!("the operation has no '{name}'")))?;
        value_x(p).and_then(|(_, v)| v.as_str()).ok_or_else(|| err(format!("'{name}' must have a string value")))
    }

    fn integer(&self, name: &str) -> Result<usize, PatchError> {
        let p = self.part(name).ok_or_else(|| err(format!("the operation has no '{name}'")))?;
        value_x(p)
            .and_then(|(_, v)| v.as_u64())
            .map(|n| n as usize)
            .ok_or_else(|| err(format!("'{name}' must be a non-negative integer")))
    }
}

/// The `value[x]` of a parameter or part: its type suffix and JSON value.
fn value_x(p: &Value) -> Option<(&str, &Value)> {
    p.as_object()?.iter().find_map(|(k, v)| {
        let suffix = k.strip_prefix("value")?;
        (suffix.starts_with(|c: char| c.is_ascii_uppercase())).then_some((suffix, v))
    })
}

pub(crate) fn apply(mut doc: Value, params: &Value) -> Result<Value, PatchError> {
    if params.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(err("a FHIRPath Patch is a Parameters resource"));
    }
    for p in params.get("parameter").and_then(Value::as_array).into_iter().flatten() {
        if p.get("name").and_then(Value::as_str) != Some("operation") {
            return Err(err("every parameter of a FHIRPath Patch must be named 'operation'"));
        }
        let op = Operation {
            parts: p.get("part").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default(),
        };
        apply_one(&mut doc, &op)?;
    }
    Ok(doc)
}

/// Locations of the nodes `path` selects.
fn select(doc: &Value, path: &str) -> Result<Vec<Vec<PathSegment>>, PatchError> {
    let expr = tsunagu_fhirpath::compile(path).map_err(|e| err(format!("path '{path}': {e}")))?;
    let items = expr.evaluate(doc).map_err(|e| match e.limit_exceeded() {
        Some(l) => PatchError::Limit { path: path.to_string(), limit: Box::new(l.clone()) },
        None => err(format!("path '{path}': {e}")),
    })?;
    items
        .iter()
        .map(|i| {
            i.as_node()
                .and_then(|n| n.location(doc))
                .ok_or_else(|| err(format!("path '{path}' selects something that is not an element of the resource")))
        })
        .collect()
}

fn select_one(doc: &Value, path: &str, what: &str) -> Result<Vec<PathSegment>, PatchError> {
    let mut found = select(doc, path)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(err(format!("No content found at {path} when {what}"))),
        n => Err(err(format!("{path} selects {n} elements; {what} needs exactly one"))),
    }
}

fn apply_one(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let kind = op.string("type")?;
    let path = op.string("path")?;
    match kind {
        "add" => {
            let at = select_one(doc, path, "adding")?;
            let name = op.string("name")?;
            let parent_type = type_path(doc, &at)?;
            let value_part = op.part("value").ok_or_else(|| err("add needs a value"))?;
            let (key, value, repeats) = element_value(&parent_type, name, value_part)?;
            let container =
                node_mut(doc, &at)?.as_object_mut().ok_or_else(|| err(format!("{path} is not an object")))?;
            if repeats {
                match container.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                    Value::Array(a) => a.push(value),
                    _ => return Err(err(format!("{name} is not a list"))),
                }
            } else if container.contains_key(&key) {
                return Err(err(format!("{name} already has a value at {path}")));
            } else {
                container.insert(key, value);
            }
        }
        "insert" => {
            let index = op.integer("index")?;
            let value_part = op.part("value").ok_or_else(|| err("insert needs a value"))?;
            let (list_at, parent_type, name) = list_location(doc, path)?;
            let (key, value, _) = element_value(&parent_type, &name, value_part)?;
            let container = node_mut(doc, &list_at)?.as_object_mut().ok_or_else(|| err("not an object"))?;
            let list = container.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(a) = list else { return Err(err(format!("{path} is not a list"))) };
            if index > a.len() {
                return Err(err(format!("index {index} is past the end of {path} ({} items)", a.len())));
            }
            a.insert(index, value);
        }
        "delete" => {
            let mut found = select(doc, path)?;
            match found.len() {
                0 => {}
                1 => remove(doc, &found.remove(0))?,
                n => return Err(err(format!("{path} selects {n} elements; delete needs at most one"))),
            }
        }
        "replace" => {
            let at = select_one(doc, path, "replacing")?;
            let (parent_at, last) = split_last(&at)?;
            let name = match (&last, parent_at.last()) {
                (PathSegment::Key(k), _) => k.clone(),
                (PathSegment::Index(_), _) => match at.get(at.len().wrapping_sub(2)) {
                    Some(PathSegment::Key(k)) => k.clone(),
                    _ => return Err(err("cannot replace here")),
                },
            };
            let container_at: Vec<PathSegment> = match last {
                PathSegment::Key(_) => parent_at.to_vec(),
                PathSegment::Index(_) => parent_at[..parent_at.len() - 1].to_vec(),
            };
            let parent_type = type_path(doc, &container_at)?;
            let element = json_name_to_element(&parent_type, &name);
            let value_part = op.part("value").ok_or_else(|| err("replace needs a value"))?;
            let (key, value, _) = element_value(&parent_type, &element, value_part)?;
            match last {
                PathSegment::Index(_) => *node_mut(doc, &at)? = value,
                PathSegment::Key(old) => {
                    let container =
                        node_mut(doc, &container_at)?.as_object_mut().ok_or_else(|| err("not an object"))?;
                    container.remove(&old);
                    container.remove(&format!("_{old}"));
                    container.insert(key, value);
                }
            }
        }
        "move" => {
            let source = op.integer("source")?;
            let destination = op.integer("destination")?;
            let (list_at, _, name) = list_location(doc, path)?;
            let container = node_mut(doc, &list_at)?.as_object_mut().ok_or_else(|| err("not an object"))?;
            let Some(Value::Array(a)) = container.get_mut(&name) else {
                return Err(err(format!("{path} is not a list")));
            };
            if source >= a.len() || destination >= a.len() {
                return Err(err(format!("move {source} → {destination} is outside {path} ({} items)", a.len())));
            }
            let item = a.remove(source);
            a.insert(destination, item);
        }
        other => return Err(err(format!("unknown operation type '{other}'"))),
    }
    Ok(())
}

/// The container and element name of the list `path` selects, found from its items or,
/// when it is empty, from the path's parent expression.
fn list_location(doc: &Value, path: &str) -> Result<(Vec<PathSegment>, String, String), PatchError> {
    let found = select(doc, path)?;
    if let Some(first) = found.first() {
        let n = first.len();
        if let (Some(PathSegment::Index(_)), Some(PathSegment::Key(k))) =
            (first.get(n.wrapping_sub(1)), first.get(n.wrapping_sub(2)))
        {
            let container = first[..n - 2].to_vec();
            let ty = type_path(doc, &container)?;
            return Ok((container, ty, k.clone()));
        }
        return Err(err(format!("{path} is not a list")));
    }
    let (parent, name) = path.rsplit_once('.').ok_or_else(|| err(format!("cannot find the list {path}")))?;
    let container = select_one(doc, parent, "inserting")?;
    let ty = type_path(doc, &container)?;
    Ok((container, ty, name.to_string()))
}

fn split_last(at: &[PathSegment]) -> Result<(&[PathSegment], PathSegment), PatchError> {
    let (last, rest) = at.split_last().ok_or_else(|| err("cannot change the resource itself"))?;
    Ok((rest, last.clone()))
}

/// `valueQuantity` under `Observation` → `value`; other names unchanged.
fn json_name_to_element(parent_type: &str, json_name: &str) -> String {
    match tsunagu_model::r4().child(parent_type, json_name) {
        Some((e, _)) => e.name.to_string(),
        None => json_name.to_string(),
    }
}

/// The model path describing the node at `at` (`Patient`, `Patient.contact`, `HumanName`).
fn type_path(doc: &Value, at: &[PathSegment]) -> Result<String, PatchError> {
    let model = tsunagu_model::r4();
    let mut ty: String =
        doc.get("resourceType").and_then(Value::as_str).ok_or_else(|| err("no resourceType"))?.to_string();
    let mut node = doc;
    for seg in at {
        match seg {
            PathSegment::Index(i) => node = node.get(*i).ok_or_else(|| err("bad location"))?,
            PathSegment::Key(k) => {
                node = node.get(k.as_str()).ok_or_else(|| err("bad location"))?;
                if k == "resource" || k == "contained" {
                    if let Some(rt) = node.get("resourceType").and_then(Value::as_str) {
                        ty = rt.to_string();
                        continue;
                    }
                }
                let (e, t) = model.child(&ty, k).ok_or_else(|| err(format!("{ty} has no element {k}")))?;
                ty = model.child_parent(e, t).to_string();
            }
        }
    }
    Ok(ty)
}

/// The JSON key, value and repetition of element `name` of `parent_type` given by a
/// `value` part (a `value[x]`, or anonymous `part`s for a backbone element).
fn element_value(parent_type: &str, name: &str, part: &Value) -> Result<(String, Value, bool), PatchError> {
    let model = tsunagu_model::r4();
    let path = format!("{parent_type}.{name}");
    let def = model.element(&path).or_else(|| {
        let parent = model.element(parent_type).and_then(|e| e.content_ref).unwrap_or(parent_type);
        model.element(&format!("{parent}.{name}"))
    });
    let repeats = def.is_some_and(|d| d.is_array());
    if let Some((suffix, v)) = value_x(part) {
        let key = if def.is_some_and(|d| d.choice) { format!("{name}{suffix}") } else { name.to_string() };
        return Ok((key, v.clone(), repeats));
    }
    let parts =
        part.get("part").and_then(Value::as_array).ok_or_else(|| err(format!("the value for {name} is empty")))?;
    let child_type = match def {
        Some(d) => match d.types.first() {
            Some(t) => model.child_parent(d, t).to_string(),
            None => d.content_ref.unwrap_or(d.path).to_string(),
        },
        None => return Err(err(format!("{parent_type} has no element {name}"))),
    };
    let mut obj = Map::new();
    for sub in parts {
        let sub_name = sub.get("name").and_then(Value::as_str).ok_or_else(|| err("a value part has no name"))?;
        let (k, v, rep) = element_value(&child_type, sub_name, sub)?;
        if rep {
            match obj.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(v),
                _ => return Err(err("mixed single and repeated values")),
            }
        } else {
            obj.insert(k, v);
        }
    }
    Ok((name.to_string(), Value::Object(obj), repeats))
}

fn node_mut<'a>(doc: &'a mut Value, at: &[PathSegment]) -> Result<&'a mut Value, PatchError> {
    let mut node = doc;
    for seg in at {
        node = match seg {
            PathSegment::Key(k) => node.get_mut(k.as_str()),
            PathSegment::Index(i) => node.get_mut(*i),
        }
        .ok_or_else(|| err("the location vanished"))?;
    }
    Ok(node)
}

/// Removes the node at `at`, with its `_name` extension sibling, then every object or
/// array the removal left empty (FHIR has no empty elements).
fn remove(doc: &mut Value, at: &[PathSegment]) -> Result<(), PatchError> {
    remove_one(doc, at)?;
    let mut up = at.to_vec();
    while up.len() > 1 {
        up.pop();
        let empty = match node_mut(doc, &up) {
            Ok(Value::Object(m)) => m.is_empty(),
            Ok(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty {
            break;
        }
        remove_one(doc, &up)?;
    }
    Ok(())
}

fn remove_one(doc: &mut Value, at: &[PathSegment]) -> Result<(), PatchError> {
    let (parent, last) = split_last(at)?;
    match last {
        PathSegment::Key(k) => {
            let obj = node_mut(doc, parent)?.as_object_mut().ok_or_else(|| err("not an object"))?;
            obj.remove(&k);
            obj.remove(&format!("_{k}"));
        }
        PathSegment::Index(i) => {
            let (grand, key) = split_last(parent)?;
            let PathSegment::Key(key) = key else { return Err(err("nested lists are not FHIR")) };
            let obj = node_mut(doc, grand)?.as_object_mut().ok_or_else(|| err("not an object"))?;
            let mut empty = false;
            if let Some(Value::Array(a)) = obj.get_mut(&key) {
                a.remove(i);
                empty = a.is_empty();
            }
            if let Some(Value::Array(a)) = obj.get_mut(&format!("_{key}")) {
                if i < a.len() {
                    a.remove(i);
                }
            }
            if empty {
                obj.remove(&key);
                obj.remove(&format!("_{key}"));
            }
        }
    }
    Ok(())
}
