//! The FHIRPath of a view: checked against the view's constants, with SQL on FHIR's own
//! functions lowered to plain FHIRPath, compiled once.
//!
//! `getResourceKey()` and `getReferenceKey([type])` belong to SQL on FHIR, not to FHIRPath,
//! and both are defined by the data alone (the resource id; the id part of a literal
//! reference). They are rewritten here into ordinary FHIRPath over `id` and `reference`
//! before compiling, so the FHIRPath crate stays the language and nothing more.

use crate::error::{Result, ViewError};
use serde_json::Value;
use tsunagu_fhirpath::{BinOp, EvalContext, Expr, ExprKind, Expression, Item};

/// Variables FHIRPath itself (or FHIR's use of it) defines; anything else after `%` must
/// be a constant of the view.
const BUILTIN_VARIABLES: &[&str] = &["resource", "rootResource", "context", "ucum", "sct", "loinc"];

/// The variable SQL on FHIR defines: the index of the current forEach/repeat item.
pub(crate) const ROW_INDEX: &str = "rowIndex";

/// Matches every string: group 1 is the id part of a literal reference
/// `[base/]Type/id[/_history/v]` (to `type_name` only, when given), and is unset for
/// anything else, so one `replaceMatches` both extracts and filters. The character class
/// follows FHIR's `id` type.
fn reference_id_pattern(type_name: Option<&str>) -> String {
    let ty = type_name.unwrap_or("[A-Za-z]+");
    format!("^(?:(?:.*/)?{ty}/([-A-Za-z0-9.]{{1,64}})(?:/_history/.*)?|.*)$")
}

thread_local! {
    /// When evaluations on this thread stop (see [`with_deadline`]).
    static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every expression evaluated on this thread (by any view) answering
/// [`ViewError::TimeUp`] once `deadline` has passed: one resource may ask for many rows,
/// each with several evaluations, so a time limit checked between resources is not enough.
pub fn with_deadline<T>(deadline: Option<std::time::Instant>, f: impl FnOnce() -> T) -> T {
    let before = DEADLINE.replace(deadline);
    let out = f();
    DEADLINE.set(before);
    out
}

/// A compiled expression of the view and its text (for error messages).
#[derive(Debug)]
pub(crate) struct ViewExpr {
    pub source: String,
    compiled: Expression,
    pub uses_row_index: bool,
}

impl ViewExpr {
    /// Parses, checks and compiles `source`. `root_type` is the resource type when the
    /// expression is evaluated on the resource itself (paths are then checked against the
    /// model); `None` inside forEach and repeat, where the focus is an element.
    pub fn compile(source: &str, at: &str, constants: &[String], root_type: Option<&str>) -> Result<ViewExpr> {
        let expr_error = |e| ViewError::Expression { at: at.to_string(), expr: source.to_string(), source: e };
        let mut ast = tsunagu_fhirpath::parse(source).map_err(expr_error)?;
        let mut uses_row_index = false;
        check_variables(&ast, constants, &mut uses_row_index).map_err(|name| ViewError::UndefinedConstant {
            at: at.into(),
            expr: source.into(),
            name,
        })?;
        lower_key_functions(&mut ast).map_err(|reason| ViewError::invalid(at, reason))?;
        let text = ast.to_string();
        let compiled = match root_type {
            Some(t) => tsunagu_fhirpath::compile_for(t, &text),
            None => tsunagu_fhirpath::compile(&text),
        }
        .map_err(expr_error)?;
        Ok(ViewExpr { source: source.to_string(), compiled, uses_row_index })
    }

    pub fn evaluate<'a>(
        &self,
        focus: Item<'a>,
        resource: &'a Value,
        ctx: &'a EvalContext<'a>,
    ) -> Result<Vec<Item<'a>>> {
        if DEADLINE.get().is_some_and(|d| std::time::Instant::now() > d) {
            return Err(ViewError::TimeUp);
        }
        self.compiled
            .evaluate_on(focus, resource, Some(ctx))
            .map_err(|source| ViewError::Evaluation { expr: self.source.clone(), source })
    }
}

/// Every `%name` must be a constant, `%rowIndex` or a FHIRPath variable; `Err` is the first
/// unknown name.
fn check_variables(e: &Expr, constants: &[String], uses_row_index: &mut bool) -> Result<(), String> {
    if let ExprKind::Env(name) = &e.kind {
        if name == ROW_INDEX {
            *uses_row_index = true;
        } else if !(constants.iter().any(|c| c == name)
            || BUILTIN_VARIABLES.contains(&name.as_str())
            || name.starts_with("vs-")
            || name.starts_with("ext-"))
        {
            return Err(name.clone());
        }
    }
    for child in children(e) {
        check_variables(child, constants, uses_row_index)?;
    }
    Ok(())
}

fn children(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Member(t, _) | ExprKind::Unary(_, t) | ExprKind::Is(t, _) | ExprKind::As(t, _) => vec![t],
        ExprKind::Call { target, args, .. } => target.iter().map(|t| &**t).chain(args.iter()).collect(),
        ExprKind::Indexer(a, b) | ExprKind::Binary(_, a, b) => vec![a, b],
        _ => vec![],
    }
}

fn children_mut(e: &mut Expr) -> Vec<&mut Expr> {
    match &mut e.kind {
        ExprKind::Member(t, _) | ExprKind::Unary(_, t) | ExprKind::Is(t, _) | ExprKind::As(t, _) => vec![t],
        ExprKind::Call { target, args, .. } => target.iter_mut().map(|t| &mut **t).chain(args.iter_mut()).collect(),
        ExprKind::Indexer(a, b) | ExprKind::Binary(_, a, b) => vec![a, b],
        _ => vec![],
    }
}

fn node(pos: usize, kind: ExprKind) -> Expr {
    Expr { pos, kind }
}

fn call(pos: usize, target: Option<Expr>, name: &str, args: Vec<Expr>) -> Expr {
    node(pos, ExprKind::Call { target: target.map(Box::new), name: name.to_string(), args })
}

/// Rewrites `X.getResourceKey()` to `X.id` and `X.getReferenceKey([T])` to the id part of
/// `X.reference` (only references to `T` when given), bottom-up.
fn lower_key_functions(e: &mut Expr) -> Result<(), String> {
    for child in children_mut(e) {
        lower_key_functions(child)?;
    }
    let pos = e.pos;
    let ExprKind::Call { target, name, args } = &mut e.kind else { return Ok(()) };
    let lowered = match name.as_str() {
        "getResourceKey" => {
            if !args.is_empty() {
                return Err("getResourceKey() takes no arguments".into());
            }
            match target.take() {
                Some(t) => node(pos, ExprKind::Member(t, "id".into())),
                None => node(pos, ExprKind::Ident("id".into())),
            }
        }
        "getReferenceKey" => {
            let type_name = match args.as_slice() {
                [] => None,
                [Expr { kind: ExprKind::Ident(t), .. }] if is_type_name(t) => Some(t.clone()),
                _ => return Err("getReferenceKey() takes at most one argument, a resource type name".into()),
            };
            let reference = match target.take() {
                Some(t) => node(pos, ExprKind::Member(t, "reference".into())),
                None => node(pos, ExprKind::Ident("reference".into())),
            };
            let pattern = reference_id_pattern(type_name.as_deref());
            let string = |s: &str| node(pos, ExprKind::String(s.to_string()));
            // `reference.select(replaceMatches(P, '$1')).where($this != '')`: one regex pass
            // per reference; references that are not to a (matching) resource become ''.
            let id = call(pos, None, "replaceMatches", vec![string(&pattern), string("$1")]);
            let ids = call(pos, Some(reference), "select", vec![id]);
            let this = Box::new(node(pos, ExprKind::This));
            let non_empty = node(pos, ExprKind::Binary(BinOp::Ne, this, Box::new(string(""))));
            call(pos, Some(ids), "where", vec![non_empty])
        }
        _ => return Ok(()),
    };
    *e = lowered;
    Ok(())
}

/// A resource type name as it may appear in a pattern: letters only.
fn is_type_name(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_uppercase()) && t.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lowered(src: &str) -> String {
        let mut ast = tsunagu_fhirpath::parse(src).unwrap();
        lower_key_functions(&mut ast).unwrap();
        ast.to_string()
    }

    fn eval_strings(src: &str, resource: &Value) -> Vec<String> {
        let e = ViewExpr::compile(src, "test", &[], None).unwrap();
        let ctx = EvalContext::new();
        let items = e.evaluate(Item::Node(tsunagu_fhirpath::Node::resource(resource)), resource, &ctx).unwrap();
        items.iter().map(|i| i.to_text().unwrap()).collect()
    }

    #[test]
    fn resource_key_is_the_id() {
        assert_eq!(lowered("getResourceKey()"), "id");
        assert_eq!(lowered("%resource.getResourceKey()"), "%resource.id");
        let p = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(eval_strings("getResourceKey()", &p), ["p1"]);
    }

    #[test]
    fn reference_key_is_the_id_part_of_the_reference() {
        let o = json!({"resourceType": "Observation", "id": "o1",
            "subject": {"reference": "http://example.org/fhir/Patient/p9/_history/2"},
            "performer": [{"reference": "Practitioner/pr1"}, {"reference": "#contained"}, {"display": "x"}]});
        assert_eq!(eval_strings("subject.getReferenceKey()", &o), ["p9"]);
        assert_eq!(eval_strings("subject.getReferenceKey(Patient)", &o), ["p9"]);
        assert!(eval_strings("subject.getReferenceKey(Group)", &o).is_empty());
        assert_eq!(eval_strings("performer.getReferenceKey()", &o), ["pr1"]);
        let two = json!({"resourceType": "Patient", "id": "p1",
            "link": [{"other": {"reference": "Patient/a"}}, {"other": {"reference": "RelatedPerson/b"}}]});
        assert_eq!(eval_strings("link.other.getReferenceKey()", &two), ["a", "b"]);
        assert_eq!(eval_strings("link.other.getReferenceKey(RelatedPerson)", &two), ["b"]);
    }

    #[test]
    fn unknown_constants_are_refused_known_ones_pass() {
        let err = ViewExpr::compile("name.where(use = %nope)", "select[0]", &["use".into()], None).unwrap_err();
        assert!(matches!(err, ViewError::UndefinedConstant { ref name, .. } if name == "nope"), "{err}");
        assert!(ViewExpr::compile("name.where(use = %use)", "x", &["use".into()], None).is_ok());
        assert!(ViewExpr::compile("%rowIndex + 1", "x", &[], None).unwrap().uses_row_index);
    }

    #[test]
    fn bad_key_function_arguments_are_refused() {
        assert!(ViewExpr::compile("getResourceKey(1)", "x", &[], None).is_err());
        assert!(ViewExpr::compile("subject.getReferenceKey('Patient')", "x", &[], None).is_err());
    }
}
