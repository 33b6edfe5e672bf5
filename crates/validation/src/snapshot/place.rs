//! Finding (or making) the snapshot element a differential element constrains: walking
//! its id one segment at a time, expanding complex types on the way, inserting slices,
//! and following renamed choice elements (`valueQuantity` for `value[x]`).

use std::sync::Arc;

use serde_json::Value;
use tsunagu_package::PackageSet;

use super::{SnapshotError, SnapshotGenerator};

const CORE_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";

/// The snapshot being built for one profile.
pub(crate) struct Placement<'w> {
    pub elements: &'w mut Vec<Value>,
    pub generator: &'w mut SnapshotGenerator,
    pub packages: &'w PackageSet,
    pub profile: &'w str,
    /// The base definition's snapshot, rerooted: what content references point into.
    pub base: &'w [Value],
}

impl Placement<'_> {
    /// The index of the element `diff` constrains, created when it is a new slice or lies
    /// below an element not yet expanded.
    pub fn locate(&mut self, diff: &Value) -> Result<usize, SnapshotError> {
        let id = diff_id(diff);
        let mut segments = id.split('.');
        segments.next();
        let mut current = 0;
        for segment in segments {
            let (name, slice) = match segment.split_once(':') {
                Some((name, slice)) => (name, Some(slice)),
                None => (segment, None),
            };
            current = self.child(current, name, &id)?;
            if let Some(slice) = slice {
                current = self.slice(current, slice);
            }
        }
        Ok(current)
    }

    fn id(&self, index: usize) -> &str {
        element_id(&self.elements[index])
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.elements.iter().position(|e| element_id(e) == id)
    }

    fn has_children(&self, index: usize) -> bool {
        let prefix = format!("{}.", self.id(index));
        self.elements.get(index + 1).is_some_and(|e| element_id(e).starts_with(&prefix))
    }

    /// The child `name` of the element at `parent`.
    fn child(&mut self, parent: usize, name: &str, diff_id: &str) -> Result<usize, SnapshotError> {
        let target = format!("{}.{name}", self.id(parent));
        if self.find(&target).is_none() && !self.has_children(parent) {
            self.expand(parent, diff_id)?;
        }
        if let Some(found) = self.find(&target) {
            return Ok(found);
        }
        // `valueQuantity` names `value[x]` restricted to Quantity.
        let parent_id = target.rsplit_once('.').map_or("", |(p, _)| p).to_owned();
        for (index, e) in self.elements.iter_mut().enumerate() {
            let Some(choice) = element_id(e).strip_prefix(&parent_id).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some(stem) = choice.strip_suffix("[x]") else { continue };
            if let Some(type_name) = name.strip_prefix(stem).filter(|t| !t.is_empty()) {
                if narrow_to_type(e, type_name) {
                    return Ok(index);
                }
            }
        }
        Err(self.unplaced(diff_id, "no such element"))
    }

    /// The slice `name` of the element at `sliced`, inserted after the element's existing
    /// slices when new. Its children start as copies of the sliced element's, so that the
    /// slice's own differential children merge into them.
    fn slice(&mut self, sliced: usize, name: &str) -> usize {
        let sliced_id = self.id(sliced).to_owned();
        let slice_id = format!("{sliced_id}:{name}");
        if let Some(found) = self.find(&slice_id) {
            return found;
        }
        // A re-slice (`a/b`) starts from the slice it refines and follows it.
        let parent_slice = name.rsplit_once('/').and_then(|(p, _)| self.find(&format!("{sliced_id}:{p}")));
        let template = parent_slice.unwrap_or(sliced);
        let end = self.subtree_end(template);
        let mut new = self.elements[template].clone();
        if let Some(obj) = new.as_object_mut() {
            obj.remove("slicing");
            obj.insert("id".into(), Value::String(slice_id.clone()));
            obj.insert("sliceName".into(), Value::String(name.to_owned()));
        }
        // A type slice of a choice (`value[x]:valueQuantity`) allows that type only.
        let stem = sliced_id.rsplit('.').next().and_then(|n| n.split(':').next()).and_then(|n| n.strip_suffix("[x]"));
        if let Some(type_name) = stem.and_then(|s| name.strip_prefix(s)) {
            narrow_to_type(&mut new, type_name);
            ensure_type_slicing(&mut self.elements[sliced]);
        }
        self.elements.insert(end, new);
        end
    }

    /// Copies of the children of the slice's template (the sliced element, or the slice a
    /// re-slice refines), renamed under the slice; empty when the template has none. The
    /// publisher copies them only once the differential reaches below the slice.
    fn slice_children(&self, slice_id: &str, slice_name: &str) -> Option<Vec<Value>> {
        let sliced_id = slice_id.strip_suffix(slice_name)?.strip_suffix(':')?;
        let parent_slice = slice_name.rsplit_once('/').map(|(p, _)| format!("{sliced_id}:{p}"));
        let template = parent_slice.and_then(|p| self.find(&p)).or_else(|| self.find(sliced_id))?;
        if !self.has_children(template) {
            return None;
        }
        let template_id = self.id(template);
        let child_prefix = format!("{template_id}.");
        let children = self.elements[template + 1..].iter().take_while(|e| element_id(e).starts_with(&child_prefix));
        Some(children.map(|e| rename_id(e, template_id, slice_id)).collect())
    }

    /// One past the last element of `index`'s subtree, its slices included.
    fn subtree_end(&self, index: usize) -> usize {
        let id = self.id(index);
        let (dot, colon) = (format!("{id}."), format!("{id}:"));
        let mut end = index + 1;
        while end < self.elements.len() {
            let e = element_id(&self.elements[end]);
            if !(e.starts_with(&dot) || e.starts_with(&colon) || e.starts_with(&format!("{id}/"))) {
                break;
            }
            end += 1;
        }
        end
    }

    /// Inserts the children of the element at `index`, from the element its content
    /// reference names or from the snapshot of its (single) type or type profile.
    fn expand(&mut self, index: usize, diff_id: &str) -> Result<(), SnapshotError> {
        let own_id = self.id(index).to_owned();
        let slice_name = self.elements[index].get("sliceName").and_then(Value::as_str).map(str::to_owned);
        if let Some(children) = slice_name.and_then(|name| self.slice_children(&own_id, &name)) {
            self.elements.splice(index + 1..index + 1, children);
            return Ok(());
        }
        let element = &self.elements[index];
        let own_path = element.get("path").and_then(Value::as_str).unwrap_or("").to_owned();
        let children: Vec<Value> = if let Some(reference) = element.get("contentReference").and_then(Value::as_str) {
            // The reference names an element of the base definition as the base states it,
            // not as this profile has constrained it so far.
            let source = reference.rsplit_once('#').map_or(reference, |(_, s)| s).to_owned();
            let prefix = format!("{source}.");
            let in_base = self.base.iter().any(|e| element_id(e) == source);
            let core;
            let list: &[Value] = if in_base {
                self.base
            } else {
                let root = source.split('.').next().unwrap_or("");
                core = self.generator.snapshot_of_url(&format!("{CORE_PREFIX}{root}"), self.packages, self.profile)?;
                &core
            };
            let list = list.iter().filter(|e| element_id(e).starts_with(&prefix) && !element_id(e).contains(':'));
            list.map(|e| rename(e, &source, &own_id, &source, &own_path)).collect()
        } else {
            let url = match element_types(element).as_slice() {
                [(code, profiles)] if profiles.len() == 1 => profiles[0].clone(),
                [(code, _)] if code.contains(':') => code.clone(),
                [(code, _)] => format!("{CORE_PREFIX}{code}"),
                _ => return Err(self.unplaced(diff_id, &format!("{own_id} has no single type to expand"))),
            };
            let source: Arc<Vec<Value>> = self.generator.snapshot_of_url(&url, self.packages, self.profile)?;
            let Some(root) = source.first() else { return Ok(()) };
            let root_id = element_id(root).to_owned();
            let root_path = root.get("path").and_then(Value::as_str).unwrap_or("").to_owned();
            source[1..].iter().map(|e| rename(e, &root_id, &own_id, &root_path, &own_path)).collect()
        };
        self.elements.splice(index + 1..index + 1, children);
        Ok(())
    }

    fn unplaced(&self, element: &str, why: &str) -> SnapshotError {
        SnapshotError::Unplaced { profile: self.profile.to_owned(), element: element.to_owned(), why: why.to_owned() }
    }
}

/// The id a differential element names: its `id`, or its path with the slice name on
/// the last segment.
fn diff_id(diff: &Value) -> String {
    if let Some(id) = diff.get("id").and_then(Value::as_str) {
        return id.to_owned();
    }
    let path = diff.get("path").and_then(Value::as_str).unwrap_or("");
    match diff.get("sliceName").and_then(Value::as_str) {
        Some(slice) => format!("{path}:{slice}"),
        None => path.to_owned(),
    }
}

pub(crate) fn element_id(e: &Value) -> &str {
    e.get("id").or_else(|| e.get("path")).and_then(Value::as_str).unwrap_or("")
}

/// `(code, profiles)` of each type of an element.
fn element_types(e: &Value) -> Vec<(String, Vec<String>)> {
    let list = e.get("type").and_then(Value::as_array).into_iter().flatten();
    list.filter_map(|t| {
        let code = t.get("code")?.as_str()?.to_owned();
        let profiles = t.get("profile").and_then(Value::as_array).into_iter().flatten();
        Some((code, profiles.filter_map(Value::as_str).map(str::to_owned).collect()))
    })
    .collect()
}

/// Keeps only the type whose code is `type_name` (`Quantity`, or `String` for `string`);
/// false when the element allows no such type.
fn narrow_to_type(e: &mut Value, type_name: &str) -> bool {
    let Some(types) = e.get_mut("type").and_then(Value::as_array_mut) else { return false };
    let matches = |t: &Value| {
        let code = t.get("code").and_then(Value::as_str).unwrap_or("");
        code == type_name || capitalised(code) == type_name
    };
    if !types.iter().any(matches) {
        return false;
    }
    types.retain(matches);
    true
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Type slices need a slicing on the choice element; the publisher adds this one when
/// the differential does not say.
fn ensure_type_slicing(e: &mut Value) {
    if e.get("slicing").is_none() {
        e["slicing"] = serde_json::json!({
            "discriminator": [{"type": "type", "path": "$this"}],
            "ordered": false,
            "rules": "open"
        });
    }
}

fn rename_id(e: &Value, old_id: &str, new_id: &str) -> Value {
    let mut copy = e.clone();
    copy["id"] = Value::String(reprefix(element_id(e), old_id, new_id));
    copy
}

/// A copy of `e` moved from under `old_id`/`old_path` to under `new_id`/`new_path`.
fn rename(e: &Value, old_id: &str, new_id: &str, old_path: &str, new_path: &str) -> Value {
    let mut copy = e.clone();
    copy["id"] = Value::String(reprefix(element_id(e), old_id, new_id));
    let path = e.get("path").and_then(Value::as_str).unwrap_or("");
    copy["path"] = Value::String(reprefix(path, old_path, new_path));
    copy
}

/// `s` with its leading `old` segment(s) replaced by `new`.
pub(crate) fn reprefix(s: &str, old: &str, new: &str) -> String {
    match s.strip_prefix(old) {
        Some("") => new.to_owned(),
        Some(rest) if rest.starts_with(['.', ':']) => format!("{new}{rest}"),
        _ => s.to_owned(),
    }
}
