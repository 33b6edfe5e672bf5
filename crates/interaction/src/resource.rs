//! Checks of submitted resources that do not depend on the interaction: the JSON shape,
//! the id syntax, and the pluggable content check.

use crate::error::{ContentIssue, InteractionError};
use serde_json::{Map, Value};

/// A content check run on every resource before it is written (base-structure rules,
/// profiles). Implementations live in the crates that own those rules; the server wires
/// them in. An empty result means the resource may be written.
pub trait ResourceCheck: Send + Sync {
    fn check(&self, resource: &Value) -> Vec<ContentIssue>;
    /// The status of a rejection: 400 when the resource breaks the base rules of FHIR,
    /// 422 when it is valid FHIR that breaks a profile or business rule (http.html).
    fn rejection_status(&self, _resource: &Value, _issues: &[ContentIssue]) -> u16 {
        400
    }
    /// Whether everything this check accepts passed the base-structure check
    /// (`tsunagu_format::check_structure`): only known elements (so it can be written as
    /// FHIR XML) and narrative within txt-1/txt-2. When it cannot say so, the write guard
    /// checks the narrative itself and converts every write to XML once, so that nothing
    /// is stored that a client asking for XML could not read back.
    fn checks_base_structure(&self) -> bool {
        false
    }
    /// Checks `resource` against `profiles` (which must be known) as well as everything
    /// [`ResourceCheck::check`] checks; `None` when this check cannot validate profiles.
    /// JP-CLINS submissions are always validated this way.
    fn check_profiles(&self, _resource: &Value, _profiles: &[&str]) -> Option<Vec<ContentIssue>> {
        None
    }
}

/// Accepts everything that is a JSON object; for tests and bulk loads of trusted data.
pub struct NoCheck;

impl ResourceCheck for NoCheck {
    fn check(&self, _resource: &Value) -> Vec<ContentIssue> {
        Vec::new()
    }
}

/// A new server-assigned resource id: a UUID of version 7, which starts with the time.
/// Ids written close together sort together, so the index entries of a batch of new
/// resources (the `(type, id, version)` key, every reference to them) land on a few B-tree
/// pages at the end of their key range instead of one random page each; at a million
/// resources random (version 4) ids made a bulk load rewrite most of those indexes on
/// every commit. The time in the id says no more than `meta.lastUpdated` already does.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `[A-Za-z0-9\-\.]{1,64}` (R4 `id` datatype), except `.` and `..`: as URL path
/// segments they mean "this" and "the parent", so `Patient/..` could never be read back.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The submitted body as a resource object of type `ty`.
pub fn expect_resource(ty: &str, body: Value) -> Result<Map<String, Value>, InteractionError> {
    let Value::Object(map) = body else {
        return Err(InteractionError::invalid(
            "structure",
            None,
            "The body must be a JSON object holding a resource".into(),
            "本文はリソースを表す JSON オブジェクトでなければなりません".into(),
        ));
    };
    match map.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == ty => Ok(map),
        Some(t) => Err(InteractionError::bad_request(
            format!("the body holds a {t}, but the URL names {ty}"),
            format!("本文のリソースタイプ {t} が URL のリソースタイプ {ty} と一致しません"),
        )),
        None => Err(InteractionError::invalid(
            "required",
            None,
            "The resource has no resourceType".into(),
            "resourceType がありません".into(),
        )),
    }
}

/// Rebuilds the top of a resource with `resourceType`, `id` and `meta` first, as FHIR
/// JSON writers conventionally order them, and the server-kept meta values set.
pub fn with_identity(mut map: Map<String, Value>, ty: &str, id: &str, version: u64, last_updated: &str) -> Value {
    let mut meta = match map.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert("lastUpdated".into(), Value::String(last_updated.to_string()));
    let mut out = Map::with_capacity(map.len() + 3);
    out.insert("resourceType".into(), Value::String(ty.to_string()));
    out.insert("id".into(), Value::String(id.to_string()));
    // Keep versionId and lastUpdated at the front of meta as well.
    let mut ordered = Map::with_capacity(meta.len());
    for key in ["versionId", "lastUpdated"] {
        if let Some(v) = meta.remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    ordered.extend(meta);
    out.insert("meta".into(), Value::Object(ordered));
    map.remove("resourceType");
    map.remove("id");
    out.extend(map);
    Value::Object(out)
}
