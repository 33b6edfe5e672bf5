//! The terminology operations (R4 terminology-service.html) on CodeSystem, ValueSet and
//! ConceptMap, at type or instance level; inputs from the query or a `Parameters` body
//! (`terminology_ops.rs` maps them onto the terminology service).

use super::{Invocation, Level, Operation, Output, Parameter};
use crate::error::InteractionError;
use crate::{Interactions, OperationInput, Permission, RequestContext};
use serde_json::Value;

const LEVELS: &[Level] = &[Level::Type, Level::Instance];

const fn p(name: &'static str, type_name: &'static str) -> Parameter {
    Parameter { name, type_name }
}

pub(super) const LOOKUP: Operation = Operation {
    name: "lookup",
    definition: "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
    types: &["CodeSystem"],
    levels: LEVELS,
    get: true,
    parameters: &[
        p("code", "code"),
        p("system", "uri"),
        p("version", "string"),
        p("coding", "Coding"),
        p("property", "code"),
    ],
    output: Output::Resource,
    run,
};

pub(super) const CODE_SYSTEM_VALIDATE_CODE: Operation = Operation {
    name: "validate-code",
    definition: "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
    types: &["CodeSystem"],
    levels: LEVELS,
    get: true,
    parameters: &[
        p("url", "uri"),
        p("code", "code"),
        p("version", "string"),
        p("display", "string"),
        p("coding", "Coding"),
    ],
    output: Output::Resource,
    run,
};

pub(super) const SUBSUMES: Operation = Operation {
    name: "subsumes",
    definition: "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes",
    types: &["CodeSystem"],
    levels: LEVELS,
    get: true,
    parameters: &[
        p("codeA", "code"),
        p("codeB", "code"),
        p("system", "uri"),
        p("codingA", "Coding"),
        p("codingB", "Coding"),
    ],
    output: Output::Resource,
    run,
};

pub(super) const EXPAND: Operation = Operation {
    name: "expand",
    definition: "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
    types: &["ValueSet"],
    levels: LEVELS,
    get: true,
    parameters: &[
        p("url", "uri"),
        p("valueSet", "ValueSet"),
        p("filter", "string"),
        p("count", "integer"),
        p("offset", "integer"),
        p("activeOnly", "boolean"),
        p("displayLanguage", "code"),
    ],
    output: Output::Resource,
    run,
};

pub(super) const VALUE_SET_VALIDATE_CODE: Operation = Operation {
    name: "validate-code",
    definition: "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    types: &["ValueSet"],
    levels: LEVELS,
    get: true,
    parameters: &[
        p("url", "uri"),
        p("code", "code"),
        p("system", "uri"),
        p("display", "string"),
        p("coding", "Coding"),
    ],
    output: Output::Resource,
    run,
};

pub(super) const TRANSLATE: Operation = Operation {
    name: "translate",
    definition: "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
    types: &["ConceptMap"],
    levels: LEVELS,
    get: true,
    parameters: &[p("url", "uri"), p("code", "code"), p("system", "uri"), p("coding", "Coding"), p("target", "uri")],
    output: Output::Resource,
    run,
};

fn run(
    fhir: &Interactions,
    op: &Operation,
    inv: &Invocation<'_>,
    ctx: &RequestContext,
) -> Result<Value, InteractionError> {
    let ty = inv.ty.unwrap_or("");
    match inv.id {
        // The stored resource must be visible to the caller.
        Some(id) => drop(fhir.read(ty, id, ctx)?),
        // Type level reads across the type's resources.
        None => fhir.check_whole(&ctx.caller, ty, Permission::Read)?,
    }
    let mut input = match &inv.body {
        Some(body) => OperationInput::from_parameters(body)?,
        None => OperationInput::default(),
    };
    input.values.extend(OperationInput::from_query(inv.params).values);
    fhir.terminology_operation(ty, inv.id, &format!("${}", op.name), &input)
}
