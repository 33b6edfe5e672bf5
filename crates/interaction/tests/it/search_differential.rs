//! Differential test of token search: for the R4 examples of several types, every token
//! parameter is searched with `system|code` for values found in the data, and the answer is
//! compared with a brute-force scan that evaluates the parameter's FHIRPath expression on
//! every stored resource and matches codes itself. The scan shares no code with the index
//! extraction or the query planner (only the FHIRPath engine and the model facts).

use crate::differential;

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use tsunagu_interaction::{RequestContext, SearchParams};

const TYPES: &[&str] = &["Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "AllergyIntolerance"];

/// (system, code) pairs a node carries as a token, by its JSON shape.
fn codes_of(v: &Value) -> Vec<(Option<String>, String)> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match v {
        Value::String(x) => vec![(None, x.clone())],
        Value::Bool(b) => vec![(None, b.to_string())],
        Value::Object(_) => {
            if let Some(codings) = v.get("coding").and_then(Value::as_array) {
                codings.iter().filter_map(|c| Some((s(c, "system"), s(c, "code")?))).collect()
            } else if let Some(code) = s(v, "code") {
                vec![(s(v, "system"), code)]
            } else if let Some(value) = s(v, "value") {
                // Identifier, ContactPoint
                let sys = if v.get("use").is_some()
                    && v.get("system").is_some_and(|x| x.as_str().is_some_and(|y| !y.contains(':')))
                {
                    None // ContactPoint.system is a kind (phone, email), not a code system
                } else {
                    s(v, "system")
                };
                vec![(sys, value)]
            } else {
                vec![]
            }
        }
        _ => vec![],
    }
}

#[test]
fn token_search_matches_a_brute_force_scan() {
    let dir = tempfile::tempdir().unwrap();
    let Some((fhir, by_type)) = differential::load_examples(dir.path(), TYPES, Default::default()) else { return };
    let ctx = RequestContext::new("http://x");
    let model = tsunagu_model::r4();
    let (mut checked, mut mismatches) = (0, Vec::new());
    for ty in TYPES {
        let resources = &by_type[ty];
        for p in model.search_params(ty).filter(|p| p.kind == tsunagu_model::SearchParamType::Token) {
            if p.code.starts_with('_') || p.expression.is_empty() {
                continue;
            }
            let Ok(expr) = tsunagu_fhirpath::compile_for(ty, &differential::as_meant(p.expression)) else { continue };
            // Brute force: which resources carry which codes for this parameter.
            let mut carriers: HashMap<(Option<String>, String), BTreeSet<String>> = HashMap::new();
            for r in resources {
                let Ok(items) = expr.evaluate(r) else { continue };
                for item in &items {
                    let json = item.to_json();
                    for c in codes_of(&json) {
                        carriers.entry(c).or_default().insert(r["id"].as_str().unwrap().to_string());
                    }
                }
            }
            let mut sample: Vec<_> = carriers.keys().cloned().collect();
            sample.sort();
            for key in sample.into_iter().take(4) {
                let (system, code) = &key;
                if code.contains([',', '|', '\\', '$', '&', '#', '+', '%']) {
                    continue; // needs escaping rules, covered elsewhere
                }
                let q = match system {
                    Some(s) => format!("{}={}|{}&_count=500", p.code, s, code),
                    None => format!("{}={}&_count=500", p.code, code),
                };
                let b = fhir.search(Some(ty), &SearchParams::parse(&q), &ctx).unwrap();
                let got: BTreeSet<String> = b["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                    .collect();
                // Without a system, the search also matches the code under any system.
                let want: BTreeSet<String> = match system {
                    Some(_) => carriers[&key].clone(),
                    None => carriers.iter().filter(|((_, c), _)| c == code).flat_map(|(_, ids)| ids.clone()).collect(),
                };
                checked += 1;
                if got != want {
                    mismatches.push(format!("{ty}?{q}: search {got:?}, scan {want:?}"));
                }
            }
        }
    }
    println!("token search vs brute force: {checked} queries, {} mismatches", mismatches.len());
    for m in mismatches.iter().take(20) {
        println!("  MISMATCH {m}");
    }
    assert!(checked > 100, "too few queries ({checked}) to mean anything");
    assert!(mismatches.is_empty());
}
