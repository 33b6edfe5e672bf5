//! The CapabilityStatement: exactly what this server implements, no more. Search lists
//! `_id`, `_lastUpdated` and the token parameters indexed by plain paths.

use serde_json::{json, Value};

/// Search parameters indexed for every type.
const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    (
        "_id",
        "token",
        "http://hl7.org/fhir/SearchParameter/Resource-id",
    ),
    (
        "_lastUpdated",
        "date",
        "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    ),
];

pub fn capability_statement(base: &str) -> Value {
    let model = tsunagu_model::r4();
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|c| json!({ "code": c }))
    .collect();
    let params: Vec<Value> = SEARCH_PARAMS
        .iter()
        .map(|(name, ty, def)| json!({ "name": name, "type": ty, "definition": def }))
        .collect();
    let type_params = |ty: &str| -> Vec<Value> {
        let mut p = params.clone();
        for code in tsunagu_interaction::indexed_tokens(ty) {
            let def = model.search_param(ty, code).map(|d| d.url).unwrap_or("");
            p.push(json!({ "name": code, "type": "token", "definition": def,
                           "documentation": "system|code, |code, system| and code; no modifiers yet" }));
        }
        p
    };
    let resources: Vec<Value> = model
        .resource_types()
        .iter()
        .map(|ty| {
            json!({
                "type": ty,
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "logical"],
                "searchParam": type_params(ty),
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "Tsunagu",
        "kind": "instance",
        "software": { "name": "Tsunagu", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Tsunagu FHIR R4 server", "url": base },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [
                { "code": "transaction" }, { "code": "batch" },
                { "code": "search-system" }, { "code": "history-system" }
            ],
            "searchParam": params,
        }]
    })
}
