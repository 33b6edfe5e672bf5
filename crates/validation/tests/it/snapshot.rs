//! Snapshot generation from differentials: JP Core and JP-CLINS profiles, stripped of
//! their shipped snapshots, get generated ones that agree with what the IG publisher made;
//! validation with generated snapshots gives the same errors as with shipped ones; and a
//! hand-written differential-only profile validates.

use crate::support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tsunagu_validation::{
    generate_snapshot, ConformanceKind, PackageSet, Severity, SnapshotError, SnapshotGenerator, Validator,
};

/// The fields compared, per element id, as comparable text.
fn facts(e: &Value) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let text = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_default();
    out.insert("min", text(e.get("min")));
    out.insert("max", text(e.get("max")));
    let types: Vec<String> = e
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            let list = |k: &str| {
                let mut l: Vec<String> =
                    t.get(k).and_then(Value::as_array).into_iter().flatten().map(Value::to_string).collect();
                l.sort();
                l.join(",")
            };
            format!("{}[{}][{}]", text(t.get("code")), list("profile"), list("targetProfile"))
        })
        .collect();
    out.insert("type", types.join(" "));
    let values: Vec<String> = e
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            ["fixed", "pattern"].iter().any(|p| k.strip_prefix(p).is_some_and(|r| r.starts_with(char::is_uppercase)))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.insert("fixed/pattern", values.join(" "));
    out.insert(
        "binding",
        e.get("binding")
            .map(|b| format!("{} {}", text(b.get("strength")), text(b.get("valueSet"))))
            .unwrap_or_default(),
    );
    out.insert(
        "slicing",
        e.get("slicing")
            .map(|s| format!("{} {}", text(s.get("discriminator")), text(s.get("rules"))))
            .unwrap_or_default(),
    );
    out
}

fn by_name<'s>(set: &'s PackageSet, name: &str) -> Option<&'s Value> {
    set.all(ConformanceKind::StructureDefinition).map(|v| v.as_ref()).find(|sd| sd["name"] == name)
}

/// Where the shipped snapshot is not what the rules give, as `(element id, field)`.
/// JP_Medication: the differential reaches below `strength`, typed with the profile
/// JP_MedicationRatio_Amount; the publisher expanded the plain Ratio there, losing that
/// profile's JP_MedicationQuantity on numerator and denominator. Generation takes the
/// children from the named profile, as profiling.html asks.
const KNOWN_DIFFERENCES: &[(&str, &str)] =
    &[("Medication.ingredient.strength.numerator", "type"), ("Medication.ingredient.strength.denominator", "type")];

/// `(agreeing, total, differences)` of a generated snapshot against the shipped one.
fn compare(shipped: &[Value], generated: &[Value]) -> (usize, usize, Vec<String>) {
    let id = |e: &Value| e["id"].as_str().unwrap_or("").to_owned();
    let made: BTreeMap<String, &Value> = generated.iter().map(|e| (id(e), e)).collect();
    let mut differences = Vec::new();
    let mut agree = 0;
    for e in shipped {
        let Some(g) = made.get(&id(e)) else {
            differences.push(format!("missing {}", id(e)));
            continue;
        };
        let (want, got) = (facts(e), facts(g));
        let wrong: Vec<String> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v) && !KNOWN_DIFFERENCES.contains(&(id(e).as_str(), **k)))
            .map(|(k, v)| format!("{} {k}: shipped {v} generated {}", id(e), got[k]))
            .collect();
        if wrong.is_empty() {
            agree += 1;
        }
        differences.extend(wrong);
    }
    let shipped_ids: std::collections::BTreeSet<String> = shipped.iter().map(id).collect();
    differences.extend(made.keys().filter(|k| !shipped_ids.contains(*k)).map(|k| format!("extra {k}")));
    (agree, shipped.len().max(generated.len()), differences)
}

#[test]
fn generated_snapshots_agree_with_shipped_ones() {
    let Some(shipped_set) = support::load_packages() else { return };
    let Some(stripped_set) = support::strip::load_stripped_packages() else { return };
    let names: Vec<String> = match std::env::var("SNAPSHOT_PROFILES") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => PROFILES.iter().map(|s| s.to_string()).collect(),
    };
    let mut failures = Vec::new();
    for name in &names {
        let shipped = by_name(&shipped_set, name).unwrap_or_else(|| panic!("{name} loaded"));
        let stripped = by_name(&stripped_set, name).expect("same profile");
        assert!(stripped.get("snapshot").is_none());
        let generated = generate_snapshot(stripped, &stripped_set).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shipped_list = shipped["snapshot"]["element"].as_array().expect("shipped snapshot");
        let (agree, total, differences) = compare(shipped_list, generated.as_array().expect("list"));
        println!("{name}: {agree}/{total} elements agree");
        for d in differences.iter().take(15) {
            println!("    {d}");
        }
        if agree != total {
            failures.push(name.clone());
        }
    }
    assert!(failures.is_empty(), "disagreeing: {failures:?}");
}

/// Every StructureDefinition of JP Core and JP-CLINS, as a whole figure (the publisher's
/// snapshots are the reference; any disagreement is printed).
#[test]
fn every_jp_snapshot_is_regenerated() {
    let Some(shipped_set) = support::load_packages() else { return };
    let Some(stripped_set) = support::strip::load_stripped_packages() else { return };
    let (mut agree_sum, mut total_sum, mut profiles) = (0, 0, 0);
    let mut failures = Vec::new();
    for package in ["jp-core.r4", "jp-eCSCLINS.r4"] {
        for stripped in stripped_set.from_package(package, ConformanceKind::StructureDefinition) {
            let url = stripped["url"].as_str().expect("url");
            let shipped = shipped_set.resolve(ConformanceKind::StructureDefinition, url).expect("same profile");
            let shipped_list = shipped["snapshot"]["element"].as_array().expect("shipped snapshot");
            let generated = match generate_snapshot(stripped, &stripped_set) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let (agree, total, differences) = compare(shipped_list, generated.as_array().expect("list"));
            if agree != total {
                println!("{}: {agree}/{total} elements agree", stripped["name"]);
                for d in differences.iter().take(5) {
                    println!("    {d}");
                }
                failures.push(url.to_owned());
            }
            (agree_sum, total_sum, profiles) = (agree_sum + agree, total_sum + total, profiles + 1);
        }
    }
    println!("{profiles} profiles: {agree_sum}/{total_sum} elements agree");
    // Timing, as the validator generates: one generator, so shared bases are made once.
    let started = std::time::Instant::now();
    let mut generator = SnapshotGenerator::default();
    let clins = stripped_set.from_package("jp-eCSCLINS.r4", ConformanceKind::StructureDefinition);
    let count = clins.map(|sd| generator.snapshot_of(sd, &stripped_set).expect("generated")).count();
    println!("{count} JP-CLINS snapshots (with their JP Core bases) generated in {:?}", started.elapsed());
    assert!(profiles >= 130, "{profiles}");
    assert!(failures.is_empty(), "{failures:#?}");
}

const PROFILES: &[&str] = &[
    "JP_Patient",
    "JP_Observation_LabResult_eCS",
    "JP_Condition_eCS",
    "JP_MedicationRequest_eCS",
    "JP_AllergyIntolerance_eCS",
    "JP_Composition_eReferral",
    "JP_Bundle_CLINS",
];

/// The JP-CLINS examples give the same issues whether the JP packages ship snapshots or
/// the validator generates them from the differentials.
#[test]
fn clins_examples_give_the_same_issues_with_generated_snapshots() {
    let Some(shipped) = support::validator() else { return };
    let Some(stripped) = support::strip::load_stripped_packages() else { return };
    let Some(examples) = support::clins_examples() else { return };
    let generated = Validator::new(stripped);
    // Warnings too: they carry the binding and terminology findings, so agreement on them
    // shows the generated bindings and slices are the shipped ones.
    let errors = |v: &Validator, r: &Value| -> Vec<String> {
        let mut list: Vec<String> = v
            .validate(r, &[])
            .into_iter()
            .map(|i| format!("{:?} {} [{}] {}", i.severity, i.location, i.code.as_str(), without_human(&i.message_en)))
            .collect();
        list.sort();
        list
    };
    let mut same = 0;
    let (mut error_count, mut issue_count) = (0, 0);
    for (name, resource) in &examples {
        let (want, got) = (errors(shipped, resource), errors(&generated, resource));
        error_count += want.iter().filter(|i| i.starts_with("Error")).count();
        issue_count += want.len();
        if want == got {
            same += 1;
        } else {
            println!("{name}:\n  shipped   {want:?}\n  generated {got:?}");
        }
    }
    println!(
        "{same}/{} examples give the same issues ({issue_count} issues, {error_count} errors, with shipped snapshots)",
        examples.len()
    );
    assert!(error_count > 0, "the deliberate ErrorExamples must give errors");
    assert_eq!(same, examples.len());
}

/// A constraint failure without the constraint's human text: the publisher rewrote the
/// `human` of inherited core constraints (dom-6) into Japanese in the shipped JP Core
/// snapshots, text no differential carries; the key and the place are what matter.
fn without_human(message: &str) -> String {
    match message.strip_prefix("Constraint failed: ").and_then(|rest| rest.split_once(':')) {
        Some((key, _)) => format!("Constraint failed: {key}"),
        None => message.to_owned(),
    }
}

const BP_PROFILE: &str = "http://example.org/StructureDefinition/DiffOnlyBloodPressure";
const LOINC: &str = "http://loinc.org";

/// A differential-only Observation profile: status fixed, value[x] narrowed to Quantity,
/// component sliced by a pattern on code with a 1..1 systolic slice whose unit is fixed
/// through the renamed choice path `valueQuantity`.
fn blood_pressure_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": BP_PROFILE, "name": "DiffOnlyBloodPressure",
        "type": "Observation", "kind": "resource", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "differential": {"element": [
            {"id": "Observation.status", "path": "Observation.status", "fixedCode": "final"},
            {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}]},
            {"id": "Observation.component", "path": "Observation.component",
             "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}},
            {"id": "Observation.component:systolic", "path": "Observation.component", "sliceName": "systolic",
             "min": 1, "max": "1"},
            {"id": "Observation.component:systolic.code", "path": "Observation.component.code",
             "patternCodeableConcept": {"coding": [{"system": LOINC, "code": "8480-6"}]}},
            {"id": "Observation.component:systolic.valueQuantity.code",
             "path": "Observation.component.valueQuantity.code", "min": 1, "fixedCode": "mm[Hg]"}
        ]}
    })
}

fn blood_pressure() -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "valueQuantity": {"value": 1, "unit": "1"},
        "component": [{
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        }]
    })
}

#[test]
fn hand_written_differential_only_profile_validates() {
    let Some(core) = tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz") else { return };
    let mut set = PackageSet::new();
    set.load_tgz(&core).expect("core loads");
    set.insert(ConformanceKind::StructureDefinition, blood_pressure_profile());
    let generated = generate_snapshot(&blood_pressure_profile(), &set).expect("generated");
    let ids: Vec<&str> = generated.as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(ids.contains(&"Observation.component:systolic.value[x].code"), "{ids:?}");
    let mut misspelt = blood_pressure_profile();
    misspelt["differential"]["element"][0]["id"] = json!("Observation.stattus");
    match generate_snapshot(&misspelt, &set) {
        Err(SnapshotError::Unplaced { element, .. }) => assert_eq!(element, "Observation.stattus"),
        other => panic!("{other:?}"),
    }
    let v = Validator::new(set);
    let errors = |r: &Value| -> Vec<String> {
        v.validate(r, &[BP_PROFILE])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{} {}", i.location, i.message_en))
            .collect()
    };
    assert_eq!(errors(&blood_pressure()), Vec::<String>::new());

    let mut wrong_status = blood_pressure();
    wrong_status["status"] = json!("preliminary");
    let e = errors(&wrong_status);
    assert!(e.iter().any(|m| m.starts_with("Observation.status ")), "{e:?}");

    let mut string_value = blood_pressure();
    string_value.as_object_mut().unwrap().remove("valueQuantity");
    string_value["valueString"] = json!("high");
    let e = errors(&string_value);
    assert!(e.iter().any(|m| m.starts_with("Observation.value")), "{e:?}");

    let mut no_systolic = blood_pressure();
    no_systolic["component"][0]["code"]["coding"][0]["code"] = json!("8462-4");
    let e = errors(&no_systolic);
    assert!(e.iter().any(|m| m.contains("systolic")), "{e:?}");

    let mut wrong_unit = blood_pressure();
    wrong_unit["component"][0]["valueQuantity"]["code"] = json!("kPa");
    let e = errors(&wrong_unit);
    assert!(e.iter().any(|m| m.starts_with("Observation.component[0].valueQuantity.code")), "{e:?}");
}

/// A differential-only profile whose base is not loaded is unusable, and validation says
/// so instead of silently passing.
#[test]
fn ungeneratable_snapshot_is_reported_on_the_resource() {
    let mut set = PackageSet::new();
    set.insert(ConformanceKind::StructureDefinition, blood_pressure_profile());
    let v = Validator::new(set);
    let issues = v.validate(&blood_pressure(), &[BP_PROFILE]);
    assert!(
        issues.iter().any(|i| i.severity == Severity::Error && i.message_en.contains("none could be generated")),
        "{issues:#?}"
    );
    assert!(v.unusable_profile(BP_PROFILE).is_some());
}
