//! Merging one differential element onto the snapshot element it constrains
//! (elementdefinition.html, "snapshot generation"): what the differential states replaces
//! the base, except for the lists that only ever grow.

use serde_json::{Map, Value};

/// Keys of a differential element that say where it is, not what it constrains.
const LOCATION_KEYS: &[&str] = &["id", "path", "sliceName"];

pub(crate) fn merge_element(target: &mut Value, diff: &Value) {
    let (Some(target), Some(diff)) = (target.as_object_mut(), diff.as_object()) else {
        return;
    };
    for (key, value) in diff {
        if LOCATION_KEYS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            // Constraints are added to the base's (a derived profile cannot loosen an
            // invariant); one with the same key restates it.
            "constraint" => append_keyed(target, key, value, "key"),
            "mapping" => append_keyed(target, key, value, "identity"),
            "condition" | "alias" => append_unique(target, key, value),
            // A differential binding or slicing may restate only the parts it changes.
            "binding" | "slicing" => merge_object(target, key, value),
            _ => {
                if is_value_constraint(key) {
                    // One fixed or pattern value at a time: a new one replaces the base's
                    // of another type.
                    let prefix = if key.starts_with("fixed") { "fixed" } else { "pattern" };
                    target.retain(|k, _| !(k.starts_with(prefix) && is_value_constraint(k)));
                }
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `fixed[x]` / `pattern[x]` keys (`fixedUri`, `patternCodeableConcept`).
fn is_value_constraint(key: &str) -> bool {
    ["fixed", "pattern"]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase())))
}

fn append_keyed(target: &mut Map<String, Value>, key: &str, value: &Value, id_key: &str) {
    let list = target.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = list.as_array_mut() else { return };
    for item in value.as_array().into_iter().flatten() {
        let id = item.get(id_key);
        match list.iter_mut().find(|x| id.is_some() && x.get(id_key) == id) {
            Some(existing) if id_key == "key" => *existing = item.clone(),
            Some(_) => {}
            None => list.push(item.clone()),
        }
    }
}

fn append_unique(target: &mut Map<String, Value>, key: &str, value: &Value) {
    let list = target.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = list.as_array_mut() else { return };
    for item in value.as_array().into_iter().flatten() {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

fn merge_object(target: &mut Map<String, Value>, key: &str, value: &Value) {
    match (target.get_mut(key).and_then(Value::as_object_mut), value.as_object()) {
        (Some(base), Some(diff)) => {
            for (k, v) in diff {
                base.insert(k.clone(), v.clone());
            }
        }
        _ => {
            target.insert(key.to_owned(), value.clone());
        }
    }
}
