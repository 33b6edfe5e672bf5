//! Every evaluation is bounded by `max_fhirpath_steps`: expressions whose work grows
//! faster than the resource (pairs compared, strings doubled, collections re-walked) stop
//! with a limit error naming it, while the same data under linear expressions is answered.
//!
//! The step limit is process-wide, so the tests of this binary take turns (`serial()`)
//! and each sets the limit it needs first.

use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tsunagu_fhirpath::{compile, set_step_limit, ErrorKind, FhirPathError};
use tsunagu_limits::{Limit, Limits};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Patient with `n` identifiers, all values different.
fn patient(n: usize) -> Value {
    let ids: Vec<Value> = (0..n).map(|k| json!({"system": "urn:x", "value": format!("v{k}")})).collect();
    json!({"resourceType": "Patient", "identifier": ids, "name": [{"family": "x".repeat(100_000)}]})
}

fn run(src: &str, resource: &Value) -> Result<usize, FhirPathError> {
    compile(src)?.evaluate(resource).map(|items| items.len())
}

fn assert_limit(src: &str, resource: &Value, steps: usize) {
    let started = Instant::now();
    let err = run(src, resource).expect_err(src);
    assert_eq!(err.kind(), ErrorKind::Limit, "{src}: {err}");
    let limit = err.limit_exceeded().expect("a limit");
    assert_eq!((limit.limit, limit.max), (Limit::FhirPathSteps, steps), "{src}");
    assert!(err.to_string().contains("max_fhirpath_steps"), "{err}");
    // Not a timing test: only a guard against the limit being checked after the fact.
    assert!(started.elapsed().as_secs() < 60, "{src} took {:?}", started.elapsed());
}

#[test]
fn quadratic_and_exponential_expressions_stop_at_the_limit() {
    let _g = serial();
    set_step_limit(Limits::DEFAULT_FHIRPATH_STEPS);
    let p = patient(20_000);
    let steps = Limits::DEFAULT_FHIRPATH_STEPS;
    // Linear work on the same resource is answered.
    assert_eq!(run("Patient.identifier.value.count()", &p).unwrap(), 1);
    assert_eq!(run("Patient.descendants().count()", &p).unwrap(), 1);
    assert_eq!(run("Patient.name.family.replace('x', 'yy').length()", &p).unwrap(), 1);
    // Strings are de-duplicated by hashing, in one pass; other items pair by pair: 20,000
    // identifiers are 200 million comparisons.
    assert_eq!(run("Patient.identifier.value.distinct()", &p).unwrap(), 20_000);
    assert_eq!(run("Patient.identifier.value.isDistinct()", &p).unwrap(), 1);
    assert_limit("Patient.identifier.distinct()", &p, steps);
    assert_limit("Patient.identifier.isDistinct()", &p, steps);
    assert_limit("Patient.identifier.value | Patient.identifier.system", &p, steps);
    assert_limit("Patient.identifier.value.intersect(Patient.identifier.value)", &p, steps);
    // Each identifier's descendants walked once per identifier.
    assert_limit("Patient.identifier.select(%resource.descendants()).count()", &p, steps);
    // One node many times over, then its children.
    assert_limit("Patient.identifier.select(%resource).identifier", &p, steps);
    // A string doubled at each round, and a replacement inserted between every character.
    assert_limit("'ab'.repeat($this & $this)", &p, steps);
    assert_limit("Patient.name.family.replace('', Patient.name.family)", &p, steps);
    assert_limit("Patient.name.family.replaceMatches('y*', Patient.name.family)", &p, steps);
    assert_limit("Patient.identifier.value.join(Patient.name.family)", &p, steps);
    // Few items, long strings: each comparison or scan costs the string's length.
    let l = format!("'{}'", "a".repeat(64));
    let pairs = format!("{l}.toChars().select({l}.toChars())");
    assert_limit(&format!("{pairs}.select(%resource.name.family ~ %resource.name.family)"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family = %resource.name.family)"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family.indexOf('c'))"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family.length())"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family).distinct()"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family).join('')"), &p, steps);
    assert_limit(&format!("{pairs}.select(%resource.name.family).sort()"), &p, steps);
    // Complex elements compared whole (two equal names; an element compared with itself
    // is known equal at once).
    let mut two = p.clone();
    two["name"] = json!([p["name"][0].clone(), p["name"][0].clone()]);
    assert_eq!(run(&format!("{pairs}.select(%resource.name[0] = %resource.name[0])"), &two).unwrap(), 4096);
    assert_limit(&format!("{pairs}.select(%resource.name[0] = %resource.name[1])"), &two, steps);
    assert_limit(&format!("{pairs}.select(%resource.name[0] ~ %resource.name[1])"), &two, steps);
    assert_limit(&format!("{pairs}.select(%resource.name).distinct()"), &two, steps);
}

#[test]
fn the_limit_is_set_per_process_and_zero_turns_it_off() {
    let _g = serial();
    let p = patient(300);
    set_step_limit(100);
    assert_limit("Patient.identifier.where(true).value", &p, 100);
    // A plain path is linear in the resource, and is walked without counting.
    assert_eq!(run("Patient.identifier.value", &p).unwrap(), 300);
    set_step_limit(0);
    assert_eq!(run("Patient.identifier.value.distinct()", &p).unwrap(), 300);
    set_step_limit(Limits::DEFAULT_FHIRPATH_STEPS);
    assert_eq!(run("Patient.identifier.value.distinct()", &p).unwrap(), 300);
}
