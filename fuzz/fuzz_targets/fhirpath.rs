//! Fuzzes the FHIRPath parser, compiler and evaluator.
//!
//! Proves, for any text: parsing, compiling (untyped and for `Patient`) and evaluating over
//! a fixed Patient (with primitive extensions, nulls in arrays and a contained resource)
//! never panic, abort, overflow the stack or run away; an error is a fine answer. Whatever
//! parses prints to text that parses again and prints the same (the printer and the parser
//! agree). Regular expressions are bounded as the server bounds them
//! (`set_regex_limits`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn resource() -> &'static serde_json::Value {
    static R: OnceLock<serde_json::Value> = OnceLock::new();
    R.get_or_init(|| {
        tsunagu_fhirpath::set_regex_limits(1 << 20, 8 << 20);
        serde_json::from_str(
            r#"{"resourceType": "Patient", "id": "f", "active": true, "birthDate": "1970-01-01",
                "_birthDate": {"extension": [{"url": "http://x", "valueDecimal": 1.50}]},
                "name": [{"use": "official", "family": "Doe", "given": ["A", null], "_given": [null, {"id": "g"}]}],
                "contained": [{"resourceType": "Observation", "id": "o", "status": "final",
                  "valueQuantity": {"value": 185, "code": "[lb_av]", "system": "http://unitsofmeasure.org"}}]}"#,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let resource = resource();
    if let Ok(ast) = tsunagu_fhirpath::parse(text) {
        let printed = ast.to_string();
        let again = tsunagu_fhirpath::parse(&printed)
            .unwrap_or_else(|e| panic!("printed expression must parse: {e}\nprinted: {printed}"));
        assert_eq!(again.to_string(), printed, "printing is not stable");
    }
    for root in [None, Some("Patient")] {
        let compiled = match root {
            Some(r) => tsunagu_fhirpath::compile_for(r, text),
            None => tsunagu_fhirpath::compile(text),
        };
        if let Ok(e) = compiled {
            let _ = e.evaluate(resource);
        }
    }
});
