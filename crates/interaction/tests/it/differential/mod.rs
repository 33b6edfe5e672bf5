//! The brute-force side of the search differential tests: values read from FHIRPath
//! results by their JSON shape, and the matching rules of R4 search.html applied to them
//! directly. Written apart from the index extraction and the query planner on purpose; it
//! shares only the FHIRPath engine, the model facts and the text folding with them.

// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use tsunagu_fhirpath::{EvalContext, Hooks, Item};

/// `resolve()` answers with the target's type, which is all `where(resolve() is X)` needs.
pub struct TypeFromReference;

impl Hooks for TypeFromReference {
    fn resolve(&self, reference: &str) -> Option<Value> {
        let path = reference.split("/_history/").next().unwrap_or(reference);
        let mut parts = path.rsplit('/');
        let (_id, ty) = (parts.next()?, parts.next()?);
        tsunagu_model::r4().is_resource_type(ty).then(|| json!({ "resourceType": ty }))
    }
}

/// The R4 examples of `types` written through `Interactions` into a store in `dir` (those
/// the server accepts), and the same resources by type for the brute-force side. `None`
/// (after a SKIP line; a panic under `CI=true`) when the shared examples are absent.
pub fn load_examples(
    dir: &std::path::Path,
    types: &[&'static str],
    config: tsunagu_interaction::InteractionConfig,
) -> Option<(tsunagu_interaction::Interactions, std::collections::HashMap<&'static str, Vec<Value>>)> {
    use std::io::Read;
    let path = tsunagu_reference::find("fhir/hl7.fhir.r4.examples-4.0.1.tgz")?;
    let file = std::fs::File::open(path).unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir);
    let check = std::sync::Arc::new(tsunagu_interaction::NoCheck);
    let fhir = tsunagu_interaction::Interactions::new(store, check, config);
    let mut by_type: std::collections::HashMap<&'static str, Vec<Value>> = Default::default();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let Some(ty) = types.iter().find(|t| name.starts_with(&format!("package/{t}-"))) else { continue };
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let Some(id) = v["id"].as_str().map(str::to_string) else { continue };
        if fhir.update(ty, &id, v.clone(), None, &tsunagu_interaction::RequestContext::new("")).is_ok() {
            by_type.entry(ty).or_default().push(v);
        }
    }
    Some((fhir, by_type))
}

/// A search parameter's expression as R4 means it: `path as Type` picks the nodes of that
/// type, where strict FHIRPath would fail on a path with several nodes (two components
/// of a blood pressure). Every R4 use has a plain path on the left.
pub fn as_meant(expression: &str) -> String {
    let mut out = String::new();
    for (i, part) in expression.split(" as ").enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let ty_len = part.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(part.len());
        out.push_str(&format!(".ofType({})", &part[..ty_len]));
        out.push_str(&part[ty_len..]);
    }
    out
}

/// The JSON of every node `expr` finds in `resource`.
pub fn nodes(expr: &tsunagu_fhirpath::Expression, resource: &Value) -> Vec<(String, Value)> {
    let hooks = TypeFromReference;
    let ctx = EvalContext::new().with_hooks(&hooks);
    let items: Vec<Item> = expr.evaluate_with(resource, &ctx).unwrap_or_default();
    items.iter().map(|i| (i.type_name().to_string(), i.to_json())).collect()
}

/// Nodes of a component expression evaluated on one node of a composite.
pub fn component_nodes(
    expr: &tsunagu_fhirpath::Expression,
    context: &Item<'_>,
    resource: &Value,
) -> Vec<(String, Value)> {
    let hooks = TypeFromReference;
    let ctx = EvalContext::new().with_hooks(&hooks);
    let items = expr.evaluate_on(context.clone(), resource, Some(&ctx)).unwrap_or_default();
    items.iter().map(|i| (i.type_name().to_string(), i.to_json())).collect()
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The strings a string parameter searches in a node (search.html: every part of a name
/// or address).
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(m) => {
            let parts = ["family", "given", "prefix", "suffix", "text", "line", "city", "district", "state"];
            let mut out = Vec::new();
            for key in parts.iter().chain(&["postalCode", "country"]) {
                match m.get(*key) {
                    Some(Value::String(s)) => out.push(s.clone()),
                    Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
                    _ => {}
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The (system, code) pairs of a token node: a Coding, a CodeableConcept's codings, a
/// code or other primitive, an Identifier's value.
pub fn codes(v: &Value) -> Vec<(Option<String>, String)> {
    let pair = |c: &Value, key: &str| Some((text(c, "system").map(str::to_string), text(c, key)?.to_string()));
    match v {
        Value::String(s) => vec![(None, s.clone())],
        Value::Bool(b) => vec![(None, b.to_string())],
        Value::Object(m) if m.contains_key("coding") => {
            v["coding"].as_array().into_iter().flatten().filter_map(|c| pair(c, "code")).collect()
        }
        Value::Object(m) if m.contains_key("code") => pair(v, "code").into_iter().collect(),
        Value::Object(_) => pair(v, "value").into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A FHIR date, dateTime or instant as the half-open ms range it denotes (dates in UTC).
pub fn date_range(s: &str) -> Option<(i64, i64)> {
    let day = |y: i32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d)
            .map(|n| Utc.from_utc_datetime(&n.and_hms_opt(0, 0, 0).unwrap()).timestamp_millis())
    };
    match s.len() {
        4 => {
            let y: i32 = s.parse().ok()?;
            Some((day(y, 1, 1)?, day(y + 1, 1, 1)?))
        }
        7 => {
            let (y, m): (i32, u32) = (s[..4].parse().ok()?, s[5..].parse().ok()?);
            let next = if m == 12 { day(y + 1, 1, 1)? } else { day(y, m + 1, 1)? };
            Some((day(y, m, 1)?, next))
        }
        10 => {
            let lo = day(s[..4].parse().ok()?, s[5..7].parse().ok()?, s[8..].parse().ok()?)?;
            Some((lo, lo + 86_400_000))
        }
        _ => {
            let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
            let fraction = s.split_once('.').map_or(0, |(_, f)| f.bytes().take_while(u8::is_ascii_digit).count());
            Some((t, t + 10i64.pow(3 - fraction.min(3) as u32)))
        }
    }
}

/// The ranges a date parameter searches in a node: a date, a Period (open ends unbounded)
/// or a Timing's events.
pub fn date_ranges(ty: &str, v: &Value) -> Vec<(i64, i64)> {
    match (ty, v) {
        (_, Value::String(s)) => date_range(s).into_iter().collect(),
        ("Period", _) => {
            let start = text(v, "start").and_then(date_range).map(|r| r.0);
            let end = text(v, "end").and_then(date_range).map(|r| r.1);
            if start.is_none() && end.is_none() {
                return Vec::new();
            }
            vec![(start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX))]
        }
        ("Timing", _) => v["event"].as_array().into_iter().flatten().filter_map(|e| date_range(e.as_str()?)).collect(),
        _ => Vec::new(),
    }
}

/// Search prefixes on a range value `[lo, hi)` against the search range `[sl, sh)`
/// (search.html, "prefix" table).
pub fn range_matches(prefix: &str, (lo, hi): (i64, i64), (sl, sh): (i64, i64)) -> bool {
    let contained = lo >= sl && hi <= sh;
    match prefix {
        "eq" => contained,
        "ne" => !contained,
        "gt" => hi > sh,
        "lt" => lo < sl,
        "ge" => hi > sh || contained,
        "le" => lo < sl || contained,
        "sa" => lo >= sh,
        "eb" => hi <= sl,
        other => panic!("prefix {other} not covered"),
    }
}

/// A number search value: the value and the half-width its written precision implies
/// (`1.50e3` is precise to 10).
pub fn number_with_precision(s: &str) -> (f64, f64) {
    let (mantissa, exponent) = s.split_once(['e', 'E']).unwrap_or((s, "0"));
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    (s.parse().unwrap(), 0.5 * 10f64.powi(exponent.parse::<i32>().unwrap() - decimals))
}

/// Prefixes on a point value (numbers, quantities): `eq`/`ne` use the precision range,
/// which always holds the search value itself.
pub fn number_matches(prefix: &str, value: f64, search: &str) -> bool {
    let (n, half) = number_with_precision(search);
    let within = value == n || (value >= n - half && value < n + half);
    match prefix {
        "eq" => within,
        "ne" => !within,
        "gt" | "sa" => value > n,
        "lt" | "eb" => value < n,
        "ge" => value >= n,
        "le" => value <= n,
        other => panic!("prefix {other} not covered"),
    }
}

/// A Quantity node: (value as written, value, system, code, unit).
#[derive(Clone)]
pub struct Qty {
    pub written: String,
    pub value: f64,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
}

pub fn quantity(v: &Value) -> Option<Qty> {
    let n = v.get("value")?;
    let written = n.to_string();
    Some(Qty {
        value: written.parse().ok()?,
        written,
        system: text(v, "system").map(str::to_string),
        code: text(v, "code").map(str::to_string),
        unit: text(v, "unit").map(str::to_string),
    })
}

/// `[prefix]number|system|code` on a quantity: with a system, system and code must match;
/// without one, the code or the human unit may (search.html#quantity).
pub fn quantity_matches(q: &Qty, prefix: &str, number: &str, system: &str, code: &str) -> bool {
    let units_ok = match (system, code) {
        (_, "") => true,
        ("", c) => q.code.as_deref() == Some(c) || q.unit.as_deref() == Some(c),
        (s, c) => q.system.as_deref() == Some(s) && q.code.as_deref() == Some(c),
    };
    units_ok && number_matches(prefix, q.value, number)
}

/// A reference node as (type, id) for literal references, else the reference as written.
#[derive(Clone)]
pub enum Target {
    Literal(String, String),
    Url(String),
}

pub fn target(v: &Value, base: &str) -> Option<Target> {
    let r = text(v, "reference").or(v.as_str())?;
    // References to this server's base are local; other absolute URLs are only URLs.
    let local = r.strip_prefix(base).map(|x| x.trim_start_matches('/')).unwrap_or(r);
    let path = local.split("/_history/").next().unwrap_or(local);
    if let Some((ty, id)) = path.split_once('/') {
        if !path.contains(':') && tsunagu_model::r4().is_resource_type(ty) && !id.is_empty() && !id.contains('/') {
            return Some(Target::Literal(ty.to_string(), id.to_string()));
        }
    }
    Some(Target::Url(r.to_string()))
}

/// Narrative text: markup removed, the usual entities decoded.
pub fn narrative_text(div: &str) -> String {
    let no_tags = regex_free_strip(div);
    no_tags
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn regex_free_strip(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Percent-encodes all but letters, digits and the characters search syntax uses.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~|$:/,".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
