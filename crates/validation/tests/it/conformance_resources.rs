//! Conformance resources checked as such, and the narrative-link and markdown rules, each
//! with an instance that keeps the rule and one that breaks it, in the words of the R4
//! pages (and the HL7 validator's severities). Validated against the core package alone.

use crate::support;

use serde_json::{json, Value};
use tsunagu_validation::{Issue, Severity};

fn issues(resource: &Value) -> Vec<Issue> {
    support::core_validator().expect("checked by the caller").validate(resource, &[])
}

fn messages(resource: &Value, severity: Severity) -> Vec<String> {
    issues(resource)
        .into_iter()
        .filter(|i| i.severity == severity)
        .map(|i| format!("{} {}", i.location, i.message_en))
        .collect()
}

/// An error whose location and message contain `needle`.
fn assert_error(resource: &Value, needle: &str) {
    let found = messages(resource, Severity::Error);
    assert!(found.iter().any(|e| e.contains(needle)), "expected an error with {needle:?}, got {found:?}");
}

fn assert_warning(resource: &Value, needle: &str) {
    let found = messages(resource, Severity::Warning);
    assert!(found.iter().any(|e| e.contains(needle)), "expected a warning with {needle:?}, got {found:?}");
    let errors = messages(resource, Severity::Error);
    assert!(errors.iter().all(|e| !e.contains(needle)), "{needle:?} must not be an error: {errors:?}");
}

fn assert_no_errors(resource: &Value) {
    let found = messages(resource, Severity::Error);
    assert!(found.is_empty(), "{found:?}");
}

fn assert_silent(resource: &Value, needle: &str) {
    let found: Vec<String> = issues(resource).into_iter().map(|i| format!("{} {}", i.location, i.message_en)).collect();
    assert!(found.iter().all(|m| !m.contains(needle)), "nothing about {needle:?} expected, got {found:?}");
}

fn ready() -> bool {
    support::core_validator().is_some()
}

// ---------------------------------------------------------------- SearchParameter

fn search_parameter(extra: Value) -> Value {
    let mut sp = json!({"resourceType": "SearchParameter", "url": "http://example.org/fhir/SearchParameter/nick",
        "name": "Nick", "status": "draft", "description": "A nickname", "code": "nick", "base": ["Patient"],
        "type": "string", "expression": "Patient.name.given"});
    for (k, v) in extra.as_object().unwrap() {
        sp[k] = v.clone();
    }
    sp
}

#[test]
fn search_parameter_expression_must_compile_as_fhirpath() {
    if !ready() {
        return;
    }
    assert_no_errors(&search_parameter(json!({})));
    assert_error(
        &search_parameter(json!({"expression": "Patient.name.where(use = 'nickname'"})),
        "Error in search expression",
    );
    assert_error(&search_parameter(json!({"expression": "Patient.nmae"})), "SearchParameter.expression");
}

#[test]
fn search_parameter_bases_are_resource_types_by_the_required_binding() {
    if !ready() {
        return;
    }
    // base is bound (required) to resource-types: the structure check says so once.
    assert_error(&search_parameter(json!({"base": ["Nobody"]})), "SearchParameter.base[0] Code 'Nobody'");
}

#[test]
fn a_composite_search_parameter_has_two_or_more_components() {
    if !ready() {
        return;
    }
    let component = |def: &str, expr: &str| json!({"definition": def, "expression": expr});
    let composite = |components: Vec<Value>| {
        search_parameter(json!({"code": "code-value", "type": "composite", "base": ["Observation"],
            "expression": "Observation", "component": components}))
    };
    let code = component("http://hl7.org/fhir/SearchParameter/clinical-code", "code");
    let value = component("http://hl7.org/fhir/SearchParameter/Observation-value-quantity", "value.as(Quantity)");
    assert_no_errors(&composite(vec![code.clone(), value]));
    assert_error(&composite(vec![code]), "two or more components");
    assert_error(&composite(vec![]), "two or more components");
}

#[test]
fn a_derived_search_parameter_keeps_the_type_and_bases_of_its_definition() {
    if !ready() {
        return;
    }
    let derived = |extra: Value| {
        let mut sp = search_parameter(json!({"derivedFrom": "http://hl7.org/fhir/SearchParameter/Patient-name",
            "code": "pname", "expression": "Patient.name"}));
        for (k, v) in extra.as_object().unwrap() {
            sp[k] = v.clone();
        }
        sp
    };
    assert_no_errors(&derived(json!({})));
    assert_silent(&derived(json!({})), "derived from");
    // "the details in the search parameter must be consistent with the definition from
    // which it is defined".
    assert_error(&derived(json!({"type": "token"})), "differs from the type string");
    assert_error(
        &derived(json!({"base": ["Practitioner"], "expression": "Practitioner.name"})),
        "not a base of the search parameter",
    );
    assert_warning(&derived(json!({"expression": "Patient.name.given"})), "is not compatible with the expression");
    assert_warning(
        &derived(json!({"derivedFrom": "http://example.org/fhir/SearchParameter/unknown"})),
        "is not in the loaded packages",
    );
    // Defined on Resource: any base may derive from it.
    assert_no_errors(&search_parameter(json!({"derivedFrom": "http://hl7.org/fhir/SearchParameter/Resource-id",
        "code": "pid", "type": "token", "expression": "Patient.id"})));
}

// ------------------------------------------------------------ OperationDefinition

fn operation(parameters: Value) -> Value {
    json!({"resourceType": "OperationDefinition", "url": "http://example.org/fhir/OperationDefinition/echo",
        "name": "Echo", "status": "draft", "kind": "operation", "code": "echo", "resource": ["Patient"],
        "system": false, "type": true, "instance": false, "parameter": parameters})
}

#[test]
fn a_multi_part_parameter_has_no_type() {
    if !ready() {
        return;
    }
    let part = json!({"name": "line", "use": "out", "min": 0, "max": "*", "type": "string"});
    assert_no_errors(&operation(json!([{"name": "result", "use": "out", "min": 1, "max": "1", "part": [part]}])));
    assert_error(
        &operation(json!([{"name": "result", "use": "out", "min": 1, "max": "1", "type": "string", "part": [part]}])),
        "has both a type (string) and parts",
    );
    // Nested parts are checked too.
    let nested = json!({"name": "deep", "use": "out", "min": 0, "max": "1", "type": "Coding", "part": [part]});
    assert_error(
        &operation(json!([{"name": "result", "use": "out", "min": 1, "max": "1", "part": [nested]}])),
        "OperationDefinition.parameter[0].part[0]",
    );
}

#[test]
fn parameter_types_and_resources_are_checked_by_their_required_bindings() {
    if !ready() {
        return;
    }
    let param = |ty: &str| json!([{"name": "x", "use": "in", "min": 0, "max": "1", "type": ty}]);
    assert_no_errors(&operation(param("Reference")));
    assert_error(&operation(param("Strnig")), "Code 'Strnig'");
    let mut wrong_resource = operation(param("string"));
    wrong_resource["resource"] = json!(["Patients"]);
    assert_error(&wrong_resource, "Code 'Patients'");
    // opd-2: searchType only on string parameters (a core invariant, reported once).
    let search = json!([{"name": "x", "use": "in", "min": 0, "max": "1", "type": "token", "searchType": "token"}]);
    assert_error(&operation(search), "opd-2");
}

#[test]
fn parameter_max_is_a_number_or_star_and_not_below_min() {
    if !ready() {
        return;
    }
    let param = |min: u64, max: &str| json!([{"name": "x", "use": "in", "min": min, "max": max, "type": "string"}]);
    assert_no_errors(&operation(param(0, "*")));
    assert_no_errors(&operation(param(1, "3")));
    assert_error(&operation(param(0, "many")), "must be a number or '*'");
    assert_error(&operation(param(2, "1")), "below its min 2");
}

#[test]
fn a_binding_is_for_coded_parameters() {
    if !ready() {
        return;
    }
    let binding = json!({"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/administrative-gender"});
    let param = |ty: &str| json!([{"name": "x", "use": "in", "min": 0, "max": "1", "type": ty, "binding": binding}]);
    assert_silent(&operation(param("code")), "bindings are for coded parameters");
    assert_warning(&operation(param("integer")), "bindings are for coded parameters");
}

#[test]
fn input_and_output_profiles_constrain_parameters() {
    if !ready() {
        return;
    }
    let with_profile = |url: &str| {
        let mut od = operation(json!([{"name": "x", "use": "in", "min": 0, "max": "1", "type": "string"}]));
        od["outputProfile"] = json!(url);
        od
    };
    assert_no_errors(&with_profile("http://hl7.org/fhir/StructureDefinition/Parameters"));
    assert_error(&with_profile("http://hl7.org/fhir/StructureDefinition/Patient"), "it must constrain Parameters");
    assert_warning(
        &with_profile("http://example.org/fhir/StructureDefinition/nowhere"),
        "is not in the loaded packages",
    );
}

// ------------------------------------------------------------ CapabilityStatement

fn capability(resource: Value) -> Value {
    json!({"resourceType": "CapabilityStatement", "status": "draft", "date": "2024-01-01", "kind": "instance",
        "implementation": {"description": "test server"}, "fhirVersion": "4.0.1", "format": ["json"],
        "rest": [{"mode": "server", "resource": [resource]}]})
}

#[test]
fn capability_profiles_are_structure_definitions_of_the_resource_type() {
    if !ready() {
        return;
    }
    let with = |key: &str, url: Value| {
        let mut r = json!({"type": "Patient", "interaction": [{"code": "read"}]});
        r[key] = url;
        capability(r)
    };
    assert_no_errors(&with("profile", json!("http://hl7.org/fhir/StructureDefinition/Patient")));
    assert_error(
        &with("profile", json!("http://hl7.org/fhir/StructureDefinition/Observation")),
        "is for Observation, not Patient",
    );
    assert_error(
        &with("supportedProfile", json!(["http://hl7.org/fhir/ValueSet/administrative-gender"])),
        "is a ValueSet in the loaded packages, not a StructureDefinition",
    );
    assert_warning(
        &with("profile", json!("http://example.org/fhir/StructureDefinition/mine")),
        "is not in the loaded packages",
    );
}

#[test]
fn capability_search_parameters_have_the_type_of_their_definition() {
    if !ready() {
        return;
    }
    let with = |name: &str, ty: &str, def: &str| {
        capability(json!({"type": "Patient", "searchParam": [{"name": name, "type": ty, "definition": def}]}))
    };
    assert_no_errors(&with("name", "string", "http://hl7.org/fhir/SearchParameter/Patient-name"));
    // "It SHALL be the same as the type in the search parameter definition."
    assert_error(&with("name", "token", "http://hl7.org/fhir/SearchParameter/Patient-name"), "it SHALL be the same");
    assert_warning(&with("code", "token", "http://hl7.org/fhir/SearchParameter/clinical-code"), "not for Patient");
    assert_warning(&with("x", "string", "http://example.org/fhir/SearchParameter/x"), "is not in the loaded packages");
}

#[test]
fn capability_resource_types_and_interactions_are_checked_by_their_required_bindings() {
    if !ready() {
        return;
    }
    assert_error(&capability(json!({"type": "Patients"})), "Code 'Patients'");
    assert_error(&capability(json!({"type": "Patient", "interaction": [{"code": "fetch"}]})), "Code 'fetch'");
}

// ------------------------------------------------------------ StructureDefinition

fn profile(extra: Value) -> Value {
    let mut sd = json!({"resourceType": "StructureDefinition",
        "url": "http://example.org/fhir/StructureDefinition/named-patient", "name": "NamedPatient",
        "status": "draft", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": "Patient", "path": "Patient"},
            {"id": "Patient.name", "path": "Patient.name", "min": 1}]}});
    for (k, v) in extra.as_object().unwrap() {
        sd[k] = v.clone();
    }
    sd
}

fn differential(elements: Value) -> Value {
    json!({"differential": {"element": elements}})
}

#[test]
fn structure_type_is_a_fhir_type_or_a_logical_model_url() {
    if !ready() {
        return;
    }
    assert_no_errors(&profile(json!({})));
    assert_error(&profile(json!({"type": "Patiant"})), "is not defined in the FHIR specification");
    assert_error(
        &profile(json!({"type": "http://example.org/fhir/Thing", "derivation": "specialization"})),
        "only be defined if the kind is 'logical'",
    );
    // A FHIR type is specialised once, by its own definition.
    assert_error(&profile(json!({"derivation": "specialization"})), "only be used as a type when constraining");
    assert_error(&profile(json!({"derivation": "specialization"})), "must not be the type of the base structure");
    assert_error(
        &profile(
            json!({"type": "Observation", "differential": {"element": [{"id": "Observation", "path": "Observation"}]}}),
        ),
        "must be the type of the base structure",
    );
}

#[test]
fn element_paths_start_with_the_type() {
    if !ready() {
        return;
    }
    // sdf-8a lets a path through that only shares a prefix with the type.
    let prefix_only = profile(differential(json!([{"id": "PatientRecord", "path": "PatientRecord"},
        {"id": "PatientRecord.name", "path": "PatientRecord.name"}])));
    assert_error(&prefix_only, "differential.element[0].path The path PatientRecord must start with the type");
    // Logical models, which sdf-8 leaves alone: the type name is the URL's last segment.
    let logical = |second: &str| {
        json!({"resourceType": "StructureDefinition", "url": "http://example.org/fhir/StructureDefinition/Visit",
            "name": "Visit", "status": "draft", "kind": "logical", "abstract": false,
            "type": "http://example.org/fhir/StructureDefinition/Visit",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Element", "derivation": "specialization",
            "differential": {"element": [
                {"id": "Visit", "path": "Visit", "definition": "A visit", "min": 0, "max": "*"},
                {"id": second, "path": second, "definition": "When", "min": 0, "max": "1", "type": [{"code": "dateTime"}]}]}})
    };
    assert_silent(&logical("Visit.when"), "must start with the type");
    assert_error(&logical("Stay.when"), "The path Stay.when must start with the type of the structure (Visit)");
}

#[test]
fn constraint_expressions_compile() {
    if !ready() {
        return;
    }
    let with = |expr: &str| {
        profile(differential(json!([{"id": "Patient", "path": "Patient",
            "constraint": [{"key": "np-1", "severity": "error", "human": "A name or an identifier", "expression": expr}]}])))
    };
    assert_no_errors(&with("name.exists() or identifier.exists()"));
    assert_error(&with("name.exists() or identifier.exists("), "Error in constraint 'np-1'");
}

#[test]
fn the_differential_generates_a_snapshot() {
    if !ready() {
        return;
    }
    assert_no_errors(&profile(json!({})));
    let typo = profile(differential(json!([{"id": "Patient", "path": "Patient"},
        {"id": "Patient.nmae", "path": "Patient.nmae", "min": 1}])));
    assert_error(&typo, "Error generating the snapshot");
    assert_warning(
        &profile(json!({"baseDefinition": "http://example.org/fhir/StructureDefinition/missing"})),
        "is not loaded, so the differential was not checked",
    );
}

// ---------------------------------------------------------------- Measure

const POP: &str = "http://terminology.hl7.org/CodeSystem/measure-population";

fn population(code: &str) -> Value {
    json!({"code": {"coding": [{"system": POP, "code": code}]}, "criteria": {"language": "text/cql", "expression": code}})
}

fn measure(scoring: &str, groups: Value) -> Value {
    json!({"resourceType": "Measure", "url": "http://example.org/fhir/Measure/m", "status": "draft",
        "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": scoring}]},
        "group": groups})
}

fn code(c: &str) -> Value {
    json!({"coding": [{"system": "http://example.org/groups", "code": c}]})
}

fn proportion_group(c: &str) -> Value {
    json!({"code": code(c), "population": [population("initial-population"), population("denominator"), population("numerator")]})
}

#[test]
fn measure_group_and_stratifier_codes_are_unique() {
    if !ready() {
        return;
    }
    assert_no_errors(&measure("proportion", json!([proportion_group("a"), proportion_group("b")])));
    assert_error(
        &measure("proportion", json!([proportion_group("a"), proportion_group("a")])),
        "Measure.group[1].code",
    );
    let mut g = proportion_group("a");
    g["stratifier"] = json!([{"code": {"text": "age"}, "criteria": {"language": "text/cql", "expression": "Age"}},
        {"code": {"text": "age"}, "criteria": {"language": "text/cql", "expression": "Age2"}}]);
    assert_error(&measure("proportion", json!([g.clone()])), "Measure.group[0].stratifier[1].code");
    g["stratifier"][1]["code"] = json!({"text": "gender"});
    assert_no_errors(&measure("proportion", json!([g])));
    assert_warning(
        &measure(
            "proportion",
            json!([proportion_group("a"), {"population": [population("initial-population"),
            population("denominator"), population("numerator")]}]),
        ),
        "Groups should have codes",
    );
}

#[test]
fn populations_fit_the_scoring() {
    if !ready() {
        return;
    }
    assert_no_errors(&measure("proportion", json!([proportion_group("a")])));
    let pops = |codes: &[&str]| json!([{"population": codes.iter().map(|c| population(c)).collect::<Vec<_>>()}]);
    assert_error(&measure("proportion", pops(&["initial-population", "numerator"])), "needs a denominator population");
    assert_no_errors(&measure("cohort", pops(&["initial-population"])));
    assert_error(
        &measure("cohort", pops(&["initial-population", "numerator"])),
        "does not permit the population type numerator",
    );
    assert_no_errors(&measure(
        "continuous-variable",
        pops(&["initial-population", "measure-population", "measure-observation"]),
    ));
    assert_error(
        &measure("continuous-variable", pops(&["initial-population", "measure-population"])),
        "needs a measure-observation",
    );
    assert_error(
        &measure("ratio", pops(&["initial-population", "numerator", "denominator", "denominator-exception"])),
        "denominator-exception",
    );
}

fn report(measure_url: &str, groups: Value) -> Value {
    json!({"resourceType": "MeasureReport", "status": "complete", "type": "summary", "measure": measure_url,
        "period": {"start": "2024-01-01", "end": "2024-12-31"}, "group": groups})
}

fn report_group(c: &str) -> Value {
    json!({"code": code(c), "population": [{"code": {"coding": [{"system": POP, "code": "numerator"}]}, "count": 3}]})
}

fn bundle(measure: Value, report: Value) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Measure/m", "resource": measure},
        {"fullUrl": "http://example.org/fhir/MeasureReport/r", "resource": report}]})
}

#[test]
fn measure_report_groups_are_unique_and_match_the_measure() {
    if !ready() {
        return;
    }
    let url = "http://example.org/fhir/Measure/m";
    // "one for each population group in the measure".
    assert_error(&report(url, json!([report_group("a"), report_group("a")])), "MeasureReport.group[1].code");
    let stratified = |second: &str| {
        let mut g = report_group("a");
        g["stratifier"] = json!([{"code": [{"text": "age"}]}, {"code": [{"text": second}]}]);
        report(url, json!([g]))
    };
    assert_silent(&stratified("gender"), "codes must be unique");
    assert_error(&stratified("age"), "MeasureReport.group[0].stratifier[1].code");
    // Not found locally: a warning, no comparison.
    assert_warning(&report(url, json!([report_group("a")])), "could not be found locally");
    let m = measure("proportion", json!([proportion_group("a"), proportion_group("b")]));
    let mut mr = report(url, json!([report_group("a"), report_group("b")]));
    mr["id"] = json!("r");
    let mut m_with_id = m.clone();
    m_with_id["id"] = json!("m");
    assert_no_errors(&bundle(m_with_id.clone(), mr.clone()));
    let unknown = report(url, json!([report_group("a"), report_group("c")]));
    assert_error(&bundle(m_with_id.clone(), unknown.clone()), "has no match in the Measure");
    assert_error(&bundle(m_with_id.clone(), unknown), "does not include a group for the group 'b'");
    let wrong_population = report(
        url,
        json!([{"code": code("a"),
        "population": [{"code": {"coding": [{"system": POP, "code": "measure-population"}]}, "count": 1}]}, report_group("b")]),
    );
    assert_error(&bundle(m_with_id, wrong_population), "population has no match");
}

// ---------------------------------------------------------------- Narrative

fn patient(div: &str) -> Value {
    json!({"resourceType": "Patient", "id": "pat", "text": {"status": "generated", "div": div},
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Clinic"}],
        "managingOrganization": {"reference": "#org"}})
}

const NS: &str = "xmlns=\"http://www.w3.org/1999/xhtml\"";

#[test]
fn internal_hyperlinks_resolve_in_the_resource() {
    if !ready() {
        return;
    }
    let div = |body: &str| format!("<div {NS}>{body}</div>");
    assert_no_errors(&patient(&div("<p><a href=\"#n1\">note</a></p><p id=\"n1\">The note</p>")));
    assert_no_errors(&patient(&div("<p><a href=\"#top\">top</a><a name=\"top\">here</a></p>")));
    assert_no_errors(&patient(&div("<p><a href=\"#org\">clinic</a> (a contained resource)</p>")));
    assert_no_errors(&patient(&div(
        "<p><a href=\"#\">this page</a> and <a href=\"http://example.org/#x\">out</a></p>",
    )));
    assert_warning(
        &patient(&div("<p><a href=\"#missing\">gone</a></p>")),
        "Hyperlink '#missing' ('gone') does not resolve",
    );
    assert_warning(
        &patient(&div("<p>Scan <img src=\"#img1\" alt=\"scan\"/></p>")),
        "Image source '#img1' does not resolve",
    );
    assert_warning(
        &patient(&div("<p><a href=\"#d\">d</a><span id=\"d\">1</span><span id=\"d\">2</span></p>")),
        "resolves to 2 targets",
    );
    // In a Bundle, a link may point to another entry.
    let composition = json!({"resourceType": "Composition", "id": "c", "status": "final", "type": {"text": "note"},
        "date": "2024-01-01", "author": [{"display": "me"}], "title": "Note",
        "text": {"status": "generated", "div": div("<p>About <a href=\"#pat\">the patient</a></p>")}});
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Composition/c", "resource": composition},
        {"fullUrl": "http://example.org/fhir/Patient/pat", "resource": patient(&div("<p>Pat</p>"))}]});
    assert_no_errors(&b);
}

// ---------------------------------------------------------------- markdown

fn noted(note: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, "note": [{"text": note}]})
}

#[test]
fn markdown_with_embedded_html_is_a_warning() {
    if !ready() {
        return;
    }
    assert_warning(&noted("Weighed <b>after</b> lunch"), "Observation.note[0].text The markdown contains content that appears to be an embedded HTML tag starting at '<b'");
    assert_silent(&noted("Weighed **after** lunch; 1 < 2 and a<-b"), "embedded HTML tag");
    assert_silent(&noted("An escaped \\<b> is text"), "embedded HTML tag");
    // ElementDefinition.comment on a narrative div may show the markup it describes.
    let sd = profile(differential(json!([{"id": "Patient", "path": "Patient"},
        {"id": "Patient.text.div", "path": "Patient.text.div", "comment": "Use <p> and <b>"}])));
    assert_silent(&sd, "embedded HTML tag");
    let sd = profile(differential(json!([{"id": "Patient", "path": "Patient"},
        {"id": "Patient.name", "path": "Patient.name", "comment": "Use <b>family</b>"}])));
    assert_warning(&sd, "embedded HTML tag");
}
