//! Columns, their declared types, and the typed values of a row.

use serde_json::{Map, Value};
use tsunagu_fhirpath::{Decimal, Item};

/// The storage kind of a column, from its declared FHIR type. Every FHIR primitive maps to
/// one of these; a column without `type` is [`ColumnType::Any`] and keeps what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// string, code, id, uri, url, canonical, oid, uuid, markdown, base64Binary, xhtml
    String,
    /// integer, positiveInt, unsignedInt, integer64
    Integer,
    Decimal,
    Boolean,
    Date,
    DateTime,
    Instant,
    Time,
    /// No declared type (or a complex one): the value's own kind, complex values as JSON.
    Any,
}

impl ColumnType {
    /// The storage kind of a FHIR type name; `None` for a name that is not a FHIR type.
    pub fn from_fhir(name: &str) -> Option<ColumnType> {
        Some(match name {
            "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid" | "markdown" | "base64Binary"
            | "xhtml" => ColumnType::String,
            "integer" | "positiveInt" | "unsignedInt" | "integer64" => ColumnType::Integer,
            "decimal" => ColumnType::Decimal,
            "boolean" => ColumnType::Boolean,
            "date" => ColumnType::Date,
            "dateTime" => ColumnType::DateTime,
            "instant" => ColumnType::Instant,
            "time" => ColumnType::Time,
            // Complex types are allowed by the specification for engines that can hold
            // them; here they are kept as JSON.
            n if n.starts_with(|c: char| c.is_ascii_uppercase()) => ColumnType::Any,
            _ => return None,
        })
    }

    fn holds_text(self) -> bool {
        matches!(
            self,
            ColumnType::String | ColumnType::Date | ColumnType::DateTime | ColumnType::Instant | ColumnType::Time
        )
    }
}

/// One output column of a view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The declared FHIR type name (`"string"`, `"dateTime"`), if any.
    pub fhir_type: Option<String>,
    pub kind: ColumnType,
    /// Whether the column holds a list of values.
    pub collection: bool,
}

/// One typed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    /// Strings, and dates, times and instants in their FHIR text form.
    String(String),
    /// A complex value in an untyped column.
    Json(Value),
    /// The values of a `collection: true` column.
    List(Vec<Cell>),
}

impl Cell {
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Boolean(b) => Value::Bool(*b),
            Cell::Integer(i) => Value::from(*i),
            // The exact decimal text becomes a JSON number (serde_json keeps it verbatim).
            Cell::Decimal(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
            Cell::String(s) => Value::String(s.clone()),
            Cell::Json(v) => v.clone(),
            Cell::List(items) => Value::Array(items.iter().map(Cell::to_json).collect()),
        }
    }

    /// The value as CSV text: empty for null; lists and complex values as JSON text.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Boolean(b) => b.to_string(),
            Cell::Integer(i) => i.to_string(),
            Cell::Decimal(d) => d.to_string(),
            Cell::String(s) => s.clone(),
            Cell::Json(_) | Cell::List(_) => self.to_json().to_string(),
        }
    }

    /// Reads one FHIRPath result as `kind`; `Err` names what was found instead.
    pub(crate) fn from_item(item: &Item, kind: ColumnType) -> Result<Cell, String> {
        let node_json = match item {
            Item::Node(n) => match n.value {
                // A primitive with only extensions, or the empty focus of forEachOrNull.
                None | Some(Value::Null) => return Ok(Cell::Null),
                Some(v) => Some(v),
            },
            _ => None,
        };
        let found = || item.type_name().into_owned();
        match kind {
            ColumnType::Boolean => match (item, node_json) {
                (Item::Boolean(b), _) | (_, Some(Value::Bool(b))) => Ok(Cell::Boolean(*b)),
                _ => Err(found()),
            },
            ColumnType::Integer => match (item, node_json) {
                (Item::Integer(i), _) => Ok(Cell::Integer(*i)),
                (_, Some(Value::Number(n))) => n.as_i64().map(Cell::Integer).ok_or_else(found),
                _ => Err(found()),
            },
            ColumnType::Decimal => match (item, node_json) {
                (Item::Decimal(d), _) => Ok(Cell::Decimal(*d)),
                (Item::Integer(i), _) => Ok(Cell::Decimal(Decimal::from_i64(*i))),
                (_, Some(Value::Number(n))) => Decimal::parse(&n.to_string()).map(Cell::Decimal).ok_or_else(found),
                _ => Err(found()),
            },
            k if k.holds_text() => match node_json {
                Some(Value::Object(_) | Value::Array(_)) => Err(found()),
                _ => item.to_text().map(Cell::String).ok_or_else(found),
            },
            _ => Ok(match (item, node_json) {
                (_, Some(Value::Bool(b))) => Cell::Boolean(*b),
                (_, Some(Value::Number(n))) => match n.as_i64() {
                    Some(i) if !n.to_string().contains(['.', 'e', 'E']) => Cell::Integer(i),
                    _ => Decimal::parse(&n.to_string())
                        .map(Cell::Decimal)
                        .unwrap_or(Cell::Json(Value::Number(n.clone()))),
                },
                (_, Some(Value::String(s))) => Cell::String(s.clone()),
                (_, Some(v)) => Cell::Json(v.clone()),
                (Item::Boolean(b), None) => Cell::Boolean(*b),
                (Item::Integer(i), None) => Cell::Integer(*i),
                (Item::Decimal(d), None) => Cell::Decimal(*d),
                (Item::String(s), None) => Cell::String(s.to_string()),
                (other, None) => match other.to_json() {
                    Value::String(s) => Cell::String(s),
                    v => Cell::Json(v),
                },
            }),
        }
    }
}

/// One output row: a value per column of the view, in the view's column order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
}

impl Row {
    /// The row as a JSON object keyed by column name, in column order.
    pub fn to_json(&self, columns: &[Column]) -> Value {
        let mut m = Map::with_capacity(columns.len());
        for (c, v) in columns.iter().zip(&self.cells) {
            m.insert(c.name.clone(), v.to_json());
        }
        Value::Object(m)
    }
}
