//! The official R4 examples that break the base R4 structure, shared by the conformance
//! tests of several crates (`#[path]`-included), so the list is kept in one place.

/// Official examples that are genuinely invalid against the base R4 structure, each checked
/// by hand against the definitions: (file, reason).
pub const KNOWN_INVALID: &[(&str, &str)] = &[
    ("ig-r4.json", "ImplementationGuide.name and .status (both 1..1) are absent"),
    ("ImplementationGuide-fhir.json", "ImplementationGuide.name and .status (both 1..1) are absent"),
    ("Questionnaire-qs1.json", "32 nested Questionnaire.item lack linkId (1..1)"),
    (
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        "the id has 67 characters; the id type allows at most 64",
    ),
    ("SearchParameter-codesystem-extensions-CodeSystem-author.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-codesystem-extensions-CodeSystem-effective.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-codesystem-extensions-CodeSystem-end.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-codesystem-extensions-CodeSystem-keyword.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-codesystem-extensions-CodeSystem-workflow.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-valueset-extensions-ValueSet-author.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-valueset-extensions-ValueSet-effective.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-valueset-extensions-ValueSet-end.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-valueset-extensions-ValueSet-keyword.json", "SearchParameter.base (1..*) is absent"),
    ("SearchParameter-valueset-extensions-ValueSet-workflow.json", "SearchParameter.base (1..*) is absent"),
    ("ActivityDefinition-blood-tubes-supply.json", "txt-2: the narrative div holds only whitespace"),
    ("ActivityDefinition-heart-valve-replacement.json", "txt-2: the narrative div holds only whitespace"),
    ("EventDefinition-example.json", "txt-2: the narrative div holds only whitespace"),
    ("Questionnaire-zika-virus-exposure-assessment.json", "txt-2: the narrative holds only an empty <pre>"),
    (
        "CapabilityStatement-example.json",
        "url urn:uuid:68D043B5-… is not a uuid (datatypes.html#uuid: lower-case hex digits)",
    ),
    (
        "TerminologyCapabilities-example.json",
        "url urn:uuid:68D043B5-… is not a uuid (datatypes.html#uuid: lower-case hex digits)",
    ),
    ("Bundle-valueset-expansions.json", "a valueUri urn:oid:1.2.36…16592|4.0.1 is not an OID (datatypes.html#oid)"),
    (
        "Library-zika-virus-intervention-logic.json",
        "codeFilter.valueSet urn:oid:X.Y.Z is not an OID (datatypes.html#oid)",
    ),
];
