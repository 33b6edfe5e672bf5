//! Building the FHIR `Parameters` resources that operations answer with.

use serde_json::{json, Map, Value};

use crate::code_system::Designation;

#[derive(Default)]
pub(crate) struct Parameters {
    list: Vec<Value>,
}

impl Parameters {
    /// `{"name": name, key: value}`, e.g. `("display", "valueString", "…")`.
    pub fn value(&mut self, name: &str, key: &str, value: impl Into<Value>) -> &mut Self {
        self.list.push(single(name, key, value));
        self
    }

    pub fn parts(&mut self, name: &str, parts: Vec<Value>) -> &mut Self {
        self.list.push(json!({"name": name, "part": parts}));
        self
    }

    pub fn build(&mut self) -> Value {
        json!({"resourceType": "Parameters", "parameter": std::mem::take(&mut self.list)})
    }
}

pub(crate) fn single(name: &str, key: &str, value: impl Into<Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert(key.into(), value.into());
    Value::Object(m)
}

/// A `designation` parameter of `$lookup`.
pub(crate) fn designation_parts(d: &Designation) -> Vec<Value> {
    let mut parts = Vec::new();
    if let Some(lang) = &d.language {
        parts.push(single("language", "valueCode", &**lang));
    }
    if let Some(u) = &d.use_ {
        parts.push(single("use", "valueCoding", u.clone()));
    }
    parts.push(single("value", "valueString", &*d.value));
    parts
}
