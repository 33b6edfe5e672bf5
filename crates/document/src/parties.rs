//! People and organisations: the patient's names, authors, custodian, attesters and the
//! referral source and destination that JP-CLINS puts in sections.
//!
//! JP Core writes a Japanese name twice, as two HumanNames told apart by the extension
//! `iso21090-EN-representation`: `IDE` (漢字) and `SYL` (カナ). Both are shown, kanji first.

use std::borrow::Cow;

use serde_json::Value;

use crate::cx::Cx;
use crate::escape::Html;
use crate::fields::Fields;
use crate::resolve::{str_at, Res};
use crate::values;

const REPRESENTATION: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
/// 保険医療機関番号 (10 digits): the 医療機関コード of JP Core organisations.
const INSTITUTION_NO: &str = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
const DEPARTMENT_EXT: &str = "http://jpfhir.jp/fhir/eCS/Extension/StructureDefinition/JP_eCS_Department";

/// The names of a person, sorted by JP Core's representation.
#[derive(Default)]
pub(crate) struct Names<'a> {
    pub kanji: Option<Cow<'a, str>>,
    pub kana: Option<Cow<'a, str>>,
    /// The first name with neither representation (e.g. romaji, or a plain HumanName).
    pub other: Option<Cow<'a, str>>,
}

impl<'a> Names<'a> {
    /// The name to call the person by: kanji, else any other, else kana.
    pub(crate) fn preferred(self) -> Option<Cow<'a, str>> {
        self.kanji.or(self.other).or(self.kana)
    }
}

pub(crate) fn names(resource: &Value) -> Names<'_> {
    let mut out = Names::default();
    for name in resource.get("name").and_then(Value::as_array).into_iter().flatten() {
        let repr = name
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|e| str_at(e, "url") == Some(REPRESENTATION))
            .and_then(|e| str_at(e, "valueCode"));
        let slot = match repr {
            Some("IDE") => &mut out.kanji,
            Some("SYL") => &mut out.kana,
            _ => &mut out.other,
        };
        if slot.is_none() {
            *slot = values::human_name(name);
        }
    }
    out
}

/// One author, custodian, attester or section party: a short block naming who it is.
pub(crate) fn party<'a>(h: &mut Html, cx: &Cx<'a>, from: Res<'a>, reference: &'a Value) {
    match cx.index.resolve(from, reference) {
        Some(res) => resolved(h, cx, res),
        None => unresolved(h, cx, reference),
    }
}

/// A reference that names nothing in the document, shown as the text it carries.
pub(crate) fn unresolved(h: &mut Html, cx: &Cx<'_>, reference: &Value) {
    h.raw("<span class=\"unresolved\">");
    h.text(&crate::cx::unresolved_text(reference));
    h.raw(" <small>");
    h.text(cx.t.unresolved);
    h.raw("</small></span>");
}

/// A person or organisation found in the document.
pub(crate) fn resolved<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let t = cx.t;
    let v = res.value;
    h.raw("<div class=\"party\">");
    match res.kind() {
        "Organization" => {
            h.raw("<p class=\"party-name\">");
            h.text(res.str("name").unwrap_or("—"));
            h.raw("</p>");
            let mut f = Fields::new(h);
            f.row(t.institution_code, identifier(v, INSTITUTION_NO));
            f.row(t.department, department(v));
            contact(&mut f, cx, v);
        }
        "PractitionerRole" => {
            let practitioner = v.get("practitioner").and_then(|p| cx.index.resolve(res, p));
            let organization = v.get("organization").and_then(|o| cx.index.resolve(res, o));
            match practitioner.filter(|p| p.kind() == "Practitioner") {
                Some(p) => person_name(h, p.value),
                None => {
                    h.raw("<p class=\"party-name\">");
                    h.text(&cx.summary(res).unwrap_or(Cow::Borrowed("—")));
                    h.raw("</p>");
                }
            }
            let mut f = Fields::new(h);
            f.row(t.role, v.get("code").and_then(|c| values::concepts(Some(c))));
            f.row(t.department, v.get("specialty").and_then(|c| values::concepts(Some(c))));
            if let Some(org) = organization.filter(|o| o.kind() == "Organization") {
                f.row(t.organization, org.str("name"));
                f.row(t.institution_code, identifier(org.value, INSTITUTION_NO));
            }
            contact(&mut f, cx, v);
        }
        "Practitioner" | "Patient" | "RelatedPerson" | "Person" => {
            person_name(h, v);
            let mut f = Fields::new(h);
            contact(&mut f, cx, v);
        }
        kind => {
            h.raw("<p class=\"party-name\">");
            match cx.summary(res) {
                Some(s) => h.text(&s),
                None => {
                    h.text(kind);
                    h.raw(" ");
                    h.text(res.str("id").unwrap_or(""));
                }
            }
            h.raw("</p>");
        }
    }
    h.raw("</div>");
}

/// `漢字名（カナ名）` as the block's heading line.
fn person_name(h: &mut Html, v: &Value) {
    let n = names(v);
    h.raw("<p class=\"party-name\">");
    match (n.kanji.or(n.other), n.kana) {
        (Some(main), Some(kana)) => {
            h.text(&main);
            h.raw(" <span class=\"kana\">（");
            h.text(&kana);
            h.raw("）</span>");
        }
        (Some(main), None) | (None, Some(main)) => h.text(&main),
        (None, None) => h.raw("—"),
    }
    h.raw("</p>");
}

fn contact(f: &mut Fields<'_>, cx: &Cx<'_>, v: &Value) {
    f.row(cx.t.address, address(v));
    f.row(cx.t.phone, phone(v));
}

/// The value of the first identifier with `system`.
pub(crate) fn identifier<'a>(v: &'a Value, system: &str) -> Option<&'a str> {
    v.get("identifier")?
        .as_array()?
        .iter()
        .find(|i| str_at(i, "system") == Some(system))
        .and_then(|i| str_at(i, "value"))
}

fn department(v: &Value) -> Option<Cow<'_, str>> {
    v.get("extension")?
        .as_array()?
        .iter()
        .find(|e| str_at(e, "url") == Some(DEPARTMENT_EXT))
        .and_then(|e| e.get("valueCodeableConcept"))
        .and_then(values::concept)
}

/// The first address: its text, else its parts in Japanese order.
pub(crate) fn address(v: &Value) -> Option<Cow<'_, str>> {
    let a = v.get("address")?.as_array()?.first()?;
    if let Some(text) = str_at(a, "text") {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::new();
    for part in ["postalCode", "state", "city", "district"].iter().filter_map(|k| str_at(a, k)) {
        out.push_str(part);
        out.push(' ');
    }
    for line in a.get("line").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        out.push_str(line);
        out.push(' ');
    }
    let out = out.trim_end();
    (!out.is_empty()).then(|| Cow::Owned(out.to_owned()))
}

/// The first phone number.
pub(crate) fn phone(v: &Value) -> Option<&str> {
    v.get("telecom")?.as_array()?.iter().find(|t| str_at(t, "system") == Some("phone")).and_then(|t| str_at(t, "value"))
}
