//! Bulk Data `$export` (HL7 Bulk Data Access 2.0) at system, Patient (type) and Group
//! (instance) level. Declared here like every operation, so routing and the
//! CapabilityStatement know them; they are asynchronous ([`Output::Async`]): the server
//! hands them to [`crate::Exports::kickoff`] (with `Prefer: respond-async`) and answers
//! 202 with the status URL. Invoked any other way (a batch entry) they are refused. The
//! status (`$export-status/{job}`) and file (`$export-file/{job}/{file}`) URLs are not
//! FHIR operations and are routed by the server only.

use super::{Level, Operation, Output, Parameter};
use crate::error::InteractionError;

const PARAMETERS: &[Parameter] = &[
    Parameter { name: "_outputFormat", type_name: "string" },
    Parameter { name: "_since", type_name: "instant" },
    Parameter { name: "_type", type_name: "string" },
    Parameter { name: "_typeFilter", type_name: "string" },
    Parameter { name: "_deidentify", type_name: "code" },
];

fn asynchronous() -> InteractionError {
    InteractionError::bad_request(
        "$export runs asynchronously: call it over HTTP with Prefer: respond-async",
        "$export は非同期で実行されます。HTTP で Prefer: respond-async を付けて呼び出してください",
    )
}

pub(super) const EXPORT: Operation = Operation {
    name: "export",
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    types: &[],
    levels: &[Level::System],
    get: true,
    parameters: PARAMETERS,
    output: Output::Async,
    run: |_, _, _, _| Err(asynchronous()),
};

pub(super) const PATIENT_EXPORT: Operation = Operation {
    name: "export",
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    types: &["Patient"],
    levels: &[Level::Type],
    get: true,
    parameters: PARAMETERS,
    output: Output::Async,
    run: |_, _, _, _| Err(asynchronous()),
};

pub(super) const GROUP_EXPORT: Operation = Operation {
    name: "export",
    definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    types: &["Group"],
    levels: &[Level::Instance],
    get: true,
    parameters: PARAMETERS,
    output: Output::Async,
    run: |_, _, _, _| Err(asynchronous()),
};
