//! Prescriptions (処方): the medicine, then each dosage instruction — its text as the
//! prescriber wrote it, the timing (JP Core's 用法 code, or the repeat rule), dose, route —
//! and what is dispensed. MedicationStatement shares the layout (its `dosage` is the same
//! type).

use std::borrow::Cow;

use serde_json::Value;

use crate::codes::{self, TIME_UNIT};
use crate::cx::Cx;
use crate::entries::{close, open};
use crate::escape::Html;
use crate::fields::Fields;
use crate::labels::Lang;
use crate::resolve::{str_at, Res};
use crate::values;

pub(crate) fn medication_request<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let t = cx.t;
    let lang = cx.lang;
    open(h, "medication", t.medication, cx.medication(res).as_deref());
    let mut f = Fields::new(h);
    let dosages = res.get("dosageInstruction").or_else(|| res.get("dosage")).and_then(Value::as_array);
    for d in dosages.into_iter().flatten() {
        f.row(t.dosage, str_at(d, "text"));
        if let Some(timing) = d.get("timing") {
            f.row(
                t.timing,
                timing.get("code").and_then(values::concept).map(Cow::into_owned).or_else(|| repeat(timing, lang)),
            );
            f.row(t.duration, timing.get("repeat").and_then(|r| r.get("boundsDuration")).and_then(values::quantity));
        }
        for dr in d.get("doseAndRate").and_then(Value::as_array).into_iter().flatten() {
            f.row(
                t.dose,
                dr.get("doseQuantity")
                    .and_then(values::quantity)
                    .or_else(|| dr.get("doseRange").and_then(values::range)),
            );
        }
        f.row(t.route, d.get("route").and_then(values::concept));
        match (d.get("asNeededBoolean").and_then(Value::as_bool), d.get("asNeededCodeableConcept")) {
            (_, Some(c)) => f.row(t.as_needed, values::concept(c)),
            (Some(true), None) => f.row(t.as_needed, Some(t.yes)),
            _ => {}
        }
    }
    if let Some(dispense) = res.get("dispenseRequest") {
        f.row(t.dispense, dispense.get("quantity").and_then(values::quantity));
        f.row(t.duration, dispense.get("expectedSupplyDuration").and_then(values::quantity));
    }
    f.row(t.authored, res.str("authoredOn").map(|d| values::date(d, lang)));
    f.row(t.status, values::code(res.get("status"), codes::STATUS, lang));
    f.row(t.note, values::notes(res.get("note")));
    drop(f);
    close(h);
}

/// `Timing.repeat` in words: `1日3回` / `3 times per 1 day`.
fn repeat(timing: &Value, lang: Lang) -> Option<String> {
    let r = timing.get("repeat")?;
    let frequency = r.get("frequency").and_then(values::number)?;
    let period = r.get("period").and_then(values::number).unwrap_or_else(|| "1".to_owned());
    let unit = str_at(r, "periodUnit")?;
    let unit_word = codes::word(TIME_UNIT, unit, lang).unwrap_or(unit);
    Some(match lang {
        Lang::Ja if period == "1" => format!("1{unit_word}{frequency}回"),
        Lang::Ja => format!("{period}{unit_word}ごとに{frequency}回"),
        Lang::En => format!("{frequency} time(s) per {period} {unit_word}(s)"),
    })
}
