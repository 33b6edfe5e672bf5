//! `Patient/$everything` (R4 Patient-everything): the patient's compartment (instance
//! level), or every patient's (type level), as a searchset.

use super::{Invocation, Level, Operation, Output, Parameter};

pub(super) const EVERYTHING: Operation = Operation {
    name: "everything",
    definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    types: &["Patient"],
    levels: &[Level::Type, Level::Instance],
    get: true,
    parameters: &[
        Parameter { name: "start", type_name: "date" },
        Parameter { name: "end", type_name: "date" },
        Parameter { name: "_since", type_name: "instant" },
        Parameter { name: "_type", type_name: "code" },
        Parameter { name: "_count", type_name: "integer" },
    ],
    output: Output::Searchset,
    run: |fhir, _, inv: &Invocation<'_>, ctx| match inv.id {
        Some(id) => fhir.everything(id, inv.params, ctx),
        None => fhir.everything_all(inv.params, ctx),
    },
};
