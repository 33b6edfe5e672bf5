//! `$validate` (R4 Resource-validate): type level with a resource in the body (or a
//! Parameters with `resource`, `mode` and `profile`), instance level on the stored resource
//! (or on a body given with it). Answers an OperationOutcome whatever it finds, as the
//! operation defines; profiles are checked by the configured profile validation.
//!
//! `mode` says what the content is meant for: `create` (the default: the content alone),
//! `update` (an update must name its id, and at instance level the instance's), `delete`
//! (no content: whether the stored instance exists and this caller may delete it),
//! `profile` (the content against the `profile` given, as every mode checks it).

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
    let modes: Vec<String> = inv.params.pairs.iter().filter(|(k, _)| k == "mode").map(|(_, v)| v.clone()).collect();
    let mut mode = modes.first().cloned();
    let body = match inv.body.clone() {
        Some(b) => Some(unwrap_parameters(b, &mut profiles, &mut mode)?),
        None => None,
    };
    if modes.len() > 1 {
        return Err(once("mode"));
    }
    let mode = Mode::parse(mode.as_deref())?;
    if mode == Mode::Delete {
        return can_delete(fhir, ty, inv.id, ctx);
    }
    let resource = match (body, inv.id) {
        (Some(body), _) => body,
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
    let mut issues = fhir.validation_issues(&resource, &profiles);
    if mode == Mode::Update {
        let id = resource.get("id").and_then(Value::as_str);
        let problem = match (id, inv.id) {
            (None, _) => {
                Some(("An update must carry the id of the resource it updates", "更新するリソースには id が必要です"))
            }
            (Some(a), Some(b)) if a != b => Some((
                "The resource's id is not the id of the instance validated",
                "リソースの id が検証対象のインスタンスの id と異なります",
            )),
            _ => None,
        };
        issues.extend(problem.map(|(en, ja)| ContentIssue {
            severity: "error",
            code: "invalid",
            expression: Some(format!("{ty}.id")),
            en: en.into(),
            ja: ja.into(),
        }));
    }
    Ok(validation_outcome(&issues, ctx.lang))
}

/// What the content is validated for (R4's `resource-validation-mode`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Delete,
}

impl Mode {
    fn parse(mode: Option<&str>) -> Result<Mode, InteractionError> {
        match mode {
            // `profile`: the content against the profile named, which every mode does.
            None | Some("create") | Some("profile") => Ok(Mode::Create),
            Some("update") => Ok(Mode::Update),
            Some("delete") => Ok(Mode::Delete),
            Some(other) => Err(InteractionError::bad_request(
                format!("$validate mode '{other}' is not one of create, update, delete, profile"),
                format!("$validate の mode '{other}' は create・update・delete・profile のいずれでもありません"),
            )),
        }
    }
}

/// `mode=delete`: whether the stored instance exists (a read, with the caller's read
/// rights) and the caller may delete resources of its type.
fn can_delete(
    fhir: &Interactions,
    ty: &str,
    id: Option<&str>,
    ctx: &RequestContext,
) -> Result<Value, InteractionError> {
    let Some(id) = id else {
        return Err(InteractionError::bad_request(
            format!("$validate with mode=delete is asked of an instance: {ty}/[id]/$validate"),
            format!("mode=delete の $validate はインスタンスに対して行います（{ty}/[id]/$validate）"),
        ));
    };
    fhir.read(ty, id, ctx)?;
    let issues = match fhir.check_permission(&ctx.caller, ty, crate::Permission::Delete) {
        Ok(()) => vec![],
        Err(e) => vec![ContentIssue {
            severity: "error",
            code: "forbidden",
            expression: None,
            en: e.message(crate::Lang::En),
            ja: e.message(crate::Lang::Ja),
        }],
    };
    Ok(validation_outcome(&issues, ctx.lang))
}

/// The resource from a `$validate` body (a resource, or a Parameters with `resource`,
/// `mode` and `profile`); the profiles it names join `profiles`.
fn unwrap_parameters(
    body: Value,
    profiles: &mut Vec<String>,
    mode: &mut Option<String>,
) -> Result<Value, InteractionError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok(body);
    }
    let mut resource = None;
    for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
        match p.get("name").and_then(Value::as_str) {
            Some("resource") if resource.is_some() => return Err(once("resource")),
            Some("resource") => resource = p.get("resource").cloned(),
            Some("mode") => {
                if let Some(m) = p.get("valueCode").or(p.get("valueString")).and_then(Value::as_str) {
                    if mode.as_deref().is_some_and(|had| had != m) {
                        return Err(once("mode"));
                    }
                    *mode = Some(m.to_string());
                }
            }
            Some("profile") => {
                if let Some(u) = p.get("valueUri").or(p.get("valueCanonical")).and_then(Value::as_str) {
                    profiles.push(u.to_string());
                }
            }
            _ => {}
        }
    }
    // A Parameters without a `resource` parameter is itself the resource to validate.
    Ok(resource.unwrap_or(body))
}

/// A parameter given more than once where the operation takes one (0..1).
fn once(name: &str) -> InteractionError {
    InteractionError::bad_request(
        format!("$validate takes at most one {name}"),
        format!("$validate の {name} は 1 つまでです"),
    )
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
