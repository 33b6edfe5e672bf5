//! From syntax tree to executable tree: resolves function names, type specifiers and
//! model lookups once, folds signed literals, and type-checks against the R4 model where
//! the types are known (unknown element names, string functions on non-strings, operators
//! that can never apply), so such mistakes fail at compile time, not on some resource.

use crate::ast::{BinOp, Expr, ExprKind, TypeSpec, UnaryOp};
use crate::error::{FhirPathError, Result};
use crate::fastpath::FastPath;
use crate::func::{self, ArgMode, Func};
use crate::item::Item;
use crate::nav::{self, ChildInfo};
use crate::quantity::Quantity;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct Node {
    pub pos: usize,
    pub op: Op,
}

#[derive(Debug)]
pub(crate) enum Op {
    Literal(Item<'static>),
    Empty,
    This,
    Index,
    Total,
    Env(String),
    /// A leading type name (`Patient.name`): the focus if it is of that type.
    TypeName(TypeTest),
    /// Child `name` of each input item (of `$this` when there is no input).
    Child(Option<Box<Node>>, ChildStep),
    Call(Option<Box<Node>>, Func, Vec<Node>),
    Typed(Option<Box<Node>>, Func, TypeTest),
    Indexer(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    /// A left-associative operator chain `a op1 b op2 c …`, evaluated iteratively so long
    /// chains (`a | b | … | z`) need no deep recursion.
    Chain(Box<Node>, Vec<(BinOp, Node, usize)>),
    /// A plain path with a precomputed walk, and the general tree for inputs it does not
    /// fit (see `fastpath`).
    Fast(Box<FastPath>, Box<Node>),
}

/// Replaces every maximal plain-path subtree with its precomputed walk.
pub(crate) fn optimize(n: Node) -> Node {
    if !matches!(n.op, Op::Fast(..)) {
        if let Some(fp) = FastPath::for_plan(&n) {
            return Node { pos: n.pos, op: Op::Fast(Box::new(fp), Box::new(n)) };
        }
    }
    let opt = |b: Box<Node>| Box::new(optimize(*b));
    let op = match n.op {
        Op::Child(i, step) => Op::Child(i.map(opt), step),
        Op::Call(i, f, args) => Op::Call(i.map(opt), f, args.into_iter().map(optimize).collect()),
        Op::Typed(i, f, t) => Op::Typed(i.map(opt), f, t),
        Op::Indexer(a, b) => Op::Indexer(opt(a), opt(b)),
        Op::Neg(a) => Op::Neg(opt(a)),
        Op::Chain(first, rest) => {
            Op::Chain(opt(first), rest.into_iter().map(|(o, r, p)| (o, optimize(r), p)).collect())
        }
        other => other,
    };
    Node { pos: n.pos, op }
}

#[derive(Debug)]
pub(crate) struct ChildStep {
    pub name: String,
    /// Model answer for the parent path the type checker expected; used when the runtime
    /// node has that parent path, so the common case needs no lookup at all.
    pub hint: Option<(&'static str, Arc<ChildInfo>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SysType {
    Boolean,
    String,
    Integer,
    Long,
    Decimal,
    Date,
    DateTime,
    Time,
    Quantity,
}

impl SysType {
    fn parse(name: &str) -> Option<SysType> {
        Some(match name {
            "Boolean" => SysType::Boolean,
            "String" => SysType::String,
            "Integer" => SysType::Integer,
            "Long" => SysType::Long,
            "Decimal" => SysType::Decimal,
            "Date" => SysType::Date,
            "DateTime" => SysType::DateTime,
            "Time" => SysType::Time,
            "Quantity" => SysType::Quantity,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SysType::Boolean => "Boolean",
            SysType::String => "String",
            SysType::Integer => "Integer",
            SysType::Long => "Long",
            SysType::Decimal => "Decimal",
            SysType::Date => "Date",
            SysType::DateTime => "DateTime",
            SysType::Time => "Time",
            SysType::Quantity => "Quantity",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum TypeTest {
    System(SysType),
    Fhir(&'static str),
    /// An unqualified name known to both namespaces (`Quantity`).
    Both(SysType, &'static str),
    /// A well-formed name no value can have (`System.Patient`).
    Never,
}

fn resolve_type(t: &TypeSpec, pos: usize) -> Result<TypeTest> {
    let sys = SysType::parse(&t.name);
    let fhir = nav::type_name(&t.name);
    let r = match t.namespace.as_deref() {
        Some("System") => Some(sys.map(TypeTest::System).unwrap_or(TypeTest::Never)),
        Some("FHIR") => fhir.map(TypeTest::Fhir),
        Some(_) => None,
        None => match (sys, fhir) {
            (Some(s), Some(f)) => Some(TypeTest::Both(s, f)),
            (Some(s), None) => Some(TypeTest::System(s)),
            (None, Some(f)) => Some(TypeTest::Fhir(f)),
            (None, None) => None,
        },
    };
    r.ok_or_else(|| FhirPathError::semantic(pos, format!("unknown type '{t}'")))
}

fn expr_to_type(e: &Expr) -> Option<TypeSpec> {
    match &e.kind {
        ExprKind::Ident(n) => Some(TypeSpec { namespace: None, name: n.clone() }),
        ExprKind::Member(t, n) => match &t.kind {
            ExprKind::Ident(ns) => Some(TypeSpec { namespace: Some(ns.clone()), name: n.clone() }),
            _ => None,
        },
        _ => None,
    }
}

// ---- static types ----

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Any,
    Fhir(&'static str, &'static str),
    Sys(SysType),
    TypeInfo,
}

#[derive(Clone, Debug)]
struct SType {
    kinds: Vec<Kind>,
    /// Produced by children()/descendants(): order is not meaningful.
    unordered: bool,
}

impl SType {
    fn any() -> SType {
        SType { kinds: vec![Kind::Any], unordered: false }
    }
    fn sys(s: SysType) -> SType {
        SType { kinds: vec![Kind::Sys(s)], unordered: false }
    }
    fn empty() -> SType {
        SType { kinds: vec![], unordered: false }
    }
    fn fhir(ty: &'static str) -> SType {
        SType { kinds: vec![Kind::Fhir(ty, ty)], unordered: false }
    }
    fn union(&self, o: &SType) -> SType {
        let mut kinds = self.kinds.clone();
        for k in &o.kinds {
            if !kinds.contains(k) {
                kinds.push(*k);
            }
        }
        SType { kinds, unordered: false }
    }
    /// Value kinds, or `None` when anything is possible.
    fn value_kinds(&self) -> Option<Vec<VK>> {
        let mut out = Vec::new();
        for k in &self.kinds {
            let vk = match k {
                Kind::Any => return None,
                Kind::TypeInfo => VK::Complex,
                Kind::Sys(s) => match s {
                    SysType::Boolean => VK::Bool,
                    SysType::String => VK::Str,
                    SysType::Integer => VK::Int,
                    SysType::Long => VK::Long,
                    SysType::Decimal => VK::Dec,
                    SysType::Date => VK::Date,
                    SysType::DateTime => VK::DateTime,
                    SysType::Time => VK::Time,
                    SysType::Quantity => VK::Qty,
                },
                Kind::Fhir(ty, _) => fhir_vk(ty),
            };
            out.push(vk);
        }
        Some(out)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VK {
    Bool,
    Str,
    Int,
    Long,
    Dec,
    Date,
    DateTime,
    Time,
    Qty,
    Complex,
}

fn fhir_vk(ty: &str) -> VK {
    match ty {
        "boolean" => VK::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "integer64" => VK::Int,
        "decimal" => VK::Dec,
        "date" => VK::Date,
        "dateTime" | "instant" => VK::DateTime,
        "time" => VK::Time,
        t if nav::is_quantity_type(t) => VK::Qty,
        t if nav::is_primitive(t) => VK::Str,
        _ => VK::Complex,
    }
}

fn numeric(k: VK) -> bool {
    matches!(k, VK::Int | VK::Long | VK::Dec)
}

fn temporal(k: VK) -> bool {
    matches!(k, VK::Date | VK::DateTime | VK::Time)
}

/// Whether the operator can apply to some pair of operand kinds.
fn op_applies(op: BinOp, a: VK, b: VK) -> bool {
    use BinOp::*;
    match op {
        Add => {
            (numeric(a) && numeric(b))
                || (a == VK::Str && b == VK::Str)
                || (temporal(a) && b == VK::Qty)
                || (a == VK::Qty && b == VK::Qty)
        }
        Sub => (numeric(a) && numeric(b)) || (temporal(a) && b == VK::Qty) || (a == VK::Qty && b == VK::Qty),
        Mul | Div => (numeric(a) || a == VK::Qty) && (numeric(b) || b == VK::Qty),
        IntDiv | Mod => numeric(a) && numeric(b),
        Concat => a == VK::Str && b == VK::Str,
        Lt | Gt | Le | Ge => {
            (numeric(a) && numeric(b))
                || (a == b && a != VK::Complex && a != VK::Bool)
                || (matches!(a, VK::Date | VK::DateTime) && matches!(b, VK::Date | VK::DateTime))
        }
        _ => true,
    }
}

pub(crate) struct Compiler {
    pub root: Option<&'static str>,
    pub check_ordered: bool,
}

impl Compiler {
    pub fn compile(&self, e: &Expr) -> Result<Node> {
        let this = match self.root {
            Some(r) => SType::fhir(r),
            None => SType::any(),
        };
        Ok(self.expr(e, &this)?.0)
    }

    fn expr(&self, e: &Expr, this: &SType) -> Result<(Node, SType)> {
        let pos = e.pos;
        let lit = |item: Item<'static>, t: SysType| Ok((Node { pos, op: Op::Literal(item) }, SType::sys(t)));
        match &e.kind {
            ExprKind::Empty => Ok((Node { pos, op: Op::Empty }, SType::empty())),
            ExprKind::Boolean(b) => lit(Item::Boolean(*b), SysType::Boolean),
            ExprKind::String(s) => lit(Item::string(s), SysType::String),
            ExprKind::Integer(i) => lit(Item::Integer(*i), SysType::Integer),
            ExprKind::Long(i) => lit(Item::Long(*i), SysType::Long),
            ExprKind::Decimal(d) => lit(Item::Decimal(*d), SysType::Decimal),
            ExprKind::Date(d) => lit(Item::Date(*d), SysType::Date),
            ExprKind::DateTime(d) => lit(Item::DateTime(*d), SysType::DateTime),
            ExprKind::Time(t) => lit(Item::Time(*t), SysType::Time),
            ExprKind::Quantity(v, u, _) => lit(Item::Quantity(Arc::new(Quantity::new(*v, u))), SysType::Quantity),
            ExprKind::This => Ok((Node { pos, op: Op::This }, SType { kinds: this.kinds.clone(), unordered: false })),
            ExprKind::Index => Ok((Node { pos, op: Op::Index }, SType::sys(SysType::Integer))),
            ExprKind::Total => Ok((Node { pos, op: Op::Total }, SType::any())),
            ExprKind::Env(n) => {
                let t = match n.as_str() {
                    "sct" | "loinc" | "ucum" => SType::sys(SysType::String),
                    n if n.starts_with("vs-") || n.starts_with("ext-") => SType::sys(SysType::String),
                    _ => SType::any(),
                };
                Ok((Node { pos, op: Op::Env(n.clone()) }, t))
            }
            ExprKind::Ident(name) => {
                let is_type = name.starts_with(|c: char| c.is_ascii_uppercase()) && nav::type_name(name).is_some();
                if is_type {
                    let ty = nav::type_name(name).unwrap_or("");
                    if let Some(root) = self.root {
                        let fits = this.kinds.iter().any(|k| match k {
                            Kind::Fhir(t, _) => nav::model().is_subtype(t, ty) || nav::model().is_subtype(ty, t),
                            _ => true,
                        });
                        if !fits {
                            return Err(FhirPathError::semantic(
                                pos,
                                format!("'{name}' does not match the context type {root}"),
                            ));
                        }
                    }
                    return Ok((Node { pos, op: Op::TypeName(TypeTest::Fhir(ty)) }, SType::fhir(ty)));
                }
                let (step, t) = self.child(name, this, pos)?;
                Ok((Node { pos, op: Op::Child(None, step) }, t))
            }
            ExprKind::Member(target, name) => {
                let (t, tt) = self.expr(target, this)?;
                let (step, rt) = self.child(name, &tt, pos)?;
                Ok((Node { pos, op: Op::Child(Some(Box::new(t)), step) }, rt))
            }
            ExprKind::Indexer(t, i) => {
                let (tn, tt) = self.expr(t, this)?;
                if self.check_ordered && tt.unordered {
                    return Err(FhirPathError::semantic(pos, "indexing an unordered collection"));
                }
                let (inode, _) = self.expr(i, this)?;
                Ok((
                    Node { pos, op: Op::Indexer(Box::new(tn), Box::new(inode)) },
                    SType { kinds: tt.kinds, unordered: false },
                ))
            }
            ExprKind::Unary(op, inner) => {
                let (n, t) = self.expr(inner, this)?;
                if *op == UnaryOp::Plus {
                    return Ok((n, t));
                }
                if let Some(kinds) = t.value_kinds() {
                    if !kinds.is_empty() && !kinds.iter().any(|k| numeric(*k) || *k == VK::Qty) {
                        return Err(FhirPathError::semantic(pos, "unary minus needs a number or quantity"));
                    }
                }
                // Fold `-1` into a literal: the common case, and keeps literals literal.
                if let Op::Literal(item) = &n.op {
                    let folded = match item {
                        Item::Integer(i) => Some(Item::Integer(-i)),
                        Item::Long(i) => Some(Item::Long(-i)),
                        Item::Decimal(d) => Some(Item::Decimal(d.neg())),
                        Item::Quantity(q) => {
                            Some(Item::Quantity(Arc::new(Quantity { value: q.value.neg(), unit: q.unit.clone() })))
                        }
                        _ => None,
                    };
                    if let Some(f) = folded {
                        return Ok((Node { pos, op: Op::Literal(f) }, t));
                    }
                }
                Ok((Node { pos, op: Op::Neg(Box::new(n)) }, t))
            }
            ExprKind::Binary(..) => self.chain(e, this),
            ExprKind::Is(inner, ts) => {
                let (n, _) = self.expr(inner, this)?;
                let tt = resolve_type(ts, pos)?;
                Ok((Node { pos, op: Op::Typed(Some(Box::new(n)), Func::Is, tt) }, SType::sys(SysType::Boolean)))
            }
            ExprKind::As(inner, ts) => {
                let (n, _) = self.expr(inner, this)?;
                let tt = resolve_type(ts, pos)?;
                Ok((Node { pos, op: Op::Typed(Some(Box::new(n)), Func::As, tt) }, type_of_test(tt)))
            }
            ExprKind::Call { target, name, args } => self.call(target.as_deref(), name, args, this, pos),
        }
    }

    fn child(&self, name: &str, input: &SType, pos: usize) -> Result<(ChildStep, SType)> {
        let mut kinds = Vec::new();
        let mut unknown = false;
        let mut hint = None;
        let mut described = Vec::new();
        for k in &input.kinds {
            match *k {
                Kind::Any => unknown = true,
                Kind::TypeInfo => {
                    if name == "name" || name == "namespace" {
                        kinds.push(Kind::Sys(SysType::String));
                    }
                }
                Kind::Sys(_) => described.push(k),
                Kind::Fhir(ty, path) => {
                    described.push(k);
                    if nav::is_primitive(ty) {
                        match name {
                            "extension" => kinds.push(Kind::Fhir("Extension", "Extension")),
                            "id" => kinds.push(Kind::Fhir("string", "string")),
                            _ => {}
                        }
                        continue;
                    }
                    match nav::child_info(path, name) {
                        Some(info) => {
                            for c in &info.candidates {
                                let kk = if c.ty == "Resource" || c.ty == "DomainResource" {
                                    Kind::Any
                                } else {
                                    Kind::Fhir(c.ty, c.path)
                                };
                                if !kinds.contains(&kk) {
                                    kinds.push(kk);
                                }
                            }
                            if hint.is_none() {
                                hint = Some((path, info));
                            }
                        }
                        None => {
                            // Abstract resource types: the concrete type decides.
                            if matches!(ty, "Resource" | "DomainResource") {
                                unknown = true;
                            }
                        }
                    }
                }
            }
        }
        if !unknown && kinds.is_empty() && !described.is_empty() {
            let types: Vec<String> = described
                .iter()
                .map(|k| match k {
                    Kind::Fhir(t, p) if t != p => format!("{p} ({t})"),
                    Kind::Fhir(t, _) => t.to_string(),
                    Kind::Sys(s) => format!("System.{}", s.name()),
                    _ => "?".into(),
                })
                .collect();
            return Err(FhirPathError::semantic(pos, format!("'{name}' is not an element of {}", types.join(" | "))));
        }
        let t = if unknown { SType::any() } else { SType { kinds, unordered: false } };
        Ok((ChildStep { name: name.to_string(), hint }, t))
    }

    fn chain(&self, e: &Expr, this: &SType) -> Result<(Node, SType)> {
        let mut rights = Vec::new();
        let mut cur = e;
        while let ExprKind::Binary(op, l, r) = &cur.kind {
            rights.push((*op, &**r, cur.pos));
            cur = l;
        }
        let (first, mut t) = self.expr(cur, this)?;
        let mut rest = Vec::with_capacity(rights.len());
        for (op, r, pos) in rights.into_iter().rev() {
            let (rn, rt) = self.expr(r, this)?;
            t = binary_type(op, &t, &rt, pos)?;
            rest.push((op, rn, pos));
        }
        Ok((Node { pos: e.pos, op: Op::Chain(Box::new(first), rest) }, t))
    }
    fn call(
        &self,
        target: Option<&Expr>,
        name: &str,
        args: &[Expr],
        this: &SType,
        pos: usize,
    ) -> Result<(Node, SType)> {
        let (f, min, max, mode) =
            func::lookup(name).ok_or_else(|| FhirPathError::semantic(pos, format!("unknown function '{name}'")))?;
        if args.len() < min || args.len() > max {
            return Err(FhirPathError::semantic(pos, format!("wrong number of arguments for {name}()")));
        }
        let (input, it) = match target {
            Some(t) => {
                let (n, t) = self.expr(t, this)?;
                (Some(Box::new(n)), t)
            }
            None => (None, SType { kinds: this.kinds.clone(), unordered: false }),
        };
        if self.check_ordered && it.unordered && f.needs_order() {
            return Err(FhirPathError::semantic(pos, format!("{name}() needs an ordered input")));
        }
        if f.wants_string_input() {
            if let Some(k) = it.value_kinds() {
                if !k.is_empty() && !k.contains(&VK::Str) {
                    return Err(FhirPathError::semantic(pos, format!("{name}() needs a string input")));
                }
            }
        }
        if mode == ArgMode::TypeArg {
            let ts = expr_to_type(&args[0])
                .ok_or_else(|| FhirPathError::semantic(args[0].pos, format!("{name}() needs a type name")))?;
            let tt = resolve_type(&ts, args[0].pos)?;
            let t = if f == Func::Is { SType::sys(SysType::Boolean) } else { type_of_test(tt) };
            return Ok((Node { pos, op: Op::Typed(input, f, tt) }, t));
        }
        let scope = match (mode, f) {
            (ArgMode::Lambda, Func::Iif) if target.is_none() => this.clone(),
            (ArgMode::Lambda, _) => SType { kinds: it.kinds.clone(), unordered: false },
            _ => this.clone(),
        };
        let mut nodes = Vec::with_capacity(args.len());
        let mut types = Vec::with_capacity(args.len());
        for a in args {
            // sort(-key): the minus marks a descending key, whatever the key's type.
            if let (Func::Sort, ExprKind::Unary(UnaryOp::Minus, inner)) = (f, &a.kind) {
                let (n, t) = self.expr(inner, &scope)?;
                nodes.push(Node { pos: a.pos, op: Op::Neg(Box::new(n)) });
                types.push(t);
                continue;
            }
            let (n, t) = self.expr(a, &scope)?;
            nodes.push(n);
            types.push(t);
        }
        if f == Func::Iif {
            if let Some(k) = types[0].value_kinds() {
                if !k.is_empty() && !k.contains(&VK::Bool) {
                    return Err(FhirPathError::semantic(args[0].pos, "iif() criterion must be a boolean"));
                }
            }
        }
        let t = result_type(f, &it, &types);
        Ok((Node { pos, op: Op::Call(input, f, nodes) }, t))
    }
}

/// Checks that the operator can apply to some pair of operand types; gives the result type.
fn binary_type(op: BinOp, lt: &SType, rt: &SType, pos: usize) -> Result<SType> {
    if let (Some(a), Some(b)) = (lt.value_kinds(), rt.value_kinds()) {
        if !a.is_empty() && !b.is_empty() && !a.iter().any(|x| b.iter().any(|y| op_applies(op, *x, *y))) {
            return Err(FhirPathError::semantic(
                pos,
                format!("operator '{}' cannot apply to these operand types", op.symbol()),
            ));
        }
    }
    use BinOp::*;
    Ok(match op {
        Union => lt.union(rt),
        Eq | Ne | Equiv | NotEquiv | Lt | Gt | Le | Ge | In | Contains | And | Or | Xor | Implies => {
            SType::sys(SysType::Boolean)
        }
        Concat => SType::sys(SysType::String),
        IntDiv => SType::sys(SysType::Integer),
        _ => match (lt.value_kinds(), rt.value_kinds()) {
            (Some(a), Some(b)) if a.iter().all(|k| *k == VK::Int) && b.iter().all(|k| *k == VK::Int) && op != Div => {
                SType::sys(SysType::Integer)
            }
            (Some(a), _) if a.iter().all(|k| *k == VK::Str) && op == Add => SType::sys(SysType::String),
            _ => SType::any(),
        },
    })
}

fn type_of_test(t: TypeTest) -> SType {
    match t {
        TypeTest::System(s) => SType::sys(s),
        TypeTest::Fhir(f) => SType::fhir(f),
        TypeTest::Both(s, f) => SType { kinds: vec![Kind::Sys(s), Kind::Fhir(f, f)], unordered: false },
        TypeTest::Never => SType::empty(),
    }
}

fn result_type(f: Func, input: &SType, args: &[SType]) -> SType {
    use Func::*;
    let same = SType { kinds: input.kinds.clone(), unordered: input.unordered };
    match f {
        Empty | Exists | All | AllTrue | AnyTrue | AllFalse | AnyFalse | SubsetOf | SupersetOf | IsDistinct | Not
        | HasValue | StartsWith | EndsWith | Contains | Matches | MatchesFull | ConvertsToBoolean
        | ConvertsToInteger | ConvertsToDecimal | ConvertsToString | ConvertsToDate | ConvertsToDateTime
        | ConvertsToTime | ConvertsToQuantity | ConvertsToLong | Comparable | MemberOf | ConformsTo | HtmlChecks
        | ToBoolean | HasExtension => SType::sys(SysType::Boolean),
        Count | IndexOf | LastIndexOf | Length | Precision | ToInteger | Ceiling | Floor | Truncate | YearOf
        | MonthOf | DayOf | HourOf | MinuteOf | SecondOf | MillisecondOf => SType::sys(SysType::Integer),
        ToLong => SType::sys(SysType::Long),
        TimezoneOffsetOf => SType::sys(SysType::Decimal),
        DateOf => SType::sys(SysType::Date),
        TimeOf => SType::sys(SysType::Time),
        Min | Max => SType { kinds: input.kinds.clone(), unordered: false },
        Where | Distinct | Single | First | Last | Tail | Skip | Take | Intersect | Exclude | Trace | Sort
        | LowBoundary | HighBoundary | Abs | GetValue => same,
        Union | Combine => input.union(&args[0]),
        Iif => match args.get(2) {
            Some(e) => args[1].union(e),
            None => args[1].clone(),
        },
        Select => args[0].clone(),
        ToString | Substring | Upper | Lower | Replace | ReplaceMatches | Trim | Encode | Decode | Escape
        | Unescape | Join | ToChars | Split => SType::sys(SysType::String),
        ToDecimal | Exp | Ln | Log | Sqrt | Round => SType::sys(SysType::Decimal),
        ToDate | Today => SType::sys(SysType::Date),
        ToDateTime | Now => SType::sys(SysType::DateTime),
        ToTime | TimeOfDay => SType::sys(SysType::Time),
        ToQuantity => SType::sys(SysType::Quantity),
        Type => SType { kinds: vec![Kind::TypeInfo], unordered: false },
        Extension => SType::fhir("Extension"),
        Children | Descendants => SType { kinds: vec![Kind::Any], unordered: true },
        Repeat | RepeatAll | Aggregate | Resolve | Power | OfType | Is | As | Sum | Avg | Coalesce => SType::any(),
    }
}
