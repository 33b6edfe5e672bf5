//! Unit tests for the semantics that are easy to get wrong: choice types, primitive
//! extensions, partial dates, exact decimals, quantities, empty propagation, hooks,
//! locations, error kinds.

use serde_json::{json, Value};
use tsunagu_fhirpath::{
    compile, compile_for, to_json_output, ErrorKind, EvalContext, Expression, Hooks, Item, PathSegment,
};

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": [null, "Jim"], "_given": [{"extension": [{"url": "http://x/e", "valueString": "x"}]}, null]}
        ],
        "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b"}],
        "deceasedBoolean": false,
        "managingOrganization": {"reference": "#org"},
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}]
    })
}

fn observation() -> Value {
    // Parsed from text so that the number keeps its lexical form (185.50).
    let text = r#"{"resourceType": "Observation", "valueQuantity": {"value": 185.50}}"#;
    let mut v: Value = serde_json::from_str(text).unwrap();
    let rest = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 185.50, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
        "effectiveDateTime": "2013-04-02T09:30:10+01:00"
    });
    for (k, x) in rest.as_object().unwrap() {
        if k == "valueQuantity" {
            for (qk, qv) in x.as_object().unwrap() {
                if qk != "value" {
                    v["valueQuantity"][qk] = qv.clone();
                }
            }
        } else {
            v[k] = x.clone();
        }
    }
    v
}

fn eval(expr: &str, res: &Value) -> Vec<String> {
    let e = compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let items = e.evaluate(res).unwrap_or_else(|e| panic!("{expr}: {e}"));
    // Precomputed walks must give what the general evaluator gives.
    if !expr.contains("now()") {
        let general = e.evaluate_general(res).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(to_json_output(&items), to_json_output(&general), "{expr}");
    }
    items.iter().map(|i| i.to_text().unwrap_or_else(|| i.to_json().to_string())).collect()
}

fn one(expr: &str, res: &Value) -> String {
    let r = eval(expr, res);
    assert_eq!(r.len(), 1, "{expr} gave {r:?}");
    r[0].clone()
}

fn err_kind(expr: &str, res: &Value, root: Option<&str>) -> ErrorKind {
    let c = match root {
        Some(r) => compile_for(r, expr),
        None => compile(expr),
    };
    match c.and_then(|e| e.evaluate(res).map(|_| ())) {
        Err(e) => e.kind(),
        Ok(()) => panic!("{expr}: expected an error"),
    }
}

#[test]
fn choice_types_navigate_by_element_name() {
    let o = observation();
    assert_eq!(one("Observation.value.unit", &o), "lbs");
    assert_eq!(one("Observation.value is Quantity", &o), "true");
    assert_eq!(one("Observation.effective.is(dateTime)", &o), "true");
    assert!(eval("Observation.value.as(Period)", &o).is_empty());
    // The JSON name of one branch is not an element name.
    assert_eq!(err_kind("Observation.valueQuantity", &o, Some("Observation")), ErrorKind::Semantic);
    let p = patient();
    assert_eq!(one("Patient.deceased", &p), "false");
    assert_eq!(one("Patient.deceased.type().name", &p), "boolean");
}

#[test]
fn primitive_extensions_live_in_underscore_siblings() {
    let p = patient();
    assert_eq!(one("Patient.birthDate.extension.count()", &p), "1");
    assert_eq!(
        one("Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value", &p),
        "1974-12-25T14:35:45-05:00"
    );
    // A given name that has only an extension still exists as a node, without a value.
    assert_eq!(eval("Patient.name[1].given", &p).len(), 2);
    assert_eq!(eval("Patient.name[1].given.select($this.hasValue())", &p), vec!["false", "true"]);
    assert_eq!(one("Patient.name[1].given.first().extension.value", &p), "x");
    assert_eq!(one("Patient.name.given.count()", &p), "4");
}

#[test]
fn partial_dates_compare_only_as_far_as_known() {
    let p = patient();
    assert!(eval("@2018-03 < @2018-03-01", &p).is_empty());
    assert_eq!(one("@2018-03 < @2018-04-01", &p), "true");
    assert!(eval("Patient.birthDate = @1974-12-25T10:00", &p).is_empty());
    assert_eq!(one("Patient.birthDate = @1974-12-25", &p), "true");
    assert_eq!(one("@2017-11-05T01:30:00.0-04:00 = @2017-11-05T00:30:00.0-05:00", &p), "true");
    assert!(eval("@2012-04-15T15:00:00Z = @2012-04-15T10:00:00", &p).is_empty());
    assert_eq!(one("@2012-04-15T15:30:31 = @2012-04-15T15:30:31.0", &p), "true");
    assert_eq!(one("@2012-04-15 ~ @2012-04-15T10:00:00", &p), "false");
    assert_eq!(one("@2020-01-31 + 1 month", &p), "2020-02-29");
    assert_eq!(one("@2014 + 400 days", &p), "2015");
    assert_eq!(err_kind("@1973-12-25 + 1 'mo'", &p, None), ErrorKind::Execution);
}

#[test]
fn decimals_are_exact() {
    let p = patient();
    assert_eq!(one("0.1 + 0.2 = 0.3", &p), "true");
    assert_eq!(one("0.1 + 0.2", &p), "0.3");
    assert_eq!(one("1.50 * 2", &p), "3.00");
    assert_eq!(one("1 / 3 * 3 ~ 1.0", &p), "true");
    assert_eq!(one("10 / 4", &p), "2.5");
    assert_eq!(one("1.58700.precision()", &p), "5");
    assert_eq!(one("7 div 2", &p), "3");
    assert_eq!(one("-7 mod 3", &p), "-1");
    assert!(eval("1 / 0", &p).is_empty());
    let o = observation();
    // The JSON number keeps its lexical form.
    assert_eq!(one("Observation.value.value", &o), "185.50");
    assert_eq!(one("Observation.value.value.precision()", &o), "2");
}

#[test]
fn quantities_convert_ucum_units() {
    let p = patient();
    assert_eq!(one("1 'kg' = 1000 'g'", &p), "true");
    assert_eq!(one("1 '[in_i]' = 2.54 'cm'", &p), "true");
    assert_eq!(one("1 'h' > 59 'min'", &p), "true");
    assert_eq!(one("1 'mg/dL' = 10 'mg/L'", &p), "true");
    assert_eq!(one("7 days = 1 week", &p), "true");
    assert_eq!(one("1 'kg' + 500 'g'", &p), "1.5 'kg'");
    assert!(eval("1 'kg' = 1 'm'", &p).is_empty());
    assert!(eval("1 year = 1 'a'", &p).is_empty());
    let o = observation();
    assert_eq!(one("Observation.value > 80 'kg'", &o), "true");
    assert_eq!(one("Observation.value < 85 'kg'", &o), "true");
}

#[test]
fn empty_propagates() {
    let p = patient();
    for e in ["{} = 1", "1 + {}", "{} < 2", "{}.substring(1)", "foo.bar", "(true and {})", "{}.not()"] {
        assert!(eval(e, &p).is_empty(), "{e}");
    }
    assert_eq!(one("{} ~ {}", &p), "true");
    assert_eq!(one("(false and {})", &p), "false");
    assert_eq!(one("({} or true)", &p), "true");
    assert_eq!(one("{}.empty()", &p), "true");
    assert_eq!(one("{}.count()", &p), "0");
}

#[test]
fn singleton_rules_raise_execution_errors() {
    let p = patient();
    assert_eq!(err_kind("Patient.name.given + 'x'", &p, None), ErrorKind::Execution);
    assert_eq!(err_kind("Patient.name.single()", &p, None), ErrorKind::Execution);
    assert_eq!(err_kind("Patient.name.given.startsWith('P')", &p, None), ErrorKind::Execution);
}

#[test]
fn error_kinds_and_positions() {
    let p = patient();
    let e = compile("Patient.name.where(").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(e.to_string().contains("offset"), "{e}");
    let e = compile_for("Patient", "Patient.nmae").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Semantic);
    assert!(matches!(e, tsunagu_fhirpath::FhirPathError::Semantic { pos: 7, .. }), "{e:?}");
    assert_eq!(err_kind("Patient.name.foo()", &p, None), ErrorKind::Semantic);
    assert_eq!(err_kind("Patient.identifier.startsWith('x')", &p, Some("Patient")), ErrorKind::Semantic);
    assert_eq!(err_kind("@2014 + 1", &p, None), ErrorKind::Semantic);
    // Without a root type, a leading type name still gives the type…
    assert_eq!(err_kind("Patient.nmae", &p, None), ErrorKind::Semantic);
    // …and otherwise unknown names are simply empty.
    assert!(eval("nmae", &p).is_empty());
}

#[test]
fn variables_and_constants() {
    let p = patient();
    assert_eq!(one("%ucum", &p), "http://unitsofmeasure.org");
    assert_eq!(one("%`vs-administrative-gender`", &p), "http://hl7.org/fhir/ValueSet/administrative-gender");
    assert_eq!(one("%resource.id", &p), "p1");
    assert_eq!(one("Patient.name.where(%context.id = 'p1').count()", &p), "2");
    let e = compile("%limit + 1").unwrap();
    assert_eq!(e.evaluate(&p).unwrap_err().kind(), ErrorKind::Execution);
    let ctx = EvalContext::new().with_var("limit", vec![Item::Integer(41)]);
    let r = e.evaluate_with(&p, &ctx).unwrap();
    assert_eq!(r[0].to_text().unwrap(), "42");
}

struct TestHooks;

impl Hooks for TestHooks {
    fn resolve(&self, reference: &str) -> Option<Value> {
        (reference == "Practitioner/1").then(|| json!({"resourceType": "Practitioner", "id": "1", "active": true}))
    }
    fn member_of(&self, value: &Value, _ty: &str, vs: &str) -> Option<bool> {
        (vs == "http://example.org/vs").then(|| value.get("code").and_then(Value::as_str) == Some("29463-7"))
    }
    fn conforms_to(&self, _resource: &Value, profile: &str) -> Option<bool> {
        (profile == "http://example.org/profile").then_some(true)
    }
}

#[test]
fn hooks_resolve_member_of_conforms_to() {
    let p = patient();
    // Contained references resolve without a hook.
    assert_eq!(one("Patient.managingOrganization.resolve().name", &p), "Acme");
    assert_eq!(one("Patient.managingOrganization.resolve() is Organization", &p), "true");
    let hooks = TestHooks;
    let ctx = EvalContext::new().with_hooks(&hooks);
    let pr = json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "Practitioner/1"}]});
    let e = compile("Patient.generalPractitioner.resolve().active").unwrap();
    let r = e.evaluate_with(&pr, &ctx).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].type_name(), "boolean");
    let o = observation();
    let e = compile("Observation.code.coding.memberOf('http://example.org/vs')").unwrap();
    assert_eq!(e.evaluate_with(&o, &ctx).unwrap()[0].to_text().unwrap(), "true");
    let e = compile("conformsTo('http://example.org/profile')").unwrap();
    assert_eq!(e.evaluate_with(&o, &ctx).unwrap()[0].to_text().unwrap(), "true");
    // Required bindings of the core specification are known without a hook.
    assert_eq!(one("Observation.status.memberOf('http://hl7.org/fhir/ValueSet/observation-status')", &o), "true");
    assert_eq!(one("conformsTo('http://hl7.org/fhir/StructureDefinition/Observation')", &o), "true");
}

#[test]
fn items_report_types_json_and_location() {
    let p = patient();
    let e = compile("Patient.name[1].given").unwrap();
    let items = e.evaluate(&p).unwrap();
    assert_eq!(items[0].type_name(), "string");
    assert_eq!(
        items[0].location(&p),
        Some(vec![key("name"), PathSegment::Index(1), key("given"), PathSegment::Index(0)])
    );
    assert_eq!(items[1].json(), Some(&json!("Jim")));
    let e = compile("Patient.birthDate").unwrap();
    let items = e.evaluate(&p).unwrap();
    assert_eq!(items[0].type_name(), "date");
    assert_eq!(items[0].location(&p), Some(vec![key("birthDate")]));
    let n = items[0].as_node().unwrap();
    assert!(n.ext.is_some());
    let e = compile("Patient.name.first()").unwrap();
    let items = e.evaluate(&p).unwrap();
    assert_eq!(items[0].type_name(), "HumanName");
    let out = to_json_output(
        &compile("1 | 'a' | 2.50 | @2014 | 3 'mg' | Patient.active.exists()").unwrap().evaluate(&p).unwrap(),
    );
    let want: Value = serde_json::from_str(
        r#"[
            {"type": "integer", "value": 1},
            {"type": "string", "value": "a"},
            {"type": "decimal", "value": 2.50},
            {"type": "date", "value": "2014"},
            {"type": "Quantity", "value": {"value": 3, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}},
            {"type": "boolean", "value": false}
        ]"#,
    )
    .unwrap();
    assert_eq!(out, want);
    assert_eq!(out[2]["value"].to_string(), "2.50");
}

fn key(k: &str) -> PathSegment {
    PathSegment::Key(k.to_string())
}

trait Loc {
    fn location(&self, root: &Value) -> Option<Vec<PathSegment>>;
}
impl Loc for Item<'_> {
    fn location(&self, root: &Value) -> Option<Vec<PathSegment>> {
        self.as_node()?.location(root)
    }
}

#[test]
fn functions_and_lambdas() {
    let p = patient();
    assert_eq!(one("Patient.telecom.where(system = 'phone').value", &p), "555");
    assert_eq!(
        eval("Patient.name.select(given.first())", &p),
        vec!["Peter", "{\"extension\":[{\"url\":\"http://x/e\",\"valueString\":\"x\"}]}"]
    );
    assert_eq!(one("Patient.name.given.where($this.hasValue()).count()", &p), "3");
    assert_eq!(one("Patient.telecom.select($index).last()", &p), "1");
    assert_eq!(one("(1 | 2 | 3).aggregate($this + $total, 0)", &p), "6");
    assert_eq!(one("Patient.descendants().where($this is HumanName).count()", &p), "2");
    assert_eq!(one("Patient.children().count() > 5", &p), "true");
    assert_eq!(one("'abc'.replaceMatches('(b)', '[$1]')", &p), "a[b]c");
    assert_eq!(one("'a,b'.split(',').count()", &p), "2");
    assert_eq!(one("iif(Patient.active.exists(), 'x', 'y')", &p), "y");
    assert_eq!(one("Patient.contained.ofType(Organization).name", &p), "Acme");
    assert_eq!(one("Patient.contained.id", &p), "org");
    assert_eq!(eval("Patient.contained.id", &p).len(), 1);
    let traced = std::cell::RefCell::new(Vec::new());
    let ctx = EvalContext::new().with_trace(|name, items| traced.borrow_mut().push((name.to_string(), items.len())));
    compile("Patient.name.trace('n').count()").unwrap().evaluate_with(&p, &ctx).unwrap();
    assert_eq!(traced.borrow().as_slice(), &[("n".to_string(), 2)]);
}

#[test]
fn now_is_stable_within_an_evaluation_and_can_be_fixed() {
    let p = patient();
    assert_eq!(one("now() = now()", &p), "true");
    let fixed = tsunagu_fhirpath::DateTime::parse_datetime("2020-01-02T03:04:05.006Z").unwrap();
    let ctx = EvalContext::new().with_now(fixed);
    let e = compile("today()").unwrap();
    assert_eq!(e.evaluate_with(&p, &ctx).unwrap()[0].to_text().unwrap(), "2020-01-02");
}

#[test]
fn compiled_expressions_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    let e = std::sync::Arc::new(compile_for("Patient", "Patient.name.given").unwrap());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.evaluate(&patient()).unwrap().len())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 4);
    }
}

#[test]
fn long_chains_and_deep_nesting_stay_within_a_test_thread_stack() {
    let p = patient();
    // Operator chains are evaluated iteratively, however long.
    let sum = format!("1{}", " + 1".repeat(3000));
    assert_eq!(one(&sum, &p), "3001");
    let union = (0..2000).map(|i| i.to_string()).collect::<Vec<_>>().join(" | ");
    assert_eq!(one(&format!("({union}).count()"), &p), "2000");
    let and = format!("true{}", " and true".repeat(1500));
    assert_eq!(one(&and, &p), "true");
    // Nesting is bounded by the parser; the deepest accepted still evaluates without
    // overflowing the stack. Work multiplies at each level (2^16 lambda evaluations here);
    // with four items a level, 4^12 is stopped by the step limit (depth first, after
    // reaching the bottom).
    let nest = |levels, items| {
        let mut nested = String::from("true");
        for _ in 0..levels {
            nested = format!("({items}).where({nested}).exists()");
        }
        nested
    };
    assert_eq!(one(&nest(16, "1 | 2"), &p), "true");
    assert_eq!(err_kind(&nest(12, "1 | 2 | 3 | 4"), &p, None), ErrorKind::Limit);
    let minus = format!("{}1", "-".repeat(60));
    assert_eq!(one(&minus, &p), "1");
    let parens = format!("{}1{}", "(".repeat(120), ")".repeat(120));
    assert_eq!(one(&parens, &p), "1");
}

#[test]
fn hostile_inputs_end_in_errors_not_hangs_or_panics() {
    let p = patient();
    // Stopped by repeat()'s own bound or by the step limit (each new item is compared with
    // all before it), whichever comes first.
    assert!(matches!(err_kind("1.repeat($this + 1)", &p, None), ErrorKind::Execution | ErrorKind::Limit));
    assert!(eval("9223372036854775807 + 1", &p).is_empty());
    assert!(eval("(-9223372036854775807 - 1).abs()", &p).is_empty());
    assert!(eval("1 / 0.000000000000000000000000000001", &p).len() <= 1);
    assert_eq!(eval("1.5.round(1000)", &p).len(), 1);
    assert!(eval("@2014-01-01 + 9223372036854775807 days", &p).is_empty());
    assert!(eval("@2014-01-01 - 9223372036854775807 months", &p).is_empty());
    assert!(eval("@T10:00 + 9223372036854775807 'ms'", &p).is_empty());
    // Found by fuzzing: a huge unit exponent used to make conversion loop for minutes.
    assert_eq!(one("4 'g' ~ 4040 'm777777777g'", &p), "false");
}
