//! View constants (`constant[]`): a name and one `value[x]`, offered to every expression
//! as `%name` with the FHIRPath type its FHIR type maps to.

use crate::error::{Result, ViewError};
use serde_json::Value;
use tsunagu_fhirpath::{DateTime, Decimal, Item, Time};

/// The `value[x]` types a constant may have.
const VALUE_TYPES: &[&str] = &[
    "Base64Binary",
    "Boolean",
    "Canonical",
    "Code",
    "Date",
    "DateTime",
    "Decimal",
    "Id",
    "Instant",
    "Integer",
    "Integer64",
    "Oid",
    "String",
    "PositiveInt",
    "Time",
    "UnsignedInt",
    "Uri",
    "Url",
    "Uuid",
];

#[derive(Clone, Debug)]
pub(crate) struct Constant {
    pub name: String,
    pub value: Item<'static>,
}

pub(crate) fn parse_constant(v: &Value, at: &str) -> Result<Constant> {
    let obj = v.as_object().ok_or_else(|| ViewError::invalid(at, "a constant must be an object"))?;
    let name = match obj.get("name") {
        Some(Value::String(n)) if crate::definition::is_name(n) => n.clone(),
        Some(Value::String(n)) => {
            return Err(ViewError::invalid(
                at,
                format!("constant name '{n}' is not a valid name ([A-Za-z][A-Za-z0-9_]*)"),
            ))
        }
        _ => return Err(ViewError::invalid(at, "a constant needs a string 'name'")),
    };
    let mut values = obj.iter().filter(|(k, _)| k.starts_with("value"));
    let (key, raw) = match (values.next(), values.next()) {
        (Some(one), None) => one,
        (None, _) => return Err(ViewError::invalid(at, format!("constant '{name}' has no value[x]"))),
        (Some(_), Some(_)) => return Err(ViewError::invalid(at, format!("constant '{name}' has several value[x]"))),
    };
    let ty = &key["value".len()..];
    if !VALUE_TYPES.contains(&ty) {
        return Err(ViewError::invalid(at, format!("constant '{name}': {key} is not an allowed constant type")));
    }
    let bad = || ViewError::invalid(at, format!("constant '{name}': {raw} is not a valid {key}"));
    let value = match (ty, raw) {
        ("Boolean", Value::Bool(b)) => Item::Boolean(*b),
        ("Integer" | "Integer64" | "PositiveInt" | "UnsignedInt", Value::Number(n)) => {
            Item::Integer(n.as_i64().ok_or_else(bad)?)
        }
        // FHIR JSON carries integer64 as a string.
        ("Integer64", Value::String(s)) => Item::Integer(s.parse().map_err(|_| bad())?),
        ("Decimal", Value::Number(n)) => Item::Decimal(Decimal::parse(&n.to_string()).ok_or_else(bad)?),
        ("Date", Value::String(s)) => Item::Date(DateTime::parse_date(s).ok_or_else(bad)?),
        ("DateTime" | "Instant", Value::String(s)) => Item::DateTime(DateTime::parse_datetime(s).ok_or_else(bad)?),
        ("Time", Value::String(s)) => Item::Time(Time::parse(s).ok_or_else(bad)?),
        (
            "Base64Binary" | "Canonical" | "Code" | "Id" | "Oid" | "String" | "Uri" | "Url" | "Uuid",
            Value::String(s),
        ) => Item::string(s),
        _ => return Err(bad()),
    };
    Ok(Constant { name, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_value_type_reads() {
        for (v, expected) in [
            (json!({"name": "a", "valueString": "x"}), "string"),
            (json!({"name": "a", "valueCode": "x"}), "string"),
            (json!({"name": "a", "valueInteger": 3}), "integer"),
            (json!({"name": "a", "valueInteger64": "3"}), "integer"),
            (json!({"name": "a", "valueDecimal": 1.25}), "decimal"),
            (json!({"name": "a", "valueBoolean": false}), "boolean"),
            (json!({"name": "a", "valueDate": "2020-02"}), "date"),
            (json!({"name": "a", "valueDateTime": "2020-02-03T04:05:06Z"}), "dateTime"),
            (json!({"name": "a", "valueInstant": "2020-02-03T04:05:06.7+09:00"}), "dateTime"),
            (json!({"name": "a", "valueTime": "04:05:06"}), "time"),
        ] {
            let c = parse_constant(&v, "constant[0]").unwrap();
            assert_eq!(c.value.type_name(), expected, "{v}");
        }
    }

    #[test]
    fn malformed_constants_are_refused() {
        for v in [
            json!({"name": "a"}),
            json!({"valueString": "x"}),
            json!({"name": "1a", "valueString": "x"}),
            json!({"name": "a", "valueString": "x", "valueCode": "y"}),
            json!({"name": "a", "valueQuantity": {"value": 1}}),
            json!({"name": "a", "valueInteger": "1"}),
            json!({"name": "a", "valueDate": "yesterday"}),
        ] {
            assert!(parse_constant(&v, "constant[0]").is_err(), "{v}");
        }
    }
}
