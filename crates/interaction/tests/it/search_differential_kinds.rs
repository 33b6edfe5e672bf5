//! Differential tests of string, date, number, quantity, reference, uri, `:missing`,
//! composite and `_text` search over the R4 examples: queries are made from values found in
//! the data, and each answer is compared with a brute-force scan (`differential/`) that
//! evaluates the parameter's FHIRPath expression on every stored resource and applies the
//! matching rules of search.html itself. `ap` (whose width is the server's choice) is not
//! covered.

use crate::differential;

use differential as brute;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;
use tsunagu_interaction::{InteractionConfig, Interactions, RequestContext, SearchParams};
use tsunagu_model::SearchParamType as K;

const BASE: &str = "http://x";
const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "AllergyIntolerance",
    "Procedure",
    "DiagnosticReport",
    "Immunization",
    "RiskAssessment",
    "MolecularSequence",
    "ChargeItem",
    "DocumentReference",
    "Group",
    "ValueSet",
    "CodeSystem",
    "Questionnaire",
    "Practitioner",
    "Organization",
    "Location",
    "CarePlan",
];
/// Values sampled per parameter (the first ones in sorted order: deterministic).
const SAMPLES: usize = 3;

struct Data {
    fhir: Interactions,
    by_type: HashMap<&'static str, Vec<Value>>,
}

fn data() -> Option<&'static Data> {
    static DATA: OnceLock<Option<Data>> = OnceLock::new();
    DATA.get_or_init(|| {
        // The store must outlive every test of the process, and a static is never dropped:
        // a fixed directory under Cargo's scratch space, emptied here, so that each run
        // leaves at most one behind (a leaked temporary directory left 400 MB per run).
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("search_differential_kinds");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = InteractionConfig { max_count: 10_000, ..Default::default() };
        let (fhir, by_type) = differential::load_examples(&dir, TYPES, config)?;
        Some(Data { fhir, by_type })
    })
    .as_ref()
}

/// Queries run and mismatches found for one kind of parameter.
struct Tally {
    kind: &'static str,
    queries: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn new(kind: &'static str) -> Self {
        Tally { kind, queries: 0, mismatches: Vec::new() }
    }

    /// Runs `name=value` on `ty` and compares the ids found with those the scan wants.
    fn check(&mut self, d: &Data, ty: &str, name: &str, value: &str, want: impl Fn(&Value) -> bool) {
        let query = format!("{name}={}&_count=10000", brute::encode(value));
        let ctx = RequestContext::new(BASE);
        let got: BTreeSet<String> = match d.fhir.search(Some(ty), &SearchParams::parse(&query), &ctx) {
            Ok(b) => b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect(),
            Err(e) => {
                self.mismatches.push(format!("{ty}?{name}={value}: error {e}"));
                return;
            }
        };
        let expected: BTreeSet<String> =
            d.by_type[ty].iter().filter(|r| want(r)).map(|r| r["id"].as_str().unwrap().to_string()).collect();
        self.queries += 1;
        if got != expected {
            let extra: Vec<_> = got.difference(&expected).collect();
            let missing: Vec<_> = expected.difference(&got).collect();
            self.mismatches.push(format!("{ty}?{name}={value}: search also {extra:?}, misses {missing:?}"));
        }
    }

    fn finish(self, at_least: usize) {
        println!("search differential ({}): {} queries, {} mismatches", self.kind, self.queries, self.mismatches.len());
        for m in self.mismatches.iter().take(25) {
            println!("  MISMATCH {m}");
        }
        assert!(self.queries >= at_least, "too few {} queries ({}) to mean anything", self.kind, self.queries);
        assert!(self.mismatches.is_empty());
    }
}

/// Values that would need search escapes, which these tests do not cover.
fn plain(s: &str) -> bool {
    !s.is_empty() && !s.contains([',', '|', '$', '\\'])
}

/// The indexed parameters of `kind` on `ty`, with their compiled expressions.
fn params(ty: &str, kind: K) -> Vec<(&'static str, tsunagu_fhirpath::Expression)> {
    tsunagu_model::r4()
        .search_params(ty)
        .filter(|p| p.kind == kind && !p.code.starts_with('_') && !p.expression.is_empty())
        .filter_map(|p| Some((p.code, tsunagu_fhirpath::compile_for(ty, &brute::as_meant(p.expression)).ok()?)))
        .collect()
}

/// `f` of every resource of `ty`, computed once: the scan answers many queries per
/// parameter, and FHIRPath evaluation is its cost.
fn memo<T: Clone>(d: &Data, ty: &str, f: impl Fn(&Value) -> T) -> impl Fn(&Value) -> T {
    let values: HashMap<String, T> =
        d.by_type[ty].iter().map(|r| (r["id"].as_str().unwrap().to_string(), f(r))).collect();
    move |r: &Value| values[r["id"].as_str().unwrap()].clone()
}

fn sample<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let set: BTreeSet<T> = values.into_iter().collect();
    set.into_iter().take(SAMPLES).collect()
}

#[test]
fn string_search_matches_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut t = Tally::new("string");
    let fold = tsunagu_search::normalize;
    for ty in TYPES {
        for (code, expr) in params(ty, K::String) {
            let of = |r: &Value| -> Vec<String> {
                brute::nodes(&expr, r).iter().flat_map(|(_, v)| brute::strings(v)).collect()
            };
            let of = memo(d, ty, of);
            let all = d.by_type[ty].iter().flat_map(&of).filter(|s| plain(s));
            for s in sample(all) {
                let chars: Vec<char> = s.chars().collect();
                let start: String = chars.iter().take(3).collect();
                t.check(d, ty, code, &start, |r| of(r).iter().any(|x| fold(x).starts_with(&fold(&start))));
                t.check(d, ty, &format!("{code}:exact"), &s, |r| of(r).contains(&s));
                let middle: String =
                    if chars.len() > 2 { chars[1..chars.len() - 1].iter().collect() } else { s.clone() };
                if !middle.trim().is_empty() {
                    t.check(d, ty, &format!("{code}:contains"), &middle, |r| {
                        of(r).iter().any(|x| fold(x).contains(&fold(&middle)))
                    });
                }
            }
        }
    }
    t.finish(100);
}

#[test]
fn date_search_matches_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut t = Tally::new("date");
    for ty in TYPES {
        for (code, expr) in params(ty, K::Date) {
            let of = |r: &Value| -> Vec<(i64, i64)> {
                brute::nodes(&expr, r).iter().flat_map(|(ty, v)| brute::date_ranges(ty, v)).collect()
            };
            let of = memo(d, ty, of);
            let written = |r: &Value| -> Vec<String> {
                let mut out = Vec::new();
                for (_, v) in brute::nodes(&expr, r) {
                    let strings = [v.as_str(), v["start"].as_str(), v["end"].as_str()];
                    out.extend(strings.into_iter().flatten().map(str::to_string));
                }
                out
            };
            for w in sample(d.by_type[ty].iter().flat_map(written).filter(|w| brute::date_range(w).is_some())) {
                let mut queries: Vec<(&str, String)> = Vec::new();
                if w.len() >= 10 {
                    for p in ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"] {
                        queries.push((p, w[..10].to_string()));
                    }
                }
                if w.len() > 10 {
                    queries.extend([("eq", w.clone()), ("gt", w.clone()), ("le", w.clone())]);
                }
                if w.len() >= 7 {
                    queries.extend([("eq", w[..7].to_string()), ("le", w[..7].to_string())]);
                }
                queries.extend([("eq", w[..4].to_string()), ("ge", w[..4].to_string()), ("lt", w[..4].to_string())]);
                for (prefix, value) in queries {
                    let search = brute::date_range(&value).unwrap();
                    t.check(d, ty, code, &format!("{prefix}{value}"), |r| {
                        of(r).into_iter().any(|v| brute::range_matches(prefix, v, search))
                    });
                }
            }
        }
    }
    t.finish(300);
}

#[test]
fn number_and_quantity_search_match_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut numbers = Tally::new("number");
    for ty in TYPES {
        for (code, expr) in params(ty, K::Number) {
            let of = |r: &Value| -> Vec<String> {
                brute::nodes(&expr, r).into_iter().filter(|(_, v)| v.is_number()).map(|(_, v)| v.to_string()).collect()
            };
            let of = memo(d, ty, of);
            for w in sample(d.by_type[ty].iter().flat_map(&of)) {
                let mut queries: Vec<(&str, String)> =
                    ["eq", "ne", "gt", "lt", "ge", "le"].iter().map(|p| (*p, w.clone())).collect();
                if let Some((whole, _)) = w.split_once('.') {
                    queries.push(("eq", whole.to_string()));
                }
                for (prefix, value) in queries {
                    numbers.check(d, ty, code, &format!("{prefix}{value}"), |r| {
                        of(r).iter().any(|v| brute::number_matches(prefix, v.parse().unwrap(), &value))
                    });
                }
            }
        }
    }
    numbers.finish(20);
    let mut quantities = Tally::new("quantity");
    for ty in TYPES {
        for (code, expr) in params(ty, K::Quantity) {
            let of = |r: &Value| -> Vec<brute::Qty> {
                brute::nodes(&expr, r)
                    .iter()
                    .filter(|(t, _)| t != "Money")
                    .filter_map(|(_, v)| brute::quantity(v))
                    .collect()
            };
            let of = memo(d, ty, of);
            let keys = d.by_type[ty].iter().flat_map(&of).map(|q| (q.written, q.system, q.code, q.unit));
            for (written, system, unit_code, unit) in sample(keys) {
                let mut queries: Vec<(&str, String, String)> = vec![("", String::new(), String::new())];
                for p in ["ne", "gt", "le"] {
                    queries.push((p, String::new(), String::new()));
                }
                if let (Some(s), Some(c)) = (&system, &unit_code) {
                    queries.push(("", s.clone(), c.clone()));
                    queries.push(("ge", s.clone(), c.clone()));
                }
                queries.extend(unit_code.iter().chain(&unit).map(|u| ("", String::new(), u.clone())));
                for (prefix, s, c) in queries {
                    if !plain(&c) && !c.is_empty() {
                        continue;
                    }
                    let value = match (s.is_empty(), c.is_empty()) {
                        (true, true) => format!("{prefix}{written}"),
                        _ => format!("{prefix}{written}|{s}|{c}"),
                    };
                    let p = if prefix.is_empty() { "eq" } else { prefix };
                    quantities.check(d, ty, code, &value, |r| {
                        of(r).iter().any(|q| brute::quantity_matches(q, p, &written, &s, &c))
                    });
                }
            }
        }
    }
    quantities.finish(50);
}

#[test]
fn reference_and_uri_search_match_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut refs = Tally::new("reference");
    for ty in TYPES {
        for (code, expr) in params(ty, K::Reference) {
            let of = |r: &Value| -> Vec<brute::Target> {
                brute::nodes(&expr, r).iter().filter_map(|(_, v)| brute::target(v, BASE)).collect()
            };
            let of = memo(d, ty, of);
            let keys = d.by_type[ty].iter().flat_map(&of).map(|t| match t {
                brute::Target::Literal(t, id) => (Some(t), id),
                brute::Target::Url(u) => (None, u),
            });
            for (target_type, value) in sample(keys.filter(|(_, v)| plain(v) && !v.starts_with('#'))) {
                match target_type {
                    Some(t) => {
                        let literal = |r: &Value| {
                            of(r).iter().any(|x| matches!(x, brute::Target::Literal(a, b) if *a == t && *b == value))
                        };
                        refs.check(d, ty, code, &format!("{t}/{value}"), literal);
                        refs.check(d, ty, &format!("{code}:{t}"), &value, literal);
                        refs.check(d, ty, code, &format!("{BASE}/{t}/{value}"), literal);
                    }
                    None => refs.check(d, ty, code, &value, |r| {
                        of(r).iter().any(|x| matches!(x, brute::Target::Url(u) if *u == value))
                    }),
                }
            }
        }
    }
    refs.finish(100);
    let mut uris = Tally::new("uri");
    for ty in TYPES {
        for (code, expr) in params(ty, K::Uri) {
            let of = |r: &Value| -> Vec<String> {
                brute::nodes(&expr, r).iter().filter_map(|(_, v)| v.as_str().map(str::to_string)).collect()
            };
            let of = memo(d, ty, of);
            for u in sample(d.by_type[ty].iter().flat_map(&of).filter(|u| plain(u))) {
                uris.check(d, ty, code, &u, |r| of(r).contains(&u));
                if let Some(i) = u.rfind('/').filter(|i| *i > 8) {
                    let stem = &u[..i];
                    uris.check(d, ty, &format!("{code}:below"), stem, |r| of(r).iter().any(|x| x.starts_with(stem)));
                }
                let deeper = format!("{u}/more");
                uris.check(d, ty, &format!("{code}:above"), &deeper, |r| of(r).iter().any(|x| deeper.starts_with(x)));
            }
        }
    }
    uris.finish(20);
}

#[test]
fn missing_matches_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut t = Tally::new(":missing");
    for ty in TYPES {
        for kind in [K::String, K::Date, K::Number, K::Quantity, K::Reference, K::Uri] {
            for (code, expr) in params(ty, kind) {
                let has = |r: &Value| {
                    brute::nodes(&expr, r).iter().any(|(node_ty, v)| match kind {
                        K::String => brute::strings(v).iter().any(|s| !s.is_empty()),
                        K::Date => !brute::date_ranges(node_ty, v).is_empty(),
                        K::Number => v.is_number(),
                        K::Quantity => node_ty != "Money" && brute::quantity(v).is_some() || v.get("value").is_some(),
                        K::Reference => v.get("reference").is_some() || v.is_string(),
                        _ => v.is_string(),
                    })
                };
                t.check(d, ty, &format!("{code}:missing"), "true", |r| !has(r));
                t.check(d, ty, &format!("{code}:missing"), "false", has);
            }
        }
    }
    t.finish(200);
}

/// How a composite query's second component is written, and what it matches.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Second {
    Quantity { prefix: &'static str, written: String, units: Option<(String, String)> },
    Token(Option<String>, String),
    StringStart(String),
    Date { prefix: &'static str, value: String },
    Reference(String, String),
}

impl Second {
    fn query(&self) -> String {
        match self {
            Second::Quantity { prefix, written, units: Some((s, c)) } => format!("{prefix}{written}|{s}|{c}"),
            Second::Quantity { prefix, written, units: None } => format!("{prefix}{written}"),
            Second::Token(Some(s), c) => format!("{s}|{c}"),
            Second::Token(None, c) | Second::StringStart(c) => c.clone(),
            Second::Date { prefix, value } => format!("{prefix}{value}"),
            Second::Reference(t, id) => format!("{t}/{id}"),
        }
    }

    fn matches(&self, kind: K, node_ty: &str, v: &Value) -> bool {
        match self {
            Second::Quantity { prefix, written, units } => brute::quantity(v).is_some_and(|q| {
                let (s, c) = units.clone().unwrap_or_default();
                brute::quantity_matches(&q, if prefix.is_empty() { "eq" } else { prefix }, written, &s, &c)
            }),
            Second::Token(system, code) => {
                brute::codes(v).iter().any(|(s, c)| c == code && (system.is_none() || s == system))
            }
            Second::StringStart(start) => {
                let fold = tsunagu_search::normalize;
                brute::strings(v).iter().any(|x| fold(x).starts_with(&fold(start)))
            }
            Second::Date { prefix, value } => {
                let search = brute::date_range(value).unwrap();
                brute::date_ranges(node_ty, v).into_iter().any(|r| brute::range_matches(prefix, r, search))
            }
            Second::Reference(t, id) => {
                kind == K::Reference
                    && matches!(brute::target(v, BASE), Some(brute::Target::Literal(a, b)) if a == *t && b == *id)
            }
        }
    }

    /// The queries a second-component node suggests.
    fn from_node(kind: K, node_ty: &str, v: &Value) -> Vec<Second> {
        match kind {
            K::Quantity => brute::quantity(v)
                .into_iter()
                .flat_map(|q| {
                    let units = q.system.clone().zip(q.code.clone()).filter(|(_, c)| plain(c));
                    [
                        Second::Quantity { prefix: "", written: q.written.clone(), units: None },
                        Second::Quantity { prefix: "gt", written: q.written.clone(), units: None },
                        Second::Quantity { prefix: "", written: q.written, units },
                    ]
                })
                .collect(),
            K::Token => brute::codes(v).into_iter().map(|(s, c)| Second::Token(s, c)).collect(),
            K::String => brute::strings(v).iter().map(|s| Second::StringStart(s.chars().take(3).collect())).collect(),
            K::Date => {
                let written = [v.as_str(), v["start"].as_str()].into_iter().flatten().find(|w| w.len() >= 10);
                let _ = node_ty;
                written.map_or(Vec::new(), |w| {
                    vec![
                        Second::Date { prefix: "eq", value: w[..10].to_string() },
                        Second::Date { prefix: "ge", value: w[..7].to_string() },
                    ]
                })
            }
            K::Reference => match brute::target(v, BASE) {
                Some(brute::Target::Literal(t, id)) => vec![Second::Reference(t, id)],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// For each node of a composite's expression: the first component's codes and the second
/// component's nodes.
type NodePairs = Vec<(Vec<(Option<String>, String)>, Vec<(String, Value)>)>;

#[test]
fn composite_search_matches_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut t = Tally::new("composite");
    let model = tsunagu_model::r4();
    let kind_of = |ty: &str, url: &str| model.search_params(ty).find(|p| p.url == url).map(|p| p.kind);
    for ty in TYPES {
        for p in model.search_params(ty).filter(|p| p.kind == K::Composite && p.components.len() == 2) {
            let Ok(base) = tsunagu_fhirpath::compile_for(ty, &brute::as_meant(p.expression)) else { continue };
            let [(_, first), (second_url, second)] = [p.components[0], p.components[1]];
            // R4's `as(DateTime)` means the FHIR dateTime type (see the registry).
            let (Ok(first), Ok(second)) = (
                tsunagu_fhirpath::compile(first),
                tsunagu_fhirpath::compile(&second.replace(".as(DateTime)", ".as(dateTime)")),
            ) else {
                continue;
            };
            let Some(kind) = kind_of(ty, second_url) else { continue };
            let pairs = |r: &Value| -> NodePairs {
                let hooks = brute::TypeFromReference;
                let ctx = tsunagu_fhirpath::EvalContext::new().with_hooks(&hooks);
                let nodes = base.evaluate_with(r, &ctx).unwrap_or_default();
                nodes
                    .iter()
                    .map(|n| {
                        let codes =
                            brute::component_nodes(&first, n, r).iter().flat_map(|(_, v)| brute::codes(v)).collect();
                        (codes, brute::component_nodes(&second, n, r))
                    })
                    .collect()
            };
            let pairs = memo(d, ty, pairs);
            let mut candidates = BTreeSet::new();
            for r in &d.by_type[ty] {
                for (codes, seconds) in pairs(r) {
                    for (s, c) in codes.iter().filter(|(_, c)| plain(c)) {
                        for (node_ty, v) in &seconds {
                            for second in Second::from_node(kind, node_ty, v) {
                                candidates.insert((s.clone(), c.clone(), second));
                            }
                        }
                    }
                }
            }
            for (system, code, second) in candidates.into_iter().take(4 * SAMPLES) {
                let first_query = match &system {
                    Some(s) => format!("{s}|{code}"),
                    None => code.clone(),
                };
                t.check(d, ty, p.code, &format!("{first_query}${}", second.query()), |r| {
                    pairs(r).iter().any(|(codes, seconds)| {
                        codes.iter().any(|(s, c)| *c == code && (system.is_none() || *s == system))
                            && seconds.iter().any(|(node_ty, v)| second.matches(kind, node_ty, v))
                    })
                });
            }
        }
    }
    t.finish(40);
}

#[test]
fn narrative_search_matches_a_brute_force_scan() {
    let Some(d) = data() else { return };
    let mut t = Tally::new("_text");
    let words_of = |r: &Value| -> Vec<String> {
        let div = r.pointer("/text/div").and_then(Value::as_str).unwrap_or("");
        let folded = tsunagu_search::normalize(&brute::narrative_text(div));
        folded.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
    };
    for ty in TYPES {
        let words_of = memo(d, ty, words_of);
        let all: BTreeSet<String> = d.by_type[ty]
            .iter()
            .flat_map(&words_of)
            .filter(|w| w.len() >= 5 && w.bytes().all(|b| b.is_ascii_alphabetic()))
            .collect();
        let step = (all.len() / 6).max(1);
        let picked: Vec<String> = all.into_iter().step_by(step).collect();
        for w in &picked {
            t.check(d, ty, "_text", w, |r| words_of(r).contains(w));
        }
        for pair in picked.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            t.check(d, ty, "_text", &format!("{a} {b}"), |r| words_of(r).contains(a) && words_of(r).contains(b));
            t.check(d, ty, "_text", &format!("{a} OR {b}"), |r| words_of(r).contains(a) || words_of(r).contains(b));
        }
        // Phrases: two adjacent words of the first narrative that has some.
        let Some(seq) = d.by_type[ty].iter().map(&words_of).find(|w| w.len() > 3) else { continue };
        let (a, b) = (&seq[1], &seq[2]);
        t.check(d, ty, "_text", &format!("\"{a} {b}\""), |r| words_of(r).windows(2).any(|w| w[0] == *a && w[1] == *b));
    }
    t.finish(100);
}
