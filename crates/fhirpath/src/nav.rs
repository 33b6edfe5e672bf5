//! What the R4 model says about a child step: which JSON keys hold it (one per type for a
//! choice element), their FHIR types, and whose children describe them. Answers are built
//! once per (parent, name) and cached, because the model's own lookups allocate.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use tsunagu_model::Model;

pub(crate) fn model() -> &'static Model {
    tsunagu_model::r4()
}

#[derive(Debug)]
pub(crate) struct Candidate {
    pub json_key: String,
    /// `_key`: where a primitive's id and extensions live.
    pub ext_key: String,
    pub ty: &'static str,
    /// Backbone path or type name whose children describe nodes of this candidate.
    pub path: &'static str,
    /// Primitive type: look for the `_key` sibling too.
    pub primitive: bool,
}

#[derive(Debug)]
pub(crate) struct ChildInfo {
    pub candidates: Vec<Candidate>,
    /// A choice element (`value[x]`): one candidate per type.
    pub choice: bool,
}

type Cache = RwLock<HashMap<&'static str, HashMap<Box<str>, Option<Arc<ChildInfo>>>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn build(parent: &'static str, name: &str) -> Option<Arc<ChildInfo>> {
    let m = model();
    let e = m.children(parent).find(|e| e.name == name)?;
    let mut candidates = Vec::new();
    if e.choice {
        for t in &e.types {
            let key = format!("{name}{}", capitalize(t.code));
            candidates.push(Candidate {
                ext_key: format!("_{key}"),
                json_key: key,
                ty: t.code,
                path: m.child_parent(e, t),
                primitive: m.is_primitive(t.code),
            });
        }
    } else {
        let (ty, path) = match e.types.first() {
            Some(t) => (t.code, m.child_parent(e, t)),
            None => ("BackboneElement", e.backbone_path().unwrap_or(e.path)),
        };
        let ty = if ty == "Element" && e.backbone_path().is_some() { "BackboneElement" } else { ty };
        // The specification gives resource ids the type `id` (the generated tables keep
        // only the underlying System.String/string).
        let resource_parent = m.type_def(parent).is_some_and(|t| t.kind == tsunagu_model::TypeKind::Resource);
        let ty = if name == "id" && resource_parent { "id" } else { ty };
        candidates.push(Candidate {
            json_key: name.to_string(),
            ext_key: format!("_{name}"),
            ty,
            path,
            primitive: m.is_primitive(ty),
        });
    }
    Some(Arc::new(ChildInfo { candidates, choice: e.choice }))
}

/// The model's description of child `name` of nodes described by `parent`, or `None` when
/// the model has no such element.
pub(crate) fn child_info(parent: &'static str, name: &str) -> Option<Arc<ChildInfo>> {
    if parent.is_empty() {
        return None;
    }
    if let Some(v) = cache().read().ok().and_then(|c| c.get(parent).and_then(|m| m.get(name).cloned())) {
        return v;
    }
    let info = build(parent, name);
    if let Ok(mut c) = cache().write() {
        c.entry(parent).or_default().insert(name.into(), info.clone());
    }
    info
}

/// The interned (`'static`) name of a FHIR type, if the model knows it.
pub(crate) fn type_name(name: &str) -> Option<&'static str> {
    model().type_def(name).map(|t| t.name)
}

pub(crate) fn is_primitive(ty: &str) -> bool {
    model().is_primitive(ty)
}

pub(crate) fn is_quantity_type(ty: &str) -> bool {
    matches!(ty, "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity")
}
