//! The terminology operations as FHIR defines their inputs (R4 terminology-service.html):
//! parameters from the URL or from a `Parameters` body, `Coding`s unpacked into
//! system/code, instance-level calls resolved to the stored resource's canonical. The
//! meaning of each operation belongs to the terminology crate; this module only maps
//! FHIR's operation inputs onto it.

use serde_json::Value;
use tsunagu_terminology::{ExpandParams, TranslateParams, ValueSetSource};

use crate::{InteractionError, Interactions, SearchParams};

/// The inputs of one operation call: named string values and named resources.
#[derive(Debug, Default, Clone)]
pub struct OperationInput {
    pub values: Vec<(String, String)>,
    pub resources: Vec<(String, Value)>,
}

impl OperationInput {
    /// From a URL query (GET).
    pub fn from_query(params: &SearchParams) -> Self {
        let values = params.pairs.iter().filter(|(k, _)| !k.starts_with("_format") && k != "_pretty").cloned();
        OperationInput { values: values.collect(), resources: Vec::new() }
    }

    /// From a `Parameters` resource (POST). A `Coding` becomes `system`/`code`/`display`
    /// (with the parameter name as prefix for `codingA`/`codingB`), a `CodeableConcept`
    /// its first coding.
    pub fn from_parameters(body: &Value) -> Result<Self, InteractionError> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(InteractionError::bad_request(
                "an operation body must be a Parameters resource",
                "操作の本文は Parameters リソースである必要があります",
            ));
        }
        let mut input = OperationInput::default();
        for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = p.get("name").and_then(Value::as_str) else { continue };
            if let Some(r) = p.get("resource") {
                input.resources.push((name.to_string(), r.clone()));
                continue;
            }
            let coding = p.get("valueCoding").or_else(|| p.pointer("/valueCodeableConcept/coding/0"));
            if let Some(coding) = coding {
                let field = |f: &str| coding.get(f).and_then(Value::as_str).map(str::to_string);
                // `codingA`/`codingB` ($subsumes) carry `codeA`/`codeB`; the rest carry `code`.
                let code_name = match name {
                    "codingA" => "codeA",
                    "codingB" => "codeB",
                    _ => "code",
                };
                input.values.extend(field("code").map(|v| (code_name.to_string(), v)));
                input.values.extend(field("system").map(|v| ("system".to_string(), v)));
                if code_name == "code" {
                    input.values.extend(field("display").map(|v| ("display".to_string(), v)));
                    input.values.extend(field("version").map(|v| ("version".to_string(), v)));
                }
                continue;
            }
            let value = p.as_object().and_then(|o| {
                o.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            });
            if let Some(v) = value {
                input.values.push((name.to_string(), v));
            }
        }
        Ok(input)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.values.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    fn resource(&self, name: &str) -> Option<&Value> {
        self.resources.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn require(&self, name: &str) -> Result<&str, InteractionError> {
        self.get(name).ok_or_else(|| {
            InteractionError::bad_request(
                format!("the parameter '{name}' is required"),
                format!("パラメータ '{name}' が必要です"),
            )
        })
    }

    fn number(&self, name: &str) -> Result<Option<usize>, InteractionError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    InteractionError::bad_request(
                        format!("the parameter '{name}' must be a non-negative integer, not '{v}'"),
                        format!("パラメータ '{name}' は 0 以上の整数である必要があります（'{v}'）"),
                    )
                })
            })
            .transpose()
    }
}

/// The operations this module serves, by resource type.
pub fn is_terminology_operation(ty: &str, op: &str) -> bool {
    matches!(
        (ty, op),
        ("CodeSystem", "$lookup" | "$validate-code" | "$subsumes")
            | ("ValueSet", "$expand" | "$validate-code")
            | ("ConceptMap", "$translate")
    )
}

impl Interactions {
    /// Runs a terminology operation at type level (`id` = None) or on a stored resource.
    pub fn terminology_operation(
        &self,
        ty: &str,
        id: Option<&str>,
        op: &str,
        input: &OperationInput,
    ) -> Result<Value, InteractionError> {
        // On an instance, the stored resource's canonical names what the operation is on.
        let canonical = match id {
            Some(id) => {
                let stored = self.read_current(ty, id)?;
                let r: Value = serde_json::from_slice(&stored.body)
                    .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?;
                let url = r.get("url").and_then(Value::as_str).map(str::to_string);
                Some(url.ok_or_else(|| {
                    InteractionError::bad_request(
                        format!("{ty}/{id} has no url, so no operation can name it"),
                        format!("{ty}/{id} に url がないため操作の対象にできません"),
                    )
                })?)
            }
            None => None,
        };
        let t = self.terminology();
        let version = input.get("version");
        Ok(match (ty, op) {
            ("CodeSystem", "$lookup") => {
                let system = canonical.as_deref().map_or_else(|| input.require("system"), Ok)?;
                t.lookup(system, input.require("code")?, version, &input.all("property"))?
            }
            ("CodeSystem", "$validate-code") => {
                let url = canonical.as_deref().or(input.get("url")).or(input.get("system"));
                let url = url.map_or_else(|| input.require("url"), Ok)?;
                t.validate_code_in_system(url, input.require("code")?, version, input.get("display"))?
            }
            ("CodeSystem", "$subsumes") => {
                let system = canonical.as_deref().map_or_else(|| input.require("system"), Ok)?;
                t.subsumes(system, input.require("codeA")?, input.require("codeB")?, version)?
            }
            ("ValueSet", "$expand") => {
                let params = ExpandParams {
                    filter: input.get("filter"),
                    count: input.number("count")?,
                    offset: input.number("offset")?.unwrap_or(0),
                    active_only: input.get("activeOnly") == Some("true"),
                    display_language: input.get("displayLanguage"),
                };
                let source = match (canonical.as_deref(), input.resource("valueSet")) {
                    (Some(url), _) => ValueSetSource::Canonical(url),
                    (None, Some(vs)) => ValueSetSource::Inline(vs),
                    (None, None) => ValueSetSource::Canonical(input.require("url")?),
                };
                t.expand(source, &params)?
            }
            ("ValueSet", "$validate-code") => {
                let url = canonical.as_deref().map_or_else(|| input.require("url"), Ok)?;
                t.validate_code_in_value_set(url, input.get("system"), input.require("code")?, input.get("display"))?
            }
            ("ConceptMap", "$translate") => {
                let params = TranslateParams {
                    url: canonical.as_deref().or(input.get("url")),
                    concept_map: input.resource("conceptMap"),
                    source: input.get("source"),
                    target: input.get("target"),
                    target_system: input.get("targetsystem"),
                    system: input.require("system")?,
                    code: input.require("code")?,
                    reverse: input.get("reverse") == Some("true"),
                };
                t.translate(&params)?
            }
            _ => {
                return Err(InteractionError::not_supported(
                    format!("{ty}/{op} is not a terminology operation of this server"),
                    format!("{ty}/{op} はこのサーバの用語操作ではありません"),
                ))
            }
        })
    }
}
