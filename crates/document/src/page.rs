//! The HTML5 page around the document: head (charset, language, a Content-Security-Policy
//! that forbids scripts and every external load, inline print CSS), the document header
//! (title, type, date, status, events, encounter), the patient, the authors, custodian and
//! attesters, the sections, and a footer naming the Bundle.

use std::borrow::Cow;

use serde_json::Value;

use crate::codes;
use crate::cx::Cx;
use crate::escape::Html;
use crate::fields::Fields;
use crate::parties::party;
use crate::patient;
use crate::resolve::{str_at, Res};
use crate::sections::sections;
use crate::values;

const VERSION_EXT: &str = "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber";

/// Readable on screen, plain on paper (A4, no backgrounds, sections not split across
/// pages where avoidable). Fonts are named, never fetched.
const CSS: &str = "\
:root{color-scheme:light}\
body{font-family:\"Hiragino Kaku Gothic ProN\",\"Noto Sans JP\",\"Yu Gothic\",Meiryo,sans-serif;line-height:1.6;color:#111;background:#fff;margin:0}\
main{max-width:60rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.6rem;margin:0 0 .25rem;border-bottom:3px double #333}\
h2{font-size:1.25rem;border-bottom:1px solid #666;margin:1.5rem 0 .5rem}\
h3{font-size:1.1rem;margin:1rem 0 .4rem}h4,h5,h6{font-size:1rem;margin:.8rem 0 .3rem}\
section.doc-section section.doc-section{margin-left:1rem}\
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.3rem 0}\
dl.fields dt{font-weight:bold;color:#333}dl.fields dd{margin:0;white-space:pre-wrap}\
.parties{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:.5rem 1.5rem}\
.party{margin:.3rem 0}.party-name{font-weight:bold;margin:0}.kana{font-weight:normal;font-size:.9em}\
.entry{border-left:3px solid #999;padding:.2rem .6rem;margin:.5rem 0}\
.entry-title{margin:0;font-weight:bold}.kind{font-weight:normal;font-size:.85em;color:#444;border:1px solid #999;padding:0 .3em;margin-right:.3em}\
table{border-collapse:collapse;margin:.5rem 0;width:100%}th,td{border:1px solid #888;padding:.2rem .4rem;text-align:left;vertical-align:top}\
th{background:#eee}tr.sub td:first-child{padding-left:1.5rem}\
.narrative{margin:.3rem 0 .6rem}.plain,.note{white-space:pre-wrap}.note{font-size:.9em;color:#333}\
.warning,.unresolved small,.too-deep{color:#7a4b00}.absent{color:#555;font-style:italic}\
footer{margin-top:2rem;border-top:1px solid #999;font-size:.85em;color:#444}\
@page{size:A4;margin:15mm}\
@media print{body{font-size:10.5pt}main{max-width:none;padding:0}th{background:none}\
a{color:inherit;text-decoration:none}h2,h3,h4{break-after:avoid}.entry,tr,.party{break-inside:avoid}}";

/// The whole page for `composition`, the first entry of `bundle`.
pub(crate) fn page<'a>(cx: &Cx<'a>, bundle: &'a Value, composition: Res<'a>, size_hint: usize) -> String {
    let t = cx.t;
    let mut h = Html::with_capacity(size_hint);
    let title = composition
        .str("title")
        .map(Cow::Borrowed)
        .or_else(|| composition.get("type").and_then(values::concept))
        .unwrap_or(Cow::Borrowed(t.untitled_document));

    h.raw("<!DOCTYPE html>\n<html lang=\"");
    h.raw(cx.lang.code());
    h.raw("\"><head><meta charset=\"utf-8\">");
    // Defence in depth: even if markup slipped through, a browser would run no script and
    // fetch nothing.
    h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">");
    h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\"><title>");
    h.text(&title);
    h.raw("</title><style>");
    h.raw(CSS);
    h.raw("</style></head><body><main class=\"document\">");

    header(&mut h, cx, composition, &title);
    patient::subject(&mut h, cx, composition);
    parties(&mut h, cx, composition);
    if let Some(list) = composition.get("section").and_then(Value::as_array) {
        sections(&mut h, cx, composition, list, 1);
    }
    footer(&mut h, cx, bundle);

    h.raw("</main></body></html>\n");
    h.into_string()
}

fn header<'a>(h: &mut Html, cx: &Cx<'a>, c: Res<'a>, title: &str) {
    let (t, lang) = (cx.t, cx.lang);
    h.raw("<header><h1>");
    h.text(title);
    h.raw("</h1>");
    let mut f = Fields::new(h);
    f.row(t.doc_type, c.get("type").and_then(values::concept));
    f.row(t.category, values::concepts(c.get("category")));
    f.row(t.date, c.str("date").map(|d| values::date(d, lang)));
    f.row(t.status, values::code(c.get("status"), codes::COMPOSITION_STATUS, lang));
    f.row(t.doc_id, c.get("identifier").and_then(|i| str_at(i, "value")));
    let version = c
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| str_at(e, "url") == Some(VERSION_EXT));
    f.row(t.version, version.and_then(|e| str_at(e, "valueString")));
    for event in c.get("event").and_then(Value::as_array).into_iter().flatten() {
        let what = values::concepts(event.get("code"));
        let when = event.get("period").and_then(|p| values::period(p, lang));
        let words = match (what, when) {
            (Some(a), Some(b)) => Some(format!("{a}　{b}")),
            (a, b) => a.or(b),
        };
        f.row(t.event, words);
    }
    if let Some(reference) = c.get("encounter") {
        let found = cx.index.resolve(c, reference);
        let mut words = cx.reference_text(c, reference).into_owned();
        if let Some(period) = found.and_then(|e| e.get("period")).and_then(|p| values::period(p, lang)) {
            words.push('　');
            words.push_str(&period);
        }
        f.row(t.encounter, Some(words));
    }
    drop(f);
    h.raw("</header>");
}

/// Authors, custodian and attesters side by side.
fn parties<'a>(h: &mut Html, cx: &Cx<'a>, c: Res<'a>) {
    let t = cx.t;
    let authors = c.get("author").and_then(Value::as_array).filter(|a| !a.is_empty());
    let custodian = c.get("custodian");
    let attesters = c.get("attester").and_then(Value::as_array).filter(|a| !a.is_empty());
    if authors.is_none() && custodian.is_none() && attesters.is_none() {
        return;
    }
    h.raw("<section class=\"parties\">");
    if let Some(list) = authors {
        h.raw("<div><h2>");
        h.text(t.authors);
        h.raw("</h2>");
        for a in list {
            party(h, cx, c, a);
        }
        h.raw("</div>");
    }
    if let Some(reference) = custodian {
        h.raw("<div><h2>");
        h.text(t.custodian);
        h.raw("</h2>");
        party(h, cx, c, reference);
        h.raw("</div>");
    }
    if let Some(list) = attesters {
        h.raw("<div><h2>");
        h.text(t.attesters);
        h.raw("</h2>");
        for a in list {
            h.raw("<div class=\"attester\"><p>");
            let mode = values::code(a.get("mode"), codes::ATTEST_MODE, cx.lang);
            let time = str_at(a, "time").map(|d| values::date(d, cx.lang));
            h.text(&values::join([mode, time].into_iter().flatten()).unwrap_or_default());
            h.raw("</p>");
            if let Some(p) = a.get("party") {
                party(h, cx, c, p);
            }
            h.raw("</div>");
        }
        h.raw("</div>");
    }
    h.raw("</section>");
}

fn footer(h: &mut Html, cx: &Cx<'_>, bundle: &Value) {
    let t = cx.t;
    h.raw("<footer>");
    let mut f = Fields::new(h);
    f.row(t.bundle_id, bundle.get("identifier").and_then(|i| str_at(i, "value")));
    f.row(t.timestamp, str_at(bundle, "timestamp").map(|d| values::date(d, cx.lang)));
    drop(f);
    h.raw("<p>");
    h.text(t.generated);
    h.raw("</p></footer>");
}
