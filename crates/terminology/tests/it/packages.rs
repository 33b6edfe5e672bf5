//! Operations against the real packages: R4 core, JP Core and JP-CLINS, read from
//! TSUNAGU_SHARED (default `../shared` beside the workspace).

use std::sync::OnceLock;

use serde_json::{json, Value};
use tsunagu_package::PackageSet;
use tsunagu_terminology::{
    ErrorKind, ExpandParams, Membership, Subsumption, Terminology, TerminologyError, TranslateParams, ValueSetSource,
};

const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CORE_LABO_CS: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS";
const ALB_VS: &str = "http://jpfhir.jp/fhir/clins/ValueSet/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_alb_VS";
const GENDER_VS: &str = "http://hl7.org/fhir/ValueSet/administrative-gender";

/// The service over the three packages; `None` (after a SKIP line, or a panic under
/// `CI=true`) when they are absent.
fn service() -> Option<&'static Terminology> {
    static SERVICE: OnceLock<Option<Terminology>> = OnceLock::new();
    SERVICE
        .get_or_init(|| {
            tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz")?;
            let dir = tsunagu_reference::shared_dir();
            let mut set = PackageSet::new();
            for p in ["fhir/hl7.fhir.r4.core-4.0.1.tgz", "jp/jp-core.r4-1.1.2-url.tgz", "jp/jp-clins.r4-1.5.2-snap.tgz"]
            {
                set.load_tgz(&dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            }
            Some(Terminology::new(&set))
        })
        .as_ref()
}

/// The value of the first parameter called `name`.
fn param<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    let p = params["parameter"].as_array()?.iter().find(|p| p["name"] == name)?;
    p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| v)
}

fn codes(vs: &Value) -> Vec<String> {
    vs["expansion"]["contains"]
        .as_array()
        .map(|a| a.iter().map(|c| c["code"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn expand(url: &str, params: ExpandParams<'_>) -> Value {
    service().expect("each test checks for the packages first").expand(ValueSetSource::Canonical(url), &params).unwrap()
}

#[test]
fn expands_administrative_gender() {
    if service().is_none() {
        return;
    }
    let vs = expand(GENDER_VS, ExpandParams::default());
    assert_eq!(vs["resourceType"], "ValueSet");
    assert_eq!(vs["expansion"]["total"], 4);
    assert_eq!(codes(&vs), ["male", "female", "other", "unknown"]);
    let first = &vs["expansion"]["contains"][0];
    assert_eq!(first["system"], "http://hl7.org/fhir/administrative-gender");
    assert_eq!(first["display"], "Male");
    let used = vs["expansion"]["parameter"].as_array().unwrap();
    assert!(used
        .iter()
        .any(|p| p["name"] == "used-codesystem" && p["valueUri"] == "http://hl7.org/fhir/administrative-gender|4.0.1"));
    // Filter, then paging over the filtered list.
    let vs = expand(GENDER_VS, ExpandParams { filter: Some("MAL"), ..Default::default() });
    assert_eq!(codes(&vs), ["male", "female"]);
    let vs = expand(GENDER_VS, ExpandParams { count: Some(2), offset: 1, ..Default::default() });
    assert_eq!(vs["expansion"]["total"], 4);
    assert_eq!(vs["expansion"]["offset"], 1);
    assert_eq!(codes(&vs), ["female", "other"]);
}

#[test]
fn looks_up_in_a_hierarchy() {
    let Some(t) = service() else { return };
    let out = t.lookup(ACT_CODE, "CC", None, &[]).unwrap();
    assert_eq!(param(&out, "display").unwrap(), "credit card");
    assert_eq!(param(&out, "name").unwrap(), "v3.ActCode");
    let props: Vec<(String, String)> = out["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "property")
        .map(|p| (p["part"][0]["valueCode"].as_str().unwrap().to_owned(), p["part"][1]["valueCode"].to_string()))
        .collect();
    assert!(props.contains(&("parent".into(), "\"_ActAccountCode\"".into())), "{props:?}");
    for child in ["AE", "DN", "DV", "MC", "V"] {
        assert!(props.contains(&("child".into(), format!("\"{child}\""))), "{child} in {props:?}");
    }
    // Only what was asked for.
    let out = t.lookup(ACT_CODE, "CC", None, &["parent"]).unwrap();
    let names: Vec<&str> = out["parameter"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["name", "version", "display", "property"]);

    let out =
        t.lookup("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", None, &[]).unwrap();
    assert_eq!(param(&out, "display").unwrap(), "Encounter Diagnosis");
    assert_eq!(param(&out, "version").unwrap(), "4.0.1");

    let err = t.lookup(ACT_CODE, "NO-SUCH", None, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = t.lookup("http://example.org/none", "x", None, &[]).unwrap_err();
    assert!(matches!(err, TerminologyError::NotFound { .. }));
}

#[test]
fn lookup_of_a_japanese_concept_returns_designations() {
    let Some(t) = service() else { return };
    let out = t.lookup(CORE_LABO_CS, "3A015000002329101", None, &[]).unwrap();
    let designation = out["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "designation").unwrap();
    assert_eq!(designation["part"][0]["valueCode"], "ja");
    assert_eq!(designation["part"][1]["valueString"], "アルブミン");
    let specimen = out["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "property" && p["part"][0]["valueCode"] == "specimen")
        .unwrap();
    assert_eq!(specimen["part"][1]["valueString"], "血清");
}

#[test]
fn subsumption_on_act_code() {
    let Some(t) = service() else { return };
    assert_eq!(t.subsumption(ACT_CODE, "_ActAccountCode", "AE", None).unwrap(), Subsumption::Subsumes);
    assert_eq!(t.subsumption(ACT_CODE, "AE", "_ActAccountCode", None).unwrap(), Subsumption::SubsumedBy);
    assert_eq!(t.subsumption(ACT_CODE, "AE", "CASH", None).unwrap(), Subsumption::NotSubsumed);
    assert_eq!(t.subsumption(ACT_CODE, "CC", "CC", None).unwrap(), Subsumption::Equivalent);
    let out = t.subsumes(ACT_CODE, "CC", "V", None).unwrap();
    assert_eq!(param(&out, "outcome").unwrap(), "subsumes");
    assert!(t.subsumes(ACT_CODE, "CC", "nope", None).is_err());
    assert_eq!(t.descendants(ACT_CODE, "CC"), ["AE", "DN", "DV", "MC", "V"]);
    assert_eq!(t.ancestors(ACT_CODE, "AE"), ["CC", "_ActAccountCode"]);
    assert!(t.descendants("http://example.org/none", "x").is_empty());
}

#[test]
fn translates_with_a_core_concept_map() {
    let Some(t) = service() else { return };
    let url = "http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v2";
    let out = t
        .translate(&TranslateParams {
            url: Some(url),
            system: "http://hl7.org/fhir/administrative-gender",
            code: "other",
            ..Default::default()
        })
        .unwrap();
    assert_eq!(param(&out, "result").unwrap(), true);
    let matches: Vec<&Value> = out["parameter"].as_array().unwrap().iter().filter(|p| p["name"] == "match").collect();
    assert_eq!(matches.len(), 2);
    assert_eq!(matches[0]["part"][0]["valueCode"], "wider");
    assert_eq!(matches[0]["part"][1]["valueCoding"]["code"], "A");
    assert_eq!(matches[0]["part"][2]["valueUri"], url);
    // Reverse, and without naming the map.
    let out = t
        .translate(&TranslateParams {
            system: "http://terminology.hl7.org/CodeSystem/v2-0001",
            code: "F",
            reverse: true,
            ..Default::default()
        })
        .unwrap();
    let m = out["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "match").unwrap();
    assert_eq!(m["part"][1]["valueCoding"]["code"], "female");
    let out = t
        .translate(&TranslateParams {
            url: Some(url),
            system: "http://hl7.org/fhir/administrative-gender",
            code: "nothing",
            ..Default::default()
        })
        .unwrap();
    assert_eq!(param(&out, "result").unwrap(), false);
    assert!(param(&out, "message").is_some());
}

#[test]
fn jp_clins_descendent_of_filter_and_japanese_text() {
    let Some(t) = service() else { return };
    let vs = expand(ALB_VS, ExpandParams::default());
    let all = codes(&vs);
    assert!(all.contains(&"3A015000002329101".to_owned()));
    assert!(!all.contains(&"ALB".to_owned()), "descendent-of leaves the grouper out");
    assert!(all.iter().all(|c| c.starts_with("3A015")), "{all:?}");
    // Half-width katakana finds the full-width designation アルブミン; display stays ALB.
    for filter in ["ｱﾙﾌﾞﾐﾝ", "あるぶみん", "アルブミン"] {
        let vs = expand(ALB_VS, ExpandParams { filter: Some(filter), ..Default::default() });
        assert_eq!(codes(&vs).len(), all.len(), "{filter}");
    }
    let vs = expand(ALB_VS, ExpandParams { filter: Some("ｸﾚｱﾁﾆﾝ"), ..Default::default() });
    assert_eq!(vs["expansion"]["total"], 0);
    let vs = expand(ALB_VS, ExpandParams { display_language: Some("ja"), count: Some(1), ..Default::default() });
    assert_eq!(vs["expansion"]["contains"][0]["display"], "アルブミン");

    assert_eq!(t.membership(ALB_VS, Some(CORE_LABO_CS), "3A015000002329101"), Membership::In);
    assert_eq!(t.membership(ALB_VS, Some(CORE_LABO_CS), "ALB"), Membership::NotIn);
    assert_eq!(t.membership(ALB_VS, None, "3A015000002329101"), Membership::In);
    assert_eq!(t.membership(ALB_VS, Some("http://loinc.org"), "3A015000002329101"), Membership::NotIn);
    assert_eq!(t.membership("http://example.org/ValueSet/none", None, "x"), Membership::Unknown);
    let codes = t.expand_codes(ALB_VS).unwrap();
    assert_eq!(codes.len(), all.len());
    assert!(codes.iter().all(|(s, _)| s == CORE_LABO_CS));
}

#[test]
fn jp_core_listed_codes() {
    let Some(t) = service() else { return };
    let url = "http://jpfhir.jp/fhir/core/ValueSet/JP_ConclusionCodesJed_VS";
    let vs = expand(url, ExpandParams::default());
    assert!(codes(&vs).contains(&"Z2Z30001".to_owned()));
    let vs = expand(url, ExpandParams { filter: Some("異常なし"), ..Default::default() });
    assert!(codes(&vs).contains(&"Z2Z30001".to_owned()));
    let out = t
        .validate_code_in_value_set(url, Some("urn:oid:1.2.392.200270.4.1000.1"), "Z2Z30001", Some("異常なし"))
        .unwrap();
    assert_eq!(param(&out, "result").unwrap(), true);
    let out = t.validate_code_in_value_set(url, None, "Z2Z30001", Some("異常あり")).unwrap();
    assert_eq!(param(&out, "result").unwrap(), false);
    assert_eq!(param(&out, "display").unwrap(), "異常なし");
}

#[test]
fn unloaded_code_systems_are_unknown_not_wrong() {
    let Some(t) = service() else { return };
    // JP Core's JHSP0002 value set includes a whole system no package ships.
    let url = "http://jpfhir.jp/fhir/Examples/ValueSet/JP_MedicationInstructionForDispenseJHSP0002_VS";
    assert_eq!(t.membership(url, Some("http://jpfhir.jp/fhir/core/CodeSystem/JHSP0002"), "01"), Membership::Unknown);
    let err = t.expand(ValueSetSource::Canonical(url), &ExpandParams::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("JHSP0002"), "{err}");
    let out = t.validate_code_in_value_set(url, None, "01", None).unwrap();
    assert_eq!(param(&out, "result").unwrap(), false);
    assert!(param(&out, "message").unwrap().as_str().unwrap().contains("Cannot decide"));
    // A value set that lists its codes decides even without the code system (LOINC).
    let listed = "http://jpfhir.jp/fhir/core/ValueSet/JP_ObservationCategory_Microbiology_VS";
    assert_eq!(t.membership(listed, Some("http://loinc.org"), "18725-2"), Membership::In);
    assert_eq!(t.membership(listed, Some("http://loinc.org"), "0000-0"), Membership::NotIn);
}

#[test]
fn validate_code_in_system_checks_display() {
    let Some(t) = service() else { return };
    let system = "http://hl7.org/fhir/administrative-gender";
    let ok = t.validate_code_in_system(system, "male", None, Some("Male")).unwrap();
    assert_eq!(param(&ok, "result").unwrap(), true);
    // Width and case are folded.
    let ok = t.validate_code_in_system(system, "male", None, Some("ＭＡＬＥ")).unwrap();
    assert_eq!(param(&ok, "result").unwrap(), true);
    let wrong = t.validate_code_in_system(system, "male", None, Some("Female")).unwrap();
    assert_eq!(param(&wrong, "result").unwrap(), false);
    assert_eq!(param(&wrong, "display").unwrap(), "Male");
    assert!(param(&wrong, "message").unwrap().as_str().unwrap().contains("Female"));
    let unknown = t.validate_code_in_system(system, "mole", None, None).unwrap();
    assert_eq!(param(&unknown, "result").unwrap(), false);
    // A Japanese designation is an acceptable display.
    let ja = t.validate_code_in_system(CORE_LABO_CS, "3A015000002329101", None, Some("ｱﾙﾌﾞﾐﾝ")).unwrap();
    assert_eq!(param(&ja, "result").unwrap(), true);
}

#[test]
fn inline_value_sets_filters_excludes_and_limits() {
    let Some(t) = service() else { return };
    let vs = json!({
        "resourceType": "ValueSet",
        "compose": {
            "include": [{"system": ACT_CODE, "filter": [{"property": "concept", "op": "is-a", "value": "_ActAccountCode"}]}],
            "exclude": [{"system": ACT_CODE, "concept": [{"code": "CASH"}]}]
        }
    });
    let out = t.expand(ValueSetSource::Inline(&vs), &ExpandParams::default()).unwrap();
    let got = codes(&out);
    assert!(got.contains(&"_ActAccountCode".to_owned()) && got.contains(&"AE".to_owned()));
    assert!(!got.contains(&"CASH".to_owned()));
    let abstract_flag = &out["expansion"]["contains"][0];
    assert_eq!(
        (abstract_flag["code"].as_str(), abstract_flag["abstract"].as_bool()),
        (Some("_ActAccountCode"), Some(true))
    );

    // Import of another value set, intersected with a system part.
    let vs = json!({
        "resourceType": "ValueSet",
        "compose": {"include": [{"valueSet": [GENDER_VS], "system": "http://hl7.org/fhir/administrative-gender",
            "filter": [{"property": "concept", "op": "regex", "value": "f.*|o.*"}]}]}
    });
    let out = t.expand(ValueSetSource::Inline(&vs), &ExpandParams::default()).unwrap();
    assert_eq!(codes(&out), ["female", "other"]);

    let small = Terminology::default().with_expansion_limit(2);
    small
        .add(json!({"resourceType": "CodeSystem", "url": "urn:cs", "content": "complete",
        "concept": [{"code": "a"}, {"code": "b"}, {"code": "c"}]}))
        .unwrap();
    small
        .add(json!({"resourceType": "ValueSet", "url": "urn:vs", "compose": {"include": [{"system": "urn:cs"}]}}))
        .unwrap();
    let err = small.expand(ValueSetSource::Canonical("urn:vs"), &ExpandParams::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooCostly);
    assert!(small.expand_codes("urn:vs").is_err());
    let page = small
        .expand(ValueSetSource::Canonical("urn:vs"), &ExpandParams { count: Some(2), ..Default::default() })
        .unwrap();
    assert_eq!(page["expansion"]["total"], 3);
    assert_eq!(codes(&page), ["a", "b"]);
}

#[test]
fn added_resources_replace_and_invalidate() {
    let t = Terminology::default();
    let cs = |display: &str| {
        json!({"resourceType": "CodeSystem", "url": "urn:x", "version": "1", "content": "complete",
            "concept": [{"code": "k", "display": display}]})
    };
    t.add(cs("old")).unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:v", "compose": {"include": [{"system": "urn:x"}]}})).unwrap();
    let first = t.expand(ValueSetSource::Canonical("urn:v"), &ExpandParams::default()).unwrap();
    assert_eq!(first["expansion"]["contains"][0]["display"], "old");
    t.add(cs("new")).unwrap();
    let second = t.expand(ValueSetSource::Canonical("urn:v"), &ExpandParams::default()).unwrap();
    assert_eq!(second["expansion"]["contains"][0]["display"], "new");
    assert!(t.add(json!({"resourceType": "Patient"})).is_err());
    assert!(t.add(json!({"resourceType": "ValueSet"})).is_err());
    // Import cycles are refused, not looped.
    t.add(json!({"resourceType": "ValueSet", "url": "urn:a", "compose": {"include": [{"valueSet": ["urn:b"]}]}}))
        .unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:b", "compose": {"include": [{"valueSet": ["urn:a"]}]}}))
        .unwrap();
    let err = t.expand(ValueSetSource::Canonical("urn:a"), &ExpandParams::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(t.membership("urn:a", None, "k"), Membership::Unknown);
}

#[test]
fn listed_and_indexed_codes_of_one_system_mix() {
    let t = Terminology::default();
    t.add(json!({"resourceType": "CodeSystem", "url": "urn:y", "content": "complete",
        "concept": [{"code": "k", "display": "Kay"}, {"code": "m", "display": "Em"}]}))
        .unwrap();
    // A value set shipped only as an expansion, then imported beside the whole system.
    t.add(json!({"resourceType": "ValueSet", "url": "urn:pre",
        "expansion": {"contains": [{"system": "urn:y", "code": "k", "display": "Kay (listed)"}]}}))
        .unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:mix",
        "compose": {"include": [{"valueSet": ["urn:pre"]}, {"system": "urn:y"}]}}))
        .unwrap();
    let out = t.expand(ValueSetSource::Canonical("urn:mix"), &ExpandParams::default()).unwrap();
    assert_eq!(codes(&out), ["k", "m"]);
    assert_eq!(out["expansion"]["contains"][0]["display"], "Kay (listed)");
    let check = t.validate_code_in_value_set("urn:mix", Some("urn:y"), "m", Some("Em")).unwrap();
    assert_eq!(param(&check, "result").unwrap(), true);
}
