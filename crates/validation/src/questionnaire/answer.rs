//! One answer against its Questionnaire item: the `value[x]` type the item type takes
//! (the `item-type` code system: boolean → valueBoolean, text → valueString, url →
//! valueUri, choice → valueCoding, …), `maxLength`, and for choice and open-choice items
//! membership in `answerOption` or `answerValueSet`.
//!
//! In R4 an answerOption may be an integer, date, time or string as well as a Coding, so
//! a choice answer may be any of those types, and must then be one of the options. An
//! open-choice item also takes free text (valueString); its Codings must still come from
//! the options or the value set, as the HL7 validator requires.

use serde_json::Value;
use tsunagu_format::{IssueType, Severity};

use super::{contained, link_id, Form};
use crate::terminology::{expand_value_set, Membership};
use crate::walk::Walk;

/// The answer types (`value[x]` without `value`) an item type takes.
fn accepted(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "boolean" => &["Boolean"],
        "decimal" => &["Decimal"],
        "integer" => &["Integer"],
        "date" => &["Date"],
        "dateTime" => &["DateTime"],
        "time" => &["Time"],
        "string" | "text" => &["String"],
        "url" => &["Uri"],
        "choice" | "open-choice" => &["Coding", "Integer", "Date", "Time", "String"],
        "attachment" => &["Attachment"],
        "reference" => &["Reference"],
        "quantity" => &["Quantity"],
        _ => return None,
    })
}

/// The `<prefix>[x]` element of `v`: its type and value.
pub(super) fn choice_value<'v>(v: &'v Value, prefix: &str) -> Option<(&'v str, &'v Value)> {
    v.as_object()?.iter().find_map(|(k, x)| k.strip_prefix(prefix).filter(|t| !t.is_empty()).map(|t| (t, x)))
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// How an answer reads in a message.
fn shown(t: &str, v: &Value) -> String {
    match (t, v) {
        ("Coding", _) => match (text(v, "system"), text(v, "code")) {
            (Some(s), Some(c)) => format!("{s}#{c}"),
            (None, Some(c)) => c,
            _ => text(v, "display").unwrap_or_default(),
        },
        (_, Value::String(s)) => s.clone(),
        _ => v.to_string(),
    }
}

impl Walk<'_, '_> {
    /// One answer (at `at`) to the Questionnaire item `d`.
    pub(super) fn check_answer(&mut self, form: &Form<'_>, d: &Value, answer: &Value, at: &str) {
        let Some((t, value)) = choice_value(answer, "value") else { return };
        let link = link_id(d).unwrap_or("");
        let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
        let loc = format!("{at}.value{t}");
        let Some(types) = accepted(ty) else { return };
        if !types.contains(&t) {
            let list: Vec<String> = types.iter().map(|t| format!("value{t}")).collect();
            let list = list.join(", ");
            self.push(
                Severity::Error,
                IssueType::Structure,
                loc,
                format!("The item '{link}' is of type {ty}: its answers are {list}, not value{t}"),
                format!("項目 '{link}' は {ty} 型のため、回答は {list} でなければなりません（value{t} ではなく）"),
            );
            return;
        }
        if let (Some(max), Some(s)) = (d.get("maxLength").and_then(Value::as_u64), value.as_str()) {
            let n = s.chars().count();
            if n as u64 > max {
                self.push(
                    Severity::Error,
                    IssueType::Value,
                    loc.clone(),
                    format!("The answer has {n} characters; the item '{link}' allows at most {max} (maxLength)"),
                    format!("回答は {n} 文字ですが、項目 '{link}' は {max} 文字まで（maxLength）です"),
                );
            }
        }
        if matches!(ty, "choice" | "open-choice") {
            self.check_choice(form, d, (t, value), &loc, ty == "open-choice");
        }
    }

    fn check_choice(&mut self, form: &Form<'_>, d: &Value, (t, value): (&str, &Value), loc: &str, open: bool) {
        let link = link_id(d).unwrap_or("");
        if open && t == "String" {
            return;
        }
        let options: Vec<(&str, &Value)> = d
            .get("answerOption")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| choice_value(o, "value"))
            .collect();
        if !options.is_empty() {
            if options.iter().any(|&(ot, ov)| ot == t && same_option(t, ov, value)) {
                return;
            }
            // Free text in an open-choice Coding (display only) is not an option.
            if open && t == "Coding" && value.get("code").is_none() {
                return;
            }
            let answer = shown(t, value);
            self.push(
                Severity::Error,
                IssueType::CodeInvalid,
                loc.to_owned(),
                format!("The answer {answer} is not one of the answerOptions of the item '{link}'"),
                format!("回答 {answer} は項目 '{link}' の answerOption のいずれでもありません"),
            );
            return;
        }
        let Some(vs) = d.get("answerValueSet").and_then(Value::as_str) else { return };
        if t != "Coding" {
            self.push(
                Severity::Warning,
                IssueType::CodeInvalid,
                loc.to_owned(),
                format!("The item '{link}' takes its answers from the value set {vs}: a valueCoding, not value{t}"),
                format!("項目 '{link}' の回答は値セット {vs} の valueCoding です（value{t} ではなく）"),
            );
            return;
        }
        self.check_answer_value_set(form, vs, value, loc, link);
    }

    fn check_answer_value_set(&mut self, form: &Form<'_>, vs: &str, coding: &Value, loc: &str, link: &str) {
        // A Coding without a code (display only) has nothing to look up.
        let Some(code) = coding.get("code").and_then(Value::as_str) else { return };
        let system = coding.get("system").and_then(Value::as_str);
        let v = self.v;
        let membership = match vs.strip_prefix('#') {
            Some(id) => form
                .containers
                .iter()
                .find_map(|c| contained(c, id, "ValueSet"))
                .map(|set| expand_value_set(&v.packages, set, vs).member(system, code)),
            None => {
                let local = v.terminology.expand(&v.packages, vs).map(|e| e.member(system, code));
                let asked = v.service_membership(vs, system, code, local.unwrap_or(Membership::Unknown));
                local.map(|_| asked).or((asked != Membership::Unknown).then_some(asked))
            }
        };
        let answer = shown("Coding", coding);
        let (severity, en, ja) = match membership {
            Some(Membership::In) => return,
            Some(Membership::NotIn) => (
                Severity::Error,
                format!("The answer {answer} is not in the value set {vs} of the item '{link}'"),
                format!("回答 {answer} は項目 '{link}' の値セット {vs} に含まれていません"),
            ),
            Some(Membership::Unknown) => (
                Severity::Warning,
                format!("The answer {answer} could not be checked against the value set {vs} of the item '{link}': its code system is not available"),
                format!("回答 {answer} を項目 '{link}' の値セット {vs} と照合できません（コードシステムが利用できません）"),
            ),
            None => (
                Severity::Warning,
                format!("The value set {vs} of the item '{link}' is not available, so the answer {answer} was not checked"),
                format!("項目 '{link}' の値セット {vs} が利用できないため、回答 {answer} を検証していません"),
            ),
        };
        self.push(severity, IssueType::CodeInvalid, loc.to_owned(), en, ja);
    }
}

/// Whether an answer is the option `o` (both of type `t`): Codings by system and code (an
/// option without a system matches by code), other values as written.
fn same_option(t: &str, o: &Value, answer: &Value) -> bool {
    if t != "Coding" {
        return o == answer;
    }
    let code = text(o, "code");
    code.is_some()
        && code == text(answer, "code")
        && (text(o, "system").is_none() || text(o, "system") == text(answer, "system"))
}
