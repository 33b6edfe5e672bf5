//! Every R4 search parameter expression must compile against its resource type: the type
//! checker must not reject real-world expressions.

#[test]
fn all_search_parameter_expressions_compile() {
    let m = tsunagu_model::r4();
    let mut failures = Vec::new();
    let mut n = 0;
    for rt in m.resource_types() {
        for sp in m.search_params(rt) {
            if sp.expression.is_empty() {
                continue;
            }
            // A few core parameters are declared on one resource with an expression for
            // another (e.g. an example parameter on Patient that reads DocumentReference):
            // those are data defects, not expressions for this type.
            let head = sp.expression.split(['.', '(', ' ']).next().unwrap_or("");
            if m.is_resource_type(head) && head != *rt {
                println!("skipped (expression is for {head}): {rt}.{}", sp.code);
                continue;
            }
            n += 1;
            if let Err(e) = tsunagu_fhirpath::compile_for(rt, sp.expression) {
                failures.push(format!("{rt}.{}: `{}`: {e}", sp.code, sp.expression));
            }
        }
    }
    for f in &failures {
        println!("{f}");
    }
    println!("{} of {n} search parameter expressions compiled", n - failures.len());
    assert!(failures.is_empty(), "{} expressions failed to compile", failures.len());
}

/// The plain-path shortcut must agree with the general evaluator, on every search
/// parameter of the suite's example resources.
#[test]
fn shortcut_agrees_with_general_evaluator() {
    let Some(dir) = tsunagu_reference::find("conformance/fhirpath/input-json") else { return };
    let entries = std::fs::read_dir(&dir).unwrap();
    let m = tsunagu_model::r4();
    let mut checked = 0;
    let mut shortcuts = 0;
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let res: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rt = res["resourceType"].as_str().unwrap().to_string();
        for sp in m.search_params(&rt) {
            let Ok(e) = tsunagu_fhirpath::compile_for(&rt, sp.expression) else {
                continue;
            };
            // Precomputed walks also replace plain-path parts of other expressions.
            let fast = e.evaluate(&res).map(|r| tsunagu_fhirpath::to_json_output(&r));
            let general = e.evaluate_general(&res).map(|r| tsunagu_fhirpath::to_json_output(&r));
            assert!(fast.is_ok(), "{rt}: {}: {:?}", sp.expression, fast);
            if e.has_shortcut() {
                shortcuts += 1;
            }
            assert_eq!(fast, general, "{rt}: {}", sp.expression);
            checked += 1;
        }
    }
    println!("{checked} evaluations agreed ({shortcuts} whole-expression shortcuts)");
    assert!(shortcuts > 20);
}
