//! Standard-master loaders on the small files in tests/data (made by make_data.py), in
//! UTF-8 and Shift_JIS, then used through the service.

use serde_json::Value;
use tsunagu_terminology::{
    load_master, ErrorKind, ExpandParams, MasterFormat, MasterLoad, Membership, Terminology, TerminologyError,
    TranslateParams, ValueSetSource, HOT9_URL, ICD10_URL, JLAC10_URL, MEDIS_DISEASE_URL, YJ_URL,
};

fn load(format: MasterFormat, file: &str) -> MasterLoad {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load_master(format, &bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn concept<'a>(cs: &'a Value, code: &str) -> &'a Value {
    cs["concept"].as_array().unwrap().iter().find(|c| c["code"] == code).unwrap_or_else(|| panic!("{code}"))
}

fn property<'a>(c: &'a Value, code: &str) -> Option<&'a str> {
    c["property"].as_array()?.iter().find(|p| p["code"] == code)?["valueString"].as_str()
}

/// A service holding `load`'s CodeSystem and a value set of the whole system.
fn service_with(load: &MasterLoad) -> Terminology {
    let t = Terminology::default();
    let url = load.code_system["url"].as_str().unwrap().to_owned();
    t.add(load.code_system.clone()).unwrap();
    if let Some(map) = &load.concept_map {
        t.add(map.clone()).unwrap();
    }
    t.add(serde_json::json!({"resourceType": "ValueSet", "url": "urn:all", "compose": {"include": [{"system": url}]}}))
        .unwrap();
    t
}

fn filtered(t: &Terminology, filter: &str) -> Vec<String> {
    let vs = t
        .expand(ValueSetSource::Canonical("urn:all"), &ExpandParams { filter: Some(filter), ..Default::default() })
        .unwrap();
    vs["expansion"]["contains"]
        .as_array()
        .map(|a| a.iter().map(|c| c["code"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn medis_disease_master_in_both_encodings() {
    let utf8 = load(MasterFormat::MedisDisease, "medis_nmain_utf8.csv");
    let sjis = load(MasterFormat::MedisDisease, "medis_nmain_sjis.txt");
    assert_eq!(utf8.count, 14);
    assert_eq!(utf8.code_system, sjis.code_system, "header-driven and positional reads agree");
    let cs = &utf8.code_system;
    assert_eq!(cs["url"], MEDIS_DISEASE_URL);
    assert_eq!(cs["content"], "complete");
    let c = concept(cs, "T0A1");
    assert_eq!(c["display"], "急性化膿性虫垂炎");
    assert_eq!(c["designation"][0]["value"], "ｷｭｳｾｲｶﾉｳｾｲﾁｭｳｽｲｴﾝ");
    assert_eq!(property(c, "icd10"), Some("K358"));
    assert_eq!(property(c, "recordNo"), Some("20058257"));

    let t = service_with(&utf8);
    // Katakana, hiragana and half-width all find インフルエンザ; the kana reading too.
    for f in ["インフル", "いんふる", "ｲﾝﾌﾙ"] {
        assert_eq!(filtered(&t, f), ["T0B1"], "{f}");
    }
    assert_eq!(filtered(&t, "ずつう"), ["T0B9"], "片頭痛 by its reading ﾍﾝｽﾞﾂｳ");
    assert_eq!(filtered(&t, "急性 炎"), ["T0A1", "T0B5"], "every word must match");
    // The moved name is retired: still a member, but left out with activeOnly.
    assert_eq!(t.membership("urn:all", Some(MEDIS_DISEASE_URL), "T0C3"), Membership::In);
    let active = t
        .expand(ValueSetSource::Canonical("urn:all"), &ExpandParams { active_only: true, ..Default::default() })
        .unwrap();
    assert_eq!(active["expansion"]["total"], 13);

    let out = t.translate(&TranslateParams { system: MEDIS_DISEASE_URL, code: "T0B3", ..Default::default() }).unwrap();
    let m = out["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "match").unwrap();
    assert_eq!(m["part"][1]["valueCoding"]["system"], ICD10_URL);
    assert_eq!(m["part"][1]["valueCoding"]["code"], "I10");
    let back =
        t.translate(&TranslateParams { system: ICD10_URL, code: "K358", reverse: true, ..Default::default() }).unwrap();
    let m = back["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "match").unwrap();
    assert_eq!(m["part"][1]["valueCoding"]["code"], "T0A1");
}

#[test]
fn jlac10_master_in_both_encodings() {
    let utf8 = load(MasterFormat::Jlac10, "jlac10_utf8.csv");
    let sjis = load(MasterFormat::Jlac10, "jlac10_sjis.csv");
    assert_eq!(utf8.count, 12);
    assert_eq!(sjis.count, 12, "codes assembled from the five element columns");
    assert_eq!(utf8.code_system["url"], JLAC10_URL);
    let c = concept(&sjis.code_system, "3A015000002327101");
    assert_eq!(c["display"], "アルブミン");
    assert_eq!(property(c, "analyte"), Some("3A015"));
    assert_eq!(property(c, "identification"), Some("0000"));
    assert_eq!(property(c, "material"), Some("023"));
    assert_eq!(property(c, "method"), Some("271"));
    assert_eq!(property(c, "resultKind"), Some("01"));
    // Property filters work on the loaded system.
    let t = service_with(&utf8);
    t.add(serde_json::json!({"resourceType": "ValueSet", "url": "urn:serum-3f", "compose": {"include": [{
        "system": JLAC10_URL, "filter": [{"property": "analyte", "op": "regex", "value": "3F.*"}]}]}}))
        .unwrap();
    assert_eq!(t.expand_codes("urn:serum-3f").unwrap().len(), 2);
    assert_eq!(filtered(&t, "ｸﾚｱﾁﾆﾝ"), ["3C015000002327101"]);
}

#[test]
fn hot_master_in_both_encodings() {
    let utf8 = load(MasterFormat::Hot, "hot_utf8.csv");
    let sjis = load(MasterFormat::Hot, "hot_sjis.txt");
    assert_eq!(utf8.code_system, sjis.code_system);
    assert_eq!(utf8.count, 8, "two package rows share one HOT9");
    assert_eq!(utf8.code_system["url"], HOT9_URL);
    let c = concept(&utf8.code_system, "100000101");
    assert_eq!(c["display"], "ロキソプロフェンNa錠60mg「テスト」");
    assert_eq!(property(c, "yjCode"), Some("1149019F1T01"));
    assert_eq!(property(c, "hot13"), Some("1000001010101"));
    let t = service_with(&utf8);
    // The 告示名称 designation is searchable too.
    assert_eq!(filtered(&t, "ロキソプロフェンナトリウム"), ["100000101"]);
}

#[test]
fn yj_codes_in_both_encodings_and_from_the_hot_layout() {
    let utf8 = load(MasterFormat::Yj, "yj_utf8.csv");
    let sjis = load(MasterFormat::Yj, "yj_sjis.csv");
    let from_hot = load(MasterFormat::Yj, "hot_sjis.txt");
    assert_eq!(utf8.code_system, sjis.code_system);
    assert_eq!(utf8.count, 8);
    assert_eq!(from_hot.count, 8);
    assert_eq!(from_hot.warnings.len(), 1, "the repeated package row: {:?}", from_hot.warnings);
    assert_eq!(utf8.code_system["url"], YJ_URL);
    assert_eq!(concept(&utf8.code_system, "2149039F1T02")["display"], "アムロジピン錠5mg「テスト」");
    let t = service_with(&utf8);
    let out = t.validate_code_in_system(YJ_URL, "2149039F1T02", None, Some("ｱﾑﾛｼﾞﾋﾟﾝ錠5mg「ﾃｽﾄ」")).unwrap();
    assert_eq!(out["parameter"][0]["valueBoolean"], true);
}

#[test]
fn malformed_lines_are_errors_with_their_line() {
    let line_of = |format, text: &str| match load_master(format, text.as_bytes()) {
        Err(TerminologyError::Master { line, .. }) => line,
        other => panic!("expected a master error, got {other:?}"),
    };
    let header = "\"病名交換用コード\",\"病名表記\",\"ICD10\"\n";
    assert_eq!(
        line_of(MasterFormat::MedisDisease, &format!("{header}\"AB12\",\"胃炎\",\"K297\"\n\"TOO-LONG\",\"x\",\"\"\n")),
        3
    );
    assert_eq!(line_of(MasterFormat::MedisDisease, &format!("{header}\"AB12\",\"\",\"K297\"\n")), 2);
    assert_eq!(line_of(MasterFormat::MedisDisease, &format!("{header}\"AB12\",\"胃炎\n")), 2);
    assert_eq!(line_of(MasterFormat::Jlac10, "JLAC10,名称\n3A0150000023271,アルブミン\n"), 2);
    assert_eq!(line_of(MasterFormat::Hot, "基準番号,販売名\n12345,錠\n"), 2);
    assert_eq!(line_of(MasterFormat::Yj, "YJコード,販売名\n1149019F1T01,錠\n11490,錠\n"), 3);
    let mut bytes = "YJコード,販売名\n".as_bytes().to_vec();
    bytes.extend_from_slice(b"1149019F1T01,\x82\n");
    let err = load_master(MasterFormat::Yj, &bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Master);
    assert!(matches!(err, TerminologyError::Master { line: 2, .. }), "{err}");
}
