//! Recursive-descent parser following the FHIRPath N1 precedence table.

use crate::ast::{BinOp, Expr, ExprKind, TypeSpec, UnaryOp};
use crate::datetime::{DateTime, Time};
use crate::decimal::Decimal;
use crate::error::{FhirPathError, Result};
use crate::lexer::{tokenize, Tok, Token};
use crate::quantity::calendar_unit;

/// Limits that keep the recursive compiler and evaluator (and the tree's destructor) far
/// from the stack limit, whatever the input. Real expressions stay well below them.
const MAX_SOURCE: usize = 16 * 1024;
const MAX_NESTING: usize = 128;
const MAX_HEIGHT: usize = 64;

pub fn parse(src: &str) -> Result<Expr> {
    if src.len() > MAX_SOURCE {
        return Err(FhirPathError::syntax(MAX_SOURCE, "expression too long"));
    }
    let toks = tokenize(src)?;
    let mut p = Parser { toks, i: 0, depth: 0 };
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(FhirPathError::syntax(p.pos(), format!("unexpected {}", describe(p.peek()))));
    }
    if height(&e) > MAX_HEIGHT {
        return Err(FhirPathError::syntax(0, "expression nests too deeply"));
    }
    Ok(e)
}

/// Tree height, computed without recursion.
fn height(e: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        match &e.kind {
            ExprKind::Member(t, _) | ExprKind::Unary(_, t) | ExprKind::Is(t, _) | ExprKind::As(t, _) => {
                stack.push((t, d + 1))
            }
            ExprKind::Indexer(a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            // Operator chains are compiled, evaluated and printed iteratively: a left
            // operand is no deeper than its chain.
            ExprKind::Binary(_, a, b) => {
                stack.push((a, d));
                stack.push((b, d + 1));
            }
            ExprKind::Call { target, args, .. } => {
                if let Some(t) = target {
                    stack.push((t, d + 1));
                }
                for a in args {
                    stack.push((a, d + 1));
                }
            }
            _ => {}
        }
    }
    max
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Eof => "end of expression".into(),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::Ident(s) | Tok::Delimited(s) => format!("identifier '{s}'"),
        Tok::Str(_) => "string".into(),
        Tok::Number(n) => format!("number {n}"),
        Tok::Long(n) => format!("long {n}L"),
        Tok::DateTime(d) => format!("@{d}"),
        Tok::Special(s) => format!("${s}"),
        Tok::Env(s) => format!("%{s}"),
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Current nesting of parentheses, arguments, indexers and unary operators.
    depth: usize,
}

/// Binary operator levels, loosest first.
const LEVELS: &[&[(&str, BinOp)]] = &[
    &[("implies", BinOp::Implies)],
    &[("or", BinOp::Or), ("xor", BinOp::Xor)],
    &[("and", BinOp::And)],
    &[("in", BinOp::In), ("contains", BinOp::Contains)],
    &[("=", BinOp::Eq), ("~", BinOp::Equiv), ("!=", BinOp::Ne), ("!~", BinOp::NotEquiv)],
    &[("<=", BinOp::Le), (">=", BinOp::Ge), ("<", BinOp::Lt), (">", BinOp::Gt)],
    &[("|", BinOp::Union)],
    &[], // is / as: handled specially
    &[("+", BinOp::Add), ("-", BinOp::Sub), ("&", BinOp::Concat)],
    &[("*", BinOp::Mul), ("/", BinOp::Div), ("div", BinOp::IntDiv), ("mod", BinOp::Mod)],
];
const TYPE_LEVEL: usize = 7;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }
    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }
    fn expect_sym(&mut self, s: &str) -> Result<()> {
        if self.is_sym(s) {
            self.bump();
            Ok(())
        } else {
            Err(FhirPathError::syntax(self.pos(), format!("expected '{s}', found {}", describe(self.peek()))))
        }
    }

    /// The binary operator (or `is`/`as`, as `None`) at the current token, with its level.
    fn peek_op(&self) -> Option<(usize, Option<BinOp>)> {
        let text = match self.peek() {
            Tok::Sym(s) => *s,
            Tok::Ident(s) => s.as_str(),
            _ => return None,
        };
        if text == "is" || text == "as" {
            return Some((TYPE_LEVEL, None));
        }
        LEVELS
            .iter()
            .enumerate()
            .find_map(|(level, ops)| ops.iter().find(|(t, _)| *t == text).map(|(_, op)| (level, Some(*op))))
    }

    /// Precedence climbing: parses operators of `min_level` and tighter. One call per
    /// level actually used (not per level of the table) keeps recursion shallow.
    fn expr(&mut self, min_level: usize) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(FhirPathError::syntax(self.pos(), "expression nests too deeply"));
        }
        let r = self.climb(min_level);
        self.depth -= 1;
        r
    }

    fn climb(&mut self, min_level: usize) -> Result<Expr> {
        let mut left = self.unary()?;
        while let Some((level, op)) = self.peek_op() {
            if level < min_level {
                break;
            }
            let t = self.bump();
            let pos = t.pos;
            let kind = match op {
                None => {
                    let ts = self.type_spec()?;
                    if t.tok == Tok::Ident("is".into()) {
                        ExprKind::Is(Box::new(left), ts)
                    } else {
                        ExprKind::As(Box::new(left), ts)
                    }
                }
                // Left-associative: the right operand binds tighter.
                Some(op) => ExprKind::Binary(op, Box::new(left), Box::new(self.expr(level + 1)?)),
            };
            left = Expr { pos, kind };
        }
        Ok(left)
    }

    fn type_spec(&mut self) -> Result<TypeSpec> {
        let first = self.identifier()?;
        if self.is_sym(".") {
            if let Tok::Ident(_) | Tok::Delimited(_) = self.peek_at(1) {
                self.bump();
                let name = self.identifier()?;
                return Ok(TypeSpec { namespace: Some(first), name });
            }
        }
        Ok(TypeSpec { namespace: None, name: first })
    }

    fn identifier(&mut self) -> Result<String> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Delimited(s) => {
                self.bump();
                Ok(s)
            }
            t => Err(FhirPathError::syntax(self.pos(), format!("expected an identifier, found {}", describe(&t)))),
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.is_sym("-") || self.is_sym("+") {
            let t = self.bump();
            let op = if t.tok == Tok::Sym("-") { UnaryOp::Minus } else { UnaryOp::Plus };
            self.depth += 1;
            if self.depth > MAX_NESTING {
                return Err(FhirPathError::syntax(t.pos, "expression nests too deeply"));
            }
            let e = self.unary();
            self.depth -= 1;
            let e = e?;
            return Ok(Expr { pos: t.pos, kind: ExprKind::Unary(op, Box::new(e)) });
        }
        let mut e = self.term()?;
        loop {
            if self.is_sym(".") {
                let pos = self.bump().pos;
                let name = self.identifier()?;
                if self.is_sym("(") {
                    let args = self.args()?;
                    e = Expr { pos, kind: ExprKind::Call { target: Some(Box::new(e)), name, args } };
                } else {
                    e = Expr { pos, kind: ExprKind::Member(Box::new(e), name) };
                }
            } else if self.is_sym("[") {
                let pos = self.bump().pos;
                let idx = self.expr(0)?;
                self.expect_sym("]")?;
                e = Expr { pos, kind: ExprKind::Indexer(Box::new(e), Box::new(idx)) };
            } else {
                break;
            }
        }
        Ok(e)
    }

    fn args(&mut self) -> Result<Vec<Expr>> {
        self.expect_sym("(")?;
        let mut args = Vec::new();
        if self.is_sym(")") {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.expr(0)?);
            if self.is_sym(",") {
                self.bump();
                continue;
            }
            self.expect_sym(")")?;
            return Ok(args);
        }
    }

    fn term(&mut self) -> Result<Expr> {
        let t = self.bump();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                self.expect_sym(")")?;
                return Ok(e);
            }
            Tok::Sym("{") => {
                self.expect_sym("}")?;
                ExprKind::Empty
            }
            Tok::Str(s) => ExprKind::String(s),
            Tok::Number(n) => {
                let value = Decimal::parse(&n).ok_or_else(|| FhirPathError::syntax(pos, "bad number"))?;
                // A number followed by a unit is a quantity.
                match self.peek().clone() {
                    Tok::Str(u) => {
                        self.bump();
                        ExprKind::Quantity(value, u, false)
                    }
                    Tok::Ident(u) if calendar_unit(&u).is_some() => {
                        self.bump();
                        ExprKind::Quantity(value, u, true)
                    }
                    _ => {
                        if n.contains('.') {
                            ExprKind::Decimal(value)
                        } else {
                            ExprKind::Integer(
                                n.parse().map_err(|_| FhirPathError::syntax(pos, "integer literal out of range"))?,
                            )
                        }
                    }
                }
            }
            Tok::Long(n) => {
                ExprKind::Long(n.parse().map_err(|_| FhirPathError::syntax(pos, "long literal out of range"))?)
            }
            Tok::DateTime(s) => date_literal(&s, pos)?,
            Tok::Special(s) => match s.as_str() {
                "this" => ExprKind::This,
                "index" => ExprKind::Index,
                "total" => ExprKind::Total,
                _ => return Err(FhirPathError::syntax(pos, format!("unknown special variable ${s}"))),
            },
            Tok::Env(s) => ExprKind::Env(s),
            Tok::Ident(s) if s == "true" => ExprKind::Boolean(true),
            Tok::Ident(s) if s == "false" => ExprKind::Boolean(false),
            Tok::Ident(s) if matches!(s.as_str(), "and" | "or" | "xor" | "implies" | "div" | "mod") => {
                return Err(FhirPathError::syntax(pos, format!("unexpected keyword '{s}'")));
            }
            Tok::Ident(s) | Tok::Delimited(s) => {
                if self.is_sym("(") {
                    let args = self.args()?;
                    ExprKind::Call { target: None, name: s, args }
                } else {
                    ExprKind::Ident(s)
                }
            }
            t => return Err(FhirPathError::syntax(pos, format!("unexpected {}", describe(&t)))),
        };
        Ok(Expr { pos, kind })
    }
}

fn date_literal(s: &str, pos: usize) -> Result<ExprKind> {
    if let Some(t) = s.strip_prefix('T') {
        if let Some(time) = Time::parse(t) {
            return Ok(ExprKind::Time(time));
        }
        // `@T10:00Z` has the shape of a time but times carry no zone in FHIRPath: the
        // expression is well-formed text with an invalid value.
        if let Some(i) = t.find(['Z', '+', '-']) {
            if Time::parse(&t[..i]).is_some() {
                return Err(FhirPathError::semantic(pos, "a time literal cannot have a timezone"));
            }
        }
        return Err(FhirPathError::syntax(pos, format!("invalid time literal @{s}")));
    }
    if !s.contains('T') {
        if let Some(d) = DateTime::parse_date(s) {
            return Ok(ExprKind::Date(d));
        }
    } else if let Some(d) = DateTime::parse_datetime(s) {
        return Ok(ExprKind::DateTime(d));
    }
    Err(FhirPathError::syntax(pos, format!("invalid date/time literal @{s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree's shape: every operator node in parentheses.
    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Binary(op, l, r) => format!("({} {} {})", shape(l), op.symbol(), shape(r)),
            ExprKind::Is(x, t) => format!("({} is {t})", shape(x)),
            ExprKind::Unary(UnaryOp::Minus, x) => format!("(-{})", shape(x)),
            _ => e.to_string(),
        }
    }

    fn rt(s: &str) -> String {
        shape(&parse(s).unwrap())
    }

    /// The printer's precedence (`BinOp::level`) is this table's.
    #[test]
    fn printer_levels_follow_the_grammar() {
        for (level, ops) in LEVELS.iter().enumerate() {
            for (_, op) in ops.iter() {
                assert_eq!(op.level(), level, "{op:?}");
            }
        }
    }

    #[test]
    fn precedence() {
        assert_eq!(rt("1+2*3+4"), "((1 + (2 * 3)) + 4)");
        assert_eq!(rt("-1.convertsToInteger()"), "(-1.convertsToInteger())");
        assert_eq!(rt("1 > 2 is Boolean"), "(1 > (2 is Boolean))");
        assert_eq!(rt("true and '0215' in ('0215' | '0216')"), "(true and ('0215' in ('0215' | '0216')))");
        assert_eq!(rt("4 days.convertsToQuantity()"), "4 days.convertsToQuantity()");
        assert_eq!(rt("Patient.name[0].`given`"), "Patient.name[0].given");
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowing() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(parse(&deep), Err(FhirPathError::Syntax { .. })));
        // Long operator chains are flat, not deep.
        let long = format!("1{}", "+1".repeat(5_000));
        assert!(parse(&long).is_ok());
        let too_long = format!("1{}", "+1".repeat(10_000));
        assert!(matches!(parse(&too_long), Err(FhirPathError::Syntax { .. })));
        let minus = format!("{}1", "-".repeat(10_000));
        assert!(matches!(parse(&minus), Err(FhirPathError::Syntax { .. })));
        let chain = format!("a{}", ".b".repeat(50));
        assert!(parse(&chain).is_ok());
    }

    #[test]
    fn errors() {
        assert!(matches!(parse("2 + 2 /"), Err(FhirPathError::Syntax { .. })));
        assert!(matches!(parse("2 + 2 /* x"), Err(FhirPathError::Syntax { .. })));
        assert!(matches!(parse("@T14:34:28Z"), Err(FhirPathError::Semantic { .. })));
    }
}
