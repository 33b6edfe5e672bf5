//! The promise `SearchQuery::sort_within` makes to the store: a composite whose expression
//! is the resource itself and whose components are two of the type's own parameters, the
//! second a quantity, holds, for each code of the first, exactly the values of the second.
//! (Not so for strings: `value-string` also reads a CodeableConcept's text, which
//! `code-value-string`'s component does not.) Checked on every R4
//! example of a type with such a composite (Observations with quantities, SampledData,
//! components, several codings).

mod examples;

use std::collections::{BTreeMap, BTreeSet};
use tsunagu_model::SearchParamType as K;
use tsunagu_store::IndexValue;

#[test]
fn composite_pairs_hold_the_values_of_their_parameters() {
    let registry = tsunagu_search::SearchRegistry::new();
    let (mut resources, mut pairs_checked) = (0, 0);
    let found = examples::each_r4_example(|name, ty, resource| {
        let params = registry.params(ty);
        let code_of = |url: &str| params.iter().find(|p| p.url == url).map(|p| p.code);
        let roots: Vec<_> = params
            .iter()
            .filter(|p| p.kind == K::Composite && p.expression.as_ref().is_some_and(|e| e.source() == ty))
            .filter_map(|p| match p.components.as_slice() {
                [a, b] if b.kind == K::Quantity => Some((p.code, code_of(a.definition)?, code_of(b.definition)?)),
                _ => None,
            })
            .collect();
        if roots.is_empty() {
            return;
        }
        resources += 1;
        let entries = registry.index_entries(ty, &resource);
        for (composite, first, second) in roots {
            // The second parameter's values, and the composite's by first code.
            let values: BTreeSet<String> =
                entries.iter().filter(|e| e.param == second).map(|e| format!("{:?}", e.value)).collect();
            let mut paired: BTreeMap<(Option<String>, String), BTreeSet<String>> = BTreeMap::new();
            for e in entries.iter().filter(|e| e.param == composite) {
                let IndexValue::Composite { system, code, second } = &e.value else { panic!("{name}: {e:?}") };
                paired.entry((system.clone(), code.clone())).or_default().insert(format!("{:?}", second));
            }
            for e in entries.iter().filter(|e| e.param == first) {
                let IndexValue::Token { system, code, .. } = &e.value else { continue };
                let got = paired.remove(&(system.clone(), code.clone())).unwrap_or_default();
                assert_eq!(got, values, "{name}: {composite} rows of {code} against {second}");
                pairs_checked += 1;
            }
            assert!(paired.is_empty(), "{name}: {composite} has codes {first} lacks: {paired:?}");
        }
    });
    if !found {
        return;
    }
    println!("{resources} examples with a composite on the resource itself, {pairs_checked} codes checked");
    assert!(resources > 50 && pairs_checked > 60, "only {resources} examples, {pairs_checked} codes");
}
