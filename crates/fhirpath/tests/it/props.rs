//! Property tests: printing a syntax tree and parsing it back gives the same tree, and
//! arithmetic and comparison obey the laws of the numbers they model.

use proptest::prelude::*;
use serde_json::json;
use tsunagu_fhirpath::{compile, parse, BinOp, DateTime, Decimal, Expr, ExprKind, TypeSpec, UnaryOp};

fn e(kind: ExprKind) -> Expr {
    Expr { pos: 0, kind }
}

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["name", "given", "value", "code", "div", "true", "as", "contains", "days", "_x1"])
            .prop_map(str::to_string),
        "[a-zA-Z][a-zA-Z0-9_]{0,6}",
        "[ -~]{1,5}",
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(e(ExprKind::Empty)),
        any::<bool>().prop_map(|b| e(ExprKind::Boolean(b))),
        "[ -~\n\t]{0,8}".prop_map(|s| e(ExprKind::String(s))),
        (0i64..1_000_000).prop_map(|i| e(ExprKind::Integer(i))),
        (0i128..10_000_000, 1u32..6).prop_map(|(m, s)| e(ExprKind::Decimal(Decimal::new(m, s)))),
        prop::sample::select(vec!["2015", "2015-02", "2015-02-04"])
            .prop_map(|d| e(ExprKind::Date(DateTime::parse_date(d).unwrap()))),
        prop::sample::select(vec!["2015-02-04T14", "2015-02-04T14:34:28.123+10:00", "2015-02-04T14:34Z", "2015"])
            .prop_map(|d| e(ExprKind::DateTime(DateTime::parse_datetime(d).unwrap()))),
        prop::sample::select(vec!["14", "14:34", "14:34:28.5"])
            .prop_map(|t| e(ExprKind::Time(tsunagu_fhirpath::Time::parse(t).unwrap()))),
        ((0i128..1000), prop::sample::select(vec!["mg", "[lb_av]", "10*3/uL", "it's"]))
            .prop_map(|(v, u)| e(ExprKind::Quantity(Decimal::new(v, 1), u.to_string(), false))),
        ((0i128..1000), prop::sample::select(vec!["day", "weeks", "year"])).prop_map(|(v, u)| e(ExprKind::Quantity(
            Decimal::new(v, 0),
            u.to_string(),
            true
        ))),
        Just(e(ExprKind::This)),
        Just(e(ExprKind::Index)),
        Just(e(ExprKind::Total)),
        ident().prop_map(|n| e(ExprKind::Env(n))),
        ident().prop_map(|n| e(ExprKind::Ident(n))),
    ]
}

const OPS: &[BinOp] = &[
    BinOp::Mul,
    BinOp::Div,
    BinOp::IntDiv,
    BinOp::Mod,
    BinOp::Add,
    BinOp::Sub,
    BinOp::Concat,
    BinOp::Union,
    BinOp::Lt,
    BinOp::Gt,
    BinOp::Le,
    BinOp::Ge,
    BinOp::Eq,
    BinOp::Ne,
    BinOp::Equiv,
    BinOp::NotEquiv,
    BinOp::In,
    BinOp::Contains,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::Implies,
];

fn type_spec() -> impl Strategy<Value = TypeSpec> {
    (prop::option::of(prop::sample::select(vec!["FHIR", "System"])), ident())
        .prop_map(|(ns, name)| TypeSpec { namespace: ns.map(str::to_string), name })
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), ident()).prop_map(|(t, n)| e(ExprKind::Member(Box::new(t), n))),
            (prop::option::of(inner.clone()), ident(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(t, name, args)| e(ExprKind::Call { target: t.map(Box::new), name, args })),
            (inner.clone(), inner.clone()).prop_map(|(t, i)| e(ExprKind::Indexer(Box::new(t), Box::new(i)))),
            (any::<bool>(), inner.clone())
                .prop_map(|(m, x)| e(ExprKind::Unary(if m { UnaryOp::Minus } else { UnaryOp::Plus }, Box::new(x)))),
            (prop::sample::select(OPS), inner.clone(), inner.clone()).prop_map(|(op, l, r)| e(ExprKind::Binary(
                op,
                Box::new(l),
                Box::new(r)
            ))),
            (inner.clone(), type_spec()).prop_map(|(x, t)| e(ExprKind::Is(Box::new(x), t))),
            (inner, type_spec()).prop_map(|(x, t)| e(ExprKind::As(Box::new(x), t))),
        ]
    })
}

fn eval_one(expr: &str) -> String {
    let input = json!({});
    let r = compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).evaluate(&input).unwrap();
    r.iter().map(|i| i.to_text().unwrap()).collect::<Vec<_>>().join(",")
}

fn dec(m: i64, s: u32) -> String {
    // Negative values are written as unary minus on a literal, in parentheses.
    let d = Decimal::new(m as i128, s);
    if m < 0 {
        format!("(-{})", d.abs())
    } else {
        d.to_string()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn print_parse_round_trip(ast in expr()) {
        let text = ast.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn integer_arithmetic_matches_i64(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000) {
        let (sa, sb) = (dec(a, 0), dec(b, 0));
        prop_assert_eq!(eval_one(&format!("{sa} + {sb}")), (a + b).to_string());
        prop_assert_eq!(eval_one(&format!("{sa} * {sb}")), (a * b).to_string());
        prop_assert_eq!(eval_one(&format!("{sa} - {sb} = -({sb} - {sa})")), "true");
        if b != 0 {
            prop_assert_eq!(eval_one(&format!("{sa} div {sb}")), (a / b).to_string());
            prop_assert_eq!(eval_one(&format!("{sa} mod {sb}")), (a % b).to_string());
            prop_assert_eq!(eval_one(&format!("({sa} div {sb}) * {sb} + ({sa} mod {sb}) = {sa}")), "true");
        } else {
            prop_assert_eq!(eval_one(&format!("{sa} div {sb}")), "");
        }
    }

    #[test]
    fn decimal_laws(a in -10_000_000i64..10_000_000, sa in 0u32..6, b in -10_000_000i64..10_000_000, sb in 0u32..6) {
        let (x, y) = (dec(a, sa), dec(b, sb));
        prop_assert_eq!(eval_one(&format!("{x} + {y} = {y} + {x}")), "true");
        prop_assert_eq!(eval_one(&format!("({x} + {y}) - {y} = {x}")), "true");
        prop_assert_eq!(eval_one(&format!("{x} * {y} = {y} * {x}")), "true");
        prop_assert_eq!(eval_one(&format!("{x} ~ {x}")), "true");
        // Exactly one of <, =, > holds, and it agrees with exact rational order.
        let lt = eval_one(&format!("{x} < {y}")) == "true";
        let eq = eval_one(&format!("{x} = {y}")) == "true";
        let gt = eval_one(&format!("{x} > {y}")) == "true";
        prop_assert_eq!([lt, eq, gt].iter().filter(|v| **v).count(), 1);
        let scale = sa.max(sb);
        let xa = a as i128 * 10i128.pow(scale - sa);
        let yb = b as i128 * 10i128.pow(scale - sb);
        prop_assert_eq!(lt, xa < yb);
        prop_assert_eq!(eq, xa == yb);
        prop_assert_eq!(eval_one(&format!("{x} <= {y}")) == "true", xa <= yb);
        if b != 0 {
            prop_assert_eq!(eval_one(&format!("({x} / {y}) * {y} ~ {x}")), "true");
        }
    }

    #[test]
    fn quantity_unit_conversion(a in 0i64..1_000_000) {
        prop_assert_eq!(eval_one(&format!("{a} 'g' = {} 'mg'", a * 1000)), "true");
        prop_assert_eq!(eval_one(&format!("{a} 'kg' > {} 'g'", a * 1000 - 1)), "true");
        prop_assert_eq!(eval_one(&format!("{a} days = {a} 'd'")), "true");
    }

    #[test]
    fn date_day_arithmetic_is_invertible(y in 1900i32..2100, m in 1u32..13, d in 1u32..29, n in -800i64..800) {
        let date = format!("@{y:04}-{m:02}-{d:02}");
        // A quantity literal needs an unsigned number: subtract for negative steps.
        let (op, inv, k) = if n >= 0 { ("+", "-", n) } else { ("-", "+", -n) };
        prop_assert_eq!(eval_one(&format!("({date} {op} {k} days) {inv} {k} days = {date}")), "true");
        let later = eval_one(&format!("{date} {op} {k} days > {date}"));
        prop_assert_eq!(later, (n > 0).to_string());
    }

    #[test]
    fn strings_escape_round_trip(s in "[ -~\n\t\u{e9}]{0,12}") {
        let lit = e(ExprKind::String(s.clone())).to_string();
        let input = json!({});
        let r = compile(&lit).unwrap().evaluate(&input).unwrap();
        prop_assert_eq!(r[0].as_str(), Some(s.as_str()));
    }
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Patient",
        "name",
        "given",
        "birthDate",
        "value",
        "extension",
        "(",
        ")",
        "[",
        "]",
        ".",
        ",",
        "'a'",
        "1",
        "2.5",
        "@2014",
        "@T10:00",
        "@2014-01-01T10:00:00Z",
        "+",
        "-",
        "*",
        "/",
        "div",
        "mod",
        "&",
        "|",
        "=",
        "!=",
        "~",
        "<",
        ">=",
        "and",
        "or",
        "xor",
        "implies",
        "in",
        "contains",
        "is",
        "as",
        "Quantity",
        "String",
        "$this",
        "$index",
        "$total",
        "%resource",
        "%ucum",
        "{}",
        "where(",
        "select(",
        "exists(",
        "first()",
        "count()",
        "iif(",
        "substring(",
        "toString()",
        "toQuantity()",
        "lowBoundary(",
        "aggregate(",
        "repeat(",
        "ofType(",
        "descendants()",
        "children()",
        "sort(",
        "'mg'",
        "days",
        "true",
        "false",
        "not()",
        "empty()",
        "is(",
        "as(",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the text, compiling and evaluating returns (a result or an error); it never
    /// panics, and what parses prints back to text that parses to the same tree.
    #[test]
    fn arbitrary_token_soup_never_panics(tokens in prop::collection::vec(token(), 0..14), text in "[ -~]{0,24}") {
        let input: serde_json::Value = serde_json::from_str(
            r#"{"resourceType": "Patient", "birthDate": "1970", "name": [{"given": ["A", null], "_given": [null, {"id": "x"}]}]}"#,
        ).unwrap();
        for src in [tokens.join(" "), tokens.join(""), text] {
            if let Ok(ast) = parse(&src) {
                let printed = ast.to_string();
                prop_assert_eq!(parse(&printed).map(|a| a.to_string()).ok(), Some(printed));
            }
            for e in [compile(&src), tsunagu_fhirpath::compile_for("Patient", &src)].into_iter().flatten() {
                let _ = e.evaluate(&input);
            }
        }
    }
}

/// Whatever parses prints as text that parses back to the same print, even at the nesting
/// limit (found by fuzzing: runs of signs inside a chain once printed two levels per sign).
#[test]
fn deep_expressions_print_within_the_nesting_limit() {
    for src in [
        format!("a - {}b + c + c + c + c", "-".repeat(62)),
        format!("{}a", "-".repeat(63)),
        format!("{}1{}", "-(".repeat(40), ")".repeat(40)),
        format!("{}a", "+-".repeat(31)),
        (0..200).map(|i| format!("a{i}")).collect::<Vec<_>>().join(" + ") + " & t | u",
        "(a + b) * c - (d - e) / f".to_string(),
        "a.where((b | c).exists() and -(d + e) > 2 is Boolean)[1 + 2].x".to_string(),
    ] {
        let Ok(ast) = parse(&src) else { continue };
        let text = ast.to_string();
        let again = parse(&text).unwrap_or_else(|e| panic!("{src}\nprinted {text}\n{e}"));
        assert_eq!(again.to_string(), text);
    }
    assert!(parse(&format!("a - {}b + c + c + c + c", "-".repeat(62))).is_ok(), "the first case must be accepted");
    // Parentheses where precedence needs them, and only there.
    for (src, printed) in [
        ("(a + b) * c", "(a + b) * c"),
        ("a + b * c", "a + b * c"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a | b).count()", "(a | b).count()"),
        ("a + b + c", "a + b + c"),
    ] {
        assert_eq!(parse(src).unwrap().to_string(), printed);
    }
}
