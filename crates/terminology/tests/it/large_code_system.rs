//! A synthetic 200,000-concept code system (master-sized): hierarchy, Japanese text
//! filter and membership stay correct at that size. Correctness only; timings are in
//! benches/terminology.rs.

use serde_json::{json, Value};
use tsunagu_terminology::{ErrorKind, ExpandParams, Membership, Terminology, ValueSetSource};

const SIZE: usize = 200_000;
const URL: &str = "urn:test:large";
/// Names cycle through these; every 7th concept is written in half-width katakana.
const NAMES: [&str; 5] = ["インフルエンザ", "高血圧症", "糖尿病", "気管支喘息", "胃潰瘍"];

/// 1,000 groupers `G000`..`G999`, each the parent (by nesting) of 199 leaves `C…`.
fn large_code_system() -> Value {
    let per_group = SIZE / 1000 - 1;
    let mut n = 0;
    let groups: Vec<Value> = (0..1000)
        .map(|g| {
            let leaves: Vec<Value> = (0..per_group)
                .map(|_| {
                    n += 1;
                    let name = NAMES[n % NAMES.len()];
                    let display = if n % 7 == 0 { to_half_width(name) } else { format!("{name}{n}") };
                    json!({"code": format!("C{n:06}"), "display": display})
                })
                .collect();
            json!({"code": format!("G{g:03}"), "display": format!("群{g}"), "concept": leaves})
        })
        .collect();
    json!({"resourceType": "CodeSystem", "url": URL, "content": "complete", "concept": groups})
}

fn to_half_width(s: &str) -> String {
    // Only the katakana of インフルエンザ matter for the test; kanji stay as they are.
    s.replace("インフルエンザ", "ｲﾝﾌﾙｴﾝｻﾞ")
}

#[test]
fn two_hundred_thousand_concepts() {
    let t = Terminology::default();
    t.add(large_code_system()).unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:large-all", "compose": {"include": [{"system": URL}]}}))
        .unwrap();
    t.add(json!({"resourceType": "ValueSet", "url": "urn:large-g5", "compose": {"include": [{"system": URL,
        "filter": [{"property": "concept", "op": "is-a", "value": "G005"}]}]}}))
        .unwrap();

    let all = ExpandParams { count: Some(10), ..Default::default() };
    let vs = t.expand(ValueSetSource::Canonical("urn:large-all"), &all).unwrap();
    assert_eq!(vs["expansion"]["total"], SIZE);
    let err = t.expand(ValueSetSource::Canonical("urn:large-all"), &ExpandParams::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooCostly);

    // Hiragana finds both the full-width and the half-width katakana displays.
    let flu = ExpandParams { filter: Some("いんふるえんざ"), count: Some(5), ..Default::default() };
    let vs = t.expand(ValueSetSource::Canonical("urn:large-all"), &flu).unwrap();
    // Leaves n ≡ 0 (mod 5) are named インフルエンザ, every 7th of them in half-width.
    let leaves_flu = (1..=SIZE - 1000).filter(|n| n % NAMES.len() == 0).count();
    assert_eq!(vs["expansion"]["total"], leaves_flu);
    let displays: Vec<&str> =
        vs["expansion"]["contains"].as_array().unwrap().iter().map(|c| c["display"].as_str().unwrap()).collect();
    assert!(displays.iter().all(|d| d.starts_with("インフルエンザ") || d.starts_with("ｲﾝﾌﾙｴﾝｻﾞ")), "{displays:?}");
    let half = ExpandParams { filter: Some("ｲﾝﾌﾙｴﾝｻﾞ"), count: Some(0), ..Default::default() };
    let vs = t.expand(ValueSetSource::Canonical("urn:large-all"), &half).unwrap();
    assert_eq!(vs["expansion"]["total"], leaves_flu);

    let vs = t.expand(ValueSetSource::Canonical("urn:large-g5"), &ExpandParams::default()).unwrap();
    assert_eq!(vs["expansion"]["total"], SIZE / 1000);
    assert_eq!(t.descendants(URL, "G005").len(), SIZE / 1000 - 1);
    assert_eq!(t.ancestors(URL, "C001000"), ["G005"]);
    assert_eq!(t.membership("urn:large-g5", Some(URL), "C001000"), Membership::In);
    assert_eq!(t.membership("urn:large-g5", Some(URL), "C000001"), Membership::NotIn);
    assert_eq!(t.membership("urn:large-all", Some(URL), "C199000"), Membership::In);
    assert_eq!(t.membership("urn:large-all", Some(URL), "C199001"), Membership::NotIn);
}
