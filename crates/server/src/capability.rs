//! The CapabilityStatement: exactly what this server implements, no more. Search lists,
//! per type, every parameter the index extracts, with the modifiers the parser accepts.

use serde_json::{json, Value};
use tsunagu_model::SearchParamType as K;

fn modifiers(kind: K) -> &'static str {
    match kind {
        K::Token => {
            "modifiers: missing, not, text, of-type (identifiers), in, not-in (value set), below, above (system|code)"
        }
        K::String => "modifiers: missing, exact, contains; Japanese width and kana folded",
        K::Reference => "modifiers: missing, [type], identifier; chaining and _has",
        K::Uri => "modifiers: missing, above, below",
        K::Date | K::Number | K::Quantity => "prefixes eq ne gt lt ge le sa eb ap; modifier missing",
        K::Composite => "values first$second, the first a token; both from the same element; modifier missing",
        K::Special => "",
    }
}

/// The operations served on a type, from the one registry of operations.
fn operations(ty: &str) -> Value {
    tsunagu_interaction::operations::on_type(ty)
        .map(|op| json!({ "name": op.name, "definition": op.definition }))
        .collect()
}

/// Operations at system level, and those on types from IGs that R4 lacks
/// (`ViewDefinition/$run`), which have no `rest.resource` entry to sit in.
fn system_operations() -> Value {
    tsunagu_interaction::operations::OPERATIONS
        .iter()
        .filter(|op| {
            op.levels.contains(&tsunagu_interaction::operations::Level::System)
                || op.types.iter().any(|t| !tsunagu_model::r4().is_resource_type(t))
        })
        .map(|op| json!({ "name": op.name, "definition": op.definition }))
        .collect()
}

const FULL_TEXT: &str = "words ANDed, OR between terms, \"quoted phrases\"; Japanese found without spaces \
     (kanji/kana bigrams), and a term mixing scripts (2型糖尿病) as one phrase; modifier not";

const CONTENT: &str =
    "the narrative and text written for people (codes, dates, ids and URLs are left to their own parameters)";

/// `smart`: authorization is required, so the statement names the SMART endpoints.
pub fn capability_statement(base: &str, registry: &tsunagu_search::SearchRegistry, smart: bool) -> Value {
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
        json!({ "name": "_text", "type": "string", "definition": "http://hl7.org/fhir/SearchParameter/DomainResource-text",
                "documentation": FULL_TEXT }),
        json!({ "name": "_content", "type": "string", "definition": "http://hl7.org/fhir/SearchParameter/Resource-content",
                "documentation": format!("{FULL_TEXT}; {CONTENT}") }),
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
            r["operation"] = operations(ty);
            if *ty == "AuditEvent" {
                // Recorded by the server, read and searched only (see audit_api.rs).
                r["interaction"] = json!([{ "code": "read" }, { "code": "search-type" }]);
                r["searchParam"] = json!(["date", "agent", "patient", "entity", "subtype", "outcome"]
                    .iter()
                    .map(|n| json!({ "name": n, "type": if *n == "date" { "date" } else { "token" } }))
                    .collect::<Vec<_>>());
                for k in ["updateCreate", "conditionalCreate", "conditionalUpdate", "conditionalDelete", "readHistory"]
                {
                    r.as_object_mut().map(|o| o.remove(k));
                }
                r.as_object_mut().map(|o| o.remove("operation"));
            }
            r
        })
        .collect();
    let security = if smart {
        json!({
            "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                       "code": "SMART-on-FHIR" }] }],
            "extension": [{ "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                { "url": "token", "valueUri": format!("{base}/auth/token") },
                                { "url": "authorize", "valueUri": format!("{base}/auth/authorize") }] }],
            "description": "SMART App Launch 2.x and Backend Services: see /.well-known/smart-configuration"
        })
    } else {
        json!({ "description": "Authorization is off on this server (loopback only)" })
    };
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "Tsunagu",
        "kind": "instance",
        // $export at system, Patient and Group level, from the operations registry.
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": { "name": "Tsunagu", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Tsunagu FHIR R4 server", "url": base },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            "security": security,
            "documentation": "Search: _sort (several keys, -desc), _count, _total (accurate/estimate), _summary, _elements, _include/_revinclude (:iterate), chaining, _has, compartment search, paging by cursor; composite parameters (two components, so not MolecularSequence's three-component coordinates); token :in/:not-in/:below/:above through the terminology service; _text/_content; _contained=true/both with _containedType (type-level; each contained resource matched on its own; not with _sort, _include, chains, _has or _text). Not yet: special parameters.",
            "resource": resources,
            "interaction": [
                { "code": "transaction" }, { "code": "batch" },
                { "code": "search-system" }, { "code": "history-system" }
            ],
            "searchParam": common,
            "operation": system_operations(),
        }]
    })
}

/// What `GET metadata` answers for `mode` (R4 http.html#capabilities): the
/// CapabilityStatement (`full`, `normative` or none) or the TerminologyCapabilities
/// (`terminology`); the one place both the HTTP route and a Bundle's entry ask.
pub fn for_mode(
    fhir: &tsunagu_interaction::Interactions,
    base: &str,
    smart: bool,
    mode: Option<&str>,
) -> Result<Value, tsunagu_interaction::InteractionError> {
    match mode {
        None | Some("full") | Some("normative") => Ok(capability_statement(base, fhir.search_registry(), smart)),
        Some("terminology") => Ok(terminology_capabilities(base, fhir.terminology().code_systems())),
        Some(other) => Err(tsunagu_interaction::InteractionError::bad_request(
            format!("metadata mode '{other}' is not full, normative or terminology"),
            format!("metadata の mode '{other}' は full、normative、terminology のいずれでもありません"),
        )),
    }
}

/// `GET /metadata?mode=terminology` (R4 http.html#capabilities): the code systems the
/// terminology operations know (from packages and stored CodeSystems), and what
/// `$expand`, `$validate-code` and `$translate` do here.
/// `code_systems`: canonical URLs with their versions.
pub fn terminology_capabilities(base: &str, code_systems: Vec<(String, Vec<String>)>) -> Value {
    let code_systems: Vec<Value> = code_systems
        .into_iter()
        .map(|(uri, versions)| {
            let mut cs = json!({ "uri": uri });
            if !versions.is_empty() {
                cs["version"] = versions.into_iter().map(|v| json!({ "code": v })).collect();
            }
            cs
        })
        .collect();
    let mut tc = json!({
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": "2026-12-07",
        "publisher": "Tsunagu",
        "kind": "instance",
        "software": { "name": "Tsunagu", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Tsunagu FHIR R4 server: terminology", "url": base },
        "expansion": {
            "paging": true,
            "textFilter": "filter: every word is found in a concept's code, display or designations, folded for width, case, accents and kana"
        },
        "codeSearch": "all",
        "translation": { "needsMap": true }
    });
    if !code_systems.is_empty() {
        tc["codeSystem"] = Value::Array(code_systems);
    }
    tc
}
