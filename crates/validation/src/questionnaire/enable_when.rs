//! Whether a Questionnaire item is enabled by the answers of a response
//! (questionnaire.html, `item.enableWhen` and `item.enableBehavior`).
//!
//! The question an enableWhen names is "the nearest question occurrence reachable by
//! tracing first the ancestor axis": its answers are looked up within the response item
//! that answers the deepest group holding both items (as the HL7 validator does), or in
//! the whole response when no group holds both. Operators, by the definitions of
//! `questionnaire-enable-operator`: `exists` compares whether an answer exists with the
//! boolean; `=` holds when at least one answer equals the value; `!=` when no answer
//! equals it (so also when there is no answer); `>`, `<`, `>=`, `<=` when at least one
//! answer compares so. Values compare as their type does (numbers by value, dates and
//! times as far as both are precise, Codings by system and code); values of different
//! types never match.

use std::cmp::Ordering;

use serde_json::Value;
use tsunagu_fhirpath::{DateTime, Decimal, Time};

use super::answer::choice_value;
use super::{items, link_id, Form};

/// Extensions that decide enablement by an expression, which is not evaluated here: an
/// item carrying one is neither enabled nor disabled for this check.
const EXPRESSIONS: &[&str] = &[
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
    "http://phr.kanta.fi/StructureDefinition/fiphr-ext-questionnaire-enablewhen",
];

/// Whether `d` is enabled when its ancestors are (`None`: cannot tell). `stack` is the way
/// down to the item: each Questionnaire item with the response item answering it.
pub(super) fn enabled<'f>(form: &Form<'f>, d: &'f Value, stack: &[(&'f Value, &'f Value)]) -> Option<bool> {
    let extensions = d.get("extension").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if extensions.iter().any(|e| e.get("url").and_then(Value::as_str).is_some_and(|u| EXPRESSIONS.contains(&u))) {
        return None;
    }
    let conditions = d.get("enableWhen").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if conditions.is_empty() {
        return Some(true);
    }
    let results: Vec<Option<bool>> = conditions.iter().map(|c| condition(form, d, c, stack)).collect();
    let decided = |wins: bool| {
        if results.contains(&Some(wins)) {
            Some(wins)
        } else if results.contains(&None) {
            None
        } else {
            Some(!wins)
        }
    };
    match d.get("enableBehavior").and_then(Value::as_str) {
        Some("any") => decided(true),
        Some("all") => decided(false),
        _ if results.len() == 1 => results[0],
        // Several conditions need enableBehavior (que-12, reported by the walk): nothing
        // is decided without it.
        _ => None,
    }
}

fn condition<'f>(form: &Form<'f>, source: &'f Value, c: &Value, stack: &[(&'f Value, &'f Value)]) -> Option<bool> {
    let question = c.get("question")?.as_str()?;
    let operator = c.get("operator")?.as_str()?;
    let (kind, expected) = choice_value(c, "answer")?;
    let values: Vec<(&str, &Value)> =
        answers_to(form, source, question, stack).into_iter().filter_map(|a| choice_value(a, "value")).collect();
    let any_equal = || values.iter().any(|(t, v)| equal(t, v, kind, expected));
    let ordered =
        |wanted: fn(Ordering) -> bool| values.iter().any(|(t, v)| compare(t, v, kind, expected).is_some_and(wanted));
    match operator {
        "exists" => Some(expected.as_bool()? != values.is_empty()),
        "=" => Some(any_equal()),
        "!=" => Some(!any_equal()),
        ">" => Some(ordered(Ordering::is_gt)),
        "<" => Some(ordered(Ordering::is_lt)),
        ">=" => Some(ordered(Ordering::is_ge)),
        "<=" => Some(ordered(Ordering::is_le)),
        _ => None,
    }
}

/// The answers given to `question`, as seen from the item `source`.
fn answers_to<'f>(
    form: &Form<'f>,
    source: &'f Value,
    question: &str,
    stack: &[(&'f Value, &'f Value)],
) -> Vec<&'f Value> {
    let Some(&target) = form.by_link.get(question) else { return Vec::new() };
    let chain = |item: &'f Value| {
        let mut chain = vec![item];
        while let Some(p) = chain.last().and_then(|i| form.parent.get(&(*i as *const Value))) {
            chain.push(p);
        }
        chain.reverse();
        chain
    };
    let (a, b) = (chain(source), chain(target));
    let common = a.iter().zip(&b).take_while(|(x, y)| std::ptr::eq(**x, **y)).last().map(|(x, _)| *x);
    let focus = common
        .and_then(|g| stack.iter().rev().find(|(q, _)| std::ptr::eq(*q, g)).map(|(_, r)| *r))
        .unwrap_or(form.response);
    let mut out = Vec::new();
    collect(focus, question, &mut out);
    out
}

/// The answers of every item `link` at or below `v` (through nested items and answers).
fn collect<'f>(v: &'f Value, link: &str, out: &mut Vec<&'f Value>) {
    let answers = v.get("answer").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if link_id(v) == Some(link) {
        out.extend(answers);
    }
    for item in items(v).iter().chain(answers.iter().flat_map(items)) {
        collect(item, link, out);
    }
}

/// Whether an answer `value[x]` of type `t` equals an enableWhen `answer[x]` of type `kind`.
fn equal(t: &str, v: &Value, kind: &str, e: &Value) -> bool {
    match (t, kind) {
        ("Coding", "Coding") => {
            let field = |c: &Value, f: &str| c.get(f).and_then(Value::as_str).map(str::to_owned);
            let system_fits = field(e, "system").is_none() || field(e, "system") == field(v, "system");
            field(e, "code").is_some() && field(e, "code") == field(v, "code") && system_fits
        }
        ("Reference", "Reference") => {
            let r = |x: &Value| x.get("reference").and_then(Value::as_str).map(str::to_owned);
            r(v).is_some() && r(v) == r(e)
        }
        ("Boolean", "Boolean") => v == e,
        _ => compare(t, v, kind, e) == Some(Ordering::Equal),
    }
}

/// How an answer compares with an enableWhen value; `None` when they do not compare.
fn compare(t: &str, v: &Value, kind: &str, e: &Value) -> Option<Ordering> {
    let number = |x: &Value| match x {
        Value::Number(n) => Decimal::parse(&n.to_string()),
        _ => None,
    };
    let moment = |x: &Value| x.as_str().and_then(DateTime::parse_datetime);
    match (t, kind) {
        ("Integer" | "Decimal", "Integer" | "Decimal") => Some(number(v)?.cmp_num(&number(e)?)),
        ("Date" | "DateTime", "Date" | "DateTime") => moment(v)?.partial_cmp_dt(&moment(e)?),
        ("Time", "Time") => Time::parse(v.as_str()?)?.partial_cmp_t(&Time::parse(e.as_str()?)?),
        ("String", "String") => Some(v.as_str()?.cmp(e.as_str()?)),
        ("Quantity", "Quantity") => {
            // Same unit (by code where both have one, else as written) or no comparison.
            fn unit<'v>(x: &'v Value, f: &str) -> Option<&'v str> {
                x.get(f).and_then(Value::as_str)
            }
            let same = match (unit(v, "code"), unit(e, "code")) {
                (Some(a), Some(b)) => a == b && unit(v, "system") == unit(e, "system"),
                _ => unit(v, "unit") == unit(e, "unit"),
            };
            same.then_some(())?;
            Some(number(v.get("value")?)?.cmp_num(&number(e.get("value")?)?))
        }
        _ => None,
    }
}
