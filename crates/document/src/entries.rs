//! A section's entries, each rendered by its type. Consecutive Observations share one table
//! (a checkup report is mostly results); everything else is a block of labelled fields. A
//! type without its own layout falls back to its type, id and (checked) narrative.

use serde_json::Value;

use crate::cx::Cx;
use crate::escape::Html;
use crate::narrative::narrative;
use crate::resolve::Res;
use crate::{clinical, medication, observation, parties};

/// One entry reference of a section, resolved or not.
enum Item<'a> {
    Found(Res<'a>),
    Missing(&'a Value),
}

/// Writes the entries of a section (`references` is `section.entry`), read from
/// `composition`.
pub(crate) fn entries<'a>(h: &mut Html, cx: &Cx<'a>, composition: Res<'a>, references: &'a [Value]) {
    let items: Vec<Item<'a>> =
        references.iter().map(|r| cx.index.resolve(composition, r).map_or(Item::Missing(r), Item::Found)).collect();
    h.raw("<div class=\"entries\">");
    let mut i = 0;
    while i < items.len() {
        match items[i] {
            Item::Found(res) if res.kind() == "Observation" => {
                let run = items[i..]
                    .iter()
                    .take_while(|it| matches!(it, Item::Found(r) if r.kind() == "Observation"))
                    .count();
                let group = items[i..i + run].iter().filter_map(|it| match it {
                    Item::Found(r) => Some(*r),
                    Item::Missing(_) => None,
                });
                observation::table(h, cx, group);
                i += run;
            }
            Item::Found(res) => {
                entry(h, cx, res);
                i += 1;
            }
            Item::Missing(reference) => {
                h.raw("<div class=\"entry missing\">");
                parties::unresolved(h, cx, reference);
                h.raw("</div>");
                i += 1;
            }
        }
    }
    h.raw("</div>");
}

/// One resource other than an Observation.
fn entry<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    match res.kind() {
        "Condition" => clinical::condition(h, cx, res),
        "AllergyIntolerance" => clinical::allergy(h, cx, res),
        "Procedure" => clinical::procedure(h, cx, res),
        "Immunization" => clinical::immunization(h, cx, res),
        "ServiceRequest" => clinical::service_request(h, cx, res),
        "CarePlan" => clinical::care_plan(h, cx, res),
        "Encounter" => clinical::encounter(h, cx, res),
        "DocumentReference" => clinical::document_reference(h, cx, res),
        "MedicationRequest" | "MedicationStatement" => medication::medication_request(h, cx, res),
        "Organization" | "Practitioner" | "PractitionerRole" | "Patient" | "RelatedPerson" => {
            parties::resolved(h, cx, res)
        }
        _ => generic(h, cx, res),
    }
}

/// Opens an entry block with its heading: `kind` (a label) and the entry's main words.
pub(crate) fn open(h: &mut Html, class: &'static str, kind: &'static str, title: Option<&str>) {
    h.raw("<div class=\"entry ");
    h.raw(class);
    h.raw("\"><p class=\"entry-title\"><span class=\"kind\">");
    h.text(kind);
    h.raw("</span> ");
    h.text(title.unwrap_or("—"));
    h.raw("</p>");
}

pub(crate) fn close(h: &mut Html) {
    h.raw("</div>");
}

/// Any other resource: what it is, and its narrative if it has one.
fn generic<'a>(h: &mut Html, cx: &Cx<'a>, res: Res<'a>) {
    let kind = res.kind();
    let summary = cx.summary(res);
    h.raw("<div class=\"entry other\"><p class=\"entry-title\"><span class=\"kind\">");
    h.text(if kind.is_empty() { cx.t.resource } else { kind });
    h.raw("</span> ");
    match (&summary, res.str("id")) {
        (Some(s), _) => h.text(s),
        (None, Some(id)) => h.text(id),
        (None, None) => h.raw("—"),
    }
    h.raw("</p>");
    if let Some(div) = res.get("text").and_then(|t| t.get("div")).and_then(Value::as_str) {
        narrative(h, div, cx.t);
    }
    close(h);
}
