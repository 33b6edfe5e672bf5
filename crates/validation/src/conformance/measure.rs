//! Measure and MeasureReport (R4 measure.html, measurereport.html), beyond mea-1 and
//! mrp-1/2:
//!
//! - a Measure's group codes are unique ("as simple as a unique identifier"), and so are
//!   the stratifier codes of a group; with several groups each should have a code (the HL7
//!   validator's warning), since reports are matched to groups by it;
//! - the populations of each group fit the measure's scoring, per the table of population
//!   types by scoring: proportion and ratio need an initial population, a numerator and a
//!   denominator, continuous-variable an initial population, a measure population and a
//!   measure observation, cohort an initial population; a population type the scoring does
//!   not permit is an error too;
//! - a MeasureReport holds "one [group] for each population group in the measure": its group
//!   codes are unique, and so are the stratifier codes of a group;
//! - when the Measure is found locally (contained, or in the same Bundle by `url` or
//!   reference), each reported group matches one of its groups by code, each of its groups
//!   is reported (unless the report is for data collection), and each reported population
//!   matches one of the group's; otherwise a warning says the report was not checked.

use serde_json::Value;
use tsunagu_format::IssueType;

use super::{items, text, unversioned};
use crate::walk::Walk;

const POPULATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-population";
const SCORING_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-scoring";

/// (scoring, required population types, permitted ones besides those).
const SCORING: &[(&str, &[&str], &[&str])] = &[
    (
        "proportion",
        &["initial-population", "numerator", "denominator"],
        &["numerator-exclusion", "denominator-exclusion", "denominator-exception"],
    ),
    (
        "ratio",
        &["initial-population", "numerator", "denominator"],
        &["numerator-exclusion", "denominator-exclusion", "measure-observation"],
    ),
    (
        "continuous-variable",
        &["initial-population", "measure-population", "measure-observation"],
        &["measure-population-exclusion"],
    ),
    ("cohort", &["initial-population"], &[]),
];

const POPULATION_TYPES: &[&str] = &[
    "initial-population",
    "numerator",
    "numerator-exclusion",
    "denominator",
    "denominator-exclusion",
    "denominator-exception",
    "measure-population",
    "measure-population-exclusion",
    "measure-observation",
];

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_measure(&mut self, m: &'a Value, loc: &str) {
        let groups: Vec<(usize, &Value)> = items(m, "group").collect();
        self.unique_codes(groups.iter().map(|(i, g)| (*i, g.get("code"))), &format!("{loc}.group"), "group");
        let scoring = m
            .get("scoring")
            .and_then(|s| s.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| text(c, "system") == Some(SCORING_SYSTEM))
            .find_map(|c| SCORING.iter().find(|s| Some(s.0) == text(c, "code")));
        for (i, g) in &groups {
            let at = format!("{loc}.group[{i}]");
            if groups.len() > 1 && g.get("code").is_none() {
                self.warning(
                    IssueType::Required,
                    at.clone(),
                    "Groups should have codes when there is more than one group".into(),
                    "グループが複数ある場合、各グループには code が必要です".into(),
                );
            }
            self.unique_codes(
                items(g, "stratifier").map(|(k, s)| (k, s.get("code"))),
                &format!("{at}.stratifier"),
                "stratifier",
            );
            if let Some(scoring) = scoring {
                self.check_scoring_populations(g, scoring, &at);
            }
        }
    }

    fn check_scoring_populations(
        &mut self,
        g: &Value,
        (scoring, required, optional): &(&str, &[&str], &[&str]),
        at: &str,
    ) {
        let mut present = Vec::new();
        let mut all_coded = true;
        for (k, p) in items(g, "population") {
            let ty = population_type(p);
            match ty {
                Some(ty) => {
                    present.push(ty);
                    if !required.contains(&ty) && !optional.contains(&ty) {
                        self.error(
                            IssueType::Invalid,
                            format!("{at}.population[{k}].code"),
                            format!("A {scoring} measure does not permit the population type {ty}"),
                            format!("スコアリングが {scoring} のメジャーには母集団タイプ {ty} を使えません"),
                        );
                    }
                }
                None => all_coded = false,
            }
        }
        // A population whose type cannot be told may be the missing one.
        if !all_coded || items(g, "population").next().is_none() {
            return;
        }
        for need in required.iter() {
            if !present.contains(need) {
                self.error(
                    IssueType::Required,
                    at.to_owned(),
                    format!("A {scoring} measure needs a {need} population in each group"),
                    format!("スコアリングが {scoring} のメジャーでは、各グループに {need} の母集団が必要です"),
                );
            }
        }
    }

    pub(crate) fn check_measure_report(&mut self, mr: &'a Value, loc: &str) {
        let groups: Vec<(usize, &Value)> = items(mr, "group").collect();
        self.unique_codes(groups.iter().map(|(i, g)| (*i, g.get("code"))), &format!("{loc}.group"), "group");
        for (i, g) in &groups {
            let at = format!("{loc}.group[{i}].stratifier");
            self.unique_codes(items(g, "stratifier").map(|(k, s)| (k, s.get("code"))), &at, "stratifier");
        }
        let Some(canonical) = text(mr, "measure") else { return };
        let Some(measure) = self.local_measure(mr, canonical) else {
            self.warning(
                IssueType::Invalid,
                format!("{loc}.measure"),
                format!(
                    "The Measure '{canonical}' could not be found locally, so the report was not checked against it"
                ),
                format!("Measure '{canonical}' がローカルに見つからないため、レポートをメジャーと照合していません"),
            );
            return;
        };
        let measure_groups: Vec<&Value> = items(measure, "group").map(|(_, g)| g).collect();
        if groups.len() == 1 && measure_groups.len() == 1 {
            let (g, mg) = (groups[0].1, measure_groups[0]);
            if let (Some(c), Some(mc)) = (g.get("code"), mg.get("code")) {
                if !same_code(c, mc) {
                    self.error(
                        IssueType::Invalid,
                        format!("{loc}.group[0].code"),
                        format!("The group code does not match the code of the group in the Measure {canonical}"),
                        format!("グループの code が Measure {canonical} のグループの code と一致しません"),
                    );
                }
            }
            self.check_report_populations(g, mg, &format!("{loc}.group[0]"));
            return;
        }
        let mut reported = vec![false; measure_groups.len()];
        for (i, g) in &groups {
            let at = format!("{loc}.group[{i}]");
            let Some(code) = g.get("code") else {
                self.error(
                    IssueType::Required,
                    at,
                    "Group should have a code that matches the group definition in the measure".into(),
                    "グループにはメジャーのグループ定義と一致する code が必要です".into(),
                );
                continue;
            };
            let hit = measure_groups.iter().position(|mg| mg.get("code").is_some_and(|mc| same_code(code, mc)));
            match hit {
                Some(k) => {
                    reported[k] = true;
                    self.check_report_populations(g, measure_groups[k], &at);
                }
                None => self.error(
                    IssueType::Invalid,
                    format!("{at}.code"),
                    format!("The code for this group has no match in the Measure {canonical}"),
                    format!("このグループの code に一致するグループが Measure {canonical} にありません"),
                ),
            }
        }
        if text(mr, "type") == Some("data-collection") {
            return;
        }
        for (k, mg) in measure_groups.iter().enumerate() {
            if !reported[k] {
                let shown = mg.get("code").map(code_text).unwrap_or_default();
                self.error(
                    IssueType::Required,
                    loc.to_owned(),
                    format!("The MeasureReport does not include a group for the group '{shown}' of the Measure"),
                    format!("MeasureReport にメジャーのグループ '{shown}' の結果がありません"),
                );
            }
        }
    }

    fn check_report_populations(&mut self, g: &Value, mg: &Value, at: &str) {
        let defined: Vec<&Value> = items(mg, "population").filter_map(|(_, p)| p.get("code")).collect();
        if defined.is_empty() {
            return;
        }
        for (k, p) in items(g, "population") {
            let Some(code) = p.get("code") else { continue };
            if !defined.iter().any(|d| same_code(code, d)) {
                self.error(
                    IssueType::Invalid,
                    format!("{at}.population[{k}].code"),
                    "The code for this group population has no match in the measure definition".into(),
                    "この母集団の code に一致する母集団がメジャーの定義にありません".into(),
                );
            }
        }
    }

    /// The Measure a report names, when it is inside the resource or its Bundle.
    fn local_measure(&self, mr: &'a Value, canonical: &str) -> Option<&'a Value> {
        let is_measure = |r: &&Value| text(r, "resourceType") == Some("Measure");
        if let Some(r) = self.resolver.find(canonical).filter(is_measure) {
            return Some(r);
        }
        let url = unversioned(canonical);
        let by_url = |r: &&Value| is_measure(r) && text(r, "url") == Some(url);
        let contained = items(mr, "contained").map(|(_, r)| r).find(by_url);
        let entries = items(self.root, "entry").filter_map(|(_, e)| e.get("resource")).find(by_url);
        contained.or(entries)
    }

    /// Reports each code (CodeableConcept, or a list of them) equal to an earlier one.
    fn unique_codes<'v>(&mut self, codes: impl Iterator<Item = (usize, Option<&'v Value>)>, at: &str, what: &str) {
        let mut earlier: Vec<&Value> = Vec::new();
        for (i, code) in codes {
            let Some(code) = code else { continue };
            if earlier.iter().any(|e| same_code(e, code)) {
                let shown = code_text(code);
                self.error(
                    IssueType::Invalid,
                    format!("{at}[{i}].code"),
                    format!("The {what} code '{shown}' is used by another {what}; codes must be unique"),
                    format!(
                        "{what} の code '{shown}' が別の {what} でも使われています。code は一意でなければなりません"
                    ),
                );
            }
            earlier.push(code);
        }
    }
}

/// The measure-population type of a population, if coded with that system.
fn population_type(p: &Value) -> Option<&'static str> {
    let codings = p.get("code")?.get("coding")?.as_array()?;
    codings.iter().find_map(|c| {
        let code = text(c, "code")?;
        (text(c, "system").is_none_or(|s| s == POPULATION_SYSTEM)).then_some(())?;
        POPULATION_TYPES.iter().copied().find(|t| *t == code)
    })
}

/// Two codes (CodeableConcepts, or lists of them as in MeasureReport stratifiers) mean the
/// same: a shared coding (system and code), or no codings and the same text.
fn same_code(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_code(a, b)),
        (Value::Array(_), _) | (_, Value::Array(_)) => false,
        _ => {
            let codings = |v: &Value| -> Vec<(Option<String>, String)> {
                items(v, "coding")
                    .filter_map(|(_, c)| Some((text(c, "system").map(str::to_owned), text(c, "code")?.to_owned())))
                    .collect()
            };
            let (ca, cb) = (codings(a), codings(b));
            if ca.is_empty() && cb.is_empty() {
                return text(a, "text").is_some() && text(a, "text") == text(b, "text");
            }
            ca.iter().any(|c| cb.contains(c))
        }
    }
}

/// A code as shown in messages: its first coding's code, or its text.
fn code_text(code: &Value) -> String {
    match code {
        Value::Array(list) => list.iter().map(code_text).collect::<Vec<_>>().join(", "),
        _ => items(code, "coding")
            .find_map(|(_, c)| text(c, "code"))
            .or_else(|| text(code, "text"))
            .unwrap_or("")
            .to_owned(),
    }
}
