//! The syntax tree, exactly as written (no folding or resolution: that is the compiler's
//! job), and its printer. Printing then re-parsing yields the same tree.

use crate::datetime::{DateTime, Precision, Time};
use crate::decimal::Decimal;
use std::fmt;

#[derive(Clone, Debug)]
pub struct Expr {
    /// Byte offset of the expression in the source, for error messages.
    pub pos: usize,
    pub kind: ExprKind,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Empty,
    Boolean(bool),
    String(String),
    Integer(i64),
    /// `2L` (FHIRPath 3.0 Long).
    Long(i64),
    Decimal(Decimal),
    Date(DateTime),
    DateTime(DateTime),
    Time(Time),
    /// Value, unit, and whether the unit was a bare calendar keyword (`4 days`).
    Quantity(Decimal, String, bool),
    This,
    Index,
    Total,
    Env(String),
    Ident(String),
    Member(Box<Expr>, String),
    Call {
        target: Option<Box<Expr>>,
        name: String,
        args: Vec<Expr>,
    },
    Indexer(Box<Expr>, Box<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, TypeSpec),
    As(Box<Expr>, TypeSpec),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Plus,
    Minus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

impl BinOp {
    /// Precedence, tighter binding higher (the grammar's order; `is`/`as` sit at 7).
    pub fn level(self) -> usize {
        use BinOp::*;
        match self {
            Implies => 0,
            Or | Xor => 1,
            And => 2,
            In | Contains => 3,
            Eq | Equiv | Ne | NotEquiv => 4,
            Le | Ge | Lt | Gt => 5,
            Union => 6,
            Add | Sub | Concat => 8,
            Mul | Div | IntDiv | Mod => 9,
        }
    }

    pub fn symbol(self) -> &'static str {
        use BinOp::*;
        match self {
            Mul => "*",
            Div => "/",
            IntDiv => "div",
            Mod => "mod",
            Add => "+",
            Sub => "-",
            Concat => "&",
            Union => "|",
            Lt => "<",
            Gt => ">",
            Le => "<=",
            Ge => ">=",
            Eq => "=",
            Ne => "!=",
            Equiv => "~",
            NotEquiv => "!~",
            In => "in",
            Contains => "contains",
            And => "and",
            Or => "or",
            Xor => "xor",
            Implies => "implies",
        }
    }
}

/// A (possibly qualified) type name: `Quantity`, `System.Integer`, `FHIR.Patient`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for TypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write_ident(f, ns)?;
            f.write_str(".")?;
        }
        write_ident(f, &self.name)
    }
}

pub(crate) const KEYWORDS: &[&str] =
    &["and", "or", "xor", "implies", "div", "mod", "in", "contains", "is", "as", "true", "false"];

fn write_ident(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name);
    if plain {
        f.write_str(name)
    } else {
        write_quoted(f, name, '`')
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, q: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(q)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c == q => {
                f.write_char('\\')?;
                f.write_char(c)?
            }
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(q)
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Empty => f.write_str("{}"),
            ExprKind::Boolean(b) => write!(f, "{b}"),
            ExprKind::String(s) => write_quoted(f, s, '\''),
            ExprKind::Integer(i) => write!(f, "{i}"),
            ExprKind::Long(i) => write!(f, "{i}L"),
            ExprKind::Decimal(d) => write!(f, "{d}"),
            ExprKind::Date(d) => write!(f, "@{d}"),
            ExprKind::DateTime(d) => {
                if d.precision <= Precision::Day {
                    write!(f, "@{d}T")
                } else {
                    write!(f, "@{d}")
                }
            }
            ExprKind::Time(t) => write!(f, "@T{t}"),
            ExprKind::Quantity(v, u, kw) => {
                if *kw {
                    write!(f, "{v} {u}")
                } else {
                    write!(f, "{v} ")?;
                    write_quoted(f, u, '\'')
                }
            }
            ExprKind::This => f.write_str("$this"),
            ExprKind::Index => f.write_str("$index"),
            ExprKind::Total => f.write_str("$total"),
            ExprKind::Env(n) => {
                f.write_str("%")?;
                write_ident(f, n)
            }
            ExprKind::Ident(n) => write_ident(f, n),
            ExprKind::Member(t, n) => {
                write!(f, "{}.", Operand(t))?;
                write_ident(f, n)
            }
            ExprKind::Call { target, name, args } => {
                if let Some(t) = target {
                    write!(f, "{}.", Operand(t))?;
                }
                write_ident(f, name)?;
                f.write_str("(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            ExprKind::Indexer(t, i) => write!(f, "{}[{i}]", Operand(t)),
            ExprKind::Unary(..) => {
                // A run of signs shares one pair of parentheses (`(--a)`, not `(-(-a))`),
                // so the printed form nests no deeper than the source could.
                f.write_str("(")?;
                let mut cur = self;
                while let ExprKind::Unary(op, e) = &cur.kind {
                    f.write_str(if *op == UnaryOp::Minus { "-" } else { "+" })?;
                    cur = e;
                }
                write!(f, "{})", Operand(cur))
            }
            ExprKind::Binary(..) => {
                // Left-nested chains print iteratively: they can be long (`a | b | … | z`).
                // Parentheses only where the source needed them (an operator binding
                // tighter than the one before it), so printing never nests deeper than
                // the text that was parsed.
                let mut rights = Vec::new();
                let mut cur = self;
                while let ExprKind::Binary(op, l, r) = &cur.kind {
                    rights.push((*op, r));
                    cur = l;
                }
                rights.reverse();
                let wraps = rights.windows(2).filter(|w| w[1].0.level() > w[0].0.level()).count();
                for _ in 0..wraps {
                    f.write_str("(")?;
                }
                write!(f, "{cur}")?;
                let mut prev: Option<BinOp> = None;
                for (op, r) in rights {
                    if prev.is_some_and(|p| op.level() > p.level()) {
                        f.write_str(")")?;
                    }
                    prev = Some(op);
                    match &r.kind {
                        // A right operand binds tighter unless it is a looser (or equal) chain.
                        ExprKind::Binary(rop, ..) if rop.level() > op.level() => write!(f, " {} {r}", op.symbol())?,
                        _ => write!(f, " {} {}", op.symbol(), Operand(r))?,
                    }
                }
                Ok(())
            }
            ExprKind::Is(e, t) => write!(f, "({} is {t})", Operand(e)),
            ExprKind::As(e, t) => write!(f, "({} as {t})", Operand(e)),
        }
    }
}

/// An expression in operand position: an operator chain gets parentheses.
struct Operand<'a>(&'a Expr);

impl fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            ExprKind::Binary(..) => write!(f, "({})", self.0),
            _ => write!(f, "{}", self.0),
        }
    }
}
