//! A StructureDefinition snapshot compiled for validation: the flat element list turned
//! into a tree (children and slices by element id), with constraint expressions and child
//! navigation compiled once.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;
use tsunagu_fhirpath::Expression;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strength {
    Required,
    Extensible,
    Preferred,
    Example,
}

#[derive(Debug)]
pub(crate) struct TypeRule {
    pub code: String,
    /// `type.profile`: the element's content conforms to these.
    pub profiles: Vec<String>,
    /// `type.targetProfile`: what a Reference or canonical may point to.
    pub target_profiles: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Constraint {
    pub key: String,
    pub error: bool,
    pub human: String,
    pub expression: Arc<Expression>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscriminatorKind {
    Value,
    Pattern,
    Exists,
    Type,
    Profile,
}

#[derive(Debug)]
pub(crate) struct Slicing {
    pub discriminators: Vec<(DiscriminatorKind, String)>,
    pub closed: bool,
}

#[derive(Debug)]
pub(crate) struct ElementRule {
    pub id: String,
    /// Last path segment as written (`value[x]`, `coding`).
    pub name: String,
    pub slice_name: Option<String>,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    pub types: Vec<TypeRule>,
    pub fixed: Option<Value>,
    pub pattern: Option<Value>,
    pub binding: Option<(Strength, String)>,
    /// `minValue[x]` / `maxValue[x]`, as written.
    pub min_value: Option<Value>,
    pub max_value: Option<Value>,
    pub max_length: Option<usize>,
    pub constraints: Vec<Constraint>,
    pub slicing: Option<Slicing>,
    pub children: Vec<usize>,
    pub slices: Vec<usize>,
    /// For a slice: what each `value`/`pattern` discriminator of its parent's slicing
    /// expects (`(values, is_fixed)`: each value matched by some value at the path),
    /// worked out once at compile time.
    pub expected: Vec<Option<(Vec<Value>, bool)>>,
    /// Navigates from a parent node to this element's nodes (`name` without `[x]`).
    pub nav: Option<Arc<Expression>>,
}

impl ElementRule {
    /// The single declared type, when there is exactly one.
    pub fn single_type(&self) -> Option<&TypeRule> {
        match self.types.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Profile {
    /// `StructureDefinition.type` (`Patient`, `Extension`, `Dosage`).
    pub type_name: String,
    pub elements: Vec<ElementRule>,
    /// For an extension definition: where it may be used (`context`); empty when anywhere.
    pub contexts: Vec<ExtensionContext>,
    /// For an extension definition: `contextInvariant`s, evaluated on the element holding
    /// the extension (`%extension` the extension itself), as `(source, compiled)`.
    pub context_invariants: Vec<(String, Arc<Expression>)>,
    /// For an extension definition: whether it is a modifier (`isModifier` on its root).
    pub modifier: bool,
    /// Constraints whose expression did not compile, as `key: error`.
    pub uncompiled: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum ExtensionContext {
    /// An element path or type name (`Observation.code`, `Dosage`, `Element`).
    Element(String),
    /// Inside the extension with this URL.
    Extension(String),
    /// A FHIRPath context: evaluated from the resource, it selects the elements that may
    /// hold the extension (`source`, compiled).
    FhirPath(String, Arc<Expression>),
    /// Any place (`Element`, `Base`, or a FHIRPath context that does not compile).
    Anywhere,
}

/// Compiled expressions shared across profiles (the same constraint text recurs in every
/// profile derived from the same base).
pub(crate) type ExpressionCache = FxHashMap<String, Result<Arc<Expression>, String>>;

/// Compiles `sd` from `snapshot`, its own snapshot elements or ones generated from its
/// differential.
pub(crate) fn compile_profile(sd: &Value, snapshot: &[Value], cache: &mut ExpressionCache) -> Option<Profile> {
    let type_name = sd.get("type")?.as_str()?.to_owned();
    if snapshot.is_empty() {
        return None;
    }
    let mut elements: Vec<ElementRule> = Vec::with_capacity(snapshot.len());
    let mut by_id: FxHashMap<String, usize> = FxHashMap::default();
    let mut uncompiled = Vec::new();
    for e in snapshot {
        let path = e.get("path").and_then(Value::as_str)?.to_owned();
        let id = e.get("id").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| path.clone());
        let name = path.rsplit('.').next().unwrap_or(&path).to_owned();
        let slice_name = e.get("sliceName").and_then(Value::as_str).map(str::to_owned);
        let rule = ElementRule {
            nav: nav_expression(&name, cache),
            min: e.get("min").and_then(Value::as_u64).unwrap_or(0) as u32,
            max: match e.get("max").and_then(Value::as_str) {
                Some("*") | None => None,
                Some(m) => m.parse().ok(),
            },
            types: types_of(e),
            fixed: prefixed(e, "fixed"),
            pattern: prefixed(e, "pattern"),
            binding: binding_of(e),
            min_value: prefixed(e, "minValue"),
            max_value: prefixed(e, "maxValue"),
            max_length: e.get("maxLength").and_then(Value::as_u64).map(|n| n as usize),
            constraints: constraints_of(e, cache, &mut uncompiled),
            slicing: slicing_of(e),
            children: Vec::new(),
            slices: Vec::new(),
            expected: Vec::new(),
            id,
            name,
            slice_name,
        };
        let index = elements.len();
        if index > 0 {
            match parent_of(&rule, &by_id) {
                Some((parent, true)) => elements[parent].slices.push(index),
                Some((parent, false)) => elements[parent].children.push(index),
                // An element whose parent is missing from the snapshot cannot be placed.
                None => {}
            }
        }
        by_id.insert(rule.id.clone(), index);
        elements.push(rule);
    }
    let (contexts, context_invariants) =
        if type_name == "Extension" { contexts_of(sd, cache) } else { (Vec::new(), Vec::new()) };
    let modifier = type_name == "Extension"
        && snapshot.first().and_then(|e| e.get("isModifier")).and_then(Value::as_bool) == Some(true);
    let mut profile = Profile { type_name, elements, contexts, context_invariants, modifier, uncompiled };
    crate::slicing::precompute_expected(&mut profile);
    Some(profile)
}

/// The index of the element this one belongs to, and whether it is a slice of it (rather
/// than a child).
fn parent_of(rule: &ElementRule, by_id: &FxHashMap<String, usize>) -> Option<(usize, bool)> {
    if let Some(slice) = &rule.slice_name {
        // Re-slices (`a:b/c`) are treated as slices of the element itself.
        let base = rule.id.strip_suffix(slice)?.strip_suffix(':')?;
        return by_id.get(base).map(|&i| (i, true));
    }
    // Slice names may contain dots, so try each shorter prefix until one is known.
    let mut cut = rule.id.as_str();
    while let Some(dot) = cut.rfind('.') {
        cut = &cut[..dot];
        if let Some(&i) = by_id.get(cut) {
            return Some((i, false));
        }
    }
    None
}

fn nav_expression(name: &str, cache: &mut ExpressionCache) -> Option<Arc<Expression>> {
    let bare = name.strip_suffix("[x]").unwrap_or(name);
    let source = format!("`{bare}`");
    compile_cached(&source, cache).ok()
}

fn compile_cached(source: &str, cache: &mut ExpressionCache) -> Result<Arc<Expression>, String> {
    cache
        .entry(source.to_owned())
        .or_insert_with(|| tsunagu_fhirpath::compile(source).map(Arc::new).map_err(|e| e.to_string()))
        .clone()
}

fn types_of(e: &Value) -> Vec<TypeRule> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    e.get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(TypeRule {
                code: t.get("code")?.as_str()?.to_owned(),
                profiles: strings(t.get("profile")),
                target_profiles: strings(t.get("targetProfile")),
            })
        })
        .collect()
}

/// The value of `fixed[x]` or `pattern[x]`, whatever its type suffix.
fn prefixed(e: &Value, prefix: &str) -> Option<Value> {
    e.as_object()?.iter().find_map(|(k, v)| {
        let rest = k.strip_prefix(prefix)?;
        rest.starts_with(|c: char| c.is_ascii_uppercase()).then(|| v.clone())
    })
}

fn binding_of(e: &Value) -> Option<(Strength, String)> {
    let b = e.get("binding")?;
    let strength = match b.get("strength")?.as_str()? {
        "required" => Strength::Required,
        "extensible" => Strength::Extensible,
        "preferred" => Strength::Preferred,
        _ => Strength::Example,
    };
    Some((strength, b.get("valueSet")?.as_str()?.to_owned()))
}

/// Published R4 invariants whose expression contradicts their own human text, with the
/// expression the text states (applied only to the exact published expression).
const ERRATA: &[(&str, &str, &str)] = &[(
    "que-12",
    "enableWhen.count() > 2 implies enableBehavior.exists()",
    // "If there are more than one enableWhen, enableBehavior must be specified".
    "enableWhen.count() > 1 implies enableBehavior.exists()",
)];

fn corrected<'s>(key: &str, source: &'s str) -> &'s str {
    ERRATA.iter().find(|(k, published, _)| *k == key && *published == source).map_or(source, |(_, _, fixed)| fixed)
}

fn constraints_of(e: &Value, cache: &mut ExpressionCache, uncompiled: &mut Vec<String>) -> Vec<Constraint> {
    let mut out = Vec::new();
    for c in e.get("constraint").and_then(Value::as_array).into_iter().flatten() {
        let key = c.get("key").and_then(Value::as_str).unwrap_or("").to_owned();
        let Some(source) = c.get("expression").and_then(Value::as_str) else {
            continue;
        };
        let source = corrected(&key, source);
        if crate::native::NATIVE_CONSTRAINTS.contains(&key.as_str()) {
            continue;
        }
        match compile_cached(source, cache) {
            Ok(expression) => out.push(Constraint {
                error: c.get("severity").and_then(Value::as_str) != Some("warning"),
                human: c.get("human").and_then(Value::as_str).unwrap_or("").to_owned(),
                key,
                expression,
            }),
            Err(err) => {
                let entry = format!("{key}: {err}");
                if !uncompiled.contains(&entry) {
                    uncompiled.push(entry);
                }
            }
        }
    }
    out
}

/// `context` (where the extension may be used) and the compiled `contextInvariant`s.
#[allow(clippy::type_complexity)]
fn contexts_of(sd: &Value, cache: &mut ExpressionCache) -> (Vec<ExtensionContext>, Vec<(String, Arc<Expression>)>) {
    let list = sd.get("context").and_then(Value::as_array).into_iter().flatten();
    let contexts = list
        .filter_map(|c| {
            let expression = c.get("expression")?.as_str()?.to_owned();
            Some(match c.get("type")?.as_str()? {
                "element" => ExtensionContext::Element(expression),
                "extension" => ExtensionContext::Extension(expression),
                _ => match compile_cached(&expression, cache) {
                    Ok(compiled) => ExtensionContext::FhirPath(expression, compiled),
                    Err(_) => ExtensionContext::Anywhere,
                },
            })
        })
        .collect();
    let invariants = sd
        .get("contextInvariant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|source| compile_cached(source, cache).ok().map(|c| (source.to_owned(), c)))
        .collect();
    (contexts, invariants)
}

fn slicing_of(e: &Value) -> Option<Slicing> {
    let s = e.get("slicing")?;
    let discriminators = s
        .get("discriminator")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let kind = match d.get("type")?.as_str()? {
                "value" => DiscriminatorKind::Value,
                "pattern" => DiscriminatorKind::Pattern,
                "exists" => DiscriminatorKind::Exists,
                "type" => DiscriminatorKind::Type,
                _ => DiscriminatorKind::Profile,
            };
            Some((kind, d.get("path")?.as_str()?.to_owned()))
        })
        .collect();
    Some(Slicing { discriminators, closed: s.get("rules").and_then(Value::as_str) == Some("closed") })
}
