//! Composite parameters (search.html#composite): `code-value-quantity=loinc|8480-6$gt100`.
//!
//! Both components must hold for the same element (the same `Observation.component`, the
//! same `useContext`), so a resource is indexed with one row per pair of component values
//! found on one node of the composite's expression, never by pairing values across nodes.

use crate::error::SearchError;
use crate::extract::values;
use crate::parse::{bad, split_bar, value_test};
use crate::registry::{ParamDef, SearchRegistry};
use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Item};
use tsunagu_model::SearchParamType as K;
use tsunagu_store::{
    Clause, Condition, IndexEntry, IndexKind, IndexValue, SearchQuery, SortKey, SortParam, SortWithin, SystemMatch,
    Test,
};

/// The composite values of one node the composite's expression found.
pub(crate) fn node_values<'a>(
    p: &ParamDef,
    node: &Item<'a>,
    resource: &'a Value,
    ctx: &'a EvalContext<'_>,
    out: &mut Vec<IndexEntry>,
) {
    let [first, second] = p.components.as_slice() else { return };
    let component = |c: &crate::registry::Component| {
        let mut found = Vec::new();
        for item in c.expression.evaluate_on(node.clone(), resource, Some(ctx)).unwrap_or_default() {
            values(c.kind, &item, &mut |v| found.push(v));
        }
        found
    };
    let seconds = component(second);
    if seconds.is_empty() {
        return;
    }
    for f in component(first) {
        let IndexValue::Token { system, code, .. } = f else { continue };
        for s in &seconds {
            let value =
                IndexValue::Composite { system: system.clone(), code: code.clone(), second: Box::new(s.clone()) };
            out.push(IndexEntry { param: p.code.to_string(), value });
        }
    }
}

/// The composite of `ty` that pairs, on the resource itself, token parameter `token` with
/// quantity parameter `second`: its expression is the resource (not a repeating part of it, as
/// `component-code-value-quantity`'s is) and its components are those two parameters. Its
/// rows with code `c` then hold exactly the values of `second` of every resource with
/// code `c` (`composite_pairs_hold_the_values_of_their_parameters` checks this on the R4
/// examples).
fn root_pair<'r>(params: &'r [ParamDef], ty: &str, token: &str, second: &str) -> Option<&'r ParamDef> {
    let url = |code: &str| params.iter().find(|p| p.code == code).map(|p| p.url);
    let (token, second) = (url(token)?, url(second)?);
    params.iter().find(|p| {
        p.kind == K::Composite
            && p.expression.as_ref().is_some_and(|e| e.source() == ty)
            && matches!(p.components.as_slice(), [a, b]
                if a.definition == token && b.definition == second && b.kind == K::Quantity)
    })
}

/// Tells the store where a quantity sort key's values are held paired with a code the
/// search requires ([`SortWithin`]): `Observation?code=8302-2&_sort=value-quantity` can walk
/// the `code-value-quantity` rows of 8302-2 in value order instead of every quantity.
pub(crate) fn pair_sort(registry: &SearchRegistry, ty: &str, query: &mut SearchQuery) {
    let Some(SortKey { param: SortParam::Index { param: sorted, kind: IndexKind::Quantity }, .. }) = query.sort.first()
    else {
        return;
    };
    let params = registry.params(ty);
    query.sort_within = required_codes(&query.clauses).into_iter().find_map(|(token, system, code)| {
        let p = root_pair(&params, ty, &token, sorted)?;
        let system = match system {
            SystemMatch::Is(s) => Some(s),
            _ => None,
        };
        Some(SortWithin { composite: p.code.to_string(), code, system })
    });
}

/// The clauses that require one code of a token parameter, in one system or any:
/// (parameter, system, code).
fn required_codes(clauses: &[Clause]) -> Vec<(String, SystemMatch, String)> {
    clauses
        .iter()
        .filter_map(|c| match c.any.as_slice() {
            [Condition::Index { param, test: Test::Token { system, code: Some(code) }, negate: false }]
                if matches!(system, SystemMatch::Is(_) | SystemMatch::Any) =>
            {
                Some((param.clone(), system.clone(), code.clone()))
            }
            _ => None,
        })
        .collect()
}

/// A required quantity condition that a composite of the type pairs, on the resource
/// itself, with a required code (`Observation?code=8302-2&value-quantity=gt180`) becomes
/// the same test on the composite (`code-value-quantity=8302-2$gt180`): with the code
/// required it holds exactly when the quantity condition does ([`root_pair`]), and its
/// rows are one short index range where the quantity condition alone matches every
/// code's values.
pub(crate) fn pair_quantity_conditions(registry: &SearchRegistry, ty: &str, clauses: &mut [Clause]) {
    let params = registry.params(ty);
    let codes = required_codes(clauses);
    for clause in clauses.iter_mut() {
        let [Condition::Index { param: quantity, test: second @ Test::Quantity { .. }, negate: false }] =
            clause.any.as_slice()
        else {
            continue;
        };
        let paired = codes.iter().find_map(|(token, system, code)| {
            let p = root_pair(&params, ty, token, quantity)?;
            let test = Test::Composite { system: system.clone(), code: code.clone(), second: Box::new(second.clone()) };
            Some(Condition::Index { param: p.code.to_string(), test, negate: false })
        });
        if let Some(condition) = paired {
            clause.any = vec![condition];
        }
    }
}

/// One composite parameter of a search URL: values separated by `,` (OR), each
/// `first$second` with the first a token and the second of the second component's type.
pub(crate) fn parse_clause(
    def: &ParamDef,
    name: &str,
    modifier: Option<&str>,
    value: &str,
    base: &str,
) -> Result<Clause, SearchError> {
    if let Some(m) = modifier {
        return Err(SearchError::Unsupported(format!("{}:{m}", def.code)));
    }
    let second_kind = def.components.get(1).map_or(K::Special, |c| c.kind);
    let mut any = Vec::new();
    for v in split_escaped(value, ',') {
        let parts = split_escaped(&v, '$');
        let [first, second] = parts.as_slice() else {
            return Err(bad(
                name,
                &v,
                "a composite value is first$second",
                "複合パラメータの値は 最初$二番目 の形です",
            ));
        };
        let (system, code) = split_bar(&unescape(first));
        if code.is_empty() || second.is_empty() {
            return Err(bad(name, &v, "both components need a value", "両方の成分に値が必要です"));
        }
        let system = match system {
            None => SystemMatch::Any,
            Some(s) if s.is_empty() => SystemMatch::Absent,
            Some(s) => SystemMatch::Is(s),
        };
        let second = value_test(second_kind, name, &unescape(second), &[], base)?;
        any.push(Condition::Index {
            param: def.code.to_string(),
            test: Test::Composite { system, code, second: Box::new(second) },
            negate: false,
        });
    }
    Ok(Clause { any })
}

/// Splits on `sep` where it is not escaped with `\`, keeping every escape as written (the
/// parts are split again or unescaped afterwards).
fn split_escaped(v: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        let part = out.last_mut().expect("never empty");
        match c {
            '\\' => {
                part.push('\\');
                if let Some(n) = chars.next() {
                    part.push(n);
                }
            }
            c if c == sep => out.push(String::new()),
            c => part.push(c),
        }
    }
    out
}

/// `\,` `\$` `\\` unescaped; `\|` kept for the token split.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(n @ (',' | '$' | '\\'))) => {
                out.push(n);
                chars.next();
            }
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_splits_components_unless_escaped() {
        assert_eq!(split_escaped("a|b$gt1,c$2", ','), vec!["a|b$gt1", "c$2"]);
        assert_eq!(split_escaped("a\\$b$c", '$'), vec!["a\\$b", "c"]);
        assert_eq!(unescape("a\\$b\\|c"), "a$b\\|c");
    }
}
