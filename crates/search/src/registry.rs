//! The search parameters of each resource type, with their FHIRPath expressions compiled
//! once, on first use of the type.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tsunagu_fhirpath::Expression;
use tsunagu_model::SearchParamType;
use tsunagu_store::IndexKind;

/// One search parameter of one resource type.
#[derive(Debug)]
pub struct ParamDef {
    pub code: &'static str,
    pub kind: SearchParamType,
    /// `None` for parameters without an expression (`_text`, `_content`, …) or whose
    /// expression the engine could not compile: these are not indexed.
    pub expression: Option<Expression>,
    pub targets: Vec<&'static str>,
    pub url: &'static str,
    /// A resource holds at most one value (a plain path through elements of max 1): then
    /// several conditions on the parameter must hold for that one value.
    pub single_valued: bool,
    /// For a composite: its components, evaluated on each node the expression finds. Empty
    /// when the composite is not indexed (three components, or a component not resolved).
    pub components: Vec<Component>,
}

/// One component of a composite parameter.
#[derive(Debug)]
pub struct Component {
    /// The type of the component's own search parameter (it decides how values are read).
    pub kind: SearchParamType,
    /// Relative to the node the composite's expression finds.
    pub expression: Expression,
    /// The canonical URL of the component's own search parameter.
    pub definition: &'static str,
}

impl ParamDef {
    /// The index table that holds this parameter, when it is indexed.
    pub fn index_kind(&self) -> Option<IndexKind> {
        self.expression.as_ref()?;
        Some(match self.kind {
            SearchParamType::Token => IndexKind::Token,
            SearchParamType::String => IndexKind::String,
            SearchParamType::Date => IndexKind::Date,
            SearchParamType::Number => IndexKind::Number,
            SearchParamType::Quantity => IndexKind::Quantity,
            SearchParamType::Reference => IndexKind::Reference,
            SearchParamType::Uri => IndexKind::Uri,
            // Two components, the first a token: the shape `idx_composite` stores.
            SearchParamType::Composite if self.components.len() == 2 => IndexKind::Composite,
            SearchParamType::Composite | SearchParamType::Special => return None,
        })
    }
}

/// Parameters handled by the store's own columns or by the search machinery itself, never
/// through an index table.
const BUILT_IN: &[&str] = &["_id", "_lastUpdated", "_text", "_content", "_list", "_has", "_type", "_query", "_filter"];

/// Every search parameter per resource type.
#[derive(Default)]
pub struct SearchRegistry {
    by_type: Mutex<HashMap<String, Arc<Vec<ParamDef>>>>,
    /// Parameters from SearchParameter resources (packages), per base type.
    added: Mutex<HashMap<String, Vec<Added>>>,
}

/// A SearchParameter resource's definition for one base type.
#[derive(Clone)]
struct Added {
    code: &'static str,
    kind: SearchParamType,
    expression: String,
    targets: Vec<&'static str>,
    url: &'static str,
}

impl SearchRegistry {
    pub fn new() -> Self {
        SearchRegistry::default()
    }

    /// The parameters of `ty`, compiled on first use.
    pub fn params(&self, ty: &str) -> Arc<Vec<ParamDef>> {
        if let Some(p) = self.by_type.lock().get(ty) {
            return p.clone();
        }
        let mut list = compile_type(ty);
        for a in self.added.lock().get(ty).into_iter().flatten() {
            list.retain(|p| p.code != a.code);
            let expression = tsunagu_fhirpath::compile_for(ty, &filter_as(&a.expression)).ok();
            let single_valued = single_valued(ty, &a.expression);
            list.push(ParamDef {
                code: a.code,
                kind: a.kind,
                expression,
                targets: a.targets.clone(),
                url: a.url,
                single_valued,
                components: Vec::new(),
            });
        }
        let compiled = Arc::new(list);
        self.by_type.lock().entry(ty.to_string()).or_insert(compiled).clone()
    }

    /// Adds the parameter a SearchParameter resource defines (from a package), for each of
    /// its base types, replacing a parameter of the same code. Resources stored before
    /// need `tsunagu reindex` to be found by it.
    pub fn add_search_parameter(&self, sp: &serde_json::Value) -> Result<(), crate::SearchError> {
        use serde_json::Value;
        let s = |k: &str| sp.get(k).and_then(Value::as_str);
        let code = s("code").ok_or_else(|| crate::SearchError::Unsupported("a SearchParameter without code".into()))?;
        let kind = s("type")
            .and_then(SearchParamType::parse)
            .ok_or_else(|| crate::SearchError::Unsupported(format!("SearchParameter {code}: unknown type")))?;
        let expression = s("expression").unwrap_or("");
        // Definitions are loaded once at start and live as long as the process: leaking
        // them keeps ParamDef borrowing `'static` strings like the built-in ones.
        let leak = |v: &str| -> &'static str { Box::leak(v.to_string().into_boxed_str()) };
        let targets: Vec<&'static str> = sp
            .get("target")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(leak)
            .collect();
        let (code, url) = (leak(code), leak(s("url").unwrap_or("")));
        let model = tsunagu_model::r4();
        for base in sp.get("base").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !model.is_resource_type(base) {
                continue;
            }
            let added = Added { code, kind, expression: rebase(expression, base), targets: targets.clone(), url };
            let mut map = self.added.lock();
            let list = map.entry(base.to_string()).or_default();
            list.retain(|a| a.code != code);
            list.push(added);
            // Recompile the type's parameters on next use.
            self.by_type.lock().remove(base);
        }
        Ok(())
    }

    pub fn param(&self, ty: &str, code: &str) -> Option<ParamRef> {
        let all = self.params(ty);
        let index = all.iter().position(|p| p.code == code)?;
        Some(ParamRef { all, index })
    }
}

/// A shared handle to one parameter definition.
pub struct ParamRef {
    all: Arc<Vec<ParamDef>>,
    index: usize,
}

impl std::ops::Deref for ParamRef {
    type Target = ParamDef;
    fn deref(&self) -> &ParamDef {
        &self.all[self.index]
    }
}

fn compile_type(ty: &str) -> Vec<ParamDef> {
    let model = tsunagu_model::r4();
    let mut out: Vec<ParamDef> = Vec::new();
    for p in model.search_params(ty) {
        if out.iter().any(|o| o.code == p.code) {
            continue; // a resource's own definition wins over the Resource/DomainResource one
        }
        let expression = if BUILT_IN.contains(&p.code) || p.expression.is_empty() {
            None
        } else {
            // The shared parameters are written against the base types; evaluate them
            // against the concrete type.
            let expr = filter_as(&rebase(p.expression, ty));
            tsunagu_fhirpath::compile_for(ty, &expr).ok()
        };
        let single_valued = single_valued(ty, &rebase(p.expression, ty));
        let components = if p.kind == SearchParamType::Composite { components(ty, &p.components) } else { Vec::new() };
        out.push(ParamDef {
            code: p.code,
            kind: p.kind,
            expression,
            targets: p.targets.clone(),
            url: p.url,
            single_valued,
            components,
        });
    }
    out
}

/// The components of a composite, when it has the two-component shape with a token first
/// (every R4 composite but MolecularSequence's three-component coordinates).
fn components(ty: &str, defs: &[(&'static str, &'static str)]) -> Vec<Component> {
    let model = tsunagu_model::r4();
    let kind_of = |url: &str| {
        let own = model.search_params(ty).find(|p| p.url == url);
        own.or_else(|| model.resource_types().iter().find_map(|t| model.search_params(t).find(|p| p.url == url)))
            .map(|p| p.kind)
    };
    let mut out = Vec::new();
    for (url, expr) in defs {
        // R4 writes `value.as(DateTime)` (`code-value-date`), which strict FHIRPath reads as
        // the System type and so never matches a FHIR `dateTime` element; the FHIR type is
        // what the definition means.
        let expr = expr.replace(".as(DateTime)", ".as(dateTime)");
        let (Some(kind), Ok(expression)) = (kind_of(url), tsunagu_fhirpath::compile(&expr)) else { return Vec::new() };
        out.push(Component { kind, expression, definition: url });
    }
    let shaped = out.len() == 2
        && out[0].kind == SearchParamType::Token
        && !matches!(out[1].kind, SearchParamType::Composite | SearchParamType::Special);
    if shaped {
        out
    } else {
        Vec::new()
    }
}

/// Whether `expr` is a plain path `Type.a.b` through elements that repeat at most once.
fn single_valued(ty: &str, expr: &str) -> bool {
    let model = tsunagu_model::r4();
    let Some(rest) = expr.strip_prefix(ty).and_then(|r| r.strip_prefix('.')) else { return false };
    let mut parent = ty.to_string();
    for step in rest.split('.') {
        if step.is_empty() || !step.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        let Some(e) = model.element(&format!("{parent}.{step}")) else { return false };
        if e.max != Some(1) {
            return false;
        }
        parent = match e.backbone_path() {
            Some(p) => p.to_string(),
            None if e.types.len() == 1 => e.types[0].code.to_string(),
            None => return step == rest.rsplit('.').next().unwrap_or(""),
        };
    }
    true
}

/// `Observation.component.value as Quantity` → `Observation.component.value.ofType(Quantity)`.
/// R4 search expressions use `as` on paths that repeat, meaning "those of this type";
/// strict FHIRPath makes `as` an error on more than one item, which would leave every
/// blood pressure (two components) out of `component-value-quantity`. Only an `as` whose
/// left operand is a whole path (after `(`, `|`, `,` or the start) is rewritten, where the
/// two forms agree.
fn filter_as(expr: &str) -> String {
    let mut out = expr.to_string();
    let mut from = 0;
    while let Some(found) = out[from..].find(" as ") {
        let at = from + found;
        let type_end = out[at + 4..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .map_or(out.len(), |i| at + 4 + i);
        // Walk back over the left operand: a path with balanced `(…)` invocations.
        let bytes = out.as_bytes();
        let (mut i, mut depth) = (at, 0i32);
        while i > 0 {
            let c = bytes[i - 1];
            match c {
                b')' => depth += 1,
                b'(' if depth > 0 => depth -= 1,
                _ if depth > 0 => {}
                c if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' => {}
                _ => break,
            }
            i -= 1;
        }
        let before = out[..i].trim_end();
        let whole_operand = before.is_empty() || before.ends_with(['(', '|', ',']);
        if whole_operand && type_end > at + 4 && i < at {
            let ty = out[at + 4..type_end].to_string();
            out.replace_range(at..type_end, &format!(".ofType({ty})"));
        }
        from = at + 1;
    }
    out
}

/// `Resource.meta.tag` → `Patient.meta.tag` for `Patient`.
fn rebase(expr: &str, ty: &str) -> String {
    let mut s = expr.to_string();
    for base in ["DomainResource.", "Resource."] {
        if s.starts_with(base) {
            s = format!("{ty}.{}", &s[base.len()..]);
        }
        s = s.replace(&format!("| {base}"), &format!("| {ty}."));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_the_core_parameters() {
        let r = SearchRegistry::new();
        let total: usize = tsunagu_model::r4().resource_types().iter().map(|t| r.params(t).len()).sum();
        let indexed: usize = tsunagu_model::r4()
            .resource_types()
            .iter()
            .map(|t| r.params(t).iter().filter(|p| p.index_kind().is_some()).count())
            .sum();
        let failed: Vec<String> = tsunagu_model::r4()
            .resource_types()
            .iter()
            .flat_map(|t| {
                r.params(t)
                    .iter()
                    .filter(|p| {
                        p.expression.is_none() && !BUILT_IN.contains(&p.code) && p.kind != SearchParamType::Special
                    })
                    // Parameters the core package defines without an expression, or on
                    // another type, are not the engine's failures.
                    .filter(|p| {
                        let e = tsunagu_model::r4().search_param(t, p.code).map_or("", |d| d.expression);
                        !e.is_empty() && (e.starts_with(&format!("{t}.")) || e.starts_with("Resource."))
                    })
                    .map(|p| format!("{t}.{}", p.code))
                    .collect::<Vec<_>>()
            })
            .collect();
        println!("{indexed} of {total} parameters indexed; not compiled: {failed:?}");
        assert!(r.param("Patient", "name").unwrap().expression.is_some());
        assert!(r.param("Patient", "_tag").unwrap().expression.is_some());
        assert!(failed.is_empty(), "{failed:?}");
    }
}

#[cfg(test)]
mod added_tests {
    use serde_json::json;

    #[test]
    fn package_parameters_are_indexed() {
        let r = super::SearchRegistry::new();
        r.add_search_parameter(&json!({
            "resourceType": "SearchParameter", "url": "http://jpfhir.jp/fhir/core/SearchParameter/jp-kana-sort",
            "code": "jp-kana-sort", "base": ["Patient"], "type": "string",
            "expression": "Patient.name.where(extension('http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation').value.as(code)='SYL' and use='usual').text"
        }))
        .unwrap();
        let p = json!({"resourceType": "Patient", "name": [
            {"use": "usual", "text": "山田 太郎", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "IDE"}]},
            {"use": "usual", "text": "ヤマダ タロウ", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "SYL"}]}]});
        let e = r.index_entries("Patient", &p);
        let kana: Vec<_> = e.iter().filter(|e| e.param == "jp-kana-sort").collect();
        assert_eq!(kana.len(), 1, "{e:?}");
        assert!(r.param("Patient", "name").is_some(), "built-in parameters stay");
    }
}

#[cfg(test)]
mod single_valued_tests {
    #[test]
    fn as_on_whole_paths_becomes_a_filter() {
        assert_eq!(
            super::filter_as("(Observation.value as Quantity) | (Observation.value as SampledData)"),
            "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))"
        );
        assert_eq!(
            super::filter_as("Observation.component.value as Quantity"),
            "Observation.component.value.ofType(Quantity)"
        );
        assert_eq!(super::filter_as("a.where(b as c).d as E"), "a.where(b.ofType(c)).d.ofType(E)");
        assert_eq!(super::filter_as("x + y as T"), "x + y as T");
    }

    #[test]
    fn plain_single_paths_only() {
        assert!(super::single_valued("Observation", "Observation.effective"));
        assert!(super::single_valued("Patient", "Patient.birthDate"));
        assert!(!super::single_valued("Patient", "Patient.name"));
        assert!(!super::single_valued("Encounter", "Encounter.period | Encounter.length"));
    }
}
