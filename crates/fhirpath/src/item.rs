//! Evaluation results: FHIR nodes borrowed from the input JSON, or FHIRPath system values.

use crate::datetime::{DateTime, Time};
use crate::decimal::Decimal;
use crate::nav;
use crate::quantity::Quantity;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// A node of the input resource. Borrowed, `Copy`: navigating never clones JSON.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// The JSON value: an object for complex types, a JSON primitive for primitive types;
    /// `None` for a primitive that has only an id/extensions (in its `_name` sibling).
    pub value: Option<&'a Value>,
    /// The `_name` sibling object of a primitive (its id and extensions), if any.
    pub ext: Option<&'a Value>,
    /// FHIR type code (`HumanName`, `code`, `Patient`, `BackboneElement`); empty when the
    /// model does not describe the node (unknown elements).
    pub fhir_type: &'static str,
    /// Model path whose children describe this node (backbone path or type name).
    pub(crate) path: &'static str,
}

/// One step of a node's location: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl<'a> Node<'a> {
    /// The node for a resource (its type is read from `resourceType`).
    pub fn resource(v: &'a Value) -> Node<'a> {
        Node::resource_expecting(v, None)
    }

    /// As [`Node::resource`], skipping the model lookup when the type is the expected one.
    pub(crate) fn resource_expecting(v: &'a Value, expected: Option<&'static str>) -> Node<'a> {
        let rt = match v {
            Value::Object(m) => crate::eval::get2(m, "resourceType", None).0.and_then(Value::as_str),
            _ => None,
        };
        let ty = match (rt, expected) {
            (Some(r), Some(e)) if r == e => e,
            _ => rt.and_then(nav::type_name).unwrap_or(""),
        };
        Node { value: Some(v), ext: None, fhir_type: ty, path: ty }
    }

    /// The FHIR type name, inferred from the JSON when the model does not know the node.
    pub fn type_name(&self) -> &'static str {
        if !self.fhir_type.is_empty() {
            return self.fhir_type;
        }
        match self.value {
            Some(Value::Bool(_)) => "boolean",
            Some(Value::String(_)) => "string",
            Some(Value::Number(n)) if n.as_str().contains(['.', 'e', 'E']) => "decimal",
            Some(Value::Number(_)) => "integer",
            _ => "Element",
        }
    }

    /// Where this node sits in `root`, as keys and indexes (for a primitive, the location
    /// of its value, or of its `_name` sibling when it only has extensions). Computed on
    /// demand by an identity search, so navigation itself stays allocation-free.
    pub fn location(&self, root: &Value) -> Option<Vec<PathSegment>> {
        let target = self.value.or(self.ext)?;
        let mut path = Vec::new();
        if find(root, target, &mut path) {
            if self.value.is_none() {
                // Report the primitive's own key, not the `_key` holding its extensions.
                for seg in path.iter_mut().rev() {
                    if let PathSegment::Key(k) = seg {
                        if let Some(s) = k.strip_prefix('_') {
                            *k = s.to_string();
                        }
                        break;
                    }
                }
            }
            Some(path)
        } else {
            None
        }
    }

    pub fn is_primitive(&self) -> bool {
        !matches!(self.value, Some(Value::Object(_)))
            && (self.fhir_type.is_empty() || nav::is_primitive(self.fhir_type))
    }
}

fn find(cur: &Value, target: &Value, path: &mut Vec<PathSegment>) -> bool {
    if std::ptr::eq(cur, target) {
        return true;
    }
    match cur {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(PathSegment::Key(k.clone()));
                if find(v, target, path) {
                    return true;
                }
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(PathSegment::Index(i));
                if find(v, target, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    false
}

/// A FHIRPath type reported by `type()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub namespace: &'static str,
    pub name: Arc<str>,
}

#[derive(Clone, Debug)]
pub enum Item<'a> {
    Node(Node<'a>),
    Boolean(bool),
    String(Arc<str>),
    Integer(i64),
    /// System.Long (FHIRPath 3.0): a 64-bit integer kept apart from Integer for typing.
    Long(i64),
    Decimal(Decimal),
    Date(DateTime),
    DateTime(DateTime),
    Time(Time),
    Quantity(Arc<Quantity>),
    TypeInfo(Arc<TypeInfo>),
}

/// A borrowed view of an item's value, with FHIR primitives read as system values.
#[derive(Clone, Debug)]
pub(crate) enum Prim<'i> {
    Bool(bool),
    Str(&'i str),
    Int(i64),
    Long(i64),
    Dec(Decimal),
    Date(DateTime),
    DateTime(DateTime),
    Time(Time),
    Quantity(Cow<'i, Quantity>),
    /// A complex FHIR node (compared structurally).
    Complex(&'i Value),
    TypeInfo(&'i TypeInfo),
    /// A primitive node without a value (only extensions), or an unreadable one.
    Null,
}

impl<'a> Item<'a> {
    pub fn string(s: &str) -> Item<'a> {
        Item::String(Arc::from(s))
    }

    /// The type name used in output: FHIRPath system types are lower-case (`integer`,
    /// `dateTime`, but `Quantity`), FHIR nodes give their FHIR type.
    pub fn type_name(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Item::Node(n) => n.type_name(),
            Item::Boolean(_) => "boolean",
            Item::String(_) => "string",
            Item::Integer(_) => "integer",
            Item::Long(_) => "long",
            Item::Decimal(_) => "decimal",
            Item::Date(_) => "date",
            Item::DateTime(_) => "dateTime",
            Item::Time(_) => "time",
            Item::Quantity(_) => "Quantity",
            Item::TypeInfo(_) => "TypeInfo",
        })
    }

    pub fn as_node(&self) -> Option<&Node<'a>> {
        match self {
            Item::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The JSON of a FHIR node (the primitive value for primitives).
    pub fn json(&self) -> Option<&'a Value> {
        match self {
            Item::Node(n) => n.value,
            _ => None,
        }
    }

    pub(crate) fn prim(&self) -> Prim<'_> {
        match self {
            Item::Boolean(b) => Prim::Bool(*b),
            Item::String(s) => Prim::Str(s),
            Item::Integer(i) => Prim::Int(*i),
            Item::Long(i) => Prim::Long(*i),
            Item::Decimal(d) => Prim::Dec(*d),
            Item::Date(d) => Prim::Date(*d),
            Item::DateTime(d) => Prim::DateTime(*d),
            Item::Time(t) => Prim::Time(*t),
            Item::Quantity(q) => Prim::Quantity(Cow::Borrowed(q)),
            Item::TypeInfo(t) => Prim::TypeInfo(t),
            Item::Node(n) => node_prim(n),
        }
    }

    /// The string value, for System strings and string-like FHIR primitives.
    pub fn as_str(&self) -> Option<&str> {
        match self.prim() {
            Prim::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text form used by `toString()` and string conversions.
    pub fn to_text(&self) -> Option<String> {
        Some(match self.prim() {
            Prim::Bool(b) => b.to_string(),
            Prim::Str(s) => s.to_string(),
            Prim::Int(i) | Prim::Long(i) => i.to_string(),
            Prim::Dec(d) => d.to_string(),
            Prim::Date(d) | Prim::DateTime(d) => d.to_string(),
            Prim::Time(t) => t.to_string(),
            Prim::Quantity(q) => q.to_string(),
            Prim::TypeInfo(t) => t.name.to_string(),
            Prim::Complex(_) | Prim::Null => return None,
        })
    }

    /// The item as JSON: a node's own JSON, or the natural JSON of a system value.
    pub fn to_json(&self) -> Value {
        match self {
            Item::Node(n) => match (n.value, n.ext) {
                (Some(v), _) => v.clone(),
                (None, Some(e)) => e.clone(),
                _ => Value::Null,
            },
            Item::Boolean(b) => Value::Bool(*b),
            Item::String(s) => Value::String(s.to_string()),
            Item::Integer(i) | Item::Long(i) => Value::from(*i),
            Item::Decimal(d) => number(&d.to_string()),
            Item::Date(d) | Item::DateTime(d) => Value::String(d.to_string()),
            Item::Time(t) => Value::String(t.to_string()),
            Item::Quantity(q) => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), number(&q.value.to_string()));
                if crate::quantity::calendar_unit(&q.unit).is_some() {
                    m.insert("unit".into(), Value::String(q.unit.to_string()));
                } else {
                    m.insert("unit".into(), Value::String(q.unit.to_string()));
                    m.insert("system".into(), Value::String("http://unitsofmeasure.org".into()));
                    m.insert("code".into(), Value::String(q.unit.to_string()));
                }
                Value::Object(m)
            }
            Item::TypeInfo(t) => serde_json::json!({"namespace": t.namespace, "name": &*t.name}),
        }
    }
}

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn node_prim<'i>(n: &'i Node<'_>) -> Prim<'i> {
    let Some(v) = n.value else { return Prim::Null };
    let ty = n.fhir_type;
    match v {
        Value::Object(_) => {
            if nav::is_quantity_type(ty) {
                if let Some(q) = fhir_quantity(v) {
                    return Prim::Quantity(Cow::Owned(q));
                }
            }
            Prim::Complex(v)
        }
        Value::Bool(b) => Prim::Bool(*b),
        Value::Number(num) => {
            let text = num.as_str();
            let as_int = matches!(ty, "integer" | "positiveInt" | "unsignedInt" | "integer64")
                || (ty.is_empty() && !text.contains(['.', 'e', 'E']));
            if as_int {
                if let Ok(i) = text.parse() {
                    return Prim::Int(i);
                }
            }
            Decimal::parse(text).map(Prim::Dec).unwrap_or(Prim::Null)
        }
        Value::String(s) => match ty {
            "date" => DateTime::parse_date(s).map(Prim::Date).unwrap_or(Prim::Str(s)),
            "dateTime" | "instant" => DateTime::parse_datetime(s).map(Prim::DateTime).unwrap_or(Prim::Str(s)),
            "time" => Time::parse(s).map(Prim::Time).unwrap_or(Prim::Str(s)),
            _ => Prim::Str(s),
        },
        _ => Prim::Null,
    }
}

/// A FHIR Quantity as a system Quantity: UCUM code when coded in UCUM, else the unit text.
pub(crate) fn fhir_quantity(v: &Value) -> Option<Quantity> {
    let Value::Object(m) = v else { return None };
    let (mut value, mut code, mut unit, mut system) = (None, None, None, None);
    for (k, x) in m {
        match k.as_str() {
            "value" => value = x.as_number(),
            "code" => code = x.as_str(),
            "unit" => unit = x.as_str(),
            "system" => system = x.as_str(),
            _ => {}
        }
    }
    let value = Decimal::parse(value?.as_str())?;
    let u = match (system, code, unit) {
        (Some("http://unitsofmeasure.org"), Some(c), _) => c,
        (None, Some(c), _) => c,
        (_, _, Some(u)) => u,
        (_, Some(c), None) => c,
        _ => "1",
    };
    Some(Quantity::new(value, u))
}
