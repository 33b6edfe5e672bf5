//! Tree navigation (`children()`) and identity helpers for collections.

use crate::eval::{push_values, Items};
use crate::item::{Item, Node};
use crate::nav;
use crate::ops;
use serde_json::Value;

/// Identity for nodes (same JSON), equality for values: `repeat()` must not merge two
/// equal-looking but distinct elements.
pub(super) fn same_item(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Node(x), Item::Node(y)) => {
            let p = |n: &Node| n.value.map(|v| v as *const Value).or(n.ext.map(|v| v as *const Value));
            p(x) == p(y)
        }
        (Item::Node(_), _) | (_, Item::Node(_)) => false,
        _ => ops::eq(a, b) == Some(true),
    }
}

/// Children of a node in JSON order, typed through the model where it knows them.
pub(super) fn children<'a>(i: &Item<'a>, out: &mut Items<'a>) {
    let Item::Node(n) = i else { return };
    let Some(Value::Object(map)) = n.value else {
        if let Some(Value::Object(ext)) = n.ext {
            push_values(ext.get("extension"), None, "Extension", "Extension", out);
        }
        return;
    };
    let m = nav::model();
    for (k, v) in map {
        if k == "resourceType" {
            continue;
        }
        let (key, val, ext) = match k.strip_prefix('_') {
            // A `_name` sibling is visited with its primitive, unless the value is absent.
            Some(base) if map.contains_key(base) => continue,
            Some(base) => (base, None, Some(v)),
            None => (k.as_str(), Some(v), map.get(&format!("_{k}"))),
        };
        match m.child(n.path, key) {
            Some((e, t)) => {
                let ty = if t.code == "Element" && e.backbone_path().is_some() { "BackboneElement" } else { t.code };
                push_values(val, ext, ty, m.child_parent(e, t), out)
            }
            None => push_values(val, ext, "", "", out),
        }
    }
}
