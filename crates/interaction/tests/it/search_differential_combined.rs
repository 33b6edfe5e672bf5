//! Differential test of the planner on combinations: seeded random searches of 2–4
//! conditions (token, `:not`, `:missing`, date ranges, string prefixes, references) and
//! 0–3 sort keys over the R4 examples and some Synthea patients (for Patients, `_has` of
//! Observations, Conditions and Encounters meeting one of their own conditions too), each
//! answered three ways —
//! one large page, small pages followed through their `next` links, and `_total` — and
//! compared with a brute-force answer (`differential/`): the resources every condition
//! holds for, ordered by the sort keys (each resource by its smallest value ascending and
//! its largest descending, a date by its start, no value last), ties in write order in the
//! first key's direction. Whatever plan the store picks (index intersections, sort walks,
//! write-order walks) must give the same pages, order and totals.

use crate::differential;

use differential as brute;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;
use tsunagu_interaction::{InteractionConfig, Interactions, RequestContext, SearchParams};
use tsunagu_model::SearchParamType as K;

const BASE: &str = "http://x";
const TYPES: &[&str] =
    &["Observation", "Condition", "Encounter", "Patient", "MedicationRequest", "Procedure", "DiagnosticReport"];
const QUERIES_PER_TYPE: usize = 120;
/// Synthea patient bundles loaded besides the R4 examples.
const SYNTHEA_BUNDLES: usize = 6;

/// A sort value as the store compares it: dates by their start, texts bytewise.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Key {
    Date(i64),
    Text(String),
}

/// One condition: the query text and, per resource (in write order), whether it holds.
struct Condition {
    query: String,
    holds: Vec<bool>,
}

/// A parameter that can sort: per resource, its sort values.
struct Sortable {
    param: &'static str,
    keys: Vec<Vec<Key>>,
}

/// What a reference sorts by: the target's id, its type (both as the reference names them,
/// a version left out; empty for a reference that names none), then the reference as
/// written (a canonical's `|version` included), joined by U+0001.
fn reference_sort_key(v: &Value) -> Option<String> {
    let (named, written) = match v.get("reference") {
        Some(r) => (r.as_str()?, r.as_str()?),
        None => {
            let u = v.as_str()?;
            (u.split('|').next().unwrap_or(u), u)
        }
    };
    let path = named.find("/_history/").map_or(named, |i| &named[..i]);
    let mut parts = path.rsplit('/');
    let (id, ty) = match (parts.next(), parts.next()) {
        (Some(id), Some(ty)) if !id.is_empty() && tsunagu_model::r4().is_resource_type(ty) => (id, ty),
        _ => ("", ""),
    };
    Some(format!("{id}\u{1}{ty}\u{1}{written}"))
}

/// xorshift64*: the queries are the same in every run (the seed is printed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() < 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:/".contains(&b))
}

/// The most frequent values in `per_resource` (each counted once per resource), at most `n`.
fn frequent<T: Ord + Clone + std::hash::Hash>(per_resource: &[Vec<T>], n: usize) -> Vec<T> {
    let mut count: HashMap<T, usize> = HashMap::new();
    for values in per_resource {
        let mut seen: Vec<&T> = values.iter().collect();
        seen.sort();
        seen.dedup();
        for v in seen {
            *count.entry(v.clone()).or_default() += 1;
        }
    }
    let mut all: Vec<(usize, T)> = count.into_iter().map(|(v, c)| (c, v)).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(n).map(|(_, v)| v).collect()
}

/// The conditions and sort keys the generator draws from for one type.
fn pools(ty: &str, resources: &[Value]) -> (Vec<Condition>, Vec<Sortable>) {
    let (mut conditions, mut sortables) = (Vec::new(), Vec::new());
    for p in tsunagu_model::r4().search_params(ty) {
        if p.code.starts_with('_') || p.expression.is_empty() {
            continue;
        }
        let Ok(expr) = tsunagu_fhirpath::compile_for(ty, &brute::as_meant(p.expression)) else { continue };
        let nodes: Vec<Vec<(String, Value)>> = resources.iter().map(|r| brute::nodes(&expr, r)).collect();
        // ContactPoint systems are kinds (phone, email), not code systems: left out.
        if nodes.iter().flatten().any(|(t, _)| t == "ContactPoint") {
            continue;
        }
        let cond = |query: String, holds: Vec<bool>| Condition { query, holds };
        match p.kind {
            K::Token => {
                let codes: Vec<Vec<(Option<String>, String)>> =
                    nodes.iter().map(|ns| ns.iter().flat_map(|(_, v)| brute::codes(v)).collect()).collect();
                if codes.iter().all(Vec::is_empty) {
                    continue;
                }
                let present: Vec<bool> = codes.iter().map(|c| !c.is_empty()).collect();
                conditions.push(cond(format!("{}:missing=true", p.code), present.iter().map(|b| !b).collect()));
                conditions.push(cond(format!("{}:missing=false", p.code), present));
                for (i, (system, code)) in frequent(&codes, 3).into_iter().enumerate() {
                    if !plain(&code) || system.as_deref().is_some_and(|s| !plain(s)) {
                        continue;
                    }
                    let exact: Vec<bool> =
                        codes.iter().map(|cs| cs.iter().any(|(s, c)| *c == code && *s == system)).collect();
                    let any_system: Vec<bool> = codes.iter().map(|cs| cs.iter().any(|(_, c)| *c == code)).collect();
                    if let Some(s) = &system {
                        conditions
                            .push(cond(format!("{}={}", p.code, brute::encode(&format!("{s}|{code}"))), exact.clone()));
                    }
                    conditions.push(cond(format!("{}={}", p.code, brute::encode(&code)), any_system.clone()));
                    if i == 0 {
                        // `:not`: the resources without a matching value, those without any value included.
                        conditions.push(cond(
                            format!("{}:not={}", p.code, brute::encode(&code)),
                            any_system.iter().map(|b| !b).collect(),
                        ));
                    }
                }
                let keys = codes
                    .iter()
                    .map(|cs| cs.iter().filter(|(_, c)| !c.is_empty()).map(|(_, c)| Key::Text(c.clone())).collect())
                    .collect();
                sortables.push(Sortable { param: p.code, keys });
            }
            K::Date => {
                let ranges: Vec<Vec<(i64, i64)>> =
                    nodes.iter().map(|ns| ns.iter().flat_map(|(t, v)| brute::date_ranges(t, v)).collect()).collect();
                if ranges.iter().all(Vec::is_empty) {
                    continue;
                }
                // Months written in the data, as search values.
                let months: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|ns| {
                        ns.iter()
                            .flat_map(|(_, v)| [v.as_str(), v["start"].as_str(), v["end"].as_str()])
                            .flatten()
                            .filter(|s| s.len() >= 7)
                            .map(|s| s[..7].to_string())
                            .collect()
                    })
                    .collect();
                for month in frequent(&months, 2) {
                    for (prefix, value) in
                        [("ge", month.clone()), ("lt", month.clone()), ("eq", month[..4].to_string())]
                    {
                        let Some(search) = brute::date_range(&value) else { continue };
                        let holds = ranges
                            .iter()
                            .map(|rs| rs.iter().any(|r| brute::range_matches(prefix, *r, search)))
                            .collect();
                        conditions.push(cond(format!("{}={prefix}{value}", p.code), holds));
                    }
                }
                let keys = ranges.iter().map(|rs| rs.iter().map(|(lo, _)| Key::Date(*lo)).collect()).collect();
                sortables.push(Sortable { param: p.code, keys });
            }
            K::String => {
                let strings: Vec<Vec<String>> =
                    nodes.iter().map(|ns| ns.iter().flat_map(|(_, v)| brute::strings(v)).collect()).collect();
                let folded: Vec<Vec<String>> =
                    strings.iter().map(|ss| ss.iter().map(|s| tsunagu_search::normalize(s)).collect()).collect();
                let starts: Vec<Vec<String>> = folded
                    .iter()
                    .map(|ss| ss.iter().map(|s| s.chars().take(2).collect::<String>()).filter(|s| plain(s)).collect())
                    .collect();
                for start in frequent(&starts, 2) {
                    let holds = folded.iter().map(|ss| ss.iter().any(|s| s.starts_with(&start))).collect();
                    conditions.push(cond(format!("{}={}", p.code, brute::encode(&start)), holds));
                }
                if folded.iter().any(|ss| !ss.is_empty()) {
                    let keys = folded.iter().map(|ss| ss.iter().map(|s| Key::Text(s.clone())).collect()).collect();
                    sortables.push(Sortable { param: p.code, keys });
                }
            }
            K::Reference => {
                let targets: Vec<Vec<(String, String)>> = nodes
                    .iter()
                    .map(|ns| {
                        ns.iter()
                            .filter_map(|(_, v)| match brute::target(v, BASE)? {
                                brute::Target::Literal(t, id) => Some((t, id)),
                                brute::Target::Url(_) => None,
                            })
                            .collect()
                    })
                    .collect();
                for (t, id) in frequent(&targets, 2) {
                    if !plain(&id) {
                        continue;
                    }
                    let holds = targets.iter().map(|ts| ts.iter().any(|(a, b)| *a == t && *b == id)).collect();
                    conditions.push(cond(format!("{}={t}/{id}", p.code), holds));
                }
                let keys: Vec<Vec<Key>> = nodes
                    .iter()
                    .map(|ns| ns.iter().filter_map(|(_, v)| reference_sort_key(v)).map(Key::Text).collect())
                    .collect();
                if keys.iter().any(|k| !k.is_empty()) {
                    sortables.push(Sortable { param: p.code, keys });
                }
            }
            _ => {}
        }
    }
    (conditions, sortables)
}

/// Source types and their reference to a Patient for `_has` conditions on Patients.
const HAS_SOURCES: &[(&str, &str)] = &[("Observation", "subject"), ("Condition", "subject"), ("Encounter", "subject")];

/// `_has:{source}:subject:{condition}` for each plain condition (no modifier) of the
/// sources' own pools, at most six per source: a Patient holds when some source resource
/// that refers to it holds the condition.
fn has_conditions(patients: &[Value], by_type: &ByType) -> Vec<Condition> {
    let mut out = Vec::new();
    for (source, param) in HAS_SOURCES {
        let resources = &by_type[source];
        let p = tsunagu_model::r4().search_params(source).into_iter().find(|p| p.code == *param).expect("param");
        let expr = tsunagu_fhirpath::compile_for(source, &brute::as_meant(p.expression)).unwrap();
        let refers: Vec<Vec<String>> = resources
            .iter()
            .map(|r| {
                brute::nodes(&expr, r)
                    .iter()
                    .filter_map(|(_, v)| match brute::target(v, BASE)? {
                        brute::Target::Literal(t, id) if t == "Patient" => Some(id),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let (conditions, _) = pools(source, resources);
        let plain = conditions.iter().filter(|c| c.query.split('=').next().is_some_and(|p| !p.contains(':')));
        for c in plain.take(6) {
            let holds = patients
                .iter()
                .map(|patient| {
                    let id = patient["id"].as_str().unwrap_or_default();
                    (0..resources.len()).any(|i| c.holds[i] && refers[i].iter().any(|r| r == id))
                })
                .collect();
            out.push(Condition { query: format!("_has:{source}:{param}:{}", c.query), holds });
        }
    }
    out
}

/// The brute-force answer: the resources (by write order) every condition holds for, in
/// the order of `sort`.
fn expected(conditions: &[&Condition], sort: &[(&Sortable, bool)], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).filter(|&i| conditions.iter().all(|c| c.holds[i])).collect();
    fn value(s: &Sortable, desc: bool, i: usize) -> Option<&Key> {
        if desc {
            s.keys[i].iter().max()
        } else {
            s.keys[i].iter().min()
        }
    }
    order.sort_by(|&a, &b| {
        for (s, desc) in sort {
            let by = match (value(s, *desc, a), value(s, *desc, b)) {
                (Some(x), Some(y)) if *desc => y.cmp(x),
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if by != Ordering::Equal {
                return by;
            }
        }
        let first_desc = sort.first().is_some_and(|(_, d)| *d);
        if first_desc {
            b.cmp(&a)
        } else {
            a.cmp(&b)
        }
    });
    order
}

fn ids(b: &Value) -> Vec<String> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every match of `query` on `ty`, following `next` links from pages of `count`.
fn paged(fhir: &Interactions, ty: &str, query: &str, count: usize) -> Result<Vec<String>, String> {
    let ctx = RequestContext::new(BASE);
    let mut params = SearchParams::parse(&format!("{query}&_count={count}"));
    let mut out = Vec::new();
    for _ in 0..1000 {
        let b = fhir.search(Some(ty), &params, &ctx).map_err(|e| e.to_string())?;
        out.extend(ids(&b));
        let next = b["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next");
        match next.and_then(|l| l["url"].as_str()).and_then(|u| u.split_once('?')) {
            Some((_, q)) => params = SearchParams::parse(q),
            None => return Ok(out),
        }
    }
    Err("the pages never end".into())
}

/// The stored resources of each type, in write order.
type ByType = HashMap<&'static str, Vec<Value>>;

/// The loaded server and what it stored, by type in write order (as the brute force sees it).
fn load() -> Option<(tempfile::TempDir, Interactions, ByType)> {
    let dir = tempfile::tempdir().unwrap();
    let config = InteractionConfig { max_count: 10_000, ..Default::default() };
    let (fhir, _) = brute::load_examples(dir.path(), TYPES, config)?;
    let path = tsunagu_reference::find("data/synthea-r4-dev.tar.zst")?;
    let mut archive = tar::Archive::new(zstd::Decoder::new(std::fs::File::open(path).unwrap()).unwrap());
    let mut loaded = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.path().unwrap().to_string_lossy().ends_with(".json") {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        let bundle: Value = serde_json::from_str(&text).unwrap();
        if bundle["type"] != "transaction" {
            continue;
        }
        fhir.bundle(bundle, &RequestContext::new(BASE)).unwrap();
        loaded += 1;
        if loaded == SYNTHEA_BUNDLES {
            break;
        }
    }
    let mut by_type = HashMap::new();
    for ty in TYPES {
        let b = fhir.search(Some(ty), &SearchParams::parse("_count=10000"), &RequestContext::new(BASE)).unwrap();
        let resources: Vec<Value> =
            b["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()).collect();
        by_type.insert(*ty, resources);
    }
    Some((dir, fhir, by_type))
}

#[test]
fn combined_conditions_and_sorts_match_a_brute_force_answer() {
    let Some((_dir, fhir, by_type)) = load() else { return };
    let seed = 0x5eed_2026_1203_u64;
    let mut rng = Rng(seed);
    let (mut queries, mut nonempty, mut sorted, mut mismatches) = (0, 0, 0, Vec::new());
    let mut has_matched = 0;
    for ty in TYPES {
        let resources = &by_type[ty];
        let (mut conditions, sortables) = pools(ty, resources);
        if *ty == "Patient" {
            conditions.extend(has_conditions(resources, &by_type));
        }
        if conditions.len() < 4 {
            continue;
        }
        for _ in 0..QUERIES_PER_TYPE {
            let mut chosen: Vec<&Condition> = Vec::new();
            let k = 2 + rng.below(3);
            while chosen.len() < k {
                let c = &conditions[rng.below(conditions.len())];
                if !chosen.iter().any(|x| std::ptr::eq(*x, c)) {
                    chosen.push(c);
                }
            }
            // Most draws of 2–4 independent conditions match nothing; every other query
            // keeps only conditions on two parameters that often hold together.
            if rng.below(2) == 0 {
                chosen.sort_by_key(|c| std::cmp::Reverse(c.holds.iter().filter(|h| **h).count()));
                chosen.truncate(2);
            }
            let mut sort: Vec<(&Sortable, bool)> = Vec::new();
            let s = rng.below(4).min(sortables.len());
            while sort.len() < s {
                let key = &sortables[rng.below(sortables.len())];
                if !sort.iter().any(|(x, _)| x.param == key.param) {
                    sort.push((key, rng.below(2) == 1));
                }
            }
            let want: Vec<String> = expected(&chosen, &sort, resources.len())
                .into_iter()
                .map(|i| resources[i]["id"].as_str().unwrap().to_string())
                .collect();
            let mut query: Vec<String> = chosen.iter().map(|c| c.query.clone()).collect();
            if !sort.is_empty() {
                let keys: Vec<String> =
                    sort.iter().map(|(s, desc)| format!("{}{}", if *desc { "-" } else { "" }, s.param)).collect();
                query.push(format!("_sort={}", keys.join(",")));
                sorted += 1;
            }
            let query = query.join("&");
            queries += 1;
            nonempty += usize::from(!want.is_empty());
            has_matched += usize::from(!want.is_empty() && query.contains("_has:"));
            let ctx = RequestContext::new(BASE);
            let whole = fhir.search(Some(ty), &SearchParams::parse(&format!("{query}&_count=10000")), &ctx);
            let got = match whole {
                Ok(b) => ids(&b),
                Err(e) => {
                    mismatches.push(format!("{ty}?{query}: error {e}"));
                    continue;
                }
            };
            if got != want {
                let at = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
                mismatches.push(format!(
                    "{ty}?{query}: {} found, {} wanted, first difference at {at}: got {:?}, want {:?}",
                    got.len(),
                    want.len(),
                    &got[at..got.len().min(at + 3)],
                    &want[at..want.len().min(at + 3)]
                ));
                continue;
            }
            match paged(&fhir, ty, &query, 1 + rng.below(7)) {
                Ok(pages) if pages == want => {}
                Ok(pages) => mismatches.push(format!("{ty}?{query}: pages give {} (want {})", pages.len(), want.len())),
                Err(e) => mismatches.push(format!("{ty}?{query}: pages: {e}")),
            }
            let total = fhir
                .search(Some(ty), &SearchParams::parse(&format!("{query}&_total=accurate&_count=2")), &ctx)
                .map(|b| b["total"].as_u64());
            if total.as_ref().ok() != Some(&Some(want.len() as u64)) {
                mismatches.push(format!("{ty}?{query}: _total {total:?}, want {}", want.len()));
            }
        }
    }
    println!(
        "search differential (combined): {queries} queries ({nonempty} with matches, {has_matched} of them with \
         `_has`, {sorted} sorted), {} mismatches (seed {seed:#x})",
        mismatches.len()
    );
    for m in mismatches.iter().take(25) {
        println!("  MISMATCH {m}");
    }
    assert!(queries >= 500 && nonempty >= 200, "too few queries with matches ({nonempty} of {queries})");
    assert!(has_matched >= 20, "too few `_has` queries with matches ({has_matched})");
    assert!(mismatches.is_empty());
}
