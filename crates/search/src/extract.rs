//! Index extraction: evaluate each parameter's expression on a resource and turn the
//! resulting FHIR nodes into index values by their type (search.html, "Search Parameter
//! Types" table).

use crate::range::parse_range;
use crate::registry::{ParamDef, SearchRegistry};
use serde_json::{json, Value};
use tsunagu_fhirpath::{EvalContext, Hooks, Item};
use tsunagu_model::SearchParamType as K;
use tsunagu_store::{IndexEntry, IndexValue, TOKEN_TEXT_SEPARATOR};
use tsunagu_text::normalize;

/// `resolve()` during indexing: expressions such as `subject.where(resolve() is Patient)`
/// only need the target's type, which a literal reference already states.
struct TypeOnlyResolver;

impl Hooks for TypeOnlyResolver {
    fn resolve(&self, reference: &str) -> Option<Value> {
        let (ty, _) = split_reference(reference)?;
        Some(json!({ "resourceType": ty }))
    }
}

/// `Patient/1`, `http://x/fhir/Patient/1`, `Patient/1/_history/2` → (`Patient`, `1`).
pub(crate) fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let r = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut it = r.rsplit('/');
    let id = it.next()?;
    let ty = it.next()?;
    let model = tsunagu_model::r4();
    (model.is_resource_type(ty) && !id.is_empty()).then_some((ty, id))
}

impl SearchRegistry {
    /// Every index entry of a resource of type `ty`. Parameters whose expression fails on
    /// this resource are skipped (the resource is still stored and found by the others).
    pub fn index_entries(&self, ty: &str, resource: &Value) -> Vec<IndexEntry> {
        let resolver = TypeOnlyResolver;
        let ctx = EvalContext::new().with_hooks(&resolver);
        let mut out = Vec::new();
        for p in self.params(ty).iter() {
            out.extend(param_entries(p, resource, &ctx));
        }
        out.dedup();
        crate::fulltext::entries(resource, &mut out);
        contained_types(resource, &mut out);
        out
    }

    /// The entries of the named parameters only: what deciding one condition about one
    /// resource needs (whether a caller may see it), far less than the full extraction.
    pub fn entries_of(&self, ty: &str, resource: &Value, codes: &[&str]) -> Vec<IndexEntry> {
        let resolver = TypeOnlyResolver;
        let ctx = EvalContext::new().with_hooks(&resolver);
        let mut out = Vec::new();
        for p in self.params(ty).iter().filter(|p| codes.contains(&p.code)) {
            out.extend(param_entries(p, resource, &ctx));
        }
        out.dedup();
        out
    }

    /// The reference entries of a resource: of parameter `param`, or of every reference
    /// parameter. What `_include` follows, without the cost of the full extraction (full
    /// text, composites).
    pub fn reference_entries(&self, ty: &str, resource: &Value, param: Option<&str>) -> Vec<IndexEntry> {
        let resolver = TypeOnlyResolver;
        let ctx = EvalContext::new().with_hooks(&resolver);
        let mut out = Vec::new();
        for p in self.params(ty).iter().filter(|p| p.kind == K::Reference && param.is_none_or(|c| c == p.code)) {
            out.extend(param_entries(p, resource, &ctx));
        }
        out.dedup();
        out
    }
}

/// The entries of one parameter. A panic in the engine is a bug, but it must not take a
/// write down with it: the parameter is skipped for this resource instead.
fn param_entries(p: &ParamDef, resource: &Value, ctx: &EvalContext<'_>) -> Vec<IndexEntry> {
    let Some(expr) = &p.expression else { return Vec::new() };
    let eval = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut found = Vec::new();
        if let Ok(items) = expr.evaluate_with(resource, ctx) {
            for item in &items {
                if p.kind == K::Composite {
                    crate::composite::node_values(p, item, resource, ctx, &mut found);
                    continue;
                }
                values(p.kind, item, &mut |value| found.push(IndexEntry { param: p.code.to_string(), value }));
                modifier_values(p.kind, p.code, item, &mut found);
            }
        }
        if p.kind == K::Token {
            merge_shared_token_keys(&mut found);
        }
        if p.kind == K::Composite {
            found = distinct(found);
        }
        found
    }));
    eval.unwrap_or_default()
}

/// One token per type of contained resource, so that `_contained=true` finds candidate
/// containers by index.
fn contained_types(resource: &Value, out: &mut Vec<IndexEntry>) {
    let Some(contained) = resource.get("contained").and_then(Value::as_array) else { return };
    let mut seen = rustc_hash::FxHashSet::default();
    for ty in contained.iter().filter_map(|c| c.get("resourceType").and_then(Value::as_str)) {
        if seen.insert(ty) {
            let value = IndexValue::Token { system: None, code: ty.to_string(), display: None };
            out.push(IndexEntry { param: crate::contained::CONTAINED_TYPE_PARAM.to_string(), value });
        }
    }
}

/// Token entries of one parameter that share their key (entry name, system, code; a
/// `code:text` entry has neither system nor code) made one, in the place of the first,
/// carrying every text: the index keeps one row per key, and a second concept with the
/// same code (or a second free text) must stay findable by its own text.
fn merge_shared_token_keys(found: &mut Vec<IndexEntry>) {
    if found.len() < 2 {
        return;
    }
    // For each entry, the first entry with its key (itself when it is the first).
    let mut first_of: rustc_hash::FxHashMap<(&str, Option<&str>, &str), usize> = Default::default();
    let mut firsts: Vec<usize> = Vec::with_capacity(found.len());
    for (i, e) in found.iter().enumerate() {
        firsts.push(match &e.value {
            IndexValue::Token { system, code, .. } => {
                *first_of.entry((e.param.as_str(), system.as_deref(), code.as_str())).or_insert(i)
            }
            _ => i,
        });
    }
    if firsts.iter().enumerate().all(|(i, first)| i == *first) {
        return;
    }
    // Later entries' texts by their first's place among those kept, joined once at the end.
    let mut kept_at = vec![0; found.len()];
    let mut texts_of: rustc_hash::FxHashMap<usize, Vec<String>> = Default::default();
    let mut kept: Vec<IndexEntry> = Vec::with_capacity(found.len());
    for (i, e) in found.drain(..).enumerate() {
        if firsts[i] == i {
            kept_at[i] = kept.len();
            kept.push(e);
        } else if let IndexValue::Token { display: Some(more), .. } = e.value {
            texts_of.entry(kept_at[firsts[i]]).or_default().push(more);
        }
    }
    for (k, more) in texts_of {
        if let IndexValue::Token { display, .. } = &mut kept[k].value {
            *display = Some(distinct_texts(display.take(), &more));
        }
    }
    *found = kept;
}

/// The texts of `first` and `more` (each apart by the separator), each once, in order.
fn distinct_texts(first: Option<String>, more: &[String]) -> String {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut out = String::new();
    for t in first.iter().chain(more).flat_map(|d| d.split(TOKEN_TEXT_SEPARATOR)) {
        if seen.insert(t) {
            if seen.len() > 1 {
                out.push(TOKEN_TEXT_SEPARATOR);
            }
            out.push_str(t);
        }
    }
    out
}

/// `entries` without repeats, the first of each kept in place, in time linear in their
/// number (a resource with thousands of components must not cost their square).
fn distinct(entries: Vec<IndexEntry>) -> Vec<IndexEntry> {
    if entries.len() <= 16 {
        let mut out: Vec<IndexEntry> = Vec::with_capacity(entries.len());
        for e in entries {
            if !out.contains(&e) {
                out.push(e);
            }
        }
        return out;
    }
    // Index values hold floats (no Hash); their Debug form is a faithful key.
    let mut seen = rustc_hash::FxHashSet::default();
    entries.into_iter().filter(|e| seen.insert(format!("{}\u{0}{:?}", e.param, e.value))).collect()
}

pub(crate) fn values(kind: K, item: &Item<'_>, push: &mut dyn FnMut(IndexValue)) {
    let ty = item.type_name();
    let json = item.json();
    let field = |k: &str| json.and_then(|j| j.get(k)).and_then(Value::as_str);
    match kind {
        K::Token => token(&ty, item, push),
        K::String => match ty.as_ref() {
            "HumanName" => {
                for k in ["family", "text"] {
                    string(field(k), push);
                }
                for k in ["given", "prefix", "suffix"] {
                    for v in json.and_then(|j| j.get(k)).and_then(Value::as_array).into_iter().flatten() {
                        string(v.as_str(), push);
                    }
                }
            }
            "Address" => {
                for k in ["text", "city", "district", "state", "postalCode", "country"] {
                    string(field(k), push);
                }
                for v in json.and_then(|j| j.get("line")).and_then(Value::as_array).into_iter().flatten() {
                    string(v.as_str(), push);
                }
            }
            _ => string(item.to_text().as_deref(), push),
        },
        K::Date => match ty.as_ref() {
            "Period" => {
                let lo = field("start").and_then(parse_range).map_or(i64::MIN, |r| r.0);
                let hi = field("end").and_then(parse_range).map_or(i64::MAX, |r| r.1);
                if field("start").is_some() || field("end").is_some() {
                    push(IndexValue::Date { lo, hi });
                }
            }
            "Timing" => {
                for e in json.and_then(|j| j.get("event")).and_then(Value::as_array).into_iter().flatten() {
                    if let Some((lo, hi)) = e.as_str().and_then(parse_range) {
                        push(IndexValue::Date { lo, hi });
                    }
                }
            }
            _ => {
                if let Some((lo, hi)) = item.to_text().as_deref().and_then(parse_range) {
                    push(IndexValue::Date { lo, hi });
                }
            }
        },
        K::Number => {
            if let Some(v) = item.to_text().and_then(|t| t.parse::<f64>().ok()) {
                push(IndexValue::Number { value: v });
            }
        }
        K::Quantity => {
            let value = json.and_then(|j| j.get("value")).and_then(|v| v.to_string().parse::<f64>().ok());
            let Some(value) = value else { return };
            if ty == "Money" {
                push(IndexValue::Quantity { system: None, code: field("currency").map(str::to_string), value });
            } else {
                let code = field("code").or(field("unit")).map(str::to_string);
                push(IndexValue::Quantity { system: field("system").map(str::to_string), code: code.clone(), value });
                // `5.4||mg` matches the code or the human unit (search.html#quantity): a unit
                // that differs from the code is indexed too, without a system so that
                // `|system|code` searches still need the coded unit.
                if let Some(unit) = field("unit").filter(|u| code.as_deref() != Some(*u)) {
                    push(IndexValue::Quantity { system: None, code: Some(unit.to_string()), value });
                }
            }
        }
        K::Reference => match ty.as_ref() {
            "Reference" => {
                if let Some(r) = field("reference") {
                    let (t, id) = match split_reference(r) {
                        Some((t, id)) => (Some(t.to_string()), Some(id.to_string())),
                        None => (None, None),
                    };
                    push(IndexValue::Reference { target_type: t, target_id: id, url: r.to_string() });
                }
            }
            _ => {
                // A canonical or uri: matched by URL, and by `Type/id` when it has that shape
                // (`PlanDefinition/KDN5`), as a Reference would be. A `|version` is no part
                // of the id.
                if let Some(u) = item.to_text() {
                    let (t, id) = match split_reference(u.split('|').next().unwrap_or(&u)) {
                        Some((t, id)) => (Some(t.to_string()), Some(id.to_string())),
                        None => (None, None),
                    };
                    push(IndexValue::Reference { target_type: t, target_id: id, url: u });
                }
            }
        },
        K::Uri => {
            if let Some(u) = item.to_text() {
                push(IndexValue::Uri { value: u });
            }
        }
        K::Composite | K::Special => {}
    }
}

/// Values for modifiers that search something other than the value itself, indexed under
/// `code:modifier`: `:identifier` on references (the Reference.identifier), `:of-type`
/// on identifiers (type coding and value together), and `:text` on a CodeableConcept
/// with no code (its text and displays, which no coded row can carry: a row of the
/// parameter itself would make the concept count for `_sort` and `:missing`).
fn modifier_values(kind: K, code: &str, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let Some(json) = item.json() else { return };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match (kind, item.type_name().as_ref()) {
        (K::Token, "CodeableConcept") => {
            let codings = json.get("coding").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            if codings.iter().any(|c| c.get("code").and_then(Value::as_str).is_some_and(|c| !c.is_empty())) {
                return;
            }
            let mut texts: Vec<String> = Vec::new();
            let written = json.get("text").into_iter().chain(codings.iter().filter_map(|c| c.get("display")));
            for t in written.filter_map(Value::as_str).map(normalize) {
                if !t.is_empty() && !texts.contains(&t) {
                    texts.push(t);
                }
            }
            if !texts.is_empty() {
                let display = Some(texts.join(&TOKEN_TEXT_SEPARATOR.to_string()));
                out.push(IndexEntry {
                    param: format!("{code}:text"),
                    value: IndexValue::Token { system: None, code: String::new(), display },
                });
            }
        }
        (K::Reference, "Reference") => {
            if let Some(ident) = json.get("identifier") {
                if let Some(value) = s(ident, "value") {
                    out.push(IndexEntry {
                        param: format!("{code}:identifier"),
                        value: IndexValue::Token { system: s(ident, "system"), code: value, display: None },
                    });
                }
            }
        }
        (K::Token, "Identifier") => {
            let Some(value) = s(json, "value") else { return };
            for c in json.pointer("/type/coding").and_then(Value::as_array).into_iter().flatten() {
                if let Some(type_code) = s(c, "code") {
                    out.push(IndexEntry {
                        param: format!("{code}:of-type"),
                        value: IndexValue::Token {
                            system: s(c, "system"),
                            code: format!("{type_code}|{value}"),
                            display: None,
                        },
                    });
                }
            }
        }
        _ => {}
    }
}

fn string(s: Option<&str>, push: &mut dyn FnMut(IndexValue)) {
    if let Some(s) = s.filter(|s| !s.is_empty()) {
        push(IndexValue::String { norm: normalize(s), exact: s.to_string() });
    }
}

fn token(ty: &str, item: &Item<'_>, push: &mut dyn FnMut(IndexValue)) {
    let json = item.json();
    let field = |v: Option<&Value>, k: &str| v.and_then(|j| j.get(k)).and_then(Value::as_str).map(str::to_string);
    // `display` already normalised.
    let mut tok = |system: Option<String>, code: Option<String>, display: Option<String>| {
        if let Some(code) = code.filter(|c| !c.is_empty()) {
            push(IndexValue::Token { system, code, display });
        }
    };
    let norm = |v: Option<String>| v.map(|d| normalize(&d));
    match ty {
        "Identifier" => {
            tok(field(json, "system"), field(json, "value"), norm(field(json.and_then(|j| j.get("type")), "text")))
        }
        "Coding" => tok(field(json, "system"), field(json, "code"), norm(field(json, "display"))),
        "CodeableConcept" => {
            let text = field(json, "text");
            let normal_text = text.as_deref().map(normalize);
            for c in json.and_then(|j| j.get("coding")).and_then(Value::as_array).into_iter().flatten() {
                // `:text` searches CodeableConcept.text and Coding.display: both, when they
                // differ, in one value (a row per code), apart by TOKEN_TEXT_SEPARATOR. Each
                // is normalised once; a display written as the text costs nothing more.
                let shown = match (&normal_text, field(Some(c), "display")) {
                    (Some(t), Some(d)) if text.as_deref() != Some(d.as_str()) => {
                        let d = normalize(&d);
                        Some(if *t == d { d } else { format!("{t}{TOKEN_TEXT_SEPARATOR}{d}") })
                    }
                    (Some(t), _) => Some(t.clone()),
                    (None, d) => norm(d),
                };
                tok(field(Some(c), "system"), field(Some(c), "code"), shown);
            }
        }
        "ContactPoint" => tok(None, field(json, "value"), None),
        _ => tok(None, item.to_text(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(entries: &[IndexEntry], param: &str, f: impl Fn(&IndexValue) -> bool) -> bool {
        entries.iter().any(|e| e.param == param && f(&e.value))
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the digits as a client might send them
    fn extreme_decimals_do_not_break_indexing() {
        let r = SearchRegistry::new();
        let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "component": [{"code": {"text": "a"}, "valueQuantity": {"value": 1.000000000000000000E-245, "unit": "g"}},
                          {"code": {"text": "b"}, "valueQuantity": {"value": -1.000000000000000000E+245, "unit": "g"}}]});
        let e = r.index_entries("Observation", &o);
        assert!(has(&e, "status", |_| true));
    }

    #[test]
    fn extracts_every_kind() {
        let r = SearchRegistry::new();
        let p = json!({"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "urn:s", "value": "1"}],
            "name": [{"family": "山田", "given": ["太郎"]}, {"family": "ヤマダ", "given": ["タロウ"]}],
            "gender": "male", "birthDate": "1970-05", "active": true,
            "managingOrganization": {"reference": "Organization/o1"},
            "meta": {"tag": [{"system": "urn:t", "code": "x"}], "profile": ["http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient"]}});
        let e = r.index_entries("Patient", &p);
        assert!(has(
            &e,
            "identifier",
            |v| matches!(v, IndexValue::Token { system: Some(s), code, .. } if s == "urn:s" && code == "1")
        ));
        assert!(has(&e, "name", |v| matches!(v, IndexValue::String { norm, .. } if norm == "やまだ")));
        assert!(has(&e, "family", |v| matches!(v, IndexValue::String { exact, .. } if exact == "山田")));
        assert!(has(&e, "birthdate", |v| matches!(v, IndexValue::Date { .. })));
        assert!(has(&e, "active", |v| matches!(v, IndexValue::Token { code, .. } if code == "true")));
        assert!(has(
            &e,
            "organization",
            |v| matches!(v, IndexValue::Reference { target_id: Some(i), .. } if i == "o1")
        ));
        assert!(has(&e, "_tag", |v| matches!(v, IndexValue::Token { code, .. } if code == "x")));
        assert!(has(&e, "_profile", |v| matches!(v, IndexValue::Reference { .. } | IndexValue::Uri { .. })));
        let o = json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-02T10:00:00+09:00",
            "valueQuantity": {"value": 120.5, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}});
        let e = r.index_entries("Observation", &o);
        assert!(has(
            &e,
            "patient",
            |v| matches!(v, IndexValue::Reference { target_type: Some(t), .. } if t == "Patient")
        ));
        assert!(has(&e, "subject", |v| matches!(v, IndexValue::Reference { .. })));
        assert!(has(
            &e,
            "value-quantity",
            |v| matches!(v, IndexValue::Quantity { value, .. } if (*value - 120.5).abs() < 1e-9)
        ));
        assert!(has(&e, "date", |v| matches!(v, IndexValue::Date { .. })));
        assert!(has(&e, "code", |v| matches!(v, IndexValue::Token { code, .. } if code == "8480-6")));
    }

    #[test]
    fn concepts_without_a_code_keep_their_texts_in_one_row() {
        let r = SearchRegistry::new();
        let c = json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "urn:icd", "code": "E11", "display": "DM"}], "text": "糖尿病"},
            "category": [{"text": "外来"}, {"coding": [{"display": "Main"}], "text": "主病名"}, {"text": "外来"}]});
        let e = r.index_entries("Condition", &c);
        let free: Vec<_> = e.iter().filter(|e| e.param.ends_with(":text")).collect();
        assert_eq!(free.len(), 1, "{free:?}");
        assert_eq!(free[0].param, "category:text");
        let sep = TOKEN_TEXT_SEPARATOR;
        let expected = format!("外来{sep}主病名{sep}main");
        assert!(
            matches!(&free[0].value, IndexValue::Token { system: None, code, display: Some(d) }
            if code.is_empty() && *d == expected),
            "{:?}",
            free[0].value
        );
        assert!(!has(&e, "category", |_| true), "no row of the parameter itself");
    }

    #[test]
    fn concepts_sharing_a_code_keep_every_text_in_its_row() {
        let r = SearchRegistry::new();
        let coded = |text: &str| json!({"coding": [{"system": "urn:c", "code": "x"}], "text": text});
        let mut categories: Vec<_> = vec![coded("左膝"), coded("右膝"), coded("左膝")];
        let c = json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "category": categories});
        let rows = |c: &serde_json::Value| -> Vec<IndexEntry> {
            r.index_entries("Condition", c).into_iter().filter(|e| e.param == "category").collect()
        };
        let sep = TOKEN_TEXT_SEPARATOR;
        let found = rows(&c);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            matches!(&found[0].value, IndexValue::Token { system: Some(s), code, display: Some(d) }
                if s == "urn:c" && code == "x" && *d == format!("左膝{sep}右膝")),
            "{:?}",
            found[0].value
        );
        // Many repeats (the map path) give the same row.
        categories.extend((0..40).map(|i| coded(&format!("t{}", i % 3))));
        let found = rows(&json!({"resourceType": "Condition", "category": categories}));
        assert_eq!(found.len(), 1, "{found:?}");
        let IndexValue::Token { display: Some(d), .. } = &found[0].value else { panic!("{found:?}") };
        assert_eq!(*d, format!("左膝{sep}右膝{sep}t0{sep}t1{sep}t2"));
    }
}
