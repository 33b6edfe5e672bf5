//! Differential test of `_sort` over the R4 examples: every date, token and string
//! parameter of the types below, ascending and descending, compared with an order computed
//! by brute force (`differential/`) from the parameter's FHIRPath expression: each resource
//! sorts by its smallest value ascending and its largest descending (a date by its start),
//! resources without a value last, ties in write order in the sort's direction.

use crate::differential;

use differential as brute;
use tsunagu_interaction::{InteractionConfig, RequestContext, SearchParams};
use tsunagu_model::SearchParamType as K;

const TYPES: &[&str] =
    &["Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "Procedure", "DiagnosticReport"];

/// A sort value as the store compares it: dates by their start, texts bytewise.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Key {
    Date(i64),
    Text(String),
}

#[test]
fn sort_orders_match_a_brute_force_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = InteractionConfig { max_count: 10_000, ..Default::default() };
    let Some((fhir, by_type)) = brute::load_examples(dir.path(), TYPES, config) else { return };
    let (mut queries, mut mismatches) = (0, Vec::new());
    for ty in TYPES {
        let Some(resources) = by_type.get(ty) else { continue };
        for p in tsunagu_model::r4().search_params(ty) {
            if p.code.starts_with('_') || p.expression.is_empty() || !matches!(p.kind, K::Date | K::Token | K::String) {
                continue;
            }
            let Ok(expr) = tsunagu_fhirpath::compile_for(ty, &brute::as_meant(p.expression)) else { continue };
            let keys: Vec<Vec<Key>> = resources
                .iter()
                .map(|r| {
                    let nodes = brute::nodes(&expr, r);
                    match p.kind {
                        K::Date => nodes
                            .iter()
                            .flat_map(|(t, v)| brute::date_ranges(t, v))
                            .map(|(lo, _)| Key::Date(lo))
                            .collect(),
                        K::Token => nodes
                            .iter()
                            .flat_map(|(_, v)| brute::codes(v))
                            .filter(|(_, c)| !c.is_empty())
                            .map(|(_, c)| Key::Text(c))
                            .collect(),
                        _ => nodes
                            .iter()
                            .flat_map(|(_, v)| brute::strings(v))
                            .map(|s| Key::Text(tsunagu_search::normalize(&s)))
                            .collect(),
                    }
                })
                .collect();
            if keys.iter().all(Vec::is_empty) {
                continue;
            }
            for descending in [false, true] {
                // Write order is load order; ties and the resources without a value follow
                // it in the sort's direction.
                let mut order: Vec<usize> = (0..resources.len()).collect();
                let value = |i: usize| if descending { keys[i].iter().max() } else { keys[i].iter().min() };
                order.sort_by(|&a, &b| {
                    let by_value = match (value(a), value(b)) {
                        (Some(x), Some(y)) if descending => y.cmp(x),
                        (Some(x), Some(y)) => x.cmp(y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    };
                    by_value.then(if descending { b.cmp(&a) } else { a.cmp(&b) })
                });
                let want: Vec<&str> = order.iter().map(|&i| resources[i]["id"].as_str().unwrap()).collect();
                let sort = format!("{}{}", if descending { "-" } else { "" }, p.code);
                let query = format!("_sort={sort}&_count=10000");
                let got: Vec<String> =
                    match fhir.search(Some(ty), &SearchParams::parse(&query), &RequestContext::new("http://x")) {
                        Ok(b) => b["entry"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                            .collect(),
                        Err(e) => {
                            mismatches.push(format!("{ty}?_sort={sort}: error {e}"));
                            continue;
                        }
                    };
                queries += 1;
                if got != want {
                    let at = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
                    mismatches.push(format!(
                        "{ty}?_sort={sort}: differs from position {at}: got {:?}, want {:?}",
                        &got[at..got.len().min(at + 3)],
                        &want[at..want.len().min(at + 3)]
                    ));
                }
            }
        }
    }
    println!("search differential (_sort): {queries} queries, {} mismatches", mismatches.len());
    for m in mismatches.iter().take(25) {
        println!("  MISMATCH {m}");
    }
    assert!(queries >= 40, "too few _sort queries ({queries}) to mean anything");
    assert!(mismatches.is_empty());
}
