//! A QuestionnaireResponse against the Questionnaire it names (questionnaireresponse.html,
//! questionnaire.html), as the HL7 validator checks it: finding the Questionnaire
//! (contained `#id`, the Bundle being validated, or loaded conformance content), every
//! item's `linkId` at its place in the Questionnaire's hierarchy and in its order, `text`,
//! `repeats`, `required`, group and display items, and `enableWhen` (`enable_when.rs`);
//! answer types, `maxLength`, `answerOption` and `answerValueSet` are in `answer.rs`.
//!
//! The Questionnaire's own invariants (que-*) and the response's (qrs-*) are FHIRPath
//! constraints of their core definitions, checked by the walk like any other.

mod answer;
mod enable_when;

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};
use tsunagu_package::ConformanceKind;

use crate::walk::Walk;

/// The Questionnaire a response is checked against, indexed once.
struct Form<'f> {
    q: &'f Value,
    /// Where `#id` references made by the Questionnaire (answerValueSet) look: the
    /// Questionnaire, then the response that contains it.
    containers: Vec<&'f Value>,
    /// The response: enableWhen questions outside every common group are looked up in it.
    response: &'f Value,
    /// How a missing required item or answer is reported; `None`: not at all.
    missing: Option<Severity>,
    /// Every item by `linkId` (the first in document order), and each nested item's parent.
    by_link: FxHashMap<&'f str, &'f Value>,
    parent: FxHashMap<*const Value, &'f Value>,
}

/// A Questionnaire item and the response item answering it: the way down to the items
/// being checked, for enableWhen.
type Stack<'f> = Vec<(&'f Value, &'f Value)>;

impl<'f> Form<'f> {
    fn new(q: &'f Value, containers: Vec<&'f Value>, response: &'f Value) -> Self {
        // questionnaire.html (item.required): "the item must be present in a 'completed'
        // QuestionnaireResponse". The HL7 validator warns for an incomplete response.
        let missing = match response.get("status").and_then(Value::as_str) {
            Some("completed" | "amended") => Some(Severity::Error),
            Some("entered-in-error") => None,
            _ => Some(Severity::Warning),
        };
        let mut form =
            Form { q, containers, response, missing, by_link: FxHashMap::default(), parent: FxHashMap::default() };
        form.index(q, None);
        form
    }

    fn index(&mut self, holder: &'f Value, parent: Option<&'f Value>) {
        for item in items(holder) {
            if let Some(link) = link_id(item) {
                self.by_link.entry(link).or_insert(item);
            }
            if let Some(p) = parent {
                self.parent.insert(item as *const Value, p);
            }
            self.index(item, Some(item));
        }
    }
}

fn items(v: &Value) -> &[Value] {
    v.get("item").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn link_id(v: &Value) -> Option<&str> {
    v.get("linkId").and_then(Value::as_str)
}

fn flag(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool) == Some(true)
}

/// A contained resource of `holder` by id and type.
fn contained<'f>(holder: &'f Value, id: &str, rt: &str) -> Option<&'f Value> {
    holder.get("contained").and_then(Value::as_array)?.iter().find(|r| {
        r.get("id").and_then(Value::as_str) == Some(id) && r.get("resourceType").and_then(Value::as_str) == Some(rt)
    })
}

/// Whether a resource's `url` (with `|version` when `canonical` has one) is `canonical`.
fn has_canonical(r: &Value, canonical: &str) -> bool {
    let url = r.get("url").and_then(Value::as_str);
    match canonical.split_once('|') {
        Some((u, v)) => url == Some(u) && r.get("version").and_then(Value::as_str) == Some(v),
        None => url == Some(canonical),
    }
}

impl<'a> Walk<'_, 'a> {
    /// Checks a QuestionnaireResponse (`qr`, at `node`) against its Questionnaire.
    pub(crate) fn check_questionnaire_response(&mut self, node: Node<'a>, qr: &'a Value, rt: &str) {
        if rt != "QuestionnaireResponse" {
            return;
        }
        let Some(canonical) = qr.get("questionnaire").and_then(Value::as_str) else { return };
        let at = self.location(&node);
        if let Some(id) = canonical.strip_prefix('#') {
            match contained(qr, id, "Questionnaire") {
                Some(q) => self.check_against(&Form::new(q, vec![q, qr], qr), &at),
                None => self.push(
                    Severity::Error,
                    IssueType::Required,
                    format!("{at}.questionnaire"),
                    format!("The Questionnaire {canonical} is not contained in this response"),
                    format!("Questionnaire {canonical} がこの回答に contained されていません"),
                ),
            }
            return;
        }
        let in_bundle = (self.root.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
            .then(|| {
                self.root.get("entry").and_then(Value::as_array)?.iter().filter_map(|e| e.get("resource")).find(|r| {
                    r.get("resourceType").and_then(Value::as_str) == Some("Questionnaire")
                        && has_canonical(r, canonical)
                })
            })
            .flatten();
        if let Some(q) = in_bundle {
            self.check_against(&Form::new(q, vec![q], qr), &at);
            return;
        }
        let packages = &self.v.packages;
        let Some(q) = packages.resolve(ConformanceKind::Questionnaire, canonical).cloned() else {
            // The HL7 validator's default (questionnaire mode "check"): a warning, and the
            // answers go unchecked.
            self.push(
                Severity::Warning,
                IssueType::Required,
                format!("{at}.questionnaire"),
                format!("The Questionnaire {canonical} could not be found, so the answers were not checked against it"),
                format!("Questionnaire {canonical} が見つからないため、回答をその定義と照合していません"),
            );
            return;
        };
        self.check_against(&Form::new(&q, vec![&q], qr), &at);
    }

    fn check_against(&mut self, form: &Form<'_>, at: &str) {
        let mut stack = Vec::new();
        self.check_items(form, items(form.q), items(form.response), at, &mut stack, Some(true));
    }

    /// The response items `answered` (held at `at`) against the Questionnaire items
    /// `defined` at the same place; `enabled` is the holder's state (`None`: unknown).
    fn check_items<'f>(
        &mut self,
        form: &Form<'f>,
        defined: &'f [Value],
        answered: &'f [Value],
        at: &str,
        stack: &mut Stack<'f>,
        enabled: Option<bool>,
    ) {
        // Response items by the index of the Questionnaire item they answer.
        let mut occurrences: Vec<Vec<(usize, &'f Value)>> = vec![Vec::new(); defined.len()];
        let mut last = 0;
        for (i, item) in answered.iter().enumerate() {
            // A missing linkId is a base cardinality error already.
            let Some(link) = link_id(item) else { continue };
            let loc = format!("{at}.item[{i}]");
            let Some(k) = defined.iter().position(|d| link_id(d) == Some(link)) else {
                let (en, ja) = if form.by_link.contains_key(link) {
                    (
                        format!("The item '{link}' is in the wrong place: the Questionnaire defines it elsewhere"),
                        format!("項目 '{link}' の位置が誤っています（Questionnaire では別の場所に定義されています）"),
                    )
                } else {
                    (
                        format!("The Questionnaire has no item with linkId '{link}'"),
                        format!("Questionnaire に linkId '{link}' の項目がありません"),
                    )
                };
                self.push(Severity::Error, IssueType::Structure, loc, en, ja);
                continue;
            };
            if k < last {
                self.push(
                    Severity::Error,
                    IssueType::Structure,
                    loc.clone(),
                    format!("The item '{link}' is out of order: items follow the order of the Questionnaire"),
                    format!("項目 '{link}' の順序が Questionnaire の順序と異なります"),
                );
            }
            last = k;
            // An item with neither answers nor items is as if absent (as the HL7 validator
            // treats it, for required items and enableWhen alike).
            let has = |k: &str| item.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            if has("answer") || has("item") {
                occurrences[k].push((i, item));
            }
        }
        for (d, found) in defined.iter().zip(&occurrences) {
            let link = link_id(d).unwrap_or("");
            let own = enable_when::enabled(form, d, stack);
            let on = match (enabled, own) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            if found.is_empty() {
                if on == Some(true) && flag(d, "required") {
                    self.report_missing(form, at.to_owned(), link, false);
                }
                continue;
            }
            if own == Some(false) && enabled != Some(false) {
                for (i, _) in found {
                    self.push(
                        Severity::Error,
                        IssueType::Invalid,
                        format!("{at}.item[{i}]"),
                        format!("The item '{link}' is not enabled (its enableWhen conditions are not met), so it must not be answered"),
                        format!("項目 '{link}' は有効ではない（enableWhen の条件を満たさない）ため、回答できません"),
                    );
                }
            }
            if found.len() > 1 && !flag(d, "repeats") {
                let second = found[1].0;
                self.push(
                    Severity::Error,
                    IssueType::Structure,
                    format!("{at}.item[{second}]"),
                    format!("The item '{link}' does not repeat, but appears {} times", found.len()),
                    format!("項目 '{link}' は繰り返せませんが、{} 回現れています", found.len()),
                );
            }
            for &(i, item) in found {
                self.check_item(form, d, item, &format!("{at}.item[{i}]"), stack, on);
            }
        }
    }

    /// One response item (at `loc`) against its Questionnaire item `d`.
    fn check_item<'f>(
        &mut self,
        form: &Form<'f>,
        d: &'f Value,
        item: &'f Value,
        loc: &str,
        stack: &mut Stack<'f>,
        on: Option<bool>,
    ) {
        let link = link_id(d).unwrap_or("");
        if let (Some(text), Some(defined)) = (item.get("text").and_then(Value::as_str), d.get("text")) {
            if Some(text) != defined.as_str() {
                self.push(
                    Severity::Warning,
                    IssueType::Value,
                    format!("{loc}.text"),
                    format!("The text of item '{link}' differs from the Questionnaire's ({defined})"),
                    format!("項目 '{link}' の text が Questionnaire の text（{defined}）と異なります"),
                );
            }
        }
        let answers = item.get("answer").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let nested = items(item);
        let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
        if matches!(ty, "group" | "display") && !answers.is_empty() {
            self.push(
                Severity::Error,
                IssueType::Structure,
                format!("{loc}.answer"),
                format!("The item '{link}' is a {ty} item, which has no answers"),
                format!("項目 '{link}' は {ty} 型のため、回答を持てません"),
            );
        }
        match ty {
            "group" => {
                stack.push((d, item));
                self.check_items(form, items(d), nested, loc, stack, on);
                stack.pop();
            }
            "display" if !nested.is_empty() => self.push(
                Severity::Error,
                IssueType::Structure,
                format!("{loc}.item"),
                format!("The item '{link}' is a display item, which has no nested items"),
                format!("項目 '{link}' は display 型のため、入れ子の項目を持てません"),
            ),
            "display" => {}
            _ => {
                if !nested.is_empty() {
                    self.push(
                        Severity::Error,
                        IssueType::Structure,
                        format!("{loc}.item"),
                        format!("The item '{link}' is a question: its nested items belong under its answers"),
                        format!("項目 '{link}' は質問のため、入れ子の項目は answer の下に置きます"),
                    );
                }
                if answers.is_empty() && on == Some(true) && flag(d, "required") {
                    self.report_missing(form, loc.to_owned(), link, true);
                }
                if answers.len() > 1 && !flag(d, "repeats") {
                    self.push(
                        Severity::Error,
                        IssueType::Structure,
                        format!("{loc}.answer[1]"),
                        format!("The item '{link}' does not repeat, but has {} answers", answers.len()),
                        format!("項目 '{link}' は繰り返せませんが、回答が {} 個あります", answers.len()),
                    );
                }
                for (j, answer) in answers.iter().enumerate() {
                    let at = format!("{loc}.answer[{j}]");
                    self.check_answer(form, d, answer, &at);
                    if answer.get("item").is_some() {
                        stack.push((d, item));
                        self.check_items(form, items(d), items(answer), &at, stack, on);
                        stack.pop();
                    }
                }
            }
        }
    }

    /// A required item that is absent (or a question of it without an answer).
    fn report_missing(&mut self, form: &Form<'_>, loc: String, link: &str, unanswered: bool) {
        let Some(severity) = form.missing else { return };
        let (en, ja) = if unanswered {
            (format!("The required item '{link}' has no answer"), format!("必須項目 '{link}' に回答がありません"))
        } else {
            (format!("The required item '{link}' is missing"), format!("必須項目 '{link}' がありません"))
        };
        self.push(severity, IssueType::Required, loc, en, ja);
    }
}
