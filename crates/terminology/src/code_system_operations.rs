//! CodeSystem operations: `$lookup`, `$validate-code`, `$subsumes`, and the hierarchy
//! walks that token `:below` / `:above` searches need.

use serde_json::Value;

use crate::code_system::CodeSystemIndex;
use crate::error::{Result, TerminologyError};
use crate::parameters::{designation_parts, single, Parameters};
use crate::service::Terminology;

/// The `outcome` of `$subsumes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsumption {
    Equivalent,
    Subsumes,
    SubsumedBy,
    NotSubsumed,
}

impl Subsumption {
    pub fn as_code(self) -> &'static str {
        match self {
            Subsumption::Equivalent => "equivalent",
            Subsumption::Subsumes => "subsumes",
            Subsumption::SubsumedBy => "subsumed-by",
            Subsumption::NotSubsumed => "not-subsumed",
        }
    }
}

impl Terminology {
    /// `CodeSystem/$lookup`: `name`, `version`, `display`, then `designation` and
    /// `property` parameters. With no `properties` asked for, every designation and
    /// property is returned, plus `parent` and `child` from the hierarchy; otherwise only
    /// the named ones (`designation`, `definition`, `parent`, `child` or a property code).
    pub fn lookup(&self, system: &str, code: &str, version: Option<&str>, properties: &[&str]) -> Result<Value> {
        let cs = self.require_code_system(system, version)?;
        let at = find(&cs, code)?;
        let c = cs.concept(at);
        let wants = |p: &str| properties.is_empty() || properties.contains(&p);
        let mut out = Parameters::default();
        out.value("name", "valueString", cs.name.as_deref().or(cs.title.as_deref()).unwrap_or(&cs.url));
        if let Some(v) = &cs.version {
            out.value("version", "valueString", v.as_str());
        }
        out.value("display", "valueString", c.display.as_deref().unwrap_or(&c.code));
        if let (Some(def), true) = (&c.definition, wants("definition")) {
            out.parts(
                "property",
                vec![single("code", "valueCode", "definition"), single("value", "valueString", &**def)],
            );
        }
        if wants("designation") {
            for d in c.designations.iter() {
                out.parts("designation", designation_parts(d));
            }
        }
        for p in c.properties.iter().filter(|p| wants(&p.code)) {
            out.parts(
                "property",
                vec![single("code", "valueCode", &*p.code), single("value", &p.key, p.value.clone())],
            );
        }
        for (name, linked) in [("parent", &c.parents), ("child", &c.children)] {
            // An explicit parent/child property was already echoed above.
            if !wants(name) || c.properties.iter().any(|p| &*p.code == name) {
                continue;
            }
            for &j in linked.iter() {
                let other = cs.concept(j);
                let mut parts = vec![single("code", "valueCode", name), single("value", "valueCode", &*other.code)];
                if let Some(d) = &other.display {
                    parts.push(single("description", "valueString", &**d));
                }
                out.parts("property", parts);
            }
        }
        Ok(out.build())
    }

    /// `CodeSystem/$validate-code`. A code absent from the system gives `result` false. A
    /// `display` that is neither the concept's display nor one of its designations also
    /// gives `result` false (the spec's "concept details supplied are valid"), with the
    /// expected display returned; displays are compared after `tsunagu_text::normalize`,
    /// so width, case and katakana/hiragana differences are accepted.
    pub fn validate_code_in_system(
        &self,
        system: &str,
        code: &str,
        version: Option<&str>,
        display: Option<&str>,
    ) -> Result<Value> {
        let cs = self.require_code_system(system, version)?;
        let mut out = Parameters::default();
        let Some(at) = cs.find(code) else {
            let mut message = format!("Unknown code '{code}' in code system {}", cs.url);
            if !cs.is_complete() {
                message.push_str(&format!(" (the loaded code system is only a {})", cs.content));
            }
            out.value("result", "valueBoolean", false).value("message", "valueString", message);
            return Ok(out.build());
        };
        let c = cs.concept(at);
        let names = c.display.iter().map(|d| &**d).chain(c.designations.iter().map(|d| &*d.value));
        match display_check(display, c.display.as_deref(), names) {
            Ok(()) => out.value("result", "valueBoolean", true),
            Err(message) => out.value("result", "valueBoolean", false).value("message", "valueString", message),
        };
        if let Some(d) = &c.display {
            out.value("display", "valueString", &**d);
        }
        if c.inactive {
            out.value("inactive", "valueBoolean", true);
        }
        Ok(out.build())
    }

    /// `CodeSystem/$subsumes` between two codes of one system.
    pub fn subsumes(&self, system: &str, code_a: &str, code_b: &str, version: Option<&str>) -> Result<Value> {
        let outcome = self.subsumption(system, code_a, code_b, version)?;
        Ok(Parameters::default().value("outcome", "valueCode", outcome.as_code()).build())
    }

    /// The relation of `code_a` to `code_b`, as a Rust value.
    pub fn subsumption(&self, system: &str, code_a: &str, code_b: &str, version: Option<&str>) -> Result<Subsumption> {
        let cs = self.require_code_system(system, version)?;
        let (a, b) = (find(&cs, code_a)?, find(&cs, code_b)?);
        Ok(if a == b {
            Subsumption::Equivalent
        } else if cs.subsumes(a, b) {
            Subsumption::Subsumes
        } else if cs.subsumes(b, a) {
            Subsumption::SubsumedBy
        } else {
            Subsumption::NotSubsumed
        })
    }

    /// Codes below `code` (not including it) for token `:below`. Empty when the system or
    /// the code is not loaded: the caller then matches the code alone.
    pub fn descendants(&self, system: &str, code: &str) -> Vec<String> {
        self.walk(system, code, CodeSystemIndex::descendants)
    }

    /// Codes above `code` (not including it), nearest first, for token `:above`.
    pub fn ancestors(&self, system: &str, code: &str) -> Vec<String> {
        self.walk(system, code, CodeSystemIndex::ancestors)
    }

    fn walk(&self, system: &str, code: &str, step: fn(&CodeSystemIndex, u32) -> Vec<u32>) -> Vec<String> {
        let Some(cs) = self.code_system_index(system, None) else { return Vec::new() };
        let Some(at) = cs.find(code) else { return Vec::new() };
        step(&cs, at).into_iter().map(|i| cs.concept(i).code.to_string()).collect()
    }
}

fn find(cs: &CodeSystemIndex, code: &str) -> Result<u32> {
    cs.find(code).ok_or_else(|| TerminologyError::UnknownCode { system: cs.url.clone(), code: code.to_owned() })
}

/// `Err(message)` when a supplied display matches none of `names` (after folding).
pub(crate) fn display_check<'a>(
    supplied: Option<&str>,
    expected: Option<&str>,
    mut names: impl Iterator<Item = &'a str>,
) -> std::result::Result<(), String> {
    let Some(supplied) = supplied else { return Ok(()) };
    let folded = tsunagu_text::normalize(supplied);
    if names.any(|n| tsunagu_text::normalize(n) == folded) {
        return Ok(());
    }
    Err(match expected {
        Some(e) => format!("Display '{supplied}' is not a valid display for this code; expected '{e}'"),
        None => format!("Display '{supplied}' is not a valid display for this code, which has no display"),
    })
}
