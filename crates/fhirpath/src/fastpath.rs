//! A shortcut for the most common expression shape, a plain path from a resource type
//! (`Patient.name.given`, `Observation.subject`): when the model fixes every step to a
//! single JSON key, evaluation is a depth-first walk over the JSON that allocates only the
//! result. Anything else (choices, functions, contained resources) takes the general path.

use crate::compile::{Node as CNode, Op, TypeTest};
use crate::eval::{get2, push_values};
use crate::item::{Item, Node};
use serde_json::Value;

#[derive(Debug)]
pub(crate) struct FastPath {
    root: Root,
    steps: Vec<Step>,
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
        let mut steps = Vec::new();
        let mut cur = plan;
        let root = loop {
            let Op::Child(input, step) = &cur.op else {
                match &cur.op {
                    Op::TypeName(TypeTest::Fhir(t)) => break Root::Type(t),
                    _ => return None,
                }
            };
            let (parent, info) = step.hint.as_ref()?;
            if info.choice || info.candidates.len() != 1 {
                return None;
            }
            let c = &info.candidates[0];
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
        Some(FastPath { root, steps })
    }

    /// Evaluates on a node; `None` when the node is not the kind the plan was made for
    /// (the general evaluator then decides).
    pub(crate) fn run<'a>(&self, node: &Node<'a>) -> Option<Vec<Item<'a>>> {
        let fits = match self.root {
            Root::Type(t) => node.fhir_type == t,
            Root::Path(p) => std::ptr::eq(node.path, p),
        };
        if !fits {
            return None;
        }
        let mut out = Vec::new();
        if let Some(v) = node.value {
            self.walk(v, 0, &mut out);
        }
        Some(out)
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
