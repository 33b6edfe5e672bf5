//! Narrative rules (FHIR R4 narrative.html, invariants txt-1 and txt-2 on Narrative.div):
//! what may never be stored, what must still be accepted, and the bilingual messages.

use serde_json::json;
use tsunagu_format::{check_narrative, check_structure, IssueType, Severity};

fn div(inner: &str) -> String {
    format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>")
}

/// Refused, with both messages naming `name` and `rule`.
#[track_caller]
fn refused(inner: &str, name: &str, rule: &str) -> (String, String) {
    let d = div(inner);
    let (en, ja) = check_narrative(&d).expect_err(&format!("accepted: {d}"));
    assert!(en.contains(name) && en.contains(rule), "English message does not name {name} / {rule}: {en}");
    assert!(ja.contains(name) && ja.contains(rule), "Japanese message does not name {name} / {rule}: {ja}");
    (en, ja)
}

#[track_caller]
fn accepted(inner: &str) {
    let d = div(inner);
    if let Err((en, _)) = check_narrative(&d) {
        panic!("refused {d}: {en}");
    }
}

// ---- elements ----

#[test]
fn script_element_is_refused() {
    let (en, ja) = refused("<p>x</p><script>alert(1)</script>", "<script>", "txt-1");
    assert_eq!(en, "element <script> is not allowed in narrative (txt-1)");
    assert_eq!(ja, "ナラティブに <script> 要素は使えません（txt-1）");
    refused("<p>x<script/></p>", "<script>", "txt-1");
}

#[test]
fn frames_objects_and_embeds_are_refused() {
    refused("<p>x</p><iframe src=\"https://example.org/\"></iframe>", "<iframe>", "txt-1");
    refused("<p>x</p><object data=\"x.swf\"></object>", "<object>", "txt-1");
    refused("<p>x</p><embed src=\"x.swf\"/>", "<embed>", "txt-1");
    refused("<p>x</p><frameset><frame src=\"a\"/></frameset>", "<frameset>", "txt-1");
    refused("<p>x</p><applet code=\"A\"/>", "<applet>", "txt-1");
}

#[test]
fn forms_and_inputs_are_refused() {
    refused("<form action=\"https://evil.example/\"><p>x</p></form>", "<form>", "txt-1");
    refused("<p>x <input type=\"text\"/></p>", "<input>", "txt-1");
    refused("<p>x <button>go</button></p>", "<button>", "txt-1");
    refused("<p>x <textarea>t</textarea></p>", "<textarea>", "txt-1");
    refused("<p>x <select><option>a</option></select></p>", "<select>", "txt-1");
}

#[test]
fn style_link_meta_base_elements_are_refused() {
    refused("<style>p { color: red }</style><p>x</p>", "<style>", "txt-1");
    refused("<link rel=\"stylesheet\" href=\"https://e.org/x.css\"/><p>x</p>", "<link>", "txt-1");
    refused("<meta http-equiv=\"refresh\" content=\"0\"/><p>x</p>", "<meta>", "txt-1");
    refused("<base href=\"https://e.org/\"/><p>x</p>", "<base>", "txt-1");
}

#[test]
fn deprecated_and_unlisted_elements_are_refused() {
    refused("<font color=\"red\">x</font>", "<font>", "txt-1");
    refused("<center>x</center>", "<center>", "txt-1");
    // XHTML names are case-sensitive: upper-case P is not the paragraph element.
    refused("<P>x</P>", "<P>", "txt-1");
}

#[test]
fn svg_and_math_are_refused_whatever_their_namespace() {
    // In the SVG namespace: a foreign element.
    refused("<p>x</p><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>", "<svg>", "txt-1");
    refused("<p xmlns:s=\"http://www.w3.org/2000/svg\">x<s:svg onload=\"alert(1)\"/></p>", "xmlns:s", "txt-1");
    // Written without a namespace declaration it is in XHTML, and not in the list.
    refused("<p>x</p><svg><circle r=\"1\"/></svg>", "<svg>", "txt-1");
    refused("<p>x</p><math><mi>x</mi></math>", "<math>", "txt-1");
}

#[test]
fn element_in_a_foreign_namespace_is_refused() {
    // A namespace declaration other than XHTML is refused where it appears...
    refused("<p xmlns=\"urn:other\">x</p>", "urn:other", "txt-1");
    // ...and an element that ends up outside XHTML (here: in no namespace) is refused too.
    refused("<b>x</b><p xmlns=\"\">y</p>", "<p>", "txt-1");
    // An undeclared prefix is not well-formed.
    assert!(check_narrative(&div("<x:p>y</x:p>")).is_err());
}

#[test]
fn xhtml_prefix_is_accepted_and_other_prefixes_are_not() {
    accepted("<h:p xmlns:h=\"http://www.w3.org/1999/xhtml\">x <h:b>bold</h:b></h:p>");
    refused("<h:p xmlns:h=\"http://www.w3.org/1999/xhtml\">x <h:script/></h:p>", "<h:script>", "txt-1");
    refused(
        "<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"javascript:alert(1)\">x</a>",
        "xmlns:xlink",
        "txt-1",
    );
}

// ---- attributes ----

#[test]
fn onclick_is_refused() {
    let (en, ja) = refused("<p onclick=\"alert(1)\">x</p>", "onclick", "txt-1");
    assert!(en.contains("<p>") && en.contains("event handler"), "{en}");
    assert!(ja.contains("<p>") && ja.contains("イベントハンドラ"), "{ja}");
    // Any case, any handler.
    refused("<p onClick=\"alert(1)\">x</p>", "onClick", "txt-1");
    refused("<p ONMOUSEOVER=\"alert(1)\">x</p>", "ONMOUSEOVER", "txt-1");
}

#[test]
fn onload_on_img_is_refused() {
    refused("<img src=\"x.png\" alt=\"x\" onload=\"alert(1)\"/>", "onload", "txt-1");
    refused("<img src=\"x.png\" alt=\"x\" onerror=\"alert(1)\"/>", "onerror", "txt-1");
}

#[test]
fn attributes_outside_the_list_are_refused() {
    let (en, ja) = refused("<p target=\"_blank\">x</p>", "target", "txt-1");
    assert!(en.contains("<p>"), "{en}");
    assert!(ja.contains("<p>"), "{ja}");
    // href belongs to <a> and <area>, not to a paragraph.
    refused("<p href=\"https://example.org/\">x</p>", "href", "txt-1");
    refused("<a target=\"_blank\" href=\"https://example.org/\">x</a>", "target", "txt-1");
    refused("<img srcset=\"a.png 1x\" src=\"a.png\"/>", "srcset", "txt-1");
}

// ---- URLs ----

#[test]
fn javascript_href_is_refused() {
    let (en, ja) = refused("<a href=\"javascript:alert(1)\">x</a>", "javascript:", "txt-1");
    assert!(en.contains("href") && en.contains("<a>"), "{en}");
    assert!(ja.contains("href") && ja.contains("<a>"), "{ja}");
    refused("<a href=\"JavaScript:alert(1)\">x</a>", "javascript:", "txt-1");
    refused("<a href=\"  javascript:alert(1)\">x</a>", "javascript:", "txt-1");
}

#[test]
fn javascript_href_hidden_by_entities_or_whitespace_is_refused() {
    // Character references are decoded before the scheme is read.
    refused("<a href=\"jav&#x61;script:alert(1)\">x</a>", "javascript:", "txt-1");
    refused(
        "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
        "javascript:",
        "txt-1",
    );
    refused("<a href=\"javascript&#x3A;alert(1)\">x</a>", "javascript:", "txt-1");
    // Tabs, line breaks and other control characters inside the scheme are ignored by browsers.
    refused("<a href=\"java\tscript:alert(1)\">x</a>", "javascript:", "txt-1");
    refused("<a href=\"java&#x09;script:alert(1)\">x</a>", "javascript:", "txt-1");
    refused("<a href=\"java&#10;script:alert(1)\">x</a>", "javascript:", "txt-1");
    refused("<a href=\"&#x20;javascript:alert(1)\">x</a>", "javascript:", "txt-1");
    // HTML's named entities are not XML: refused as not well-formed.
    assert!(check_narrative(&div("<a href=\"javascript&colon;alert(1)\">x</a>")).is_err());
}

#[test]
fn other_dangerous_schemes_are_refused() {
    refused("<a href=\"vbscript:msgbox(1)\">x</a>", "vbscript:", "txt-1");
    refused("<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>", "data:", "txt-1");
    refused("<img src=\"data:text/html;base64,PHNjcmlwdD4=\" alt=\"x\"/>", "data:text/html", "txt-1");
    refused("<img src=\"data:image/svg+xml;base64,PHN2Zz4=\" alt=\"x\"/>", "data:image/svg+xml", "txt-1");
    refused("<img src=\"x.png\" longdesc=\"javascript:alert(1)\" alt=\"x\"/>", "longdesc", "txt-1");
    refused("<blockquote cite=\"javascript:alert(1)\">x</blockquote>", "cite", "txt-1");
    refused("<map name=\"m\"><area href=\"javascript:alert(1)\" alt=\"a\"/></map><p>x</p>", "<area>", "txt-1");
    refused("<a href=\"file:///etc/passwd\">x</a>", "file:", "txt-1");
}

// ---- style ----

#[test]
fn style_with_expression_is_refused() {
    let (en, ja) = refused("<p style=\"width: expression(alert(1))\">x</p>", "expression(", "txt-1");
    assert!(en.contains("style") && en.contains("<p>"), "{en}");
    assert!(ja.contains("style") && ja.contains("<p>"), "{ja}");
    refused("<p style=\"width: EXPRESSION (alert(1))\">x</p>", "expression(", "txt-1");
    // CSS comments and escapes do not hide it.
    refused("<p style=\"width: expr/**/ession(alert(1))\">x</p>", "expression(", "txt-1");
    refused("<p style=\"width: e\\78pression(alert(1))\">x</p>", "expression(", "txt-1");
    refused("<p style=\"width: e\\xpression(alert(1))\">x</p>", "expression(", "txt-1");
}

#[test]
fn style_with_script_urls_or_bindings_is_refused() {
    refused("<p style=\"background: url(javascript:alert(1))\">x</p>", "javascript:", "txt-1");
    refused("<p style=\"background: url('data:text/html,x')\">x</p>", "url(", "txt-1");
    refused("<p style=\"behavior: url(x.htc)\">x</p>", "behavior:", "txt-1");
    refused("<p style=\"-moz-binding: url(x.xml#b)\">x</p>", "-moz-binding", "txt-1");
    refused("<p style=\"-MOZ-BINDING: url(x.xml#b)\">x</p>", "-moz-binding", "txt-1");
}

// ---- other markup ----

#[test]
fn processing_instruction_is_refused() {
    refused("<p>x</p><?php echo 1; ?>", "php", "txt-1");
    refused("<p>x<?xml-stylesheet href=\"x.xsl\"?></p>", "xml-stylesheet", "txt-1");
}

#[test]
fn dtd_and_unknown_entities_are_refused() {
    assert!(check_narrative("<!DOCTYPE div><div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>").is_err());
    assert!(check_narrative(&div("<p>&nbsp;x</p>")).is_err());
    assert!(check_narrative("<div>x</div>").is_err(), "the XHTML namespace is required");
    assert!(check_narrative(&div("<p>x</p>").replace("</div>", "</div><div>y</div>")).is_err());
    assert!(check_narrative(&div("<p>x")).is_err());
}

#[test]
fn cdata_is_text() {
    accepted("<p><![CDATA[a < b & c]]></p>");
    // CDATA with only whitespace is not content.
    refused("<p><![CDATA[   ]]></p>", "txt-2", "txt-2");
}

// ---- txt-2 ----

#[test]
fn empty_narrative_is_refused() {
    let (en, ja) = refused("", "txt-2", "txt-2");
    assert!(en.contains("non-whitespace"), "{en}");
    assert!(ja.contains("空白以外"), "{ja}");
    refused("\n    ", "txt-2", "txt-2");
    refused("<p>  </p><br/><table><tr><td>\u{3000}</td></tr></table>", "txt-2", "txt-2");
    refused("<p><!-- a comment is not content --></p>", "txt-2", "txt-2");
    let d = "<div xmlns=\"http://www.w3.org/1999/xhtml\"/>";
    assert!(check_narrative(d).unwrap_err().0.contains("txt-2"));
}

#[test]
fn an_image_alone_is_content() {
    accepted("<img src=\"https://example.org/scan.png\" alt=\"\"/>");
}

// ---- accepted ----

#[test]
fn table_is_accepted() {
    accepted(
        "<table class=\"grid\" border=\"1\" cellpadding=\"2\" cellspacing=\"0\" summary=\"s\" style=\"width: 100%\">\
         <caption>Results</caption><colgroup span=\"2\"><col width=\"50%\"/><col/></colgroup>\
         <thead><tr><th scope=\"col\">Code</th><th abbr=\"v\">Value</th></tr></thead>\
         <tbody><tr><td valign=\"top\" align=\"left\">8480-6</td><td rowspan=\"1\" colspan=\"1\">120 mmHg</td></tr></tbody>\
         <tfoot><tr><td colspan=\"2\">血圧</td></tr></tfoot></table>",
    );
}

#[test]
fn links_are_accepted() {
    accepted("<p><a href=\"https://hl7.org/fhir/R4/narrative.html\" title=\"spec\">spec</a></p>");
    accepted("<p><a href=\"#section-2\">below</a> <a name=\"section-2\">here</a></p>");
    accepted("<p><a href=\"http://example.org/?a=1&amp;b=2\">q</a> <a href=\"mailto:a@example.org\">m</a></p>");
    accepted("<p><a href=\"tel:+81-3-0000-0000\">t</a> <a href=\"urn:oid:1.2.3\">u</a></p>");
    accepted("<p><a href=\"valueset-contact-point-use.html\">relative</a> <a href=\"../x/y.html#z\">up</a></p>");
    accepted("<p><a href=\"//example.org/x\">protocol-relative</a> <a href=\"\">empty</a></p>");
    // A colon after the first slash is part of the path, not a scheme.
    accepted("<p><a href=\"a/b:c\">path</a> <a href=\"?q=javascript:x\">query</a></p>");
}

#[test]
fn data_image_is_accepted_on_img_src() {
    accepted("<p>scan: <img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB\" alt=\"scan\"/></p>");
    // As the R4 examples write it, with a space after the scheme.
    accepted("<img src=\"data: image/png;base64,iVBORw0KGgo=\" alt=\"\" class=\"hierarchy\" style=\"background-color: white\"/>");
    accepted("<img src=\"DATA:IMAGE/JPEG;BASE64,/9j/4AAQ\" alt=\"\"/>");
    // Only on an image source.
    refused("<a href=\"data:image/png;base64,iVBORw0KGgo=\">x</a>", "data:", "txt-1");
    // Only base64.
    refused("<img src=\"data:image/png,raw\" alt=\"\"/>", "data:image/png", "txt-1");
}

#[test]
fn lists_are_accepted() {
    accepted("<ul class=\"c\"><li>a</li><li>b</li></ul><ol type=\"1\" start=\"3\"><li value=\"3\">c</li></ol>");
    accepted("<dl><dt>term</dt><dd>definition</dd></dl>");
}

#[test]
fn styled_span_and_formatting_are_accepted() {
    accepted("<span style=\"color:red\">red</span>");
    accepted("<p style=\"background: url(https://example.org/bg.png); font-weight: bold\">x</p>");
    accepted(
        "<h1 id=\"t\" lang=\"ja\" xml:lang=\"ja\" dir=\"ltr\">見出し</h1><p><b>b</b> <i>i</i> <em>em</em> \
         <strong>s</strong> <small>sm</small> <big>bg</big> <tt>tt</tt> <dfn>d</dfn> <q cite=\"https://e.org\">q</q> \
         <var>v</var> <abbr title=\"a\">ab</abbr> <acronym>ac</acronym> <cite>c</cite> <kbd>k</kbd> <sub>1</sub> \
         <sup>2</sup> <code>c</code> <samp>s</samp> <bdo dir=\"rtl\">b</bdo></p><hr/><address>addr</address>\
         <blockquote cite=\"https://e.org\">bq</blockquote><pre>pre</pre><br/>\
         <!-- a comment --><h2>a</h2><h3>b</h3><h4>c</h4><h5>d</h5><h6>e</h6>",
    );
    accepted(
        "<img src=\"plan.png\" usemap=\"#m\" alt=\"plan\" width=\"10\" height=\"10\"/>\
         <map name=\"m\"><area shape=\"rect\" coords=\"0,0,5,5\" href=\"#a\" alt=\"a\"/><area nohref=\"nohref\" alt=\"b\"/></map>",
    );
    accepted("<p>a &amp; b &lt;c&gt; &#x8840;&#22311;</p>");
}

#[test]
fn root_attributes_and_redundant_xhtml_declarations_are_accepted() {
    accepted("<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>");
    let d = "<div xmlns=\"http://www.w3.org/1999/xhtml\" class=\"n\" style=\"padding: 2px\">x</div>";
    assert!(check_narrative(d).is_ok());
    let d = "<div xmlns=\"http://www.w3.org/1999/xhtml\" onclick=\"alert(1)\">x</div>";
    assert!(check_narrative(d).unwrap_err().0.contains("onclick"));
}

// ---- the structure check reports narrative faults as issues in both languages ----

#[test]
fn structure_check_reports_bilingual_issue_at_the_div() {
    let patient = json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": div("<p onclick=\"steal()\">x</p>")},
    });
    let issues = check_structure(&patient);
    let issue = issues.iter().find(|i| i.location.ends_with("text.div")).expect("no issue at the narrative");
    assert_eq!(issue.severity, Severity::Error);
    assert_eq!(issue.code, IssueType::Value);
    assert_eq!(issue.location, "Patient.text.div");
    assert!(issue.message_en.contains("onclick") && issue.message_en.contains("txt-1"), "{}", issue.message_en);
    assert!(issue.message_ja.contains("onclick") && issue.message_ja.contains("txt-1"), "{}", issue.message_ja);

    let contained = json!({
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "o", "name": "n",
            "text": {"status": "generated", "div": div("")}}],
    });
    let issues = check_structure(&contained);
    assert!(issues.iter().any(|i| i.location.ends_with(".text.div") && i.message_en.contains("txt-2")), "{issues:?}");

    let fine = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div("<p>ok</p>")}});
    assert!(check_structure(&fine).is_empty());
}

// ---- internal links (resolved by the validator against the whole resource) ----

#[test]
fn internal_links_are_hyperlinks_and_images_to_fragments() {
    use tsunagu_format::{internal_links, InternalLink};
    let d = div(
        "<p><a href=\"#n1\">the <b>first</b>\n note</a> <a href=\"#\">top</a> <a href=\"http://x.org/#y\">out</a></p>\
         <p><img src=\"#pic\" alt=\"x\"/><a name=\"n1\">anchor</a><a href='#n&amp;2'/></p>",
    );
    let links = internal_links(&d);
    assert_eq!(
        links,
        vec![
            InternalLink { image: false, target: "n1".into(), text: "the first note".into() },
            InternalLink { image: true, target: "pic".into(), text: String::new() },
            InternalLink { image: false, target: "n&2".into(), text: String::new() },
        ]
    );
    assert!(internal_links(&div("<p style=\"color: #f00\">no links</p>")).is_empty());
}

#[test]
fn link_targets_are_ids_and_anchor_names() {
    let d = div("<p id=\"a\">x<a name=\"b\">y</a><span name=\"c\">z</span><td id='d'/></p>");
    let mut found = Vec::new();
    tsunagu_format::link_targets(&d, &mut |t| found.push(t.to_owned()));
    assert_eq!(found, vec!["a", "b", "d"]);
}
