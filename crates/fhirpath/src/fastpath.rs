//! A shortcut for the most common expression shape, a plain path from a resource type
//! (`Patient.name.given`, `Observation.subject`): when the model fixes every step to a
//! single JSON key, evaluation is a depth-first walk over the JSON that allocates only the
//! result. Anything else (choices, functions, contained resources) takes the general path.

use crate::compile::{Node as CNode, Op, TypeTest};
use crate::eval::{get2, push_values};
use crate::func::Func;
use crate::item::{Item, Node};
use crate::nav;
use serde_json::Value;

#[derive(Debug)]
pub(crate) struct FastPath {
    root: Root,
    steps: Vec<Step>,
    /// Ends in `as(T)`: more than one result is an error the general evaluator reports.
    max_one: bool,
}

#[derive(Debug)]
enum Root {
    /// `Patient.…`: the context must be of this type.
    Type(&'static str),
    /// `name.…` (compiled for a known type): the context must be described by this path.
    Path(&'static str),
}

#[derive(Debug)]
struct Step {
    key: String,
    ext_key: Option<String>,
    ty: &'static str,
    path: &'static str,
}

impl FastPath {
    /// The fast plan for `plan`, if it is a plain path with fully known steps.
    pub(crate) fn for_plan(plan: &CNode) -> Option<FastPath> {
        // A trailing `as(T)`/`ofType(T)` selects the one JSON key of a choice that holds a
        // T (`Observation.value.as(Quantity)` reads `valueQuantity`).
        let (mut cur, mut narrow, max_one) = match &plan.op {
            Op::Typed(Some(input), f @ (Func::As | Func::OfType), tt) => {
                let t = match tt {
                    TypeTest::Fhir(t) | TypeTest::Both(_, t) => *t,
                    _ => return None,
                };
                (&**input, Some(t), *f == Func::As)
            }
            _ => (plan, None, false),
        };
        let mut steps = Vec::new();
        let root = loop {
            let Op::Child(input, step) = &cur.op else {
                match &cur.op {
                    Op::TypeName(TypeTest::Fhir(t)) => break Root::Type(t),
                    _ => return None,
                }
            };
            let (parent, info) = step.hint.as_ref()?;
            let c = match narrow.take() {
                Some(t) => {
                    // The same test as `as()`: exact for primitives, by specialisation
                    // otherwise.
                    let fits = |ty: &str| ty == t || (!nav::is_primitive(ty) && nav::model().is_subtype(ty, t));
                    let mut matching = info.candidates.iter().filter(|c| fits(c.ty));
                    let c = matching.next()?;
                    if matching.next().is_some() {
                        return None;
                    }
                    c
                }
                None => {
                    if info.choice || info.candidates.len() != 1 {
                        return None;
                    }
                    &info.candidates[0]
                }
            };
            if matches!(c.ty, "" | "Resource" | "DomainResource") {
                return None;
            }
            steps.push(Step {
                key: c.json_key.clone(),
                ext_key: c.primitive.then(|| c.ext_key.clone()),
                ty: c.ty,
                path: c.path,
            });
            match input {
                Some(i) => cur = i,
                None => break Root::Path(parent),
            }
        };
        steps.reverse();
        // Only the last step may be a primitive: a primitive's own children (id,
        // extension) live in its `_name` sibling, which the walk does not follow.
        if steps.is_empty() || steps[..steps.len() - 1].iter().any(|s| s.ext_key.is_some()) {
            return None;
        }
        Some(FastPath { root, steps, max_one })
    }

    /// Evaluates on a node; `None` when the node is not the kind the plan was made for
    /// (the general evaluator then decides).
    pub(crate) fn run<'a>(&self, node: &Node<'a>) -> Option<Vec<Item<'a>>> {
        if !self.fits(node) {
            return None;
        }
        let mut out = Vec::new();
        self.walk_into(node, &mut out);
        self.complete(&out).then_some(out)
    }

    /// Whether the walk computes exactly what the general evaluator would for this node.
    pub(crate) fn fits(&self, node: &Node) -> bool {
        match self.root {
            Root::Type(t) => node.fhir_type == t,
            Root::Path(p) => std::ptr::eq(node.path, p),
        }
    }

    /// Whether a walk's results are final (an `as()` over several items must fail, and the
    /// general evaluator reports that).
    pub(crate) fn complete(&self, out: &[Item]) -> bool {
        !(self.max_one && out.len() > 1)
    }

    /// Appends the path's results for a node that [`fits`](Self::fits).
    pub(crate) fn walk_into<'a>(&self, node: &Node<'a>, out: &mut Vec<Item<'a>>) {
        if let Some(v) = node.value {
            self.walk(v, 0, out);
        }
    }

    fn walk<'a>(&self, v: &'a Value, k: usize, out: &mut Vec<Item<'a>>) {
        let Value::Object(map) = v else { return };
        let s = &self.steps[k];
        let (val, ext) = get2(map, &s.key, s.ext_key.as_deref());
        if k + 1 == self.steps.len() {
            if val.is_some() || ext.is_some() {
                push_values(val, ext, s.ty, s.path, out);
            }
            return;
        }
        match val {
            Some(Value::Array(a)) => {
                for x in a {
                    self.walk(x, k + 1, out);
                }
            }
            Some(x) => self.walk(x, k + 1, out),
            None => {}
        }
    }
}
