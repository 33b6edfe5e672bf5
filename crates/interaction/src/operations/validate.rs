//! `$validate` (R4 Resource-validate): type level with a resource in the body (or a
//! Parameters with `resource` and `profile`), instance level on the stored resource (or
//! on a body given with it). Answers an OperationOutcome whatever it finds, as the
//! operation defines; profiles are checked by the configured profile validation.

use serde_json::Value;

use super::{Invocation, Level, Operation, Output, Parameter};
use crate::error::{ContentIssue, InteractionError};
use crate::{validation_outcome, Interactions, RequestContext};

pub(super) const VALIDATE: Operation = Operation {
    name: "validate",
    definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    types: &[],
    levels: &[Level::Type, Level::Instance],
    get: true,
    parameters: &[
        Parameter { name: "resource", type_name: "Resource" },
        Parameter { name: "mode", type_name: "code" },
        Parameter { name: "profile", type_name: "uri" },
    ],
    output: Output::Resource,
    run,
};

fn run(
    fhir: &Interactions,
    _: &Operation,
    inv: &Invocation<'_>,
    ctx: &RequestContext,
) -> Result<Value, InteractionError> {
    let ty = inv.ty.unwrap_or("");
    let mut profiles: Vec<String> =
        inv.params.pairs.iter().filter(|(k, _)| k == "profile").map(|(_, v)| v.clone()).collect();
    let resource = match (&inv.body, inv.id) {
        (Some(body), _) => unwrap_parameters(body.clone(), &mut profiles),
        (None, Some(id)) => {
            let stored = fhir.read(ty, id, ctx)?;
            serde_json::from_slice(&stored.body)
                .map_err(|e| InteractionError::Store(tsunagu_store::StoreError::Corrupt(e.to_string())))?
        }
        (None, None) => {
            return Err(InteractionError::bad_request(
                format!("$validate on {ty} needs a {ty} resource in the body"),
                format!("{ty} の $validate には本文に {ty} リソースが必要です"),
            ))
        }
    };
    if resource.get("resourceType").and_then(Value::as_str) != Some(ty) {
        return Err(InteractionError::bad_request(
            format!("$validate on {ty} needs a {ty} resource"),
            format!("{ty} の $validate には {ty} リソースが必要です"),
        ));
    }
    let profiles: Vec<&str> = profiles.iter().map(String::as_str).collect();
    Ok(validation_outcome(&fhir.validation_issues(&resource, &profiles), ctx.lang))
}

/// The resource from a `$validate` body (a resource, or a Parameters with `resource` and
/// `profile`); the profiles it names join `profiles`.
fn unwrap_parameters(body: Value, profiles: &mut Vec<String>) -> Value {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return body;
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
    // A Parameters without a `resource` parameter is itself the resource to validate.
    resource.unwrap_or(body)
}

impl Interactions {
    /// Every issue (errors, warnings, information) of `resource` against the base
    /// specification, its declared profiles and `profiles`.
    pub(crate) fn validation_issues(&self, resource: &Value, profiles: &[&str]) -> Vec<ContentIssue> {
        let checked = self
            .profiles
            .as_ref()
            .and_then(|c| c.check_profiles(resource, profiles))
            .or_else(|| self.check.check_profiles(resource, profiles));
        if let Some(issues) = checked {
            return issues;
        }
        // No profile validation configured: the base structure, and each requested profile
        // reported as not checkable.
        let mut issues: Vec<ContentIssue> =
            tsunagu_format::check_structure_limited(resource, self.config.limits.max_issues)
                .into_iter()
                .map(ContentIssue::from)
                .collect();
        issues.extend(profiles.iter().map(|p| ContentIssue {
            severity: "error",
            code: "not-supported",
            expression: None,
            en: format!("The requested profile {p} is not loaded; not validated against it"),
            ja: format!("指定されたプロファイル {p} が読み込まれていないため、検証していません"),
        }));
        issues
    }
}
