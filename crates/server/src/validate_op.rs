//! `$validate` (R4 resource-operation-validate): type level with a resource in the body
//! (or a Parameters with `resource` and `profile`), instance level on the stored resource.
//! Answers 200 with an OperationOutcome whatever it finds, as the operation defines.

use crate::dispatch::{ok_resource, resource_body, Call};
use crate::AppState;
use axum::response::Response;
use serde_json::Value;
use tsunagu_interaction::{validation_outcome, InteractionError};

/// The resource and profiles from a `$validate` body (a resource or a Parameters).
fn unwrap_parameters(body: Value, c: &Call) -> Result<(Value, Vec<String>), InteractionError> {
    let mut profiles: Vec<String> =
        c.params.pairs.iter().filter(|(k, _)| k == "profile").map(|(_, v)| v.clone()).collect();
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok((body, profiles));
    }
    let mut resource = None;
    for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
        match p.get("name").and_then(Value::as_str) {
            Some("resource") => resource = p.get("resource").cloned(),
            Some("profile") => {
                if let Some(u) = p.get("valueUri").or(p.get("valueCanonical")).and_then(Value::as_str) {
                    profiles.push(u.to_string());
                }
            }
            _ => {}
        }
    }
    match resource {
        Some(r) => Ok((r, profiles)),
        // A Parameters without a `resource` parameter is itself the resource to validate.
        None => Ok((body, profiles)),
    }
}

fn answer(state: &AppState, c: &Call, resource: &Value, profiles: &[String]) -> Result<Response, InteractionError> {
    let profiles: Vec<&str> = profiles.iter().map(String::as_str).collect();
    let issues = crate::check::content_issues(state.validator.validate(resource, &profiles));
    ok_resource(c, 200, &validation_outcome(&issues, c.render.lang))
}

pub(crate) fn type_level(state: &AppState, c: &Call, ty: &str) -> Result<Response, InteractionError> {
    state.fhir.known_type(ty)?;
    let (resource, profiles) = unwrap_parameters(resource_body(c)?, c)?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(ty) {
        return Err(InteractionError::bad_request(
            format!("$validate on {ty} needs a {ty} resource"),
            format!("{ty} の $validate には {ty} リソースが必要です"),
        ));
    }
    answer(state, c, &resource, &profiles)
}

pub(crate) fn instance_level(state: &AppState, c: &Call, ty: &str, id: &str) -> Result<Response, InteractionError> {
    let (resource, profiles) = if c.body.iter().all(u8::is_ascii_whitespace) {
        let stored = state.fhir.read(ty, id, &c.ctx)?;
        let r: Value = serde_json::from_slice(&stored.body)
            .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?;
        let profiles = c.params.pairs.iter().filter(|(k, _)| k == "profile").map(|(_, v)| v.clone()).collect();
        (r, profiles)
    } else {
        unwrap_parameters(resource_body(c)?, c)?
    };
    answer(state, c, &resource, &profiles)
}
