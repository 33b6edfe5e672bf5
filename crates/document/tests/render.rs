//! Documents rendered for people: the JP-CLINS referral and patient-summary examples and the
//! eCheckupReport sample (read from TSUNAGU_SHARED; SKIP when absent, failure under
//! `CI=true`), documents built here (discharge summary, checkup report), hostile content,
//! non-documents, unresolved references and over-deep sections.

use std::io::Read;

use serde_json::{json, Value};
use tsunagu_document::{render_html, Lang, NotDocument, RenderError, RenderOptions, MAX_SECTION_DEPTH};

fn render(bundle: &Value) -> String {
    let html = render_html(bundle, &RenderOptions::default()).unwrap_or_else(|e| panic!("{}", e.message_en()));
    assert_safe(&html);
    assert_balanced(&html);
    html
}

fn read(relative: &str) -> Option<Value> {
    let path = tsunagu_reference::find(relative)?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap())
}

/// Properties every page must have, whatever went in.
fn assert_safe(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "page contains <script");
    assert!(!lower.contains("javascript:"), "page contains javascript:");
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\""));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("@media print"));
    assert_eq!(html.matches("<title>").count(), 1);
    assert_eq!(html.matches("</title>").count(), 1);
    // Every tag is one this crate writes, with no handler, style, source or odd link:
    // nothing runs and nothing is fetched.
    const ALLOWED: [&str; 62] = [
        "!doctype",
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "main",
        "header",
        "footer",
        "section",
        "div",
        "p",
        "span",
        "small",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "th",
        "td",
        "caption",
        "colgroup",
        "col",
        "ul",
        "ol",
        "li",
        "a",
        "b",
        "strong",
        "em",
        "i",
        "code",
        "samp",
        "kbd",
        "var",
        "dfn",
        "q",
        "abbr",
        "cite",
        "blockquote",
        "address",
        "sub",
        "sup",
        "pre",
        "br",
        "hr",
        "big",
        "tt",
        "acronym",
        "bdo",
        "map",
    ];
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let tag = &rest[lt + 1..];
        let gt = tag.find('>').expect("unclosed tag");
        let inner = tag[..gt].to_ascii_lowercase();
        rest = &tag[gt + 1..];
        let name: String =
            inner.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '!').collect();
        assert!(ALLOWED.contains(&name.as_str()), "unexpected element <{inner}>");
        for bad in [" on", " style=", " src=", " srcdoc=", " formaction=", " action="] {
            assert!(!inner.contains(bad), "unexpected attribute in <{inner}>");
        }
        if let Some(at) = inner.find(" href=\"") {
            let url = &inner[at + 7..];
            assert!(url.starts_with("https://") || url.starts_with("http://"), "link <{inner}>");
        }
    }
}

/// Every element closed, in order (a crude HTML scanner: the page is written by this crate,
/// so anything it cannot follow is a bug).
fn assert_balanced(html: &str) {
    const VOID: [&str; 5] = ["meta", "br", "hr", "col", "!doctype"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let tag = &rest[lt + 1..];
        let gt = tag.find('>').expect("unclosed tag");
        let inner = &tag[..gt];
        rest = &tag[gt + 1..];
        let closing = inner.starts_with('/');
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if closing {
            let open = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "left open: {stack:?}");
}

/// The text of every section heading (h2–h6 inside `doc-section`), in page order.
fn section_headings(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in html.split("<section class=\"doc-section\"><h").skip(1) {
        let text = &part[2..];
        out.push(text[..text.find("</h").unwrap()].to_owned());
    }
    out
}

/// Section titles of a Composition in document (pre-)order.
fn titles(sections: &Value, out: &mut Vec<String>) {
    for s in sections.as_array().into_iter().flatten() {
        out.push(s["title"].as_str().unwrap().to_owned());
        titles(&s["section"], out);
    }
}

fn section_order(bundle: &Value) -> Vec<String> {
    let mut expected = Vec::new();
    titles(&bundle["entry"][0]["resource"]["section"], &mut expected);
    expected
}

#[test]
fn clins_referral_example_reads_as_a_referral() {
    let Some(bundle) = read("jp/clins-examples/Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    let html = render(&bundle);
    assert!(html.contains("<title>診療情報提供書</title>"));
    assert!(html.contains("<h1>診療情報提供書</h1>"));
    // The patient, kanji and kana, with sex and birth date in Japanese.
    assert!(html.contains("<dt>氏名</dt><dd>牧野 爛漫</dd>"), "kanji name");
    assert!(html.contains("<dt>カナ氏名</dt><dd>マキノ ランマン</dd>"), "kana name");
    assert!(html.contains("<dd>女性</dd>"));
    assert!(html.contains("<dd>1930年6月28日</dd>"));
    assert!(html.contains("000999739"));
    assert!(html.contains("保険者番号 00012345"));
    // Author and institution, with its 医療機関コード.
    let authors = &html[html.find("<h2>作成者</h2>").expect("authors")..];
    assert!(authors.contains("大河内 勘三郎 <span class=\"kana\">（オオコウチ カンザブロウ）</span>"));
    assert!(authors.contains("<p class=\"party-name\">港診療所</p>"));
    assert!(authors.contains("<dd>1319876543</dd>"));
    // Every section, in Composition order, nested ones included.
    let expected = section_order(&bundle);
    assert_eq!(expected.len(), 12);
    assert_eq!(section_headings(&html), expected);
    // Structured entries: diagnoses, allergies, results, the referred-to hospital.
    let diagnoses = &html[html.find("傷病名・主訴").unwrap()..html.find("現病歴").unwrap()];
    assert!(diagnoses.contains("<span class=\"kind\">傷病名</span> 上腹部痛</p>"));
    assert!(diagnoses.contains("<dd>活動中</dd>"));
    assert!(diagnoses.contains("<dd>2022年6月9日</dd>"));
    assert!(html.contains("<span class=\"kind\">傷病名</span> 左前腕骨折</p>"));
    assert!(html.contains("<span class=\"kind\">原因物質</span> ヨードうがい液</p>"));
    assert!(html.contains("<dd>重度</dd>"));
    assert!(html.contains("<td>腹部所見</td><td>上腹部圧痛あり、その他特に所見なし。"));
    assert!(html.contains("東京第一テスト病院"));
    assert!(html.contains("野口 英世丸"));
    // The attachment is described, never linked.
    assert!(html.contains("<span class=\"kind\">参照文書</span> 臨床経過</p>"));
    assert!(!html.contains("file:///"));
    assert!(!html.contains("<a "));
}

#[test]
fn clins_patient_summary_example_shows_its_care_plan() {
    let Some(bundle) = read("jp/clins-examples/Bundle-Bundle-CLINS-PCS-Example-01.json") else { return };
    let html = render(&bundle);
    assert!(html.contains("<h1>患者サマリー（療養計画書）</h1>"));
    assert!(html.contains("<dd>計画書</dd>"));
    assert!(html.contains("療養計画"));
    assert!(html.contains("高血圧について内服を継続してください。"));
    assert_eq!(section_headings(&html), section_order(&bundle));
}

#[test]
fn echeckup_report_sample_shows_results_table() {
    let Some(path) = tsunagu_reference::find("jp/jp-eCheckupReport.r4.tgz") else { return };
    let file = std::fs::File::open(&path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut bundle = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with("Bundle-Bundle-eCheckupReport-Sample-01.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            bundle = Some(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    let bundle = bundle.expect("the eCheckupReport package has its sample document");
    let html = render(&bundle);
    assert!(html.contains("<h1>健康診断結果のお知らせ</h1>"));
    assert!(html.contains("<dd>検診・健診報告書</dd>"));
    assert!(html.contains("<dd>健診 太郎</dd>") && html.contains("<dd>ケンシン タロウ</dd>"));
    assert!(html.contains("<dd>男性</dd>"));
    assert!(html.contains("<p class=\"party-name\">厚生労働省第一病院</p>"));
    assert!(html.contains("東京 太郎"));
    assert_eq!(section_headings(&html), section_order(&bundle));
    assert!(html.contains("<table class=\"results\">"));
    assert!(html.contains("<tr><td>身長</td><td>162.3 cm</td>"));
    assert!(html.contains("<tr><td>収縮期血圧（１回目）</td><td>149 mmHg</td><td>基準内</td><td>80〜130 mmHg</td><td>2020年4月4日</td></tr>"));
    // A component under its Observation.
    assert!(html.contains("<tr class=\"sub\"><td>具体的な既往歴</td><td>ヘルニア、膀胱炎</td>"));
}

fn entry(full_url: &str, resource: Value) -> Value {
    json!({"fullUrl": full_url, "resource": resource})
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1948-03-02",
    "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11312345670", "value": "12345"}],
    "name": [
        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "IDE"}], "family": "山田", "given": ["太郎"]},
        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "SYL"}], "family": "ヤマダ", "given": ["タロウ"]}
    ]})
}

fn document(type_code: &str, title: &str, sections: Value, mut more: Vec<Value>) -> Value {
    let mut entries = vec![
        entry(
            "urn:uuid:comp",
            json!({"resourceType": "Composition", "status": "final", "title": title,
            "type": {"coding": [{"system": "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes", "code": type_code}]},
            "date": "2024-05-10T15:00:00+09:00",
            "subject": {"reference": "urn:uuid:pat"},
            "author": [{"reference": "urn:uuid:doc"}, {"reference": "urn:uuid:org"}],
            "custodian": {"reference": "urn:uuid:org"},
            "attester": [{"mode": "legal", "time": "2024-05-10", "party": {"reference": "urn:uuid:doc"}}],
            "section": sections}),
        ),
        entry("urn:uuid:pat", patient()),
        entry("urn:uuid:doc", json!({"resourceType": "Practitioner", "name": [{"text": "佐藤 花子"}]})),
        entry(
            "urn:uuid:org",
            json!({"resourceType": "Organization", "name": "つなぐ総合病院",
            "identifier": [{"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "1312345670"}]}),
        ),
    ];
    entries.append(&mut more);
    json!({"resourceType": "Bundle", "type": "document", "timestamp": "2024-05-10T15:00:00+09:00", "entry": entries})
}

fn section(title: &str, div: Option<&str>, refs: &[&str]) -> Value {
    let mut s = json!({"title": title, "entry": refs.iter().map(|r| json!({"reference": r})).collect::<Vec<_>>()});
    if let Some(div) = div {
        s["text"] = json!({"status": "generated", "div": div});
    }
    s
}

#[test]
fn discharge_summary_built_here_renders_every_entry_type() {
    let bundle = document(
        "18842-5",
        "退院時サマリー",
        json!([
            section("入院情報", None, &["urn:uuid:enc"]),
            section("入院時診断", Some("<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>肺炎</li></ul></div>"), &["urn:uuid:dx"]),
            {"title": "入院中経過", "section": [
                section("手術", None, &["urn:uuid:proc"]),
                section("予防接種", None, &["urn:uuid:imm"])
            ]},
            section("退院時処方", None, &["urn:uuid:med"]),
            section("退院後の依頼", None, &["urn:uuid:req", "urn:uuid:plan"]),
            section("その他", None, &["urn:uuid:other"]),
        ]),
        vec![
            entry(
                "urn:uuid:enc",
                json!({"resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "period": {"start": "2024-04-28", "end": "2024-05-10"}, "serviceProvider": {"reference": "urn:uuid:org"}}),
            ),
            entry(
                "urn:uuid:dx",
                json!({"resourceType": "Condition", "code": {"text": "市中肺炎"},
                "clinicalStatus": {"coding": [{"code": "remission"}]}, "onsetDateTime": "2024-04-26"}),
            ),
            entry(
                "urn:uuid:proc",
                json!({"resourceType": "Procedure", "status": "completed", "code": {"text": "気管支鏡検査"},
                "performedDateTime": "2024-04-30T10:00:00+09:00"}),
            ),
            entry(
                "urn:uuid:imm",
                json!({"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"text": "肺炎球菌ワクチン"}, "occurrenceDateTime": "2024-05-09", "lotNumber": "AB12",
                "protocolApplied": [{"doseNumberPositiveInt": 1}]}),
            ),
            entry(
                "urn:uuid:med",
                json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"text": "アモキシシリン錠250mg"},
                "authoredOn": "2024-05-10",
                "dosageInstruction": [{"text": "1日3回 毎食後 1回1錠",
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d", "boundsDuration": {"value": 7, "unit": "日"}}},
                    "route": {"text": "経口"},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "錠"}}]}],
                "dispenseRequest": {"quantity": {"value": 21, "unit": "錠"}, "expectedSupplyDuration": {"value": 7, "unit": "日"}}}),
            ),
            entry(
                "urn:uuid:req",
                json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "code": {"text": "胸部X線 再検"}, "occurrenceDateTime": "2024-06-01", "patientInstruction": "朝食後に来院"}),
            ),
            entry(
                "urn:uuid:plan",
                json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "title": "外来フォロー", "activity": [{"detail": {"description": "2週間後に外来受診", "status": "scheduled"}}]}),
            ),
            entry(
                "urn:uuid:other",
                json!({"resourceType": "FamilyMemberHistory", "id": "fmh",
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">父 高血圧</div>"}}),
            ),
        ],
    );
    let html = render(&bundle);
    assert!(html.contains("<h1>退院時サマリー</h1>"));
    assert!(html.contains("<dd>山田 太郎</dd>") && html.contains("<dd>ヤマダ タロウ</dd>"));
    assert!(html.contains("12345 <small>（医療機関コード 1312345670）</small>"));
    assert!(html.contains("<h2>証明者</h2><div class=\"attester\"><p>法的、2024年5月10日</p>"));
    assert_eq!(
        section_headings(&html),
        ["入院情報", "入院時診断", "入院中経過", "手術", "予防接種", "退院時処方", "退院後の依頼", "その他"]
    );
    assert!(html.contains("<span class=\"kind\">受診区分</span> 入院</p>"));
    assert!(html.contains("<dd>2024年4月28日〜2024年5月10日</dd>"));
    assert!(html.contains("<div class=\"narrative\"><ul><li>肺炎</li></ul></div>"));
    assert!(html.contains("<span class=\"kind\">傷病名</span> 市中肺炎</p>") && html.contains("<dd>寛解</dd>"));
    assert!(html.contains("気管支鏡検査") && html.contains("<dd>2024年4月30日 10:00</dd>"));
    assert!(
        html.contains("肺炎球菌ワクチン")
            && html.contains("<dd>AB12</dd>")
            && html.contains("<dt>接種回数</dt><dd>1</dd>")
    );
    let med = &html[html.find("アモキシシリン錠250mg").unwrap()..];
    for expected in [
        "<dd>1日3回 毎食後 1回1錠</dd>",
        "<dd>1日3回</dd>",
        "<dd>7日</dd>",
        "<dd>1錠</dd>",
        "<dd>経口</dd>",
        "<dd>21錠</dd>",
    ] {
        assert!(med.contains(expected), "{expected}");
    }
    assert!(html.contains("胸部X線 再検") && html.contains("<dd>朝食後に来院</dd>"));
    assert!(html.contains("外来フォロー") && html.contains("<dd>2週間後に外来受診</dd>"));
    assert!(html
        .contains("<span class=\"kind\">FamilyMemberHistory</span> fmh</p><div class=\"narrative\">父 高血圧</div>"));
}

#[test]
fn checkup_report_built_here_shows_flags_ranges_members_and_absent_values() {
    let bundle = document(
        "53576-5",
        "健診結果報告書",
        json!([section("健診結果", None, &["urn:uuid:bp", "urn:uuid:ldl", "urn:uuid:urine", "urn:uuid:hba1c"])]),
        vec![
            entry(
                "urn:uuid:bp",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "血圧"},
                "effectiveDateTime": "2024-04-04",
                "hasMember": [{"reference": "urn:uuid:sys"}, {"reference": "urn:uuid:gone", "display": "拡張期血圧"}]}),
            ),
            entry(
                "urn:uuid:sys",
                json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"display": "収縮期血圧"}]}, "valueQuantity": {"value": 152, "unit": "mmHg"},
                "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
                "referenceRange": [{"high": {"value": 129, "unit": "mmHg"}}]}),
            ),
            entry(
                "urn:uuid:ldl",
                json!({"resourceType": "Observation", "status": "preliminary", "code": {"text": "LDLコレステロール"},
                "valueQuantity": {"value": 98, "unit": "mg/dL"}, "referenceRange": [{"text": "60〜119"}]}),
            ),
            entry(
                "urn:uuid:urine",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "尿糖"},
                "valueCodeableConcept": {"coding": [{"display": "（－）"}]}}),
            ),
            entry(
                "urn:uuid:hba1c",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
                "dataAbsentReason": {"text": "未実施"}}),
            ),
        ],
    );
    let html = render(&bundle);
    assert!(html.contains("<tr><td>血圧</td><td></td><td></td><td></td><td>2024年4月4日</td></tr>"));
    assert!(html.contains("<tr class=\"sub\"><td>収縮期血圧</td><td>152 mmHg</td><td>高値</td><td>≤ 129 mmHg</td>"));
    assert!(html.contains("拡張期血圧 <small>（文書内に参照先なし）</small>"));
    assert!(html.contains("<td>98 mg/dL <small>（暫定）</small></td><td></td><td>60〜119</td>"));
    assert!(html.contains("<td>尿糖</td><td>（－）</td>"));
    assert!(html.contains("<span class=\"absent\">未実施</span>"));
    // One table for the run of Observations, members included.
    assert_eq!(html.matches("<table class=\"results\">").count(), 1);
}

#[test]
fn hostile_content_is_escaped_or_dropped() {
    let hostile_div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="steal()">所見</p><script>alert(1)</script><a href="javascript:alert(2)">リンク</a><iframe src="https://evil.example/"></iframe><form action="https://evil.example/"><input name="q"/></form><p style="background:url(https://evil.example/t.gif)">背景</p></div>"#;
    let mut bundle = document(
        "57133-1",
        "</title><script>alert('title')</script>",
        json!([
            section("<script>alert('section')</script>", Some(hostile_div), &["urn:uuid:obs", "urn:uuid:doc-ref"]),
            section(
                "安全な記述",
                Some(
                    r#"<div xmlns="http://www.w3.org/1999/xhtml"><p style="color: red">赤</p><a href="https://example.org/">参考</a><img src="https://tracker.example/p.gif" alt="図1"/></div>"#
                ),
                &[]
            ),
            section("壊れた記述", Some("<div><p>閉じていない"), &[]),
        ]),
        vec![
            entry(
                "urn:uuid:obs",
                json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "<img src=x onerror=alert(3)>"}, "valueString": "<script>alert(4)</script>"}),
            ),
            entry(
                "urn:uuid:doc-ref",
                json!({"resourceType": "DocumentReference", "status": "current",
                "description": "紹介状<b>本文</b>",
                "content": [{"attachment": {"contentType": "text/html", "url": "javascript:alert(5)", "data": "PHNjcmlwdD5hbGVydCg2KTwvc2NyaXB0Pg==", "title": "本文\"><script>"}}]}),
            ),
        ],
    );
    bundle["entry"][1]["resource"]["name"][0] = json!({"text": "<img src=x onerror=alert(7)>"});
    let html = render(&bundle);
    assert!(html.contains("<title>&lt;/title&gt;&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;</title>"));
    assert!(html.contains("<h2>&lt;script&gt;alert(&#39;section&#39;)&lt;/script&gt;</h2>"));
    // The hostile narrative: words only, with a warning; no handler, script text or link.
    assert!(html.contains("<p class=\"warning\">この記述は安全でない書式を含むため、文字だけを表示しています。</p>"));
    let hostile = &html[html.find("&lt;script&gt;alert(&#39;section&#39;)").unwrap()..html.find("安全な記述").unwrap()];
    assert!(hostile.contains("所見") && hostile.contains("リンク") && hostile.contains("背景"));
    assert!(
        !hostile.contains("steal")
            && !hostile.contains("alert(1)")
            && !hostile.contains("alert(2)")
            && !hostile.contains("evil")
    );
    // A narrative within the rules keeps its text and safe link, loses style and image.
    assert!(html.contains("<div class=\"narrative\"><p>赤</p><a href=\"https://example.org/\" rel=\"noopener noreferrer\">参考</a><span class=\"img\">[画像: 図1]</span></div>"));
    assert!(!html.contains("tracker.example"));
    assert!(html.contains("<p class=\"plain\">閉じていない</p>"));
    // Values from entries and the patient are text.
    assert!(html.contains("&lt;img src=x onerror=alert(3)&gt;"));
    assert!(html.contains("&lt;script&gt;alert(4)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(7)&gt;"));
    assert!(html.contains("紹介状&lt;b&gt;本文&lt;/b&gt;"));
    assert!(html.contains("本文&quot;&gt;&lt;script&gt;（text/html）"));
    assert!(!html.contains("PHNjcmlwd"));
}

#[test]
fn bundles_that_are_not_documents_are_refused() {
    let options = RenderOptions::default();
    let cases = [
        (json!({"resourceType": "Patient"}), NotDocument::NotABundle(Some("Patient".into()))),
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": []}),
            NotDocument::WrongType(Some("collection".into())),
        ),
        (json!({"resourceType": "Bundle", "entry": []}), NotDocument::WrongType(None)),
        (json!({"resourceType": "Bundle", "type": "document"}), NotDocument::NoEntries),
        (
            json!({"resourceType": "Bundle", "type": "document", "entry": [{"resource": {"resourceType": "Patient"}}]}),
            NotDocument::FirstNotComposition(Some("Patient".into())),
        ),
        (json!([1, 2]), NotDocument::NotABundle(None)),
    ];
    for (input, why) in cases {
        let err = render_html(&input, &options).unwrap_err();
        assert_eq!(err, RenderError::NotADocument(why));
        assert!(err.message_en().starts_with("not a document"));
        assert!(err.message_ja().starts_with("文書ではありません"));
    }
}

#[test]
fn unresolved_references_show_what_they_say() {
    let mut bundle = document(
        "57133-1",
        "診療情報提供書",
        json!([section("傷病名", None, &["urn:uuid:missing", "Condition/nowhere"])]),
        vec![],
    );
    let comp = &mut bundle["entry"][0]["resource"];
    comp["subject"] = json!({"reference": "urn:uuid:no-patient", "display": "患者 不明"});
    comp["author"] = json!([{"display": "田中 医師"}, {"identifier": {"value": "D-001"}}, {}]);
    comp["section"][0]["entry"][0]["display"] = json!("表示だけの傷病名");
    let html = render(&bundle);
    assert!(html.contains("患者 不明 <small>（文書内に参照先なし）</small>"));
    assert!(html.contains("田中 医師 <small>"));
    assert!(html.contains("D-001 <small>"));
    assert!(html.contains("表示だけの傷病名 <small>"));
    assert!(html.contains("Condition/nowhere <small>"));
}

#[test]
fn relative_references_resolve_against_restful_full_urls() {
    let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
        {"fullUrl": "https://fhir.example.jp/r4/Composition/c1", "resource": {"resourceType": "Composition", "id": "c1",
            "status": "final", "title": "患者サマリー", "type": {"text": "患者サマリー"},
            "subject": {"reference": "Patient/p1"}, "author": [{"reference": "Practitioner/d1/_history/2"}],
            "section": [{"title": "問題", "entry": [{"reference": "https://fhir.example.jp/r4/Condition/x1"}]}]}},
        {"fullUrl": "https://fhir.example.jp/r4/Patient/p1", "resource": patient()},
        {"fullUrl": "https://fhir.example.jp/r4/Practitioner/d1", "resource": {"resourceType": "Practitioner", "id": "d1",
            "meta": {"versionId": "2"}, "name": [{"text": "鈴木 一郎"}]}},
        {"fullUrl": "https://fhir.example.jp/r4/Condition/x1", "resource": {"resourceType": "Condition", "id": "x1", "code": {"text": "高血圧症"}}}
    ]});
    let html = render(&bundle);
    assert!(html.contains("<dd>山田 太郎</dd>"));
    assert!(html.contains("鈴木 一郎"));
    assert!(html.contains("<span class=\"kind\">傷病名</span> 高血圧症</p>"));
}

#[test]
fn deep_sections_are_bounded() {
    let depth = 60;
    let mut inner = json!({"title": format!("節{depth}")});
    for level in (1..depth).rev() {
        inner = json!({"title": format!("節{level}"), "section": [inner]});
    }
    let bundle = document("56447-6", "患者サマリー", json!([inner]), vec![]);
    let html = render(&bundle);
    assert_eq!(html.matches("<section class=\"doc-section\">").count(), MAX_SECTION_DEPTH);
    assert!(html.contains("これより深い節は題名のみ表示しています。"));
    let listed = &html[html.find("<div class=\"too-deep\">").unwrap()..];
    for level in MAX_SECTION_DEPTH + 1..=depth {
        assert!(listed.contains(&format!("<li>節{level}</li>")), "節{level}");
    }
}

#[test]
fn english_labels_keep_the_document_text() {
    let bundle = document("57133-1", "診療情報提供書", json!([]), vec![]);
    let html = render_html(&bundle, &RenderOptions { lang: Lang::En, base_url: None }).unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<h2>Patient</h2>"));
    assert!(html.contains("<dt>Sex</dt><dd>Male</dd>"));
    assert!(html.contains("<dt>Date of birth</dt><dd>1948-03-02</dd>"));
    assert!(html.contains("<h1>診療情報提供書</h1>"));
}

#[test]
fn base_url_resolves_server_references_in_urn_documents() {
    let mut bundle = document("57133-1", "診療情報提供書", json!([]), vec![]);
    bundle["entry"][1]["fullUrl"] = json!("https://fhir.example.jp/r4/Patient/p");
    bundle["entry"][0]["resource"]["subject"] = json!({"reference": "Patient/p"});
    let options = RenderOptions { lang: Lang::Ja, base_url: Some("https://fhir.example.jp/r4/".into()) };
    let html = render_html(&bundle, &options).unwrap();
    assert!(html.contains("<dd>山田 太郎</dd>"));
}

/// Every string of the referral example replaced, one at a time, by awkward text: the page
/// still renders, stays safe and stays balanced (no slicing inside a character, no markup
/// from data).
#[test]
fn any_string_anywhere_cannot_break_the_page() {
    let Some(bundle) = read("jp/clins-examples/Bundle-Bundle-CLINS-Referral-Example-01.json") else { return };
    fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
        match v {
            Value::String(_) => out.push(format!("/{}", at.join("/"))),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    paths(item, at, out);
                    at.pop();
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    at.push(k.replace('~', "~0").replace('/', "~1"));
                    paths(item, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(&bundle, &mut Vec::new(), &mut all);
    let nasty = [
        "</div></section><script>alert(1)</script>",
        "2020-01-01T12:3é",
        "&#x3c;script&#x3e;&日本語の文字列です;",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"JaVaScRiPt:alert(1)\">x</a></div>",
        "#",
        "",
    ];
    for path in &all {
        for value in nasty {
            let mut b = bundle.clone();
            *b.pointer_mut(path).unwrap() = Value::String(value.to_owned());
            match render_html(&b, &RenderOptions::default()) {
                Ok(html) => {
                    assert_safe(&html);
                    assert_balanced(&html);
                }
                Err(RenderError::NotADocument(_)) => {
                    assert!(
                        path == "/resourceType" || path == "/type" || path == "/entry/0/resource/resourceType",
                        "{path}"
                    )
                }
                Err(e) => panic!("{path}: {e}"),
            }
        }
    }
}
