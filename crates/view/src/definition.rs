//! Reading and checking a ViewDefinition: everything wrong with a view is found here,
//! before any resource is seen, and the result is a [`View`] ready to evaluate.

use crate::constant::{parse_constant, Constant};
use crate::error::{Result, ViewError};
use crate::expression::ViewExpr;
use crate::row::{Column, ColumnType};
use serde_json::{Map, Value};

/// Entry point: `ViewDefinition::from_json(&json)` reads and checks a view.
pub struct ViewDefinition;

impl ViewDefinition {
    /// Reads a ViewDefinition resource (or a bare view object without `resourceType`).
    pub fn from_json(v: &Value) -> Result<View> {
        View::from_json(v)
    }
}

/// The publication status of a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Draft,
    Active,
    Retired,
    Unknown,
}

/// A checked, compiled view. `Send + Sync`: evaluate it from as many threads as wanted.
#[derive(Debug)]
pub struct View {
    pub(crate) resource: String,
    pub(crate) name: Option<String>,
    pub(crate) status: Option<Status>,
    pub(crate) constants: Vec<Constant>,
    pub(crate) wheres: Vec<ViewExpr>,
    /// The top-level `select[]`, as the nested selects of a select with nothing else.
    pub(crate) root: Select,
    pub(crate) columns: Vec<Column>,
    pub(crate) uses_row_index: bool,
    /// Most rows one resource may give (see [`View::with_max_rows_per_resource`]).
    pub(crate) max_rows_per_resource: usize,
}

/// Default of [`View::with_max_rows_per_resource`]: nested `forEach`es cross their results,
/// so a small resource can ask for billions of rows.
pub const DEFAULT_MAX_ROWS_PER_RESOURCE: usize = 100_000;

#[derive(Debug)]
pub(crate) enum Iteration {
    /// Evaluate on the parent's focus.
    None,
    ForEach(ViewExpr),
    ForEachOrNull(ViewExpr),
    /// Follow each path recursively, producing every node reached (depth first).
    Repeat(Vec<ViewExpr>),
}

#[derive(Debug)]
pub(crate) struct Select {
    pub iteration: Iteration,
    pub columns: Vec<ColumnExpr>,
    pub selects: Vec<Select>,
    pub union_all: Vec<Select>,
}

#[derive(Debug)]
pub(crate) struct ColumnExpr {
    /// Position of the column in the view's output.
    pub slot: usize,
    pub expr: ViewExpr,
}

/// Output names are SQL-friendly identifiers, as the specification requires.
pub(crate) fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl View {
    /// Bounds the rows one resource may give (checked before a cross product is built);
    /// past it, evaluation fails with [`ViewError::TooManyRows`](crate::ViewError::TooManyRows).
    pub fn with_max_rows_per_resource(mut self, max: usize) -> View {
        self.max_rows_per_resource = max.max(1);
        self
    }

    pub fn from_json(v: &Value) -> Result<View> {
        let obj = v.as_object().ok_or_else(|| ViewError::invalid("/", "a ViewDefinition must be a JSON object"))?;
        match obj.get("resourceType") {
            None => {}
            Some(Value::String(t)) if t == "ViewDefinition" => {}
            Some(other) => {
                return Err(ViewError::invalid("/resourceType", format!("expected \"ViewDefinition\", found {other}")))
            }
        }
        let resource = match obj.get("resource") {
            Some(Value::String(r)) => r.clone(),
            Some(_) => return Err(ViewError::invalid("/resource", "must be a resource type name")),
            None => return Err(ViewError::invalid("/resource", "is required (the resource type the view reads)")),
        };
        // The model decides whether the type exists: compiling a trivial path for it does.
        tsunagu_fhirpath::compile_for(&resource, "id")
            .map_err(|_| ViewError::invalid("/resource", format!("'{resource}' is not a FHIR R4 resource type")))?;
        let status = match obj.get("status") {
            None => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "draft" => Status::Draft,
                "active" => Status::Active,
                "retired" => Status::Retired,
                "unknown" => Status::Unknown,
                _ => {
                    return Err(ViewError::invalid(
                        "/status",
                        format!("'{s}' is not draft, active, retired or unknown"),
                    ))
                }
            }),
            Some(_) => return Err(ViewError::invalid("/status", "must be a string")),
        };
        let name = match obj.get("name") {
            None => None,
            // The name may become a table name, so it follows the column-name rule.
            Some(Value::String(n)) if is_name(n) => Some(n.clone()),
            Some(_) => {
                return Err(ViewError::invalid(
                    "/name",
                    "must be a name of letters, digits and _ ([A-Za-z][A-Za-z0-9_]*)",
                ))
            }
        };

        let mut constants = Vec::new();
        for (i, c) in array(obj, "constant", "/")?.iter().enumerate() {
            let c = parse_constant(c, &format!("/constant/{i}"))?;
            if constants.iter().any(|k: &Constant| k.name == c.name) {
                return Err(ViewError::invalid(
                    format!("/constant/{i}"),
                    format!("constant '{}' is defined twice", c.name),
                ));
            }
            constants.push(c);
        }
        let constant_names: Vec<String> = constants.iter().map(|c| c.name.clone()).collect();

        let mut b =
            Builder { resource: &resource, constants: &constant_names, columns: Vec::new(), uses_row_index: false };
        let mut wheres = Vec::new();
        for (i, w) in array(obj, "where", "/")?.iter().enumerate() {
            let at = format!("/where/{i}");
            let path = w
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| ViewError::invalid(&at, "a where clause needs a string 'path'"))?;
            wheres.push(b.expr(path, &format!("{at}/path"), true)?);
        }
        let selects = array(obj, "select", "/")?;
        if selects.is_empty() {
            return Err(ViewError::invalid("/select", "at least one select is required"));
        }
        let mut root_selects = Vec::new();
        for (i, s) in selects.iter().enumerate() {
            root_selects.push(b.select(s, &format!("/select/{i}"), true)?);
        }
        let root = Select { iteration: Iteration::None, columns: vec![], selects: root_selects, union_all: vec![] };
        let Builder { columns, uses_row_index, .. } = b;
        Ok(View {
            resource,
            name,
            status,
            constants,
            wheres,
            root,
            columns,
            uses_row_index,
            max_rows_per_resource: DEFAULT_MAX_ROWS_PER_RESOURCE,
        })
    }

    /// The resource type the view reads (`"Patient"`).
    pub fn resource_type(&self) -> &str {
        &self.resource
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn status(&self) -> Option<Status> {
        self.status
    }

    /// The output columns, in output order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

fn array<'v>(obj: &'v Map<String, Value>, key: &str, at: &str) -> Result<&'v [Value]> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ViewError::invalid(format!("{at}{key}"), "must be an array")),
    }
}

/// Walks the select tree, assigning output slots to columns in the specification's order:
/// a select's own columns, then its nested selects, then its unionAll.
struct Builder<'a> {
    resource: &'a str,
    constants: &'a [String],
    columns: Vec<Column>,
    uses_row_index: bool,
}

impl Builder<'_> {
    fn expr(&mut self, source: &str, at: &str, on_resource: bool) -> Result<ViewExpr> {
        let root = on_resource.then_some(self.resource);
        let e = ViewExpr::compile(source, at, self.constants, root)?;
        self.uses_row_index |= e.uses_row_index;
        Ok(e)
    }

    /// `on_resource`: whether this select's focus is the resource itself (not inside a
    /// forEach or repeat), so that its paths can be checked against the model.
    fn select(&mut self, v: &Value, at: &str, on_resource: bool) -> Result<Select> {
        let obj = v.as_object().ok_or_else(|| ViewError::invalid(at, "a select must be an object"))?;
        let string = |key: &str| -> Result<Option<&str>> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(ViewError::invalid(format!("{at}/{key}"), "must be a FHIRPath string")),
            }
        };
        let (for_each, or_null) = (string("forEach")?, string("forEachOrNull")?);
        let repeat = match obj.get("repeat") {
            None => None,
            Some(Value::Array(paths)) if !paths.is_empty() => Some(paths),
            Some(_) => {
                return Err(ViewError::invalid(format!("{at}/repeat"), "must be a non-empty array of FHIRPath strings"))
            }
        };
        if [for_each.is_some(), or_null.is_some(), repeat.is_some()].iter().filter(|b| **b).count() > 1 {
            return Err(ViewError::invalid(at, "only one of forEach, forEachOrNull and repeat may be given"));
        }
        let iteration = if let Some(p) = for_each {
            Iteration::ForEach(self.expr(p, &format!("{at}/forEach"), on_resource)?)
        } else if let Some(p) = or_null {
            Iteration::ForEachOrNull(self.expr(p, &format!("{at}/forEachOrNull"), on_resource)?)
        } else if let Some(paths) = repeat {
            let mut exprs = Vec::new();
            for (i, p) in paths.iter().enumerate() {
                let p_at = format!("{at}/repeat/{i}");
                let p = p.as_str().ok_or_else(|| ViewError::invalid(&p_at, "must be a FHIRPath string"))?;
                // Repeated paths run on the focus and on every node they reach.
                exprs.push(self.expr(p, &p_at, false)?);
            }
            Iteration::Repeat(exprs)
        } else {
            Iteration::None
        };
        let inner_on_resource = on_resource && matches!(iteration, Iteration::None);

        let (columns_json, selects_json, union_json) = (
            array(obj, "column", &format!("{at}/"))?,
            array(obj, "select", &format!("{at}/"))?,
            array(obj, "unionAll", &format!("{at}/"))?,
        );
        if columns_json.is_empty() && selects_json.is_empty() && union_json.is_empty() {
            return Err(ViewError::invalid(at, "a select needs at least one of column, select or unionAll"));
        }
        let mut columns = Vec::new();
        for (i, c) in columns_json.iter().enumerate() {
            columns.push(self.column(c, &format!("{at}/column/{i}"), inner_on_resource)?);
        }
        let mut selects = Vec::new();
        for (i, s) in selects_json.iter().enumerate() {
            selects.push(self.select(s, &format!("{at}/select/{i}"), inner_on_resource)?);
        }
        let union_all = self.union_all(union_json, at, inner_on_resource)?;
        Ok(Select { iteration, columns, selects, union_all })
    }

    /// Every branch of a unionAll must give the same columns in the same order; the first
    /// branch takes the slots, later branches fill the same ones.
    fn union_all(&mut self, branches: &[Value], at: &str, on_resource: bool) -> Result<Vec<Select>> {
        let mut out = Vec::new();
        let start = self.columns.len();
        let mut first_names: Vec<String> = Vec::new();
        for (i, b) in branches.iter().enumerate() {
            let b_at = format!("{at}/unionAll/{i}");
            if i == 0 {
                out.push(self.select(b, &b_at, on_resource)?);
                first_names = self.columns[start..].iter().map(|c| c.name.clone()).collect();
                continue;
            }
            // Build the branch with the first branch's columns set aside, so that it takes
            // the same slots and its names are checked only against the rest of the view.
            let first = self.columns.split_off(start);
            let sel = self.select(b, &b_at, on_resource)?;
            let branch = self.columns.split_off(start);
            let names: Vec<&str> = branch.iter().map(|c| c.name.as_str()).collect();
            if names != first_names {
                return Err(ViewError::invalid(
                    b_at,
                    format!(
                        "unionAll branches must have the same columns in the same order: [{}] vs [{}]",
                        first_names.join(", "),
                        names.join(", ")
                    ),
                ));
            }
            if let Some(c) = branch.iter().zip(&first).find(|(c, f)| {
                let kinds_differ = c.kind != f.kind && c.kind != ColumnType::Any && f.kind != ColumnType::Any;
                kinds_differ || c.collection != f.collection
            }) {
                return Err(ViewError::invalid(
                    &b_at,
                    format!("column '{}' differs in type or collection from the first unionAll branch", c.0.name),
                ));
            }
            self.columns.extend(first);
            out.push(sel);
        }
        Ok(out)
    }

    fn column(&mut self, v: &Value, at: &str, on_resource: bool) -> Result<ColumnExpr> {
        let obj = v.as_object().ok_or_else(|| ViewError::invalid(at, "a column must be an object"))?;
        let name = match obj.get("name") {
            Some(Value::String(n)) if is_name(n) => n.clone(),
            Some(Value::String(n)) => {
                return Err(ViewError::invalid(
                    format!("{at}/name"),
                    format!("'{n}' is not a valid column name ([A-Za-z][A-Za-z0-9_]*)"),
                ))
            }
            _ => return Err(ViewError::invalid(at, "a column needs a string 'name'")),
        };
        if self.columns.iter().any(|c| c.name == name) {
            return Err(ViewError::invalid(format!("{at}/name"), format!("column name '{name}' is used twice")));
        }
        let path = match obj.get("path") {
            Some(Value::String(p)) => p,
            _ => return Err(ViewError::invalid(at, format!("column '{name}' needs a string 'path'"))),
        };
        let (fhir_type, kind) = match obj.get("type") {
            None => (None, ColumnType::Any),
            Some(Value::String(t)) => match ColumnType::from_fhir(t) {
                Some(k) => (Some(t.clone()), k),
                None => return Err(ViewError::invalid(format!("{at}/type"), format!("'{t}' is not a FHIR type"))),
            },
            Some(_) => return Err(ViewError::invalid(format!("{at}/type"), "must be a string")),
        };
        let collection = match obj.get("collection") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ViewError::invalid(format!("{at}/collection"), "must be true or false")),
        };
        let expr = self.expr(path, &format!("{at}/path"), on_resource)?;
        self.columns.push(Column { name, fhir_type, kind, collection });
        Ok(ColumnExpr { slot: self.columns.len() - 1, expr })
    }
}
