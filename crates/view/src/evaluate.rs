//! Evaluating a view over one resource: the where clauses, then the select tree, each
//! select giving partial rows that its parent joins (a cross product) with its siblings'.

use crate::definition::{Iteration, Select, View};
use crate::error::{Result, ViewError};
use crate::expression::{ViewExpr, ROW_INDEX};
use crate::row::{Cell, Row};
use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Item, Node};

/// The focus of a forEachOrNull that found nothing: a JSON null, which has no children,
/// so every path below it is empty and every column null.
static EMPTY_FOCUS: Value = Value::Null;

/// Some of a row's cells, by output slot.
type Partial = Vec<(usize, Cell)>;

impl View {
    /// The rows this view gives for one resource. A resource of another type gives none.
    pub fn rows(&self, resource: &Value) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.for_each_row(resource, |row| {
            out.push(row);
            Ok(())
        })?;
        Ok(out)
    }

    /// As [`View::rows`], handing each row to `sink` as it is made (nothing collected).
    pub fn for_each_row(&self, resource: &Value, mut sink: impl FnMut(Row) -> Result<()>) -> Result<()> {
        if resource.get("resourceType").and_then(Value::as_str) != Some(self.resource.as_str()) {
            return Ok(());
        }
        let ctx = self.context(0);
        let focus = Item::Node(Node::resource(resource));
        for w in &self.wheres {
            if !where_holds(w, w.evaluate(focus.clone(), resource, &ctx)?)? {
                return Ok(());
            }
        }
        let partials = self.select_rows(&self.root, focus, resource, &ctx)?;
        for p in partials {
            let mut cells = vec![Cell::Null; self.columns.len()];
            for (slot, cell) in p {
                cells[slot] = cell;
            }
            sink(Row { cells })?;
        }
        Ok(())
    }

    /// The constants, and `%rowIndex` when some expression reads it.
    fn context(&self, row_index: i64) -> EvalContext<'static> {
        let mut ctx = EvalContext::new();
        for c in &self.constants {
            ctx.set_var(&c.name, vec![c.value.clone()]);
        }
        if self.uses_row_index {
            ctx.set_var(ROW_INDEX, vec![Item::Integer(row_index)]);
        }
        ctx
    }

    fn select_rows<'r>(
        &self,
        sel: &Select,
        focus: Item<'r>,
        res: &'r Value,
        ctx: &'r EvalContext<'r>,
    ) -> Result<Vec<Partial>> {
        let foci = match &sel.iteration {
            Iteration::None => return self.focus_rows(sel, focus, res, ctx),
            Iteration::ForEach(e) => e.evaluate(focus, res, ctx)?,
            Iteration::ForEachOrNull(e) => {
                let items = e.evaluate(focus, res, ctx)?;
                if items.is_empty() {
                    let ctx = self.context_at(0, ctx);
                    return self.focus_rows(sel, Item::Node(Node::resource(&EMPTY_FOCUS)), res, ctx.get());
                }
                items
            }
            Iteration::Repeat(paths) => {
                let mut out = Vec::new();
                repeat_into(paths, focus, res, ctx, &mut out, 0)?;
                out
            }
        };
        let mut rows = Vec::new();
        for (i, f) in foci.into_iter().enumerate() {
            let ctx = self.context_at(i as i64, ctx);
            rows.extend(self.focus_rows(sel, f, res, ctx.get())?);
            if rows.len() > self.max_rows_per_resource {
                return Err(ViewError::TooManyRows { limit: self.max_rows_per_resource });
            }
        }
        Ok(rows)
    }

    /// A context for the `index`-th focus: a new one only when `%rowIndex` is read.
    fn context_at<'c>(&self, index: i64, parent: &'c EvalContext<'c>) -> Scoped<'c> {
        if self.uses_row_index {
            Scoped::Own(Box::new(self.context(index)))
        } else {
            Scoped::Parent(parent)
        }
    }

    /// The rows of one select on one focus: its columns, crossed with each nested select,
    /// crossed with the concatenated rows of its unionAll branches.
    fn focus_rows<'r>(
        &self,
        sel: &Select,
        focus: Item<'r>,
        res: &'r Value,
        ctx: &'r EvalContext<'r>,
    ) -> Result<Vec<Partial>> {
        let mut own = Vec::with_capacity(sel.columns.len());
        for c in &sel.columns {
            let items = c.expr.evaluate(focus.clone(), res, ctx)?;
            own.push((c.slot, self.cell(c.slot, &c.expr, &items)?));
        }
        let mut rows = vec![own];
        for s in &sel.selects {
            let nested = self.select_rows(s, focus.clone(), res, ctx)?;
            rows = cross(rows, &nested, self.max_rows_per_resource)?;
            if rows.is_empty() {
                return Ok(rows);
            }
        }
        if !sel.union_all.is_empty() {
            let mut union = Vec::new();
            for b in &sel.union_all {
                union.extend(self.select_rows(b, focus.clone(), res, ctx)?);
                if union.len() > self.max_rows_per_resource {
                    return Err(ViewError::TooManyRows { limit: self.max_rows_per_resource });
                }
            }
            rows = cross(rows, &union, self.max_rows_per_resource)?;
        }
        Ok(rows)
    }

    fn cell(&self, slot: usize, expr: &ViewExpr, items: &[Item]) -> Result<Cell> {
        let col = &self.columns[slot];
        let one = |item: &Item| {
            Cell::from_item(item, col.kind).map_err(|found| ViewError::TypeMismatch {
                column: col.name.clone(),
                expr: expr.source.clone(),
                declared: col.fhir_type.clone().unwrap_or_else(|| "untyped".into()),
                found,
            })
        };
        if col.collection {
            let cells = items.iter().map(one).collect::<Result<Vec<_>>>()?;
            return Ok(Cell::List(cells.into_iter().filter(|c| *c != Cell::Null).collect()));
        }
        match items {
            [] => Ok(Cell::Null),
            [item] => one(item),
            _ => Err(ViewError::NotCollection {
                column: col.name.clone(),
                expr: expr.source.clone(),
                count: items.len(),
            }),
        }
    }
}

/// An evaluation context either borrowed from the parent or made for one focus.
enum Scoped<'c> {
    Parent(&'c EvalContext<'c>),
    Own(Box<EvalContext<'static>>),
}

impl Scoped<'_> {
    fn get(&self) -> &EvalContext<'_> {
        match self {
            Scoped::Parent(c) => c,
            Scoped::Own(c) => c,
        }
    }
}

/// A where clause keeps the resource on `true`; empty counts as false; anything but a
/// boolean is an error in the view.
fn where_holds(w: &ViewExpr, items: Vec<Item>) -> Result<bool> {
    match items.as_slice() {
        [] => Ok(false),
        [Item::Boolean(b)] => Ok(*b),
        [item @ Item::Node(n)] => match n.value {
            Some(Value::Bool(b)) => Ok(*b),
            _ => Err(ViewError::WhereNotBoolean { expr: w.source.clone(), found: item.type_name().into_owned() }),
        },
        [item] => Err(ViewError::WhereNotBoolean { expr: w.source.clone(), found: item.type_name().into_owned() }),
        many => Err(ViewError::WhereNotBoolean { expr: w.source.clone(), found: format!("{} values", many.len()) }),
    }
}

/// Nesting bound for `repeat`: JSON from a parser is finite, but a deep tree must not
/// exhaust the stack.
const MAX_REPEAT_DEPTH: usize = 256;

/// Every node reachable from `focus` through `paths`, depth first, each node followed by
/// the nodes below it.
fn repeat_into<'r>(
    paths: &[ViewExpr],
    focus: Item<'r>,
    res: &'r Value,
    ctx: &'r EvalContext<'r>,
    out: &mut Vec<Item<'r>>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_REPEAT_DEPTH {
        return Err(ViewError::invalid("repeat", format!("nesting deeper than {MAX_REPEAT_DEPTH} levels")));
    }
    for p in paths {
        for child in p.evaluate(focus.clone(), res, ctx)? {
            out.push(child.clone());
            repeat_into(paths, child, res, ctx, out, depth + 1)?;
        }
    }
    Ok(())
}

/// Every left row joined with every right row.
fn cross(left: Vec<Partial>, right: &[Partial], max: usize) -> Result<Vec<Partial>> {
    if left.len().saturating_mul(right.len()) > max {
        return Err(ViewError::TooManyRows { limit: max });
    }
    if right.len() == 1 {
        return Ok(left
            .into_iter()
            .map(|mut l| {
                l.extend(right[0].iter().cloned());
                l
            })
            .collect());
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in right {
            let mut row = l.clone();
            row.extend(r.iter().cloned());
            out.push(row);
        }
    }
    Ok(out)
}
