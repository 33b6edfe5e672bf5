//! FHIRPath for Tsunagu: parses FHIRPath (normative N1, the FHIR R4 additions —
//! `extension()`, `resolve()`, `ofType()`, `is`/`as` with FHIR types, `memberOf()`,
//! `conformsTo()`, `hasValue()`, `htmlChecks()`, `%resource`, `%ucum`, `%vs-…`, … — and
//! the FHIRPath 3.0 additions: Long (`2L`), `yearOf()`…`timeOf()`, `sum()`/`min()`/`max()`/
//! `avg()`, `lastIndexOf()`, `repeatAll()`, `coalesce()`, `sort()`, boundaries, …),
//! type-checks expressions against the R4 model, and evaluates them over JSON resources.
//! JSON that is not a FHIR resource is navigated untyped (its values are System values);
//! [`CompileOptions::strict`] turns on the specification's strict mode.
//!
//! This crate owns the language: syntax, typing rules, evaluation semantics, exact decimals,
//! partial dates, quantities with UCUM conversion. It never does I/O and knows nothing of
//! HTTP, storage or terminology servers: whatever needs the outside world (`resolve()`,
//! `memberOf()`, `conformsTo()`, `trace()` output) goes through the caller's [`Hooks`] and
//! [`EvalContext`].
//!
//! ```
//! let expr = tsunagu_fhirpath::compile_for("Patient", "Patient.name.given.first()").unwrap();
//! let patient = serde_json::json!({"resourceType": "Patient", "name": [{"given": ["Ann"]}]});
//! let items = expr.evaluate(&patient).unwrap();
//! assert_eq!(items[0].as_str(), Some("Ann"));
//! ```

mod ast;
mod budget;
mod compile;
mod datetime;
mod decimal;
mod error;
mod eval;
mod fastpath;
mod func;
mod functions;
mod item;
mod lexer;
mod nav;
mod ops;
mod parser;
mod quantity;
mod regex_cache;

pub use ast::{BinOp, Expr, ExprKind, TypeSpec, UnaryOp};
pub use budget::set_step_limit;
pub use datetime::{DateTime, Precision, Time};
pub use decimal::Decimal;
pub use error::{ErrorKind, FhirPathError, Result};
pub use eval::{EvalContext, Hooks};
pub use item::{Item, Node, PathSegment, TypeInfo};
pub use quantity::Quantity;
pub use regex_cache::{regex_cache_bytes_in_use, set_regex_limits};

use serde_json::Value;
use std::cell::Cell;

/// Compile-time settings.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// The FHIR type of the evaluation root (`Patient`); enables checking of paths against
    /// the model. `None` compiles for any input.
    pub root_type: Option<String>,
    /// Reject order-dependent functions (`first()`, `skip()`, `[n]`) applied to
    /// `children()`/`descendants()`, whose order is not defined.
    pub check_ordered_functions: bool,
    /// Strict mode (FHIRPath §"strict"): ordered functions on unordered collections are
    /// rejected (as `check_ordered_functions`), and at run time a name the model does not
    /// know on a typed node is an error instead of an empty result.
    pub strict: bool,
}

/// A compiled expression: parse and checks done once, evaluate many times. `Send + Sync`.
#[derive(Debug)]
pub struct Expression {
    source: String,
    ast: Expr,
    plan: compile::Node,
    fast: Option<fastpath::FastPath>,
    root: Option<&'static str>,
    strict: bool,
}

/// Compiles an expression for any input. Paths are checked against the model only from a
/// leading type name (`Patient.nmae` is rejected; `nmae` alone just finds nothing), and
/// operators and functions wherever operand types are known.
pub fn compile(expr: &str) -> Result<Expression> {
    compile_with(expr, &CompileOptions::default())
}

/// Compiles for inputs of a known FHIR type, checking element names and types against the
/// R4 model (`Patient.nmae` is rejected).
pub fn compile_for(root_type: &str, expr: &str) -> Result<Expression> {
    compile_with(expr, &CompileOptions { root_type: Some(root_type.to_string()), ..Default::default() })
}

pub fn compile_with(expr: &str, opts: &CompileOptions) -> Result<Expression> {
    let ast = parser::parse(expr)?;
    let root = match &opts.root_type {
        Some(t) => Some(
            nav::type_name(t)
                .ok_or_else(|| FhirPathError::Semantic { pos: 0, msg: format!("unknown root type '{t}'") })?,
        ),
        None => None,
    };
    let check_ordered = opts.check_ordered_functions || opts.strict;
    let plan = compile::Compiler { root, check_ordered }.compile(&ast)?;
    let fast = fastpath::FastPath::for_plan(&plan);
    let plan = compile::optimize(plan);
    Ok(Expression { source: expr.to_string(), ast, plan, fast, root, strict: opts.strict })
}

/// Parses without compiling (syntax tree, for tools and round-trip printing).
pub fn parse(expr: &str) -> Result<Expr> {
    parser::parse(expr)
}

impl Expression {
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn ast(&self) -> &Expr {
        &self.ast
    }

    /// Evaluates with `resource` as context, `%resource` and `%context`; no hooks.
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Result<Vec<Item<'a>>> {
        let root = Item::Node(Node::resource_expecting(resource, self.root));
        self.run(root.clone(), root, None)
    }

    /// Evaluates with hooks, variables and settings from `ctx`. Results may borrow from
    /// the context (resources returned by the resolve hook are kept there).
    pub fn evaluate_with<'a, 'c: 'a>(&self, resource: &'a Value, ctx: &'a EvalContext<'c>) -> Result<Vec<Item<'a>>> {
        let root = Item::Node(Node::resource_expecting(resource, self.root));
        self.run(root.clone(), root, Some(ctx))
    }

    /// Evaluates on an item (e.g. a node found by another expression); `resource` is the
    /// resource containing it (`%resource`).
    pub fn evaluate_on<'a, 'c: 'a>(
        &self,
        context: Item<'a>,
        resource: &'a Value,
        ctx: Option<&'a EvalContext<'c>>,
    ) -> Result<Vec<Item<'a>>> {
        self.run(context, Item::Node(Node::resource(resource)), ctx.map(|c| c as &'a EvalContext<'a>))
    }

    /// Evaluates with the general evaluator only (no plain-path shortcut); for differential
    /// tests of the shortcut.
    #[doc(hidden)]
    pub fn evaluate_general<'a>(&self, resource: &'a Value) -> Result<Vec<Item<'a>>> {
        let root = Item::Node(Node::resource_expecting(resource, self.root));
        self.run_general(root.clone(), root, None, true)
    }

    /// Whether evaluation may take the plain-path shortcut.
    #[doc(hidden)]
    pub fn has_shortcut(&self) -> bool {
        self.fast.is_some()
    }

    fn run<'a>(
        &self,
        context: Item<'a>,
        resource: Item<'a>,
        ctx: Option<&'a EvalContext<'a>>,
    ) -> Result<Vec<Item<'a>>> {
        if let (Some(fast), Item::Node(n)) = (&self.fast, &context) {
            if let Some(items) = fast.run(n) {
                return Ok(items);
            }
        }
        self.run_general(context, resource, ctx, false)
    }

    fn run_general<'a>(
        &self,
        context: Item<'a>,
        resource: Item<'a>,
        ctx: Option<&'a EvalContext<'a>>,
        general_only: bool,
    ) -> Result<Vec<Item<'a>>> {
        let env = eval::Env {
            ctx,
            resource,
            context: context.clone(),
            now: Cell::new(None),
            general_only,
            strict: self.strict,
            budget: budget::Budget::new(),
        };
        let this = [context];
        env.eval(&self.plan, eval::Scope { this: &this, index: 0, total: None })
    }

    /// Evaluates and reduces the result to a boolean the way invariants do: empty is
    /// `None`, a single boolean is itself, anything else is an error.
    pub fn evaluate_bool(&self, resource: &Value) -> Result<Option<bool>> {
        let items = self.evaluate(resource)?;
        match items.as_slice() {
            [] => Ok(None),
            [i] => match i {
                Item::Boolean(b) => Ok(Some(*b)),
                Item::Node(_) => match i.json() {
                    Some(Value::Bool(b)) => Ok(Some(*b)),
                    _ => Ok(Some(true)),
                },
                _ => Ok(Some(true)),
            },
            _ => Err(FhirPathError::Execution { pos: 0, msg: "expected a single boolean".into() }),
        }
    }
}

/// The CLI/JSON rendering of a result: `[{"type": "boolean", "value": true}, …]`. System
/// types use FHIRPath's lower-case names (`Quantity` excepted); FHIR nodes give their FHIR
/// type and their JSON.
pub fn to_json_output(items: &[Item]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|i| {
                let mut m = serde_json::Map::new();
                m.insert("type".into(), Value::String(i.type_name().into_owned()));
                m.insert("value".into(), i.to_json());
                Value::Object(m)
            })
            .collect(),
    )
}
