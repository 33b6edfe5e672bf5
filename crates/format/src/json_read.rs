//! JSON read as FHIR reads it: an object never names one property twice (json.html; RFC
//! 8259 leaves duplicates to the reader, and serde_json keeps the last). Two readers of one
//! body must see one resource: a signature or a validator seeing the first `"id"` and the
//! store the last would be two. A leading byte order mark is ignored.
//!
//! Written here rather than taken from a crate: it is serde_json's own `Value` reader with
//! the duplicate test added (its map insert returns what a key held), so the cost is that
//! of `serde_json::from_slice`.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The key serde_json's reader (with `arbitrary_precision`, as this workspace builds it)
/// hands a number under, as a one-entry map holding its digits.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `bytes` as one JSON value, refusing an object that names a property twice (the
/// error says which, and where).
pub fn json_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    // RFC 8259 §8.1 lets a reader ignore a byte order mark; Windows tools write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A JSON value with no object naming a property twice.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    #[inline]
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    #[inline]
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    #[inline]
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    #[inline]
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    #[inline]
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    #[inline]
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    #[inline]
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    #[inline]
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let first = match map.next_key_seed(FirstKey)? {
            None => return Ok(Value::Object(Map::new())),
            Some(FirstKeyClass::Number) => {
                let digits: String = map.next_value()?;
                return digits.parse::<Number>().map(Value::Number).map_err(de::Error::custom);
            }
            Some(FirstKeyClass::Key(k)) => k,
        };
        let mut object = Map::new();
        object.insert(first, map.next_value_seed(StrictValue)?);
        while let Some(key) = map.next_key::<String>()? {
            // Refused before its value is read: the error points at the name.
            match object.entry(key) {
                serde_json::map::Entry::Occupied(o) => {
                    let k = o.key();
                    return Err(de::Error::custom(format_args!("the property \"{k}\" appears twice in one object")));
                }
                serde_json::map::Entry::Vacant(v) => {
                    v.insert(map.next_value_seed(StrictValue)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// An object's first key, told apart from the token of a number without allocating for it
/// (every number of the body comes this way).
struct FirstKey;

enum FirstKeyClass {
    Number,
    Key(String),
}

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = FirstKeyClass;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FirstKeyClass, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKey {
    type Value = FirstKeyClass;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    #[inline]
    fn visit_str<E>(self, s: &str) -> Result<FirstKeyClass, E> {
        Ok(if s == NUMBER_TOKEN { FirstKeyClass::Number } else { FirstKeyClass::Key(s.to_string()) })
    }

    #[inline]
    fn visit_string<E>(self, s: String) -> Result<FirstKeyClass, E> {
        Ok(if s == NUMBER_TOKEN { FirstKeyClass::Number } else { FirstKeyClass::Key(s) })
    }
}

#[cfg(test)]
mod tests {
    use super::json_from_slice;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"mg"},
            "n":[0,-3,18446744073709551615,123456789012345678901234567890,1e400,0.000000000000000000001],
            "s":"日本\u0041\"","t":true,"f":false,"z":null,"e":{},"a":[]}"#;
        let ours = json_from_slice(text.as_bytes()).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
        // Decimals keep their digits, as FHIR needs.
        assert_eq!(ours["valueQuantity"]["value"].to_string(), "1.50");
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn a_property_named_twice_is_refused_where_it_is() {
        for text in [
            r#"{"resourceType":"Patient","id":"a","id":"b"}"#,
            r#"{"resourceType":"Patient","name":[{"family":"x","given":["y"],"family":"z"}]}"#,
            r#"{"a":{"b":1},"a":{"b":1}}"#,
        ] {
            let e = json_from_slice(text.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("appears twice"), "{e}");
            assert!(e.column() > 0, "{e}");
            // At the second name, not at the end of its value.
            let second = text.rfind(['"']).unwrap();
            assert!(e.column() <= second + 1, "{e}");
        }
        // The same name in different objects is no duplicate.
        assert!(json_from_slice(br#"{"a":{"id":1},"b":{"id":1},"id":2}"#).is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let v = json_from_slice(b"\xEF\xBB\xBF{\"resourceType\":\"Patient\"}").unwrap();
        assert_eq!(v["resourceType"], "Patient");
        assert!(json_from_slice(b"\xEF\xBB\xBF").is_err());
        assert!(json_from_slice(b"{}\xEF\xBB\xBF").is_err(), "only at the start");
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for text in ["", "{", r#"{"a":1} x"#, "[1,]", r#"{"a" 1}"#] {
            assert!(json_from_slice(text.as_bytes()).is_err(), "{text}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(json_from_slice(deep.as_bytes()).unwrap_err().to_string().starts_with("recursion limit exceeded"));
    }
}
