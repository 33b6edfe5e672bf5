//! Search URLs into store queries: parameter names with modifiers and chains, values with
//! prefixes and escapes, `_has`, `_sort`, `_include` and `_revinclude`.

use crate::error::SearchError;
use crate::extract::split_reference;
use crate::range::parse_range;
use crate::registry::SearchRegistry;
use std::cell::Cell;
use tsunagu_limits::{Limit, LimitExceeded, Limits};
use tsunagu_model::SearchParamType as K;
use tsunagu_store::{Clause, Condition, RangeOp, SearchQuery, SortKey, SortParam, SystemMatch, Test};
use tsunagu_terminology::Terminology;
use tsunagu_text::normalize;

/// Parameters that shape the result rather than select; handled by the caller.
pub const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_total",
    "_cursor",
    "_offset",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_contained",
    "_containedType",
];

/// `_include` / `_revinclude`: `source_type:param[:target_type]`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    /// `None` for `*` (every reference parameter).
    pub param: Option<String>,
    pub target_type: Option<String>,
    pub iterate: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    /// Unknown parameters ignored under lenient handling.
    pub ignored: Vec<String>,
    /// Conditions the search expands to, as `max_search_conditions` counts them.
    pub conditions: usize,
}

/// What parsing needs besides the parameters: the search parameters, the terminology
/// service (token `:in`, `:not-in`, `:below`, `:above`), this server's base URL, and the
/// limits that bound how much one search may ask for.
pub(crate) struct Env<'a> {
    pub registry: &'a SearchRegistry,
    pub terminology: &'a Terminology,
    pub base: &'a str,
    pub limits: &'a Limits,
    /// Conditions made so far (chain fan-out included), against `max_search_conditions`.
    spent: Cell<usize>,
}

impl Env<'_> {
    /// Counts `n` more conditions; fails past `max_search_conditions`, before the work is
    /// done, so a chain that fans out to every type at every level stops early.
    fn spend(&self, n: usize, at: &str) -> Result<(), SearchError> {
        let spent = self.spent.get().saturating_add(n);
        self.spent.set(spent);
        let max = self.limits.max_search_conditions;
        if spent > max {
            return Err(LimitExceeded::new(Limit::SearchConditions, max).at(at).into());
        }
        Ok(())
    }
}

/// How deep a parameter name has gone: chained parameters and nested `_has`.
#[derive(Debug, Clone, Copy, Default)]
struct Depth {
    chain: usize,
    has: usize,
}

/// Parses search parameters for `ty` (`None`: all types). Unknown parameters are errors
/// when `strict`, else ignored and reported. `base` is this server's base URL, so that
/// absolute references to it match relative ones.
pub fn parse_search(
    registry: &SearchRegistry,
    terminology: &Terminology,
    ty: Option<&str>,
    pairs: &[(String, String)],
    strict: bool,
    base: &str,
    limits: &Limits,
) -> Result<ParsedSearch, SearchError> {
    let env = Env { registry, terminology, base, limits, spent: Cell::new(0) };
    let mut out = ParsedSearch::default();
    out.query.resource_type = ty.map(str::to_string);
    for (name, value) in pairs {
        let base_name = name.split(':').next().unwrap_or("");
        if base_name == "_total" && !matches!(value.as_str(), "none" | "estimate" | "accurate") {
            // Leniently ignored as an unknown parameter is, and said so.
            if !strict {
                out.ignored.push(name.clone());
                continue;
            }
            return Err(bad(
                "_total",
                value,
                "expected none, estimate or accurate",
                "none、estimate、accurate のいずれかを指定してください",
            ));
        }
        if RESULT_PARAMS.contains(&base_name) {
            continue;
        }
        match base_name {
            "_sort" => out.query.sort = parse_sort(&env, ty, value)?,
            // The types of a search over several (system level, `$everything`).
            "_type" if ty.is_none() => out.query.clauses.push(parse_types(&env, name, value)?),
            "_include" | "_revinclude" => {
                let iterate = name.ends_with(":iterate") || name.ends_with(":recurse");
                for v in split_values(&env, name, value)? {
                    let inc = parse_include(base_name, &v, iterate)?;
                    // A parameter the source type does not have, or not a reference: under
                    // strict handling an error, as an unknown search parameter is.
                    let known = inc
                        .param
                        .as_deref()
                        .is_none_or(|p| registry.param(&inc.source_type, p).is_some_and(|d| d.kind == K::Reference));
                    if !known && strict {
                        return Err(bad(
                            base_name,
                            &v,
                            "the type has no reference search parameter of that name",
                            "このタイプにその名前の参照検索パラメータはありません",
                        ));
                    }
                    if base_name == "_include" {
                        out.includes.push(inc)
                    } else {
                        out.revincludes.push(inc)
                    }
                }
            }
            _ => match check_depth(&env, name).and_then(|()| parse_param(&env, ty, name, value, Depth::default())) {
                Ok(clause) => out.query.clauses.push(clause),
                Err(SearchError::UnknownParameter(p)) if !strict => out.ignored.push(p),
                Err(e) => return Err(e),
            },
        }
    }
    if let Some(ty) = ty {
        add_date_windows(registry, ty, &mut out.query.clauses);
        crate::composite::pair_quantity_conditions(registry, ty, &mut out.query.clauses);
        crate::composite::pair_sort(registry, ty, &mut out.query);
    }
    out.conditions = env.spent.get();
    Ok(out)
}

/// `_type=A,B`: resources of those types only; a name that is not a resource type is an
/// error whatever the handling (ignoring it would widen the search to every type).
fn parse_types(env: &Env<'_>, name: &str, value: &str) -> Result<Clause, SearchError> {
    if name != "_type" {
        return Err(SearchError::Unsupported(name.into()));
    }
    let mut any = Vec::new();
    for t in split_values(env, name, value)? {
        let t = t.trim();
        if !tsunagu_model::r4().is_resource_type(t) {
            return Err(bad(name, t, "not a resource type", "リソースタイプではありません"));
        }
        any.push(Condition::ResourceType(t.to_string()));
    }
    if any.is_empty() {
        return Err(bad(name, value, "empty value", "値が空です"));
    }
    Ok(Clause { any })
}

/// For a single-valued date parameter bounded below and above (`date=ge…&date=lt…`), the
/// one value must overlap the window between the bounds: a redundant condition the store
/// can answer from a short index range, where each bound alone matches half the table.
fn add_date_windows(registry: &SearchRegistry, ty: &str, clauses: &mut Vec<Clause>) {
    let mut windows: std::collections::BTreeMap<String, (Option<i64>, Option<i64>)> = Default::default();
    for c in clauses.iter() {
        let [Condition::Index { param, test: Test::Date { op, lo, hi }, negate: false }] = c.any.as_slice() else {
            continue;
        };
        let w = windows.entry(param.clone()).or_default();
        match op {
            RangeOp::Ge => w.0 = Some(w.0.map_or(*lo, |a: i64| a.max(*lo))),
            RangeOp::Gt | RangeOp::Sa => w.0 = Some(w.0.map_or(*hi, |a: i64| a.max(*hi))),
            RangeOp::Lt | RangeOp::Eb => w.1 = Some(w.1.map_or(*lo, |b: i64| b.min(*lo))),
            RangeOp::Le => w.1 = Some(w.1.map_or(*hi, |b: i64| b.min(*hi))),
            _ => {}
        }
    }
    for (param, w) in windows {
        if let (Some(lo), Some(hi)) = w {
            if registry.param(ty, &param).is_some_and(|d| d.single_valued) {
                clauses.push(Clause { any: vec![Condition::DateWindow { param, lo, hi }] });
            }
        }
    }
}

/// The values of parameter `name`, at most `max_values_per_parameter` of them.
fn split_values(env: &Env<'_>, name: &str, v: &str) -> Result<Vec<String>, SearchError> {
    let values = split_escaped(v);
    let max = env.limits.max_values_per_parameter;
    if values.len() > max {
        return Err(LimitExceeded::new(Limit::ValuesPerParameter, max).found(values.len()).at(name).into());
    }
    env.spend(values.len(), name)?;
    Ok(values)
}

/// Splits on commas not escaped with `\`, and unescapes `\,` `\|` `\$` `\\`.
fn split_escaped(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ (',' | '$' | '\\')) => out.last_mut().unwrap().push(n),
                Some('|') => out.last_mut().unwrap().push_str("\\|"),
                Some(n) => {
                    out.last_mut().unwrap().push('\\');
                    out.last_mut().unwrap().push(n);
                }
                None => out.last_mut().unwrap().push('\\'),
            },
            ',' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// Splits on every unescaped `|`, unescaping `\|` in the parts.
pub(crate) fn split_bars(v: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                parts.last_mut().unwrap().push('|');
            }
            '|' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// Splits a token on its first unescaped `|`.
pub(crate) fn split_bar(v: &str) -> (Option<String>, String) {
    let mut prev = '\0';
    for (i, c) in v.char_indices() {
        if c == '|' && prev != '\\' {
            return (Some(v[..i].replace("\\|", "|")), v[i + 1..].replace("\\|", "|"));
        }
        prev = c;
    }
    (None, v.replace("\\|", "|"))
}

pub(crate) fn bad(param: &str, value: &str, why: &str, why_ja: &str) -> SearchError {
    SearchError::BadValue { param: param.into(), value: value.into(), why: why.into(), why_ja: why_ja.into() }
}

fn parse_param(env: &Env<'_>, ty: Option<&str>, name: &str, value: &str, depth: Depth) -> Result<Clause, SearchError> {
    if let Some(rest) = name.strip_prefix("_has:") {
        let depth = Depth { has: depth.has + 1, ..depth };
        if depth.has > env.limits.max_has_depth {
            return Err(LimitExceeded::new(Limit::HasDepth, env.limits.max_has_depth).at(shorten(name)).into());
        }
        return parse_has(env, ty, name, rest, value, depth);
    }
    // Chaining: `subject:Patient.name` or `subject.name`.
    if let Some((head, tail)) = name.split_once('.') {
        let depth = Depth { chain: depth.chain + 1, ..depth };
        if depth.chain > env.limits.max_chain_depth {
            return Err(LimitExceeded::new(Limit::ChainDepth, env.limits.max_chain_depth).at(shorten(name)).into());
        }
        return parse_chain(env, ty, name, head, tail, value, depth);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    let values = split_values(env, name, value)?;
    match code {
        "_id" => {
            if modifier.is_some() && modifier != Some("missing") {
                return Err(SearchError::Unsupported(name.into()));
            }
            if values.iter().any(String::is_empty) {
                return Err(bad(name, value, "empty value", "値が空です"));
            }
            return Ok(Clause { any: values.into_iter().map(Condition::Id).collect() });
        }
        "_lastUpdated" => {
            let mut any = Vec::new();
            for v in &values {
                let (op, lo, hi) = date_value(name, v)?;
                for (lo, hi) in instant_ranges(op, lo, hi) {
                    any.push(Condition::LastUpdated { lo, hi });
                }
            }
            return Ok(Clause { any });
        }
        "_text" | "_content" => return crate::fulltext::parse_clause(name, modifier, value, env.limits.max_text_terms),
        _ => {}
    }
    let ty = ty.ok_or_else(|| SearchError::UnknownParameter(name.into()))?;
    let def = env.registry.param(ty, code).ok_or_else(|| SearchError::UnknownParameter(name.into()))?;
    let kind = def.index_kind().ok_or_else(|| SearchError::Unsupported(format!("{ty}?{code}")))?;
    let param = code.to_string();
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(bad(name, value, "must be true or false", "true か false を指定してください")),
        };
        return Ok(Clause { any: vec![Condition::Missing { param, kind, missing }] });
    }
    if def.kind == K::Composite {
        return crate::composite::parse_clause(&def, name, modifier, value, env.base);
    }
    let mut any = Vec::new();
    for v in &values {
        let (test, negate) = match (def.kind, modifier) {
            (K::Token, Some("not")) => (value_test(K::Token, name, v, &def.targets, env.base)?, true),
            (_, None) => (value_test(def.kind, name, v, &def.targets, env.base)?, false),
            (K::Token, Some(m @ ("in" | "not-in" | "below" | "above"))) => {
                (crate::token_terms::test(env.terminology, m, name, v)?, m == "not-in")
            }
            (K::Token, Some("text")) => {
                if v.is_empty() {
                    return Err(bad(name, v, "empty value", "値が空です"));
                }
                // The texts of coded values, or of a concept with no code (`code:text`).
                let t = normalize(v);
                any.push(Condition::Index { param: param.clone(), test: Test::TokenText(t.clone()), negate: false });
                any.push(Condition::Index { param: format!("{param}:text"), test: Test::TokenText(t), negate: false });
                continue;
            }
            (K::String, Some("contains")) => (Test::StringContains(normalize(v)), false),
            (K::String, Some("exact")) => (Test::StringExact(v.clone()), false),
            (K::Reference, Some(m)) if tsunagu_model::r4().is_resource_type(m) => {
                (reference_test(v, Some(m), &def.targets, env.base), false)
            }
            (K::Reference, Some("identifier")) => {
                let (system, code) = split_bar(v);
                let system = match system {
                    None => SystemMatch::Any,
                    Some(s) if s.is_empty() => SystemMatch::Absent,
                    Some(s) => SystemMatch::Is(s),
                };
                any.push(Condition::Index {
                    param: format!("{code_name}:identifier", code_name = param),
                    test: Test::Token { system, code: Some(code) },
                    negate: false,
                });
                continue;
            }
            (K::Token, Some("of-type")) => {
                let mut parts = v.splitn(3, '|');
                let (Some(sys), Some(ty_code), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(bad(
                        name,
                        v,
                        "of-type takes system|code|value",
                        "of-type は system|code|value の形です",
                    ));
                };
                let system = if sys.is_empty() { SystemMatch::Absent } else { SystemMatch::Is(sys.to_string()) };
                any.push(Condition::Index {
                    param: format!("{param}:of-type"),
                    test: Test::Token { system, code: Some(format!("{ty_code}|{value}")) },
                    negate: false,
                });
                continue;
            }
            (K::Uri, Some("below")) => (Test::UriBelow(v.clone()), false),
            (K::Uri, Some("above")) => (Test::UriAbove(v.clone()), false),
            (_, Some(m)) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        if v.is_empty() {
            return Err(bad(name, v, "empty value", "値が空です"));
        }
        any.push(Condition::Index { param: param.clone(), test, negate });
    }
    if modifier == Some("not") && any.len() > 1 {
        // NOT(a OR b) is not one clause of ORs; ask for one value per `:not` parameter.
        return Err(SearchError::Unsupported(format!("{code}:not with several values (repeat the parameter)")));
    }
    Ok(Clause { any })
}

/// The test for one value of a parameter of `kind` without a modifier (also the second
/// component of a composite).
pub(crate) fn value_test(kind: K, name: &str, v: &str, targets: &[&str], base: &str) -> Result<Test, SearchError> {
    Ok(match kind {
        K::Token => {
            let (system, code) = split_bar(v);
            let system = match system {
                None => SystemMatch::Any,
                Some(s) if s.is_empty() => SystemMatch::Absent,
                Some(s) => SystemMatch::Is(s),
            };
            let code = (!code.is_empty()).then_some(code);
            Test::Token { system, code }
        }
        K::String => Test::StringStarts(normalize(v)),
        K::Date => {
            let (op, lo, hi) = date_value(name, v)?;
            let (lo, hi) = if op == RangeOp::Ap { widen(lo, hi) } else { (lo, hi) };
            Test::Date { op, lo, hi }
        }
        K::Number => {
            let (op, num) = prefixed(v);
            let (value, lo, hi) = number(name, num, op)?;
            Test::Number { op, value, lo, hi }
        }
        K::Quantity => {
            let (op, rest) = prefixed(v);
            // number|system|code, a `|` inside the system or code escaped as `\|`.
            let parts = split_bars(rest);
            if parts.len() > 3 {
                return Err(bad(
                    name,
                    v,
                    "a quantity has at most three parts: number|system|code",
                    "数量は 数値|system|code の最大三つの部分からなります",
                ));
            }
            let (value, lo, hi) = number(name, &parts[0], op)?;
            let part = |k: usize| parts.get(k).filter(|s| !s.is_empty()).cloned();
            let (system, code) = (part(1), part(2));
            Test::Quantity { op, value, lo, hi, system, code }
        }
        K::Reference => reference_test(v, None, targets, base),
        K::Uri => Test::UriExact(v.to_string()),
        K::Composite | K::Special => return Err(SearchError::Unsupported(name.to_string())),
    })
}

fn reference_test(v: &str, type_modifier: Option<&str>, targets: &[&str], base: &str) -> Test {
    let local = v.strip_prefix(base).map(|r| r.trim_start_matches('/')).unwrap_or(v);
    if let Some((t, id)) = split_reference(local) {
        if !local.contains("://") || local != v {
            return Test::Reference { target_type: Some(t.into()), target_id: Some(id.into()), url: None };
        }
    }
    if local.contains("://") || local.starts_with("urn:") {
        return Test::Reference { target_type: None, target_id: None, url: Some(v.to_string()) };
    }
    let target_type =
        type_modifier.map(str::to_string).or_else(|| (targets.len() == 1).then(|| targets[0].to_string()));
    Test::Reference { target_type, target_id: Some(local.to_string()), url: None }
}

fn parse_chain(
    env: &Env<'_>,
    ty: Option<&str>,
    name: &str,
    head: &str,
    tail: &str,
    value: &str,
    depth: Depth,
) -> Result<Clause, SearchError> {
    let ty = ty.ok_or_else(|| SearchError::UnknownParameter(name.into()))?;
    let (code, type_mod) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let def = env.registry.param(ty, code).ok_or_else(|| SearchError::UnknownParameter(name.into()))?;
    if def.kind != K::Reference {
        return Err(bad(
            name,
            value,
            "only reference parameters can be chained",
            "チェーンできるのは参照パラメータだけです",
        ));
    }
    let targets: Vec<String> = match type_mod {
        Some(t) => vec![t.to_string()],
        None if def.targets.is_empty() => tsunagu_model::r4().resource_types().iter().map(|t| t.to_string()).collect(),
        None => def.targets.iter().map(|t| t.to_string()).collect(),
    };
    let mut any = Vec::new();
    let mut last_err = None;
    for target in targets {
        // Only targets that can carry the next link cost anything; each of those is a
        // subquery, counted before it is built.
        if tail_applies(env, &target, tail) {
            env.spend(1, shorten(name))?;
        }
        match parse_param(env, Some(&target), tail, value, depth) {
            Ok(clause) => {
                let query =
                    SearchQuery { resource_type: Some(target.clone()), clauses: vec![clause], ..Default::default() };
                any.push(Condition::Chain { param: code.to_string(), target_type: target, query: Box::new(query) });
            }
            Err(e) => last_err = Some(e),
        }
    }
    if any.is_empty() {
        return Err(last_err.unwrap_or_else(|| SearchError::UnknownParameter(name.into())));
    }
    Ok(Clause { any })
}

/// Refuses a parameter name nested past the limits before any of it is parsed: each
/// level fans out, so counting as the parse goes could meet another limit first.
fn check_depth(env: &Env<'_>, name: &str) -> Result<(), SearchError> {
    let chain = name.matches('.').count();
    if chain > env.limits.max_chain_depth {
        let e = LimitExceeded::new(Limit::ChainDepth, env.limits.max_chain_depth).found(chain);
        return Err(e.at(shorten(name)).into());
    }
    let has = name.matches("_has:").count();
    if has > env.limits.max_has_depth {
        let e = LimitExceeded::new(Limit::HasDepth, env.limits.max_has_depth).found(has);
        return Err(e.at(shorten(name)).into());
    }
    Ok(())
}

/// Whether the rest of a chain can apply to `target`: its first parameter exists there.
fn tail_applies(env: &Env<'_>, target: &str, tail: &str) -> bool {
    let code = tail.split(['.', ':']).next().unwrap_or("");
    code.starts_with('_') || env.registry.param(target, code).is_some()
}

/// A parameter name for a message: hostile names can be megabytes long.
fn shorten(name: &str) -> &str {
    match name.char_indices().nth(120) {
        Some((i, _)) => &name[..i],
        None => name,
    }
}

/// `_has:Observation:patient:code=1234-5` (nested: `_has:A:p:_has:B:q:name=x`).
fn parse_has(
    env: &Env<'_>,
    ty: Option<&str>,
    name: &str,
    rest: &str,
    value: &str,
    depth: Depth,
) -> Result<Clause, SearchError> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(param), Some(inner)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(
            name,
            value,
            "_has needs _has:Type:reference:parameter",
            "_has は _has:Type:reference:parameter の形です",
        ));
    };
    if !tsunagu_model::r4().is_resource_type(source) {
        return Err(SearchError::UnknownParameter(name.into()));
    }
    let def = env.registry.param(source, param).ok_or_else(|| SearchError::UnknownParameter(name.into()))?;
    if def.kind != K::Reference {
        return Err(bad(
            name,
            value,
            "the _has link must be a reference parameter",
            "_has のリンクは参照パラメータでなければなりません",
        ));
    }
    if let Some(ty) = ty {
        if !def.targets.is_empty() && !def.targets.contains(&ty) {
            return Err(bad(
                name,
                value,
                &format!("{source}.{param} cannot refer to {ty}"),
                &format!("{source}.{param} は {ty} を参照できません"),
            ));
        }
    }
    env.spend(1, shorten(name))?;
    let clause = parse_param(env, Some(source), inner, value, depth)?;
    let query = SearchQuery { resource_type: Some(source.to_string()), clauses: vec![clause], ..Default::default() };
    Ok(Clause { any: vec![Condition::Has { source_type: source.into(), param: param.into(), query: Box::new(query) }] })
}

fn parse_sort(env: &Env<'_>, ty: Option<&str>, value: &str) -> Result<Vec<SortKey>, SearchError> {
    let registry = env.registry;
    let n = value.split(',').filter(|v| !v.is_empty()).count();
    if n > env.limits.max_values_per_parameter {
        return Err(LimitExceeded::new(Limit::ValuesPerParameter, env.limits.max_values_per_parameter)
            .found(n)
            .at("_sort")
            .into());
    }
    let mut keys = Vec::new();
    for v in value.split(',').filter(|v| !v.is_empty()) {
        let (descending, code) = match v.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, v),
        };
        let param = match code {
            "" => return Err(bad("_sort", v, "a parameter must follow '-'", "'-' の後にパラメータが必要です")),
            "_id" => SortParam::Id,
            "_lastUpdated" => SortParam::LastUpdated,
            _ => {
                let ty = ty.ok_or_else(|| SearchError::UnknownParameter(format!("_sort={code}")))?;
                let def =
                    registry.param(ty, code).ok_or_else(|| SearchError::UnknownParameter(format!("_sort={code}")))?;
                let kind = def
                    .index_kind()
                    .filter(|k| *k != tsunagu_store::IndexKind::Composite)
                    .ok_or_else(|| SearchError::Unsupported(format!("_sort={code}")))?;
                SortParam::Index { param: code.to_string(), kind }
            }
        };
        // A key repeating an earlier one (same parameter, same direction) cannot reorder
        // anything: the resources it would separate already share its value. Dropped, so
        // `_sort=status,status,…` costs what `_sort=status` does. `date,-date` stays: the
        // ascending key reads the lowest value, the descending one the highest.
        if !keys.iter().any(|k: &SortKey| k.descending == descending && same_param(&k.param, &param)) {
            keys.push(SortKey { param, descending });
        }
    }
    Ok(keys)
}

fn same_param(a: &SortParam, b: &SortParam) -> bool {
    match (a, b) {
        (SortParam::Id, SortParam::Id) | (SortParam::LastUpdated, SortParam::LastUpdated) => true,
        (SortParam::Index { param: a, .. }, SortParam::Index { param: b, .. }) => a == b,
        _ => false,
    }
}

/// One `_include` or `_revinclude` (`name`) value.
fn parse_include(name: &str, v: &str, iterate: bool) -> Result<Include, SearchError> {
    if v == "*" {
        return Ok(Include { source_type: "*".into(), param: None, target_type: None, iterate });
    }
    let mut parts = v.split(':');
    let source = parts.next().unwrap_or("");
    let param = parts.next();
    let target = parts.next();
    if !tsunagu_model::r4().is_resource_type(source) || param.is_none() {
        return Err(bad(
            name,
            v,
            "expected Type:parameter[:targetType]",
            "Type:parameter[:targetType] の形で指定してください",
        ));
    }
    Ok(Include {
        source_type: source.into(),
        param: param.filter(|p| *p != "*").map(str::to_string),
        target_type: target.map(str::to_string),
        iterate,
    })
}

fn prefixed(v: &str) -> (RangeOp, &str) {
    let ops = [
        ("eq", RangeOp::Eq),
        ("ne", RangeOp::Ne),
        ("gt", RangeOp::Gt),
        ("lt", RangeOp::Lt),
        ("ge", RangeOp::Ge),
        ("le", RangeOp::Le),
        ("sa", RangeOp::Sa),
        ("eb", RangeOp::Eb),
        ("ap", RangeOp::Ap),
    ];
    for (p, op) in ops {
        if let Some(rest) = v.strip_prefix(p) {
            if rest.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
                return (op, rest);
            }
        }
    }
    (RangeOp::Eq, v)
}

fn date_value(name: &str, v: &str) -> Result<(RangeOp, i64, i64), SearchError> {
    let (op, date) = prefixed(v);
    let (lo, hi) = parse_range(date).ok_or_else(|| {
        bad(name, v, "not a FHIR date, dateTime or instant", "FHIR の date、dateTime、instant ではありません")
    })?;
    Ok((op, lo, hi))
}

/// `ap` on dates: 10% of the distance from now, at least the value's own precision.
fn widen(lo: i64, hi: i64) -> (i64, i64) {
    let now = chrono::Utc::now().timestamp_millis();
    let gap = ((now - lo).abs() / 10).max(hi - lo);
    (lo - gap, hi + gap)
}

/// Ranges of instants (a point value such as `_lastUpdated`) matching a prefixed date.
fn instant_ranges(op: RangeOp, lo: i64, hi: i64) -> Vec<(i64, i64)> {
    const MIN: i64 = i64::MIN / 2;
    const MAX: i64 = i64::MAX / 2;
    match op {
        RangeOp::Eq => vec![(lo, hi)],
        RangeOp::Ne => vec![(MIN, lo), (hi, MAX)],
        RangeOp::Gt | RangeOp::Sa => vec![(hi, MAX)],
        RangeOp::Lt | RangeOp::Eb => vec![(MIN, lo)],
        RangeOp::Ge => vec![(lo, MAX)],
        RangeOp::Le => vec![(MIN, hi)],
        RangeOp::Ap => {
            let (lo, hi) = widen(lo, hi);
            vec![(lo, hi)]
        }
    }
}

/// A number and the range its written precision implies (`100` → [99.5, 100.5)); `ap`
/// widens to ±10%.
/// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`: FHIR's decimal (leading zeros let through).
fn fhir_decimal(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (s, None),
    };
    let mantissa = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let whole = match mantissa.split_once('.') {
        Some((i, f)) => digits(i) && digits(f),
        None => digits(mantissa),
    };
    whole && exp.is_none_or(digits)
}

fn number(name: &str, s: &str, op: RangeOp) -> Result<(f64, f64, f64), SearchError> {
    // A decimal as FHIR writes it (digits on both sides of a point): Rust would also take
    // `.5`, `NaN`, `inf`, and `1e99999` as infinity, which no stored value equals or
    // orders against usefully.
    let value: f64 = s
        .parse()
        .ok()
        .filter(|v: &f64| fhir_decimal(s) && v.is_finite())
        .ok_or_else(|| bad(name, s, "not a number", "数値ではありません"))?;
    let mantissa = s.split(['e', 'E']).next().unwrap_or(s);
    let exp: i32 = s.split(['e', 'E']).nth(1).and_then(|e| e.parse().ok()).unwrap_or(0);
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| i32::try_from(f.len()).unwrap_or(i32::MAX));
    let half = 0.5 * 10f64.powi(exp.saturating_sub(decimals));
    if op == RangeOp::Ap {
        let w = (value.abs() * 0.1).max(half);
        return Ok((value, value - w, value + w));
    }
    // A precision finer than f64 resolves (`1.000000000000000000e-245`) would leave an
    // empty range; the value itself always matches.
    let hi =
        if value + half > value { value + half } else { value + value.abs().max(f64::MIN_POSITIVE) * f64::EPSILON };
    Ok((value, (value - half).min(value), hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ty: &str, q: &[(&str, &str)]) -> Result<ParsedSearch, SearchError> {
        let pairs: Vec<(String, String)> = q.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        parse_search(
            &SearchRegistry::new(),
            &Terminology::default(),
            Some(ty),
            &pairs,
            true,
            "http://x",
            &Limits::default(),
        )
    }

    #[test]
    fn strict_handling_refuses_unknown_totals_and_includes() {
        assert!(p("Observation", &[("_total", "bogus")]).is_err());
        assert!(p("Observation", &[("_total", "accurate"), ("_include", "Observation:subject")]).is_ok());
        assert!(p("Observation", &[("_include", "Observation:foo")]).is_err());
        assert!(p("Observation", &[("_include", "Observation:code")]).is_err(), "a token, not a reference");
        assert!(p("Observation", &[("_include", "Observation:*"), ("_revinclude", "*")]).is_ok());
    }

    #[test]
    fn numbers_are_finite_decimals() {
        for v in ["NaN", "inf", "-infinity", "1e99999999", "0x10", "five", ".5", "5.", "+5", "1e", "1.2.3", "--1"] {
            assert!(p("Observation", &[("value-quantity", v)]).is_err(), "{v}");
            assert!(p("RiskAssessment", &[("probability", v)]).is_err(), "{v}");
        }
        for v in ["5", "-5.40", "1e3", "gt1.5e-3", "5||mg", "5|http://unitsofmeasure.org|mg", "5|a\\|b|c"] {
            assert!(p("Observation", &[("value-quantity", v)]).is_ok(), "{v}");
        }
        assert!(p("Patient", &[("_id", "")]).is_err());
        assert!(p("Patient", &[("_id", "a,")]).is_err());
        // More than number|system|code, or a unit without a number.
        for v in ["5|||", "5|s|c|d", "|s|c"] {
            assert!(p("Observation", &[("value-quantity", v)]).is_err(), "{v}");
        }
    }

    #[test]
    fn values_split_and_unescape() {
        assert_eq!(split_escaped("a,b\\,c"), vec!["a", "b,c"]);
        assert_eq!(split_bar("urn:x|1"), (Some("urn:x".into()), "1".into()));
        assert_eq!(split_bar("a\\|b"), (None, "a|b".into()));
    }

    #[test]
    fn parses_each_kind() {
        assert!(p("Patient", &[("name", "yamada"), ("birthdate", "ge1970"), ("gender:not", "male")]).is_ok());
        assert!(p("Observation", &[("value-quantity", "gt5.4|http://unitsofmeasure.org|mg")]).is_ok());
        assert!(p("Observation", &[("subject:Patient.name", "x")]).is_ok());
        assert!(p("Observation", &[("subject.name", "x")]).is_ok());
        assert!(p("Patient", &[("_has:Observation:patient:code", "1234")]).is_ok());
        assert!(p("Patient", &[("_sort", "-birthdate,name")]).is_ok());
        assert!(p("Patient", &[("name:missing", "true")]).is_ok());
        assert!(matches!(p("Patient", &[("nonsense", "1")]), Err(SearchError::UnknownParameter(_))));
        assert!(matches!(p("Patient", &[("birthdate", "soon")]), Err(SearchError::BadValue { .. })));
        // The parameter named is the one given.
        let e = p("Patient", &[("_revinclude", "foo")]).err().unwrap();
        assert!(e.to_string().contains("'_revinclude'"), "{e}");
        // Why a value is refused, in each language (not English inside the Japanese).
        let e = p("Patient", &[("birthdate", "soon")]).err().unwrap();
        assert!(e.to_string().contains("not a FHIR date"), "{e}");
        assert!(e.japanese().contains("FHIR の date") && !e.japanese().contains("not a"), "{}", e.japanese());
        assert!(matches!(p("Patient", &[("name:above", "x")]), Err(SearchError::Unsupported(_))));
        let r = p("Patient", &[("_include", "Patient:organization"), ("_revinclude:iterate", "Observation:subject")])
            .unwrap();
        assert_eq!(r.includes.len(), 1);
        assert!(r.revincludes[0].iterate);
    }

    #[test]
    fn a_quantity_sort_is_paired_with_a_required_code_on_the_resource_itself() {
        let within = |ty: &str, q: &[(&str, &str)]| p(ty, q).unwrap().query.sort_within;
        let loinc = |code: &str, system: Option<&str>| {
            Some(tsunagu_store::SortWithin {
                composite: "code-value-quantity".into(),
                code: code.into(),
                system: system.map(str::to_string),
            })
        };
        let sorted = ("_sort", "-value-quantity,date");
        assert_eq!(within("Observation", &[("code", "8302-2"), sorted]), loinc("8302-2", None));
        assert_eq!(
            within("Observation", &[("status", "final"), ("code", "http://loinc.org|8302-2"), sorted]),
            loinc("8302-2", Some("http://loinc.org"))
        );
        // Not where the code is one of several, negated, without a system by request, or
        // not the first sort key's partner.
        for q in [
            vec![("code", "8302-2,8310-5"), sorted],
            vec![("code:not", "8302-2"), sorted],
            vec![("code", "|8302-2"), sorted],
            vec![("code", "8302-2"), ("_sort", "date,value-quantity")],
            vec![("code", "8302-2")],
            // The combo and component composites pair values of parts of the resource.
            vec![("combo-code", "8302-2"), ("_sort", "combo-value-quantity")],
            vec![("component-code", "8480-6"), ("_sort", "component-value-quantity")],
        ] {
            assert_eq!(within("Observation", &q), None, "{q:?}");
        }
    }

    #[test]
    fn a_quantity_condition_is_tested_with_its_required_code() {
        let params = |q: &[(&str, &str)]| -> Vec<String> {
            let clauses = p("Observation", q).unwrap().query.clauses;
            clauses
                .iter()
                .flat_map(|c| &c.any)
                .map(|c| match c {
                    Condition::Index { param, .. } => param.clone(),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        let both = ["code", "code-value-quantity"];
        assert_eq!(params(&[("code", "http://loinc.org|8302-2"), ("value-quantity", "gt180")]), both);
        assert_eq!(params(&[("value-quantity", "gt180||cm"), ("code", "8302-2")]), ["code-value-quantity", "code"]);
        assert_eq!(
            params(&[("code", "8302-2"), ("value-quantity", "gt1"), ("value-quantity", "lt9")]),
            ["code", "code-value-quantity", "code-value-quantity"]
        );
        // Only with one code required, on the resource's own composite.
        let unpaired = [
            [("code", "8302-2,8310-5"), ("value-quantity", "gt180")],
            [("code:not", "8302-2"), ("value-quantity", "gt180")],
            [("code", "8302-2"), ("value-quantity", "gt1,lt0")],
            [("combo-code", "8302-2"), ("combo-value-quantity", "gt180")],
        ];
        for q in unpaired {
            assert!(!params(&q).contains(&"code-value-quantity".to_string()), "{q:?}");
        }
    }

    fn limited(ty: &str, q: &[(&str, &str)], limits: &Limits) -> Result<ParsedSearch, SearchError> {
        let pairs: Vec<(String, String)> = q.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        parse_search(&SearchRegistry::new(), &Terminology::default(), Some(ty), &pairs, true, "http://x", limits)
    }

    fn limit_of(r: Result<ParsedSearch, SearchError>) -> Option<Limit> {
        match r {
            Err(SearchError::Limit(l)) => Some(l.limit),
            _ => None,
        }
    }

    #[test]
    fn limits_stop_deep_and_wide_searches() {
        let l = Limits::default();
        let chain4 = "organization.partof.partof.partof.name";
        assert!(limited("Patient", &[(chain4, "x")], &l).is_ok());
        let chain5 = "organization.partof.partof.partof.partof.name";
        assert_eq!(limit_of(limited("Patient", &[(chain5, "x")], &l)), Some(Limit::ChainDepth));
        let has = "_has:Observation:patient:".repeat(5) + "code";
        assert_eq!(limit_of(limited("Patient", &[(&has, "x")], &l)), Some(Limit::HasDepth));
        let many = vec!["x"; 1001].join(",");
        assert_eq!(limit_of(limited("Patient", &[("_id", &many)], &l)), Some(Limit::ValuesPerParameter));
        assert!(limited("Patient", &[("_id", &vec!["x"; 1000].join(","))], &l).is_ok());
        let tight = Limits { max_search_conditions: 10, ..Limits::default() };
        let pairs: Vec<(&str, &str)> = (0..11).map(|_| ("name", "x")).collect();
        assert_eq!(limit_of(limited("Patient", &pairs, &tight)), Some(Limit::SearchConditions));
        // An untyped chain fans out to every type with the next parameter, level by level.
        let fan = "derived-from.derived-from.derived-from.derived-from._id";
        assert_eq!(limit_of(limited("ActivityDefinition", &[(fan, "x")], &l)), Some(Limit::SearchConditions));
        let words = vec!["w"; 33].join(" ");
        assert_eq!(limit_of(limited("Patient", &[("_text", &words)], &l)), Some(Limit::TextTerms));
        assert_eq!(
            limit_of(limited("Patient", &[("_sort", &vec!["name"; 1001].join(","))], &l)),
            Some(Limit::ValuesPerParameter)
        );
    }

    #[test]
    fn repeated_sort_keys_are_dropped_but_opposite_directions_kept() {
        let keys = |v: &str| {
            p("Observation", &[("_sort", v)])
                .unwrap()
                .query
                .sort
                .iter()
                .map(|k| {
                    let name = match &k.param {
                        SortParam::Id => "_id".to_string(),
                        SortParam::LastUpdated => "_lastUpdated".to_string(),
                        SortParam::Index { param, .. } => param.clone(),
                    };
                    if k.descending {
                        format!("-{name}")
                    } else {
                        name
                    }
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&vec!["status"; 60].join(",")), ["status"]);
        assert_eq!(keys("date,-date,date,code,_id,_id,-_id"), ["date", "-date", "code", "_id", "-_id"]);
        assert_eq!(keys("-_lastUpdated,status,-_lastUpdated"), ["-_lastUpdated", "status"]);
    }

    #[test]
    fn numbers_carry_precision() {
        let (v, lo, hi) = number("n", "100", RangeOp::Eq).unwrap();
        assert_eq!((v, lo, hi), (100.0, 99.5, 100.5));
        let (_, lo, hi) = number("n", "1.50", RangeOp::Eq).unwrap();
        assert!((lo - 1.495).abs() < 1e-12 && (hi - 1.505).abs() < 1e-12);
    }
}
