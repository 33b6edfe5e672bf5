//! Parsing of the generated tables into lookup structures.

// FxHash: the keys are our own static strings, so hash flooding is not a concern, and
// model lookups sit on every hot path (parsing, checking, indexing).
use rustc_hash::FxHashMap as HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Primitive,
    Complex,
    Resource,
}

#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub kind: TypeKind,
    /// The type it specializes (`DomainResource` for `Patient`); empty for `Element`/`Resource`.
    pub base: &'static str,
    pub is_abstract: bool,
    /// The value regex of a primitive type, as given in the specification.
    pub regex: Option<&'static str>,
}

/// A declared type of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// FHIR type code (`HumanName`, `boolean`, `BackboneElement`); for the few elements
    /// typed with a FHIRPath system type (`Element.id`, `Extension.url`) the FHIR type
    /// the specification gives for them (`string`, `uri`), with `system` set.
    pub code: &'static str,
    pub system: bool,
    /// Allowed target resource types of a Reference or canonical (empty: any).
    pub targets: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingStrength {
    Required,
    Extensible,
    Preferred,
    Example,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub strength: BindingStrength,
    /// Canonical URL of the value set, possibly with `|version`.
    pub value_set: &'static str,
}

#[derive(Debug)]
pub struct ElementDef {
    /// Full path without the choice suffix, e.g. `Observation.value`, `Patient.contact.name`.
    pub path: &'static str,
    /// Last path segment (`value` for `value[x]`).
    pub name: &'static str,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    pub types: Vec<TypeRef>,
    pub summary: bool,
    pub modifier: bool,
    /// `value[x]`: the JSON name is the name followed by the capitalised type code.
    pub choice: bool,
    /// Written as an XML attribute (`Element.id`, `Extension.url`).
    pub xml_attr: bool,
    /// Written as embedded XHTML in XML (`Narrative.div`).
    pub xhtml: bool,
    /// `Questionnaire.item.item` reuses the definition at `Questionnaire.item`.
    pub content_ref: Option<&'static str>,
    pub binding: Option<Binding>,
    /// Position among its siblings, for canonical element order (XML needs it).
    pub order: u32,
}

impl ElementDef {
    pub fn is_array(&self) -> bool {
        self.max != Some(1) && self.max != Some(0)
    }

    /// The path whose children describe this element's own children, when the element is
    /// a backbone (inline) element; `None` when its children come from a named type.
    pub fn backbone_path(&self) -> Option<&'static str> {
        if let Some(r) = self.content_ref {
            return Some(r);
        }
        match self.types.first().map(|t| t.code) {
            Some("BackboneElement") | Some("Element") if self.types.len() == 1 => Some(self.path),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl SearchParamType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Date => "date",
            Self::String => "string",
            Self::Token => "token",
            Self::Reference => "reference",
            Self::Composite => "composite",
            Self::Quantity => "quantity",
            Self::Uri => "uri",
            Self::Special => "special",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SearchParamDef {
    pub resource: &'static str,
    pub code: &'static str,
    pub kind: SearchParamType,
    /// FHIRPath expression, already narrowed to this resource type.
    pub expression: &'static str,
    pub targets: Vec<&'static str>,
    pub url: &'static str,
    /// For composites: (definition URL, expression relative to the composite's node).
    pub components: Vec<(&'static str, &'static str)>,
}

#[derive(Debug)]
pub struct Compartment {
    pub code: &'static str,
    /// Resource type → the search parameters that link it to the compartment owner.
    pub members: HashMap<&'static str, Vec<&'static str>>,
}

pub struct Model {
    types: HashMap<&'static str, TypeDef>,
    elements: HashMap<&'static str, ElementDef>,
    /// Parent path (type name or backbone path) → child element indexes in definition order.
    children: HashMap<&'static str, Vec<&'static str>>,
    value_sets: HashMap<&'static str, Vec<(&'static str, Vec<&'static str>)>>,
    search_params: HashMap<&'static str, Vec<SearchParamDef>>,
    compartments: HashMap<&'static str, Compartment>,
    resource_types: Vec<&'static str>,
}

const TYPES: &str = include_str!("generated/types.tsv");
const ELEMENTS: &str = include_str!("generated/elements.tsv");
const VALUE_SETS: &str = include_str!("generated/valuesets.tsv");
const SEARCH_PARAMS: &str = include_str!("generated/searchparams.tsv");
const COMPARTMENTS: &str = include_str!("generated/compartments.tsv");

fn rows(table: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    table.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(|l| l.split('\t').collect())
}

impl Model {
    pub(crate) fn load_r4() -> Model {
        let mut types = HashMap::default();
        let mut resource_types = Vec::new();
        for r in rows(TYPES) {
            let kind = match r[1] {
                "P" => TypeKind::Primitive,
                "C" => TypeKind::Complex,
                _ => TypeKind::Resource,
            };
            if kind == TypeKind::Resource && r[3] == "0" {
                resource_types.push(r[0]);
            }
            types.insert(
                r[0],
                TypeDef {
                    name: r[0],
                    kind,
                    base: r[2],
                    is_abstract: r[3] == "1",
                    regex: (!r[4].is_empty()).then_some(r[4]),
                },
            );
        }
        resource_types.sort_unstable();

        let mut elements = HashMap::default();
        let mut children: HashMap<&'static str, Vec<&'static str>> = HashMap::default();
        for r in rows(ELEMENTS) {
            let path = r[0];
            let (parent, name) = path.rsplit_once('.').expect("element paths have a parent");
            let flags = r[4];
            let types = r[3]
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    let (code, targets) = match t.split_once('(') {
                        Some((c, rest)) => (c, rest.trim_end_matches(')').split('|').collect::<Vec<_>>()),
                        None => (t, Vec::new()),
                    };
                    match code.strip_prefix("System.") {
                        Some(sys) => TypeRef {
                            code: sys.split_once(':').map(|(_, f)| f).unwrap_or("string"),
                            system: true,
                            targets,
                        },
                        None => TypeRef { code, system: false, targets },
                    }
                })
                .collect();
            let binding = r.get(6).filter(|b| !b.is_empty()).and_then(|b| {
                let (strength, vs) = b.split_once('|')?;
                let strength = match strength {
                    "required" => BindingStrength::Required,
                    "extensible" => BindingStrength::Extensible,
                    "preferred" => BindingStrength::Preferred,
                    _ => BindingStrength::Example,
                };
                Some(Binding { strength, value_set: vs })
            });
            let siblings = children.entry(parent).or_default();
            let order = siblings.len() as u32;
            siblings.push(path);
            elements.insert(
                path,
                ElementDef {
                    path,
                    name,
                    min: r[1].parse().unwrap_or(0),
                    max: if r[2] == "*" { None } else { r[2].parse().ok() },
                    types,
                    summary: flags.contains('S'),
                    modifier: flags.contains('M'),
                    choice: flags.contains('x'),
                    xml_attr: flags.contains('A'),
                    xhtml: r[3] == "xhtml",
                    content_ref: r.get(5).filter(|c| !c.is_empty()).copied(),
                    binding,
                    order,
                },
            );
        }

        let mut value_sets: HashMap<&str, Vec<(&str, Vec<&str>)>> = HashMap::default();
        for r in rows(VALUE_SETS) {
            value_sets.entry(r[0]).or_default().push((r[1], r[2].split(' ').collect()));
        }

        let mut search_params: HashMap<&str, Vec<SearchParamDef>> = HashMap::default();
        for r in rows(SEARCH_PARAMS) {
            let Some(kind) = SearchParamType::parse(r[2]) else {
                continue;
            };
            search_params.entry(r[0]).or_default().push(SearchParamDef {
                resource: r[0],
                code: r[1],
                kind,
                expression: r[3],
                targets: r[4].split(',').filter(|t| !t.is_empty()).collect(),
                url: r[5],
                components: r
                    .get(6)
                    .map(|c| c.split(',').filter_map(|c| c.split_once(';')).collect::<Vec<_>>())
                    .unwrap_or_default(),
            });
        }

        let mut compartments: HashMap<&str, Compartment> = HashMap::default();
        for r in rows(COMPARTMENTS) {
            let params: Vec<&str> = r[2].split(',').filter(|p| !p.is_empty()).collect();
            let c = compartments.entry(r[0]).or_insert_with(|| Compartment { code: r[0], members: HashMap::default() });
            if !params.is_empty() {
                c.members.insert(r[1], params);
            }
        }

        Model { types, elements, children, value_sets, search_params, compartments, resource_types }
    }

    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Concrete (non-abstract) resource types, sorted.
    pub fn resource_types(&self) -> &[&'static str] {
        &self.resource_types
    }

    pub fn is_resource_type(&self, name: &str) -> bool {
        self.types.get(name).is_some_and(|t| t.kind == TypeKind::Resource && !t.is_abstract)
    }

    pub fn is_primitive(&self, name: &str) -> bool {
        self.types.get(name).is_some_and(|t| t.kind == TypeKind::Primitive)
    }

    /// True when `ty` is `base` or derives from it (`Patient` ⊂ `DomainResource` ⊂ `Resource`,
    /// `code` ⊂ `string`, `Age` ⊂ `Quantity`).
    pub fn is_subtype(&self, ty: &str, base: &str) -> bool {
        let mut cur = ty;
        loop {
            if cur == base {
                return true;
            }
            match self.types.get(cur) {
                Some(t) if !t.base.is_empty() => cur = t.base,
                _ => return false,
            }
        }
    }

    pub fn element(&self, path: &str) -> Option<&ElementDef> {
        self.elements.get(path)
    }

    /// Children, in definition order, of a type (`HumanName`, `Patient`) or backbone path
    /// (`Patient.contact`). Backbone paths with a content reference resolve to their target.
    pub fn children(&self, parent: &str) -> impl Iterator<Item = &ElementDef> + '_ {
        let parent = self.elements.get(parent).and_then(|e| e.content_ref).unwrap_or(parent);
        self.children.get(parent).into_iter().flatten().filter_map(|p| self.elements.get(p))
    }

    /// The element definition of a child by its JSON property name, with the concrete type
    /// when the property names one branch of a choice (`valueQuantity` → `value[x]`,
    /// `Quantity`). `parent` is a type name or backbone path.
    pub fn child<'a>(&'a self, parent: &str, json_name: &str) -> Option<(&'a ElementDef, &'a TypeRef)> {
        let parent = self.elements.get(parent).and_then(|e| e.content_ref).unwrap_or(parent);
        let mut key = String::with_capacity(parent.len() + json_name.len() + 1);
        key.push_str(parent);
        key.push('.');
        key.push_str(json_name);
        if let Some(e) = self.elements.get(key.as_str()) {
            if !e.choice {
                return Some((e, e.types.first().unwrap_or(&BACKBONE)));
            }
        }
        // A choice element: find the longest prefix that is a choice element, then match
        // the remainder against its types.
        let split = json_name.char_indices().filter(|(_, c)| c.is_ascii_uppercase());
        for (i, _) in split {
            key.truncate(parent.len() + 1);
            key.push_str(&json_name[..i]);
            if let Some(e) = self.elements.get(key.as_str()) {
                if e.choice {
                    let suffix = &json_name[i..];
                    return e.types.iter().find(|t| type_suffix_matches(t.code, suffix)).map(|t| (e, t));
                }
            }
        }
        None
    }

    /// The path whose children describe the children of a node of element `e` with the
    /// chosen type `t`: the backbone path, or the type name.
    pub fn child_parent<'a>(&self, e: &'a ElementDef, t: &'a TypeRef) -> &'a str {
        e.backbone_path().unwrap_or(t.code)
    }

    /// Codes allowed by a required binding, per system, when the value set could be
    /// expanded from the core package; `None` otherwise.
    pub fn value_set_codes(&self, url: &str) -> Option<&[(&'static str, Vec<&'static str>)]> {
        let url = url.split('|').next().unwrap_or(url);
        self.value_sets.get(url).map(Vec::as_slice)
    }

    /// Search parameters defined for a resource type, including the `Resource` and
    /// `DomainResource` ones (`_id`, `_lastUpdated`, `_tag`, …).
    pub fn search_params<'a>(&'a self, resource: &str) -> impl Iterator<Item = &'a SearchParamDef> + 'a {
        let own = self.search_params.get(resource).map(Vec::as_slice).unwrap_or(&[]);
        let domain = if resource == "Bundle" || resource == "Binary" || resource == "Parameters" {
            &[][..]
        } else {
            self.search_params.get("DomainResource").map(Vec::as_slice).unwrap_or(&[])
        };
        let base = self.search_params.get("Resource").map(Vec::as_slice).unwrap_or(&[]);
        own.iter().chain(domain).chain(base)
    }

    pub fn search_param(&self, resource: &str, code: &str) -> Option<&SearchParamDef> {
        self.search_params(resource).find(|p| p.code == code)
    }

    pub fn compartment(&self, code: &str) -> Option<&Compartment> {
        self.compartments.get(code)
    }
}

/// The type of content-reference elements, which declare none of their own.
static BACKBONE: TypeRef = TypeRef { code: "BackboneElement", system: false, targets: Vec::new() };

/// `Quantity` matches suffix `Quantity`; `dateTime` matches `DateTime`. The quantity
/// profiles are named after their base type on the wire (`doseQuantity`).
fn type_suffix_matches(code: &str, suffix: &str) -> bool {
    let code = match code {
        "SimpleQuantity" | "MoneyQuantity" => "Quantity",
        c => c,
    };
    let mut c = code.chars();
    let mut s = suffix.chars();
    match (c.next(), s.next()) {
        (Some(a), Some(b)) if a.to_ascii_uppercase() == b => c.as_str() == s.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_core_facts() {
        let m = crate::r4();
        assert!(m.is_resource_type("Patient"));
        assert!(!m.is_resource_type("DomainResource"));
        assert!(!m.is_resource_type("HumanName"));
        assert_eq!(m.resource_types().len(), 146);
        let name = m.element("Patient.name").unwrap();
        assert!(name.is_array());
        assert_eq!(name.types[0].code, "HumanName");
        let (e, t) = m.child("Observation", "valueQuantity").unwrap();
        assert_eq!((e.path, t.code), ("Observation.value", "Quantity"));
        let (e, t) = m.child("Patient", "deceasedDateTime").unwrap();
        assert_eq!((e.path, t.code), ("Patient.deceased", "dateTime"));
        assert!(m.child("Patient", "deceasedString").is_none());
        let (_, t) = m.child("Dosage.doseAndRate", "doseQuantity").unwrap();
        assert_eq!(t.code, "SimpleQuantity");
        let (e, _) = m.child("Questionnaire.item", "item").unwrap();
        assert_eq!(e.backbone_path(), Some("Questionnaire.item"));
        assert!(m.children("Questionnaire.item.item").any(|c| c.name == "linkId"));
        assert!(m.is_subtype("code", "string"));
        assert!(m.is_subtype("Patient", "Resource"));
        let gender = m.element("Patient.gender").unwrap().binding.as_ref().unwrap();
        let codes = m.value_set_codes(gender.value_set).unwrap();
        assert!(codes[0].1.contains(&"female"));
        assert!(m.search_param("Patient", "_id").is_some());
        assert_eq!(m.search_param("Patient", "name").unwrap().kind, SearchParamType::String);
        let p = m.compartment("Patient").unwrap();
        assert_eq!(p.members["Observation"], vec!["subject", "performer"]);
    }

    #[test]
    fn xml_attributes_are_marked() {
        let m = crate::r4();
        assert!(m.element("Extension.url").unwrap().xml_attr);
        assert!(m.element("HumanName.id").unwrap().xml_attr);
        assert!(!m.element("Patient.id").unwrap().xml_attr);
        assert!(m.element("Narrative.div").unwrap().xhtml);
    }
}
