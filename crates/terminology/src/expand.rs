//! ValueSet operations: `$expand` (text filter, paging, active-only, display language),
//! `$validate-code`, and the membership questions the validator and search ask.
//!
//! The text filter rule: the filter and each concept's code, display and designations
//! are folded with `tsunagu_text::normalize` (NFKC, lower case, accents, katakana →
//! hiragana); the filter is split at white space and a concept matches when every word
//! is a substring of one of its folded names. So `ｲﾝﾌﾙ`, `インフル` and `いんふる` all find
//! 「インフルエンザ」.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::code_system_operations::display_check;
use crate::error::{ResourceKind, Result, TerminologyError};
use crate::parameters::{single, Parameters};
use crate::service::Terminology;
use crate::value_set::{self, Expansion};

/// Which value set to expand: a canonical (`url` or `url|version`) or a ValueSet resource
/// supplied with the request.
#[derive(Debug, Clone, Copy)]
pub enum ValueSetSource<'a> {
    Canonical(&'a str),
    Inline(&'a Value),
}

/// The `$expand` parameters this server understands.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpandParams<'a> {
    pub filter: Option<&'a str>,
    /// Page size; without it an expansion over the limit is refused as too costly.
    pub count: Option<usize>,
    pub offset: usize,
    pub active_only: bool,
    /// Prefer designations in this language (`ja` matches `ja-JP`) as `display`.
    pub display_language: Option<&'a str>,
}

/// Whether a code is in a value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    In,
    NotIn,
    /// The value set, or a code system it needs, is not loaded (or only in part): a
    /// binding that cannot be checked, which callers report as a warning at most.
    Unknown,
}

impl Terminology {
    /// `ValueSet/$expand`: a ValueSet with `expansion` (timestamp, total, offset, the
    /// parameters used, `used-codesystem`s and `contains`).
    pub fn expand(&self, source: ValueSetSource<'_>, params: &ExpandParams<'_>) -> Result<Value> {
        let (resource, expansion) = self.resolve_expansion(source)?;
        let label = resource.get("url").and_then(Value::as_str).unwrap_or("(inline ValueSet)");
        if let Some(system) = expansion.missing_systems.first() {
            return Err(TerminologyError::not_found(ResourceKind::CodeSystem, system));
        }
        if let Some(vs) = expansion.missing_value_sets.first() {
            return Err(TerminologyError::not_found(ResourceKind::ValueSet, vs));
        }
        let words: Vec<String> = params
            .filter
            .map(|f| tsunagu_text::normalize(f).split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let matching: Vec<u32> = (0..expansion.entries.len() as u32)
            .filter(|&i| {
                let e = &expansion.entries[i as usize];
                if params.active_only && expansion.inactive(e) {
                    return false;
                }
                let text = expansion.search_text(e);
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .collect();
        let total = matching.len();
        if params.count.is_none() && total > self.expansion_limit() {
            return Err(self.too_large(label, total));
        }
        let page = matching.iter().skip(params.offset).take(params.count.unwrap_or(usize::MAX));
        let contains: Vec<Value> = page.map(|&i| contains_entry(&expansion, i, params.display_language)).collect();
        Ok(expanded_value_set(&resource, &expansion, params, total, contains))
    }

    /// `ValueSet/$validate-code`. `result` is false for a code outside the value set, and
    /// also when membership cannot be decided (the message then says which code system or
    /// value set is missing). A wrong `display` gives false as in
    /// [`Terminology::validate_code_in_system`].
    pub fn validate_code_in_value_set(
        &self,
        value_set: &str,
        system: Option<&str>,
        code: &str,
        display: Option<&str>,
    ) -> Result<Value> {
        let expansion = self
            .expansion_in(value_set, &mut Vec::new())?
            .ok_or_else(|| TerminologyError::not_found(ResourceKind::ValueSet, value_set))?;
        let mut out = Parameters::default();
        let shown = match system {
            Some(s) => format!("{s}#{code}"),
            None => code.to_owned(),
        };
        let Some(entry) = expansion.find(system, code) else {
            let message = if expansion.is_open_for(system) {
                let missing = expansion
                    .missing_systems
                    .iter()
                    .chain(&expansion.missing_value_sets)
                    .chain(&expansion.incomplete_systems)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("Cannot decide whether '{shown}' is in value set {value_set}: {missing} not loaded in full")
            } else {
                format!("The code '{shown}' is not in value set {value_set}")
            };
            out.value("result", "valueBoolean", false).value("message", "valueString", message);
            return Ok(out.build());
        };
        let expected = expansion.display(entry, None);
        let names = expected.into_iter().chain(expansion.designations(entry).iter().map(|d| &*d.value));
        match display_check(display, expected, names) {
            Ok(()) => out.value("result", "valueBoolean", true),
            Err(message) => out.value("result", "valueBoolean", false).value("message", "valueString", message),
        };
        if let Some(d) = expected {
            out.value("display", "valueString", d);
        }
        Ok(out.build())
    }

    /// Whether `code` (from `system`, or from any system when the element has no system,
    /// as with a bare `code` binding) is in the value set.
    pub fn membership(&self, value_set: &str, system: Option<&str>, code: &str) -> Membership {
        match self.expansion_in(value_set, &mut Vec::new()) {
            Ok(Some(e)) if e.contains(system, code) => Membership::In,
            Ok(Some(e)) if !e.is_open_for(system) => Membership::NotIn,
            _ => Membership::Unknown,
        }
    }

    /// Every `(system, code)` of a value set, for token `:in` / `:not-in`. Refused as too
    /// costly past the expansion limit, as an unpaged `$expand` would be.
    pub fn expand_codes(&self, value_set: &str) -> Result<Vec<(String, String)>> {
        let (_, expansion) = self.resolve_expansion(ValueSetSource::Canonical(value_set))?;
        if let Some(system) = expansion.missing_systems.first() {
            return Err(TerminologyError::not_found(ResourceKind::CodeSystem, system));
        }
        if let Some(vs) = expansion.missing_value_sets.first() {
            return Err(TerminologyError::not_found(ResourceKind::ValueSet, vs));
        }
        if expansion.entries.len() > self.expansion_limit() {
            return Err(self.too_large(value_set, expansion.entries.len()));
        }
        Ok(expansion
            .entries
            .iter()
            .map(|e| (expansion.systems[e.system as usize].url.clone(), expansion.code(e).to_owned()))
            .collect())
    }

    fn resolve_expansion(&self, source: ValueSetSource<'_>) -> Result<(Arc<Value>, Arc<Expansion>)> {
        match source {
            ValueSetSource::Canonical(url) => {
                let resource = self
                    .resource(ResourceKind::ValueSet, url, None)
                    .ok_or_else(|| TerminologyError::not_found(ResourceKind::ValueSet, url))?;
                let expansion = self
                    .expansion_in(url, &mut Vec::new())?
                    .ok_or_else(|| TerminologyError::not_found(ResourceKind::ValueSet, url))?;
                Ok((resource, expansion))
            }
            ValueSetSource::Inline(vs) => {
                if vs.get("resourceType").and_then(Value::as_str) != Some("ValueSet") {
                    return Err(TerminologyError::Invalid("the valueSet parameter must be a ValueSet".into()));
                }
                let expansion = value_set::evaluate(self, vs, &mut Vec::new())?;
                Ok((Arc::new(vs.clone()), Arc::new(expansion)))
            }
        }
    }
}

fn contains_entry(expansion: &Expansion, i: u32, language: Option<&str>) -> Value {
    let e = &expansion.entries[i as usize];
    let system = &expansion.systems[e.system as usize];
    let mut m = Map::new();
    m.insert("system".into(), system.url.as_str().into());
    if let Some(v) = &system.version {
        m.insert("version".into(), v.as_str().into());
    }
    if expansion.not_selectable(e) {
        m.insert("abstract".into(), true.into());
    }
    if expansion.inactive(e) {
        m.insert("inactive".into(), true.into());
    }
    m.insert("code".into(), expansion.code(e).into());
    if let Some(d) = expansion.display(e, language) {
        m.insert("display".into(), d.into());
    }
    Value::Object(m)
}

fn expanded_value_set(
    resource: &Value,
    expansion: &Expansion,
    params: &ExpandParams<'_>,
    total: usize,
    contains: Vec<Value>,
) -> Value {
    let mut vs = Map::new();
    vs.insert("resourceType".into(), "ValueSet".into());
    for key in ["id", "url", "version", "name", "title", "status"] {
        if let Some(v) = resource.get(key) {
            vs.insert(key.into(), v.clone());
        }
    }
    vs.entry("status").or_insert_with(|| "active".into());
    let mut parameter = Vec::new();
    if let Some(f) = params.filter {
        parameter.push(single("filter", "valueString", f));
    }
    if let Some(c) = params.count {
        parameter.push(single("count", "valueInteger", c));
    }
    if params.offset > 0 {
        parameter.push(single("offset", "valueInteger", params.offset));
    }
    if params.active_only {
        parameter.push(single("activeOnly", "valueBoolean", true));
    }
    if let Some(l) = params.display_language {
        parameter.push(single("displayLanguage", "valueCode", l));
    }
    for s in &expansion.systems {
        let uri = match &s.version {
            Some(v) => format!("{}|{v}", s.url),
            None => s.url.clone(),
        };
        parameter.push(single("used-codesystem", "valueUri", uri));
    }
    let mut exp = Map::new();
    exp.insert("timestamp".into(), now_timestamp().into());
    exp.insert("total".into(), total.into());
    exp.insert("offset".into(), params.offset.into());
    if !parameter.is_empty() {
        exp.insert("parameter".into(), parameter.into());
    }
    if !contains.is_empty() {
        exp.insert("contains".into(), contains.into());
    }
    vs.insert("expansion".into(), Value::Object(exp));
    Value::Object(vs)
}

/// Now as a FHIR dateTime in UTC, to the second.
fn now_timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
