//! The CapabilityStatement: exactly what this server implements, no more. Search lists,
//! per type, every parameter the index extracts, with the modifiers the parser accepts.

use serde_json::{json, Value};
use tsunagu_model::SearchParamType as K;

fn modifiers(kind: K) -> &'static str {
    match kind {
        K::Token => "modifiers: missing, not, text, of-type (identifiers)",
        K::String => "modifiers: missing, exact, contains; Japanese width and kana folded",
        K::Reference => "modifiers: missing, [type], identifier; chaining and _has",
        K::Uri => "modifiers: missing, above, below",
        K::Date | K::Number | K::Quantity => "prefixes eq ne gt lt ge le sa eb ap; modifier missing",
        K::Composite | K::Special => "",
    }
}

pub fn capability_statement(base: &str, registry: &tsunagu_search::SearchRegistry) -> Value {
    let model = tsunagu_model::r4();
    let interactions: Vec<Value> =
        ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"]
            .iter()
            .map(|c| json!({ "code": c }))
            .collect();
    let common = vec![
        json!({ "name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id" }),
        json!({ "name": "_lastUpdated", "type": "date",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated" }),
    ];
    let resources: Vec<Value> = model
        .resource_types()
        .iter()
        .map(|ty| {
            let mut params = common.clone();
            for p in registry.params(ty).iter().filter(|p| p.index_kind().is_some()) {
                params.push(json!({ "name": p.code, "type": p.kind.as_str(), "definition": p.url,
                                    "documentation": modifiers(p.kind) }));
            }
            let mut r = json!({
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
                "searchInclude": ["*"],
                "searchRevInclude": ["*"],
                "searchParam": params,
            });
            if *ty == "Patient" {
                r["operation"] = json!([{ "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything" }]);
            }
            r
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
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            "documentation": "Search: _sort (several keys, -desc), _count, _total (accurate/estimate), _summary, _elements, _include/_revinclude (:iterate), chaining, _has, compartment search, paging by cursor. Not yet: composite and special parameters, :above/:below/:in/:not-in on tokens, _text/_content, _contained.",
            "resource": resources,
            "interaction": [
                { "code": "transaction" }, { "code": "batch" },
                { "code": "search-system" }, { "code": "history-system" }
            ],
            "searchParam": common,
        }]
    })
}
