//! The FHIRPath 3.0 additions (Long, component extraction, aggregates, lastIndexOf,
//! repeatAll, coalesce), extension-only primitives, untyped JSON and strict mode. Expected
//! values follow the examples and rules of the specification text.

use serde_json::{json, Value};
use tsunagu_fhirpath::{compile, compile_with, to_json_output, CompileOptions, ErrorKind};

/// `(type, text)` of each result; panics on errors.
fn eval(expr: &str, res: &Value) -> Vec<(String, String)> {
    let e = compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let items = e.evaluate(res).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let general = e.evaluate_general(res).unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(to_json_output(&items), to_json_output(&general), "{expr}");
    items.iter().map(|i| (i.type_name().into_owned(), i.to_text().unwrap_or_else(|| i.to_json().to_string()))).collect()
}

fn one(expr: &str) -> (String, String) {
    let r = eval(expr, &json!({}));
    assert_eq!(r.len(), 1, "{expr} gave {r:?}");
    r[0].clone()
}

fn text(expr: &str) -> String {
    one(expr).1
}

fn empty(expr: &str, res: &Value) {
    assert_eq!(eval(expr, res), vec![], "{expr}");
}

fn fails(expr: &str, res: &Value) -> ErrorKind {
    match compile(expr).and_then(|e| e.evaluate(res).map(|_| ())) {
        Err(e) => e.kind(),
        Ok(()) => panic!("{expr}: expected an error"),
    }
}

#[test]
fn long_literals_conversions_and_mixed_arithmetic() {
    assert_eq!(one("2L"), ("long".into(), "2".into()));
    assert_eq!(one("-5L"), ("long".into(), "-5".into()));
    assert_eq!(one("9223372036854775807L"), ("long".into(), "9223372036854775807".into()));
    assert_eq!(text("2L.type().name"), "Long");
    assert_eq!(text("2L.type().namespace"), "System");
    assert_eq!(text("2L is Long"), "true");
    assert_eq!(text("2L is System.Long"), "true");
    assert_eq!(text("2 is Long"), "false");
    // Integer converts implicitly to Long; Long to Decimal.
    assert_eq!(one("2L + 3"), ("long".into(), "5".into()));
    assert_eq!(one("3 * 2L"), ("long".into(), "6".into()));
    assert_eq!(one("7L div 2"), ("long".into(), "3".into()));
    assert_eq!(one("7L mod 2"), ("long".into(), "1".into()));
    assert_eq!(one("1L + 0.5"), ("decimal".into(), "1.5".into()));
    assert_eq!(one("3L / 2"), ("decimal".into(), "1.5".into()));
    assert_eq!(text("2L = 2"), "true");
    assert_eq!(text("2L < 3"), "true");
    assert_eq!(text("2L > 1.5"), "true");
    assert_eq!(text("2L ~ 2.0"), "true");
    assert_eq!(one("-(2L)"), ("long".into(), "-2".into()));
    // Overflow is empty, as for Integer.
    empty("9223372036854775807L + 1", &json!({}));
    assert_eq!(one("'12'.toLong()"), ("long".into(), "12".into()));
    assert_eq!(one("5.toLong()"), ("long".into(), "5".into()));
    assert_eq!(one("true.toLong()"), ("long".into(), "1".into()));
    empty("'1.5'.toLong()", &json!({}));
    empty("{}.toLong()", &json!({}));
    assert_eq!(text("'12'.convertsToLong()"), "true");
    assert_eq!(text("'x'.convertsToLong()"), "false");
    assert_eq!(one("2L.toInteger()"), ("integer".into(), "2".into()));
    assert_eq!(one("2L.toDecimal()"), ("decimal".into(), "2".into()));
    assert_eq!(text("2L.toString()"), "2");
    // `2Lx` is not a Long literal.
    assert!(compile("2Lx").is_err());
}

#[test]
fn date_time_components() {
    assert_eq!(one("@2014-01-05T10:30:00.000.yearOf()"), ("integer".into(), "2014".into()));
    assert_eq!(text("@2014-01-05.monthOf()"), "1");
    assert_eq!(text("@2014-01-05.dayOf()"), "5");
    assert_eq!(text("@2014-01-05T10:30:15.250.hourOf()"), "10");
    assert_eq!(text("@2014-01-05T10:30:15.250.minuteOf()"), "30");
    assert_eq!(text("@2014-01-05T10:30:15.250.secondOf()"), "15");
    assert_eq!(text("@2014-01-05T10:30:15.250.millisecondOf()"), "250");
    assert_eq!(text("@T08:15.hourOf()"), "8");
    assert_eq!(text("@T08:15.minuteOf()"), "15");
    assert_eq!(one("@2014-01-05T10:30:00+05:30.timezoneOffsetOf()"), ("decimal".into(), "5.5".into()));
    assert_eq!(text("@2014-01-05T10:30:00-05:00.timezoneOffsetOf()"), "-5.0");
    assert_eq!(text("@2014-01-05T10:30:00Z.timezoneOffsetOf()"), "0.0");
    assert_eq!(one("@2014-01-05T10:30:00Z.dateOf()"), ("date".into(), "2014-01-05".into()));
    assert_eq!(one("@2014-01.dateOf()"), ("date".into(), "2014-01".into()));
    assert_eq!(one("@2014-01-05T10:30:00Z.timeOf()"), ("time".into(), "10:30:00".into()));
    // A component the value does not carry is empty, not zero.
    let none = json!({});
    empty("@2014.monthOf()", &none);
    empty("@2014-01.dayOf()", &none);
    empty("@2014-01-05T10.minuteOf()", &none);
    empty("@2014-01-05T10:30:00.millisecondOf()", &none);
    empty("@2014-01-05T10:30:00.timezoneOffsetOf()", &none);
    empty("@2014-01-05T.timeOf()", &none);
    empty("{}.yearOf()", &none);
    // Wrong types and several items are errors.
    assert_eq!(fails("'2014-01-05'.yearOf()", &none), ErrorKind::Execution);
    assert_eq!(fails("5.yearOf()", &none), ErrorKind::Execution);
    assert_eq!(fails("@T10:00.yearOf()", &none), ErrorKind::Execution);
    assert_eq!(fails("@2014-01-05.timeOf()", &none), ErrorKind::Execution);
    assert_eq!(fails("(@2014 | @2015).yearOf()", &none), ErrorKind::Execution);
    // FHIR date/dateTime elements are dates.
    let p = json!({"resourceType": "Patient", "birthDate": "1974-12-25"});
    assert_eq!(eval("Patient.birthDate.yearOf()", &p), vec![("integer".into(), "1974".into())]);
}

#[test]
fn aggregates() {
    assert_eq!(one("(1 | 2 | 3 | 4).sum()"), ("integer".into(), "10".into()));
    assert_eq!(one("(1 | 2.5).sum()"), ("decimal".into(), "3.5".into()));
    assert_eq!(one("(1 | 2L).sum()"), ("long".into(), "3".into()));
    assert_eq!(text("(1 'm' | 50 'cm').sum() = 150 'cm'"), "true");
    assert_eq!(one("(3 | 1 | 2).min()"), ("integer".into(), "1".into()));
    assert_eq!(text("(3 | 1 | 2).max()"), "3");
    assert_eq!(text("('b' | 'a' | 'c').min()"), "a");
    assert_eq!(text("(@2014 | @2012-03 | @2013).max()"), "2014");
    assert_eq!(one("(1 | 2 | 3 | 4).avg()"), ("decimal".into(), "2.5".into()));
    assert_eq!(text("5.avg()"), "5");
    let none = json!({});
    for f in ["sum", "min", "max", "avg"] {
        empty(&format!("{{}}.{f}()"), &none);
    }
    assert_eq!(fails("('a' | 'b').sum()", &none), ErrorKind::Execution);
    assert_eq!(fails("(1 | 'b').max()", &none), ErrorKind::Execution);
    assert_eq!(fails("(true | false).min()", &none), ErrorKind::Execution);
    let o = json!({"resourceType": "Observation", "component": [
        {"valueQuantity": {"value": 2}}, {"valueQuantity": {"value": 5}}]});
    assert_eq!(eval("Observation.component.value.value.sum()", &o), vec![("decimal".into(), "7".into())]);
}

#[test]
fn last_index_of_repeat_all_coalesce() {
    assert_eq!(text("'abcdefg'.lastIndexOf('bc')"), "1");
    assert_eq!(text("'abcdefg'.lastIndexOf('x')"), "-1");
    assert_eq!(text("'abcdefg'.lastIndexOf('abcdefg')"), "0");
    assert_eq!(text("'abc abc'.lastIndexOf('a')"), "4");
    assert_eq!(text("'abc'.lastIndexOf('')"), "3");
    empty("{}.lastIndexOf('a')", &json!({}));
    empty("'abc'.lastIndexOf({})", &json!({}));
    // repeatAll keeps duplicates that repeat() merges.
    let q = json!({"item": [{"linkId": "a", "item": [{"linkId": "b"}]}, {"linkId": "b"}]});
    assert_eq!(eval("repeatAll(item).linkId", &q).len(), 3);
    assert_eq!(eval("repeat(item).linkId.distinct()", &q).len(), 2);
    assert_eq!(fails("1.repeatAll($this)", &json!({})), ErrorKind::Execution);
    assert_eq!(text("coalesce({}, 'b', 'c')"), "b");
    empty("coalesce({}, {})", &json!({}));
}

#[test]
fn extension_only_primitives_are_empty_to_value_functions() {
    let p = json!({"resourceType": "Patient", "name": [{"given": [null, "Jim"],
        "_given": [{"extension": [{"url": "http://x/e", "valueString": "x"}]}, null]}],
        "_birthDate": {"extension": [{"url": "http://x/e", "valueString": "x"}]},
        "_multipleBirthInteger": {"extension": [{"url": "http://x/e", "valueString": "x"}]}});
    // The element exists (its extension is there) but has no value.
    assert_eq!(eval("Patient.name.given[0].extension.count()", &p), vec![("integer".into(), "1".into())]);
    for e in [
        "Patient.name.given[0].substring(0)",
        "Patient.name.given[0].upper()",
        "Patient.name.given[0].length()",
        "Patient.name.given[0].startsWith('a')",
        "Patient.name.given[0].matches('a')",
        "Patient.name.given[0].indexOf('a')",
        "Patient.name.given[0].toInteger()",
        "Patient.name.given[0].toString()",
        "Patient.birthDate.yearOf()",
        "Patient.birthDate.toDate()",
        "Patient.multipleBirth.abs()",
        "Patient.multipleBirth.round()",
    ] {
        empty(e, &p);
    }
    assert_eq!(
        eval("Patient.name.given.upper()", &json!({"resourceType": "Patient", "name": [{"given": ["a"]}]})).len(),
        1
    );
}

#[test]
fn json_that_is_not_a_resource_is_navigated_untyped() {
    let v = json!({"name": ["a", "b"], "n": 3, "d": 1.5, "ok": true, "o": {"x": {"y": "z"}}});
    assert_eq!(eval("name.first()", &v), vec![("string".into(), "a".into())]);
    assert_eq!(eval("name.count()", &v), vec![("integer".into(), "2".into())]);
    assert_eq!(eval("o.x.y", &v), vec![("string".into(), "z".into())]);
    assert_eq!(eval("n + 1", &v), vec![("integer".into(), "4".into())]);
    assert_eq!(eval("d * 2", &v), vec![("decimal".into(), "3.0".into())]);
    assert_eq!(eval("ok and true", &v), vec![("boolean".into(), "true".into())]);
    assert_eq!(eval("name.first() is String", &v), vec![("boolean".into(), "true".into())]);
    assert_eq!(eval("n is Integer", &v), vec![("boolean".into(), "true".into())]);
    assert_eq!(eval("d is System.Decimal", &v), vec![("boolean".into(), "true".into())]);
    assert_eq!(eval("name.first().type().namespace", &v), vec![("string".into(), "System".into())]);
    assert_eq!(eval("name.where($this = 'b').upper()", &v), vec![("string".into(), "B".into())]);
    // An unknown resourceType is navigated the same way.
    let w = json!({"resourceType": "NotAFhirType", "code": "c"});
    assert_eq!(eval("code", &w), vec![("string".into(), "c".into())]);
}

fn strict(root: Option<&str>, expr: &str) -> tsunagu_fhirpath::Result<tsunagu_fhirpath::Expression> {
    compile_with(expr, &CompileOptions { root_type: root.map(str::to_string), strict: true, ..Default::default() })
}

#[test]
fn strict_mode_rejects_unknown_elements_and_unordered_ordering() {
    let p = json!({"resourceType": "Patient", "name": [{"given": ["a"]}], "custom": 1});
    // Without a root type, the unknown name is found at run time on the typed node.
    let lenient = compile("name.nmae").unwrap();
    assert!(lenient.evaluate(&p).unwrap().is_empty());
    let e = strict(None, "name.nmae").unwrap();
    assert_eq!(e.evaluate(&p).unwrap_err().kind(), ErrorKind::Execution);
    assert_eq!(strict(None, "custom").unwrap().evaluate(&p).unwrap_err().kind(), ErrorKind::Execution);
    // Known names still work, and untyped JSON has no model to break.
    assert_eq!(strict(None, "name.given").unwrap().evaluate(&p).unwrap().len(), 1);
    assert_eq!(strict(None, "a.b").unwrap().evaluate(&json!({"a": {"b": 1}})).unwrap().len(), 1);
    // With a root type, at compile time.
    assert_eq!(strict(Some("Patient"), "Patient.nmae").unwrap_err().kind(), ErrorKind::Semantic);
    // Ordered functions on children()/descendants().
    assert_eq!(strict(Some("Patient"), "Patient.children().first()").unwrap_err().kind(), ErrorKind::Semantic);
    assert_eq!(strict(Some("Patient"), "Patient.descendants()[0]").unwrap_err().kind(), ErrorKind::Semantic);
    assert!(compile_with("Patient.children().first()", &CompileOptions::default()).is_ok());
}
