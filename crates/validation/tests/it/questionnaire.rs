//! QuestionnaireResponse against its Questionnaire (questionnaireresponse.html,
//! questionnaire.html): for each rule a response that keeps it and one that breaks it,
//! on small Questionnaires written here (an infectious-disease notification form in the
//! manner of the R4 examples, and one item per enableWhen operator). Needs no shared
//! data, except the last test, which checks the R4 example responses against the R4
//! example Questionnaires.

use crate::support;

use std::sync::OnceLock;

use serde_json::{json, Value};
use tsunagu_validation::{ConformanceKind, Issue, PackageSet, Severity, Validator};

const FORM: &str = "http://example.org/tsunagu/Questionnaire/notification";
const OPS: &str = "http://example.org/tsunagu/Questionnaire/operators";
const DISEASES: &str = "http://example.org/tsunagu/ValueSet/diseases";
const DISEASE_CODES: &str = "http://example.org/tsunagu/CodeSystem/diseases";
const GENDER: &str = "http://hl7.org/fhir/administrative-gender";

/// A notification form: reporter and patient groups, a required disease from a value set,
/// symptoms (open-choice, repeating), a fever question with a nested temperature, a
/// hospital group enabled by an answer, repeating contacts, and one item of each other
/// answer type.
fn form() -> Value {
    json!({
        "resourceType": "Questionnaire", "url": FORM, "version": "1.0", "status": "active",
        "item": [
            {"linkId": "reporter", "type": "group", "text": "Reporter", "required": true, "item": [
                {"linkId": "reporter.name", "type": "string", "text": "Name", "required": true, "maxLength": 20},
                {"linkId": "reporter.facility", "type": "string", "text": "Facility"}
            ]},
            {"linkId": "patient", "type": "group", "text": "Patient", "item": [
                {"linkId": "patient.age", "type": "integer", "text": "Age", "required": true},
                {"linkId": "patient.sex", "type": "choice", "text": "Sex", "answerOption": [
                    {"valueCoding": {"system": GENDER, "code": "male"}},
                    {"valueCoding": {"system": GENDER, "code": "female"}},
                    {"valueCoding": {"system": GENDER, "code": "other"}}
                ]},
                {"linkId": "patient.pregnant", "type": "boolean", "text": "Pregnant", "required": true,
                 "enableWhen": [{"question": "patient.sex", "operator": "=",
                                 "answerCoding": {"system": GENDER, "code": "female"}}]}
            ]},
            {"linkId": "disease", "type": "choice", "text": "Disease", "required": true, "answerValueSet": DISEASES},
            {"linkId": "onset", "type": "date", "text": "Onset"},
            {"linkId": "symptoms", "type": "open-choice", "repeats": true, "answerOption": [
                {"valueCoding": {"system": "http://snomed.info/sct", "code": "386661006", "display": "Fever"}},
                {"valueCoding": {"system": "http://snomed.info/sct", "code": "49727002", "display": "Cough"}}
            ]},
            {"linkId": "fever", "type": "boolean", "item": [
                {"linkId": "fever.temp", "type": "decimal", "required": true,
                 "enableWhen": [{"question": "fever", "operator": "=", "answerBoolean": true}]}
            ]},
            {"linkId": "hospitalized", "type": "boolean"},
            {"linkId": "hospital", "type": "group",
             "enableWhen": [{"question": "hospitalized", "operator": "=", "answerBoolean": true}], "item": [
                {"linkId": "hospital.name", "type": "string", "required": true},
                {"linkId": "hospital.admitted", "type": "dateTime"}
            ]},
            {"linkId": "contacts", "type": "group", "repeats": true, "item": [
                {"linkId": "contacts.name", "type": "string", "required": true},
                {"linkId": "contacts.exposure", "type": "choice", "answerOption": [
                    {"valueString": "household"}, {"valueString": "work"}, {"valueInteger": 0}
                ]}
            ]},
            {"linkId": "notes", "type": "text", "readOnly": true},
            {"linkId": "info", "type": "display", "text": "Send within 24 hours"},
            {"linkId": "website", "type": "url"},
            {"linkId": "time", "type": "time"},
            {"linkId": "photo", "type": "attachment"},
            {"linkId": "doctor", "type": "reference"},
            {"linkId": "weight", "type": "quantity"},
            {"linkId": "code", "type": "choice", "answerValueSet": "http://example.org/tsunagu/ValueSet/not-loaded"}
        ]
    })
}

/// One item per operator, all depending on `score` (and `when` for dates).
fn operators() -> Value {
    let on = |link: &str, ew: Value, extra: Value| {
        let mut item = json!({"linkId": link, "type": "string", "enableWhen": ew});
        for (k, v) in extra.as_object().unwrap() {
            item[k] = v.clone();
        }
        item
    };
    let ew = |op: &str, n: i64| json!({"question": "score", "operator": op, "answerInteger": n});
    json!({
        "resourceType": "Questionnaire", "url": OPS, "status": "active",
        "item": [
            {"linkId": "score", "type": "integer", "repeats": true},
            {"linkId": "when", "type": "date"},
            on("eq", json!([ew("=", 5)]), json!({})),
            on("ne", json!([ew("!=", 5)]), json!({})),
            on("gt", json!([ew(">", 5)]), json!({})),
            on("lt", json!([ew("<", 5)]), json!({})),
            on("ge", json!([ew(">=", 5)]), json!({})),
            on("le", json!([ew("<=", 5)]), json!({})),
            on("exists", json!([{"question": "score", "operator": "exists", "answerBoolean": true}]), json!({})),
            on("absent", json!([{"question": "score", "operator": "exists", "answerBoolean": false}]), json!({})),
            on("all", json!([ew(">", 1), ew("<", 9)]), json!({"enableBehavior": "all"})),
            on("any", json!([ew("<", 1), ew(">", 9)]), json!({"enableBehavior": "any"})),
            on("later", json!([{"question": "when", "operator": ">", "answerDate": "2020-01-01"}]), json!({})),
            on("needed", json!([ew("=", 7)]), json!({"required": true}))
        ]
    })
}

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut set = PackageSet::new();
        set.insert(ConformanceKind::Questionnaire, form());
        set.insert(ConformanceKind::Questionnaire, operators());
        set.insert(
            ConformanceKind::CodeSystem,
            json!({"resourceType": "CodeSystem", "url": DISEASE_CODES, "status": "active", "content": "complete",
                "concept": [{"code": "measles"}, {"code": "rubella"}, {"code": "covid-19"}]}),
        );
        set.insert(
            ConformanceKind::ValueSet,
            json!({"resourceType": "ValueSet", "url": DISEASES, "status": "active",
                "compose": {"include": [{"system": DISEASE_CODES}]}}),
        );
        Validator::new(set)
    })
}

/// A complete, valid response to the notification form.
fn response() -> Value {
    json!({
        "resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": FORM,
        "item": [
            {"linkId": "reporter", "text": "Reporter", "item": [
                {"linkId": "reporter.name", "text": "Name", "answer": [{"valueString": "Dr. Sato"}]}
            ]},
            {"linkId": "patient", "item": [
                {"linkId": "patient.age", "answer": [{"valueInteger": 34}]},
                {"linkId": "patient.sex", "answer": [{"valueCoding": {"system": GENDER, "code": "male"}}]}
            ]},
            {"linkId": "disease", "answer": [{"valueCoding": {"system": DISEASE_CODES, "code": "measles"}}]},
            {"linkId": "onset", "answer": [{"valueDate": "2024-04-01"}]},
            {"linkId": "symptoms", "answer": [
                {"valueCoding": {"system": "http://snomed.info/sct", "code": "386661006"}},
                {"valueString": "rash"}
            ]},
            {"linkId": "fever", "answer": [{"valueBoolean": true, "item": [
                {"linkId": "fever.temp", "answer": [{"valueDecimal": 38.5}]}
            ]}]},
            {"linkId": "hospitalized", "answer": [{"valueBoolean": false}]},
            {"linkId": "contacts", "item": [
                {"linkId": "contacts.name", "answer": [{"valueString": "Tanaka"}]},
                {"linkId": "contacts.exposure", "answer": [{"valueString": "household"}]}
            ]},
            {"linkId": "contacts", "item": [
                {"linkId": "contacts.name", "answer": [{"valueString": "Suzuki"}]},
                {"linkId": "contacts.exposure", "answer": [{"valueInteger": 0}]}
            ]},
            {"linkId": "notes", "answer": [{"valueString": "Reported by phone.\nFollow-up planned."}]},
            {"linkId": "website", "answer": [{"valueUri": "https://example.org/case/1"}]},
            {"linkId": "time", "answer": [{"valueTime": "09:30:00"}]},
            {"linkId": "photo", "answer": [{"valueAttachment": {"contentType": "image/png", "url": "https://example.org/p.png"}}]},
            {"linkId": "doctor", "answer": [{"valueReference": {"reference": "Practitioner/1"}}]},
            {"linkId": "weight", "answer": [{"valueQuantity": {"value": 60, "unit": "kg"}}]}
        ]
    })
}

fn issues(r: &Value) -> Vec<Issue> {
    validator().validate(r, &[])
}

fn errors(r: &Value) -> Vec<Issue> {
    issues(r).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

#[track_caller]
fn assert_valid(r: &Value) {
    let found = issues(r);
    assert!(found.is_empty(), "expected no issues, got {found:#?}");
}

/// Exactly one issue, of this severity, at this location, saying this.
#[track_caller]
fn assert_only(r: &Value, severity: Severity, location: &str, says: &str) {
    let found = issues(r);
    assert!(
        found.len() == 1
            && found[0].severity == severity
            && found[0].location == location
            && found[0].message_en.contains(says)
            && !found[0].message_ja.is_empty(),
        "expected one {severity:?} at {location} saying '{says}', got {found:#?}"
    );
}

/// The response with one item (by JSON pointer) replaced or removed.
fn with(pointer: &str, value: Option<Value>) -> Value {
    let mut r = response();
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let holder = r.pointer_mut(parent).unwrap();
    match (holder, value) {
        (Value::Array(a), None) => {
            a.remove(last.parse().unwrap());
        }
        (Value::Array(a), Some(v)) => a[last.parse::<usize>().unwrap()] = v,
        (Value::Object(o), None) => {
            o.remove(last);
        }
        (Value::Object(o), Some(v)) => {
            o.insert(last.to_owned(), v);
        }
        _ => panic!("{pointer}"),
    }
    r
}

#[test]
fn a_complete_response_conforms() {
    assert_valid(&response());
}

// --- Finding the Questionnaire ---

#[test]
fn questionnaire_found_by_canonical_with_version() {
    assert_valid(&with("/questionnaire", Some(json!(format!("{FORM}|1.0")))));
    assert_only(
        &with("/questionnaire", Some(json!(format!("{FORM}|2.0")))),
        Severity::Warning,
        "QuestionnaireResponse.questionnaire",
        "could not be found",
    );
}

#[test]
fn an_unknown_questionnaire_is_a_warning_and_nothing_else_is_checked() {
    let mut r = with("/questionnaire", Some(json!("http://example.org/Questionnaire/unknown")));
    r["item"][0]["linkId"] = json!("nowhere");
    assert_only(&r, Severity::Warning, "QuestionnaireResponse.questionnaire", "could not be found");
}

#[test]
fn a_response_without_questionnaire_is_not_checked_against_one() {
    let mut r = with("/questionnaire", None);
    r["item"][0]["linkId"] = json!("nowhere");
    assert_valid(&r);
}

#[test]
fn contained_questionnaire() {
    let mut q = form();
    q.as_object_mut().unwrap().remove("url");
    q["id"] = json!("q");
    let mut r = with("/questionnaire", Some(json!("#q")));
    r["contained"] = json!([q]);
    assert_valid(&r);
    r["item"][3]["answer"][0] = json!({"valueString": "2024-04-01"});
    assert_only(
        &r,
        Severity::Error,
        "QuestionnaireResponse.item[3].answer[0].valueString",
        "its answers are valueDate",
    );
    let r = with("/questionnaire", Some(json!("#missing")));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.questionnaire", "not contained");
}

#[test]
fn questionnaire_in_the_same_bundle() {
    let mut q = form();
    q["url"] = json!("http://example.org/tsunagu/Questionnaire/in-bundle");
    let mut r = with("/questionnaire", Some(json!("http://example.org/tsunagu/Questionnaire/in-bundle")));
    let bundle = |r: &Value| {
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:0c3a4a1e-4e55-4a5b-9d0b-3a4c5d6e7f80", "resource": q},
            {"fullUrl": "urn:uuid:0c3a4a1e-4e55-4a5b-9d0b-3a4c5d6e7f81", "resource": r}
        ]})
    };
    assert_valid(&bundle(&r));
    r["item"][0]["item"][0]["linkId"] = json!("reporter.nickname");
    let b = bundle(&r);
    let found = errors(&b);
    assert!(
        found.iter().any(|i| i.location == "Bundle.entry[1].resource.item[0].item[0]"
            && i.message_en.contains("no item with linkId 'reporter.nickname'")),
        "{found:#?}"
    );
}

// --- Items and their place ---

#[test]
fn every_link_id_is_in_the_questionnaire() {
    let r = with("/item/3", Some(json!({"linkId": "outbreak", "answer": [{"valueBoolean": true}]})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[3]", "no item with linkId 'outbreak'");
}

#[test]
fn nested_items_stay_where_the_questionnaire_nests_them() {
    // reporter.facility belongs inside the reporter group, not at the top level.
    let r = with("/item/3", Some(json!({"linkId": "reporter.facility", "answer": [{"valueString": "Clinic"}]})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[3]", "wrong place");
    // In its group it is fine.
    let mut r = response();
    r["item"][0]["item"]
        .as_array_mut()
        .unwrap()
        .push(json!({"linkId": "reporter.facility", "answer": [{"valueString": "Clinic"}]}));
    assert_valid(&r);
}

#[test]
fn items_follow_the_questionnaire_order() {
    let mut r = response();
    r["item"].as_array_mut().unwrap().swap(3, 4);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[4]", "out of order");
}

#[test]
fn item_text_should_match() {
    let mut r = response();
    r["item"][0]["item"][0]["text"] = json!("Your name");
    assert_only(&r, Severity::Warning, "QuestionnaireResponse.item[0].item[0].text", "differs");
}

#[test]
fn group_items_have_nested_items_and_no_answers() {
    let mut r = response();
    r["item"][0]["answer"] = json!([{"valueString": "Dr. Sato"}]);
    let found = errors(&r);
    assert!(found
        .iter()
        .any(|i| i.location == "QuestionnaireResponse.item[0].answer" && i.message_en.contains("group item")));
}

#[test]
fn display_items_carry_no_answers() {
    let mut r = response();
    r["item"].as_array_mut().unwrap().insert(10, json!({"linkId": "info", "text": "Send within 24 hours"}));
    assert_valid(&r);
    r["item"][10]["answer"] = json!([{"valueString": "ok"}]);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[10].answer", "display item");
}

#[test]
fn questions_nest_items_under_their_answers() {
    let mut r = response();
    let temp = r["item"][5]["answer"][0]["item"].take();
    r["item"][5]["answer"][0].as_object_mut().unwrap().remove("item");
    r["item"][5]["item"] = temp;
    let found = errors(&r);
    assert!(
        found
            .iter()
            .any(|i| i.location == "QuestionnaireResponse.item[5].item" && i.message_en.contains("under its answers")),
        "{found:#?}"
    );
}

// --- Answer types ---

#[test]
fn answers_fit_the_item_type() {
    let cases = [
        ("/item/0/item/0", "reporter.name", json!({"valueInteger": 1}), "valueString"),
        ("/item/1/item/0", "patient.age", json!({"valueDecimal": 34.5}), "valueInteger"),
        ("/item/3", "onset", json!({"valueDateTime": "2024-04-01T10:00:00Z"}), "valueDate"),
        ("/item/9", "notes", json!({"valueBoolean": true}), "valueString"),
        ("/item/10", "website", json!({"valueString": "https://example.org"}), "valueUri"),
        ("/item/11", "time", json!({"valueString": "09:30"}), "valueTime"),
        ("/item/12", "photo", json!({"valueUri": "https://example.org/p.png"}), "valueAttachment"),
        ("/item/13", "doctor", json!({"valueString": "Dr. Who"}), "valueReference"),
        ("/item/14", "weight", json!({"valueDecimal": 60}), "valueQuantity"),
        ("/item/2", "disease", json!({"valueBoolean": true}), "valueCoding"),
        ("/item/5", "fever", json!({"valueString": "yes"}), "valueBoolean"),
    ];
    for (pointer, link, answer, expected) in cases {
        let r = with(pointer, Some(json!({"linkId": link, "answer": [answer.clone()]})));
        let key = answer.as_object().unwrap().keys().next().unwrap().clone();
        let location = format!("QuestionnaireResponse{}.answer[0].{key}", fhirpath_of(pointer));
        assert_only(&r, Severity::Error, &location, expected);
    }
}

/// `/item/1/item/0` as `.item[1].item[0]`.
fn fhirpath_of(pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    parts.chunks(2).map(|c| format!(".{}[{}]", c[0], c[1])).collect()
}

#[test]
fn repeats_false_allows_one_answer_and_one_item() {
    let mut r = response();
    r["item"][3]["answer"].as_array_mut().unwrap().push(json!({"valueDate": "2024-04-02"}));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[3].answer[1]", "does not repeat");
    let mut r = response();
    let onset = r["item"][3].clone();
    r["item"].as_array_mut().unwrap().insert(4, onset);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[4]", "appears 2 times");
    // symptoms and contacts repeat: the valid response has two of each already.
}

#[test]
fn max_length_limits_string_answers() {
    let r = with("/item/0/item/0/answer/0", Some(json!({"valueString": "Dr. Sato Taro of the Clinic"})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[0].item[0].answer[0].valueString", "maxLength");
    let r = with("/item/0/item/0/answer/0", Some(json!({"valueString": "佐藤太郎医師（保健所）"})));
    assert_valid(&r);
}

#[test]
fn choice_answers_are_answer_options() {
    let r = with("/item/1/item/1/answer/0", Some(json!({"valueCoding": {"system": GENDER, "code": "unknown"}})));
    assert_only(
        &r,
        Severity::Error,
        "QuestionnaireResponse.item[1].item[1].answer[0].valueCoding",
        "not one of the answerOptions",
    );
    // Options that are strings or integers.
    let r = with("/item/7/item/1/answer/0", Some(json!({"valueString": "school"})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[7].item[1].answer[0].valueString", "not one of");
    let r = with("/item/8/item/1/answer/0", Some(json!({"valueInteger": 1})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[8].item[1].answer[0].valueInteger", "not one of");
}

#[test]
fn open_choice_takes_free_text_but_codings_from_the_options() {
    // The valid response answers "rash" as free text.
    let r = with(
        "/item/4/answer/0",
        Some(json!({"valueCoding": {"system": "http://snomed.info/sct", "code": "271807003"}})),
    );
    assert_only(
        &r,
        Severity::Error,
        "QuestionnaireResponse.item[4].answer[0].valueCoding",
        "not one of the answerOptions",
    );
}

#[test]
fn choice_answers_are_in_the_answer_value_set() {
    let r = with("/item/2/answer/0", Some(json!({"valueCoding": {"system": DISEASE_CODES, "code": "cholera"}})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[2].answer[0].valueCoding", "not in the value set");
    let r = with("/item/2/answer/0", Some(json!({"valueCoding": {"system": DISEASE_CODES, "code": "rubella"}})));
    assert_valid(&r);
}

#[test]
fn an_answer_value_set_that_is_not_loaded_is_a_warning() {
    let mut r = response();
    r["item"]
        .as_array_mut()
        .unwrap()
        .push(json!({"linkId": "code", "answer": [{"valueCoding": {"system": "http://x", "code": "y"}}]}));
    assert_only(&r, Severity::Warning, "QuestionnaireResponse.item[15].answer[0].valueCoding", "not available");
}

#[test]
fn contained_answer_value_set() {
    let mut q = form();
    q.as_object_mut().unwrap().remove("url");
    q["id"] = json!("q");
    // Contained resources sit side by side in their container (dom-2: none contains
    // another); one refers to another as `#id`.
    let vs = json!({"resourceType": "ValueSet", "id": "vs", "status": "active",
        "compose": {"include": [{"system": DISEASE_CODES, "concept": [{"code": "measles"}]}]}});
    q["item"][2]["answerValueSet"] = json!("#vs");
    let mut r = with("/questionnaire", Some(json!("#q")));
    r["contained"] = json!([q, vs]);
    assert_valid(&r);
    r["item"][2]["answer"][0]["valueCoding"]["code"] = json!("rubella");
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[2].answer[0].valueCoding", "not in the value set #vs");
}

// --- Required items ---

#[test]
fn required_items_are_present_in_a_completed_response() {
    let r = with("/item/2", None);
    assert_only(&r, Severity::Error, "QuestionnaireResponse", "required item 'disease' is missing");
    // A required group.
    let r = with("/item/0", None);
    assert_only(&r, Severity::Error, "QuestionnaireResponse", "required item 'reporter' is missing");
    // A required item inside a group that is present.
    let r = with("/item/1/item/0", None);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[1]", "required item 'patient.age' is missing");
    // Inside an optional group that is absent, nothing is required.
    let r = with("/item/1", None);
    assert_valid(&r);
    // Present but unanswered counts as absent.
    let r = with("/item/2", Some(json!({"linkId": "disease", "text": "Disease"})));
    assert_only(&r, Severity::Error, "QuestionnaireResponse", "required item 'disease' is missing");
}

#[test]
fn required_items_inside_repeated_groups_apply_to_each_repetition() {
    let r = with("/item/8/item/0", None);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[8]", "required item 'contacts.name' is missing");
}

#[test]
fn amended_responses_are_complete_too() {
    let mut r = with("/item/2", None);
    r["status"] = json!("amended");
    assert_only(&r, Severity::Error, "QuestionnaireResponse", "'disease' is missing");
}

#[test]
fn an_in_progress_response_may_miss_required_answers() {
    let mut r = with("/item/2", None);
    r["status"] = json!("in-progress");
    assert_only(&r, Severity::Warning, "QuestionnaireResponse", "'disease' is missing");
    r["status"] = json!("stopped");
    assert!(errors(&r).is_empty());
}

#[test]
fn read_only_items_may_be_answered() {
    // notes is readOnly and answered in the valid response.
    assert_eq!(response()["item"][9]["linkId"], "notes");
    assert_valid(&response());
}

// --- enableWhen ---

#[test]
fn enable_when_on_a_coding_answer() {
    // patient.pregnant is enabled (and required) when sex = female.
    let mut r = response();
    r["item"][1]["item"][1]["answer"][0]["valueCoding"]["code"] = json!("female");
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[1]", "required item 'patient.pregnant' is missing");
    r["item"][1]["item"]
        .as_array_mut()
        .unwrap()
        .push(json!({"linkId": "patient.pregnant", "answer": [{"valueBoolean": false}]}));
    assert_valid(&r);
    // Not enabled for male: answering it is an error.
    r["item"][1]["item"][1]["answer"][0]["valueCoding"]["code"] = json!("male");
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[1].item[2]", "not enabled");
}

#[test]
fn a_disabled_group_is_not_answered_and_its_required_items_do_not_apply() {
    let hospital = json!({"linkId": "hospital", "item": [{"linkId": "hospital.name", "answer": [{"valueString": "City Hospital"}]}]});
    let mut r = response();
    r["item"].as_array_mut().unwrap().insert(7, hospital.clone());
    // hospitalized = false: the group is disabled, and reported once.
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[7]", "'hospital' is not enabled");
    r["item"][6]["answer"][0]["valueBoolean"] = json!(true);
    assert_valid(&r);
    // Enabled, the group's required item applies.
    r["item"][7]["item"][0]["linkId"] = json!("hospital.admitted");
    r["item"][7]["item"][0]["answer"] = json!([{"valueDateTime": "2024-04-02T10:00:00+09:00"}]);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[7]", "'hospital.name' is missing");
}

#[test]
fn enable_when_on_the_parent_question_of_a_nested_item() {
    // fever.temp (nested under the fever answer) is enabled when fever = true.
    let r = with("/item/5/answer/0/valueBoolean", Some(json!(false)));
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[5].answer[0].item[0]", "not enabled");
    let mut r = response();
    r["item"][5]["answer"][0]["item"] = json!([{"linkId": "fever.temp", "text": "Temperature"}]);
    assert_only(&r, Severity::Error, "QuestionnaireResponse.item[5].answer[0]", "'fever.temp' is missing");
}

/// The items of the operators form a response with these `score` answers (and `when`)
/// leaves enabled.
fn enabled_items(scores: &[i64], when: Option<&str>) -> Vec<String> {
    let mut items = vec![
        json!({"linkId": "score", "answer": scores.iter().map(|s| json!({"valueInteger": s})).collect::<Vec<_>>()}),
    ];
    if let Some(w) = when {
        items.push(json!({"linkId": "when", "answer": [{"valueDate": w}]}));
    }
    let links = ["eq", "ne", "gt", "lt", "ge", "le", "exists", "absent", "all", "any", "later", "needed"];
    for l in links {
        items.push(json!({"linkId": l, "answer": [{"valueString": "x"}]}));
    }
    let r =
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": OPS, "item": items});
    let disabled: Vec<String> = errors(&r)
        .iter()
        .filter(|i| i.message_en.contains("not enabled"))
        .map(|i| i.message_en.split('\'').nth(1).unwrap().to_owned())
        .collect();
    links.iter().filter(|l| !disabled.iter().any(|d| d == *l)).map(|l| (*l).to_owned()).collect()
}

#[test]
fn enable_when_operators() {
    assert_eq!(enabled_items(&[5], None), ["eq", "ge", "le", "exists", "all"]);
    assert_eq!(enabled_items(&[7], None), ["ne", "gt", "ge", "exists", "all", "needed"]);
    assert_eq!(enabled_items(&[3], None), ["ne", "lt", "le", "exists", "all"]);
    assert_eq!(enabled_items(&[0], None), ["ne", "lt", "le", "exists", "any"]);
    assert_eq!(enabled_items(&[10], None), ["ne", "gt", "ge", "exists", "any"]);
    // Repeated answers: = and the comparisons hold when one answer does; != when none
    // equals the value.
    assert_eq!(enabled_items(&[5, 7], None), ["eq", "gt", "ge", "le", "exists", "all", "needed"]);
    // No answer at all: only exists = false and != hold.
    assert_eq!(enabled_items(&[], None), ["ne", "absent"]);
    // Dates compare as dates.
    assert!(enabled_items(&[5], Some("2021-03-01")).contains(&"later".to_owned()));
    assert!(!enabled_items(&[5], Some("2019-12-31")).contains(&"later".to_owned()));
}

#[test]
fn a_required_item_is_required_only_when_enabled() {
    let r = |score: i64| {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": OPS,
            "item": [{"linkId": "score", "answer": [{"valueInteger": score}]}]})
    };
    assert_only(&r(7), Severity::Error, "QuestionnaireResponse", "required item 'needed' is missing");
    assert_valid(&r(6));
}

#[test]
fn enable_when_looks_within_the_same_repetition_of_a_group() {
    let q = json!({"resourceType": "Questionnaire", "id": "q", "status": "active", "item": [
        {"linkId": "child", "type": "group", "repeats": true, "item": [
            {"linkId": "vaccinated", "type": "boolean"},
            {"linkId": "vaccine", "type": "string", "required": true,
             "enableWhen": [{"question": "vaccinated", "operator": "=", "answerBoolean": true}]}
        ]}
    ]});
    let child = |vaccinated: bool, vaccine: Option<&str>| {
        let mut items = vec![json!({"linkId": "vaccinated", "answer": [{"valueBoolean": vaccinated}]})];
        if let Some(v) = vaccine {
            items.push(json!({"linkId": "vaccine", "answer": [{"valueString": v}]}));
        }
        json!({"linkId": "child", "item": items})
    };
    let r = |children: Vec<Value>| {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "#q",
            "contained": [q.clone()], "item": children})
    };
    assert_valid(&r(vec![child(true, Some("MR")), child(false, None)]));
    assert_only(
        &r(vec![child(false, None), child(true, None)]),
        Severity::Error,
        "QuestionnaireResponse.item[1]",
        "'vaccine' is missing",
    );
    assert_only(
        &r(vec![child(true, Some("MR")), child(false, Some("BCG"))]),
        Severity::Error,
        "QuestionnaireResponse.item[1].item[1]",
        "not enabled",
    );
}

// --- The R4 examples ---

/// The R4 example responses against the R4 example Questionnaires (loaded as conformance
/// content, with the core package). QuestionnaireResponse-gcs names its Questionnaire relatively
/// ("Questionnaire/gcs"), which no canonical lookup finds: it is pointed at the
/// Questionnaire's url here. The others either name no Questionnaire or one that is not
/// among the examples.
#[test]
fn r4_example_responses_against_their_questionnaires() {
    let Some(examples) = support::tgz_json("fhir/hl7.fhir.r4.examples-4.0.1.tgz", "package/") else { return };
    let Some(core) = tsunagu_reference::find("fhir/hl7.fhir.r4.core-4.0.1.tgz") else { return };
    let mut set = PackageSet::new();
    set.load_tgz(&core).expect("package loads");
    for (_, r) in examples.iter().filter(|(_, r)| r["resourceType"] == "Questionnaire") {
        set.insert(ConformanceKind::Questionnaire, r.clone());
    }
    let v = Validator::new(set);
    let mut checked = 0;
    for (name, r) in examples.iter().filter(|(_, r)| r["resourceType"] == "QuestionnaireResponse") {
        let mut r = r.clone();
        if r["questionnaire"] == "Questionnaire/gcs" {
            r["questionnaire"] = json!("http://hl7.org/fhir/Questionnaire/gcs");
        }
        let found = v.validate(&r, &[]);
        for i in &found {
            println!("{name}: {:?} {} {}", i.severity, i.location, i.message_en);
        }
        if r["questionnaire"] == "http://hl7.org/fhir/Questionnaire/gcs" {
            assert!(found.is_empty(), "{name}: {found:#?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 1);
}
