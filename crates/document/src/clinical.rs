//! Clinical resources other than results and prescriptions, each as a block: its main
//! words (diagnosis, substance, procedure, vaccine, plan…) as the heading, then the fields a
//! clinician reads next. Status codes are translated (see [`crate::codes`]); free text is
//! shown as written.

use std::borrow::Cow;

use serde_json::Value;

use crate::codes;
use crate::cx::Cx;
use crate::entries::{close, open};
use crate::escape::Html;
use crate::fields::Fields;
use crate::resolve::{str_at, Res};
use crate::values;

fn code_of<'a>(res: Res<'a>, key: &str) -> Option<Cow<'a, str>> {
    res.get(key).and_then(values::concept)
}

pub(crate) fn condition<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    open(h, "condition", t.condition, code_of(res, "code").as_deref());
    let mut f = Fields::new(h);
    f.row(
        t.clinical_status,
        res.get("clinicalStatus").and_then(|c| values::coded_concept(c, codes::CONDITION_CLINICAL, lang)),
    );
    f.row(
        t.verification,
        res.get("verificationStatus").and_then(|c| values::coded_concept(c, codes::CONDITION_VERIFICATION, lang)),
    );
    f.row(t.onset, values::choice(cx, res, "onset"));
    f.row(t.abatement, values::choice(cx, res, "abatement"));
    f.row(t.body_site, values::concepts(res.get("bodySite")));
    f.row(t.recorded, res.str("recordedDate").map(|d| values::date(d, lang)));
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn allergy<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    open(h, "allergy", t.allergen, code_of(res, "code").as_deref());
    let mut f = Fields::new(h);
    let categories = res.get("category").and_then(Value::as_array).into_iter().flatten();
    f.row(
        t.allergy_category,
        values::join(categories.filter_map(|c| values::code(Some(c), codes::ALLERGY_CATEGORY, lang))),
    );
    f.row(t.criticality, values::code(res.get("criticality"), codes::CRITICALITY, lang));
    f.row(
        t.clinical_status,
        res.get("clinicalStatus").and_then(|c| values::coded_concept(c, codes::ALLERGY_CLINICAL, lang)),
    );
    f.row(
        t.verification,
        res.get("verificationStatus").and_then(|c| values::coded_concept(c, codes::CONDITION_VERIFICATION, lang)),
    );
    f.row(t.onset, values::choice(cx, res, "onset"));
    for reaction in res.get("reaction").and_then(Value::as_array).into_iter().flatten() {
        let mut words = values::concepts(reaction.get("manifestation")).unwrap_or_default();
        for extra in [
            str_at(reaction, "description").map(Cow::Borrowed),
            values::code(reaction.get("severity"), codes::SEVERITY, lang),
        ]
        .into_iter()
        .flatten()
        {
            if !words.is_empty() {
                words.push('／');
            }
            words.push_str(&extra);
        }
        f.row(t.reaction, Some(words));
    }
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn procedure<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    open(h, "procedure", t.procedure, code_of(res, "code").as_deref());
    let mut f = Fields::new(h);
    f.row(t.status, values::code(res.get("status"), codes::STATUS, lang));
    f.row(t.performed, values::choice(cx, res, "performed"));
    f.row(t.body_site, values::concepts(res.get("bodySite")));
    f.row(t.reason, values::concepts(res.get("reasonCode")));
    f.row(t.outcome, code_of(res, "outcome"));
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn immunization<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    open(h, "immunization", t.vaccine, code_of(res, "vaccineCode").as_deref());
    let mut f = Fields::new(h);
    f.row(t.occurrence, values::choice(cx, res, "occurrence"));
    f.row(t.status, values::code(res.get("status"), codes::STATUS, lang));
    f.row(t.lot, res.str("lotNumber"));
    f.row(t.dose, res.get("doseQuantity").and_then(values::quantity));
    f.row(t.body_site, code_of(res, "site"));
    f.row(t.route, code_of(res, "route"));
    for protocol in res.get("protocolApplied").and_then(Value::as_array).into_iter().flatten() {
        f.row(t.dose_number, values::choice(cx, Res { value: protocol, ..res }, "doseNumber"));
    }
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn service_request<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    open(h, "request", t.request, code_of(res, "code").as_deref());
    let mut f = Fields::new(h);
    f.row(t.intent, values::code(res.get("intent"), codes::STATUS, lang));
    f.row(t.status, values::code(res.get("status"), codes::STATUS, lang));
    f.row(t.priority, values::code(res.get("priority"), codes::STATUS, lang));
    f.row(t.effective, values::choice(cx, res, "occurrence"));
    f.row(t.reason, values::concepts(res.get("reasonCode")));
    f.row(t.instruction, res.str("patientInstruction"));
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn care_plan<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    let title = res.str("title").map(Cow::Borrowed).or_else(|| values::concepts(res.get("category")).map(Cow::Owned));
    open(h, "careplan", t.activity, title.as_deref());
    let mut f = Fields::new(h);
    f.row(t.description, res.str("description"));
    f.row(t.status, values::code(res.get("status"), codes::STATUS, lang));
    f.row(t.period, res.get("period").and_then(|p| values::period(p, lang)));
    for activity in res.get("activity").and_then(Value::as_array).into_iter().flatten() {
        let words = match (activity.get("detail"), activity.get("reference")) {
            (Some(detail), _) => detail
                .get("code")
                .and_then(values::concept)
                .or_else(|| str_at(detail, "description").map(Cow::Borrowed)),
            (None, Some(reference)) => Some(cx.reference_text(res, reference)),
            (None, None) => None,
        };
        f.row(t.activity, words);
    }
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

pub(crate) fn encounter<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    let class = res.get("class").and_then(|c| {
        str_at(c, "code")
            .and_then(|code| codes::word(codes::ENCOUNTER_CLASS, code, lang))
            .map(Cow::Borrowed)
            .or_else(|| values::coding(c))
    });
    open(h, "encounter", t.class, class.as_deref());
    let mut f = Fields::new(h);
    f.row(t.period, res.get("period").and_then(|p| values::period(p, lang)));
    f.row(t.category, values::concepts(res.get("type")));
    f.row(t.reason, values::concepts(res.get("reasonCode")));
    if let Some(provider) = res.get("serviceProvider") {
        f.row(t.organization, Some(cx.reference_text(res, provider)));
    }
    drop(f);
    close(h);
}

/// A document referred to, described but never linked or inlined: its data may be anything
/// (a `data:` URL, a script), and the page loads nothing.
pub(crate) fn document_reference<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let (t, lang) = (cx.t, cx.lang);
    let title = res.str("description").map(Cow::Borrowed).or_else(|| code_of(res, "type"));
    open(h, "document", t.referenced_document, title.as_deref());
    let mut f = Fields::new(h);
    f.row(t.doc_type, code_of(res, "type"));
    f.row(t.date, res.str("date").map(|d| values::date(d, lang)));
    for content in res.get("content").and_then(Value::as_array).into_iter().flatten() {
        let Some(a) = content.get("attachment") else { continue };
        let words = match (str_at(a, "title"), str_at(a, "contentType")) {
            (Some(title), Some(kind)) => Some(Cow::Owned(format!("{title}（{kind}）"))),
            (Some(title), None) => Some(Cow::Borrowed(title)),
            (None, Some(kind)) => Some(Cow::Borrowed(kind)),
            (None, None) => None,
        };
        f.row(t.attachment, words);
    }
    drop(f);
    close(h);
}
