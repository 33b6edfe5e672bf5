//! One test per class of base-structure error.

use serde_json::{json, Value};
use tsunagu_format::{check_structure, Issue, IssueType, Severity};

fn errors(v: Value) -> Vec<Issue> {
    check_structure(&v).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

fn only(v: Value) -> Issue {
    let mut e = errors(v);
    assert_eq!(e.len(), 1, "{e:#?}");
    let issue = e.remove(0);
    assert!(!issue.message_en.is_empty() && !issue.message_ja.is_empty());
    issue
}

#[test]
fn valid_resource_passes() {
    let p = json!({
        "resourceType": "Patient", "id": "p1",
        "name": [{"family": "Yamada", "given": ["Taro", null], "_given": [null, {"extension": [{"url": "http://x", "valueString": "y"}]}]}],
        "gender": "male", "birthDate": "1970-01-01", "deceasedBoolean": false,
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "contained": [{"resourceType": "Organization", "id": "o", "name": "Org"}],
        "managingOrganization": {"reference": "#o"}
    });
    assert_eq!(errors(p), vec![]);
}

#[test]
fn missing_required_element() {
    let i = only(json!({"resourceType": "Observation", "status": "final"}));
    assert_eq!((i.code, i.location.as_str()), (IssueType::Required, "Observation.code"));
}

#[test]
fn wrong_primitive_formats() {
    for (field, value) in [
        ("birthDate", json!("1970-13-01")),
        ("birthDate", json!(1970)),
        ("active", json!("true")),
        ("multipleBirthInteger", json!(1.5)),
        ("multipleBirthInteger", json!(3000000000u64)),
        ("id", json!("has space")),
    ] {
        let i = only(json!({"resourceType": "Patient", field: value}));
        assert!(matches!(i.code, IssueType::Value | IssueType::Structure), "{field}: {i:?}");
        assert_eq!(i.location, format!("Patient.{field}"));
    }
    let i =
        only(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2020-01-01"}));
    assert_eq!(i.location, "Observation.issued");
    let i = only(json!({"resourceType": "Patient", "photo": [{"data": "not base64!"}]}));
    assert_eq!(i.location, "Patient.photo[0].data");
    assert_eq!(errors(json!({"resourceType": "Patient", "photo": [{"data": "QUJD RA==\n"}]})), vec![]);
    assert_eq!(
        only(json!({"resourceType": "Patient", "photo": [{"data": "QU JDRA=="}]})).location,
        "Patient.photo[0].data"
    );
    assert_eq!(
        only(json!({"resourceType": "Patient", "photo": [{"url": "http://a b"}]})).location,
        "Patient.photo[0].url"
    );
}

#[test]
fn unknown_element() {
    let i = only(json!({"resourceType": "Patient", "nickname": "x"}));
    assert_eq!((i.code, i.location.as_str()), (IssueType::Structure, "Patient.nickname"));
    let i = only(json!({"resourceType": "Nobody"}));
    assert!(i.message_en.contains("Unknown resource type"));
}

#[test]
fn array_versus_single() {
    let i = only(json!({"resourceType": "Patient", "name": {"family": "x"}}));
    assert_eq!((i.code, i.location.as_str()), (IssueType::Structure, "Patient.name"));
    let i = only(json!({"resourceType": "Patient", "gender": ["male"]}));
    assert_eq!(i.location, "Patient.gender");
    let i = only(json!({"resourceType": "Patient", "name": [{"given": "Taro"}]}));
    assert_eq!(i.location, "Patient.name[0].given");
}

#[test]
fn bad_choice_suffix() {
    let i = only(json!({"resourceType": "Patient", "deceasedString": "yes"}));
    assert_eq!(i.location, "Patient.deceasedString");
    assert!(i.message_en.contains("deceased[x]"), "{}", i.message_en);
    let e = errors(json!({"resourceType": "Patient", "deceasedBoolean": true, "deceasedDateTime": "2020"}));
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn wrong_code_in_required_binding() {
    let i = only(json!({"resourceType": "Patient", "gender": "M"}));
    assert_eq!((i.code, i.location.as_str()), (IssueType::CodeInvalid, "Patient.gender"));
}

#[test]
fn empty_content_and_companions() {
    assert_eq!(only(json!({"resourceType": "Patient", "name": []})).location, "Patient.name");
    assert_eq!(only(json!({"resourceType": "Patient", "name": [{}]})).location, "Patient.name[0]");
    assert_eq!(only(json!({"resourceType": "Patient", "name": [{"family": ""}]})).location, "Patient.name[0].family");
    assert_eq!(only(json!({"resourceType": "Patient", "_birthDate": {"foo": 1}})).location, "Patient.birthDate.foo");
    assert_eq!(
        only(json!({"resourceType": "Patient", "name": [{"given": [null]}]})).location,
        "Patient.name[0].given[0]"
    );
    assert_eq!(only(json!({"resourceType": "Patient", "_name": {}})).location, "Patient.name");
}

#[test]
fn nested_resources_are_checked() {
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "x"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {},
                      "contained": [{"resourceType": "Patient", "id": "p", "bogus": 1}],
                      "subject": {"reference": "#p"}}}
    ]});
    let locs: Vec<String> = errors(b).into_iter().map(|i| i.location).collect();
    assert_eq!(
        locs,
        [
            "Bundle.entry[0].resource.gender",
            "Bundle.entry[1].resource.code",
            "Bundle.entry[1].resource.contained[0].bogus"
        ]
    );
}

#[test]
fn cardinality_maximum() {
    let i = only(json!({"resourceType": "Bundle", "type": "x-bad"}));
    assert_eq!(i.code, IssueType::CodeInvalid);
    let e = errors(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1}, "valueString": "x"}),
    );
    assert_eq!(e.len(), 1);
}

#[test]
fn characters_xml_cannot_carry() {
    // Found by the json_structure fuzz target: an extension url with U+FFFF passed the check
    // and could not be written as XML.
    let p = json!({"resourceType": "Patient", "_birthDate": {"extension": [{"url": "http://x\u{FFFF}", "valueDecimal": 2.5}]},
        "birthDate": "1970-01-01"});
    let issue = only(p);
    assert!(issue.message_en.contains("U+FFFF"), "{issue:?}");
    let n = only(json!({"resourceType": "Patient", "name": [{"family": "a\u{1}b"}]}));
    assert!(n.message_en.contains("U+0001"), "{n:?}");
    assert_eq!(errors(json!({"resourceType": "Patient", "name": [{"family": "山田\u{10FFFD}"}]})), vec![]);
}

#[test]
fn contained_resources_follow_the_domain_resource_rules() {
    let with = |contained: Value, extra: Value| {
        let mut p = json!({"resourceType": "Patient", "contained": contained});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        check_structure(&p)
    };
    let org = |v: Value| {
        let mut o = json!({"resourceType": "Organization", "id": "o1", "name": "x"});
        for (k, x) in v.as_object().unwrap() {
            o[k] = x.clone();
        }
        o
    };
    let referenced = json!({"managingOrganization": {"reference": "#o1"}});
    assert!(with(json!([org(json!({}))]), referenced.clone()).is_empty());
    // Referring back to the container is enough too.
    let back = org(json!({"partOf": {"reference": "#"}}));
    assert!(with(json!([back]), json!({})).is_empty());
    let rules = |issues: Vec<tsunagu_format::Issue>| -> Vec<String> {
        issues.iter().map(|i| format!("{} {}", i.location, &i.message_en[i.message_en.len() - 6..])).collect()
    };
    assert_eq!(rules(with(json!([org(json!({}))]), json!({}))), ["Patient.contained[0] dom-3)"]);
    let nested = org(json!({"contained": [{"resourceType": "Basic", "id": "b", "code": {"text": "x"}}],
        "partOf": {"reference": "#b"}}));
    assert_eq!(rules(with(json!([nested]), referenced.clone())), ["Patient.contained[0].contained dom-2)"]);
    let meta = org(json!({"meta": {"versionId": "1", "lastUpdated": "2020-01-01T00:00:00Z",
        "security": [{"code": "R"}]}}));
    assert_eq!(
        rules(with(json!([meta]), referenced)),
        [
            "Patient.contained[0].meta.versionId dom-4)",
            "Patient.contained[0].meta.lastUpdated dom-4)",
            "Patient.contained[0].meta.security dom-5)"
        ]
    );
}
