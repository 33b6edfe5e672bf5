//! The evaluator: walks the compiled tree over borrowed JSON.

use crate::ast::BinOp;
use crate::budget::Budget;
use crate::compile::{ChildStep, Node as CNode, Op, SysType, TypeTest};
use crate::datetime::DateTime;
use crate::error::{FhirPathError, Result};
use crate::item::{Item, Node, Prim};
use crate::nav::{self, ChildInfo};
use crate::ops::{self, ArithOp};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

/// Answers the evaluator cannot give itself. Every method has a default that knows
/// nothing; `None` means "cannot tell" (the function then yields empty or an error, as the
/// specification says).
pub trait Hooks {
    /// The resource a reference (`Patient/1`, an absolute URL) points to.
    fn resolve(&self, _reference: &str) -> Option<Value> {
        None
    }
    /// Whether a code / Coding / CodeableConcept (`value`, of FHIR type `fhir_type`) is in
    /// the value set.
    fn member_of(&self, _value: &Value, _fhir_type: &str, _value_set: &str) -> Option<bool> {
        None
    }
    /// Whether the resource conforms to the profile.
    fn conforms_to(&self, _resource: &Value, _profile: &str) -> Option<bool> {
        None
    }
}

type TraceFn<'a> = Box<dyn for<'x> Fn(&str, &[Item<'x>]) + 'a>;

/// Per-evaluation settings: hooks, caller variables (`%name`), a fixed clock, a trace sink.
#[derive(Default)]
pub struct EvalContext<'a> {
    hooks: Option<&'a dyn Hooks>,
    vars: HashMap<String, Vec<Item<'a>>>,
    now: Option<DateTime>,
    trace: Option<TraceFn<'a>>,
    /// Resources returned by `resolve()`: owned here so results may borrow them. Boxed so
    /// their addresses stay put while the vector grows.
    #[allow(clippy::vec_box)]
    arena: RefCell<Vec<Box<Value>>>,
}

impl<'a> EvalContext<'a> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_hooks(mut self, hooks: &'a dyn Hooks) -> Self {
        self.hooks = Some(hooks);
        self
    }
    /// Sets `%name` (without the `%`).
    pub fn with_var(mut self, name: &str, items: Vec<Item<'a>>) -> Self {
        self.vars.insert(name.to_string(), items);
        self
    }
    pub fn set_var(&mut self, name: &str, items: Vec<Item<'a>>) {
        self.vars.insert(name.to_string(), items);
    }
    /// Fixes `now()`/`today()` (tests, reproducible runs).
    pub fn with_now(mut self, now: DateTime) -> Self {
        self.now = Some(now);
        self
    }
    /// Receives `trace()` output (by default it is dropped: this crate does no I/O).
    pub fn with_trace(mut self, f: impl for<'x> Fn(&str, &[Item<'x>]) + 'a) -> Self {
        self.trace = Some(Box::new(f));
        self
    }

    fn keep(&'a self, v: Value) -> &'a Value {
        let b = Box::new(v);
        let p: *const Value = &*b;
        self.arena.borrow_mut().push(b);
        // SAFETY: the box is never removed or mutated until the context is dropped, and the
        // context outlives 'a (we are borrowed for 'a); boxes do not move their contents.
        unsafe { &*p }
    }
}

pub(crate) struct Env<'a> {
    pub ctx: Option<&'a EvalContext<'a>>,
    pub resource: Item<'a>,
    pub context: Item<'a>,
    pub now: Cell<Option<DateTime>>,
    /// Ignore precomputed walks (differential testing of the shortcut).
    pub general_only: bool,
    /// Strict mode: a name the model does not know on a typed node is an error.
    pub strict: bool,
    /// The work done so far (`max_fhirpath_steps`).
    pub budget: Budget,
}

/// `$this`, `$index`, `$total` in the current function scope.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'s, 'a> {
    pub this: &'s [Item<'a>],
    pub index: i64,
    pub total: Option<&'s [Item<'a>]>,
}

pub(crate) type Items<'a> = Vec<Item<'a>>;

pub(crate) fn exec(pos: usize, msg: impl Into<String>) -> FhirPathError {
    FhirPathError::exec(pos, msg)
}

/// The single item of a collection (`Ok(None)` when empty; an error when several).
pub(crate) fn singleton<'i, 'a>(items: &'i [Item<'a>], pos: usize, what: &str) -> Result<Option<&'i Item<'a>>> {
    match items.len() {
        0 => Ok(None),
        1 => Ok(Some(&items[0])),
        n => Err(exec(pos, format!("{what} expects a single item, found {n}"))),
    }
}

/// Singleton evaluation as a boolean: a lone non-boolean counts as true.
pub(crate) fn to_bool(items: &[Item], pos: usize) -> Result<Option<bool>> {
    match singleton(items, pos, "a boolean context")? {
        None => Ok(None),
        Some(i) => Ok(Some(match i.prim() {
            Prim::Bool(b) => b,
            _ => true,
        })),
    }
}

pub(crate) fn type_matches(item: &Item, t: &TypeTest, exact: bool) -> bool {
    let m = nav::model();
    let sys = |s: &SysType| {
        if let Item::Node(n) = item {
            return untyped_system_type(n) == Some(*s);
        }
        matches!(
            (s, item),
            (SysType::Boolean, Item::Boolean(_))
                | (SysType::String, Item::String(_))
                | (SysType::Integer, Item::Integer(_))
                | (SysType::Long, Item::Long(_))
                | (SysType::Decimal, Item::Decimal(_))
                | (SysType::Date, Item::Date(_))
                | (SysType::DateTime, Item::DateTime(_))
                | (SysType::Time, Item::Time(_))
                | (SysType::Quantity, Item::Quantity(_))
        )
    };
    let fhir = |f: &str| match item {
        Item::Node(n) => {
            let ty = n.type_name();
            // Primitive types match exactly for as()/ofType() (code is not "as string"),
            // complex and resource types by specialisation.
            ty == f || (m.is_subtype(ty, f) && !(exact && nav::is_primitive(ty)))
        }
        _ => false,
    };
    match t {
        TypeTest::System(s) => sys(s),
        TypeTest::Fhir(f) => fhir(f),
        TypeTest::Both(s, f) => sys(s) || fhir(f),
        TypeTest::Never => false,
    }
}

/// The System type of a JSON primitive the model does not describe (untyped JSON).
fn untyped_system_type(n: &Node) -> Option<SysType> {
    if !n.fhir_type.is_empty() {
        return None;
    }
    match n.value? {
        Value::Bool(_) => Some(SysType::Boolean),
        Value::String(_) => Some(SysType::String),
        Value::Number(x) if x.as_str().contains(['.', 'e', 'E']) => Some(SysType::Decimal),
        Value::Number(_) => Some(SysType::Integer),
        _ => None,
    }
}

impl<'a> Env<'a> {
    /// Evaluates one node. Work is charged to the budget where it can grow: in loops that
    /// produce items and in each evaluation of a lambda argument (`where()`, `select()`,
    /// `aggregate()`, sort keys) — without iteration a node is evaluated at most once per
    /// evaluation of its parent, so that bounds the rest by the expression's size.
    pub(crate) fn eval(&self, n: &CNode, sc: Scope<'_, 'a>) -> Result<Items<'a>> {
        match &n.op {
            Op::Literal(i) => Ok(vec![i.clone()]),
            Op::Empty => Ok(Vec::new()),
            Op::This => Ok(sc.this.to_vec()),
            Op::Index => Ok(vec![Item::Integer(sc.index)]),
            Op::Total => Ok(sc.total.map(<[Item]>::to_vec).unwrap_or_default()),
            Op::Env(name) => self.var(name, n.pos),
            Op::TypeName(t) => Ok(sc.this.iter().filter(|i| type_matches(i, t, false)).cloned().collect()),
            Op::Child(input, step) => {
                let mut out = Vec::new();
                match input {
                    // `Patient.x`: filter the focus in place instead of collecting it first.
                    Some(inp) if matches!(inp.op, Op::TypeName(_)) => {
                        let Op::TypeName(t) = &inp.op else { unreachable!() };
                        for it in sc.this.iter().filter(|i| type_matches(i, t, false)) {
                            self.children_of(it, step, &mut out, n.pos)?;
                        }
                        self.budget.items(out.len(), n.pos)?;
                    }
                    Some(inp) => {
                        let items = self.eval(inp, sc)?;
                        self.children_of_each(&items, step, &mut out, n.pos)?;
                    }
                    None => self.children_of_each(sc.this, step, &mut out, n.pos)?,
                }
                Ok(out)
            }
            Op::Call(input, f, args) => {
                let items = match input {
                    Some(inp) => self.eval(inp, sc)?,
                    None => sc.this.to_vec(),
                };
                self.call(*f, items, args, sc, n.pos, input.is_some())
            }
            Op::Typed(input, f, t) => {
                let items = match input {
                    Some(inp) => self.eval(inp, sc)?,
                    None => sc.this.to_vec(),
                };
                match f {
                    crate::func::Func::Is => Ok(match singleton(&items, n.pos, "is")? {
                        None => vec![],
                        Some(i) => vec![Item::Boolean(type_matches(i, t, false))],
                    }),
                    crate::func::Func::As => Ok(match singleton(&items, n.pos, "as")? {
                        Some(i) if type_matches(i, t, true) => vec![i.clone()],
                        _ => vec![],
                    }),
                    _ => Ok(items.into_iter().filter(|i| type_matches(i, t, true)).collect()),
                }
            }
            Op::Indexer(t, i) => {
                let items = self.eval(t, sc)?;
                let idx = self.eval(i, sc)?;
                match singleton(&idx, i.pos, "an index")?.map(Item::prim) {
                    None => Ok(vec![]),
                    Some(Prim::Int(k)) => {
                        Ok(usize::try_from(k).ok().and_then(|k| items.get(k).cloned()).into_iter().collect())
                    }
                    Some(_) => Err(exec(i.pos, "an index must be an integer")),
                }
            }
            Op::Neg(inner) => {
                let items = self.eval(inner, sc)?;
                let Some(i) = singleton(&items, n.pos, "unary minus")? else {
                    return Ok(vec![]);
                };
                Ok(vec![match i.prim() {
                    Prim::Int(v) => match v.checked_neg() {
                        Some(n) => Item::Integer(n),
                        None => return Ok(vec![]),
                    },
                    Prim::Long(v) => match v.checked_neg() {
                        Some(n) => Item::Long(n),
                        None => return Ok(vec![]),
                    },
                    Prim::Dec(d) => Item::Decimal(d.neg()),
                    Prim::Quantity(q) => Item::Quantity(Arc::new(crate::quantity::Quantity {
                        value: q.value.neg(),
                        unit: q.unit.clone(),
                    })),
                    _ => return Err(exec(n.pos, format!("unary minus is not defined for {}", i.type_name()))),
                }])
            }
            Op::Fast(fp, general) => {
                let fits = |i: &Item| matches!(i, Item::Node(n) if fp.fits(n));
                if self.general_only || !sc.this.iter().all(fits) {
                    return self.eval(general, sc);
                }
                let mut out = Vec::new();
                for it in sc.this {
                    if let Item::Node(node) = it {
                        let before = out.len();
                        fp.walk_into(node, &mut out);
                        self.budget.items(out.len() - before, n.pos)?;
                    }
                }
                if !fp.complete(&out) {
                    return self.eval(general, sc);
                }
                Ok(out)
            }
            Op::Chain(first, rest) => {
                let mut acc = self.operand(first, sc)?;
                // After a union the accumulator is duplicate-free, so `a | b | c | …` only
                // checks each new item (not the whole collection again) at each step.
                let mut distinct = false;
                for (op, r, pos) in rest {
                    if *op == BinOp::Union {
                        let mut out = if distinct {
                            acc.into_owned()
                        } else {
                            self.union_into(Vec::with_capacity(acc.len()), &acc, *pos)?
                        };
                        out = self.union_into(out, &self.operand(r, sc)?, *pos)?;
                        acc = Cow::Owned(out);
                        distinct = true;
                    } else {
                        acc = Cow::Owned(self.binary(*op, acc, r, sc, *pos)?);
                        distinct = false;
                    }
                }
                Ok(acc.into_owned())
            }
        }
    }

    fn var(&self, name: &str, pos: usize) -> Result<Items<'a>> {
        if let Some(v) = self.ctx.and_then(|c| c.vars.get(name)) {
            return Ok(v.clone());
        }
        let s = |s: &str| Ok(vec![Item::string(s)]);
        match name {
            "resource" | "rootResource" => Ok(vec![self.resource.clone()]),
            "context" => Ok(vec![self.context.clone()]),
            "ucum" => s("http://unitsofmeasure.org"),
            "sct" => s("http://snomed.info/sct"),
            "loinc" => s("http://loinc.org"),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    return s(&format!("http://hl7.org/fhir/ValueSet/{vs}"));
                }
                if let Some(ext) = name.strip_prefix("ext-") {
                    return s(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"));
                }
                Err(exec(pos, format!("undefined variable %{name}")))
            }
        }
    }

    /// Appends the children named by `step` of each item, charging as it goes: a focus may
    /// hold one large node many times (`x.combine(x)…`).
    fn children_of_each(&self, items: &[Item<'a>], step: &ChildStep, out: &mut Items<'a>, pos: usize) -> Result<()> {
        for it in items {
            let before = out.len();
            self.children_of(it, step, out, pos)?;
            self.budget.items(out.len() - before, pos)?;
        }
        Ok(())
    }

    /// Appends the children named by `step` of one item.
    fn children_of(&self, it: &Item<'a>, step: &ChildStep, out: &mut Items<'a>, pos: usize) -> Result<()> {
        match it {
            Item::Node(n) => {
                let name = step.name.as_str();
                match n.value {
                    Some(Value::Object(map)) => {
                        let cached;
                        let info: Option<&ChildInfo> = match &step.hint {
                            Some((p, info)) if std::ptr::eq(*p, n.path) => Some(info),
                            _ => {
                                cached = nav::child_info(n.path, name);
                                cached.as_deref()
                            }
                        };
                        match info {
                            Some(info) if info.choice => {
                                // Few keys per object, many types per choice: scan the keys.
                                for (k, v) in map.iter() {
                                    if k.len() > name.len() && k.starts_with(name) {
                                        if let Some(c) = info.candidates.iter().find(|c| c.json_key == *k) {
                                            let e = if c.primitive { map.get(&c.ext_key) } else { None };
                                            push_values(Some(v), e, c.ty, c.path, out);
                                        }
                                    } else if let Some(base) = k.strip_prefix('_') {
                                        // A primitive choice value with only extensions.
                                        if base.starts_with(name) && !map.contains_key(base) {
                                            if let Some(c) = info.candidates.iter().find(|c| c.json_key == base) {
                                                push_values(None, Some(v), c.ty, c.path, out);
                                            }
                                        }
                                    }
                                }
                            }
                            Some(info) => {
                                for c in &info.candidates {
                                    let (v, e) = get2(map, &c.json_key, c.primitive.then_some(c.ext_key.as_str()));
                                    if v.is_some() || e.is_some() {
                                        push_values(v, e, c.ty, c.path, out);
                                    }
                                }
                            }
                            None => {
                                // Untyped JSON (no model path) is navigated as it is; a typed
                                // node with a name its type lacks is an error in strict mode.
                                if self.strict && !n.path.is_empty() {
                                    return Err(exec(pos, format!("'{name}' is not an element of {}", n.type_name())));
                                }
                                let v = map.get(name);
                                let e = map.get(&format!("_{name}"));
                                if v.is_some() || e.is_some() {
                                    push_values(v, e, "", "", out);
                                }
                            }
                        }
                    }
                    _ => {
                        // A primitive: only its id and extensions, held in the `_name` sibling.
                        if let Some(Value::Object(ext)) = n.ext {
                            match name {
                                "extension" => push_values(ext.get("extension"), None, "Extension", "Extension", out),
                                "id" => push_values(ext.get("id"), None, "string", "string", out),
                                _ => {}
                            }
                        }
                    }
                }
            }
            Item::TypeInfo(t) => match step.name.as_str() {
                "name" => out.push(Item::String(t.name.clone())),
                "namespace" => out.push(Item::string(t.namespace)),
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// An operand's value, borrowing literals and `$this` instead of copying them.
    fn operand<'s>(&self, n: &'s CNode, sc: Scope<'s, 'a>) -> Result<Cow<'s, [Item<'a>]>> {
        match &n.op {
            Op::Literal(i) => Ok(Cow::Borrowed(std::slice::from_ref(i))),
            Op::This => Ok(Cow::Borrowed(sc.this)),
            _ => Ok(Cow::Owned(self.eval(n, sc)?)),
        }
    }

    /// Applies `op` to an evaluated left operand and the right operand's expression (which
    /// `and`/`or`/`implies` may not need to evaluate).
    fn binary<'s>(
        &self,
        op: BinOp,
        a: Cow<'s, [Item<'a>]>,
        r: &'s CNode,
        sc: Scope<'s, 'a>,
        pos: usize,
    ) -> Result<Items<'a>> {
        use BinOp::*;
        if op == Union {
            let out = self.union_into(Vec::with_capacity(a.len()), &a, pos)?;
            return self.union_into(out, &self.operand(r, sc)?, pos);
        }
        // `implies`/`and`/`or` with a decided left side need not look right.
        match op {
            And | Or | Implies => {
                let x = to_bool(&a, pos)?;
                let short = match op {
                    And => x == Some(false),
                    Or => x == Some(true),
                    _ => x == Some(false),
                };
                if short {
                    return Ok(vec![Item::Boolean(op != And)]);
                }
                let y = to_bool(&self.operand(r, sc)?, pos)?;
                let res = match op {
                    And => match (x, y) {
                        (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    },
                    Or => match (x, y) {
                        (_, Some(true)) => Some(true),
                        (Some(false), Some(false)) => Some(false),
                        _ => None,
                    },
                    _ => match (x, y) {
                        (_, Some(true)) => Some(true),
                        (Some(true), y) => y,
                        _ => None,
                    },
                };
                return Ok(res.map(Item::Boolean).into_iter().collect());
            }
            _ => {}
        }
        let b = self.operand(r, sc)?;
        let boolean = |v: Option<bool>| Ok(v.map(Item::Boolean).into_iter().collect());
        match op {
            Union => unreachable!("handled above"),
            Eq | Ne => {
                if a.is_empty() || b.is_empty() {
                    return Ok(vec![]);
                }
                let r = if a.len() != b.len() {
                    Some(false)
                } else {
                    let mut unknown = false;
                    let mut all = true;
                    for (x, y) in a.iter().zip(b.iter()) {
                        self.budget.compare(x, y, pos)?;
                        let equal = ops::eq(x, y);
                        self.budget.compared_elements(pos)?;
                        match equal {
                            Some(true) => {}
                            Some(false) => {
                                all = false;
                                break;
                            }
                            None => unknown = true,
                        }
                    }
                    if !all {
                        Some(false)
                    } else if unknown {
                        None
                    } else {
                        Some(true)
                    }
                };
                boolean(if op == Ne { r.map(|v| !v) } else { r })
            }
            Equiv | NotEquiv => {
                let mut r = a.len() == b.len();
                let mut used = vec![false; b.len()];
                for x in a.iter() {
                    if !r {
                        break;
                    }
                    let mut found = None;
                    for (k, y) in b.iter().enumerate() {
                        self.budget.comparisons(1, pos)?;
                        if used[k] {
                            continue;
                        }
                        self.budget.compare(x, y, pos)?;
                        let same = ops::equiv(x, y);
                        self.budget.compared_elements(pos)?;
                        if same {
                            found = Some(k);
                            break;
                        }
                    }
                    match found {
                        Some(k) => used[k] = true,
                        None => r = false,
                    }
                }
                boolean(Some(if op == NotEquiv { !r } else { r }))
            }
            Lt | Gt | Le | Ge => {
                let (Some(x), Some(y)) = (singleton(&a, pos, "comparison")?, singleton(&b, pos, "comparison")?) else {
                    return Ok(vec![]);
                };
                self.budget.compare(x, y, pos)?;
                let o = ops::compare(x, y).map_err(|m| exec(pos, m))?;
                boolean(o.map(|o| match op {
                    Lt => o.is_lt(),
                    Gt => o.is_gt(),
                    Le => o.is_le(),
                    _ => o.is_ge(),
                }))
            }
            In | Contains => {
                let (needle, hay) = if op == In { (&*a, &*b) } else { (&*b, &*a) };
                match singleton(needle, pos, op.symbol())? {
                    None => Ok(vec![]),
                    Some(x) => boolean(Some(self.holds_equal(hay, x, pos)?)),
                }
            }
            Xor => match (to_bool(&a, pos)?, to_bool(&b, pos)?) {
                (Some(x), Some(y)) => boolean(Some(x != y)),
                _ => Ok(vec![]),
            },
            Concat => {
                let text = |c: &[Item<'a>]| -> Result<String> {
                    match singleton(c, pos, "&")? {
                        None => Ok(String::new()),
                        Some(i) => i.as_str().map(str::to_string).ok_or_else(|| exec(pos, "& needs strings")),
                    }
                };
                let (x, y) = (text(&a)?, text(&b)?);
                self.budget.bytes(x.len() + y.len(), pos)?;
                Ok(vec![Item::string(&(x + &y))])
            }
            Add | Sub | Mul | Div | IntDiv | Mod => {
                let (Some(x), Some(y)) = (singleton(&a, pos, "arithmetic")?, singleton(&b, pos, "arithmetic")?) else {
                    return Ok(vec![]);
                };
                if let (Some(x), Some(y)) = (x.as_str(), y.as_str()) {
                    self.budget.bytes(x.len() + y.len(), pos)?;
                }
                let aop = match op {
                    Add => ArithOp::Add,
                    Sub => ArithOp::Sub,
                    Mul => ArithOp::Mul,
                    Div => ArithOp::Div,
                    IntDiv => ArithOp::IntDiv,
                    _ => ArithOp::Mod,
                };
                Ok(ops::arith(aop, x, y).map_err(|m| exec(pos, m))?.into_iter().collect())
            }
            And | Or | Implies => unreachable!("handled above"),
        }
    }

    /// Appends the items of `more` not already in `out`.
    fn union_into(&self, mut out: Items<'a>, more: &[Item<'a>], pos: usize) -> Result<Items<'a>> {
        for i in more {
            if !self.holds_equal(&out, i, pos)? {
                out.push(i.clone());
            }
        }
        Ok(out)
    }

    /// Whether `hay` holds an item equal to `x`, each comparison charged.
    pub(crate) fn holds_equal(&self, hay: &[Item<'a>], x: &Item<'a>, pos: usize) -> Result<bool> {
        for y in hay {
            self.budget.compare(x, y, pos)?;
            let equal = ops::eq(x, y) == Some(true);
            self.budget.compared_elements(pos)?;
            if equal {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn now(&self) -> DateTime {
        if let Some(n) = self.now.get() {
            return n;
        }
        let n = self.ctx.and_then(|c| c.now).unwrap_or_else(DateTime::now);
        self.now.set(Some(n));
        n
    }

    pub(crate) fn trace(&self, name: &str, items: &[Item<'a>]) {
        if let Some(f) = self.ctx.and_then(|c| c.trace.as_ref()) {
            f(name, items);
        }
    }

    pub(crate) fn hooks(&self) -> Option<&'a dyn Hooks> {
        self.ctx.and_then(|c| c.hooks)
    }

    /// Resolves a reference: contained resources (`#id`) and Bundle entries first, then the
    /// caller's hook.
    pub(crate) fn resolve(&self, reference: &str) -> Option<Node<'a>> {
        let root = self.resource.json()?;
        if let Some(id) = reference.strip_prefix('#') {
            let found =
                root.get("contained")?.as_array()?.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
            return Some(Node::resource(found));
        }
        if let Some(entries) = root.get("entry").and_then(Value::as_array) {
            for e in entries {
                let full = e.get("fullUrl").and_then(Value::as_str).unwrap_or("");
                let res = e.get("resource");
                let rel =
                    res.and_then(|r| Some(format!("{}/{}", r.get("resourceType")?.as_str()?, r.get("id")?.as_str()?)));
                if full == reference
                    || rel.as_deref() == Some(reference)
                    || (!full.is_empty() && full.ends_with(&format!("/{reference}")))
                {
                    return res.map(Node::resource);
                }
            }
        }
        let ctx = self.ctx?;
        let v = ctx.hooks?.resolve(reference)?;
        Some(Node::resource(ctx.keep(v)))
    }
}

/// `map[key]` and `map[ext_key]` in one pass. FHIR objects are small, and a linear scan
/// comparing lengths first beats hashing both keys with SipHash.
#[inline]
pub(crate) fn get2<'v>(
    map: &'v serde_json::Map<String, Value>,
    key: &str,
    ext_key: Option<&str>,
) -> (Option<&'v Value>, Option<&'v Value>) {
    if map.len() > 24 {
        return (map.get(key), ext_key.and_then(|k| map.get(k)));
    }
    let mut v = None;
    let mut e = None;
    for (k, val) in map {
        if k.len() == key.len() && k == key {
            v = Some(val);
            if ext_key.is_none() || e.is_some() {
                break;
            }
        } else if let Some(ek) = ext_key {
            if k.len() == ek.len() && k == ek {
                e = Some(val);
                if v.is_some() {
                    break;
                }
            }
        }
    }
    (v, e)
}

/// Appends nodes for a JSON property (and its `_name` sibling), expanding arrays; a
/// primitive with only extensions still yields a node.
pub(crate) fn push_values<'a>(
    v: Option<&'a Value>,
    e: Option<&'a Value>,
    ty: &'static str,
    path: &'static str,
    out: &mut Vec<Item<'a>>,
) {
    match (v, e) {
        (Some(Value::Array(vs)), e) => {
            let es = match e {
                Some(Value::Array(es)) => &es[..],
                _ => &[],
            };
            if es.is_empty() {
                out.reserve(vs.len());
                for x in vs {
                    push_node(Some(x), None, ty, path, out);
                }
            } else {
                let n = vs.len().max(es.len());
                out.reserve(n);
                for k in 0..n {
                    push_node(vs.get(k), es.get(k), ty, path, out);
                }
            }
        }
        (None, Some(Value::Array(es))) => {
            for x in es {
                push_node(None, Some(x), ty, path, out);
            }
        }
        (v, e) => push_node(v, e, ty, path, out),
    }
}

#[inline]
fn push_node<'a>(
    v: Option<&'a Value>,
    e: Option<&'a Value>,
    ty: &'static str,
    path: &'static str,
    out: &mut Vec<Item<'a>>,
) {
    let v = match v {
        Some(Value::Null) | None => None,
        v => v,
    };
    let e = match e {
        Some(Value::Null) | None => None,
        e => e,
    };
    if v.is_none() && e.is_none() {
        return;
    }
    if let Some(obj @ Value::Object(m)) = v {
        // Resources held in `Resource`-typed elements (contained, entry.resource) take
        // their type from `resourceType`.
        if (ty.is_empty() || ty == "Resource" || ty == "DomainResource")
            && m.get("resourceType").and_then(Value::as_str).and_then(nav::type_name).is_some()
        {
            out.push(Item::Node(Node::resource(obj)));
            return;
        }
    }
    out.push(Item::Node(Node { value: v, ext: e, fhir_type: ty, path }));
}
