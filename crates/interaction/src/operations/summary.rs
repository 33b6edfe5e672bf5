//! `Patient/$summary`: one person's JP-CLINS items from every institution the caller may
//! see, as a patient-summary document (the work is `clins::summary`).

use super::{Invocation, Level, Operation, Output, Parameter};
use crate::clins::summary::SummaryOf;
use crate::error::InteractionError;

pub(super) const SUMMARY: Operation = Operation {
    name: "summary",
    definition: "http://hl7.org/fhir/uv/ips/OperationDefinition/summary",
    types: &["Patient"],
    levels: &[Level::Type, Level::Instance],
    get: true,
    parameters: &[Parameter { name: "identifier", type_name: "string" }],
    output: Output::Document,
    run: |fhir, _, inv: &Invocation<'_>, ctx| {
        let of = match inv.id {
            Some(id) => SummaryOf::Patient(id),
            None => SummaryOf::Identifier(inv.params.get("identifier").ok_or_else(|| {
                InteractionError::bad_request(
                    "Patient/$summary needs identifier=system|value",
                    "Patient/$summary には identifier=system|value が必要です",
                )
            })?),
        };
        fhir.patient_summary(of, ctx)
    },
};
