//! JSON ⇄ XML behaviour on small hand-made resources.

use serde_json::{json, Value};
use tsunagu_format::{json_to_xml, xml_to_json, FormatError};

fn round_trip(v: Value) -> String {
    let xml = json_to_xml(&v, false).unwrap();
    assert_eq!(xml_to_json(&xml).unwrap(), v, "{xml}");
    let pretty = json_to_xml(&v, true).unwrap();
    assert_eq!(xml_to_json(&pretty).unwrap(), v, "{pretty}");
    xml
}

#[test]
fn primitive_extensions_round_trip() {
    let xml = round_trip(json!({
        "resourceType": "Patient",
        "id": "p",
        "birthDate": "1970-03-30",
        "_birthDate": {"id": "bd", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-03-30T12:00:00+09:00"}]},
        "name": [{"given": ["Taro", null, "Jiro"], "_given": [null, {"extension": [{"url": "http://x", "valueCode": "a"}]}, {"id": "g3"}]}],
        "_active": {"extension": [{"url": "http://y", "valueBoolean": true}]}
    }));
    assert!(xml.contains(r#"<birthDate id="bd" value="1970-03-30"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">"#), "{xml}");
    assert!(xml.contains(r#"<given value="Taro"/><given><extension url="http://x"><valueCode value="a"/></extension></given><given id="g3" value="Jiro"/>"#), "{xml}");
}

#[test]
fn numbers_and_booleans_keep_their_form() {
    let v: Value = serde_json::from_str(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},
            "valueQuantity":{"value":1.50,"unit":"mg"},"component":[{"code":{"text":"y"},"valueInteger":0},
            {"code":{"text":"z"},"valueBoolean":false},{"code":{"text":"e"},"valueQuantity":{"value":1.0e-3}}]}"#,
    )
    .unwrap();
    let xml = round_trip(v);
    assert!(xml.contains(r#"<value value="1.50"/>"#));
    assert!(xml.contains(r#"<valueBoolean value="false"/>"#));
    let back = xml_to_json(&xml).unwrap();
    assert_eq!(back["valueQuantity"]["value"].to_string(), "1.50");
    assert!(back["component"][0]["valueInteger"].is_number());
}

#[test]
fn element_order_follows_definitions() {
    let xml = json_to_xml(&json!({"resourceType": "Patient", "gender": "male", "name": [{"family": "F"}], "id": "x", "extension": [{"url": "u", "valueString": "s"}]}), false).unwrap();
    let pos = |s: &str| xml.find(s).unwrap();
    assert!(pos("<id ") < pos("<extension ") && pos("<extension ") < pos("<name>") && pos("<name>") < pos("<gender "));
    assert!(xml.contains(r#"<Patient xmlns="http://hl7.org/fhir">"#));
}

#[test]
fn xhtml_div_round_trip() {
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  <p>a &amp; b &lt;c&gt; <b>bold</b></p><br/>\n</div>";
    let xml = round_trip(json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}}));
    assert!(xml.contains(div));
    let bad = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p></div>"}});
    assert!(matches!(json_to_xml(&bad, false), Err(FormatError::Invalid { .. })));
}

#[test]
fn contained_and_bundle_resources_are_wrapped() {
    let xml = round_trip(json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1",
        "resource": {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}], "managingOrganization": {"reference": "#o"}}}]}));
    assert!(
        xml.contains("<resource><Patient><contained><Organization><id value=\"o\"/></Organization></contained>"),
        "{xml}"
    );
}

#[test]
fn attributes_escape_and_normalise() {
    let xml = round_trip(json!({"resourceType": "Patient", "name": [{"text": "a\"b<c>&\n\td", "id": "n1"}]}));
    assert!(xml.contains(r#"<name id="n1"><text value="a&quot;b&lt;c&gt;&amp;&#xA;&#x9;d"/>"#), "{xml}");
    // Literal line breaks in attributes are normalised to spaces, as XML requires.
    let v =
        xml_to_json("<Patient xmlns=\"http://hl7.org/fhir\"><name><text value=\"a\nb\"/></name></Patient>").unwrap();
    assert_eq!(v["name"][0]["text"], "a b");
}

#[test]
fn xml_comments_are_ignored() {
    let v = xml_to_json("<?xml version=\"1.0\"?><!-- c --><Patient xmlns=\"http://hl7.org/fhir\"><!-- c --><id value=\"x\"/><active value=\"true\"><!-- c --></active></Patient><!-- c -->").unwrap();
    assert_eq!(v, json!({"resourceType": "Patient", "id": "x", "active": true}));
}

#[test]
fn malformed_xml_is_rejected() {
    for bad in [
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"x\"></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"x\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&bogus;\"/></Patient>",
        "",
        "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
    ] {
        assert!(matches!(xml_to_json(bad), Err(FormatError::MalformedXml { .. })), "{bad}: {:?}", xml_to_json(bad));
    }
    assert!(matches!(
        xml_to_json("<Patient xmlns=\"http://hl7.org/fhir\"><nickname value=\"x\"/></Patient>"),
        Err(FormatError::UnknownElement { .. })
    ));
    assert!(matches!(xml_to_json("<Patient><id value=\"x\"/></Patient>"), Err(FormatError::Invalid { .. })));
    assert!(matches!(xml_to_json("<Nobody xmlns=\"http://hl7.org/fhir\"/>"), Err(FormatError::UnknownResourceType(_))));
    assert!(matches!(
        xml_to_json("<Patient xmlns=\"http://hl7.org/fhir\">text</Patient>"),
        Err(FormatError::Invalid { .. })
    ));
}

#[test]
fn dtds_are_rejected() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Patient>"#;
    assert_eq!(xml_to_json(xxe), Err(FormatError::Dtd));
    let bomb =
        r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Patient xmlns="http://hl7.org/fhir"/>"#;
    assert_eq!(xml_to_json(bomb), Err(FormatError::Dtd));
}

#[test]
fn unrepresentable_json_is_an_error() {
    assert!(matches!(
        json_to_xml(&json!({"resourceType": "Patient", "nickname": "x"}), false),
        Err(FormatError::UnknownElement { .. })
    ));
    assert!(matches!(json_to_xml(&json!({"resourceType": "Nobody"}), false), Err(FormatError::UnknownResourceType(_))));
    assert!(matches!(
        json_to_xml(&json!({"resourceType": "Patient", "gender": {"a": 1}}), false),
        Err(FormatError::Invalid { .. })
    ));
    assert!(matches!(json_to_xml(&json!([1]), false), Err(FormatError::Invalid { .. })));
}

/// What XML 1.0 cannot carry is refused raw and as a reference, in values and in narrative,
/// so everything the reader accepts can be written back (found by fuzzing).
#[test]
fn characters_outside_xml_are_refused() {
    let ns = r#"xmlns="http://hl7.org/fhir""#;
    for doc in [
        format!(r#"<Patient {ns}><id value="a&#27;"/></Patient>"#),
        format!(r#"<Patient {ns}><id value="a&#x1B;"/></Patient>"#),
        format!("<Patient {ns}><id value=\"a\u{1b}\"/></Patient>"),
        format!("<Patient {ns}><id value=\"a\u{FFFF}\"/></Patient>"),
        format!(
            r#"<Patient {ns}><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">a&#1;</div></text></Patient>"#
        ),
    ] {
        let err = xml_to_json(&doc).unwrap_err();
        assert!(matches!(err, FormatError::MalformedXml { .. }), "{doc}: {err}");
        assert!(err.to_string().contains("not allowed in XML"), "{err}");
    }
    let ok = format!(r#"<Patient {ns}><id value="a&#9;b"/><gender value="&#x672C;"/></Patient>"#);
    assert!(xml_to_json(&ok).is_ok());
}

#[test]
fn elements_are_read_by_namespace_not_by_prefix() {
    let want = json!({"resourceType": "Patient", "id": "p", "active": true});
    // FHIR's namespace under any prefix, or as the default, is FHIR content.
    for same in [
        r#"<f:Patient xmlns:f="http://hl7.org/fhir"><f:id value="p"/><f:active value="true"/></f:Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir" xmlns:f="http://hl7.org/fhir"><f:id value="p"/><active value="true"/></Patient>"#,
        r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns="urn:other"><f:id value="p"/><f:active value="true"/></f:Patient>"#,
    ] {
        assert_eq!(xml_to_json(same).unwrap(), want, "{same}");
    }
    // An element of another namespace is not, whatever its local name; nor an element in
    // no namespace, nor one with an undeclared prefix.
    for foreign in [
        r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><x:active xmlns:x="urn:evil" value="true"/></Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><active xmlns="urn:evil" value="true"/></Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><active xmlns="" value="true"/></Patient>"#,
        r#"<x:Patient xmlns:x="urn:evil"><x:id value="p"/></x:Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><name><given value="a"><x:extension xmlns:x="urn:evil" url="http://e"><x:valueString value="v"/></x:extension></given></name></Patient>"#,
    ] {
        assert!(
            matches!(xml_to_json(foreign), Err(FormatError::Invalid { .. })),
            "{foreign}: {:?}",
            xml_to_json(foreign)
        );
    }
    // Attributes: namespace declarations, xsi: and xml: ones carry nothing and are passed
    // over; one of another namespace is refused, not silently dropped.
    let schema = r#"<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir x.xsd"><id value="p" xml:lang="ja"/><active value="true"/></Patient>"#;
    assert_eq!(xml_to_json(schema).unwrap(), want);
    let foreign_attr = r#"<Patient xmlns="http://hl7.org/fhir" xmlns:e="urn:evil"><id value="p"/><active e:value="false" value="true"/></Patient>"#;
    assert!(
        matches!(xml_to_json(foreign_attr), Err(FormatError::UnknownElement { .. })),
        "{:?}",
        xml_to_json(foreign_attr)
    );
    let undeclared_attr =
        r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><active q:value="false" value="true"/></Patient>"#;
    assert!(matches!(xml_to_json(undeclared_attr), Err(FormatError::MalformedXml { .. })));
    let undeclared = r#"<Patient xmlns="http://hl7.org/fhir"><q:active value="true"/></Patient>"#;
    assert!(matches!(xml_to_json(undeclared), Err(FormatError::MalformedXml { .. })), "{:?}", xml_to_json(undeclared));
    // The narrative is XHTML's, not FHIR's.
    let div_in_fhir =
        r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div><p>x</p></div></text></Patient>"#;
    assert!(matches!(xml_to_json(div_in_fhir), Err(FormatError::Invalid { .. })), "{:?}", xml_to_json(div_in_fhir));
}
