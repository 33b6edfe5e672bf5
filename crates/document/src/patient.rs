//! The patient block at the top of the page: who the document is about, as a Japanese
//! reader expects to check it — kanji and kana names, date of birth, sex, patient ID and
//! insurance numbers.

use serde_json::Value;

use crate::codes;
use crate::cx::Cx;
use crate::escape::Html;
use crate::fields::Fields;
use crate::parties::{self, names};
use crate::resolve::{str_at, Res};
use crate::values;

/// JP Core's patient-ID system: this prefix, then `1` and the 10-digit 医療機関コード.
const PATIENT_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.";
/// JP-CLINS insurance member: `保険者番号:記号:番号:枝番`.
const INSURANCE_MEMBER: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
const PUBLIC_PAYER_MEMBER: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_PublicPayer_memberID";

/// The Composition's subject. A subject that is not a Patient (a Group, a Device) is shown
/// as any other party.
pub(crate) fn subject<'a>(h: &mut Html, cx: &Cx<'a>, composition: Res<'a>) {
    let t = cx.t;
    let Some(reference) = composition.get("subject") else { return };
    h.raw("<section class=\"patient\"><h2>");
    h.text(t.patient);
    h.raw("</h2>");
    match cx.index.resolve(composition, reference) {
        Some(p) if p.kind() == "Patient" => patient(h, cx, p.value),
        Some(other) => parties::resolved(h, cx, other),
        None => parties::unresolved(h, cx, reference),
    }
    h.raw("</section>");
}

fn patient(h: &mut Html, cx: &Cx<'_>, p: &Value) {
    let t = cx.t;
    let n = names(p);
    let mut f = Fields::new(h);
    f.row(t.name, n.kanji.or(n.other));
    f.row(t.kana, n.kana);
    f.row(t.birth_date, str_at(p, "birthDate").map(|d| values::date(d, cx.lang)));
    f.row(t.sex, values::code(p.get("gender"), codes::GENDER, cx.lang));
    for id in p.get("identifier").and_then(Value::as_array).into_iter().flatten() {
        let Some(value) = str_at(id, "value") else { continue };
        let system = str_at(id, "system").unwrap_or("");
        if let Some(rest) = system.strip_prefix(PATIENT_ID_PREFIX) {
            // The system names the institution that issued the ID; show it beside the ID.
            let institution = rest.strip_prefix('1').filter(|c| c.len() == 10);
            f.row_with(t.patient_id, |h| {
                h.text(value);
                if let Some(code) = institution {
                    h.raw(" <small>（");
                    h.text(t.institution_code);
                    h.raw(" ");
                    h.text(code);
                    h.raw("）</small>");
                }
            });
        } else if system == INSURANCE_MEMBER {
            f.row(t.insurance_member, Some(member(value, cx)));
        } else if system == PUBLIC_PAYER_MEMBER {
            f.row(t.public_payer, Some(member(value, cx)));
        } else {
            f.row(t.identifier, Some(value));
        }
    }
    f.row(t.address, parties::address(p));
    f.row(t.phone, parties::phone(p));
}

/// `00012345:あいう:１８７:05` spelled out as 保険者番号, 記号, 番号, 枝番; any other shape as written.
fn member(value: &str, cx: &Cx<'_>) -> String {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return value.to_owned();
    }
    let t = cx.t;
    let names = [t.insurer_no, t.symbol, t.number, t.branch];
    let mut out = String::new();
    for (label, part) in names.iter().zip(&parts) {
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('　');
        }
        out.push_str(label);
        out.push(' ');
        out.push_str(part);
    }
    out
}
