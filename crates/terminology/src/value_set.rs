//! ValueSet `compose` evaluated into an [`Expansion`]: the full, unfiltered list of codes
//! that the `$expand` operation pages and filters, and that membership checks probe.
//!
//! Evaluation is lenient so that membership can answer *unknown*: a code system that is
//! needed but not loaded, or an imported value set that is missing, is recorded rather
//! than failing; `$expand` turns those records into errors.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use crate::code_system::{designation_from, designation_in, fold_names, CodeSystemIndex, Designation};
use crate::error::{Result, TerminologyError};
use crate::filter;
use crate::service::Terminology;

/// A code system an expansion draws from.
pub(crate) struct ExpansionSystem {
    pub url: String,
    pub version: Option<String>,
    pub index: Option<Arc<CodeSystemIndex>>,
}

/// A concept spelled out in the value set itself (or taken from a pre-computed
/// expansion), not found in a loaded code system.
#[derive(Clone)]
pub(crate) struct ListedConcept {
    code: Box<str>,
    display: Option<Box<str>>,
    designations: Box<[Designation]>,
    text: Box<str>,
    inactive: bool,
    not_selectable: bool,
}

impl ListedConcept {
    fn new(code: &str, display: Option<&str>, designations: Box<[Designation]>) -> Self {
        let text = fold_names(code, display, designations.iter().map(|d| &*d.value)).into_boxed_str();
        ListedConcept {
            code: code.into(),
            display: display.map(Box::from),
            designations,
            text,
            inactive: false,
            not_selectable: false,
        }
    }
}

#[derive(Clone, Copy)]
enum Source {
    /// A concept of the system's index.
    Indexed(u32),
    /// An entry of `Expansion::listed`.
    Listed(u32),
}

#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub system: u32,
    source: Source,
}

enum Candidate {
    Indexed(u32),
    Listed(ListedConcept),
}

#[derive(Default)]
pub(crate) struct Expansion {
    pub systems: Vec<ExpansionSystem>,
    pub entries: Vec<Entry>,
    listed: Vec<ListedConcept>,
    /// Code → entry index per system slot, for membership and de-duplication.
    members: Vec<FxHashMap<Box<str>, u32>>,
    /// Code systems needed to enumerate content but not loaded.
    pub missing_systems: Vec<String>,
    /// Imported value sets that are not loaded.
    pub missing_value_sets: Vec<String>,
    /// Systems drawn from whole but whose CodeSystem is only a fragment or example.
    pub incomplete_systems: Vec<String>,
}

impl Expansion {
    pub fn code(&self, e: &Entry) -> &str {
        match e.source {
            Source::Indexed(i) => &self.index_of(e).concept(i).code,
            Source::Listed(j) => &self.listed[j as usize].code,
        }
    }

    pub fn display(&self, e: &Entry, language: Option<&str>) -> Option<&str> {
        match e.source {
            Source::Indexed(i) => self.index_of(e).display_in(i, language),
            Source::Listed(j) => {
                let l = &self.listed[j as usize];
                language.and_then(|lang| designation_in(&l.designations, lang)).or(l.display.as_deref())
            }
        }
    }

    pub fn designations(&self, e: &Entry) -> &[Designation] {
        match e.source {
            Source::Indexed(i) => &self.index_of(e).concept(i).designations,
            Source::Listed(j) => &self.listed[j as usize].designations,
        }
    }

    /// Folded code, display and designations (see `CodeSystemIndex::search_text`).
    pub fn search_text(&self, e: &Entry) -> &str {
        match e.source {
            Source::Indexed(i) => self.index_of(e).search_text(i),
            Source::Listed(j) => &self.listed[j as usize].text,
        }
    }

    pub fn inactive(&self, e: &Entry) -> bool {
        match e.source {
            Source::Indexed(i) => self.index_of(e).concept(i).inactive,
            Source::Listed(j) => self.listed[j as usize].inactive,
        }
    }

    pub fn not_selectable(&self, e: &Entry) -> bool {
        match e.source {
            Source::Indexed(i) => self.index_of(e).concept(i).not_selectable,
            Source::Listed(j) => self.listed[j as usize].not_selectable,
        }
    }

    fn index_of(&self, e: &Entry) -> &CodeSystemIndex {
        self.systems[e.system as usize].index.as_deref().expect("indexed entries come from an indexed system")
    }

    /// The entry for `code`, in `system` or (without one) in any system.
    pub fn find(&self, system: Option<&str>, code: &str) -> Option<&Entry> {
        let at = self.systems.iter().enumerate().find_map(|(s, sys)| {
            system.is_none_or(|want| sys.url == want).then(|| self.members[s].get(code)).flatten()
        })?;
        self.entries.get(*at as usize)
    }

    pub fn contains(&self, system: Option<&str>, code: &str) -> bool {
        self.systems
            .iter()
            .enumerate()
            .any(|(s, sys)| system.is_none_or(|want| sys.url == want) && self.members[s].contains_key(code))
    }

    /// Whether a code absent from this expansion might still belong to the value set.
    pub fn is_open_for(&self, system: Option<&str>) -> bool {
        if !self.missing_value_sets.is_empty() {
            return true;
        }
        let open = |s: &String| system.is_none_or(|want| s == want);
        self.missing_systems.iter().any(open) || self.incomplete_systems.iter().any(open)
    }

    fn slot(&mut self, url: &str, version: Option<&str>, index: Option<&Arc<CodeSystemIndex>>) -> u32 {
        if let Some(s) = self.systems.iter().position(|s| s.url == url && s.version.as_deref() == version) {
            // A slot opened by listed codes gains the index when a later part brings it.
            if self.systems[s].index.is_none() {
                self.systems[s].index = index.cloned();
            }
            return s as u32;
        }
        self.systems.push(ExpansionSystem {
            url: url.to_owned(),
            version: version.map(str::to_owned),
            index: index.cloned(),
        });
        self.members.push(FxHashMap::default());
        (self.systems.len() - 1) as u32
    }

    fn push(&mut self, slot: u32, candidate: Candidate) {
        let code: &str = match &candidate {
            Candidate::Indexed(i) => {
                let index = self.systems[slot as usize].index.as_ref().expect("indexed candidate");
                &index.concept(*i).code
            }
            Candidate::Listed(l) => &l.code,
        };
        if self.members[slot as usize].contains_key(code) {
            return;
        }
        let code: Box<str> = code.into();
        self.members[slot as usize].insert(code, self.entries.len() as u32);
        let source = match candidate {
            Candidate::Indexed(i) => Source::Indexed(i),
            Candidate::Listed(l) => {
                self.listed.push(l);
                Source::Listed((self.listed.len() - 1) as u32)
            }
        };
        self.entries.push(Entry { system: slot, source });
    }

    /// Copies entry `e` of another expansion as a candidate of this one.
    fn take_from(&mut self, other: &Expansion, e: &Entry) {
        let sys = &other.systems[e.system as usize];
        let slot = self.slot(&sys.url, sys.version.as_deref(), sys.index.as_ref());
        let candidate = match e.source {
            Source::Indexed(i) => Candidate::Indexed(i),
            Source::Listed(j) => Candidate::Listed(other.listed[j as usize].clone()),
        };
        self.push(slot, candidate);
    }
}

/// Codes to leave out, by system URL.
type Exclusions = FxHashMap<String, FxHashSet<Box<str>>>;

/// Evaluates a ValueSet resource. `stack` holds the canonicals being evaluated, to stop
/// import cycles.
pub(crate) fn evaluate(service: &Terminology, vs: &Value, stack: &mut Vec<String>) -> Result<Expansion> {
    let mut out = Expansion::default();
    let Some(compose) = vs.get("compose") else {
        // A value set shipped already expanded (and not composed) is taken as it is.
        if let Some(contains) = vs.pointer("/expansion/contains").and_then(Value::as_array) {
            add_contains(&mut out, contains);
            return Ok(out);
        }
        let url = vs.get("url").and_then(Value::as_str).unwrap_or("(inline)");
        return Err(TerminologyError::Invalid(format!("ValueSet {url} has neither compose nor expansion")));
    };
    let mut excluded = Exclusions::default();
    for part in compose.get("exclude").and_then(Value::as_array).into_iter().flatten() {
        let mut ex = Expansion::default();
        select(service, part, stack, &Exclusions::default(), &mut ex)?;
        for e in &ex.entries {
            let url = ex.systems[e.system as usize].url.clone();
            excluded.entry(url).or_default().insert(ex.code(e).into());
        }
        // What an exclude could not enumerate leaves the result undecidable.
        out.missing_systems.extend(ex.missing_systems);
        out.missing_value_sets.extend(ex.missing_value_sets);
    }
    for part in compose.get("include").and_then(Value::as_array).into_iter().flatten() {
        select(service, part, stack, &excluded, &mut out)?;
    }
    Ok(out)
}

fn add_contains(out: &mut Expansion, contains: &[Value]) {
    for c in contains {
        let (Some(system), Some(code)) =
            (c.get("system").and_then(Value::as_str), c.get("code").and_then(Value::as_str))
        else {
            if let Some(nested) = c.get("contains").and_then(Value::as_array) {
                add_contains(out, nested);
            }
            continue;
        };
        let version = c.get("version").and_then(Value::as_str);
        let slot = out.slot(system, version, None);
        let designations = c.get("designation").and_then(Value::as_array).into_iter().flatten();
        let mut listed = ListedConcept::new(
            code,
            c.get("display").and_then(Value::as_str),
            designations.filter_map(designation_from).collect(),
        );
        listed.inactive = c.get("inactive").and_then(Value::as_bool) == Some(true);
        listed.not_selectable = c.get("abstract").and_then(Value::as_bool) == Some(true);
        out.push(slot, Candidate::Listed(listed));
        if let Some(nested) = c.get("contains").and_then(Value::as_array) {
            add_contains(out, nested);
        }
    }
}

/// Adds to `out` what one `include` (or `exclude`) part selects, minus `excluded`.
fn select(
    service: &Terminology,
    part: &Value,
    stack: &mut Vec<String>,
    excluded: &Exclusions,
    out: &mut Expansion,
) -> Result<()> {
    let mut imports = Vec::new();
    let mut missing_here = false;
    for url in part.get("valueSet").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        match service.expansion_in(url, stack)? {
            Some(e) => imports.push(e),
            None => {
                out.missing_value_sets.push(url.to_owned());
                missing_here = true;
            }
        }
    }
    if missing_here {
        // An intersection with an unknown set is unknown: add nothing from this part.
        return Ok(());
    }
    let in_imports = |system: &str, code: &str| imports.iter().all(|e| e.contains(Some(system), code));
    let is_excluded = |system: &str, code: &str| excluded.get(system).is_some_and(|s| s.contains(code));

    let Some(system) = part.get("system").and_then(Value::as_str) else {
        let Some((first, rest)) = imports.split_first() else { return Ok(()) };
        for e in &first.entries {
            let url = &first.systems[e.system as usize].url;
            let code = first.code(e);
            if rest.iter().all(|r| r.contains(Some(url), code)) && !is_excluded(url, code) {
                out.take_from(first, e);
            }
        }
        return Ok(());
    };
    let version = part.get("version").and_then(Value::as_str);
    let index = service.code_system_index(system, version);
    let slot = out.slot(system, version.or(index.as_ref().and_then(|i| i.version.as_deref())), index.as_ref());
    let keep = |code: &str| in_imports(system, code) && !is_excluded(system, code);

    if let Some(concepts) = part.get("concept").and_then(Value::as_array) {
        for c in concepts {
            let Some(code) = c.get("code").and_then(Value::as_str) else { continue };
            if !keep(code) {
                continue;
            }
            let display = c.get("display").and_then(Value::as_str);
            let designations: Box<[Designation]> = c
                .get("designation")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(designation_from)
                .collect();
            match index.as_ref().and_then(|i| i.find(code).map(|at| (i, at))) {
                // The value set's own display and designations take precedence.
                Some((_, at)) if display.is_none() && designations.is_empty() => out.push(slot, Candidate::Indexed(at)),
                Some((i, at)) => {
                    let concept = i.concept(at);
                    let mut l = ListedConcept::new(&concept.code, display, designations);
                    l.inactive = concept.inactive;
                    l.not_selectable = concept.not_selectable;
                    out.push(slot, Candidate::Listed(l));
                }
                // Listed codes stand even when the loaded system lacks them: packages ship
                // partial systems marked complete (JP-CLINS's two-code LOINC), and whether
                // a code exists in its system is the validator's separate question.
                None => out.push(slot, Candidate::Listed(ListedConcept::new(code, display, designations))),
            }
        }
        return Ok(());
    }

    let Some(index) = index else {
        out.missing_systems.push(system.to_owned());
        return Ok(());
    };
    if !index.is_complete() {
        out.incomplete_systems.push(system.to_owned());
    }
    let filters: Vec<(&str, &str, &str)> = part
        .get("filter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let get = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
            (get("property"), get("op"), get("value"))
        })
        .collect();
    let chosen: Box<dyn Iterator<Item = u32>> = if filters.is_empty() {
        Box::new(0..index.concepts.len() as u32)
    } else {
        Box::new(filter::apply(&index, &filters, service.max_regex_bytes())?.into_iter())
    };
    for at in chosen {
        if keep(&index.concept(at).code) {
            out.push(slot, Candidate::Indexed(at));
        }
    }
    Ok(())
}
