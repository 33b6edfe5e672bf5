//! `Patient/$summary`: one person's current JP-CLINS items from every institution the
//! caller may see, as a document Bundle shaped like the JP-CLINS patient summary
//! (Composition first, type 56447-6, one section per item kind).
//!
//! The person is found by identifier (`?identifier=system|value`) or by one of their
//! Patient resources; their items are those tagged with any of the person's keys (see
//! `sharing.rs`), found through ordinary searches, so the caller's scopes, the sharing
//! rules and consent apply exactly as they do to a search.

use serde_json::{json, Map, Value};

use super::sharing::{person_keys, INSURANCE_SYSTEM, PERSON_SYSTEM, PUBLIC_PAYER_SYSTEM};
use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::{Interactions, RequestContext};

const SECTION_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/document-section";
const INFECTION_CS: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_InfectionLabo_CS";

/// The sections, in order: code, title, the type of their items.
const SECTIONS: [(&str, &str, &str); 5] = [
    ("340", "傷病名・主訴セクション", "Condition"),
    ("510", "アレルギー・不耐性反応セクション", "AllergyIntolerance"),
    ("520", "感染症情報セクション", "Observation"),
    ("620", "検査結果セクション", "Observation"),
    ("430", "投薬指示セクション", "MedicationRequest"),
];

/// Items one summary holds at most per type (the first page of a search).
const MAX_PER_TYPE: usize = 1000;

/// Whom a summary is for.
pub enum SummaryOf<'a> {
    /// `system|value`.
    Identifier(&'a str),
    Patient(&'a str),
}

impl Interactions {
    pub fn patient_summary(&self, of: SummaryOf<'_>, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let mut patients = Vec::new();
        let mut keys = match of {
            SummaryOf::Identifier(token) => {
                let (system, value) = token.split_once('|').ok_or_else(|| {
                    InteractionError::bad_request(
                        "identifier must be system|value",
                        "identifier は system|value の形で指定してください",
                    )
                })?;
                if system == INSURANCE_SYSTEM || system == PUBLIC_PAYER_SYSTEM {
                    person_keys(&json!({ "identifier": [{ "system": system, "value": value }] }))
                } else {
                    patients = self.found("Patient", vec![("identifier".into(), token.to_string())], ctx)?.0;
                    patients.iter().flat_map(person_keys).collect()
                }
            }
            SummaryOf::Patient(id) => {
                let v = self.read("Patient", id, ctx)?;
                let p: Value = serde_json::from_slice(&v.body)
                    .map_err(|_| InteractionError::NotFound("Patient".into(), id.to_string()))?;
                patients.push(p);
                person_keys(&patients[0])
            }
        };
        keys.sort();
        keys.dedup();
        let tagged = |ty: &str| -> Result<(Vec<Value>, bool), InteractionError> {
            if keys.is_empty() {
                return Ok((Vec::new(), true));
            }
            let any = keys
                .iter()
                .map(|k| format!("{PERSON_SYSTEM}|{}", super::escape_search_value(k)))
                .collect::<Vec<_>>()
                .join(",");
            self.found(ty, vec![("_tag".into(), any)], ctx)
        };
        if !keys.is_empty() {
            patients.extend(tagged("Patient")?.0);
        }
        let mut seen = std::collections::HashSet::new();
        patients.retain(|p| seen.insert(p.get("id").cloned()));
        if patients.is_empty() {
            return Err(InteractionError::NotFound("Patient".into(), "$summary".into()));
        }
        // The newest Patient resource is the subject.
        patients.sort_by(|a, b| last_updated(b).cmp(last_updated(a)));
        let mut sections: Vec<Section> = Vec::new();
        let (observations, observations_complete) = tagged("Observation")?;
        let (infections, labs): (Vec<Value>, Vec<Value>) = observations.into_iter().partition(|o| self.is_infection(o));
        let (mut infections, mut labs) = (Some(infections), Some(labs));
        for (code, title, ty) in SECTIONS {
            let (items, complete) = match (code, ty) {
                ("520", _) => (infections.take().unwrap_or_default(), observations_complete),
                ("620", _) => (labs.take().unwrap_or_default(), observations_complete),
                _ => tagged(ty)?,
            };
            sections.push(Section { code, title, items, complete });
        }
        Ok(document(&ctx.base, patients, sections))
    }

    /// The current resources of `ty` matching `pairs` that the caller may see (one page),
    /// and whether that is all of them: a page stops at [`MAX_PER_TYPE`] or at
    /// `max_page_bytes`.
    fn found(
        &self,
        ty: &str,
        mut pairs: Vec<(String, String)>,
        ctx: &RequestContext,
    ) -> Result<(Vec<Value>, bool), InteractionError> {
        pairs.push(("_count".into(), MAX_PER_TYPE.to_string()));
        let page = self.search(Some(ty), &SearchParams { pairs }, ctx)?;
        let links = page["link"].as_array().into_iter().flatten();
        let complete = !links.into_iter().any(|l| l["relation"] == "next");
        let items = page["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.pointer("/search/mode").and_then(Value::as_str) != Some("outcome"))
            .filter_map(|e| e.get("resource").cloned())
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(ty))
            .collect();
        Ok((items, complete))
    }

    /// An infection test: one of its codes is in the JP-CLINS infection-test code system.
    fn is_infection(&self, observation: &Value) -> bool {
        observation.pointer("/code/coding").and_then(Value::as_array).into_iter().flatten().any(|c| {
            let code = c.get("code").and_then(Value::as_str).unwrap_or("");
            c.get("system").and_then(Value::as_str) == Some(INFECTION_CS)
                || (!code.is_empty() && self.terminology.lookup(INFECTION_CS, code, None, &[]).is_ok())
        })
    }
}

fn last_updated(r: &Value) -> &str {
    r.pointer("/meta/lastUpdated").and_then(Value::as_str).unwrap_or("")
}

fn full_url(base: &str, r: &Value) -> String {
    let ty = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
    let id = r.get("id").and_then(Value::as_str).unwrap_or("");
    format!("{base}/{ty}/{id}")
}

/// One section of a summary: its code and title, its items, and whether they are all of
/// them.
struct Section<'a> {
    code: &'a str,
    title: &'a str,
    items: Vec<Value>,
    complete: bool,
}

/// The narrative of a section that holds only some of its items, so that no reader takes
/// it for the whole.
const INCOMPLETE_SECTION: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>このセクションは上限（1 種類あたり \
     1000 件、または応答のバイト数の上限 max_page_bytes）により一部のみです。すべての項目は検索で取得してください。\
     This section lists only some of its items: a limit (1000 per type, or max_page_bytes) was reached; search for \
     all of them.</p></div>";

fn document(base: &str, patients: Vec<Value>, sections: Vec<Section<'_>>) -> Value {
    let now = crate::instant::format_instant(chrono::Utc::now().timestamp_millis());
    let subject = full_url(base, &patients[0]);
    let mut composition_sections = Vec::new();
    let mut entries: Vec<Value> = Vec::new();
    for Section { code, title, items, complete } in &sections {
        let mut section = Map::new();
        section.insert("title".into(), json!(title));
        section
            .insert("code".into(), json!({ "coding": [{ "system": SECTION_SYSTEM, "code": code, "display": title }] }));
        if !complete {
            section.insert("text".into(), json!({ "status": "additional", "div": INCOMPLETE_SECTION }));
        }
        if items.is_empty() && *complete {
            section.insert(
                "emptyReason".into(),
                json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                    "code": "nilknown", "display": "Nil Known" }] }),
            );
        } else if !items.is_empty() {
            let refs: Vec<Value> = items.iter().map(|r| json!({ "reference": full_url(base, r) })).collect();
            section.insert("entry".into(), Value::Array(refs));
        }
        composition_sections.push(Value::Object(section));
    }
    let composition = json!({
        "resourceType": "Composition",
        "id": uuid::Uuid::new_v4().to_string(),
        "status": "final",
        "type": { "coding": [{ "system": "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes", "code": "56447-6",
                               "display": "患者サマリー" }] },
        "subject": { "reference": subject },
        "date": now,
        "author": [{ "display": "Tsunagu 電子カルテ情報共有サービス" }],
        "title": "患者サマリー",
        "section": composition_sections,
    });
    entries.push(
        json!({ "fullUrl": format!("urn:uuid:{}", composition["id"].as_str().unwrap_or("")), "resource": composition }),
    );
    for p in patients {
        entries.push(json!({ "fullUrl": full_url(base, &p), "resource": p }));
    }
    for Section { items, .. } in sections {
        for r in items {
            entries.push(json!({ "fullUrl": full_url(base, &r), "resource": r }));
        }
    }
    json!({
        "resourceType": "Bundle",
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid::Uuid::new_v4()) },
        "type": "document",
        "timestamp": now,
        "entry": entries,
    })
}
